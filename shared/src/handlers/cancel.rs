//! `POST /assessment.cancel`: stop the check at the vendor, record it, answer Ashby. Idempotent:
//! cancelling a cancelled (or otherwise finished) assessment answers 200 and calls nobody.

use http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::app::{App, now_ms};
use crate::ashby::{CancelRequest, StartResponse, StartResults};
use crate::domain::{AssessmentId, CancelEffect, on_cancel};
use crate::error::{ApiError, json_response};
use crate::vendor::{CancelOrder, VendorError, VendorReply, cancel_message_id};

pub async fn handle(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let tenant = super::authenticate(app, req).await?;
    let body: CancelRequest = super::parse_json(super::body_bytes(req)?)?;
    let id = AssessmentId::parse(&body.assessment_id)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    tracing::Span::current().record("assessment_id", id.to_string());
    // Another tenant's assessment is answered exactly like one that does not exist.
    let assessment = app
        .store
        .assessment(id)
        .await?
        .filter(|a| a.tenant_id == tenant.id)
        .ok_or_else(|| ApiError::NotFound {
            code: "assessment_not_found",
            message: "No assessment with this id exists for this account.".into(),
        })?;
    if on_cancel(assessment.status) == CancelEffect::CancelAtVendor {
        let vendor = app
            .store
            .vendor(&assessment.vendor_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("vendor of a live assessment is missing"))?;
        tracing::Span::current().record("vendor", vendor.id.as_str());
        let secret = app
            .secrets
            .get(&app.names.signing_secret(&vendor.id))
            .await?
            .current;
        let body =
            serde_json::to_vec(&CancelOrder::new(id)).map_err(|e| ApiError::Internal(e.into()))?;
        match app
            .vendors
            .send(&vendor.order_url, &secret, &cancel_message_id(id), &body)
            .await
        {
            // 404: the vendor never had it (an order that timed out), so there is nothing to stop.
            Ok(VendorReply::Accepted { .. }) | Err(VendorError::Refused(404)) => {}
            Ok(VendorReply::Rejected { message }) => {
                return Err(ApiError::Unprocessable {
                    code: "vendor_refused_cancel",
                    message,
                });
            }
            Err(e @ VendorError::Unavailable { .. }) => {
                return Err(ApiError::Unavailable {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "vendor_unavailable",
                    message: format!(
                        "{} is not responding right now, so the assessment is not cancelled yet. \
                         Please try again in a few minutes.",
                        vendor.name
                    ),
                    detail: e.to_string(),
                });
            }
            Err(e) => {
                return Err(ApiError::Unavailable {
                    status: StatusCode::BAD_GATEWAY,
                    code: "vendor_error",
                    message: format!(
                        "{} could not process the cancellation because of a configuration \
                         problem. Please contact your integration administrator.",
                        vendor.name
                    ),
                    detail: e.to_string(),
                });
            }
        }
        let changed = app.store.record_cancelled(id, now_ms()).await?;
        tracing::info!(changed, "assessment cancelled");
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
