//! `POST /assessment.start`: record the assessment, order it at the vendor, answer Ashby.
//!
//! Idempotency: the start key (tenant, application, assessment type) is taken with a conditional
//! write together with the assessment record, so of two identical starts only one creates an
//! assessment; the other finds it. Only the holder of the order lease sends the vendor order, so
//! concurrent or retried starts place one order, and the vendor can still deduplicate on
//! `assessment_id` and the stable `webhook-id` if a timed-out order did arrive.

use std::time::Duration;

use anyhow::Context;
use http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::app::{App, now_ms};
use crate::ashby::{StartRequest, StartResponse, StartResults, UpdateRequest};
use crate::domain::{Assessment, AssessmentId, Candidate, PackageRef, Status, Tenant, Vendor};
use crate::error::{ApiError, json_response};
use crate::store::{CreateOutcome, NewAssessment, StartKey};
use crate::vendor::{
    ORDER_TYPE, OrderJob, OrderRequest, VendorError, VendorReply, order_message_id,
};

/// The status Ashby is told when an order is placed; "Started" makes Ashby record the start time.
pub const STARTED_LABEL: &str = "Started";

const MAX_FIELD: usize = 2048;

/// How long a repeated start waits for a concurrent one to finish ordering.
const MAX_RESUME_WAIT_MS: i64 = 8_000;

pub async fn handle(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let tenant = super::authenticate(app, req).await?;
    let start: StartRequest = super::parse_json(super::body_bytes(req)?)?;
    validate(&start)?;
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
    let lease = lease_ms(app);
    let id = AssessmentId::new();
    let new = NewAssessment {
        assessment: Assessment {
            id,
            tenant_id: tenant.id.clone(),
            vendor_id: vendor.id.clone(),
            package_id: package.package.clone(),
            assessment_type_id: start.assessment_type_id,
            application_id: start.application.ashby_id.clone(),
            status: Status::Ordering,
            status_label: Some(STARTED_LABEL.into()),
            vendor_reference: None,
            rejection_message: None,
            created_at_ms: now,
            updated_at_ms: now,
            last_update_ms: now,
            update_seq: 0,
            order_lease_until_ms: now + lease,
            version: 1,
        },
        start_key: StartKey {
            tenant_id: tenant.id.clone(),
            application_id: start.application.ashby_id.clone(),
            assessment_type_id: start.assessment_type_id,
        },
        order_body: order_for(id)?,
        pii_expires_at_s: now / 1000 + app.config.pii_retention.as_secs() as i64,
    };
    match app.store.create_assessment(&new).await? {
        CreateOutcome::Created => {
            tracing::Span::current().record("assessment_id", id.to_string());
            tracing::info!(vendor = %vendor.id, "assessment created");
            place_order(app, &vendor, &new.assessment, &new.order_body).await
        }
        CreateOutcome::Existing(existing) => {
            tracing::Span::current().record("assessment_id", existing.id.to_string());
            tracing::info!("start repeated; resuming the live assessment");
            let fallback = order_for(existing.id)?;
            resume(app, &vendor, *existing, &fallback).await
        }
    }
}

fn validate(start: &StartRequest) -> Result<(), ApiError> {
    let fields = [
        ("candidate.ashby_id", &start.candidate.ashby_id, true),
        ("candidate.first_name", &start.candidate.first_name, false),
        ("candidate.last_name", &start.candidate.last_name, false),
        ("candidate.email", &start.candidate.email, true),
        (
            "candidate.ashby_profile_url",
            &start.candidate.ashby_profile_url,
            false,
        ),
        ("application.ashby_id", &start.application.ashby_id, true),
        ("job.ashby_id", &start.job.ashby_id, true),
        ("job.name", &start.job.name, false),
        ("job.ashby_job_url", &start.job.ashby_job_url, false),
    ];
    for (name, value, required) in fields {
        if required && value.trim().is_empty() {
            return Err(ApiError::bad_request(format!("{name} must not be empty")));
        }
        if value.len() > MAX_FIELD {
            return Err(ApiError::bad_request(format!(
                "{name} is longer than {MAX_FIELD} bytes"
            )));
        }
    }
    if start
        .job
        .req_id
        .as_ref()
        .is_some_and(|r| r.len() > MAX_FIELD)
    {
        return Err(ApiError::bad_request(format!(
            "job.req_id is longer than {MAX_FIELD} bytes"
        )));
    }
    Ok(())
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

fn lease_ms(app: &App) -> i64 {
    (app.config.vendor_call_budget() + Duration::from_secs(5)).as_millis() as i64
}

/// A start for an assessment that already exists: answer as the first start did, ordering only
/// if nobody has yet and nobody is doing it now.
async fn resume(
    app: &App,
    vendor: &Vendor,
    mut existing: Assessment,
    fallback_order: &str,
) -> Result<Response<Body>, ApiError> {
    // Bounded so that waiting plus ordering stays well inside API Gateway's 30 s limit.
    let deadline = now_ms() + MAX_RESUME_WAIT_MS.min(lease_ms(app));
    loop {
        match existing.status {
            Status::Ordering => {
                let now = now_ms();
                if app
                    .store
                    .claim_order(existing.id, now, now + lease_ms(app))
                    .await?
                {
                    let body = app
                        .store
                        .order_body(existing.id)
                        .await?
                        .unwrap_or_else(|| fallback_order.to_owned());
                    return place_order(app, vendor, &existing, &body).await;
                }
                if now > deadline {
                    return Err(ApiError::Unavailable {
                        status: StatusCode::SERVICE_UNAVAILABLE,
                        code: "start_in_progress",
                        message: "This assessment is still being ordered. Please try again in a \
                                  minute."
                            .into(),
                        detail: "order lease held past the wait deadline".into(),
                    });
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
                existing = app
                    .store
                    .assessment(existing.id)
                    .await?
                    .context("assessment vanished while its start was resumed")?;
            }
            Status::Rejected => {
                return Err(ApiError::Unprocessable {
                    code: "vendor_rejected",
                    message: existing
                        .rejection_message
                        .unwrap_or_else(|| "The provider could not accept this request.".into()),
                });
            }
            _ => return Ok(started(&existing)),
        }
    }
}

/// Sends the order (the caller holds the lease) and records what the vendor said.
async fn place_order(
    app: &App,
    vendor: &Vendor,
    assessment: &Assessment,
    body: &str,
) -> Result<Response<Body>, ApiError> {
    let id = assessment.id;
    let secret = match app.secrets.get(&app.names.signing_secret(&vendor.id)).await {
        Ok(s) => s.current,
        Err(e) => {
            release(app, id).await;
            return Err(e.into());
        }
    };
    let reply = app
        .vendors
        .send(
            &vendor.order_url,
            &secret,
            &order_message_id(id),
            body.as_bytes(),
        )
        .await;
    match reply {
        Ok(VendorReply::Accepted {
            vendor_reference, ..
        }) => {
            app.store
                .record_order_accepted(id, vendor_reference.as_deref(), now_ms())
                .await?;
            tracing::info!("vendor accepted the order");
            Ok(started(assessment))
        }
        Ok(VendorReply::Rejected { message }) => {
            app.store
                .record_order_rejected(id, &message, now_ms())
                .await?;
            tracing::info!("vendor rejected the order");
            Err(ApiError::Unprocessable {
                code: "vendor_rejected",
                message,
            })
        }
        Err(e) => {
            release(app, id).await;
            let (status, code, message) = match e {
                VendorError::Unavailable { .. } => (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "vendor_unavailable",
                    format!(
                        "{} is not responding right now. Please try starting the assessment \
                         again in a few minutes.",
                        vendor.name
                    ),
                ),
                VendorError::Refused(_) | VendorError::BadSecret => (
                    StatusCode::BAD_GATEWAY,
                    "vendor_error",
                    format!(
                        "{} could not accept the order because of a configuration problem. \
                         Please contact your integration administrator.",
                        vendor.name
                    ),
                ),
            };
            Err(ApiError::Unavailable {
                status,
                code,
                message,
                detail: e.to_string(),
            })
        }
    }
}

async fn release(app: &App, id: AssessmentId) {
    if let Err(e) = app.store.release_order(id).await {
        // The lease expires on its own; a retried start waits for that.
        tracing::warn!(error = %e, "could not release the order lease");
    }
}

/// Ashby's 200 for a placed order: the id, and the current status as an `assessment.update`.
fn started(a: &Assessment) -> Response<Body> {
    let label = a.status_label.as_deref().unwrap_or(STARTED_LABEL);
    json_response(
        StatusCode::OK,
        &StartResponse {
            success: true,
            results: StartResults {
                assessment_id: a.id,
                update_request: Some(UpdateRequest::status(a.id, a.last_update_ms, label)),
            },
        },
    )
}
