//! A stand-in for Ashby: `assessment.update`, whose every body it checks against Ashby's OpenAPI
//! (schema and prose rules), printing what a recruiter would see and keeping the accepted updates
//! for `GET /ashby/updates`; and the three steps that put a report file on a candidate
//! (`crate::ashby_files`, listed at `GET /ashby/files`). Every call must carry the tenant's API
//! key, a JSON content type, a User-Agent and the pinned `Ashby-Version`; every answer carries
//! `Ashby-Version` and `Ashby-Version-Status`, as Ashby's do.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::ashby_files::{AshbyFiles, ashby_error, basic_user, check_headers};
use crate::openapi::OpenApi;

/// The version the stand-in says it serves, and calls active.
pub const SERVED_VERSION: &str = "2026-01-01";

/// A demo key that works for updates but lacks `candidates:write` in what `apiKey.info` shows
/// (the connect page refuses to store it).
pub const DEMO_KEY_READ_ONLY: &str = "demo-ashby-key-read-only";
/// A demo key that works but may not read its own scopes: `apiKey.info` answers 403
/// `missing_endpoint_permission` (the connect page stores it with a warning).
pub const DEMO_KEY_NO_SCOPE_READ: &str = "demo-ashby-key-no-scope-read";

pub struct AshbyStandIn {
    api: OpenApi,
    extras: crate::openapi::Extras,
    /// Keys whose `apiKey.info` shows `candidates:read` only.
    read_only: HashSet<String>,
    /// Keys whose `apiKey.info` is refused with `missing_endpoint_permission`.
    no_scope_read: HashSet<String>,
    keys: HashSet<String>,
    accepted: Mutex<Vec<Value>>,
    pub files: Arc<AshbyFiles>,
    quiet: bool,
}

impl AshbyStandIn {
    /// `base` is where the stand-in is served (`<hub>/ashby`): its storage URLs point there.
    pub fn new(
        base: &str,
        keys: impl IntoIterator<Item = String>,
        quiet: bool,
    ) -> anyhow::Result<Self> {
        // The demo keys a customer may paste on a connect page work whatever the registry says.
        let mut keys: HashSet<String> = keys.into_iter().filter(|k| !k.is_empty()).collect();
        keys.insert(crate::config::DEMO_ASHBY_KEY.to_owned());
        keys.insert(DEMO_KEY_NO_SCOPE_READ.to_owned());
        Ok(Self {
            api: OpenApi::embedded()?,
            extras: crate::openapi::Extras::embedded()?,
            read_only: HashSet::from([DEMO_KEY_READ_ONLY.to_owned()]),
            no_scope_read: HashSet::from([DEMO_KEY_NO_SCOPE_READ.to_owned()]),
            files: Arc::new(AshbyFiles::new(base, keys.clone(), quiet)?),
            keys,
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
            .route("/ashby/apiKey.info", post(api_key_info))
            .with_state(self.clone())
            .merge(self.files.clone().router("/ashby"))
            .layer(axum::middleware::map_response(version_headers))
    }

    fn key_ok(&self, headers: &HeaderMap) -> bool {
        basic_user(headers).is_some_and(|k| self.keys.contains(&k))
    }
}

/// What Ashby's answers say of the API version since 2026-10-14.
pub async fn version_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert("ashby-version", HeaderValue::from_static(SERVED_VERSION));
    h.insert("ashby-version-status", HeaderValue::from_static("active"));
    r
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
    let problems = check_headers(headers);
    if !problems.is_empty() {
        return Err(problems);
    }
    let v: Value =
        serde_json::from_slice(body).map_err(|e| vec![format!("body is not JSON: {e}")])?;
    s.api.check_update(&v)?;
    Ok(v)
}

/// `apiKey.info` (CONTRACT.md §11): the key's title and scopes, or the refusals Ashby makes.
/// Request and answer are checked against `extras-schemas.json`.
async fn api_key_info(
    State(s): State<Arc<AshbyStandIn>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(key) = basic_user(&headers) else {
        return ashby_error(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "API key missing",
        );
    };
    let mut problems = check_headers(&headers);
    match serde_json::from_slice::<Value>(&body) {
        Ok(v) => {
            if let Err(e) = s.extras.check("ApiKeyInfoRequest", &v) {
                problems.extend(e);
            }
        }
        Err(e) => problems.push(format!("body is not JSON: {e}")),
    }
    if !problems.is_empty() {
        eprintln!("ashby REJECTED apiKey.info: {}", problems.join("; "));
        return ashby_error(
            StatusCode::BAD_REQUEST,
            "invalid_input",
            &problems.join("; "),
        );
    }
    let scopes: &[&str] = if s.no_scope_read.contains(&key) {
        return ashby_error(
            StatusCode::FORBIDDEN,
            "missing_endpoint_permission",
            "The API key lacks the apiKeysRead permission",
        );
    } else if s.read_only.contains(&key) {
        &["candidates:read", "jobs:read", "apiKeys:read"]
    } else if s.keys.contains(&key) {
        &[
            "candidates:read",
            "candidates:write",
            "jobs:read",
            "apiKeys:read",
        ]
    } else {
        return ashby_error(
            StatusCode::FORBIDDEN,
            "invalid_api_key",
            "The API key is invalid or deactivated",
        );
    };
    let answer = json!({
        "success": true,
        "results": {
            "title": "Demo hub key",
            "createdAt": "2026-01-01T00:00:00.000Z",
            "scopes": scopes,
        }
    });
    if let Err(e) = s.extras.check("ApiKeyInfoResponse", &answer) {
        eprintln!(
            "ashby stand-in answer breaks extras-schemas.json: {}",
            e.join("; ")
        );
    }
    if !s.quiet {
        println!(
            "ashby <- apiKey.info (answered with {} scopes)",
            scopes.len()
        );
    }
    Json(answer).into_response()
}

async fn list(State(s): State<Arc<AshbyStandIn>>) -> Json<Vec<Value>> {
    Json(s.accepted())
}
