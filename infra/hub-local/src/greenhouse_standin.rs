//! A stand-in for Greenhouse: sends `send_test` to the hub as Greenhouse would (the org's partner
//! key as the Basic username), receives the hub's `PATCH` to the test's `url`, then reads
//! `test_status`; every body it sends or gets is checked against Greenhouse's `schemas.json` and
//! printed, as the Ashby stand-in does. `POST /greenhouse-standin/send_test` (an optional
//! `{"partner_test_id": …}`; the first listed test by default) starts one; `GET
//! /greenhouse-standin/statuses` lists what `test_status` answered after each `PATCH`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use base64::Engine;
use serde_json::{Value, json};
use url::Url;

use crate::greenhouse_schemas::{
    GreenhouseSchemas, LIST_TESTS_RESPONSE, SEND_TEST_REQUEST, SEND_TEST_RESPONSE,
    TEST_STATUS_RESPONSE,
};

pub struct GreenhouseStandIn {
    schemas: GreenhouseSchemas,
    hub: Url,
    key: String,
    http: reqwest::Client,
    /// Test number (the last segment of its `url`) → the hub's `partner_interview_id`.
    tests: Mutex<HashMap<u64, String>>,
    statuses: Mutex<Vec<Value>>,
    quiet: bool,
}

impl GreenhouseStandIn {
    /// A stand-in for the org whose partner key is `key`, calling the hub at `hub`.
    pub fn new(hub: Url, key: String, quiet: bool) -> anyhow::Result<Self> {
        Ok(Self {
            schemas: crate::greenhouse_schemas::embedded()?,
            hub,
            key,
            http: reqwest::Client::new(),
            tests: Mutex::new(HashMap::new()),
            statuses: Mutex::new(Vec::new()),
            quiet,
        })
    }

    /// Every `test_status` answer read after a `PATCH`, oldest first.
    pub fn statuses(&self) -> Vec<Value> {
        self.statuses.lock().map(|v| v.clone()).unwrap_or_default()
    }

    pub fn router(self: Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/greenhouse-standin/send_test", post(send_test))
            .route("/greenhouse-standin/tests/{n}", patch(patched))
            .route("/greenhouse-standin/statuses", get(statuses))
            .with_state(self)
    }

    fn say(&self, what: &str, body: &Value) {
        if !self.quiet {
            println!(
                "greenhouse {what} {}",
                serde_json::to_string_pretty(body).unwrap_or_default()
            );
        }
    }

    fn checked(&self, schema: &str, what: &str, body: &Value) -> Result<(), String> {
        self.schemas.check(schema, body).map_err(|errors| {
            let e = format!("{what} does not match {schema}: {}", errors.join("; "));
            eprintln!("greenhouse REJECTED {e}");
            e
        })
    }

    async fn call(&self, req: reqwest::RequestBuilder) -> Result<Value, String> {
        let resp = req
            .basic_auth(&self.key, Some(""))
            .send()
            .await
            .map_err(|e| format!("hub unreachable: {e}"))?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .map_err(|_| format!("hub answered HTTP {status} without JSON"))?;
        if !status.is_success() {
            return Err(format!("hub answered HTTP {status}: {body}"));
        }
        Ok(body)
    }

    fn hub_url(&self, path: &str) -> Result<Url, String> {
        self.hub.join(path).map_err(|e| e.to_string())
    }

    async fn start(&self, partner_test_id: Option<String>) -> Result<Value, String> {
        let test_id = match partner_test_id {
            Some(id) => id,
            None => {
                let list = self
                    .call(self.http.get(self.hub_url("greenhouse/list_tests")?))
                    .await?;
                self.checked(LIST_TESTS_RESPONSE, "list_tests", &list)?;
                self.say("<- list_tests", &list);
                list.pointer("/0/partner_test_id")
                    .and_then(Value::as_str)
                    .ok_or("list_tests lists no test")?
                    .to_owned()
            }
        };
        let n = rand_number();
        let url = self.hub_url(&format!("greenhouse-standin/tests/{n}"))?;
        let body = json!({
            "partner_test_id": test_id,
            "candidate": {
                "first_name": "Harry", "last_name": "Potter", "preferred_name": null,
                "resume_url": null, "phone_number": null, "email": "hpotter@example.edu",
                "greenhouse_profile_url":
                    format!("https://app.greenhouse.io/people/17681532?application_id=26234{n}")
            },
            "sent_by": "recruiter@customer.example",
            "url": url.as_str(),
        });
        self.checked(SEND_TEST_REQUEST, "send_test request", &body)?;
        let answer = self
            .call(
                self.http
                    .post(self.hub_url("greenhouse/send_test")?)
                    .json(&body),
            )
            .await?;
        self.checked(SEND_TEST_RESPONSE, "send_test answer", &answer)?;
        self.say("<- send_test", &answer);
        if let (Some(id), Ok(mut tests)) = (
            answer.get("partner_interview_id").and_then(Value::as_str),
            self.tests.lock(),
        ) {
            tests.insert(n, id.to_owned());
        }
        Ok(answer)
    }

    async fn read_status(&self, id: &str) -> Result<Value, String> {
        let mut url = self.hub_url("greenhouse/test_status")?;
        url.query_pairs_mut()
            .append_pair("partner_interview_id", id);
        let status = self.call(self.http.get(url)).await?;
        self.checked(TEST_STATUS_RESPONSE, "test_status answer", &status)?;
        self.say("<- test_status", &status);
        if let Ok(mut s) = self.statuses.lock() {
            s.push(status.clone());
        }
        Ok(status)
    }

    fn key_ok(&self, headers: &HeaderMap) -> bool {
        let Some(encoded) = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
        else {
            return false;
        };
        let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
            return false;
        };
        String::from_utf8_lossy(&decoded) == format!("{}:", self.key)
    }
}

fn rand_number() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64 % 1_000_000_000)
        .unwrap_or(1)
}

async fn send_test(State(s): State<Arc<GreenhouseStandIn>>, body: axum::body::Bytes) -> Response {
    let test_id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("partner_test_id")?.as_str().map(str::to_owned));
    match s.start(test_id).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, Json(json!({ "error": e }))).into_response(),
    }
}

async fn patched(
    State(s): State<Arc<GreenhouseStandIn>>,
    Path(n): Path<u64>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> StatusCode {
    if !s.key_ok(&headers) {
        eprintln!("greenhouse REJECTED a PATCH without the partner key");
        return StatusCode::UNAUTHORIZED;
    }
    if !body.is_empty() {
        eprintln!("greenhouse REJECTED a PATCH with a body (it must be empty)");
        return StatusCode::BAD_REQUEST;
    }
    let Some(id) = s.tests.lock().ok().and_then(|t| t.get(&n).cloned()) else {
        return StatusCode::NOT_FOUND;
    };
    if !s.quiet {
        println!("greenhouse <- PATCH tests/{n}: reading test_status");
    }
    // Greenhouse answers the PATCH, then reads the result.
    tokio::spawn(async move {
        if let Err(e) = s.read_status(&id).await {
            eprintln!("greenhouse test_status failed: {e}");
        }
    });
    StatusCode::OK
}

async fn statuses(State(s): State<Arc<GreenhouseStandIn>>) -> Json<Vec<Value>> {
    Json(s.statuses())
}
