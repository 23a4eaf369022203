//! Fakes of the two parties we cannot run: Ashby (`assessment.update`, and the three steps of a
//! candidate-file upload, from `hub_local::ashby_files`) and a vendor.
//! Both are real HTTP servers on loopback that check what they receive against the published
//! contract (Ashby's OpenAPI from `../shared`, Standard Webhooks signatures) and record it, with
//! switchable behaviour for failure tests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use hub_local::ashby_files::{AshbyFiles, basic_user, check_headers};
use hub_local::openapi::OpenApi;
use serde_json::{Value, json};

/// Ashby's published contract: the ground truth beside the repository.
pub fn ashby_openapi() -> OpenApi {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/ashby/assessments-openapi.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    OpenApi::parse(&text).expect("the OpenAPI document parses")
}

/// How the fake Ashby answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AshbyMode {
    Accept,
    ServerError,
    /// HTTP 200 with `success: false`, as Ashby does for some errors.
    SuccessFalse,
    /// 429 with `Retry-After: N` seconds; `partner_wide` adds `X-RateLimit-Scope: integration-partner`.
    RateLimited {
        retry_after_s: u64,
        partner_wide: bool,
    },
    /// 401: the tenant's key was revoked.
    Unauthorized,
    /// Answers only after this long (beyond the hub's timeout: a timeout).
    Hang(Duration),
    /// 500 on every `n`-th call the fake receives, accepting the others: `FailEvery(3)` fails a
    /// third of the calls, spread evenly over concurrent senders.
    FailEvery(u64),
}

/// How the fake Ashby answers `apiKey.info` (CONTRACT.md §11).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyInfoMode {
    /// Its own key: 200 with `candidates:write` among the scopes; any other key: 403.
    Valid,
    /// 200 with scopes, but not `candidates:write`.
    WithoutCandidatesWrite,
    /// 403 `missing_endpoint_permission`: the key works but may not read its scopes.
    CannotReadScopes,
    /// 401 whatever the key.
    Unauthorized,
    /// 500.
    Down,
}

#[derive(Debug, Clone)]
pub struct ReceivedUpdate {
    pub body: Value,
    pub api_key: Option<String>,
    pub content_type: Option<String>,
    pub user_agent: Option<String>,
    /// The `Ashby-Version` it pinned.
    pub version: Option<String>,
    /// Everything wrong with it per the contract; empty when it conforms.
    pub violations: Vec<String>,
    /// Whether the fake accepted it (mode `Accept` and no violations).
    pub accepted: bool,
}

pub struct FakeAshby {
    pub base_url: String,
    api_key: String,
    api: OpenApi,
    mode: Mutex<AshbyMode>,
    received: Mutex<Vec<ReceivedUpdate>>,
    calls: AtomicU64,
    /// The candidate-file upload (steps 1-3), with its own checks and faults.
    pub files: Arc<AshbyFiles>,
    /// What every answer says in `Ashby-Version-Status` (`active` unless a test changes it).
    version_status: Mutex<String>,
    key_info: Mutex<KeyInfoMode>,
    key_checks: AtomicU64,
    extras: hub_local::openapi::Extras,
}

impl FakeAshby {
    pub async fn start(api_key: &str) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let me = Arc::new(Self {
            base_url: format!("http://{addr}"),
            api_key: api_key.to_owned(),
            api: ashby_openapi(),
            mode: Mutex::new(AshbyMode::Accept),
            received: Mutex::new(Vec::new()),
            calls: AtomicU64::new(0),
            files: Arc::new(
                AshbyFiles::new(&format!("http://{addr}"), [api_key.to_owned()], true)
                    .expect("file stand-in"),
            ),
            version_status: Mutex::new("active".into()),
            key_info: Mutex::new(KeyInfoMode::Valid),
            key_checks: AtomicU64::new(0),
            extras: hub_local::openapi::Extras::embedded().expect("extras schemas"),
        });
        let router = axum::Router::new()
            .route("/assessment.update", post(ashby_update))
            .route("/apiKey.info", post(api_key_info))
            .with_state(me.clone())
            .merge(me.files.clone().router(""))
            .layer(axum::middleware::map_response_with_state(
                me.clone(),
                version_headers,
            ));
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        me
    }

    pub fn set_key_info(&self, mode: KeyInfoMode) {
        *self.key_info.lock().unwrap() = mode;
    }

    /// How many `apiKey.info` calls it received.
    pub fn key_checks(&self) -> u64 {
        self.key_checks.load(Ordering::Relaxed)
    }

    /// The key it accepts.
    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    pub fn set_mode(&self, mode: AshbyMode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// Makes every answer say this of the API version (e.g. `deprecated`).
    pub fn set_version_status(&self, status: &str) {
        *self.version_status.lock().unwrap() = status.to_owned();
    }

    pub fn received(&self) -> Vec<ReceivedUpdate> {
        self.received.lock().unwrap().clone()
    }

    /// Accepted update bodies for one assessment, in arrival order.
    pub fn accepted_for(&self, assessment_id: &str) -> Vec<Value> {
        self.received()
            .into_iter()
            .filter(|u| u.accepted && u.body["assessment_id"] == assessment_id)
            .map(|u| u.body)
            .collect()
    }

    /// Waits until `n` updates for the assessment were accepted, or panics after `timeout`.
    pub async fn wait_for(&self, assessment_id: &str, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let got = self.accepted_for(assessment_id);
            if got.len() >= n {
                return got;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "expected {n} accepted updates for {assessment_id}, got {}: {:#?}",
                    got.len(),
                    self.received()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `Ashby-Version` and `Ashby-Version-Status` on every answer, as Ashby's since 2026-10-14.
async fn version_headers(State(s): State<Arc<FakeAshby>>, mut r: Response) -> Response {
    let status = s.version_status.lock().unwrap().clone();
    let h = r.headers_mut();
    h.insert("ashby-version", "2026-01-01".parse().unwrap());
    if let Ok(v) = status.parse() {
        h.insert("ashby-version-status", v);
    }
    r
}

async fn api_key_info(
    State(s): State<Arc<FakeAshby>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    s.key_checks.fetch_add(1, Ordering::Relaxed);
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut violations = s
        .extras
        .check("ApiKeyInfoRequest", &parsed)
        .err()
        .unwrap_or_default();
    violations.extend(check_headers(&headers));
    assert!(violations.is_empty(), "apiKey.info request: {violations:?}");
    let error = |status: StatusCode, code: &str| {
        let body = json!({"success": false, "errorInfo": {"code": code, "message": code}});
        (status, Json(body)).into_response()
    };
    let own = basic_user(&headers).as_deref() == Some(s.api_key.as_str());
    let scopes: &[&str] = match *s.key_info.lock().unwrap() {
        KeyInfoMode::Down => return error(StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        KeyInfoMode::Unauthorized => return error(StatusCode::UNAUTHORIZED, "invalid_api_key"),
        _ if !own => return error(StatusCode::FORBIDDEN, "invalid_api_key"),
        KeyInfoMode::CannotReadScopes => {
            return error(StatusCode::FORBIDDEN, "missing_endpoint_permission");
        }
        KeyInfoMode::WithoutCandidatesWrite => &["candidates:read", "jobs:read", "apiKeys:read"],
        KeyInfoMode::Valid => &["candidates:read", "candidates:write", "apiKeys:read"],
    };
    let answer = json!({"success": true, "results": {
        "title": "Hub integration", "createdAt": "2026-11-02T10:00:00.000Z", "scopes": scopes}});
    if let Err(e) = s.extras.check("ApiKeyInfoResponse", &answer) {
        panic!("the fake's apiKey.info answer breaks extras-schemas.json: {e:?}");
    }
    Json(answer).into_response()
}

async fn ashby_update(
    State(s): State<Arc<FakeAshby>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let api_key = basic_user(&headers);
    let header = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header("content-type");
    let user_agent = header("user-agent");
    let version = header("ashby-version");
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut violations = s.api.check_update(&parsed).err().unwrap_or_default();
    if api_key.as_deref() != Some(s.api_key.as_str()) {
        violations.push("wrong or missing Ashby API key".into());
    }
    if content_type.as_deref() != Some("application/json") {
        violations.push(format!("content-type is {content_type:?}"));
    }
    violations.extend(check_headers(&headers));
    let mode = *s.mode.lock().unwrap();
    let call = s.calls.fetch_add(1, Ordering::Relaxed) + 1;
    let mode = match mode {
        AshbyMode::FailEvery(n) if call % n.max(1) == 0 => AshbyMode::ServerError,
        AshbyMode::FailEvery(_) => AshbyMode::Accept,
        m => m,
    };
    let accepted = mode == AshbyMode::Accept && violations.is_empty();
    s.received.lock().unwrap().push(ReceivedUpdate {
        body: parsed,
        api_key,
        content_type,
        user_agent,
        version,
        violations: violations.clone(),
        accepted,
    });
    if let AshbyMode::Hang(d) = mode {
        tokio::time::sleep(d).await;
    }
    match mode {
        AshbyMode::ServerError | AshbyMode::Hang(_) | AshbyMode::FailEvery(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response()
        }
        AshbyMode::RateLimited {
            retry_after_s,
            partner_wide,
        } => {
            let mut r = (StatusCode::TOO_MANY_REQUESTS, "slow down").into_response();
            r.headers_mut()
                .insert("retry-after", retry_after_s.to_string().parse().unwrap());
            if partner_wide {
                r.headers_mut()
                    .insert("x-ratelimit-scope", "integration-partner".parse().unwrap());
            }
            r
        }
        AshbyMode::Unauthorized => (StatusCode::UNAUTHORIZED, "revoked").into_response(),
        AshbyMode::SuccessFalse => Json(json!({"success": false, "errors": ["x"],
            "errorInfo": {"code": "internal_error", "message": "try later"}}))
        .into_response(),
        AshbyMode::Accept if violations.is_empty() => {
            Json(json!({"success": true, "results": {}})).into_response()
        }
        AshbyMode::Accept => Json(json!({"success": false, "errors": ["invalid_input"],
            "errorInfo": {"code": "invalid_input", "message": violations.join("; ")}}))
        .into_response(),
    }
}

/// How the fake vendor answers orders and cancels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VendorMode {
    Accept,
    Reject(String),
    ServerError,
    /// Sleep this long before accepting (beyond the hub's timeout → a timeout).
    Slow(Duration),
}

#[derive(Debug, Clone)]
pub struct ReceivedOrder {
    pub body: Value,
    pub webhook_id: String,
    pub signature_ok: bool,
    /// Whether the fake accepted it (2xx), i.e. the vendor now holds the order.
    pub accepted: bool,
}

pub struct FakeVendor {
    pub order_url: String,
    secret: String,
    mode: Mutex<VendorMode>,
    received: Mutex<Vec<ReceivedOrder>>,
    http: reqwest::Client,
    /// Report files it serves at `/files/<name>`: media type, bytes, and how often fetched.
    files: Mutex<std::collections::HashMap<String, ServedFile>>,
}

/// A file the fake vendor serves: media type, bytes, times fetched.
type ServedFile = (String, Vec<u8>, u32);

impl FakeVendor {
    pub async fn start(secret: &str) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let me = Arc::new(Self {
            order_url: format!("http://{addr}/orders"),
            secret: secret.to_owned(),
            mode: Mutex::new(VendorMode::Accept),
            received: Mutex::new(Vec::new()),
            http: reqwest::Client::new(),
            files: Mutex::new(Default::default()),
        });
        let router = axum::Router::new()
            .route("/orders", post(vendor_order))
            .route("/files/{name}", axum::routing::get(vendor_file))
            .with_state(me.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        me
    }

    pub fn set_mode(&self, mode: VendorMode) {
        *self.mode.lock().unwrap() = mode;
    }

    pub fn received(&self) -> Vec<ReceivedOrder> {
        self.received.lock().unwrap().clone()
    }

    /// Serves `bytes` as `content_type` at the returned URL (a report file to attach).
    pub fn serve_file(&self, name: &str, content_type: &str, bytes: Vec<u8>) -> String {
        self.files
            .lock()
            .unwrap()
            .insert(name.to_owned(), (content_type.to_owned(), bytes, 0));
        format!(
            "{}/files/{name}",
            self.order_url.trim_end_matches("/orders")
        )
    }

    /// How often the file `name` was downloaded.
    pub fn file_fetches(&self, name: &str) -> u32 {
        self.files.lock().unwrap().get(name).map_or(0, |f| f.2)
    }

    /// Requests of one type (`assessment.requested` / `assessment.cancelled`).
    pub fn of_type(&self, kind: &str) -> Vec<ReceivedOrder> {
        self.received()
            .into_iter()
            .filter(|o| o.body["type"] == kind)
            .collect()
    }

    /// Posts a callback signed with the vendor's secret. Returns status and JSON body.
    pub async fn callback(&self, url: &str, webhook_id: &str, body: &Value) -> (u16, Value) {
        let text = body.to_string();
        self.callback_raw(url, webhook_id, text.as_bytes(), &self.secret, 0)
            .await
    }

    /// Posts raw bytes signed with any secret, the timestamp shifted by `skew_s` seconds.
    pub async fn callback_raw(
        &self,
        url: &str,
        webhook_id: &str,
        body: &[u8],
        secret: &str,
        skew_s: i64,
    ) -> (u16, Value) {
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
            + skew_s;
        let sig = standardwebhooks::Webhook::new(secret)
            .unwrap()
            .sign(webhook_id, ts, body)
            .unwrap();
        let resp = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", webhook_id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(body.to_vec())
            .send()
            .await
            .expect("callback request");
        let status = resp.status().as_u16();
        let json = resp.json().await.unwrap_or(Value::Null);
        (status, json)
    }
}

async fn vendor_file(
    State(s): State<Arc<FakeVendor>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let mut files = s.files.lock().unwrap();
    let Some((ctype, bytes, fetches)) = files.get_mut(&name) else {
        return (StatusCode::NOT_FOUND, "no such file").into_response();
    };
    *fetches += 1;
    ([("content-type", ctype.clone())], bytes.clone()).into_response()
}

async fn vendor_order(
    State(s): State<Arc<FakeVendor>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let signature_ok = standardwebhooks::Webhook::new(&s.secret)
        .unwrap()
        .verify(&body, &headers)
        .is_ok();
    let webhook_id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mode = s.mode.lock().unwrap().clone();
    s.received.lock().unwrap().push(ReceivedOrder {
        body: parsed.clone(),
        webhook_id,
        signature_ok,
        accepted: signature_ok && matches!(mode, VendorMode::Accept | VendorMode::Slow(_)),
    });
    if !signature_ok {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"message": "bad signature"})),
        )
            .into_response();
    }
    match mode {
        VendorMode::Accept => {}
        VendorMode::Reject(message) => {
            return (
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "message": message })),
            )
                .into_response();
        }
        VendorMode::ServerError => {
            return (StatusCode::SERVICE_UNAVAILABLE, "down").into_response();
        }
        VendorMode::Slow(d) => tokio::time::sleep(d).await,
    }
    let id = parsed["assessment_id"].as_str().unwrap_or_default();
    Json(json!({"vendor_reference": format!("ref-{id}"), "status_label": "Invitation sent"}))
        .into_response()
}

/// Greenhouse's published schemas: the ground truth beside the repository.
pub fn greenhouse_schemas() -> hub_local::greenhouse_schemas::GreenhouseSchemas {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/greenhouse/schemas.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    hub_local::greenhouse_schemas::parse(&text).expect("schemas.json parses")
}

/// One `PATCH` the fake Greenhouse received.
#[derive(Debug, Clone)]
pub struct ReceivedPatch {
    /// The test's number: the last segment of the `url` given in `send_test`.
    pub test: String,
    pub partner_key: Option<String>,
    pub body_len: usize,
    /// Everything wrong with it per the contract (key, empty body); empty when it conforms.
    pub violations: Vec<String>,
    /// Whether the fake answered 2xx.
    pub accepted: bool,
}

/// Greenhouse's side of the PATCH: `PATCH /tests/{n}`, which must carry the org's partner key as
/// the Basic username and no body. `fail_next(n)` answers the next `n` with a 500.
pub struct FakeGreenhouse {
    pub base_url: String,
    key: String,
    fail_next: AtomicU64,
    received: Mutex<Vec<ReceivedPatch>>,
}

impl FakeGreenhouse {
    pub async fn start(partner_key: &str) -> Arc<Self> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let me = Arc::new(Self {
            base_url: format!("http://{addr}"),
            key: partner_key.to_owned(),
            fail_next: AtomicU64::new(0),
            received: Mutex::new(Vec::new()),
        });
        let router = axum::Router::new()
            .route("/tests/{n}", axum::routing::patch(greenhouse_patch))
            .with_state(me.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        me
    }

    /// The `url` of a new test, as Greenhouse would send it in `send_test`.
    pub fn test_url(&self) -> String {
        format!("{}/tests/{}", self.base_url, uuid::Uuid::new_v4().simple())
    }

    pub fn fail_next(&self, n: u64) {
        self.fail_next.store(n, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<ReceivedPatch> {
        self.received.lock().unwrap().clone()
    }

    /// The PATCHes received for the test of `url`.
    pub fn patches_for(&self, url: &str) -> Vec<ReceivedPatch> {
        let test = url.rsplit('/').next().unwrap_or_default().to_owned();
        self.received()
            .into_iter()
            .filter(|p| p.test == test)
            .collect()
    }
}

async fn greenhouse_patch(
    State(s): State<Arc<FakeGreenhouse>>,
    axum::extract::Path(test): axum::extract::Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    let partner_key = basic_user(&headers);
    let mut violations = Vec::new();
    if partner_key.as_deref() != Some(s.key.as_str()) {
        violations.push("wrong or missing partner key".to_owned());
    }
    if !body.is_empty() {
        violations.push("the PATCH must have no body".to_owned());
    }
    let failing = s
        .fail_next
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    let accepted = violations.is_empty() && !failing;
    s.received.lock().unwrap().push(ReceivedPatch {
        test,
        partner_key,
        body_len: body.len(),
        violations: violations.clone(),
        accepted,
    });
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else if violations.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNAUTHORIZED
    }
}
