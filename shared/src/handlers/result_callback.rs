//! `POST /callbacks/{vendor_id}`: a vendor reports progress or a result. Parse the vendor id,
//! hand the raw body to `usecases::callback` (which verifies it before anything else), answer
//! 200 once the change is stored.

use http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

use crate::app::App;
use crate::domain::VendorId;
use crate::error::{ApiError, json_response};
use crate::metrics::{dimensions, names};
use crate::usecases::callback::{Refused, receive};
use crate::vendors::CallbackError;

pub struct ResultCallback;

impl super::Endpoint for ResultCallback {
    const NAME: &'static str = "result_callback";
    fn handle<'a>(
        app: &'a App,
        req: &'a Request,
    ) -> impl Future<Output = Result<Response<Body>, ApiError>> + Send + 'a {
        handle(app, req)
    }
}

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
    let outcome = accept(app, req).await;
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

async fn accept(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let vendor_id = vendor_id_from(req)
        .and_then(|s| VendorId::parse(&s).ok())
        .ok_or_else(|| unknown("vendor"))?;
    let body = super::body_bytes(req)?;
    receive(app, &vendor_id, req.headers(), body)
        .await
        .map_err(|e| match e {
            Refused::Unknown(what) => unknown(what),
            Refused::Callback(CallbackError::Signature(reason)) => ApiError::BadSignature(reason),
            Refused::Callback(CallbackError::Invalid(m)) => ApiError::BadRequest(m),
            Refused::Callback(CallbackError::Unavailable(e)) => e.into(),
            Refused::Store(e) => e.into(),
        })?;
    Ok(json_response(StatusCode::OK, &json!({ "success": true })))
}
