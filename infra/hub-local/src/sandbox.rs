//! The built-in sandbox vendor: a real HTTP endpoint speaking the vendor protocol. It verifies
//! the hub's signed orders, accepts them (or refuses a candidate whose email contains `+reject`,
//! to show a vendor 422 in Ashby), and a few seconds later posts signed `in_progress` and
//! `completed` callbacks with a report URL and a small generated PDF report attached (served at
//! `/sandbox/files/<id>`), retrying while the hub answers 503.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use standardwebhooks::Webhook;
use url::Url;

pub struct Sandbox {
    webhook: Webhook,
    base: Url,
    delay: Duration,
    http: reqwest::Client,
    /// assessment id → cancelled?
    orders: Mutex<HashMap<String, bool>>,
    quiet: bool,
}

impl Sandbox {
    pub fn new(secret: &str, base: Url, delay: Duration, quiet: bool) -> anyhow::Result<Self> {
        Ok(Self {
            webhook: Webhook::new(secret)?,
            base,
            delay,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()?,
            orders: Mutex::new(HashMap::new()),
            quiet,
        })
    }

    pub fn router(self: Arc<Self>) -> axum::Router {
        axum::Router::new()
            .route("/sandbox/orders", post(order))
            .route("/sandbox/reports/{id}", get(report))
            .route("/sandbox/files/{id}", get(report_pdf))
            .with_state(self)
    }

    fn is_cancelled(&self, id: &str) -> bool {
        self.orders
            .lock()
            .map(|m| m.get(id).copied().unwrap_or(true))
            .unwrap_or(true)
    }

    /// Posts one signed callback, retrying (as a real vendor would) while the hub answers 5xx.
    async fn callback(&self, url: &str, id: &str, n: u32, body: Value) {
        let text = body.to_string();
        let msg_id = format!("sbx_{id}_{n}");
        for attempt in 0..10u32 {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
            }
            let ts = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or_default();
            let Ok(sig) = self.webhook.sign(&msg_id, ts, text.as_bytes()) else {
                return;
            };
            let sent = self
                .http
                .post(url)
                .header("content-type", "application/json")
                .header("webhook-id", &msg_id)
                .header("webhook-timestamp", ts.to_string())
                .header("webhook-signature", sig)
                .body(text.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() || r.status().is_client_error() => {
                    if !self.quiet {
                        println!(
                            "sandbox -> callback {} for {id}: HTTP {}",
                            body["status"],
                            r.status().as_u16()
                        );
                    }
                    return;
                }
                _ => {}
            }
        }
    }

    async fn run_script(self: Arc<Self>, id: String, callback_url: String) {
        tokio::time::sleep(self.delay).await;
        if self.is_cancelled(&id) {
            return;
        }
        self.callback(
            &callback_url,
            &id,
            1,
            json!({"assessment_id": id, "status": "in_progress", "status_label": "Candidate started"}),
        )
        .await;
        tokio::time::sleep(self.delay).await;
        if self.is_cancelled(&id) {
            return;
        }
        let score = 50 + (id.bytes().map(u32::from).sum::<u32>() % 50);
        let report = self
            .base
            .join(&format!("sandbox/reports/{id}"))
            .map(|u| u.to_string())
            .unwrap_or_default();
        let file = self
            .base
            .join(&format!("sandbox/files/{id}"))
            .map(|u| u.to_string())
            .unwrap_or_default();
        self.callback(
            &callback_url,
            &id,
            2,
            json!({
                "assessment_id": id, "status": "completed", "status_label": "Completed",
                "result": {"type": "numeric_score", "value": score, "label": "Score",
                           "description": "Simulated by the sandbox vendor"},
                "report_url": report,
                "metadata": [{"identifier": "duration", "label": "Time taken",
                              "type": "numeric_duration_minutes", "value": 42}],
                "attachments": [{"url": file, "filename": "sandbox-report.pdf",
                                 "content_type": "application/pdf"}]
            }),
        )
        .await;
    }
}

fn refuse(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

async fn order(
    State(s): State<Arc<Sandbox>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if s.webhook.verify(&body, &headers).is_err() {
        return refuse(StatusCode::UNAUTHORIZED, "bad signature");
    }
    let Ok(v) = serde_json::from_slice::<Value>(&body) else {
        return refuse(StatusCode::BAD_REQUEST, "body is not JSON");
    };
    let id = v["assessment_id"].as_str().unwrap_or_default().to_owned();
    match v["type"].as_str() {
        Some("assessment.requested") => {
            let email = v["candidate"]["email"].as_str().unwrap_or_default();
            if email.contains("+reject") {
                return refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Sandbox: this candidate cannot be screened (the email contains +reject).",
                );
            }
            let fresh = s
                .orders
                .lock()
                .map(|mut m| m.insert(id.clone(), false).is_none())
                .unwrap_or(false);
            if fresh {
                let callback_url = v["callback_url"].as_str().unwrap_or_default().to_owned();
                if !s.quiet {
                    println!("sandbox <- order {id} with options {}", v["options"]);
                }
                tokio::spawn(s.clone().run_script(id.clone(), callback_url));
            }
            let reference = format!("sbx_{}", id.chars().take(8).collect::<String>());
            Json(json!({"vendor_reference": reference, "status_label": "Invitation sent"}))
                .into_response()
        }
        Some("assessment.cancelled") => {
            if let Ok(mut m) = s.orders.lock() {
                m.insert(id.clone(), true);
            }
            if !s.quiet {
                println!("sandbox <- cancel {id}");
            }
            Json(json!({})).into_response()
        }
        _ => refuse(StatusCode::BAD_REQUEST, "unknown type"),
    }
}

async fn report(Path(id): Path<String>) -> Html<String> {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    Html(format!(
        "<!doctype html><title>Sandbox report</title><h1>Sandbox report</h1>\
         <p>Assessment {id}: simulated result. This page is what the Full report link opens.</p>"
    ))
}

/// The report as a file: a one-page PDF naming the assessment.
async fn report_pdf(Path(id): Path<String>) -> Response {
    let id: String = id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .take(36)
        .collect();
    (
        [(axum::http::header::CONTENT_TYPE, "application/pdf")],
        pdf(&format!(
            "Sandbox report for assessment {id}: simulated result."
        )),
    )
        .into_response()
}

/// A minimal valid one-page PDF showing `line` (ASCII without parentheses or backslashes).
pub fn pdf(line: &str) -> Vec<u8> {
    let line: String = line
        .chars()
        .filter(|c| c.is_ascii() && !matches!(c, '(' | ')' | '\\'))
        .collect();
    let stream = format!("BT /F1 14 Tf 72 720 Td ({line}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R \
         /Resources << /Font << /F1 5 0 R >> >> >>"
            .to_owned(),
        format!(
            "<< /Length {} >>\nstream\n{stream}\nendstream",
            stream.len()
        ),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}
