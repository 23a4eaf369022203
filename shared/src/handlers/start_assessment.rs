//! `POST /assessment.start`: record the assessment with its vendor order, try the order at once,
//! answer Ashby.
//!
//! Idempotency: the start key (tenant, application, assessment type) is taken with a conditional
//! write together with the assessment record and its order delivery, so of two identical starts
//! only one creates an assessment; the other finds it. The order is a durable delivery: only the
//! holder of its lease sends it, so concurrent or retried starts place one order, and a vendor
//! that is down gets the order later from the delivery queue (Ashby is told it is queued, then
//! "Started" or why not).

use std::time::Duration;

use anyhow::Context;
use http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::app::{App, now_ms};
use crate::ashby::{StartRequest, StartResponse, StartResults, UpdateRequest};
use crate::delivery::{Announce, Attempt, attempt, lease};
use crate::domain::{
    Assessment, AssessmentId, Candidate, Delivery, DeliveryKind, DeliveryState, NewDelivery,
    PackageRef, Status, Tenant, Vendor,
};
use crate::error::{ApiError, json_response};
use crate::metrics::names;
use crate::store::{CreateOutcome, NewAssessment, Retry, StartKey};
use crate::vendor::{ORDER_TYPE, OrderJob, OrderRequest};

/// The status Ashby is told when an order is placed; "Started" makes Ashby record the start time.
pub const STARTED_LABEL: &str = "Started";

/// The status Ashby is told while the order waits in the delivery queue.
pub const QUEUED_LABEL: &str = "Queued: the provider is not reachable yet; the hub keeps trying";

/// How long a repeated start waits for a concurrent one to finish ordering.
const MAX_RESUME_WAIT_MS: i64 = 8_000;

pub async fn handle(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let tenant = super::authenticate(app, req).await?;
    let start: StartRequest = super::parse_json(super::body_bytes(req)?)?;
    start.validate()?;
    let (package, vendor) = resolve_package(app, &tenant, &start).await?;
    let callback_url = callback_url(app, req, &vendor)?;
    let order_for = |id: AssessmentId| -> Result<String, ApiError> {
        let order = OrderRequest {
            kind: ORDER_TYPE.into(),
            assessment_id: id,
            package_id: package.package.clone(),
            candidate: Candidate {
                first_name: start.candidate.first_name.clone(),
                last_name: start.candidate.last_name.clone(),
                email: start.candidate.email.clone(),
            },
            application_id: start.application.ashby_id.clone(),
            job: OrderJob {
                id: start.job.ashby_id.clone(),
                name: start.job.name.clone(),
                req_id: start.job.req_id.clone(),
            },
            callback_url: callback_url.clone(),
        };
        Ok(serde_json::to_string(&order).context("serialising an order")?)
    };

    let now = now_ms();
    let id = AssessmentId::new();
    let order_body = order_for(id)?;
    let leased_until = now + lease(app).as_millis() as i64;
    let new = NewAssessment {
        assessment: Assessment {
            id,
            tenant_id: tenant.id.clone(),
            vendor_id: vendor.id.clone(),
            package_id: package.package.clone(),
            assessment_type_id: start.assessment_type_id,
            application_id: start.application.ashby_id.clone(),
            status: Status::Ordering,
            status_label: None,
            vendor_reference: None,
            rejection_message: None,
            created_at_ms: now,
            updated_at_ms: now,
            last_update_ms: now,
            update_seq: 0,
            version: 1,
        },
        start_key: StartKey {
            tenant_id: tenant.id.clone(),
            application_id: start.application.ashby_id.clone(),
            assessment_type_id: start.assessment_type_id,
        },
        order: NewDelivery {
            kind: DeliveryKind::VendorOrder,
            body: order_body.clone(),
            next_attempt_ms: now,
            leased_until_ms: leased_until,
            expires_at_s: Some(now / 1000 + app.config.pii_retention.as_secs() as i64),
        },
    };
    match app.store.create_assessment(&new).await? {
        CreateOutcome::Created => {
            tracing::Span::current().record("assessment_id", id.to_string());
            tracing::info!(vendor = %vendor.id, "assessment created");
            app.metrics.count(names::ASSESSMENTS_STARTED, 1);
            let order = Delivery {
                assessment_id: id,
                seq: 1,
                kind: DeliveryKind::VendorOrder,
                body: order_body,
                state: DeliveryState::Pending,
                attempts: 0,
                created_ms: now,
                next_attempt_ms: now,
                lease_until_ms: leased_until,
                last_error: None,
            };
            let mut assessment = new.assessment;
            assessment.update_seq = 1;
            order_now(app, &vendor, &assessment, &order).await
        }
        CreateOutcome::Existing(existing) => {
            tracing::Span::current().record("assessment_id", existing.id.to_string());
            tracing::info!("start repeated; resuming the live assessment");
            resume(app, &vendor, *existing).await
        }
    }
}

async fn resolve_package(
    app: &App,
    tenant: &Tenant,
    start: &StartRequest,
) -> Result<(PackageRef, Vendor), ApiError> {
    let not_enabled = || ApiError::Unprocessable {
        code: "assessment_type_not_enabled",
        message: "This assessment type is not available for your account. Ask your Ashby \
                  administrator to check the assessment integration settings, or pick another \
                  assessment."
            .into(),
    };
    let package = tenant
        .packages
        .iter()
        .find(|p| p.type_id() == start.assessment_type_id)
        .ok_or_else(not_enabled)?
        .clone();
    let vendor = app
        .store
        .vendor(&package.vendor)
        .await?
        .filter(|v| v.package(&package.package).is_some())
        .ok_or_else(not_enabled)?;
    tracing::Span::current().record("vendor", vendor.id.as_str());
    Ok((package, vendor))
}

/// Where the vendor posts results: the configured public URL, else the host this request came in
/// on (API Gateway's domain or the custom domain in front of it).
fn callback_url(app: &App, req: &Request, vendor: &Vendor) -> Result<String, ApiError> {
    let base = match &app.config.public_url {
        Some(u) => u.as_str().trim_end_matches('/').to_owned(),
        None => {
            let host = req
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| {
                    !h.is_empty()
                        && h.len() <= 253
                        && h.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
                })
                .ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!(
                        "cannot derive the callback URL: no usable Host header; set HUB_PUBLIC_URL"
                    ))
                })?;
            let proto = match req
                .headers()
                .get("x-forwarded-proto")
                .and_then(|h| h.to_str().ok())
            {
                Some("http") => "http",
                _ => "https",
            };
            format!("{proto}://{host}")
        }
    };
    Ok(format!("{base}/callbacks/{}", vendor.id))
}

/// A start for an assessment that already exists: answer as the first start did. If its order is
/// being sent by a concurrent start, wait (bounded) for the vendor's answer; if it is queued and
/// nobody holds it, try it once more now.
async fn resume(
    app: &App,
    vendor: &Vendor,
    mut existing: Assessment,
) -> Result<Response<Body>, ApiError> {
    // Bounded so that waiting plus ordering stays well inside API Gateway's 30 s limit.
    let deadline = now_ms() + MAX_RESUME_WAIT_MS;
    loop {
        if existing.status != Status::Ordering {
            return answer(&existing);
        }
        let order = app
            .store
            .open_deliveries(existing.id)
            .await?
            .into_iter()
            .find(|d| d.kind == DeliveryKind::VendorOrder && d.state == DeliveryState::Pending);
        let Some(order) = order else {
            return answer(&existing);
        };
        let now = now_ms();
        if order.lease_until_ms <= now {
            let until = now + lease(app).as_millis() as i64;
            if app
                .store
                .claim_delivery(existing.id, order.seq, now, until)
                .await?
            {
                return order_now(app, vendor, &existing, &order).await;
            }
        }
        if now > deadline {
            return answer(&existing);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        existing = app
            .store
            .assessment(existing.id)
            .await?
            .context("assessment vanished while its start was resumed")?;
    }
}

/// Tries the order (the caller holds its lease) and answers Ashby: started, refused by the vendor
/// (422, the vendor's words), or queued for the delivery queue to retry.
async fn order_now(
    app: &App,
    vendor: &Vendor,
    assessment: &Assessment,
    order: &Delivery,
) -> Result<Response<Body>, ApiError> {
    match attempt(app, assessment, order, Some(vendor), Announce::No).await? {
        Attempt::Delivered => {
            let mut a = assessment.clone();
            a.status = Status::Ordered;
            answer(&a)
        }
        Attempt::Rejected(message) => Err(ApiError::Unprocessable {
            code: "vendor_rejected",
            message,
        }),
        Attempt::Failed {
            retry: Retry::At(_),
            ..
        } => {
            tracing::info!("vendor unavailable; the order is queued");
            answer(assessment)
        }
        Attempt::Failed { error, .. } => Err(ApiError::Unavailable {
            status: StatusCode::BAD_GATEWAY,
            code: "vendor_error",
            message: format!(
                "{} could not accept the order because of a configuration problem. Please \
                 contact your integration administrator.",
                vendor.name
            ),
            detail: error,
        }),
    }
}

/// Ashby's answer for an assessment as it stands: 200 with its id and current status, or the
/// vendor's refusal.
fn answer(a: &Assessment) -> Result<Response<Body>, ApiError> {
    let label = match a.status {
        Status::Rejected => {
            return Err(ApiError::Unprocessable {
                code: "vendor_rejected",
                message: a
                    .rejection_message
                    .clone()
                    .unwrap_or_else(|| "The provider could not accept this request.".into()),
            });
        }
        Status::Ordering => QUEUED_LABEL,
        _ => a.status_label.as_deref().unwrap_or(STARTED_LABEL),
    };
    Ok(json_response(
        StatusCode::OK,
        &StartResponse {
            success: true,
            results: StartResults {
                assessment_id: a.id,
                update_request: Some(UpdateRequest::status(a.id, a.last_update_ms, label)),
            },
        },
    ))
}
