//! Callers of a running hub, as in production: Ashby starting assessments and a vendor posting
//! signed callbacks, through HTTP, with every request's latency recorded. The load test and the
//! benchmark's throughput run drive the hub with them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{Value, json};

/// The local hub's configuration (`--config`) for these callers: one vendor, `acme`, whose
/// `criminal-basic` package orders at `order_url`, signed with `vendor_secret`; one tenant with
/// `token`, whose updates go to the Ashby at `ashby_url` with `ashby_key`.
pub fn hub_config(
    order_url: &str,
    vendor_secret: &str,
    token: &str,
    ashby_url: &str,
    ashby_key: &str,
) -> String {
    format!(
        r#"
[[vendors]]
id = "acme"
name = "Acme Checks"
order_url = "{order_url}"
signing_secret = "{vendor_secret}"
[[vendors.packages]]
id = "criminal-basic"
name = "Criminal record check"
description = "County and national criminal search"

[[tenants]]
id = "loadco"
name = "Load Co"
trigger_token = "{token}"
ashby_api_key = "{ashby_key}"
ashby_base_url = "{ashby_url}"
packages = ["{PACKAGE}"]
"#
    )
}

/// The package [`hub_config`] enables: what the callers start.
pub const PACKAGE: &str = "acme/criminal-basic";

/// Attempts of a caller answered 503 (Ashby and vendors retry those).
const ATTEMPTS: usize = 5;

/// Longest any one request to the hub may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Start,
    Callback,
}

/// The callers' side of a run: Ashby starting assessments, the vendor posting callbacks.
pub struct Callers {
    base: String,
    auth: String,
    type_id: String,
    vendor: String,
    vendor_secret: String,
    http: reqwest::Client,
    /// Every request's kind, status and latency.
    timings: Mutex<Vec<(Kind, u16, Duration)>>,
    completed: AtomicUsize,
    in_flight: tokio::sync::Semaphore,
}

impl Callers {
    /// Callers of the hub at `base`: Ashby with `token`, starting `package` (`vendor/package`),
    /// the vendor signing with `vendor_secret`; at most `in_flight` requests outstanding.
    pub fn new(
        base: &str,
        token: &str,
        package: &str,
        vendor_secret: &str,
        in_flight: usize,
    ) -> Self {
        let package = hub::domain::PackageRef::parse(package).expect("vendor/package");
        Self {
            base: base.trim_end_matches('/').to_owned(),
            auth: format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{token}:"))
            ),
            type_id: package.type_id().to_string(),
            vendor: package.vendor.to_string(),
            vendor_secret: vendor_secret.to_owned(),
            http: reqwest::Client::new(),
            timings: Mutex::new(Vec::new()),
            completed: AtomicUsize::new(0),
            in_flight: tokio::sync::Semaphore::new(in_flight),
        }
    }

    /// Every request so far: its kind, status and latency.
    pub fn timings(&self) -> Vec<(Kind, u16, Duration)> {
        self.timings.lock().unwrap().clone()
    }

    async fn post(
        &self,
        kind: Kind,
        path: &str,
        build: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<Value, String> {
        for attempt in 1..=ATTEMPTS {
            let permit = self.in_flight.acquire().await.unwrap();
            let started = Instant::now();
            let resp = tokio::time::timeout(REQUEST_TIMEOUT, build().send())
                .await
                .map_err(|_| format!("{path}: no answer within {REQUEST_TIMEOUT:?}"))?
                .map_err(|e| format!("{path}: {e}"))?;
            let status = resp.status().as_u16();
            let body: Value = resp
                .json()
                .await
                .map_err(|e| format!("{path}: non-JSON answer {status}: {e}"))?;
            drop(permit);
            self.timings
                .lock()
                .unwrap()
                .push((kind, status, started.elapsed()));
            match status {
                200 => return Ok(body),
                503 if attempt < ATTEMPTS => {
                    tokio::time::sleep(Duration::from_millis(200 * attempt as u64)).await;
                }
                _ => return Err(format!("{path}: {status} {body}")),
            }
        }
        unreachable!("the last attempt returns")
    }

    /// Starts an assessment for `application`; returns its id.
    pub async fn start(&self, application: &str) -> Result<String, String> {
        let url = format!("{}/assessment.start", self.base);
        let body = json!({
            "assessment_type_id": self.type_id,
            "candidate": {"ashby_id": format!("cand-{application}"), "first_name": "Ada", "last_name": "Lovelace",
                          "email": "ada@candidate.example", "ashby_profile_url": "https://app.ashbyhq.com/candidates/c"},
            "application": {"ashby_id": application, "status": "Active"},
            "job": {"ashby_id": "job-1", "name": "Engineer", "ashby_job_url": "https://app.ashbyhq.com/jobs/j"}
        });
        let answer = self
            .post(Kind::Start, "/assessment.start", || {
                self.http
                    .post(&url)
                    .header("authorization", &self.auth)
                    .json(&body)
            })
            .await?;
        answer["results"]["assessment_id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| format!("start answered without an id: {answer}"))
    }

    /// A vendor callback; a retry after a 503 keeps its webhook-id and is signed afresh.
    pub async fn callback(&self, webhook_id: &str, body: &Value) -> Result<(), String> {
        let path = format!("/callbacks/{}", self.vendor);
        let url = format!("{}{path}", self.base);
        let text = body.to_string();
        let wh = standardwebhooks::Webhook::new(&self.vendor_secret).unwrap();
        self.post(Kind::Callback, &path, || {
            let ts = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs() as i64;
            self.http
                .post(&url)
                .header("content-type", "application/json")
                .header("webhook-id", webhook_id)
                .header("webhook-timestamp", ts.to_string())
                .header(
                    "webhook-signature",
                    wh.sign(webhook_id, ts, text.as_bytes()).unwrap(),
                )
                .body(text.clone())
        })
        .await
        .map(|_| ())
    }

    /// One lifecycle: a start, then the vendor's `in_progress` and `completed`. Returns the
    /// assessment's id and how many lifecycles had finished with this one.
    pub async fn lifecycle(&self, i: usize) -> Result<(String, usize), String> {
        let id = self
            .start(&format!("load-app-{i}-{}", uuid::Uuid::new_v4()))
            .await?;
        self.callback(
            &format!("wh-{id}-1"),
            &json!({"assessment_id": id, "status": "in_progress", "status_label": "In progress"}),
        )
        .await?;
        self.callback(
            &format!("wh-{id}-2"),
            &json!({"assessment_id": id, "status": "completed", "status_label": "Clear",
                    "report_url": format!("https://vendor.example/reports/{id}"),
                    "result": {"type": "numeric_score", "value": i, "label": "Score"}}),
        )
        .await?;
        Ok((id, self.completed.fetch_add(1, Ordering::SeqCst) + 1))
    }
}

/// The `p`th percentile (nearest rank) of sorted durations; zero for none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Milliseconds, whole.
pub fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}
