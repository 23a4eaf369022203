//! The assessment lifecycle. Transitions are pure functions over the current state; each says
//! where the assessment goes and what the ATS is owed ([`Notice`]), with every status label the
//! hub writes defined once in [`labels`]. The use cases apply a transition with a conditional
//! write, so that concurrent requests cannot both succeed.

use serde::{Deserialize, Serialize};
use url::Url;

use super::Summary;
use super::fields::{Field, FieldKind, FieldValue, ids};
use super::records::Attachment;

/// Where an assessment is, from the hub's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Recorded; the vendor has not yet accepted the order.
    Ordering,
    /// The vendor accepted the order.
    Ordered,
    InProgress,
    Completed,
    /// Cancelled by Ashby, the vendor or the candidate.
    Cancelled,
    Failed,
    Expired,
    /// The vendor refused the order (its 422), shown to the recruiter at start.
    Rejected,
}

impl Status {
    /// Every status, for code that must enumerate them (DynamoDB condition expressions).
    pub const ALL: [Status; 8] = [
        Self::Ordering,
        Self::Ordered,
        Self::InProgress,
        Self::Completed,
        Self::Cancelled,
        Self::Failed,
        Self::Expired,
        Self::Rejected,
    ];

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            Self::Completed | Self::Cancelled | Self::Failed | Self::Expired | Self::Rejected
        )
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ordering => "ordering",
            Self::Ordered => "ordered",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
            Self::Expired => "expired",
            Self::Rejected => "rejected",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ordering" => Self::Ordering,
            "ordered" => Self::Ordered,
            "in_progress" => Self::InProgress,
            "completed" => Self::Completed,
            "cancelled" => Self::Cancelled,
            "failed" => Self::Failed,
            "expired" => Self::Expired,
            "rejected" => Self::Rejected,
            _ => return None,
        })
    }
}

/// A status a vendor may report in a callback.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VendorStatus {
    InProgress,
    Completed,
    Cancelled,
    Failed,
    Expired,
}

impl From<VendorStatus> for Status {
    fn from(v: VendorStatus) -> Self {
        match v {
            VendorStatus::InProgress => Status::InProgress,
            VendorStatus::Completed => Status::Completed,
            VendorStatus::Cancelled => Status::Cancelled,
            VendorStatus::Failed => Status::Failed,
            VendorStatus::Expired => Status::Expired,
        }
    }
}

/// What a vendor callback does to an assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackEffect {
    /// Move to this status and tell Ashby.
    Transition(Status),
    /// Nothing changes and Ashby is not told (a terminal state is final; a repeat says nothing new).
    Ignore,
}

/// Every status wording the hub itself writes to the ATS.
pub mod labels {
    /// An order the vendor accepted; "Started" makes Ashby record the start time.
    pub const STARTED: &str = "Started";
    /// An order waiting in the delivery queue.
    pub const QUEUED: &str = "Queued: the provider is not reachable yet; the hub keeps trying";
    /// In progress, when the vendor gives no wording of its own.
    pub const IN_PROGRESS: &str = "In progress";
    /// Completed, when the vendor gives no wording of its own.
    pub const COMPLETED: &str = "Completed";
    /// The result's label when a completed callback carries no result.
    pub const RESULT: &str = "Result";
    /// The label of the report link.
    pub const FULL_REPORT: &str = "Full report";
    /// Titles and default reasons of an assessment that ended without a result.
    pub const NOT_ACCEPTED: &str = "Not accepted by the provider";
    pub const NOT_ACCEPTED_REASON: &str = "The provider could not accept this request.";
    pub const FAILED: &str = "Failed";
    pub const FAILED_REASON: &str = "The provider could not complete the check.";
    pub const UNREACHABLE_REASON: &str =
        "The provider could not be reached, so the assessment was not ordered.";
    pub const EXPIRED: &str = "Expired";
    pub const EXPIRED_REASON: &str = "The assessment expired before it was completed.";
    pub const CANCELLED: &str = "Cancelled";
    pub const CANCELLED_REASON: &str = "The provider cancelled the assessment.";
    /// Labels of the status and of the reason in a summary's metadata.
    pub const STATUS: &str = "Status";
    pub const REASON: &str = "Reason";
}

/// The in-progress wording Ashby shows when the vendor gives none.
pub const IN_PROGRESS_LABEL: &str = labels::IN_PROGRESS;

/// What a vendor reported about an assessment, parsed and checked (see `vendors::callback`).
#[derive(Debug, Clone, PartialEq)]
pub struct VendorUpdate {
    pub status: VendorStatus,
    /// The vendor's wording of the status, if any (never blank).
    pub label: Option<String>,
    pub result: Option<Field>,
    /// Required when `status` is `Completed`.
    pub report_url: Option<Url>,
    pub metadata: Vec<Field>,
    /// Report files to put on the candidate (only with `Completed`).
    pub attachments: Vec<Attachment>,
}

/// What the ATS is told about an assessment, in the ATS's neutral terms; each ATS adapter turns
/// it into its own message.
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    /// Where it stands, in words ("Started", the vendor's in-progress wording).
    Progress { label: String, metadata: Vec<Field> },
    /// Done, with its result and the link to the full report.
    Completed {
        label: String,
        result: Field,
        report_url: Option<Url>,
        metadata: Vec<Field>,
    },
    /// Over without a result: refused, failed, expired or cancelled by the vendor.
    Ended {
        title: String,
        reason: String,
        metadata: Vec<Field>,
    },
}

/// A move of an assessment to a new status, with what it records and what the ATS is owed.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub status: Status,
    /// The label kept as the one last reported (for `in_progress` news), if any.
    pub label: Option<String>,
    /// The vendor's refusal, kept to answer a repeated start.
    pub rejection: Option<String>,
    /// The vendor's reference, when its acceptance named one.
    pub reference: Option<String>,
    /// What the ATS must be told, if anything.
    pub notice: Option<Notice>,
}

impl Transition {
    fn to(status: Status) -> Self {
        Self {
            status,
            label: None,
            rejection: None,
            reference: None,
            notice: None,
        }
    }
}

/// What a vendor's update does to an assessment in `current` (last reported as
/// `current_label`), and what the ATS is told; `None` when nothing changes.
pub fn on_vendor_update(
    current: Status,
    current_label: Option<&str>,
    u: &VendorUpdate,
) -> Option<Transition> {
    let CallbackEffect::Transition(status) = on_callback(
        current,
        current_label,
        u.status,
        u.label.as_deref(),
        !u.metadata.is_empty(),
    ) else {
        return None;
    };
    let metadata = u.metadata.clone();
    let (label, notice) = match status {
        Status::InProgress => {
            let l = u
                .label
                .clone()
                .unwrap_or_else(|| labels::IN_PROGRESS.into());
            let n = Notice::Progress {
                label: l.clone(),
                metadata,
            };
            (Some(l), n)
        }
        Status::Completed => {
            let l = u.label.clone().unwrap_or_else(|| labels::COMPLETED.into());
            let result = u
                .result
                .clone()
                .unwrap_or_else(|| Field::text(ids::RESULT, labels::RESULT, l.clone()));
            let n = Notice::Completed {
                label: l.clone(),
                result,
                report_url: u.report_url.clone(),
                metadata,
            };
            (Some(l), n)
        }
        other => {
            let (title, default_reason) = match other {
                Status::Failed => (labels::FAILED, labels::FAILED_REASON),
                Status::Expired => (labels::EXPIRED, labels::EXPIRED_REASON),
                _ => (labels::CANCELLED, labels::CANCELLED_REASON),
            };
            let n = Notice::Ended {
                title: title.into(),
                reason: u.label.clone().unwrap_or_else(|| default_reason.into()),
                metadata,
            };
            (None, n)
        }
    };
    Some(Transition {
        label,
        notice: Some(notice),
        ..Transition::to(status)
    })
}

/// What a transition to a final state leaves for an ATS that pulls results: `None` for any
/// other transition (and for a cancel the ATS asked for, which it knows of). Built from the
/// notice, or from the refusal when the notice was not asked for (a start answers it itself).
pub fn summary(t: &Transition) -> Option<Summary> {
    if !t.status.is_terminal() {
        return None;
    }
    let mut s = match (&t.notice, &t.rejection) {
        (
            Some(Notice::Completed {
                label,
                result,
                report_url,
                metadata,
            }),
            _,
        ) => {
            let score = match (&result.kind, &result.value) {
                (_, FieldValue::Number(n)) => n.as_f64(),
                _ => None,
            };
            let mut s = Summary {
                label: label.clone(),
                report_url: report_url.as_ref().map(|u| u.to_string()),
                score,
                metadata: vec![],
            };
            // A numeric result is the score; any other result is shown by its label.
            if score.is_none() || result.kind != FieldKind::NumericScore {
                s.metadata
                    .push((result.label.clone(), result.value.clone()));
            }
            push_fields(&mut s, metadata);
            s
        }
        (
            Some(Notice::Ended {
                title,
                reason,
                metadata,
            }),
            _,
        ) => {
            let mut s = ended(title, reason);
            push_fields(&mut s, metadata);
            s
        }
        (Some(Notice::Progress { .. }), _) => return None,
        (None, Some(message)) => ended(labels::NOT_ACCEPTED, message),
        (None, None) => return None,
    };
    s.metadata.insert(
        0,
        (labels::STATUS.to_owned(), FieldValue::Text(s.label.clone())),
    );
    let mut seen = std::collections::HashSet::new();
    s.metadata.retain(|(label, _)| seen.insert(label.clone()));
    Some(s)
}

fn ended(title: &str, reason: &str) -> Summary {
    Summary {
        label: title.to_owned(),
        report_url: None,
        score: None,
        metadata: vec![(
            labels::REASON.to_owned(),
            FieldValue::Text(reason.to_owned()),
        )],
    }
}

fn push_fields(s: &mut Summary, fields: &[Field]) {
    s.metadata
        .extend(fields.iter().map(|f| (f.label.clone(), f.value.clone())));
}

/// How the vendor answered an order.
#[derive(Debug, Clone, PartialEq)]
pub enum OrderAnswer {
    /// Accepted, with the vendor's reference if it gave one.
    Accepted(Option<String>),
    /// Refused (its 422), in the vendor's words for the recruiter.
    Rejected(String),
    /// Never answered within the maximum age: the hub gave up.
    Abandoned,
}

/// What the vendor's answer to an order does to an assessment in `current`. `announce`: the ATS
/// must be told (an order placed from the queue; a start request tells Ashby in its answer).
/// `None` once a callback or a cancel moved the assessment on: that is kept.
pub fn on_order_answer(
    current: Status,
    answer: &OrderAnswer,
    announce: bool,
) -> Option<Transition> {
    if current != Status::Ordering {
        return None;
    }
    let mut t = match answer {
        OrderAnswer::Accepted(reference) => Transition {
            label: Some(labels::STARTED.into()),
            reference: reference.clone(),
            notice: Some(Notice::Progress {
                label: labels::STARTED.into(),
                metadata: vec![],
            }),
            ..Transition::to(Status::Ordered)
        },
        OrderAnswer::Rejected(message) => Transition {
            rejection: Some(message.clone()),
            notice: Some(Notice::Ended {
                title: labels::NOT_ACCEPTED.into(),
                reason: message.clone(),
                metadata: vec![],
            }),
            ..Transition::to(Status::Rejected)
        },
        OrderAnswer::Abandoned => {
            // The ATS was told "Queued": it must always hear how that ended.
            return Some(Transition {
                notice: Some(Notice::Ended {
                    title: labels::FAILED.into(),
                    reason: labels::UNREACHABLE_REASON.into(),
                    metadata: vec![],
                }),
                ..Transition::to(Status::Failed)
            });
        }
    };
    if !announce {
        t.notice = None;
    }
    Some(t)
}

/// Cancelling an assessment at the ATS's request: the vendor is owed a cancel, the ATS nothing
/// (it asked).
pub fn cancelled_by_ats() -> Transition {
    Transition::to(Status::Cancelled)
}

/// The label the ATS is shown for an assessment as it stands (the answer to a repeated start).
pub fn current_label(status: Status, last_label: Option<&str>) -> &str {
    match status {
        Status::Ordering => labels::QUEUED,
        _ => last_label.unwrap_or(labels::STARTED),
    }
}

/// Decides a callback's effect. `current_label` is the status label last reported to Ashby;
/// `reported_label` the vendor's (defaulted to `IN_PROGRESS_LABEL` for `in_progress`);
/// `has_metadata` whether the callback carries metadata (an ETA, say), which is news by itself.
pub fn on_callback(
    current: Status,
    current_label: Option<&str>,
    reported: VendorStatus,
    reported_label: Option<&str>,
    has_metadata: bool,
) -> CallbackEffect {
    if current.is_terminal() {
        return CallbackEffect::Ignore;
    }
    let next = Status::from(reported);
    if next == current {
        let label = reported_label.unwrap_or(IN_PROGRESS_LABEL);
        let news = next == Status::InProgress && (Some(label) != current_label || has_metadata);
        if !news {
            return CallbackEffect::Ignore;
        }
    }
    CallbackEffect::Transition(next)
}

/// What Ashby's `assessment.cancel` does to an assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CancelEffect {
    /// Ask the vendor to stop, then record `Cancelled`.
    CancelAtVendor,
    /// Already over: answer success and do nothing.
    AlreadyFinished,
}

pub fn on_cancel(current: Status) -> CancelEffect {
    if current.is_terminal() {
        CancelEffect::AlreadyFinished
    } else {
        CancelEffect::CancelAtVendor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terminal_states_are_final() {
        for s in [
            Status::Completed,
            Status::Cancelled,
            Status::Failed,
            Status::Expired,
            Status::Rejected,
        ] {
            for r in [
                VendorStatus::InProgress,
                VendorStatus::Completed,
                VendorStatus::Cancelled,
            ] {
                assert_eq!(on_callback(s, None, r, None, true), CallbackEffect::Ignore);
            }
        }
    }

    #[test]
    fn in_progress_after_completed_changes_nothing() {
        assert_eq!(
            on_callback(
                Status::Completed,
                None,
                VendorStatus::InProgress,
                None,
                false
            ),
            CallbackEffect::Ignore
        );
    }

    #[test]
    fn a_callback_may_overtake_the_order_acknowledgement() {
        assert_eq!(
            on_callback(
                Status::Ordering,
                None,
                VendorStatus::InProgress,
                None,
                false
            ),
            CallbackEffect::Transition(Status::InProgress)
        );
    }

    #[test]
    fn a_new_in_progress_label_is_reported_and_a_repeat_is_not() {
        assert_eq!(
            on_callback(
                Status::InProgress,
                Some("Awaiting consent"),
                VendorStatus::InProgress,
                Some("Checking records"),
                false
            ),
            CallbackEffect::Transition(Status::InProgress)
        );
        assert_eq!(
            on_callback(
                Status::InProgress,
                Some("Checking records"),
                VendorStatus::InProgress,
                Some("Checking records"),
                false
            ),
            CallbackEffect::Ignore
        );
    }

    #[test]
    fn a_repeat_without_a_label_is_not_news_but_new_metadata_is() {
        let l = Some(IN_PROGRESS_LABEL);
        assert_eq!(
            on_callback(Status::InProgress, l, VendorStatus::InProgress, None, false),
            CallbackEffect::Ignore
        );
        assert_eq!(
            on_callback(Status::InProgress, l, VendorStatus::InProgress, None, true),
            CallbackEffect::Transition(Status::InProgress)
        );
    }

    #[test]
    fn status_names_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::parse(s.as_str()), Some(s));
        }
    }

    fn update(status: VendorStatus, label: Option<&str>) -> VendorUpdate {
        VendorUpdate {
            status,
            label: label.map(str::to_owned),
            result: None,
            report_url: None,
            metadata: vec![],
            attachments: vec![],
        }
    }

    #[test]
    fn a_completed_update_without_a_result_reports_its_label_as_the_result() {
        let t = on_vendor_update(
            Status::InProgress,
            None,
            &update(VendorStatus::Completed, Some("Clear")),
        )
        .expect("a transition");
        assert_eq!(t.status, Status::Completed);
        let Some(Notice::Completed { result, label, .. }) = t.notice else {
            panic!("completed notice expected");
        };
        assert_eq!(
            (label.as_str(), result.identifier.as_str()),
            ("Clear", ids::RESULT)
        );
    }

    #[test]
    fn an_update_that_ends_an_assessment_gives_a_reason_even_without_a_label() {
        for (status, title, reason) in [
            (VendorStatus::Failed, labels::FAILED, labels::FAILED_REASON),
            (
                VendorStatus::Expired,
                labels::EXPIRED,
                labels::EXPIRED_REASON,
            ),
            (
                VendorStatus::Cancelled,
                labels::CANCELLED,
                labels::CANCELLED_REASON,
            ),
        ] {
            let t = on_vendor_update(Status::Ordered, None, &update(status, None)).expect("moves");
            assert_eq!(t.label, None);
            assert_eq!(
                t.notice,
                Some(Notice::Ended {
                    title: title.into(),
                    reason: reason.into(),
                    metadata: vec![]
                })
            );
        }
    }

    #[test]
    fn an_order_answer_is_announced_only_when_asked_and_never_overrides_news() {
        let accepted = OrderAnswer::Accepted(Some("R-1".into()));
        let quiet = on_order_answer(Status::Ordering, &accepted, false).expect("moves");
        assert_eq!((quiet.status, quiet.notice), (Status::Ordered, None));
        assert_eq!(quiet.reference.as_deref(), Some("R-1"));
        let told = on_order_answer(Status::Ordering, &accepted, true).expect("moves");
        assert!(
            matches!(told.notice, Some(Notice::Progress { ref label, .. }) if label == labels::STARTED)
        );
        assert_eq!(on_order_answer(Status::InProgress, &accepted, true), None);
        let gave_up =
            on_order_answer(Status::Ordering, &OrderAnswer::Abandoned, false).expect("moves");
        assert_eq!(gave_up.status, Status::Failed);
        assert!(
            gave_up.notice.is_some(),
            "the ATS always hears that a queued order failed"
        );
    }

    #[test]
    fn cancel_of_a_finished_assessment_touches_nothing() {
        assert_eq!(on_cancel(Status::Completed), CancelEffect::AlreadyFinished);
        assert_eq!(on_cancel(Status::InProgress), CancelEffect::CancelAtVendor);
    }

    #[test]
    fn a_completion_summary_has_the_score_report_and_flat_metadata() {
        let mut u = update(VendorStatus::Completed, Some("Clear"));
        u.result = Some(Field {
            identifier: "score".into(),
            label: "Score".into(),
            kind: FieldKind::NumericScore,
            value: FieldValue::Number(87.into()),
            description: None,
        });
        u.report_url = Some(Url::parse("https://v.example/r/1").expect("url"));
        u.metadata = vec![Field::text("eta", "ETA", "3 days")];
        let t = on_vendor_update(Status::InProgress, None, &u).expect("moves");
        let s = summary(&t).expect("a final state has a summary");
        assert_eq!(s.score, Some(87.0));
        assert_eq!(s.report_url.as_deref(), Some("https://v.example/r/1"));
        assert_eq!(
            s.metadata,
            vec![
                (labels::STATUS.into(), FieldValue::Text("Clear".into())),
                ("ETA".into(), FieldValue::Text("3 days".into())),
            ]
        );
        // Progress leaves none; a refusal at start (no notice asked for) leaves its words.
        let p = on_vendor_update(
            Status::Ordered,
            None,
            &update(VendorStatus::InProgress, None),
        )
        .expect("moves");
        assert_eq!(summary(&p), None);
        let r = on_order_answer(Status::Ordering, &OrderAnswer::Rejected("no".into()), false)
            .expect("moves");
        let s = summary(&r).expect("refused is final");
        assert_eq!(s.label, labels::NOT_ACCEPTED);
        assert!(
            s.metadata
                .contains(&(labels::REASON.into(), FieldValue::Text("no".into())))
        );
        assert_eq!(summary(&cancelled_by_ats()), None, "the ATS asked for it");
    }
}
