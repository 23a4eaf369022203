//! Delivers `assessment.update` to Ashby with the tenant's API key. The key is sent as the Basic
//! username with an empty password, per Ashby's authentication docs; it never appears in an error.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::transport::describe_transport;

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
    #[error("Ashby rejected the update (HTTP {status}, code {code})")]
    Rejected { status: u16, code: String },
}

#[derive(Clone)]
pub struct AshbyClient {
    http: reqwest::Client,
    user_agent: String,
    timeout: Duration,
}

impl AshbyClient {
    pub fn new(http: reqwest::Client, user_agent: impl Into<String>, timeout: Duration) -> Self {
        Self {
            http,
            user_agent: user_agent.into(),
            timeout,
        }
    }

    /// POSTs one `assessment.update` body. Success means HTTP 2xx and `success` not false.
    pub async fn update(
        &self,
        base_url: &Url,
        api_key: &SecretString,
        body: &str,
    ) -> Result<(), AshbyError> {
        let url = endpoint(base_url, "assessment.update");
        let resp = self
            .http
            .post(url)
            .timeout(self.timeout)
            .basic_auth(api_key.expose_secret(), Some(""))
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "application/json; version=1")
            .header(http::header::USER_AGENT, &self.user_agent)
            .body(body.to_owned())
            .send();
        let resp = crate::waits::waiting(resp)
            .await
            .map_err(|e| AshbyError::Unavailable(describe_transport(&e)))?;
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
        let parsed: Option<serde_json::Value> = serde_json::from_str(&text).ok();
        let code = parsed
            .as_ref()
            .and_then(|v| v.pointer("/errorInfo/code"))
            .and_then(|v| v.as_str())
            .unwrap_or("unknown")
            .chars()
            .take(64)
            .collect::<String>();
        if !status.is_success() {
            return Err(AshbyError::Rejected {
                status: status.as_u16(),
                code,
            });
        }
        if parsed.as_ref().and_then(|v| v.get("success")) == Some(&serde_json::Value::Bool(false)) {
            return Err(AshbyError::Rejected {
                status: status.as_u16(),
                code,
            });
        }
        Ok(())
    }
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
