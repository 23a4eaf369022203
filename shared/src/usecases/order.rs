//! An order's end: the vendor's answer settles the order delivery and moves the assessment
//! (accepted → ordered, refused → rejected), or the hub gives up once the order could not be
//! placed within the maximum age (→ failed). The delivery queue calls these; the lifecycle
//! (`domain::on_order_answer`) decides what each answer does and what the ATS is told.

use crate::app::App;
use crate::domain::{AssessmentId, OrderAnswer, on_order_answer};
use crate::ports::StoreResult;

/// Whether the vendor's answer to an order must also be told to the ATS. A start request answers
/// Ashby itself; an order placed later from the queue must say "Started" (or why not) by update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Announce {
    No,
    Yes,
}

/// Records the vendor's answer to the order (delivery `seq`) and settles that delivery in one
/// write. A callback that overtook the acknowledgement already moved the assessment on: that is
/// kept, and only the delivery is settled.
pub async fn settle(
    app: &App,
    id: AssessmentId,
    seq: u64,
    announce: Announce,
    answer: OrderAnswer,
) -> StoreResult<()> {
    super::record(app, id, None, None, Some(seq), |a| {
        Ok(on_order_answer(a.status, &answer, announce == Announce::Yes).map(|t| (t, vec![])))
    })
    .await?;
    Ok(())
}

/// The order could not be placed within the maximum age: the assessment failed, and the ATS,
/// which was told it is queued, is told so.
pub async fn give_up(app: &App, id: AssessmentId) -> StoreResult<()> {
    super::record(app, id, None, None, None, |a| {
        Ok(on_order_answer(a.status, &OrderAnswer::Abandoned, true).map(|t| (t, vec![])))
    })
    .await?;
    Ok(())
}
