//! Calls Ashby with the tenant's API key: `assessment.update`, and the three steps that put a
//! report file on a candidate. The key is sent as the Basic username with an empty password, per
//! Ashby's authentication docs; it never appears in an error.
//!
//! Every call pins the API version the hub was built against (`Ashby-Version`, CONTRACT.md §11),
//! and every answer's `Ashby-Version-Status` is read: a version Ashby no longer calls active is
//! logged once per process and counted (`AshbyVersionNotActive`, with an alarm), so operators
//! hear of a deprecation months before the version is retired.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use url::Url;

use crate::metrics::{Metrics, names};
use crate::transport::describe_transport;
use crate::vendors::url_policy::{LoopbackHttp, check_outbound_url};

/// The request header that picks a version, and the answer's headers that report on it.
pub const VERSION_HEADER: &str = "ashby-version";
pub const VERSION_STATUS_HEADER: &str = "ashby-version-status";

/// Why Ashby did not accept an update. Messages carry no key and no candidate data.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum AshbyError {
    /// Network error, timeout or 5xx: worth retrying.
    #[error("Ashby unavailable: {0}")]
    Unavailable(String),
    /// 429. `partner_wide` is set when Ashby throttles the partner across all customers.
    #[error("Ashby rate limited the request")]
    RateLimited {
        retry_after: Option<Duration>,
        partner_wide: bool,
    },
    /// 401/403: the tenant's key is missing, revoked or lacks Candidates write.
    #[error("Ashby refused the API key (HTTP {0})")]
    Unauthorized(u16),
    /// Any other refusal, including HTTP 200 with `success: false`.
    #[error("Ashby rejected the request (HTTP {status}, code {code})")]
    Rejected { status: u16, code: String },
}

/// Watches the `Ashby-Version-Status` of Ashby's answers: the first answer whose status is not
/// active is logged (once per process: a cold start), and each one is counted.
#[derive(Debug)]
struct VersionWatch {
    version: String,
    warned: AtomicBool,
    metrics: Arc<Metrics>,
}

impl VersionWatch {
    fn observe(&self, headers: &http::HeaderMap) {
        let Some(status) = headers
            .get(VERSION_STATUS_HEADER)
            .and_then(|v| v.to_str().ok())
        else {
            return;
        };
        if status.trim().eq_ignore_ascii_case("active") {
            return;
        }
        self.metrics.count(names::ASHBY_VERSION_NOT_ACTIVE, 1);
        if !self.warned.swap(true, Ordering::Relaxed) {
            // The status is Ashby's word, not candidate data; bounded and printable only.
            let status: String = status
                .chars()
                .filter(|c| c.is_ascii_graphic() || *c == ' ')
                .take(40)
                .collect();
            tracing::warn!(
                version = self.version.as_str(),
                status = status.as_str(),
                "Ashby reports that the API version the hub pins is no longer active: plan the \
                 move to a newer version (HUB_ASHBY_VERSION) before Ashby retires it"
            );
        }
    }
}

#[derive(Clone)]
pub struct AshbyClient {
    http: reqwest::Client,
    user_agent: String,
    timeout: Duration,
    watch: Arc<VersionWatch>,
    /// Whether the storage URL of a file upload may be plain http on loopback (local runs).
    loopback: LoopbackHttp,
}

impl AshbyClient {
    /// A client sending `Ashby-Version: version` on every call; what Ashby says of that version
    /// is counted in `metrics`.
    pub fn new(
        http: reqwest::Client,
        user_agent: impl Into<String>,
        timeout: Duration,
        version: impl Into<String>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            http,
            user_agent: user_agent.into(),
            timeout,
            watch: Arc::new(VersionWatch {
                version: version.into(),
                warned: AtomicBool::new(false),
                metrics,
            }),
            loopback: LoopbackHttp::Refuse,
        }
    }

    /// Allows (or refuses) plain http to loopback for the storage URL Ashby returns: the
    /// allowance local runs give vendor URLs (`HUB_ALLOW_INSECURE_LOOPBACK`).
    pub fn with_loopback(mut self, loopback: LoopbackHttp) -> Self {
        self.loopback = loopback;
        self
    }

    /// The version every call pins.
    pub fn version(&self) -> &str {
        &self.watch.version
    }

    /// A POST to one of Ashby's RPC methods with the key, the pinned version and a JSON body.
    fn rpc(&self, base_url: &Url, method: &str, api_key: &SecretString) -> reqwest::RequestBuilder {
        self.http
            .post(endpoint(base_url, method))
            .timeout(self.timeout)
            .basic_auth(api_key.expose_secret(), Some(""))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json; version=1")
            .header(http::header::USER_AGENT, &self.user_agent)
            .header(VERSION_HEADER, self.version())
    }

    /// POSTs one `assessment.update` body. Success means HTTP 2xx and `success` not false.
    pub async fn update(
        &self,
        base_url: &Url,
        api_key: &SecretString,
        body: &str,
    ) -> Result<(), AshbyError> {
        self.call(base_url, "assessment.update", api_key, body.to_owned())
            .await
            .map(drop)
    }

    /// Step 1 of a file upload: `file.createFileUploadHandle` for a candidate file. The answer's
    /// URL expires after 10 minutes.
    pub async fn create_upload_handle(
        &self,
        base_url: &Url,
        api_key: &SecretString,
        request: &CreateFileUploadHandle<'_>,
    ) -> Result<UploadHandle, AshbyError> {
        let body = serde_json::to_string(request)
            .map_err(|e| AshbyError::Unavailable(format!("serialising the request: {e}")))?;
        let answer = self
            .call(base_url, "file.createFileUploadHandle", api_key, body)
            .await?;
        serde_json::from_value::<HandleAnswer>(answer)
            .map(|a| a.results)
            .map_err(|_| AshbyError::Rejected {
                status: 200,
                code: "unreadable_upload_handle".into(),
            })
    }

    /// Step 2: the file to the storage URL of step 1, as `multipart/form-data` with every field
    /// Ashby returned first and the file last, named `file`. No Ashby key: it goes to storage.
    pub async fn upload_to_storage(
        &self,
        handle: &UploadHandle,
        file: Upload,
    ) -> Result<(), StorageError> {
        let url = Url::parse(&handle.url)
            .map_err(|_| StorageError::NotAllowed("the upload URL is not a URL".into()))?;
        check_outbound_url(&url, self.loopback, "the upload URL")
            .map_err(StorageError::NotAllowed)?;
        let mut form = reqwest::multipart::Form::new();
        for (name, value) in &handle.fields {
            form = form.text(name.clone(), value.clone());
        }
        let part = reqwest::multipart::Part::bytes(file.bytes)
            .file_name(file.filename)
            .mime_str(&file.content_type)
            .map_err(|_| StorageError::NotAllowed("the media type is malformed".into()))?;
        form = form.part("file", part);
        let resp = self
            .http
            .post(url)
            .timeout(self.timeout.max(UPLOAD_TIMEOUT))
            .header(http::header::USER_AGENT, &self.user_agent)
            .multipart(form)
            .send();
        let resp = crate::waits::waiting(resp)
            .await
            .map_err(|e| StorageError::Unavailable(describe_transport(&e)))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status.as_u16() == 429 {
            Err(StorageError::Unavailable(format!(
                "HTTP {}",
                status.as_u16()
            )))
        } else {
            // Storage answers 403 (or 400) once the presigned URL has expired.
            Err(StorageError::Refused(status.as_u16()))
        }
    }

    /// Step 3: `candidate.uploadFile` puts the uploaded file on the candidate.
    pub async fn attach_to_candidate(
        &self,
        base_url: &Url,
        api_key: &SecretString,
        candidate_id: &str,
        file_handle: &str,
    ) -> Result<(), AshbyError> {
        let body = serde_json::to_string(&CandidateUploadFile {
            candidate_id,
            file_handle,
        })
        .map_err(|e| AshbyError::Unavailable(format!("serialising the request: {e}")))?;
        self.call(base_url, "candidate.uploadFile", api_key, body)
            .await
            .map(drop)
    }

    /// `apiKey.info` with a key a customer pasted (CONTRACT.md §11): what Ashby says the key may
    /// do. Never retried (the customer is waiting); the key is not kept.
    pub async fn api_key_info(&self, base_url: &Url, api_key: &SecretString) -> KeyInfo {
        let resp = self.rpc(base_url, "apiKey.info", api_key).body("{}").send();
        let resp = match crate::waits::waiting(resp).await {
            Ok(r) => r,
            Err(e) => return KeyInfo::Unavailable(describe_transport(&e)),
        };
        self.watch.observe(resp.headers());
        let status = resp.status().as_u16();
        if status == 429 || resp.status().is_server_error() {
            return KeyInfo::Unavailable(format!("HTTP {status}"));
        }
        let parsed: serde_json::Value = match resp.text().await {
            Ok(t) => serde_json::from_str(&t).unwrap_or(serde_json::Value::Null),
            Err(e) => return KeyInfo::Unavailable(describe_transport(&e)),
        };
        let code = parsed.pointer("/errorInfo/code").and_then(|v| v.as_str());
        match status {
            403 if code == Some("missing_endpoint_permission") => KeyInfo::CannotReadScopes,
            401 | 403 => KeyInfo::Refused(status),
            200..=299 if parsed.get("success") != Some(&serde_json::Value::Bool(false)) => {
                match serde_json::from_value::<ApiKeyInfoAnswer>(parsed) {
                    Ok(a) => KeyInfo::Scopes {
                        title: a.results.title.unwrap_or_default(),
                        scopes: a.results.scopes,
                    },
                    Err(_) => KeyInfo::Unavailable("an unreadable apiKey.info answer".into()),
                }
            }
            // `success: false` on a 200: Ashby's error envelope for a refused key.
            200..=299 if code == Some("missing_endpoint_permission") => KeyInfo::CannotReadScopes,
            _ => KeyInfo::Refused(status),
        }
    }

    /// One RPC call: success means HTTP 2xx and `success` not false; the parsed answer (or
    /// `null` when it was not JSON).
    async fn call(
        &self,
        base_url: &Url,
        method: &str,
        api_key: &SecretString,
        body: String,
    ) -> Result<serde_json::Value, AshbyError> {
        let resp = self.rpc(base_url, method, api_key).body(body).send();
        let resp = crate::waits::waiting(resp)
            .await
            .map_err(|e| AshbyError::Unavailable(describe_transport(&e)))?;
        self.watch.observe(resp.headers());
        let status = resp.status();
        if status.as_u16() == 429 {
            let retry_after = resp
                .headers()
                .get(http::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let partner_wide = resp
                .headers()
                .get("x-ratelimit-scope")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.eq_ignore_ascii_case("integration-partner"));
            return Err(AshbyError::RateLimited {
                retry_after,
                partner_wide,
            });
        }
        if status.is_server_error() {
            return Err(AshbyError::Unavailable(format!("HTTP {}", status.as_u16())));
        }
        if status.as_u16() == 401 || status.as_u16() == 403 {
            return Err(AshbyError::Unauthorized(status.as_u16()));
        }
        let text = resp
            .text()
            .await
            .map_err(|e| AshbyError::Unavailable(describe_transport(&e)))?;
        let parsed: serde_json::Value =
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
        let code = parsed
            .pointer("/errorInfo/code")
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .chars()
            .take(64)
            .collect::<String>();
        if !status.is_success() || parsed.get("success") == Some(&serde_json::Value::Bool(false)) {
            return Err(AshbyError::Rejected {
                status: status.as_u16(),
                code,
            });
        }
        Ok(parsed)
    }
}

/// What `apiKey.info` said of a key.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyInfo {
    /// The key works; its title and scopes (`<module>:<read|write>`).
    Scopes { title: String, scopes: Vec<String> },
    /// 403 `missing_endpoint_permission`: the key works but may not read its own scopes.
    CannotReadScopes,
    /// 401, another 403, or another refusal: the key does not work.
    Refused(u16),
    /// Ashby could not be reached, timed out or failed (5xx, 429).
    Unavailable(String),
}

/// The scope `assessment.update` and the file uploads need.
pub const CANDIDATES_WRITE: &str = "candidates:write";

#[derive(Deserialize)]
struct ApiKeyInfoAnswer {
    results: ApiKeyInfoResults,
}

#[derive(Deserialize)]
struct ApiKeyInfoResults {
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
}

/// How long the upload of one file to storage may take (up to 10 MB).
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(20);

/// `file.createFileUploadHandle`'s request (`extras-schemas.json`).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateFileUploadHandle<'a> {
    pub file_upload_context: &'static str,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub content_length: u64,
}

/// Where a file goes in step 2, and the handle step 3 names it by.
#[derive(Debug, Clone, Deserialize)]
pub struct UploadHandle {
    pub handle: String,
    pub url: String,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct HandleAnswer {
    results: UploadHandle,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CandidateUploadFile<'a> {
    candidate_id: &'a str,
    file_handle: &'a str,
}

/// A file to upload.
pub struct Upload {
    pub filename: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

/// Why storage did not take a file (step 2).
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum StorageError {
    /// Unreachable, timed out, 5xx or 429: worth another try with the same URL.
    #[error("Ashby's file storage unavailable: {0}")]
    Unavailable(String),
    /// Refused (an expired upload URL answers 403): start again from step 1.
    #[error("Ashby's file storage refused the upload (HTTP {0})")]
    Refused(u16),
    /// The upload URL Ashby returned is not one the hub may call (see `url_policy`).
    #[error("Ashby's upload URL refused: {0}")]
    NotAllowed(String),
}

/// `base` + `/method`, whether or not `base` ends in a slash.
pub fn endpoint(base: &Url, method: &str) -> Url {
    let mut url = base.clone();
    let path = format!("{}/{method}", base.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_joins_with_exactly_one_slash() {
        let a = Url::parse("https://api.ashbyhq.com").expect("url");
        let b = Url::parse("http://127.0.0.1:9/prefix/").expect("url");
        assert_eq!(
            endpoint(&a, "assessment.update").as_str(),
            "https://api.ashbyhq.com/assessment.update"
        );
        assert_eq!(
            endpoint(&b, "assessment.update").as_str(),
            "http://127.0.0.1:9/prefix/assessment.update"
        );
    }
}
