//! A recording HTTP proxy on loopback in front of the AWS emulator. Point one process's
//! `AWS_ENDPOINT_URL` at [`AwsProxy::url`] and every AWS call it makes goes through unchanged
//! (moto does not check signatures, so the `Host` rewrite is harmless) and is recorded with its
//! operation, as IAM names it: `X-Amz-Target: DynamoDB_20120810.GetItem` is `dynamodb:GetItem`,
//! `secretsmanager.GetSecretValue` is `secretsmanager:GetSecretValue`. A request without that
//! header (a protocol this proxy does not understand) is recorded as `unknown:<METHOD> <path>`,
//! so that it fails any comparison instead of passing unseen.
//!
//! One proxy per function gives the AWS operations of that function's code path (the IAM test);
//! one proxy per run counts the calls of a lifecycle (the benchmark).

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// One AWS call that went through the proxy.
#[derive(Debug, Clone)]
pub struct AwsCall {
    /// `service:Operation`, e.g. `dynamodb:TransactWriteItems`.
    pub operation: String,
    /// The request body: JSON in the AWS JSON protocols DynamoDB and Secrets Manager speak
    /// (`Value::Null` if it was not JSON).
    pub body: Value,
}

impl AwsCall {
    /// The kinds of the items of a `TransactWriteItems` or `TransactGetItems` call, in order:
    /// `Put`, `Update`, `Delete`, `ConditionCheck` or `Get`. Empty for any other call.
    pub fn transact_parts(&self) -> Vec<String> {
        self.body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| item.as_object()?.keys().next().cloned())
            .collect()
    }

    /// Every table the call names, transaction items included.
    pub fn table_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.body["TableName"]
            .as_str()
            .map(str::to_owned)
            .into_iter()
            .collect();
        for item in self.body["TransactItems"].as_array().into_iter().flatten() {
            if let Some(part) = item.as_object().and_then(|o| o.values().next()) {
                names.extend(part["TableName"].as_str().map(str::to_owned));
            }
        }
        if let Some(tables) = self.body["RequestItems"].as_object() {
            names.extend(tables.keys().cloned());
        }
        names
    }

    /// The secondary index a `Query` or `Scan` reads, if any.
    pub fn index_name(&self) -> Option<&str> {
        self.body["IndexName"].as_str()
    }

    /// The secret a Secrets Manager call names.
    pub fn secret_id(&self) -> Option<&str> {
        self.body["SecretId"]
            .as_str()
            .or_else(|| self.body["Name"].as_str())
    }
}

struct Inner {
    upstream: String,
    client: reqwest::Client,
    calls: Mutex<Vec<AwsCall>>,
    fault: Mutex<Option<(Vec<String>, Fault)>>,
}

/// An error the proxy answers instead of forwarding, for fault-injection tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// DynamoDB's `ProvisionedThroughputExceededException` (HTTP 400): the SDK retries it a few
    /// times, then gives up.
    Throttle,
    /// DynamoDB's `InternalServerError` (HTTP 500).
    ServerError,
}

/// The running proxy; dropping it stops it.
pub struct AwsProxy {
    url: String,
    inner: Arc<Inner>,
    server: tokio::task::JoinHandle<()>,
}

impl AwsProxy {
    /// Starts a proxy on a free loopback port that forwards to `upstream` (e.g. moto's URL).
    pub async fn start(upstream: &str) -> Self {
        let inner = Arc::new(Inner {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            calls: Mutex::new(Vec::new()),
            fault: Mutex::new(None),
        });
        let router = axum::Router::new()
            .fallback(forward)
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { url, inner, server }
    }

    /// The URL to use as `AWS_ENDPOINT_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The operations recorded so far, in the order they arrived.
    pub fn operations(&self) -> Vec<String> {
        self.calls().into_iter().map(|c| c.operation).collect()
    }

    /// The calls recorded so far, with their bodies.
    pub fn calls(&self) -> Vec<AwsCall> {
        self.inner.calls.lock().unwrap().clone()
    }

    /// From now on, answers every call to one of `operations` (e.g. `dynamodb:PutItem`) with
    /// `fault` instead of forwarding it. Calls are still recorded.
    pub fn set_fault(&self, operations: &[&str], fault: Fault) {
        *self.inner.fault.lock().unwrap() =
            Some((operations.iter().map(|o| (*o).to_owned()).collect(), fault));
    }

    /// Forwards everything again.
    pub fn clear_fault(&self) {
        *self.inner.fault.lock().unwrap() = None;
    }

    /// Forgets what was recorded; the proxy keeps forwarding.
    pub fn reset(&self) {
        self.inner.calls.lock().unwrap().clear();
    }
}

impl Drop for AwsProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// `DynamoDB_20120810.GetItem` → `dynamodb:GetItem`; `secretsmanager.GetSecretValue` →
/// `secretsmanager:GetSecretValue`. The IAM service prefix is the target prefix without its API
/// version, lower-cased.
fn operation(target: Option<&str>, method: &str, path: &str) -> String {
    match target.and_then(|t| t.split_once('.')) {
        Some((prefix, op)) => {
            let service = prefix.split('_').next().unwrap_or(prefix);
            format!("{}:{op}", service.to_ascii_lowercase())
        }
        None => format!("unknown:{method} {path}"),
    }
}

/// Headers that belong to one hop, not to the request or response being relayed.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "host" | "connection" | "content-length" | "transfer-encoding" | "keep-alive" | "upgrade"
    )
}

async fn forward(State(inner): State<Arc<Inner>>, req: axum::extract::Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 64 * 1024 * 1024).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok());
    let op = operation(target, parts.method.as_str(), parts.uri.path());
    inner.calls.lock().unwrap().push(AwsCall {
        operation: op.clone(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    let fault = inner
        .fault
        .lock()
        .unwrap()
        .as_ref()
        .filter(|(ops, _)| ops.contains(&op))
        .map(|(_, f)| *f);
    if let Some(fault) = fault {
        let (status, kind) = match fault {
            Fault::Throttle => (
                StatusCode::BAD_REQUEST,
                "ProvisionedThroughputExceededException",
            ),
            Fault::ServerError => (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError"),
        };
        let body = serde_json::json!({
            "__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"),
            "message": "injected by the test proxy",
        });
        let mut out = (status, body.to_string()).into_response();
        out.headers_mut().insert(
            "content-type",
            axum::http::HeaderValue::from_static("application/x-amz-json-1.0"),
        );
        out.headers_mut().insert(
            "x-amzn-errortype",
            axum::http::HeaderValue::from_static(kind),
        );
        return out;
    }

    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = inner
        .client
        .request(parts.method.clone(), format!("{}{path}", inner.upstream))
        .body(body);
    for (name, value) in &parts.headers {
        if !hop_by_hop(name) {
            upstream = upstream.header(name, value);
        }
    }
    let resp = match upstream.send().await {
        Ok(r) => r,
        Err(e) => return (StatusCode::BAD_GATEWAY, format!("proxy: {e}")).into_response(),
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.bytes().await.unwrap_or_default();
    let mut out = (status, bytes).into_response();
    for (name, value) in &headers {
        if !hop_by_hop(name) {
            out.headers_mut().append(name, value.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_become_iam_actions() {
        assert_eq!(
            operation(Some("DynamoDB_20120810.TransactWriteItems"), "POST", "/"),
            "dynamodb:TransactWriteItems"
        );
        assert_eq!(
            operation(Some("secretsmanager.GetSecretValue"), "POST", "/"),
            "secretsmanager:GetSecretValue"
        );
        assert_eq!(operation(None, "GET", "/x"), "unknown:GET /x");
    }

    #[test]
    fn a_transaction_names_its_parts_and_tables() {
        let call = AwsCall {
            operation: "dynamodb:TransactWriteItems".into(),
            body: serde_json::json!({"TransactItems": [
                {"Put": {"TableName": "t", "Item": {}}},
                {"Update": {"TableName": "t", "Key": {}}},
                {"ConditionCheck": {"TableName": "u", "Key": {}}},
            ]}),
        };
        assert_eq!(call.transact_parts(), ["Put", "Update", "ConditionCheck"]);
        assert_eq!(call.table_names(), ["t", "t", "u"]);
        assert_eq!(call.index_name(), None);
    }
}
