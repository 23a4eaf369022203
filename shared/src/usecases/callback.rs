//! A vendor reports progress or a result. Order of work: find the vendor; verify the signature
//! over the raw body and parse it (the vendor port, the only maker of a `VerifiedCallback`);
//! apply the transition together with the `webhook-id` marker and the ATS update it owes (one
//! atomic write); then one immediate try at the ATS. An update the ATS did not take stays in the
//! delivery queue and the scheduled run retries it: the vendor need not retry anything.

use http::HeaderMap;

use super::deliver::{Due, Flush, Lane, Lanes, flush};
use super::order::Announce;
use crate::app::App;
use crate::clock::Timestamp;
use crate::domain::{
    Assessment, Attachment, DeliveryKind, FileDelivery, NewDelivery, Status, VendorId,
    on_vendor_update,
};
use crate::ports::{ChangeOutcome, StoreError, WebhookMarker};
use crate::vendors::CallbackError;

/// Why a callback was not applied.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// No such vendor, or no such assessment of this vendor (answered alike).
    #[error("unknown {0}")]
    Unknown(&'static str),
    /// The signature or the body did not check out, or the secret store is unavailable.
    #[error(transparent)]
    Callback(#[from] CallbackError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One delivery per report file, written with the completion: each is put on the candidate in
/// the ATS by the delivery queue, on a lane of its own, so that a file that fails does not hold
/// back the result (whose update goes out at once).
fn file_deliveries(
    a: &Assessment,
    attachments: &[Attachment],
    now: Timestamp,
) -> Result<Vec<NewDelivery>, StoreError> {
    if attachments.is_empty() {
        return Ok(vec![]);
    }
    let Some(candidate_id) = &a.candidate_id else {
        tracing::warn!(
            files = attachments.len(),
            "no ATS candidate id (an ATS that takes no files, or an assessment recorded before \
             the hub kept it): its report files are not uploaded"
        );
        return Ok(vec![]);
    };
    attachments
        .iter()
        .map(|attachment| {
            let body = serde_json::to_string(&FileDelivery {
                candidate_id: candidate_id.clone(),
                attachment: attachment.clone(),
            })
            .map_err(|e| StoreError::Corrupt(format!("serialising a file delivery: {e}")))?;
            Ok(NewDelivery {
                kind: DeliveryKind::AtsFile,
                body,
                next_attempt_ms: now,
                leased_until_ms: Timestamp::EPOCH,
                expires_at_s: None,
            })
        })
        .collect()
}

/// What an applied callback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// `Duplicate` when this `webhook-id` was processed before.
    pub outcome: ChangeOutcome,
    /// Where the assessment moved, if anywhere.
    pub moved: Option<Status>,
}

pub async fn receive(
    app: &App,
    vendor_id: &VendorId,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Applied, Refused> {
    let vendor = app
        .store
        .vendor(vendor_id)
        .await?
        .ok_or(Refused::Unknown("vendor"))?;
    tracing::Span::current().record("vendor", vendor.id.as_str());
    let now = app.clock.now();
    let cb = app.vendors.receive(&vendor, headers, body, now).await?;
    let id = cb.assessment_id();
    tracing::Span::current().record("assessment_id", id.to_string());

    // Another vendor's assessment is answered exactly like one that does not exist.
    let assessment = app
        .store
        .assessment(id)
        .await?
        .filter(|a| a.vendor_id == vendor.id)
        .ok_or(Refused::Unknown("assessment"))?;
    let marker = WebhookMarker {
        vendor_id: vendor.id.clone(),
        webhook_id: cb.webhook_id().to_owned(),
        expires_at_s: (now + app.config.webhook_retention).as_secs(),
    };
    let recorded = super::record(app, id, Some(assessment), Some(&marker), None, |a| {
        let Some(t) = on_vendor_update(a.status, a.status_label.as_deref(), cb.update()) else {
            return Ok(None);
        };
        let files = if t.status == Status::Completed {
            file_deliveries(a, &cb.update().attachments, now)?
        } else {
            vec![]
        };
        Ok(Some((t, files)))
    })
    .await?
    .ok_or(Refused::Unknown("assessment"))?;
    tracing::info!(
        outcome = ?recorded.outcome,
        to = recorded.moved.map(Status::as_str).unwrap_or("-"),
        "callback recorded"
    );
    // The news is stored and its ATS update queued: the vendor is done, whatever the ATS does
    // now. Try the update at once; the scheduled run retries it if the ATS is down.
    if recorded.moved.is_some() {
        let how = Flush {
            lanes: Lanes::Only(Lane::Ats),
            announce: Announce::Yes,
            due: Due::WhenDue,
        };
        // Committed: a failure from here on is the queue's to retry, not the vendor's.
        match flush(app, id, Some(&recorded.assessment), how).await {
            Ok(r) if r.delivered == 0 && r.in_flight == 0 => {
                tracing::info!("ATS update queued for retry")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "ATS update queued for retry"),
        }
    }
    Ok(Applied {
        outcome: recorded.outcome,
        moved: recorded.moved,
    })
}
