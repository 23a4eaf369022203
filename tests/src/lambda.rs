//! A Lambda Runtime API emulator and an HTTP API (payload v2) gateway in front of it, on
//! loopback. The compiled function binaries run as child processes exactly as in Lambda: they
//! poll `/2018-06-01/runtime/invocation/next`, get API Gateway events, post their responses.
//! Several processes of one function poll the same queue, as concurrent Lambda instances would.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

struct Invocation {
    request_id: String,
    event: Value,
    reply: oneshot::Sender<Reply>,
}

/// One function's Runtime API endpoint, shared by all of its processes.
struct RuntimeApi {
    name: String,
    queue: tokio::sync::Mutex<mpsc::Receiver<Invocation>>,
    pending: Mutex<HashMap<String, oneshot::Sender<Reply>>>,
    init_errors: Mutex<Vec<String>>,
}

async fn next(State(rt): State<Arc<RuntimeApi>>) -> Response {
    let inv = rt.queue.lock().await.recv().await;
    let Some(inv) = inv else {
        return StatusCode::GONE.into_response();
    };
    rt.pending
        .lock()
        .unwrap()
        .insert(inv.request_id.clone(), inv.reply);
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
    (headers, axum::Json(inv.event)).into_response()
}

async fn respond(
    State(rt): State<Arc<RuntimeApi>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    finish(
        &rt,
        &id,
        Ok(serde_json::from_slice(&body).unwrap_or(Value::Null)),
    )
}

async fn error(
    State(rt): State<Arc<RuntimeApi>>,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> StatusCode {
    finish(
        &rt,
        &id,
        Err(serde_json::from_slice(&body).unwrap_or(Value::Null)),
    )
}

fn finish(rt: &RuntimeApi, id: &str, reply: Reply) -> StatusCode {
    match rt.pending.lock().unwrap().remove(id) {
        Some(tx) => {
            let _ = tx.send(reply);
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
            let runtime = Arc::new(RuntimeApi {
                name: spec.binary.to_owned(),
                queue: tokio::sync::Mutex::new(rx),
                pending: Mutex::new(HashMap::new()),
                init_errors: Mutex::new(Vec::new()),
            });
            let router = axum::Router::new()
                .route("/2018-06-01/runtime/invocation/next", get(next))
                .route(
                    "/2018-06-01/runtime/invocation/{id}/response",
                    post(respond),
                )
                .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
                .route("/2018-06-01/runtime/init/error", post(init_error))
                .with_state(runtime.clone());
            let addr = serve(router).await;
            let binary = bin_dir().join(spec.binary);
            assert!(
                binary.exists(),
                "{} is missing: run `cargo build --bins` (./infra/test.sh does)",
                binary.display()
            );
            for i in 0..spec.instances {
                let mut cmd = Command::new(&binary);
                cmd.env_clear()
                    .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                    .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
                    .env("AWS_LAMBDA_FUNCTION_NAME", spec.binary)
                    .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
                    .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
                    .env(
                        "AWS_LAMBDA_LOG_GROUP_NAME",
                        format!("/aws/lambda/{}", spec.binary),
                    )
                    .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("instance-{i}"))
                    .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                    .envs(per_function(spec.binary))
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

    /// Invokes a function directly with `event` (as EventBridge invokes a scheduled function) and
    /// returns its answer, or its error.
    pub async fn invoke(&self, binary: &str, event: Value) -> Result<Value, Value> {
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
        tokio::time::timeout(Duration::from_secs(60), rx)
            .await
            .expect("the function answers within 60 s")
            .expect("the function answers")
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

async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    addr
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
    let mut headers = serde_json::Map::new();
    for (k, v) in &parts.headers {
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
    let host = parts
        .headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let request_id = uuid::Uuid::new_v4().to_string();
    let route_key = format!("{} {}", parts.method, path);
    let mut event = json!({
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": parts.uri.query().unwrap_or(""),
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012", "apiId": "local", "domainName": host,
            "domainPrefix": "local",
            "http": {"method": parts.method.as_str(), "path": path, "protocol": "HTTP/1.1",
                     "sourceIp": "127.0.0.1", "userAgent": "test"},
            "requestId": request_id, "routeKey": route_key, "stage": "$default",
            "time": "26/Nov/2026:00:00:00 +0000", "timeEpoch": 0
        },
        "isBase64Encoded": true,
        "body": base64::engine::general_purpose::STANDARD.encode(&bytes),
    });
    if let Some(vendor) = path.strip_prefix("/callbacks/") {
        event["pathParameters"] = json!({ "vendor_id": vendor });
    }
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
        Ok(Ok(Ok(resp))) => to_http(&resp),
        Ok(Ok(Err(_))) | Ok(Err(_)) => (
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
