//! `POST /callbacks/{vendor_id}`: a vendor reports progress or a result.
//!
//! Order of work: verify the signature over the raw body; parse; apply the transition together
//! with the `webhook-id` marker and the Ashby update it owes (one atomic write); answer 200 once
//! that write succeeded, after one immediate try at Ashby. An update Ashby did not take stays in
//! the delivery queue and the scheduled run retries it: the vendor need not retry anything.

use http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

use crate::app::{App, now_ms};
use crate::ashby::{DataField, UpdateRequest};
use crate::delivery::{Announce, Party, ashby_delivery, flush};
use crate::domain::{Assessment, CallbackEffect, IN_PROGRESS_LABEL, Status, VendorId, on_callback};
use crate::error::{ApiError, json_response};
use crate::metrics::{dimensions, names};
use crate::secrets::SecretError;
use crate::store::{Change, ChangeOutcome, ChangeWrite, StoreError, WebhookMarker};
use crate::vendor::{Callback, CallbackError, parse_callback, verify_signature};

/// Attempts at applying a callback when concurrent writers keep changing the assessment.
const MAX_CONFLICTS: usize = 8;

fn vendor_id_from(req: &Request) -> Option<String> {
    if let Some(id) = req.path_parameters_ref().and_then(|p| p.first("vendor_id")) {
        return Some(id.to_owned());
    }
    // Function URLs and the local hub carry no path parameters: take the last path segment.
    let path = req.uri().path();
    let (_, rest) = path.split_once("/callbacks/")?;
    Some(rest.trim_end_matches('/').to_owned())
}

fn unknown(what: &str) -> ApiError {
    ApiError::NotFound {
        code: "not_found",
        message: format!("unknown {what}"),
    }
}

pub async fn handle(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let outcome = receive(app, req).await;
    match &outcome {
        Ok(_) => app.metrics.count(names::CALLBACKS_ACCEPTED, 1),
        Err(e) => app.metrics.count_with(
            names::CALLBACKS_REJECTED,
            dimensions::REASON,
            match e {
                ApiError::BadSignature(_) => "invalid_signature",
                ApiError::BadRequest(_) => "invalid_input",
                ApiError::NotFound { .. } => "not_found",
                ApiError::PayloadTooLarge(_) => "payload_too_large",
                _ => "hub_error",
            },
            1,
        ),
    }
    outcome
}

async fn receive(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let vendor_id = vendor_id_from(req)
        .and_then(|s| VendorId::parse(&s).ok())
        .ok_or_else(|| unknown("vendor"))?;
    let body = super::body_bytes(req)?;
    let vendor = app
        .store
        .vendor(&vendor_id)
        .await?
        .ok_or_else(|| unknown("vendor"))?;
    tracing::Span::current().record("vendor", vendor.id.as_str());
    let secrets = match app
        .secrets
        .versions(&app.names.signing_secret(&vendor.id))
        .await
    {
        Ok(s) => s.all(),
        Err(SecretError::NotFound(_)) => {
            tracing::error!("vendor has no signing secret; callbacks cannot be verified");
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    let verified = verify_signature(&secrets, req.headers(), body).map_err(callback_error)?;
    let cb = parse_callback(&verified).map_err(callback_error)?;
    tracing::Span::current().record("assessment_id", cb.assessment_id.to_string());

    // Another vendor's assessment is answered exactly like one that does not exist.
    let mut assessment = app
        .store
        .assessment(cb.assessment_id)
        .await?
        .filter(|a| a.vendor_id == vendor.id)
        .ok_or_else(|| unknown("assessment"))?;

    let marker = WebhookMarker {
        vendor_id: vendor.id.clone(),
        webhook_id: verified.webhook_id.clone(),
        expires_at_s: now_ms() / 1000 + app.config.webhook_retention.as_secs() as i64,
    };
    let mut outcome = None;
    for _ in 0..MAX_CONFLICTS {
        let change = change_for(&assessment, &cb)?;
        let to = change.as_ref().map(|c| c.status);
        let write = ChangeWrite {
            assessment_id: assessment.id,
            marker: Some(marker.clone()),
            change,
            settle: None,
        };
        match app.store.apply(&write).await? {
            ChangeOutcome::Conflict => {
                assessment = app
                    .store
                    .assessment(assessment.id)
                    .await?
                    .ok_or_else(|| unknown("assessment"))?;
            }
            done => {
                outcome = Some((done, to));
                break;
            }
        }
    }
    let Some((outcome, transition)) = outcome else {
        return Err(StoreError::Unavailable("too many concurrent updates".into()).into());
    };
    tracing::info!(
        outcome = ?outcome,
        to = transition.map(Status::as_str).unwrap_or("-"),
        "callback recorded"
    );
    // The news is stored and its Ashby update queued: the vendor is done, whatever Ashby does
    // now. Try the update at once; the scheduled run retries it if Ashby is down.
    if outcome == ChangeOutcome::Applied && transition.is_some() {
        // Committed: a failure from here on is the queue's to retry, not the vendor's.
        match flush(
            app,
            assessment.id,
            Some(&assessment),
            Party::Ashby,
            Announce::Yes,
            false,
        )
        .await
        {
            Ok(r) if r.delivered == 0 && r.in_flight == 0 => {
                tracing::info!("Ashby update queued for retry")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "Ashby update queued for retry"),
        }
    }
    Ok(json_response(StatusCode::OK, &json!({ "success": true })))
}

fn callback_error(e: CallbackError) -> ApiError {
    match e {
        CallbackError::Signature(reason) => ApiError::BadSignature(reason),
        CallbackError::Invalid(m) => ApiError::BadRequest(m),
    }
}

/// The write a callback makes on this version of the assessment, with the update it owes Ashby.
fn change_for(a: &Assessment, cb: &Callback) -> Result<Option<Change>, ApiError> {
    let CallbackEffect::Transition(status) = on_callback(
        a.status,
        a.status_label.as_deref(),
        cb.status,
        cb.status_label.as_deref(),
        !cb.metadata.is_empty(),
    ) else {
        return Ok(None);
    };
    let now = now_ms();
    // Strictly increasing per assessment, so Ashby can order updates by `timestamp`.
    let ts = now.max(a.last_update_ms + 1);
    let label = cb.status_label.clone();
    let (update, stored_label) = match status {
        Status::InProgress => {
            let l = label.unwrap_or_else(|| IN_PROGRESS_LABEL.into());
            let mut u = UpdateRequest::status(a.id, ts, &l);
            u.metadata = cb.metadata.clone();
            (u, Some(l))
        }
        Status::Completed => {
            let l = label.unwrap_or_else(|| "Completed".into());
            let result = cb
                .result
                .clone()
                .unwrap_or_else(|| DataField::text(crate::ashby::RESULT_ID, "Result", l.clone()));
            let report = cb
                .report_url
                .as_ref()
                .map(|u| u.as_str().to_owned())
                .unwrap_or_default();
            (
                UpdateRequest::completed(a.id, ts, &l, result, &report, cb.metadata.clone()),
                Some(l),
            )
        }
        other => {
            let (title, default_reason) = match other {
                Status::Failed => ("Failed", "The provider could not complete the check."),
                Status::Expired => ("Expired", "The assessment expired before it was completed."),
                _ => ("Cancelled", "The provider cancelled the assessment."),
            };
            let reason = label.unwrap_or_else(|| default_reason.into());
            (
                UpdateRequest::cancelled(a.id, ts, title, &reason, cb.metadata.clone()),
                None,
            )
        }
    };
    Ok(Some(Change {
        expected_version: a.version,
        expected_update_seq: a.update_seq,
        status,
        status_label: stored_label,
        rejection_message: None,
        vendor_reference: None,
        now_ms: now,
        deliveries: vec![ashby_delivery(&update, now)?],
        update_ms: Some(ts),
    }))
}
