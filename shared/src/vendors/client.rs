//! Sends signed orders and cancels to a vendor's `order_url`, with a bounded retry on timeouts,
//! network errors, 429 and 5xx. The signature is made afresh per attempt (its timestamp must be
//! current); the `webhook-id` stays the same so the vendor can deduplicate.

use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use super::url_policy::{LoopbackHttp, check_order_url, check_outbound_url};
use crate::clock::Clock;
use crate::retry::Backoff;
use crate::transport::describe_transport;

/// What the vendor said to an order or cancel.
#[derive(Debug, Clone, PartialEq)]
pub enum VendorReply {
    Accepted {
        vendor_reference: Option<String>,
        status_label: Option<String>,
    },
    /// 422: the vendor's words, for the recruiter.
    Rejected { message: String },
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum VendorError {
    /// Every attempt timed out, failed to connect or got 429/5xx.
    #[error("vendor unavailable after {attempts} attempts: {last}")]
    Unavailable { attempts: u32, last: String },
    /// A 4xx other than 422: a configuration or protocol problem, not worth retrying.
    #[error("vendor refused the request with HTTP {0}")]
    Refused(u16),
    /// The vendor's signing secret could not be read (the secret store failed); nothing was sent.
    #[error("vendor signing secret unreadable: {0}")]
    SecretUnavailable(String),
    /// The signing secret is not a valid `whsec_` secret.
    #[error("vendor signing secret is malformed")]
    BadSecret,
    /// The order URL is not one the hub may call (see `url_policy`).
    #[error("vendor order_url refused: {0}")]
    UrlNotAllowed(String),
}

#[derive(Clone)]
pub struct VendorClient {
    http: reqwest::Client,
    loopback: LoopbackHttp,
    user_agent: String,
    timeout: Duration,
    /// Signatures carry the time they were made.
    clock: Arc<dyn Clock>,
}

#[derive(Deserialize, Default)]
struct AcceptedBody {
    #[serde(default)]
    vendor_reference: Option<serde_json::Value>,
    #[serde(default)]
    status_label: Option<String>,
}

#[derive(Deserialize)]
struct RejectedBody {
    message: String,
}

const MAX_VENDOR_TEXT: usize = 500;

fn clip(s: &str) -> String {
    s.chars().take(MAX_VENDOR_TEXT).collect()
}

impl VendorClient {
    pub fn new(
        http: reqwest::Client,
        user_agent: impl Into<String>,
        timeout: Duration,
        loopback: LoopbackHttp,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            http,
            loopback,
            user_agent: user_agent.into(),
            timeout,
            clock,
        }
    }

    /// POSTs `body` to `url`, signed with `secret` under message id `msg_id`, trying as `tries`
    /// says (timeouts, network errors, 429 and 5xx are tried again; any other answer is final).
    pub async fn send(
        &self,
        url: &Url,
        secret: &SecretString,
        msg_id: &str,
        body: &[u8],
        tries: Backoff,
    ) -> Result<VendorReply, VendorError> {
        let attempts = tries.tries.max(1);
        check_order_url(url, self.loopback).map_err(VendorError::UrlNotAllowed)?;
        let signer = standardwebhooks::Webhook::new(secret.expose_secret())
            .map_err(|_| VendorError::BadSecret)?;
        let mut last = String::new();
        for attempt in 0..attempts {
            if attempt > 0 {
                tries.wait(attempt).await;
            }
            let ts = self.clock.now().as_secs();
            let signature = signer
                .sign(msg_id, ts, body)
                .map_err(|_| VendorError::BadSecret)?;
            let sent = self
                .http
                .post(url.clone())
                .timeout(self.timeout)
                .header(http::header::CONTENT_TYPE, "application/json")
                .header(http::header::USER_AGENT, &self.user_agent)
                .header(standardwebhooks::HEADER_WEBHOOK_ID, msg_id)
                .header(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, ts.to_string())
                .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature)
                .body(body.to_vec())
                .send();
            let sent = crate::waits::waiting(sent).await;
            let resp = match sent {
                Ok(r) => r,
                Err(e) => {
                    last = describe_transport(&e);
                    continue;
                }
            };
            let status = resp.status();
            if status.is_success() {
                let parsed: AcceptedBody = resp
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice(&b).ok())
                    .unwrap_or_default();
                return Ok(VendorReply::Accepted {
                    vendor_reference: parsed.vendor_reference.and_then(|v| match v {
                        serde_json::Value::String(s) => Some(clip(&s)),
                        serde_json::Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    }),
                    status_label: parsed.status_label.map(|s| clip(&s)),
                });
            }
            if status.as_u16() == 422 {
                let message = resp
                    .bytes()
                    .await
                    .ok()
                    .and_then(|b| serde_json::from_slice::<RejectedBody>(&b).ok())
                    .map(|b| clip(b.message.trim()))
                    .filter(|m| !m.is_empty())
                    .unwrap_or_else(|| "The provider could not accept this request.".into());
                return Ok(VendorReply::Rejected { message });
            }
            if status.as_u16() == 429 || status.is_server_error() {
                last = format!("HTTP {}", status.as_u16());
                continue;
            }
            return Err(VendorError::Refused(status.as_u16()));
        }
        Err(VendorError::Unavailable { attempts, last })
    }

    /// Downloads a report file a vendor attached: `url` must pass the outbound-URL guard, the
    /// answer must be a 2xx of at most `max_bytes` whose media type is `content_type`. Read in
    /// chunks, so an oversized file is refused without being held whole.
    pub async fn download(
        &self,
        url: &Url,
        content_type: &str,
        max_bytes: u64,
    ) -> Result<Vec<u8>, FetchError> {
        check_outbound_url(url, self.loopback, "attachment url").map_err(FetchError::Refused)?;
        let resp = self
            .http
            .get(url.clone())
            .timeout(self.timeout.max(DOWNLOAD_TIMEOUT))
            .header(http::header::USER_AGENT, &self.user_agent)
            .send();
        let mut resp = crate::waits::waiting(resp)
            .await
            .map_err(|e| FetchError::Unavailable(describe_transport(&e)))?;
        let status = resp.status();
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(FetchError::Unavailable(format!("HTTP {}", status.as_u16())));
        }
        if !status.is_success() {
            return Err(FetchError::Refused(format!(
                "the vendor answered HTTP {} for the file",
                status.as_u16()
            )));
        }
        let served = resp
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        if served != content_type {
            return Err(FetchError::Refused(format!(
                "the file is served as {:?}, not the declared {content_type}",
                served.chars().take(60).collect::<String>()
            )));
        }
        if resp.content_length().is_some_and(|n| n > max_bytes) {
            return Err(FetchError::Refused(too_large(max_bytes)));
        }
        let mut bytes = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::Unavailable(describe_transport(&e)))?
        {
            if (bytes.len() + chunk.len()) as u64 > max_bytes {
                return Err(FetchError::Refused(too_large(max_bytes)));
            }
            bytes.extend_from_slice(&chunk);
        }
        if bytes.is_empty() {
            return Err(FetchError::Refused("the file is empty".into()));
        }
        Ok(bytes)
    }
}

/// How long the download of one report file may take.
const DOWNLOAD_TIMEOUT: Duration = Duration::from_secs(20);

fn too_large(max: u64) -> String {
    format!("the file is larger than {} MiB", max / (1024 * 1024))
}

/// Why a report file could not be downloaded. Texts carry no URL (it may hold a token).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum FetchError {
    /// Unreachable, timed out, 429 or 5xx: worth another try later.
    #[error("file download failed: {0}")]
    Unavailable(String),
    /// Refused for good: the URL is not allowed, the vendor answered 4xx, or the file is too
    /// large, empty or not of its declared type.
    #[error("file refused: {0}")]
    Refused(String),
}
