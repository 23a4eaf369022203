//! A Lambda Runtime API emulator and an HTTP API (payload v2) gateway in front of it, on
//! loopback. The compiled function binaries run as child processes exactly as in Lambda: they
//! poll `/2018-06-01/runtime/invocation/next`, get API Gateway events, post their responses.
//! Several processes of one function poll the same queue, as concurrent Lambda instances would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

type Reply = Result<Value, Value>;

/// A function's answer and when it came, beside when the event was handed to the function.
struct Answer {
    reply: Reply,
    /// When `/next` handed the event out.
    handed: Instant,
    /// When the response (or error) arrived.
    answered: Instant,
}

struct Invocation {
    request_id: String,
    event: Value,
    reply: oneshot::Sender<Answer>,
}

/// One function's Runtime API endpoint, shared by all of its processes.
struct RuntimeApi {
    name: String,
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, (oneshot::Sender<Answer>, Instant)>>,
    init_errors: Mutex<Vec<String>>,
    /// When a process first asked for an event: the end of its init.
    first_next: Mutex<Option<Instant>>,
}

impl RuntimeApi {
    fn new(name: &str, queue: mpsc::Receiver<Invocation>) -> Arc<Self> {
        Arc::new(Self {
            name: name.to_owned(),
            queue: tokio::sync::Mutex::new(queue),
            pending: Mutex::new(HashMap::new()),
            init_errors: Mutex::new(Vec::new()),
            first_next: Mutex::new(None),
        })
    }

    /// The Runtime API's routes, on a free loopback port.
    async fn serve(self: &Arc<Self>) -> SocketAddr {
        let router = axum::Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(respond),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state(self.clone());
        serve(router).await
    }
}

async fn next(State(rt): State<Arc<RuntimeApi>>) -> Response {
    rt.first_next
        .lock()
        .unwrap()
        .get_or_insert_with(Instant::now);
    let inv = rt.queue.lock().await.recv().await;
    let Some(inv) = inv else {
        return StatusCode::GONE.into_response();
    };
    let body = serde_json::to_vec(&inv.event).unwrap();
    let deadline = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 30_000;
    let mut headers = HeaderMap::new();
    let mut set = |k: &'static str, v: String| {
        headers.insert(
            HeaderName::from_static(k),
            HeaderValue::from_str(&v).unwrap(),
        );
    };
    set("lambda-runtime-aws-request-id", inv.request_id.clone());
    set("lambda-runtime-deadline-ms", deadline.to_string());
    set(
        "lambda-runtime-invoked-function-arn",
        format!("arn:aws:lambda:us-east-1:123456789012:function:{}", rt.name),
    );
    set(
        "lambda-runtime-trace-id",
        format!("Root=1-{}", inv.request_id),
    );
    set("content-type", "application/json".to_owned());
    // The clock starts once the event is ready to go: what follows is the function's time.
    rt.pending
        .lock()
        .unwrap()
        .insert(inv.request_id.clone(), (inv.reply, Instant::now()));
    (headers, body).into_response()
}

async fn respond(
    State(rt): State<Arc<RuntimeApi>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let answered = Instant::now();
    let reply = Ok(serde_json::from_slice(&body).unwrap_or(Value::Null));
    finish(&rt, &id, reply, answered)
}

async fn error(
    State(rt): State<Arc<RuntimeApi>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    let answered = Instant::now();
    let reply = Err(serde_json::from_slice(&body).unwrap_or(Value::Null));
    finish(&rt, &id, reply, answered)
}

fn finish(rt: &RuntimeApi, id: &str, reply: Reply, answered: Instant) -> StatusCode {
    match rt.pending.lock().unwrap().remove(id) {
        Some((tx, handed)) => {
            let _ = tx.send(Answer {
                reply,
                handed,
                answered,
            });
            StatusCode::ACCEPTED
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn init_error(State(rt): State<Arc<RuntimeApi>>, body: String) -> StatusCode {
    rt.init_errors.lock().unwrap().push(body);
    StatusCode::ACCEPTED
}

/// A function to run: its binary name in `HUB_BIN_DIR` (or `target/debug`), its route
/// predicate, and how many concurrent processes to start.
pub struct FunctionSpec {
    pub binary: &'static str,
    pub routes: fn(&str) -> bool,
    pub instances: usize,
}

struct Function {
    routes: fn(&str) -> bool,
    queue: mpsc::Sender<Invocation>,
    runtime: Arc<RuntimeApi>,
}

/// The running functions and the gateway in front of them. Dropping it kills the processes.
pub struct LambdaHost {
    pub base_url: String,
    functions: Arc<Vec<Function>>,
    /// The environment every function was started with (before per-function overrides).
    env: Vec<(String, String)>,
    /// Each process, with the name of its function.
    children: Vec<(&'static str, Child)>,
    logs: Arc<Mutex<Vec<String>>>,
}

pub fn bin_dir() -> PathBuf {
    std::env::var_os("HUB_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/debug"))
}

impl LambdaHost {
    /// Starts every function with the environment `env` (plus the Lambda variables) and the
    /// gateway. Panics if a binary is missing: build them first (`cargo build --bins`).
    pub async fn start(specs: Vec<FunctionSpec>, env: &[(String, String)]) -> Self {
        Self::start_with(specs, env, |_| Vec::new()).await
    }

    /// As [`LambdaHost::start`], plus `per_function(binary)`'s variables for that function's
    /// processes, set last so that they win: e.g. an `AWS_ENDPOINT_URL` of its own, through which
    /// a test records the AWS calls of each function apart.
    pub async fn start_with(
        specs: Vec<FunctionSpec>,
        env: &[(String, String)],
        per_function: impl Fn(&str) -> Vec<(String, String)>,
    ) -> Self {
        let logs = Arc::new(Mutex::new(Vec::new()));
        let mut functions = Vec::new();
        let mut children = Vec::new();
        for spec in specs {
            let (tx, rx) = mpsc::channel(64);
            let runtime = RuntimeApi::new(spec.binary, rx);
            let addr = runtime.serve().await;
            let extra = per_function(spec.binary);
            for i in 0..spec.instances {
                let child = spawn(spec.binary, addr, i, env, &extra, &logs);
                children.push((spec.binary, child));
            }
            functions.push(Function {
                routes: spec.routes,
                queue: tx,
                runtime,
            });
        }
        let functions = Arc::new(functions);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let gateway = axum::Router::new()
            .fallback(gateway)
            .with_state(functions.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, gateway).await;
        });
        Self {
            base_url: format!("http://{addr}"),
            functions,
            env: env.to_vec(),
            children,
            logs,
        }
    }

    /// The value of `name` in the environment shared by every function (`HUB_TABLE`, ...).
    pub fn env_var(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every line the functions printed so far (their structured logs).
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().unwrap().clone()
    }

    /// How many lines the functions printed so far.
    pub fn log_count(&self) -> usize {
        self.logs.lock().unwrap().len()
    }

    /// The lines printed after the first `from`.
    pub fn logs_since(&self, from: usize) -> Vec<String> {
        self.logs
            .lock()
            .unwrap()
            .get(from..)
            .map(<[String]>::to_vec)
            .unwrap_or_default()
    }

    /// Invokes a function directly with `event` (as EventBridge invokes a scheduled function) and
    /// returns its answer, or its error.
    pub async fn invoke(&self, binary: &str, event: Value) -> Result<Value, Value> {
        self.invoke_timed(binary, event).await.0
    }

    /// As [`LambdaHost::invoke`], with the function's time: from the event handed out by
    /// `/next` to its answer.
    pub async fn invoke_timed(
        &self,
        binary: &str,
        event: Value,
    ) -> (Result<Value, Value>, Duration) {
        let f = self
            .functions
            .iter()
            .find(|f| f.runtime.name == binary)
            .unwrap_or_else(|| panic!("no function {binary}"));
        let (tx, rx) = oneshot::channel();
        f.queue
            .send(Invocation {
                request_id: uuid::Uuid::new_v4().to_string(),
                event,
                reply: tx,
            })
            .await
            .unwrap();
        let answer = tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .expect("the function answers within 60 s")
            .expect("the function answers");
        (answer.reply, answer.answered.duration_since(answer.handed))
    }

    /// The process ids of one function's processes.
    pub fn pids(&self, binary: &str) -> Vec<u32> {
        self.children
            .iter()
            .filter(|(name, _)| *name == binary)
            .filter_map(|(_, c)| c.id())
            .collect()
    }

    /// Init errors reported through the Runtime API.
    pub fn init_errors(&self) -> Vec<String> {
        self.functions
            .iter()
            .flat_map(|f| f.runtime.init_errors.lock().unwrap().clone())
            .collect()
    }

    /// Kills every process of one function at once (SIGKILL), wherever it is in its work.
    pub async fn kill(&mut self, binary: &str) {
        for (name, c) in &mut self.children {
            if *name == binary {
                let _ = c.kill().await;
            }
        }
    }

    pub async fn stop(mut self) {
        for (_, c) in &mut self.children {
            let _ = c.kill().await;
        }
    }
}

/// The path of a function binary; panics if it is missing.
fn binary_path(binary: &str) -> PathBuf {
    let path = bin_dir().join(binary);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --bins` (./infra/test.sh does)",
        path.display()
    );
    path
}

/// Starts one process of `binary` against the Runtime API at `addr`, as Lambda starts an
/// instance: a clean environment with the Lambda variables, then `env`, then `extra`. Its output
/// lines go to `logs`.
fn spawn(
    binary: &str,
    addr: SocketAddr,
    instance: usize,
    env: &[(String, String)],
    extra: &[(String, String)],
    logs: &Arc<Mutex<Vec<String>>>,
) -> Child {
    let mut cmd = Command::new(binary_path(binary));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", binary)
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{binary}"))
        .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("instance-{instance}"))
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .envs(extra.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().expect("spawn function binary");
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let logs = logs.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stream).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                logs.lock().unwrap().push(line);
            }
        });
    }
    child
}

/// One cold start: a new process, with its first event already waiting, as when Lambda starts
/// an instance for a request.
#[derive(Debug)]
pub struct ColdStart {
    /// Spawn to the first `GET /next`: the function's init.
    pub init: Duration,
    /// Spawn to the first response: init plus the first invocation.
    pub first_response: Duration,
    /// The first invocation's answer.
    pub answer: Result<Value, Value>,
    /// The process's peak resident set, in bytes, after its first response.
    pub peak_rss: Option<u64>,
}

/// Starts a fresh process of `binary` with `event` queued, waits for its first answer, and
/// kills it.
pub async fn cold_start(binary: &str, env: &[(String, String)], event: Value) -> ColdStart {
    let (tx, rx) = mpsc::channel(1);
    let runtime = RuntimeApi::new(binary, rx);
    let addr = runtime.serve().await;
    let (reply_tx, reply_rx) = oneshot::channel();
    tx.send(Invocation {
        request_id: uuid::Uuid::new_v4().to_string(),
        event,
        reply: reply_tx,
    })
    .await
    .unwrap();
    let logs = Arc::new(Mutex::new(Vec::new()));
    let spawned = Instant::now();
    let mut child = spawn(binary, addr, 0, env, &[], &logs);
    let answer = tokio::time::timeout(Duration::from_secs(60), reply_rx)
        .await
        .unwrap_or_else(|_| panic!("{binary} answers within 60 s: {:?}", logs.lock().unwrap()))
        .expect("the function answers");
    let init = runtime
        .first_next
        .lock()
        .unwrap()
        .expect("the function asked for its event")
        .duration_since(spawned);
    let peak_rss = child.id().and_then(peak_rss);
    let _ = child.kill().await;
    ColdStart {
        init,
        first_response: answer.answered.duration_since(spawned),
        answer: answer.reply,
        peak_rss,
    }
}

/// A process's peak resident set size (`VmHWM`), in bytes; `None` where /proc does not tell.
pub fn peak_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
}

/// The payload-v2 event API Gateway's HTTP API sends for a request, and its request id.
pub fn http_event(
    method: &str,
    path: &str,
    query: &str,
    request_headers: &HeaderMap,
    body: &[u8],
) -> (String, Value) {
    let mut headers = serde_json::Map::new();
    for (k, v) in request_headers {
        let v = v.to_str().unwrap_or_default().to_owned();
        headers
            .entry(k.as_str().to_owned())
            .and_modify(|e| {
                if let Value::String(s) = e {
                    s.push(',');
                    s.push_str(&v);
                }
            })
            .or_insert(Value::String(v));
    }
    headers.insert("x-forwarded-proto".into(), "http".into());
    let host = request_headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let request_id = uuid::Uuid::new_v4().to_string();
    let route_key = format!("{method} {path}");
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": query,
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": host,
            "domainPrefix": "local",
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": request_id, "routeKey": route_key, "stage": "$default",
            "time": "26/Nov/2026:00:00:00 +0000", "timeEpoch": 0
        },
        "isBase64Encoded": true,
        "body": base64::engine::general_purpose::STANDARD.encode(body),
    });
    // API Gateway parses the query string too (repeated keys joined by commas).
    let mut params = serde_json::Map::new();
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        params
            .entry(k.into_owned())
            .and_modify(|e| {
                if let Value::String(s) = e {
                    s.push(',');
                    s.push_str(&v);
                }
            })
            .or_insert(Value::String(v.into_owned()));
    }
    if !params.is_empty() {
        event["queryStringParameters"] = Value::Object(params);
    }
    if let Some(vendor) = path.strip_prefix("/callbacks/") {
        event["pathParameters"] = json!({ "vendor_id": vendor });
    }
    (request_id, event)
}

/// API Gateway HTTP API: turns a request into a payload-v2 event and the function's answer
/// back into a response; a function error is a bare 500, as API Gateway answers.
async fn gateway(
    State(functions): State<Arc<Vec<Function>>>,
    req: axum::extract::Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    let Some(f) = functions.iter().find(|f| (f.routes)(&path)) else {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"message": "Not Found"})),
        )
            .into_response();
    };
    let bytes = axum::body::to_bytes(body, 10 * 1024 * 1024)
        .await
        .unwrap_or_default();
    let (request_id, event) = http_event(
        parts.method.as_str(),
        &path,
        parts.uri.query().unwrap_or(""),
        &parts.headers,
        &bytes,
    );
    let (tx, rx) = oneshot::channel();
    if f.queue
        .send(Invocation {
            request_id,
            event,
            reply: tx,
        })
        .await
        .is_err()
    {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match tokio::time::timeout(Duration::from_secs(60), rx).await {
        Ok(Ok(Answer {
            reply: Ok(resp), ..
        })) => to_http(&resp),
        Ok(Ok(Answer { reply: Err(_), .. })) | Ok(Err(_)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"message": "Internal Server Error"})),
        )
            .into_response(),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"message": "Service Unavailable"})),
        )
            .into_response(),
    }
}

fn to_http(resp: &Value) -> Response {
    let status = resp["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match (resp["body"].as_str(), resp["isBase64Encoded"].as_bool()) {
        (Some(b), Some(true)) => base64::engine::general_purpose::STANDARD
            .decode(b)
            .unwrap_or_default(),
        (Some(b), _) => b.as_bytes().to_vec(),
        (None, _) => Vec::new(),
    };
    let mut out = (status, body).into_response();
    if let Some(h) = resp["headers"].as_object() {
        for (k, v) in h {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(k.as_bytes()),
                v.as_str().map(HeaderValue::from_str),
            ) {
                out.headers_mut().insert(name, value);
            }
        }
    }
    out
}
