//! Sends the empty `PATCH` that tells Greenhouse a test has news, with the tenant's partner key
//! as the Basic username and an empty password (CONTRACT.md §2). The `url` is Greenhouse's, from
//! `send_test`; it goes through the same outbound-URL guard as vendor order URLs (https, no
//! private addresses; plain http to loopback only in local runs). Errors never carry the key.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::ExposeSecret;

use super::{AtsPatch, PatchBody};
use crate::ats::AtsError;
use crate::domain::Tenant;
use crate::secrets::{SecretError, SecretNames, SecretSource};
use crate::transport::describe_transport;
use crate::vendors::url_policy::{LoopbackHttp, check_outbound_url};

pub struct GreenhouseClient {
    http: reqwest::Client,
    user_agent: String,
    timeout: Duration,
    loopback: LoopbackHttp,
    secrets: Arc<dyn SecretSource>,
    names: SecretNames,
}

impl GreenhouseClient {
    pub fn new(
        http: reqwest::Client,
        user_agent: impl Into<String>,
        timeout: Duration,
        loopback: LoopbackHttp,
        secrets: Arc<dyn SecretSource>,
        names: SecretNames,
    ) -> Self {
        Self {
            http,
            user_agent: user_agent.into(),
            timeout,
            loopback,
            secrets,
            names,
        }
    }
}

/// Whether the hub will call `url` as a Greenhouse `url` (the `send_test` check and the `PATCH`).
pub fn check_url(url: &str, loopback: LoopbackHttp) -> Result<url::Url, String> {
    let parsed = url::Url::parse(url).map_err(|_| "url must be an absolute URL".to_owned())?;
    check_outbound_url(&parsed, loopback, "url")?;
    Ok(parsed)
}

#[async_trait]
impl AtsPatch for GreenhouseClient {
    async fn patch(&self, tenant: &Tenant, body: &str) -> Result<(), AtsError> {
        let PatchBody { url } = serde_json::from_str(body)
            .map_err(|_| AtsError::Rejected("the queued PATCH is not readable".into()))?;
        let url = check_url(&url, self.loopback)
            .map_err(|e| AtsError::Rejected(format!("Greenhouse url refused: {e}")))?;
        let key = match self
            .secrets
            .current(&self.names.greenhouse_partner_key(&tenant.id))
            .await
        {
            Ok(k) => k,
            Err(SecretError::NotFound(_)) => return Err(AtsError::NoCredentials),
            Err(e) => return Err(AtsError::Unavailable(e.to_string())),
        };
        let resp = self
            .http
            .patch(url)
            .timeout(self.timeout)
            .basic_auth(key.expose_secret(), Some(""))
            .header(http::header::USER_AGENT, &self.user_agent)
            .send();
        let resp = crate::waits::waiting(resp).await.map_err(|e| {
            AtsError::Unavailable(format!(
                "Greenhouse unavailable: {}",
                describe_transport(&e)
            ))
        })?;
        let status = resp.status().as_u16();
        match status {
            200..=299 => Ok(()),
            401 | 403 => Err(AtsError::Unauthorized(format!(
                "Greenhouse refused the partner key (HTTP {status}): check the key Greenhouse \
                 holds for this tenant, then redeliver"
            ))),
            429 => Err(AtsError::RateLimited {
                retry_after: resp
                    .headers()
                    .get(http::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs),
                partner_wide: false,
                detail: "Greenhouse rate limited the PATCH".into(),
            }),
            s if s >= 500 => Err(AtsError::Unavailable(format!(
                "Greenhouse unavailable: HTTP {s}"
            ))),
            s => Err(AtsError::Rejected(format!(
                "Greenhouse rejected the PATCH (HTTP {s})"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_greenhouse_url_must_be_https_and_public_unless_local() {
        assert!(check_url("https://app.greenhouse.io/x", LoopbackHttp::Refuse).is_ok());
        assert!(check_url("http://127.0.0.1:9/x", LoopbackHttp::Allow).is_ok());
        for bad in [
            "http://127.0.0.1:9/x",
            "http://app.greenhouse.io/x",
            "https://10.0.0.1/x",
            "https://169.254.169.254/latest",
            "not a url",
        ] {
            let e = check_url(bad, LoopbackHttp::Refuse).expect_err(bad);
            assert!(
                !e.contains("order_url"),
                "worded for the send_test field: {e}"
            );
        }
    }
}
