//! Assessments: `Assessments`. A start writes the start key, the assessment and its order in one
//! transaction; a change is one transaction of the webhook marker, the assessment update
//! (conditional on the version and `update_seq` the caller read), the new deliveries and the
//! settling of one delivery. A change that loses a race is answered `Conflict` and not retried
//! here: the use case re-reads and decides again (`crate::retry::CONFLICT`).

use async_trait::async_trait;

use super::DynamoDbStore;
use super::items::{
    AssessmentItem, DeliveryItem, StartKeyItem, WebhookItem, state_value, summary_text,
};
use super::keys;
use super::request::{Attempt, Tx, Value, failed_at, n, retry_contention, s, val};
use crate::domain::{Assessment, AssessmentId, DeliveryState};
use crate::ports::{
    Assessments, Change, ChangeOutcome, ChangeWrite, CreateOutcome, NewAssessment, StartKey,
    StoreError, StoreResult,
};

/// Bumps the optimistic-concurrency version like `memory::bump`; uses `:one` and `:now`.
const BUMP: &str = "#version = #version + :one, #updated_at_ms = :now";

impl DynamoDbStore {
    /// The id the start key points at, if it exists.
    async fn start_key_owner(&self, key: &StartKey) -> StoreResult<Option<AssessmentId>> {
        self.get("create_assessment", &keys::start(key))
            .await?
            .map(StartKeyItem::decode)
            .transpose()
    }

    /// One try at a start. `take_over`: `None` if the start key must not exist yet, `Some(old)`
    /// to take over a start key that pointed at `old`, a finished assessment, only if it still
    /// points there.
    async fn try_create(
        &self,
        new: &NewAssessment,
        assessment: &Assessment,
        take_over: Option<AssessmentId>,
    ) -> StoreResult<Attempt<CreateOutcome, Option<AssessmentId>>> {
        let id = assessment.id;
        let (condition, values) = match take_over {
            None => ("attribute_not_exists(#pk)", vec![]),
            Some(old) => (
                "#assessment_id = :old",
                vec![val(":old", s(old.to_string()))],
            ),
        };
        // The order is the assessment's first delivery.
        let order = DeliveryItem::encode(
            id,
            assessment.update_seq,
            &new.order,
            assessment.created_at_ms,
        )?;
        let ops = vec![
            self.put_op(
                StartKeyItem::encode(&new.start_key, id)?,
                Some(condition),
                values,
            )?,
            self.put_op(
                AssessmentItem::encode(assessment)?,
                Some("attribute_not_exists(#pk)"),
                vec![],
            )?,
            self.put_op(order, Some("attribute_not_exists(#pk)"), vec![])?,
        ];
        match self.transact("create_assessment", ops).await? {
            Tx::Committed => Ok(Attempt::Done(CreateOutcome::Created)),
            Tx::Contended => Ok(Attempt::Lost(take_over)),
            Tx::ConditionFailed(f) if failed_at(&f, 0) => {
                let Some(owner) = self.start_key_owner(&new.start_key).await? else {
                    return Ok(Attempt::Again(None));
                };
                Ok(match self.assessment(owner).await? {
                    Some(a) if new.keep_finished || !a.status.is_terminal() => {
                        Attempt::Done(CreateOutcome::Existing(Box::new(a)))
                    }
                    // Terminal is final, so the owner cannot come back to life between this
                    // read and the conditional take-over. (A missing owner cannot happen, both
                    // are written together, but would be taken over the same way.)
                    _ => Attempt::Again(Some(owner)),
                })
            }
            Tx::ConditionFailed(_) => Err(StoreError::Unavailable(
                "create_assessment: assessment id already in use".into(),
            )),
        }
    }

    /// `Conflict` for a write whose change cannot apply, unless its marker is already recorded:
    /// then `Duplicate`, which wins as in `MemoryStore`. Versions only grow, so the change still
    /// cannot apply when the marker is found absent.
    async fn conflict_unless_duplicate(&self, w: &ChangeWrite) -> StoreResult<ChangeOutcome> {
        if let Some(m) = &w.marker
            && self
                .get("apply", &keys::webhook(&m.vendor_id, &m.webhook_id))
                .await?
                .is_some()
        {
            return Ok(ChangeOutcome::Duplicate);
        }
        Ok(ChangeOutcome::Conflict)
    }
}

#[async_trait]
impl Assessments for DynamoDbStore {
    async fn create_assessment(&self, new: &NewAssessment) -> StoreResult<CreateOutcome> {
        let mut assessment = new.assessment.clone();
        assessment.update_seq += 1;
        let assessment = &assessment;
        retry_contention("create_assessment", None, |take_over| {
            self.try_create(new, assessment, take_over)
        })
        .await
    }

    async fn assessment(&self, id: AssessmentId) -> StoreResult<Option<Assessment>> {
        self.get("assessment", &keys::assessment(id))
            .await?
            .map(AssessmentItem::decode)
            .transpose()
    }

    async fn apply(&self, w: &ChangeWrite) -> StoreResult<ChangeOutcome> {
        let id = w.assessment_id;
        let mut ops = Vec::new();
        // The items whose failed condition means `Conflict`; the marker is always item 0.
        let mut guards = Vec::new();
        if let Some(m) = &w.marker {
            let marker = WebhookItem::encode(&m.vendor_id, &m.webhook_id, m.expires_at_s)?;
            ops.push(self.put_op(marker, Some("attribute_not_exists(#pk)"), vec![])?);
        }
        if let Some(c) = &w.change {
            // No read here: the caller read the assessment to decide on the change. The
            // condition below holds the write to that snapshot (version and `update_seq`), so
            // the new deliveries take exactly the next sequence numbers.
            if w.settle.is_some_and(|seq| seq > c.expected_update_seq) {
                // No such delivery; its key could even be one of the new deliveries'.
                return self.conflict_unless_duplicate(w).await;
            }
            let last_seq = c.expected_update_seq + c.deliveries.len() as u64;
            let (update, values) = change_update(c, last_seq)?;
            guards.push(ops.len());
            ops.push(self.update_op(
                &keys::assessment(id),
                &update,
                "attribute_exists(#pk) AND #version = :expected AND #update_seq = :expected_seq",
                values,
            )?);
            for (seq, d) in (c.expected_update_seq + 1..).zip(&c.deliveries) {
                let delivery = DeliveryItem::encode(id, seq, d, c.now_ms)?;
                ops.push(self.put_op(delivery, Some("attribute_not_exists(#pk)"), vec![])?);
            }
        }
        if let Some(seq) = w.settle {
            guards.push(ops.len());
            ops.push(self.update_op(
                &keys::delivery(id, seq),
                "SET #state = :delivered, #lease_until_ms = :zero REMOVE #gsi1pk, #gsi1sk",
                "attribute_exists(#pk) AND #state <> :delivered",
                vec![
                    val(":delivered", state_value(&DeliveryState::Delivered)),
                    val(":zero", n(0)),
                ],
            )?);
        }
        if ops.is_empty() {
            return Ok(ChangeOutcome::Applied);
        }
        match self.transact("apply", ops).await? {
            Tx::Committed => Ok(ChangeOutcome::Applied),
            // Caught in another transaction: nothing was written, and whether the change still
            // applies is the caller's to decide on a fresh read (`retry::CONFLICT`), not ours.
            Tx::Contended => Ok(ChangeOutcome::Conflict),
            Tx::ConditionFailed(f) if w.marker.is_some() && failed_at(&f, 0) => {
                Ok(ChangeOutcome::Duplicate)
            }
            Tx::ConditionFailed(f) if guards.iter().any(|&i| failed_at(&f, i)) => {
                Ok(ChangeOutcome::Conflict)
            }
            // The version matched yet a next sequence number was taken: the deliveries and the
            // assessment disagree.
            Tx::ConditionFailed(_) => Err(StoreError::Corrupt(
                "delivery already exists for the next update_seq".into(),
            )),
        }
    }
}

/// The assessment update of a change (conditional on `:expected`), `last_seq` being the new
/// `update_seq`; with its values.
fn change_update(c: &Change, last_seq: u64) -> StoreResult<(String, Vec<Value>)> {
    let mut set = vec!["#status = :status", "#update_seq = :seq", BUMP];
    let mut values = vec![
        val(":expected", n(c.expected_version)),
        val(":expected_seq", n(c.expected_update_seq)),
        val(":status", s(c.status.as_str())),
        val(":seq", n(last_seq)),
        val(":now", n(c.now_ms)),
        val(":one", n(1)),
    ];
    if let Some(label) = &c.status_label {
        set.push("#status_label = :label");
        values.push(val(":label", s(label)));
    }
    if let Some(message) = &c.rejection_message {
        set.push("#rejection_message = :rejection");
        values.push(val(":rejection", s(message)));
    }
    if let Some(reference) = &c.vendor_reference {
        set.push("#vendor_reference = :reference");
        values.push(val(":reference", s(reference)));
    }
    if let Some(ts) = c.update_ms {
        set.push("#last_update_ms = :update_ms");
        values.push(val(":update_ms", n(ts)));
    }
    if let Some(summary) = &c.summary {
        set.push("#summary = :summary");
        values.push(val(":summary", s(summary_text(summary)?)));
    }
    if let Some(error) = &c.ats_error {
        set.push("#ats_errors = if_not_exists(#ats_errors, :zero) + :one");
        set.push("#last_ats_error = :ats_error");
        values.push(val(":zero", n(0)));
        values.push(val(":ats_error", s(error)));
    }
    let remove = if c.status_label.is_none() {
        " REMOVE #status_label"
    } else {
        ""
    };
    Ok((format!("SET {}{remove}", set.join(", ")), values))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::domain::Status;

    #[test]
    fn a_change_sets_only_what_it_carries() {
        let mut c = Change {
            expected_version: 3,
            expected_update_seq: 1,
            status: Status::Completed,
            status_label: None,
            rejection_message: None,
            vendor_reference: None,
            now_ms: Timestamp::from_ms(5),
            deliveries: vec![],
            update_ms: None,
            summary: None,
            ats_error: None,
        };
        let (update, _) = change_update(&c, 2).expect("update");
        assert_eq!(
            update,
            format!("SET #status = :status, #update_seq = :seq, {BUMP} REMOVE #status_label")
        );
        c.status_label = Some("Done".into());
        c.vendor_reference = Some("ACME-1".into());
        c.update_ms = Some(Timestamp::from_ms(6));
        let (update, values) = change_update(&c, 2).expect("update");
        assert!(!update.contains("REMOVE") && !update.contains("#rejection_message"));
        for set in ["#status_label = :label", "#vendor_reference = :reference"] {
            assert!(update.contains(set), "{update}");
        }
        assert!(values.contains(&val(":update_ms", n(6))));
    }

    #[test]
    fn all_statuses_is_complete() {
        // Exhaustive: adding a status stops this compiling, as a reminder to extend the list.
        let index = |s: Status| match s {
            Status::Ordering => 0,
            Status::Ordered => 1,
            Status::InProgress => 2,
            Status::Completed => 3,
            Status::Cancelled => 4,
            Status::Failed => 5,
            Status::Expired => 6,
            Status::Rejected => 7,
        };
        for (i, s) in Status::ALL.into_iter().enumerate() {
            assert_eq!(index(s), i);
        }
    }
}
