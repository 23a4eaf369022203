//! The hub's one HTTP client, for every outbound call: DynamoDB and Secrets Manager (as the AWS
//! SDK's transport), vendors and Ashby. One TLS configuration and one connection pool, and one
//! HTTP stack in each function instead of the SDK's own beside reqwest's.
//!
//! The TLS trust store is Mozilla's root certificates as compiled into `webpki-roots`, so that a
//! cold start reads and parses no certificate file: loading the system store took most of a
//! function's init, twice over (once for the SDK's client, once for reqwest's), in the benchmark
//! (docs/performance.md). The roots change when the crate is updated and the functions are
//! rebuilt, which a deployment does anyway.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::retry::ErrorKind;

/// The TLS settings every outbound connection uses: TLS 1.2 and 1.3 with aws-lc-rs, Mozilla's
/// roots.
fn tls_config() -> anyhow::Result<rustls::ClientConfig> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("TLS protocol versions")?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// The shared client: no redirects followed, a connect timeout; each call sets its own overall
/// timeout (the SDK's read timeout, `HUB_VENDOR_TIMEOUT_MS`, `HUB_ASHBY_TIMEOUT_MS`).
pub fn http_client(connect_timeout: Duration) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .use_preconfigured_tls(tls_config()?)
        .connect_timeout(connect_timeout)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .context("building the HTTP client")
}

/// The AWS SDK's transport over the shared client.
#[derive(Debug, Clone)]
pub struct SdkTransport {
    client: reqwest::Client,
}

impl SdkTransport {
    pub fn new(client: reqwest::Client) -> Self {
        Self { client }
    }
}

impl HttpClient for SdkTransport {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Connector {
            client: self.client.clone(),
            read_timeout: settings.read_timeout(),
        })
    }
}

#[derive(Debug)]
struct Connector {
    client: reqwest::Client,
    read_timeout: Option<Duration>,
}

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = self.client.clone();
        let read_timeout = self.read_timeout;
        HttpConnectorFuture::new(async move {
            // DynamoDB and Secrets Manager requests are JSON in memory, never streamed.
            let body = request.body().bytes().map(<[u8]>::to_vec).ok_or_else(|| {
                ConnectorError::user("streaming request bodies are not supported".into())
                    .never_connected()
            })?;
            let method = reqwest::Method::from_bytes(request.method().as_bytes())
                .map_err(|e| ConnectorError::user(e.into()).never_connected())?;
            let mut outbound = client.request(method, request.uri()).body(body);
            for (name, value) in request.headers().iter() {
                outbound = outbound.header(name, value);
            }
            if let Some(t) = read_timeout {
                outbound = outbound.timeout(t);
            }
            let response = outbound.send().await.map_err(classify)?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let bytes = response.bytes().await.map_err(classify)?;
            let mut out = HttpResponse::new(
                status
                    .try_into()
                    .map_err(|e: aws_smithy_runtime_api::http::HttpError| {
                        ConnectorError::other(e.into(), None)
                    })?,
                SdkBody::from(bytes),
            );
            for (name, value) in &headers {
                if let Ok(value) = value.to_str() {
                    out.headers_mut()
                        .append(name.as_str().to_owned(), value.to_owned());
                }
            }
            Ok(out)
        })
    }
}

/// Sorts a transport failure the way the SDK's retry policy expects: timeouts and broken
/// connections are retried, a request that could not be built is not.
fn classify(e: reqwest::Error) -> ConnectorError {
    if e.is_timeout() {
        ConnectorError::timeout(e.into())
    } else if e.is_builder() {
        ConnectorError::user(e.into()).never_connected()
    } else if e.is_connect() {
        ConnectorError::io(e.into()).never_connected()
    } else if e.is_request() || e.is_body() {
        ConnectorError::io(e.into())
    } else {
        ConnectorError::other(e.into(), Some(ErrorKind::TransientError))
    }
}

/// A transport error without the URL (which may carry a query string) or any body.
pub fn describe_transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection failed".into()
    } else if e.is_body() || e.is_decode() {
        "response body unreadable".into()
    } else {
        "request failed".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reqwest_accepts_the_tls_configuration() {
        // `use_preconfigured_tls` takes `Any` and refuses a configuration from another rustls
        // version than its own, at build time: this is where a dependency update would show it.
        http_client(Duration::from_secs(1)).expect("a client with that configuration");
    }

    #[tokio::test]
    async fn a_refused_connection_is_an_io_error_the_sdk_retries() {
        // A port nothing listens on: bound, then released.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let client = http_client(Duration::from_secs(1)).expect("client");
        let err = client
            .get(format!("http://127.0.0.1:{port}/"))
            .send()
            .await
            .expect_err("nothing listens");
        let e = classify(err);
        assert!(e.is_io(), "{e:?}");
    }
}
