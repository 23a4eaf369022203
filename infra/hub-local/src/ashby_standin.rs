//! A stand-in for Ashby's `assessment.update`: checks the API key, the content type and every
//! body against Ashby's OpenAPI (schema and prose rules), prints what a recruiter would see, and
//! keeps the accepted updates for `GET /ashby/updates`.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

use crate::openapi::OpenApi;

pub struct AshbyStandIn {
    api: OpenApi,
    keys: HashSet<String>,
    accepted: Mutex<Vec<Value>>,
    quiet: bool,
}

impl AshbyStandIn {
    pub fn new(keys: impl IntoIterator<Item = String>, quiet: bool) -> anyhow::Result<Self> {
        Ok(Self {
            api: OpenApi::embedded()?,
            keys: keys.into_iter().collect(),
            accepted: Mutex::new(Vec::new()),
            quiet,
        })
    }

    /// Every update accepted so far, oldest first.
    pub fn accepted(&self) -> Vec<Value> {
        self.accepted.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn router(self: Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/ashby/assessment.update", post(update))
            .route("/ashby/updates", get(list))
            .with_state(self)
    }

    fn key_ok(&self, headers: &HeaderMap) -> bool {
        let Some(v) = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let Some(encoded) = v.strip_prefix("Basic ") else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        let text = String::from_utf8_lossy(&decoded);
        matches!(text.split_once(':'), Some((key, "")) if self.keys.contains(key))
    }
}

fn ashby_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"success": false, "errors": [code],
                    "errorInfo": {"code": code, "message": message}})),
    )
        .into_response()
}

async fn update(
    State(s): State<Arc<AshbyStandIn>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !s.key_ok(&headers) {
        return ashby_error(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "API key missing or invalid",
        );
    }
    match check(&s, &headers, &body) {
        Ok(v) => {
            if !s.quiet {
                println!(
                    "ashby <- assessment.update {}",
                    serde_json::to_string_pretty(&v).unwrap_or_default()
                );
            }
            if let Ok(mut a) = s.accepted.lock() {
                a.push(v);
            }
            Json(json!({"success": true, "results": {}})).into_response()
        }
        Err(errors) => {
            eprintln!("ashby REJECTED assessment.update: {}", errors.join("; "));
            // Ashby answers some errors with HTTP 200 and success:false; the hub must check it.
            ashby_error(StatusCode::OK, "invalid_input", &errors.join("; "))
        }
    }
}

fn check(s: &AshbyStandIn, headers: &HeaderMap, body: &[u8]) -> Result<Value, Vec<String>> {
    let json_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json_type {
        return Err(vec!["Content-Type must be application/json".into()]);
    }
    if !headers.contains_key(axum::http::header::USER_AGENT) {
        return Err(vec!["a User-Agent header is required".into()]);
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| vec![format!("body is not JSON: {e}")])?;
    s.api.check_update(&v)?;
    Ok(v)
}

async fn list(State(s): State<Arc<AshbyStandIn>>) -> Json<Vec<Value>> {
    Json(s.accepted())
}
