//! `POST /assessment.cancel`: record the cancellation together with the vendor cancel it owes,
//! try the vendor at once, answer Ashby. The cancel is durable: a vendor that is down gets it from
//! the delivery queue, and an order still queued is withdrawn instead of sent. Idempotent:
//! cancelling a cancelled (or otherwise finished) assessment answers 200 and queues nothing.

use http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::app::{App, now_ms};
use crate::ashby::{CancelRequest, StartResponse, StartResults};
use crate::delivery::{Announce, Party, flush};
use crate::domain::{AssessmentId, CancelEffect, DeliveryKind, NewDelivery, Status, on_cancel};
use crate::error::{ApiError, json_response};
use crate::ports::{Change, ChangeOutcome, ChangeWrite, StoreError};
use crate::vendors::CancelOrder;

/// Attempts at recording a cancel when concurrent writers keep changing the assessment.
const MAX_CONFLICTS: usize = 8;

pub async fn handle(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let tenant = super::authenticate(app, req).await?;
    let body: CancelRequest = super::parse_json(super::body_bytes(req)?)?;
    let id = AssessmentId::parse(&body.assessment_id)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    tracing::Span::current().record("assessment_id", id.to_string());
    let not_found = || ApiError::NotFound {
        code: "assessment_not_found",
        message: "No assessment with this id exists for this account.".into(),
    };
    let cancel_body =
        serde_json::to_string(&CancelOrder::new(id)).map_err(|e| ApiError::Internal(e.into()))?;
    let mut recorded = false;
    for _ in 0..MAX_CONFLICTS {
        // Another tenant's assessment is answered exactly like one that does not exist.
        let assessment = app
            .store
            .assessment(id)
            .await?
            .filter(|a| a.tenant_id == tenant.id)
            .ok_or_else(not_found)?;
        if on_cancel(assessment.status) == CancelEffect::AlreadyFinished {
            recorded = true;
            break;
        }
        let now = now_ms();
        let write = ChangeWrite {
            assessment_id: id,
            marker: None,
            change: Some(Change {
                expected_version: assessment.version,
                expected_update_seq: assessment.update_seq,
                status: Status::Cancelled,
                status_label: None,
                rejection_message: None,
                vendor_reference: None,
                now_ms: now,
                deliveries: vec![NewDelivery {
                    kind: DeliveryKind::VendorCancel,
                    body: cancel_body.clone(),
                    next_attempt_ms: now,
                    leased_until_ms: crate::clock::Timestamp::EPOCH,
                    expires_at_s: None,
                }],
                update_ms: None,
            }),
            settle: None,
        };
        if app.store.apply(&write).await? == ChangeOutcome::Applied {
            tracing::info!("assessment cancelled");
            // Committed: a failure from here on is the queue's to retry, not Ashby's.
            match flush(
                app,
                id,
                Some(&assessment),
                Party::Vendor,
                Announce::No,
                true,
            )
            .await
            {
                Ok(r) if r.delivered > 0 => {}
                Ok(_) => tracing::info!("vendor cancel queued for retry"),
                Err(e) => tracing::warn!(error = %e, "vendor cancel queued for retry"),
            }
            recorded = true;
            break;
        }
    }
    if !recorded {
        return Err(StoreError::Unavailable("too many concurrent changes".into()).into());
    }
    Ok(json_response(
        StatusCode::OK,
        &StartResponse {
            success: true,
            results: StartResults {
                assessment_id: id,
                update_request: None,
            },
        },
    ))
}
