//! The ATS cancels an assessment: record the cancellation together with the vendor cancel it
//! owes, then try the vendor at once. The cancel is durable: a vendor that is down gets it from
//! the delivery queue, and an order still queued is withdrawn instead of sent. Idempotent:
//! cancelling a cancelled (or otherwise finished) assessment changes and queues nothing.

use super::deliver::{Due, Flush, Lane, Lanes, flush};
use super::order::Announce;
use crate::app::App;
use crate::domain::{
    AssessmentId, CancelEffect, DeliveryKind, NewDelivery, Tenant, cancelled_by_ats, on_cancel,
};
use crate::ports::{StoreError, StoreResult};

/// What a cancel came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancelled {
    /// Recorded now (or it was already over): the ATS may consider it cancelled.
    Done,
    /// No assessment with this id belongs to this tenant (another tenant's is answered the same
    /// way as one that does not exist).
    NotFound,
}

pub async fn cancel(app: &App, tenant: &Tenant, id: AssessmentId) -> StoreResult<Cancelled> {
    let Some(first) = app
        .store
        .assessment(id)
        .await?
        .filter(|a| a.tenant_id == tenant.id)
    else {
        return Ok(Cancelled::NotFound);
    };
    let cancel_body = app
        .vendors
        .cancel_body(id)
        .map_err(|e| StoreError::Corrupt(format!("serialising a cancel: {e}")))?;
    let now = app.clock.now();
    let recorded = super::record(app, id, Some(first), None, None, |a| {
        Ok(match on_cancel(a.status) {
            CancelEffect::AlreadyFinished => None,
            CancelEffect::CancelAtVendor => Some((
                cancelled_by_ats(),
                vec![NewDelivery {
                    kind: DeliveryKind::VendorCancel,
                    body: cancel_body.clone(),
                    next_attempt_ms: now,
                    leased_until_ms: crate::clock::Timestamp::EPOCH,
                    expires_at_s: None,
                }],
            )),
        })
    })
    .await?;
    let Some(recorded) = recorded else {
        return Ok(Cancelled::NotFound);
    };
    if recorded.moved.is_some() {
        tracing::info!("assessment cancelled");
        // Committed: a failure from here on is the queue's to retry, not the ATS's.
        let how = Flush {
            lanes: Lanes::Only(Lane::Vendor),
            announce: Announce::No,
            due: Due::Now,
        };
        match flush(app, id, Some(&recorded.assessment), how).await {
            Ok(r) if r.delivered > 0 => {}
            Ok(_) => tracing::info!("vendor cancel queued for retry"),
            Err(e) => tracing::warn!(error = %e, "vendor cancel queued for retry"),
        }
    }
    Ok(Cancelled::Done)
}
