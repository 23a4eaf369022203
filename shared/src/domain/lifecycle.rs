//! The assessment lifecycle. Transitions are pure functions over the current state; the store
//! applies the result with a conditional write so that concurrent requests cannot both succeed.

use serde::{Deserialize, Serialize};

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

/// The in-progress wording Ashby shows when the vendor gives none.
pub const IN_PROGRESS_LABEL: &str = "In progress";

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

    #[test]
    fn cancel_of_a_finished_assessment_touches_nothing() {
        assert_eq!(on_cancel(Status::Completed), CancelEffect::AlreadyFinished);
        assert_eq!(on_cancel(Status::InProgress), CancelEffect::CancelAtVendor);
    }
}
