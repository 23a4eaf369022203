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
//!
//! Each call is recorded with its answer. The proxy relays any HTTP, so it also stands in front of
//! the fake vendor and Ashby to count calls to them. For the benchmark's capacity units it can
//! also read, around every DynamoDB write, the items the write touches
//! (see [`AwsProxy::measure_items`]). And since moto makes a new table or index active at once,
//! it can make them take their time, as DynamoDB does (see [`AwsProxy::activate_after`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// The answer's status.
    pub status: u16,
    /// The answer's body.
    pub response: axum::body::Bytes,
    /// With [`AwsProxy::measure_items`] on, for a DynamoDB write: each item it names, as it was
    /// before and after the call (`Value::Null` where there was none).
    pub items: Vec<(Value, Value)>,
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

    /// The answer as JSON (`Value::Null` if it was not JSON).
    pub fn response_json(&self) -> Value {
        serde_json::from_slice(&self.response).unwrap_or(Value::Null)
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
    measure_items: AtomicBool,
    activation: Mutex<Activation>,
}

/// Tables and indexes that are still being created, as the proxy pretends.
#[derive(Default)]
struct Activation {
    /// How long a table or index created from now on stays CREATING; `None`: active at once.
    after: Option<Duration>,
    /// Table name → when it becomes active.
    tables: HashMap<String, Instant>,
    /// Table name → when the index being added to it becomes active.
    indexes: HashMap<String, Instant>,
}

impl Activation {
    fn table_creating(&self, table: &str) -> bool {
        self.tables
            .get(table)
            .is_some_and(|at| Instant::now() < *at)
    }
    fn index_creating(&self, table: &str) -> bool {
        self.indexes
            .get(table)
            .is_some_and(|at| Instant::now() < *at)
    }
}

/// An error the proxy answers instead of forwarding, for fault-injection tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// DynamoDB's `ProvisionedThroughputExceededException` (HTTP 400): the SDK retries it a few
    /// times, then gives up.
    Throttle,
    /// DynamoDB's `InternalServerError` (HTTP 500).
    ServerError,
    /// A write caught in another transaction in flight (HTTP 400): a transaction is cancelled
    /// with `TransactionConflict` as every item's reason, a single-item write answered
    /// `TransactionConflictException`. Nothing is written; the SDK does not retry it.
    TransactionConflict,
    /// Never answers: the request is recorded, not forwarded, and held until the caller gives
    /// up and drops the connection (a stuck connection to the service).
    Hang,
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
            measure_items: AtomicBool::new(false),
            activation: Mutex::new(Activation::default()),
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

    /// From now on (`true`), reads every item a DynamoDB write names (a consistent `GetItem`,
    /// not recorded) before and after forwarding the write, into [`AwsCall::items`]: what
    /// DynamoDB bills a write by is the larger of the two. Only for a benchmark run with one
    /// caller at a time: another caller's write between the reads would blur them.
    pub fn measure_items(&self, on: bool) {
        self.inner.measure_items.store(on, Ordering::SeqCst);
    }

    /// From now on, a table created through the proxy (`CreateTable`), and an index added through
    /// it (`UpdateTable`), is being created for `after`, as DynamoDB has it: `DescribeTable`
    /// reports the table (with its indexes) or the index `CREATING`; a table being created answers
    /// every read and write with `ResourceNotFoundException` and every change (`UpdateTable`,
    /// `UpdateTimeToLive`) with `ResourceInUseException`; an index being created answers a query
    /// or scan of it with `ValidationException`.
    pub fn activate_after(&self, after: Duration) {
        self.inner.activation.lock().unwrap().after = Some(after);
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
    let mut call = AwsCall {
        operation: op.clone(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status: 0,
        response: axum::body::Bytes::new(),
        items: Vec::new(),
    };
    if fault_for(&inner, &op) == Some(Fault::Hang) {
        // Recorded with status 0; this future is dropped when the caller hangs up.
        inner.calls.lock().unwrap().push(call);
        return std::future::pending().await;
    }
    let response = relay(&inner, &mut call, parts, body).await;
    inner.calls.lock().unwrap().push(call);
    response
}

async fn relay(
    inner: &Inner,
    call: &mut AwsCall,
    parts: http::request::Parts,
    body: axum::body::Bytes,
) -> Response {
    let op = call.operation.clone();
    if let Some(fault) = fault_for(inner, &op) {
        let (status, kind) = match fault {
            Fault::Throttle => (
                StatusCode::BAD_REQUEST,
                "ProvisionedThroughputExceededException",
            ),
            // `forward` holds a hung call before it gets here.
            Fault::ServerError | Fault::Hang => {
                (StatusCode::INTERNAL_SERVER_ERROR, "InternalServerError")
            }
            Fault::TransactionConflict if op == "dynamodb:TransactWriteItems" => {
                call.status = StatusCode::BAD_REQUEST.as_u16();
                return transaction_conflict(call.transact_parts().len());
            }
            Fault::TransactionConflict => (StatusCode::BAD_REQUEST, "TransactionConflictException"),
        };
        call.status = status.as_u16();
        return dynamodb_error(status, kind);
    }
    if let Some(kind) = refused_while_creating(&inner.activation.lock().unwrap(), call) {
        call.status = StatusCode::BAD_REQUEST.as_u16();
        return dynamodb_error(StatusCode::BAD_REQUEST, kind);
    }

    let written = if inner.measure_items.load(Ordering::SeqCst) {
        written_keys(call)
    } else {
        Vec::new()
    };
    let mut before = Vec::new();
    for (table, key) in &written {
        before.push(read_item(inner, &parts.headers, table, key).await);
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
    let mut headers = resp.headers().clone();
    let mut bytes = resp.bytes().await.unwrap_or_default();
    if status.is_success()
        && let Some(rewritten) =
            track_activation(&mut inner.activation.lock().unwrap(), call, &bytes)
    {
        bytes = rewritten;
        // The emulator's checksum of the body it sent, if any, is no longer right.
        headers.remove("x-amz-crc32");
    }
    call.status = status.as_u16();
    call.response = bytes.clone();
    for ((table, key), before) in written.iter().zip(before) {
        let after = read_item(inner, &parts.headers, table, key).await;
        call.items.push((before, after));
    }
    let mut out = (status, bytes).into_response();
    for (name, value) in &headers {
        if !hop_by_hop(name) {
            out.headers_mut().append(name, value.clone());
        }
    }
    out
}

/// The fault set for `op`, if any.
fn fault_for(inner: &Inner, op: &str) -> Option<Fault> {
    inner
        .fault
        .lock()
        .unwrap()
        .as_ref()
        .filter(|(ops, _)| ops.iter().any(|o| o == op))
        .map(|(_, f)| *f)
}

/// A DynamoDB error answer, as the service spells it.
fn dynamodb_error(status: StatusCode, kind: &'static str) -> Response {
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
    out
}

/// A transaction of `items` items cancelled because each was caught in another transaction.
fn transaction_conflict(items: usize) -> Response {
    let reason = serde_json::json!({
        "Code": "TransactionConflict",
        "Message": "Transaction is ongoing for the item",
    });
    let body = serde_json::json!({
        "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
        "Message": "Transaction cancelled (injected by the test proxy)",
        "CancellationReasons": vec![reason; items],
    });
    let mut out = (StatusCode::BAD_REQUEST, body.to_string()).into_response();
    out.headers_mut().insert(
        "content-type",
        axum::http::HeaderValue::from_static("application/x-amz-json-1.0"),
    );
    out.headers_mut().insert(
        "x-amzn-errortype",
        axum::http::HeaderValue::from_static("TransactionCanceledException"),
    );
    out
}

/// The error DynamoDB answers `call` with while a table or index it names is being created.
fn refused_while_creating(activation: &Activation, call: &AwsCall) -> Option<&'static str> {
    let tables = call.table_names();
    let creating = tables.iter().any(|t| activation.table_creating(t));
    match call.operation.as_str() {
        "dynamodb:CreateTable"
        | "dynamodb:DeleteTable"
        | "dynamodb:DescribeTable"
        | "dynamodb:DescribeTimeToLive"
        | "dynamodb:ListTables" => None,
        "dynamodb:UpdateTable" | "dynamodb:UpdateTimeToLive" => {
            creating.then_some("ResourceInUseException")
        }
        op if op.starts_with("dynamodb:") && creating => Some("ResourceNotFoundException"),
        "dynamodb:Query" | "dynamodb:Scan"
            if call.index_name().is_some()
                && tables.iter().any(|t| activation.index_creating(t)) =>
        {
            Some("ValidationException")
        }
        _ => None,
    }
}

/// Notes a table or index created by `call` (answered `response`), and rewrites a
/// `DescribeTable` answer of one still being created. `Some`: the answer to send instead.
fn track_activation(
    activation: &mut Activation,
    call: &AwsCall,
    response: &[u8],
) -> Option<axum::body::Bytes> {
    let table = call.body["TableName"].as_str()?.to_owned();
    let after = activation.after;
    match call.operation.as_str() {
        "dynamodb:CreateTable" => {
            activation.tables.insert(table, Instant::now() + after?);
            None
        }
        "dynamodb:UpdateTable" => {
            let adds_index = call.body["GlobalSecondaryIndexUpdates"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|u| u.get("Create").is_some());
            if adds_index {
                activation.indexes.insert(table, Instant::now() + after?);
            }
            None
        }
        "dynamodb:DescribeTable" => {
            let table_creating = activation.table_creating(&table);
            if !table_creating && !activation.index_creating(&table) {
                return None;
            }
            let mut described: Value = serde_json::from_slice(response).ok()?;
            if table_creating {
                described["Table"]["TableStatus"] = "CREATING".into();
            }
            for index in described["Table"]["GlobalSecondaryIndexes"]
                .as_array_mut()
                .into_iter()
                .flatten()
            {
                index["IndexStatus"] = "CREATING".into();
            }
            Some(described.to_string().into())
        }
        _ => None,
    }
}

/// The table and key of every item a DynamoDB write names (the table's key is `pk`, `sk`).
fn written_keys(call: &AwsCall) -> Vec<(String, Value)> {
    let key_of = |part: &Value| -> Option<(String, Value)> {
        let table = part["TableName"].as_str()?.to_owned();
        let key = match part.get("Key") {
            Some(k) => k.clone(),
            None => serde_json::json!({"pk": part["Item"]["pk"], "sk": part["Item"]["sk"]}),
        };
        Some((table, key))
    };
    match call.operation.as_str() {
        "dynamodb:PutItem" | "dynamodb:UpdateItem" | "dynamodb:DeleteItem" => {
            key_of(&call.body).into_iter().collect()
        }
        "dynamodb:TransactWriteItems" => call.body["TransactItems"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|item| key_of(item.as_object()?.values().next()?))
            .collect(),
        _ => Vec::new(),
    }
}

/// One item as the table holds it now (`Value::Null` if absent), read past the recording.
async fn read_item(inner: &Inner, headers: &http::HeaderMap, table: &str, key: &Value) -> Value {
    let mut request = inner
        .client
        .post(format!("{}/", inner.upstream))
        .header("content-type", "application/x-amz-json-1.0")
        .header("x-amz-target", "DynamoDB_20120810.GetItem")
        .body(
            serde_json::json!({"TableName": table, "Key": key, "ConsistentRead": true}).to_string(),
        );
    // moto takes the account and region from the credential scope.
    if let Some(auth) = headers.get("authorization") {
        request = request.header("authorization", auth);
    }
    match request.send().await {
        Ok(resp) => resp
            .json::<Value>()
            .await
            .map_or(Value::Null, |v| v["Item"].clone()),
        Err(_) => Value::Null,
    }
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

    fn call(operation: &str, body: Value) -> AwsCall {
        AwsCall {
            operation: operation.into(),
            body,
            status: 200,
            response: axum::body::Bytes::new(),
            items: Vec::new(),
        }
    }

    #[test]
    fn a_table_being_created_refuses_reads_writes_and_changes_until_it_is_active() {
        let mut activation = Activation {
            after: Some(Duration::from_secs(60)),
            ..Activation::default()
        };
        let named = |op: &str| call(op, serde_json::json!({"TableName": "t"}));
        assert_eq!(
            track_activation(&mut activation, &named("dynamodb:CreateTable"), b"{}"),
            None
        );
        let described = track_activation(
            &mut activation,
            &named("dynamodb:DescribeTable"),
            br#"{"Table":{"TableStatus":"ACTIVE","GlobalSecondaryIndexes":[{"IndexStatus":"ACTIVE"}]}}"#,
        )
        .expect("rewritten");
        let described: Value = serde_json::from_slice(&described).unwrap();
        assert_eq!(described["Table"]["TableStatus"], "CREATING");
        assert_eq!(
            described["Table"]["GlobalSecondaryIndexes"][0]["IndexStatus"],
            "CREATING"
        );
        for (op, refused) in [
            ("dynamodb:PutItem", Some("ResourceNotFoundException")),
            ("dynamodb:Query", Some("ResourceNotFoundException")),
            ("dynamodb:UpdateTimeToLive", Some("ResourceInUseException")),
            ("dynamodb:UpdateTable", Some("ResourceInUseException")),
            ("dynamodb:DescribeTable", None),
            ("dynamodb:CreateTable", None),
        ] {
            assert_eq!(
                refused_while_creating(&activation, &named(op)),
                refused,
                "{op}"
            );
        }
        let elsewhere = call("dynamodb:PutItem", serde_json::json!({"TableName": "u"}));
        assert_eq!(refused_while_creating(&activation, &elsewhere), None);
        let transaction = call(
            "dynamodb:TransactWriteItems",
            serde_json::json!({"TransactItems": [{"Put": {"TableName": "t"}}]}),
        );
        assert_eq!(
            refused_while_creating(&activation, &transaction),
            Some("ResourceNotFoundException")
        );
        // Active now: an index added to it is the one being created.
        activation.tables.insert("t".into(), Instant::now());
        assert_eq!(
            refused_while_creating(&activation, &named("dynamodb:PutItem")),
            None
        );
        let add_index = call(
            "dynamodb:UpdateTable",
            serde_json::json!({"TableName": "t", "GlobalSecondaryIndexUpdates": [{"Create": {}}]}),
        );
        track_activation(&mut activation, &add_index, b"{}");
        let index_query = call(
            "dynamodb:Query",
            serde_json::json!({"TableName": "t", "IndexName": "due"}),
        );
        assert_eq!(
            refused_while_creating(&activation, &index_query),
            Some("ValidationException")
        );
        assert_eq!(
            refused_while_creating(&activation, &named("dynamodb:Query")),
            None
        );
    }

    #[test]
    fn a_transaction_names_its_parts_and_tables() {
        let call = AwsCall {
            operation: "dynamodb:TransactWriteItems".into(),
            body: serde_json::json!({"TransactItems": [
                {"Put": {"TableName": "t", "Item": {"pk": {"S": "a"}, "sk": {"S": "b"}, "x": {"N": "1"}}}},
                {"Update": {"TableName": "t", "Key": {"pk": {"S": "c"}, "sk": {"S": "d"}}}},
                {"ConditionCheck": {"TableName": "u", "Key": {"pk": {"S": "e"}, "sk": {"S": "f"}}}},
            ]}),
            status: 200,
            response: axum::body::Bytes::new(),
            items: Vec::new(),
        };
        assert_eq!(call.transact_parts(), ["Put", "Update", "ConditionCheck"]);
        assert_eq!(call.table_names(), ["t", "t", "u"]);
        assert_eq!(call.index_name(), None);
        let keys = written_keys(&call);
        assert_eq!(keys.len(), 3);
        assert_eq!(
            keys[0].1,
            serde_json::json!({"pk": {"S": "a"}, "sk": {"S": "b"}})
        );
        assert_eq!(
            keys[2],
            (
                "u".to_owned(),
                serde_json::json!({"pk": {"S": "e"}, "sk": {"S": "f"}})
            )
        );
    }
}
