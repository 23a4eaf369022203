//! Hostile input: every endpoint fed malformed, truncated, oversized, badly typed and badly signed
//! requests, as property tests (proptest) and as named cases, against the local hub in-process
//! over real HTTP on loopback, with a sample through the compiled Lambda functions. The property:
//! every answer is a 2xx or 4xx with a JSON body in Ashby's envelope, never a 5xx, a panic (a
//! dropped connection) or a hang (an answer later than `REQUEST_TIMEOUT`).
//!
//! Requests go out through a raw HTTP/1.1 client, so that paths (`..`, `%2e%2e`), header bytes
//! and bodies reach the hub exactly as written, with no client normalising them first. Only what
//! HTTP itself forbids (control bytes in a header or the request line) is never sent: the HTTP
//! layer refuses it before any hub code runs, as API Gateway does in production.
//!
//! Also here: tenant isolation (a tenant's token reaches only its own packages and assessments)
//! and vendor isolation (a vendor posts results only for its own assessments).

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use hub_local::server::RunningHub;
use hub_tests::fakes::{FakeAshby, FakeVendor};
use proptest::prelude::*;
use proptest::test_runner::{Config as ProptestConfig, TestCaseError, TestRunner};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{Fixture, RIVAL_SECRET, VENDOR_SECRET, start_local_hub};

/// Longest any one answer may take; longer is a hang, and fails the test instead of stalling it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

const MAX_BODY: usize = hub::handlers::MAX_BODY_BYTES;

// ---------------------------------------------------------------------------------------------
// A raw HTTP/1.1 client

/// One request exactly as it goes on the wire (the method is POST; `Host`, `Connection: close`
/// and `Content-Length` are added).
#[derive(Debug, Clone)]
struct Raw {
    target: String,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

impl Raw {
    fn new(target: impl Into<String>, body: Vec<u8>) -> Self {
        Self {
            target: target.into(),
            headers: vec![("content-type".into(), b"application/json".to_vec())],
            body,
        }
    }

    fn header(mut self, name: &str, value: impl AsRef<[u8]>) -> Self {
        self.headers.push((name.into(), value.as_ref().to_vec()));
        self
    }

    fn without(mut self, name: &str) -> Self {
        self.headers.retain(|(n, _)| n != name);
        self
    }

    /// A short description for failure messages (bodies can be 300 KiB).
    fn describe(&self) -> String {
        let body = String::from_utf8_lossy(&self.body[..self.body.len().min(160)]).into_owned();
        let headers: Vec<String> = self
            .headers
            .iter()
            .map(|(n, v)| {
                let v = String::from_utf8_lossy(&v[..v.len().min(80)]).into_owned();
                format!("{n}: {v:?}")
            })
            .collect();
        format!(
            "POST {:.200} [{}] body ({} bytes) {body:?}",
            self.target,
            headers.join(", "),
            self.body.len()
        )
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: Vec<u8>,
}

/// Sends `req` to `addr` and reads the whole answer, or fails: no answer in time is a hang, a
/// connection closed without an answer is a crash of the request's task.
async fn send(addr: &str, req: &Raw) -> Result<Answer, String> {
    tokio::time::timeout(REQUEST_TIMEOUT, exchange(addr, req))
        .await
        .map_err(|_| format!("no answer within {REQUEST_TIMEOUT:?}: a hang"))?
}

async fn exchange(addr: &str, req: &Raw) -> Result<Answer, String> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut rd, mut wr) = stream.into_split();
    let mut head = format!(
        "POST {} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\ncontent-length: {}\r\n",
        req.target,
        req.body.len()
    )
    .into_bytes();
    for (name, value) in &req.headers {
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    let body = req.body.clone();
    // Written while the answer is read: the hub may answer (413) before reading it all.
    let writer = tokio::spawn(async move {
        if wr.write_all(&head).await.is_ok() {
            let _ = wr.write_all(&body).await;
        }
        wr
    });
    let mut raw = Vec::new();
    let read = rd.read_to_end(&mut raw).await;
    let _ = writer.await;
    parse_answer(&raw).map_err(|e| match read {
        Err(io) => format!("{e} ({io}): the connection was dropped without an answer"),
        Ok(_) => format!("{e}: the connection was closed without an answer"),
    })
}

fn parse_answer(raw: &[u8]) -> Result<Answer, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no complete response head")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or("no status line")?;
    let (mut content_type, mut chunked, mut length) = (String::new(), false, None);
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = value.to_owned(),
            "transfer-encoding" => chunked = value.contains("chunked"),
            "content-length" => length = value.parse::<usize>().ok(),
            _ => {}
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n)
            .ok_or("body shorter than its content-length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Answer {
        status,
        content_type,
        body,
    })
}

fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("truncated chunk")?;
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(rest.get(..size).ok_or("truncated chunk")?);
        rest = rest.get(size + 2..).ok_or("truncated chunk")?;
    }
}

/// The property every answer must have: 2xx or 4xx, JSON, `success` matching the status, and
/// on an error Ashby's envelope with a code. Returns the status and the parsed body.
fn well_formed(req: &Raw, answer: Result<Answer, String>) -> Result<(u16, Value), String> {
    let fail = |why: String| Err(format!("{why}\n  request: {}", req.describe()));
    let a = match answer {
        Ok(a) => a,
        Err(e) => return fail(e),
    };
    let text = String::from_utf8_lossy(&a.body[..a.body.len().min(300)]).into_owned();
    if !(200..300).contains(&a.status) && !(400..500).contains(&a.status) {
        return fail(format!("status {} (body {text:?})", a.status));
    }
    if !a.content_type.starts_with("application/json") {
        return fail(format!(
            "status {} with content-type {:?} (body {text:?})",
            a.status, a.content_type
        ));
    }
    let Ok(body) = serde_json::from_slice::<Value>(&a.body) else {
        return fail(format!("status {} with a non-JSON body {text:?}", a.status));
    };
    if a.status >= 400 {
        let code = body["errorInfo"]["code"].as_str().unwrap_or_default();
        if body["success"] != false || code.is_empty() || !body["message"].is_string() {
            return fail(format!(
                "status {} without the error envelope: {body}",
                a.status
            ));
        }
        for m in [&body["message"], &body["errorInfo"]["message"]] {
            let words = rust_words(m.as_str().unwrap_or_default());
            if !words.is_empty() {
                return fail(format!(
                    "status {} whose message speaks Rust ({words:?}): {body}",
                    a.status
                ));
            }
        }
    } else if body["success"] != true {
        return fail(format!("status {} without success:true: {body}", a.status));
    }
    Ok((a.status, body))
}

/// Words of Rust's or serde's vocabulary, and the hub's own type names, that an error message
/// shown to Ashby, a recruiter or a vendor's developer must not contain: it says what was expected
/// in the contract's words ("a JSON object", "a string", "one of Hired, Archived, …").
fn rust_words(message: &str) -> Vec<String> {
    const WORDS: [&str; 25] = [
        "struct", "enum", "tuple", "variant", "newtype", "sequence", "unit", "Vec", "Option",
        "Some", "None", "String", "str", "u8", "u16", "u32", "u64", "u128", "i8", "i16", "i32",
        "i64", "i128", "f64", "usize",
    ];
    const TYPES: [&str; 16] = [
        "StartRequest",
        "StartCandidate",
        "StartApplication",
        "StartJob",
        "HiringTeamMember",
        "CancelRequest",
        "RawCallback",
        "RawResult",
        "DataField",
        "DataValue",
        "DataType",
        "VendorStatus",
        "ApplicationStatus",
        "AssessmentTypeId",
        "AssessmentId",
        "Uuid",
    ];
    let mut found: Vec<String> = message
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| WORDS.contains(w))
        .map(str::to_owned)
        .collect();
    found.extend(
        TYPES
            .iter()
            .filter(|t| message.contains(*t))
            .map(|t| (*t).to_owned()),
    );
    if message.contains('`') {
        found.push("`".into());
    }
    found
}

fn code(body: &Value) -> &str {
    body["errorInfo"]["code"].as_str().unwrap_or("-")
}

// ---------------------------------------------------------------------------------------------
// The hub under test and its endpoints

/// The routes, each reached with valid credentials unless a test says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Door {
    List,
    /// `assessment.customField.list`: a listing like `List`, which ignores its body too.
    Fields,
    Start,
    Cancel,
    Callback,
}

impl Door {
    /// A listing: its body is `{}` per the spec and anything under the size limit is tolerated.
    fn lists(self) -> bool {
        matches!(self, Self::List | Self::Fields)
    }
}

const DOORS: [Door; 5] = [
    Door::List,
    Door::Fields,
    Door::Start,
    Door::Cancel,
    Door::Callback,
];

fn door() -> impl Strategy<Value = Door> {
    prop_oneof![
        Just(Door::List),
        Just(Door::Fields),
        Just(Door::Start),
        Just(Door::Cancel),
        Just(Door::Callback)
    ]
}

fn basic(token: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{token}:"))
    )
}

fn now_s() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A Standard Webhooks signature. The library signs UTF-8 only: a body that is not gets the
/// signature of its lossy text, which the hub must refuse whatever it is.
fn sign(secret: &str, webhook_id: &str, ts: i64, body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    standardwebhooks::Webhook::new(secret)
        .unwrap()
        .sign(webhook_id, ts, text.as_bytes())
        .unwrap()
}

/// A request signed as `secret` would sign it, now, with a fresh webhook-id.
fn signed(target: &str, secret: &str, body: Vec<u8>) -> Raw {
    let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
    let ts = now_s();
    let sig = sign(secret, &id, ts, &body);
    Raw::new(target, body)
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
}

struct Hub<'a> {
    f: &'a Fixture,
    addr: String,
    /// Live assessments: one for cancels, one for callbacks.
    cancel_id: String,
    callback_id: String,
}

impl<'a> Hub<'a> {
    async fn new(f: &'a Fixture) -> Self {
        let addr = f
            .base_url
            .strip_prefix("http://")
            .unwrap()
            .trim_end_matches('/')
            .to_owned();
        Self {
            f,
            addr,
            cancel_id: f.start_ok().await,
            callback_id: f.start_ok().await,
        }
    }

    fn path(door: Door) -> &'static str {
        match door {
            Door::List => "/assessment.list",
            Door::Fields => "/assessment.customField.list",
            Door::Start => "/assessment.start",
            Door::Cancel => "/assessment.cancel",
            Door::Callback => "/callbacks/acme",
        }
    }

    /// `body` to `door` as its legitimate caller sends it: the trigger token, or Acme's signature.
    fn request(&self, door: Door, body: Vec<u8>) -> Raw {
        match door {
            Door::Callback => signed(Self::path(door), VENDOR_SECRET, body),
            _ => Raw::new(Self::path(door), body).header("authorization", basic(&self.f.token)),
        }
    }

    fn valid_body(&self, door: Door) -> Value {
        match door {
            Door::List | Door::Fields => json!({}),
            Door::Start => self.f.start_body(&self.f.type_id, "app-hostile"),
            Door::Cancel => json!({ "assessment_id": self.cancel_id }),
            Door::Callback => json!({
                "assessment_id": self.callback_id, "status": "completed", "status_label": "Clear",
                "result": {"type": "numeric_score", "value": 87, "label": "Score", "description": "d"},
                "report_url": "https://vendor.example/reports/r-1",
                "metadata": [{"identifier": "eta", "label": "ETA", "type": "string", "value": "3 days"},
                             {"identifier": "took", "label": "Took", "type": "numeric_duration_minutes", "value": 74}]
            }),
        }
    }

    async fn check(&self, req: &Raw) -> Result<(u16, Value), String> {
        well_formed(req, send(&self.addr, req).await)
    }

    /// `check`, also requiring `status`.
    async fn expect(&self, req: &Raw, status: u16) -> Value {
        let (s, body) = self.check(req).await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s, status, "{body}\n  request: {}", req.describe());
        body
    }
}

/// Runs a proptest property whose cases are async: each case runs to completion on the test's
/// runtime; a failure is shrunk and reported with its smallest input.
fn property<S, F, Fut>(name: &str, cases: u32, strategy: S, test: F)
where
    S: Strategy,
    S::Value: Debug,
    F: Fn(S::Value) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    let mut runner = TestRunner::new(ProptestConfig {
        cases,
        failure_persistence: None,
        // Each shrink step is a few requests; a hang would make each one take REQUEST_TIMEOUT.
        max_shrink_iters: 300,
        ..ProptestConfig::default()
    });
    let handle = tokio::runtime::Handle::current();
    let outcome = tokio::task::block_in_place(|| {
        runner.run(&strategy, |v| {
            handle.block_on(test(v)).map_err(TestCaseError::fail)
        })
    });
    if let Err(e) = outcome {
        panic!("property {name:?} does not hold: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Generators

/// Any JSON value: every type, odd numbers, strings of any characters (control characters and
/// unicode included), nested a few levels.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,40}".prop_map(Value::from),
        "[a-z_]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::vec((".{0,12}", inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Every JSON pointer in `v`, the root included, parents before children.
fn pointers(v: &Value) -> Vec<String> {
    fn walk(v: &Value, at: String, out: &mut Vec<String>) {
        out.push(at.clone());
        match v {
            Value::Object(m) => {
                for (k, c) in m {
                    let k = k.replace('~', "~0").replace('/', "~1");
                    walk(c, format!("{at}/{k}"), out);
                }
            }
            Value::Array(a) => {
                for (i, c) in a.iter().enumerate() {
                    walk(c, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(v, String::new(), &mut out);
    out
}

/// A change to a valid body's structure: a field of the wrong type, a missing field, an unknown
/// field. `at` picks the place (modulo the number of places).
#[derive(Debug, Clone)]
enum Mutation {
    Replace {
        at: usize,
        with: Value,
    },
    Remove {
        at: usize,
    },
    AddField {
        at: usize,
        key: String,
        value: Value,
    },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<usize>(), any_json()).prop_map(|(at, with)| Mutation::Replace { at, with }),
        1 => any::<usize>().prop_map(|at| Mutation::Remove { at }),
        2 => (any::<usize>(), ".{0,16}", any_json())
            .prop_map(|(at, key, value)| Mutation::AddField { at, key, value }),
    ]
}

fn mutate(valid: &Value, m: &Mutation) -> Value {
    let mut v = valid.clone();
    let places = pointers(&v);
    let pick = |at: usize| places[at % places.len()].clone();
    match m {
        Mutation::Replace { at, with } => {
            if let Some(slot) = v.pointer_mut(&pick(*at)) {
                *slot = with.clone();
            }
        }
        Mutation::Remove { at } => {
            let p = pick(*at);
            if let Some((parent, last)) = p.rsplit_once('/') {
                let last = last.replace("~1", "/").replace("~0", "~");
                match v.pointer_mut(parent) {
                    Some(Value::Object(o)) => {
                        o.remove(&last);
                    }
                    Some(Value::Array(a)) => {
                        if let Ok(i) = last.parse::<usize>()
                            && i < a.len()
                        {
                            a.remove(i);
                        }
                    }
                    _ => {}
                }
            }
        }
        Mutation::AddField { at, key, value } => {
            let p = pick(*at);
            match v.pointer_mut(&p) {
                Some(Value::Object(o)) => {
                    o.insert(key.clone(), value.clone());
                }
                _ => {
                    if let Value::Object(o) = &mut v {
                        o.insert(key.clone(), value.clone());
                    }
                }
            }
        }
    }
    v
}

/// Serialises `v` with the first key of the object at `pointer` written twice: first with
/// `dup`, then with its own value (which is the one a lenient parser would keep).
fn with_duplicate_key(v: &Value, pointer: &str, dup: &Value) -> String {
    fn write(v: &Value, at: &str, target: &str, dup: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                out.push('{');
                let mut first = true;
                if at == target
                    && let Some(k) = m.keys().next()
                {
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    out.push_str(&dup.to_string());
                    first = false;
                }
                for (k, c) in m {
                    if !first {
                        out.push(',');
                    }
                    first = false;
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    let kk = k.replace('~', "~0").replace('/', "~1");
                    write(c, &format!("{at}/{kk}"), target, dup, out);
                }
                out.push('}');
            }
            Value::Array(a) => {
                out.push('[');
                for (i, c) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(c, &format!("{at}/{i}"), target, dup, out);
                }
                out.push(']');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(v, "", pointer, dup, &mut out);
    out
}

/// A change to a valid body's bytes. Positions are taken modulo the body's length.
#[derive(Debug, Clone)]
enum Edit {
    Truncate(usize),
    Insert(usize, u8),
    Delete(usize),
    Overwrite(usize, u8),
    /// A key repeated in the object at this place (modulo the objects).
    DuplicateKey(usize, Value),
    /// The body twice, back to back.
    Doubled,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        any::<usize>().prop_map(Edit::Truncate),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Insert(i, b)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Edit::Overwrite(i, b)),
        (any::<usize>(), any_json()).prop_map(|(i, v)| Edit::DuplicateKey(i, v)),
        Just(Edit::Doubled),
    ]
}

fn apply_edit(valid: &Value, e: &Edit) -> Vec<u8> {
    let mut b = valid.to_string().into_bytes();
    let n = b.len();
    match e {
        Edit::Truncate(i) => b.truncate(i % n),
        Edit::Insert(i, x) => b.insert(i % (n + 1), *x),
        Edit::Delete(i) => {
            b.remove(i % n);
        }
        Edit::Overwrite(i, x) => b[i % n] = *x,
        Edit::DuplicateKey(i, dup) => {
            let objects: Vec<String> = pointers(valid)
                .into_iter()
                .filter(|p| {
                    valid
                        .pointer(p)
                        .is_some_and(|v| v.as_object().is_some_and(|o| !o.is_empty()))
                })
                .collect();
            if !objects.is_empty() {
                b = with_duplicate_key(valid, &objects[i % objects.len()], dup).into_bytes();
            }
        }
        Edit::Doubled => b.extend_from_slice(valid.to_string().as_bytes()),
    }
    b
}

// ---------------------------------------------------------------------------------------------
// Properties over every endpoint

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_bytes_to_any_endpoint_get_a_json_2xx_or_4xx() {
    let f = Fixture::local().await;
    let hub = &Hub::new(&f).await;
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        // Mostly JSON-ish punctuation, to get past the first byte more often.
        proptest::collection::vec(
            prop_oneof![
                Just(b'{'),
                Just(b'}'),
                Just(b'['),
                Just(b']'),
                Just(b'"'),
                Just(b':'),
                Just(b','),
                Just(b'\\'),
                Just(b'0'),
                Just(b'-'),
                Just(b'e'),
                any::<u8>()
            ],
            0..512
        ),
    ];
    property(
        "any bytes",
        160,
        (door(), bytes),
        |(door, body)| async move {
            let req = hub.request(door, body);
            let (status, b) = hub.check(&req).await?;
            if door.lists() && status != 200 {
                return Err(format!("list ignores its body, answered {status} {b}"));
            }
            Ok(())
        },
    );
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_bodies_with_wrong_types_missing_or_unknown_fields_get_a_json_2xx_or_4xx() {
    let f = Fixture::local().await;
    let hub = &Hub::new(&f).await;
    property(
        "structural mutations",
        256,
        (door(), mutation()),
        |(door, m)| async move {
            let body = mutate(&hub.valid_body(door), &m);
            let req = hub.request(door, body.to_string().into_bytes());
            let (status, b) = hub.check(&req).await?;
            if status >= 400 && status != 404 && status != 422 && code(&b) != "invalid_input" {
                return Err(format!("a bad body is invalid_input, got {status} {b}"));
            }
            Ok(())
        },
    );
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_bytes_and_duplicate_keys_in_valid_bodies_get_a_json_2xx_or_4xx() {
    let f = Fixture::local().await;
    let hub = &Hub::new(&f).await;
    property(
        "byte edits",
        256,
        (door(), edit()),
        |(door, e)| async move {
            let body = apply_edit(&hub.valid_body(door), &e);
            let req = hub.request(door, body);
            hub.check(&req).await?;
            Ok(())
        },
    );
    f.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_bodies_truncated_at_every_byte_are_a_400_on_every_endpoint() {
    let f = Fixture::local().await;
    let hub = Hub::new(&f).await;
    for door in DOORS {
        let full = hub.valid_body(door).to_string().into_bytes();
        for cut in 0..full.len() {
            let req = hub.request(door, full[..cut].to_vec());
            let (status, body) = hub.check(&req).await.unwrap_or_else(|e| panic!("{e}"));
            // The list ignores its body; for the others no strict prefix of an object is JSON.
            let want = if door.lists() { 200 } else { 400 };
            assert_eq!(status, want, "{door:?} cut at {cut}: {body}");
        }
    }
    f.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Named cases from the issue

#[tokio::test]
async fn a_deeply_nested_body_is_a_400_not_a_crash_on_every_endpoint() {
    let f = Fixture::local().await;
    let hub = Hub::new(&f).await;
    for depth in [10_000, 100_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        // Objects take 7 bytes a level: as deep as fits under the body limit.
        let levels = depth.min(30_000);
        let objects = format!("{}1{}", "{\"a\":".repeat(levels), "}".repeat(levels));
        let in_a_field = format!("{{\"assessment_id\":{arrays}}}");
        let unclosed = "[".repeat(depth);
        for body in [&arrays, &objects, &in_a_field, &unclosed] {
            assert!(body.len() < MAX_BODY);
            for door in DOORS {
                let want = if door.lists() { 200 } else { 400 };
                let b = hub
                    .expect(&hub.request(door, body.clone().into_bytes()), want)
                    .await;
                if want == 400 {
                    assert_eq!(code(&b), "invalid_input", "{b}");
                }
            }
        }
    }
    f.stop().await;
}

#[tokio::test]
async fn a_body_over_256_kib_is_a_413_and_one_at_the_limit_is_read() {
    let f = Fixture::local().await;
    let hub = Hub::new(&f).await;
    let padded = |len: usize| {
        let mut v = format!("{{\"pad\":\"{}", "x".repeat(len));
        v.truncate(len - 2);
        v.push_str("\"}");
        assert_eq!(v.len(), len);
        v.into_bytes()
    };
    for door in DOORS {
        for len in [MAX_BODY + 1, MAX_BODY + 4096, 2 * 1024 * 1024] {
            let b = hub.expect(&hub.request(door, padded(len)), 413).await;
            assert_eq!(code(&b), "payload_too_large");
        }
        // Exactly at the limit the body is read and judged on its content.
        let want = if door.lists() { 200 } else { 400 };
        hub.expect(&hub.request(door, padded(MAX_BODY)), want).await;
    }
    // Without credentials too: the size is refused before anything else is read.
    let big = padded(MAX_BODY + 1);
    for path in [
        "/assessment.list",
        "/assessment.start",
        "/assessment.cancel",
        "/callbacks/acme",
    ] {
        let (s, _) = hub
            .check(&Raw::new(path, big.clone()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(s == 413 || s == 401, "{path}: {s}");
    }
    f.stop().await;
}

#[tokio::test]
async fn huge_strings_under_the_body_limit_are_refused_by_field_name() {
    let f = Fixture::local().await;
    let hub = Hub::new(&f).await;
    let huge_ascii = "x".repeat(250_000);
    // 4-byte characters: 240 000 bytes, 60 000 characters.
    let huge_unicode = "\u{1F600}".repeat(60_000);
    let start = hub.valid_body(Door::Start);
    for huge in [&huge_ascii, &huge_unicode] {
        for (pointer, field) in [
            ("/candidate/first_name", "candidate.first_name"),
            ("/candidate/email", "candidate.email"),
            ("/application/ashby_id", "application.ashby_id"),
            ("/job/name", "job.name"),
            ("/job/req_id", "job.req_id"),
            ("/assessment_type_id", "assessment_type_id"),
        ] {
            let mut body = start.clone();
            *body.pointer_mut(pointer).unwrap() = json!(huge);
            let b = hub
                .expect(
                    &hub.request(Door::Start, body.to_string().into_bytes()),
                    400,
                )
                .await;
            assert!(
                b["message"].as_str().unwrap().contains(field),
                "{field}: {b}"
            );
        }
        let cb = hub.valid_body(Door::Callback);
        for (pointer, field) in [
            ("/status_label", "status_label"),
            ("/report_url", "report_url"),
            ("/result/label", "result.label"),
            ("/metadata/0/value", "metadata[0].value"),
            ("/assessment_id", "assessment_id"),
        ] {
            let mut body = cb.clone();
            *body.pointer_mut(pointer).unwrap() = json!(huge);
            let b = hub
                .expect(
                    &hub.request(Door::Callback, body.to_string().into_bytes()),
                    400,
                )
                .await;
            assert!(
                b["message"].as_str().unwrap().contains(field),
                "{field}: {b}"
            );
        }
        let body = json!({ "assessment_id": huge });
        hub.expect(
            &hub.request(Door::Cancel, body.to_string().into_bytes()),
            400,
        )
        .await;
        // The list ignores its body, huge or not.
        let body = json!({ "anything": huge });
        hub.expect(&hub.request(Door::List, body.to_string().into_bytes()), 200)
            .await;
    }
    assert!(
        f.ashby.accepted_for(&hub.callback_id).is_empty(),
        "nothing refused reached Ashby"
    );
    f.stop().await;
}

#[tokio::test]
async fn invalid_utf8_and_lone_surrogates_are_a_400_on_every_endpoint() {
    let f = Fixture::local().await;
    let hub = Hub::new(&f).await;
    for door in [Door::Start, Door::Cancel, Door::Callback] {
        let valid = hub.valid_body(door).to_string();
        // Inside a string, a bare continuation byte, an overlong encoding, an encoded surrogate.
        let key = match door {
            Door::Start => "Adaxyz",
            _ => "-",
        };
        for bad in [
            &b"\xff"[..],
            b"\x80",
            b"\xc0\xaf",
            b"\xed\xa0\x80",
            b"\xf4\x90\x80\x80",
        ] {
            let at = valid.find(key).unwrap() + 1;
            let mut body = valid.as_bytes()[..at].to_vec();
            body.extend_from_slice(bad);
            body.extend_from_slice(&valid.as_bytes()[at..]);
            let b = hub.expect(&hub.request(door, body), 400).await;
            assert_eq!(code(&b), "invalid_input", "{door:?}: {b}");
        }
        // A JSON escape of half a surrogate pair is not a character either.
        let body = valid.replacen(key, &format!("{key}\\ud800"), 1);
        hub.expect(&hub.request(door, body.into_bytes()), 400).await;
    }
    hub.expect(&hub.request(Door::List, b"\xff\xfe\xfd".to_vec()), 200)
        .await;
    f.stop().await;
}

#[tokio::test]
async fn control_characters_are_escaped_on_the_way_out_or_refused_never_a_crash() {
    let f = Fixture::local().await;
    let hub = Hub::new(&f).await;
    let nasty = "A\u{0}\u{7}\u{1b}[31m\u{7f}\u{202e}\u{feff}\r\nB";
    // In a candidate's name they are data: the start works and the vendor gets them intact.
    let mut start = f.start_body(&f.type_id, &crate::helpers::fresh_app());
    start["candidate"]["first_name"] = json!(nasty);
    let b = hub
        .expect(
            &hub.request(Door::Start, start.to_string().into_bytes()),
            200,
        )
        .await;
    let id = b["results"]["assessment_id"].as_str().unwrap();
    let order = f.orders_for(id);
    assert_eq!(order.len(), 1);
    assert_eq!(order[0].body["candidate"]["first_name"], nasty);
    // In what the hub would show in Ashby, they are refused, by name.
    let mut cb = hub.valid_body(Door::Callback);
    cb["status_label"] = json!(nasty);
    let b = hub
        .expect(
            &hub.request(Door::Callback, cb.to_string().into_bytes()),
            400,
        )
        .await;
    assert!(
        b["message"].as_str().unwrap().contains("status_label"),
        "{b}"
    );
    // Raw (unescaped) control bytes inside a JSON string are not JSON at all.
    for door in [Door::Start, Door::Cancel, Door::Callback] {
        for byte in [0u8, 0x07, 0x1b, b'\n'] {
            let text = hub.valid_body(door).to_string();
            let at = text.find(":\"").unwrap() + 2;
            let mut body = text.as_bytes()[..at].to_vec();
            body.push(byte);
            body.extend_from_slice(&text.as_bytes()[at..]);
            hub.expect(&hub.request(door, body), 400).await;
        }
    }
    f.stop().await;
}

/// Every field of every body replaced by a value of every JSON type, removed, or the whole body
/// replaced: each refusal says what was expected in the contract's words, never in Rust's.
#[tokio::test]
async fn no_refusal_of_a_malformed_body_names_a_rust_type() {
    let f = Fixture::local().await;
    let hub = Hub::new(&f).await;
    let values = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(1.5),
        json!(u64::MAX),
        json!(""),
        json!("x"),
        json!([]),
        json!(["x"]),
        json!([1, 2, 3]),
        json!({}),
        json!({"x": 1}),
    ];
    let mut refusals = 0;
    for door in [Door::Start, Door::Cancel, Door::Callback] {
        let valid = hub.valid_body(door);
        for pointer in pointers(&valid) {
            let mut bodies: Vec<Value> = values
                .iter()
                .map(|v| {
                    let mut b = valid.clone();
                    *b.pointer_mut(&pointer).unwrap() = v.clone();
                    b
                })
                .collect();
            if !pointer.is_empty() {
                bodies.push(mutate(
                    &valid,
                    &Mutation::Remove {
                        at: pointers(&valid).iter().position(|p| *p == pointer).unwrap(),
                    },
                ));
            }
            for body in bodies {
                let req = hub.request(door, body.to_string().into_bytes());
                let (status, b) = hub.check(&req).await.unwrap_or_else(|e| panic!("{e}"));
                if status >= 400 {
                    refusals += 1;
                    let msg = b["message"].as_str().unwrap();
                    assert!(rust_words(msg).is_empty(), "{door:?} {pointer}: {msg:?}");
                }
            }
        }
    }
    assert!(refusals > 300, "the sweep refused only {refusals} bodies");
    f.stop().await;
}

/// serde's derived structs also read a JSON array, field by field in declaration order: without
/// a guard, `["<id>"]` is a cancel and a signed `["<id>","completed",…]` a result.
#[tokio::test]
async fn bodies_written_as_json_arrays_are_a_400_and_change_nothing() {
    let f = Fixture::local().await;
    let hub = Hub::new(&f).await;
    let orders_before = f.vendor.of_type("assessment.requested").len();

    let b = hub
        .expect(
            &hub.request(
                Door::Cancel,
                json!([hub.cancel_id]).to_string().into_bytes(),
            ),
            400,
        )
        .await;
    assert_eq!(b["message"], "request body must be a JSON object", "{b}");
    assert!(f.vendor.of_type("assessment.cancelled").is_empty());

    let positional = json!([
        f.type_id,
        [
            "cand-1",
            "Ada",
            "Lovelace",
            "ada@example.com",
            "https://app.ashbyhq.com/c/1"
        ],
        [crate::helpers::fresh_app(), "Active"],
        [
            "job-1",
            "Backend Engineer",
            null,
            "https://app.ashbyhq.com/j/1",
            [[
                "e9ed20fd-d45f-4aad-8a00-a19bfba0083e",
                "Grace",
                "Hopper",
                "g@example.com",
                "HM"
            ]]
        ]
    ]);
    let b = hub
        .expect(
            &hub.request(Door::Start, positional.to_string().into_bytes()),
            400,
        )
        .await;
    assert_eq!(b["message"], "request body must be a JSON object", "{b}");
    let mut nested = f.start_body(&f.type_id, &crate::helpers::fresh_app());
    nested["job"]["hiringTeam"] = json!([[
        "e9ed20fd-d45f-4aad-8a00-a19bfba0083e",
        "Grace",
        "Hopper",
        "g@example.com",
        "HM"
    ]]);
    let b = hub
        .expect(
            &hub.request(Door::Start, nested.to_string().into_bytes()),
            400,
        )
        .await;
    assert_eq!(
        b["message"], "job.hiringTeam[0] must be a JSON object",
        "{b}"
    );

    for body in [
        json!([hub.callback_id, "in_progress", "label"]),
        json!([
            hub.callback_id,
            "completed",
            "Clear",
            ["numeric_score", 87, "Score"],
            "https://vendor.example/reports/r-1"
        ]),
    ] {
        let b = hub
            .expect(
                &hub.request(Door::Callback, body.to_string().into_bytes()),
                400,
            )
            .await;
        assert_eq!(b["message"], "request body must be a JSON object", "{b}");
    }

    assert_eq!(
        f.vendor.of_type("assessment.requested").len(),
        orders_before,
        "no order was placed"
    );
    for id in [&hub.cancel_id, &hub.callback_id] {
        let a = f
            .store()
            .assessment(hub::domain::AssessmentId::parse(id).unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.status, hub::domain::Status::Ordered, "{id} is untouched");
    }
    assert!(
        f.ashby
            .received()
            .iter()
            .all(|u| u.body["assessment_id"] != hub.callback_id.as_str()),
        "nothing reached Ashby"
    );
    f.stop().await;
}

#[tokio::test]
async fn duplicate_keys_are_a_400_naming_the_field() {
    let f = Fixture::local().await;
    let hub = Hub::new(&f).await;
    let other = uuid::Uuid::new_v4().to_string();
    let cases = [
        (
            Door::Cancel,
            format!(
                r#"{{"assessment_id":"{}","assessment_id":"{other}"}}"#,
                hub.cancel_id
            ),
            "assessment_id",
        ),
        (
            Door::Callback,
            format!(
                r#"{{"assessment_id":"{}","status":"in_progress","status":"completed"}}"#,
                hub.callback_id
            ),
            "status",
        ),
        (
            Door::Start,
            with_duplicate_key(
                &hub.valid_body(Door::Start),
                "/candidate",
                &json!("x@y.example"),
            ),
            "candidate.",
        ),
    ];
    for (door, body, field) in cases {
        let b = hub.expect(&hub.request(door, body.into_bytes()), 400).await;
        let msg = b["message"].as_str().unwrap();
        assert!(
            msg.contains(field) && msg.contains("more than once"),
            "{door:?}: {b}"
        );
        assert!(
            !msg.contains("x@y.example"),
            "values are never echoed: {msg}"
        );
    }
    f.stop().await;
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_odd_numbers_refused_by_name() {
    let f = Fixture::local().await;
    let hub = Hub::new(&f).await;
    let mut start = f.start_body(&f.type_id, &crate::helpers::fresh_app());
    start["unexpected"] = json!({"deep": [1, 2, {"x": null}]});
    start["candidate"]["middle_name"] = json!("Byron");
    hub.expect(
        &hub.request(Door::Start, start.to_string().into_bytes()),
        200,
    )
    .await;
    let mut cb = hub.valid_body(Door::Callback);
    cb["result"]["value"] = json!("NUMBER");
    let cb = cb.to_string();
    for number in ["1e999", "-1e999", "123456789012345678901234567890e999999"] {
        let body = cb.replacen("\"NUMBER\"", number, 1);
        let b = hub
            .expect(&hub.request(Door::Callback, body.into_bytes()), 400)
            .await;
        assert_eq!(code(&b), "invalid_input", "{number}: {b}");
    }
    f.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Signatures and timestamps

#[derive(Debug, Clone)]
enum IdHeader {
    Valid,
    Missing,
    Empty,
    TooLong,
    /// Bytes allowed in an HTTP header (visible ASCII, space, obs-text) but not in a webhook-id.
    Odd(Vec<u8>),
}

#[derive(Debug, Clone)]
enum TsHeader {
    Now,
    Missing,
    /// Seconds from now, outside the ±5 min window (with a margin of 10 s).
    Offset(i64),
    /// Any instant at all, but not within the window.
    At(i64),
    /// Not a number of seconds.
    Text(String),
}

#[derive(Debug, Clone)]
enum SigHeader {
    Valid,
    /// Garbage entries around the valid one: still valid (any listed signature may match).
    ValidAmongGarbage,
    Missing,
    Empty,
    /// `v1,` and nothing.
    V1Empty,
    /// The valid signature cut to this many characters (modulo its length).
    Truncated(usize),
    OtherSecret,
    /// The valid signature with one character changed.
    Flipped(usize),
    /// The valid signature under another version tag.
    OtherVersion,
    Garbage(String),
}

#[derive(Debug, Clone)]
struct Headers {
    id: IdHeader,
    ts: TsHeader,
    sig: SigHeader,
}

impl Headers {
    fn valid(&self) -> bool {
        matches!(self.id, IdHeader::Valid)
            && matches!(self.ts, TsHeader::Now)
            && matches!(self.sig, SigHeader::Valid | SigHeader::ValidAmongGarbage)
    }
}

/// Header text an HTTP server accepts (visible ASCII, space, non-ASCII as obs-text), up to `max`
/// characters.
fn header_text(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[ -~\u{80}-\u{10ffff}]{{0,{max}}}")).unwrap()
}

fn headers() -> impl Strategy<Value = Headers> {
    let id = prop_oneof![
        3 => Just(IdHeader::Valid),
        1 => Just(IdHeader::Missing),
        1 => Just(IdHeader::Empty),
        1 => Just(IdHeader::TooLong),
        1 => proptest::collection::vec(
            prop_oneof![Just(b' '), 0x80u8..=0xff, 0x21u8..=0x7e],
            1..40
        )
        .prop_filter("not a valid webhook-id", |b| b.iter().any(|c| *c == b' ' || *c >= 0x80))
        .prop_map(IdHeader::Odd),
    ];
    let far = |ts: &i64| (i128::from(*ts) - i128::from(now_s())).abs() > 330;
    let ts = prop_oneof![
        3 => Just(TsHeader::Now),
        1 => Just(TsHeader::Missing),
        1 => prop_oneof![-10_000_000_000i64..-310, 310i64..10_000_000_000].prop_map(TsHeader::Offset),
        1 => prop_oneof![
            any::<i64>(),
            Just(i64::MIN),
            Just(i64::MIN + 1),
            Just(i64::MAX),
            Just(-1i64),
            Just(0i64),
            Just(253_402_300_799i64),
        ]
        .prop_filter("outside the window", far)
        .prop_map(TsHeader::At),
        1 => prop_oneof![
            header_text(24),
            Just("9999-12-31T23:59:59Z".to_owned()),
            Just("99999999999999999999".to_owned()),
            Just("-99999999999999999999".to_owned()),
            Just("1e10".to_owned()),
            Just("0x10".to_owned()),
            Just(String::new()),
        ]
        .prop_filter("not an integer", |s| s.trim().parse::<i64>().is_err())
        .prop_map(TsHeader::Text),
    ];
    let sig = prop_oneof![
        3 => Just(SigHeader::Valid),
        1 => Just(SigHeader::ValidAmongGarbage),
        1 => Just(SigHeader::Missing),
        1 => Just(SigHeader::Empty),
        1 => Just(SigHeader::V1Empty),
        1 => any::<usize>().prop_map(SigHeader::Truncated),
        1 => Just(SigHeader::OtherSecret),
        1 => any::<usize>().prop_map(SigHeader::Flipped),
        1 => Just(SigHeader::OtherVersion),
        1 => header_text(120).prop_map(SigHeader::Garbage),
    ];
    (id, ts, sig)
        .prop_map(|(id, ts, sig)| Headers { id, ts, sig })
        .prop_filter("at least one part is wrong", |h| !h.valid())
}

fn callback_with(headers: &Headers, target: &str, body: Vec<u8>) -> Raw {
    let id = match &headers.id {
        IdHeader::Valid | IdHeader::Missing => format!("msg_{}", uuid::Uuid::new_v4().simple()),
        IdHeader::Empty => String::new(),
        IdHeader::TooLong => "m".repeat(129),
        IdHeader::Odd(b) => String::from_utf8_lossy(b).into_owned(),
    };
    let id_bytes = match &headers.id {
        IdHeader::Odd(b) => b.clone(),
        _ => id.clone().into_bytes(),
    };
    let now = now_s();
    let (ts, ts_text) = match &headers.ts {
        TsHeader::Now | TsHeader::Missing => (now, now.to_string()),
        TsHeader::Offset(o) => (now + o, (now + o).to_string()),
        TsHeader::At(t) => (*t, t.to_string()),
        TsHeader::Text(t) => (now, t.clone()),
    };
    let good = sign(VENDOR_SECRET, &id, ts, &body);
    let sig = match &headers.sig {
        SigHeader::Valid | SigHeader::Missing => good,
        SigHeader::ValidAmongGarbage => format!("v1,AAAA v2,{} v1a,x {good} v1,", &good[3..]),
        SigHeader::Empty => String::new(),
        SigHeader::V1Empty => "v1,".into(),
        SigHeader::Truncated(n) => good[..n % good.len()].to_owned(),
        SigHeader::OtherSecret => sign(RIVAL_SECRET, &id, ts, &body),
        SigHeader::Flipped(i) => {
            let mut b = good.into_bytes();
            let i = 3 + i % (b.len() - 3);
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            String::from_utf8(b).unwrap()
        }
        SigHeader::OtherVersion => good.replacen("v1,", "v2,", 1),
        SigHeader::Garbage(g) => g.clone(),
    };
    let mut req = Raw::new(target, body);
    if !matches!(headers.id, IdHeader::Missing) {
        req = req.header("webhook-id", id_bytes);
    }
    if !matches!(headers.ts, TsHeader::Missing) {
        req = req.header("webhook-timestamp", ts_text);
    }
    if !matches!(headers.sig, SigHeader::Missing) {
        req = req.header("webhook-signature", sig);
    }
    req
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_whose_signature_headers_are_wrong_in_any_way_is_a_401() {
    let f = Fixture::local().await;
    let hub = &Hub::new(&f).await;
    let body = &json!({"assessment_id": hub.callback_id, "status": "in_progress"})
        .to_string()
        .into_bytes();
    property("bad signatures", 256, headers(), |h| async move {
        let req = callback_with(&h, "/callbacks/acme", body.clone());
        let (status, b) = hub.check(&req).await?;
        if status != 401 || code(&b) != "invalid_signature" {
            return Err(format!("expected 401 invalid_signature, got {status} {b}"));
        }
        Ok(())
    });
    assert!(
        f.ashby.received().is_empty(),
        "no unverified callback reached Ashby"
    );
    f.stop().await;
}

/// Timestamps from the issue, one by one: outside the window, far in the future, negative, not a
/// number. Each is signed correctly for its own timestamp, so only the window can refuse it.
#[tokio::test]
async fn a_callback_timestamp_outside_the_window_or_absurd_is_a_401() {
    let f = Fixture::local().await;
    let hub = Hub::new(&f).await;
    let body = json!({"assessment_id": hub.callback_id, "status": "in_progress"})
        .to_string()
        .into_bytes();
    let now = now_s();
    for ts in [
        // Past the 300 s tolerance with a margin, so a second ticking by changes nothing.
        (now - 310).to_string(),
        (now + 310).to_string(),
        // 9999-12-31T23:59:59Z, the year 9999
        "253402300799".into(),
        "-1".into(),
        "0".into(),
        i64::MAX.to_string(),
        (i64::MIN + now + 1_000).to_string(),
        "9999-12-31T23:59:59Z".into(),
        "now".into(),
        "99999999999999999999".into(),
        "1e10".into(),
        String::new(),
    ] {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let signed_ts = ts.parse::<i64>().unwrap_or(now);
        let req = Raw::new("/callbacks/acme", body.clone())
            .header("webhook-id", &id)
            .header("webhook-timestamp", &ts)
            .header(
                "webhook-signature",
                sign(VENDOR_SECRET, &id, signed_ts, &body),
            );
        let b = hub.expect(&req, 401).await;
        assert_eq!(code(&b), "invalid_signature", "{ts:?}: {b}");
    }
    assert!(f.ashby.received().is_empty());
    f.stop().await;
}

/// The most negative timestamps make "now − timestamp" overflow an `i64` inside the signature
/// check: it must still be a 401, never an arithmetic panic.
#[tokio::test]
async fn a_callback_timestamp_of_i64_min_is_a_401_not_a_crash() {
    let f = Fixture::local().await;
    let hub = Hub::new(&f).await;
    let body = json!({"assessment_id": hub.callback_id, "status": "in_progress"})
        .to_string()
        .into_bytes();
    for ts in [i64::MIN, i64::MIN + 1] {
        let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
        let req = Raw::new("/callbacks/acme", body.clone())
            .header("webhook-id", &id)
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sign(VENDOR_SECRET, &id, ts, &body));
        let b = hub.expect(&req, 401).await;
        assert_eq!(code(&b), "invalid_signature", "{ts}: {b}");
    }
    f.stop().await;
}

#[tokio::test]
async fn a_callback_with_an_empty_truncated_or_foreign_signature_is_a_401() {
    let f = Fixture::local().await;
    let hub = Hub::new(&f).await;
    let body = json!({"assessment_id": hub.callback_id, "status": "in_progress"})
        .to_string()
        .into_bytes();
    let good = signed("/callbacks/acme", VENDOR_SECRET, body.clone());
    let (_, sig) = good
        .headers
        .iter()
        .find(|(n, _)| n == "webhook-signature")
        .unwrap();
    let sig = String::from_utf8(sig.clone()).unwrap();
    assert!(sig.starts_with("v1,"));
    let mut variants: Vec<String> = vec![
        "v1,".into(),
        "v1".into(),
        String::new(),
        " ".into(),
        "v1, ".into(),
        sig.replacen("v1,", "v1,,", 1),
        sig.to_lowercase(),
    ];
    variants.extend((0..sig.len()).map(|n| sig[..n].to_owned()));
    for v in variants {
        let req = good
            .clone()
            .without("webhook-signature")
            .header("webhook-signature", &v);
        let b = hub.expect(&req, 401).await;
        assert_eq!(code(&b), "invalid_signature", "{v:?}");
    }
    let foreign = signed("/callbacks/acme", RIVAL_SECRET, body.clone());
    hub.expect(&foreign, 401).await;
    for missing in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        hub.expect(&good.clone().without(missing), 401).await;
    }
    // The untouched request does go through, once.
    hub.expect(&good, 200).await;
    f.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Tokens and paths

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_authorization_header_but_a_valid_token_is_a_401() {
    let f = Fixture::local().await;
    let hub = &Hub::new(&f).await;
    let b64 = |s: String| base64::engine::general_purpose::STANDARD.encode(s);
    let auth = prop_oneof![
        proptest::collection::vec(prop_oneof![0x20u8..=0x7e, 0x80u8..=0xff], 0..300),
        header_text(40).prop_map(|s| format!("Bearer {s}").into_bytes()),
        (".{0,40}", ".{0,40}")
            .prop_map(move |(u, p)| format!("Basic {}", b64(format!("{u}:{p}"))).into_bytes()),
        "[A-Za-z0-9+/=]{0,60}".prop_map(|s| format!("Basic {s}").into_bytes()),
        (0usize..20_000).prop_map(|n| format!("Bearer {}", "t".repeat(n)).into_bytes()),
    ];
    let doors = prop_oneof![Just(Door::List), Just(Door::Start), Just(Door::Cancel)];
    property(
        "authorization",
        160,
        (doors, auth),
        |(door, auth)| async move {
            let req = Raw::new(
                Hub::path(door),
                hub.valid_body(door).to_string().into_bytes(),
            )
            .header("authorization", &auth);
            let (status, b) = hub.check(&req).await?;
            if status != 401 || code(&b) != "unauthorized" {
                return Err(format!("expected 401 unauthorized, got {status} {b}"));
            }
            Ok(())
        },
    );
    f.stop().await;
}

/// Percent-encodes everything but unreserved characters.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn path_segment() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("/".to_owned()),
        Just("%2e%2e".to_owned()),
        Just("%2E%2E%2F".to_owned()),
        Just("%2f".to_owned()),
        Just("%5C".to_owned()),
        Just("%00".to_owned()),
        Just("%0A".to_owned()),
        Just("%C3%A9".to_owned()),
        Just("%E2%80%AE".to_owned()),
        Just("%FF".to_owned()),
        Just("%".to_owned()),
        Just("%zz".to_owned()),
        Just("acme".to_owned()),
        Just("ACME".to_owned()),
        Just("rival".to_owned()),
        Just("assessment.start".to_owned()),
        "[-_~;:@!$&'()*+,=a-z0-9]{1,8}",
        any::<String>().prop_map(|s| encode(&s)),
        // Long, but the whole target stays under the 64 KiB an HTTP URI may have.
        (1usize..8_000).prop_map(|n| "a".repeat(n)),
    ];
    proptest::collection::vec(piece, 0..6).prop_map(|p| p.concat())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_vendor_id_path_segment_but_a_vendors_own_is_a_404() {
    let f = Fixture::local().await;
    let hub = &Hub::new(&f).await;
    let body = &json!({"assessment_id": hub.callback_id, "status": "in_progress"})
        .to_string()
        .into_bytes();
    property(
        "vendor path segments",
        200,
        path_segment(),
        |seg| async move {
            let req = signed(&format!("/callbacks/{seg}"), VENDOR_SECRET, body.clone());
            let (status, b) = hub.check(&req).await?;
            let vendor = seg.trim_end_matches('/');
            if vendor != "acme" && vendor != "rival" && (status != 404 || code(&b) != "not_found") {
                return Err(format!("expected 404 not_found, got {status} {b}"));
            }
            Ok(())
        },
    );
    f.stop().await;
}

#[tokio::test]
async fn vendor_ids_with_traversal_nul_unicode_or_great_length_are_a_404() {
    let f = Fixture::local().await;
    let hub = Hub::new(&f).await;
    let body = json!({"assessment_id": hub.callback_id, "status": "in_progress"})
        .to_string()
        .into_bytes();
    let long = "a".repeat(10_000);
    for seg in [
        "",
        "..",
        "../assessment.start",
        "../../etc/passwd",
        "%2e%2e",
        "%2e%2e%2facme",
        "acme%2F..",
        "acme/..",
        "acme/../rival",
        "..%2Facme",
        "%00",
        "acme%00",
        "a%00b",
        "%C3%A9",
        "acm%C3%A9",
        "ACME",
        "%61cme",
        "/acme",
        "acme%20",
        long.as_str(),
    ] {
        let req = signed(&format!("/callbacks/{seg}"), VENDOR_SECRET, body.clone());
        let b = hub.expect(&req, 404).await;
        assert_eq!(code(&b), "not_found", "{seg:.40}: {b}");
    }
    // Raw (unencoded) UTF-8 in the path reaches the hub too: a 404 like any unknown vendor.
    let req = signed("/callbacks/\u{e9}", VENDOR_SECRET, body.clone());
    let b = hub.expect(&req, 404).await;
    assert_eq!(code(&b), "not_found");
    assert!(f.ashby.received().is_empty(), "nothing reached Ashby");
    f.stop().await;
}

// ---------------------------------------------------------------------------------------------
// The compiled Lambda functions

/// A sample of the cases above for any fixture, each with the status it must get.
fn sample(f: &Fixture, live_id: &str) -> Vec<(&'static str, Raw, u16)> {
    let auth = basic(&f.token);
    let start = f.start_body(&f.type_id, "app-sample").to_string();
    let with_auth = |path: &str, body: Vec<u8>| Raw::new(path, body).header("authorization", &auth);
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes();
    let big = format!("{{\"pad\":\"{}\"}}", "x".repeat(MAX_BODY)).into_bytes();
    let not_utf8 = {
        let at = start.find("Adaxyz").unwrap() + 1;
        let mut b = start.as_bytes().to_vec();
        b.insert(at, 0xff);
        b
    };
    let start_json: Value = serde_json::from_str(&start).unwrap();
    let cb_body = json!({"assessment_id": live_id, "status": "in_progress"})
        .to_string()
        .into_bytes();
    let cb =
        |id, ts, sig| callback_with(&Headers { id, ts, sig }, "/callbacks/acme", cb_body.clone());
    let vendor_path =
        |seg: &str| signed(&format!("/callbacks/{seg}"), VENDOR_SECRET, cb_body.clone());
    let unknown_id = json!({"assessment_id": uuid::Uuid::new_v4()}).to_string();
    vec![
        (
            "start truncated",
            with_auth(
                "/assessment.start",
                start.as_bytes()[..start.len() / 2].to_vec(),
            ),
            400,
        ),
        (
            "start nested",
            with_auth("/assessment.start", deep.clone()),
            400,
        ),
        (
            "start invalid utf-8",
            with_auth("/assessment.start", not_utf8),
            400,
        ),
        (
            "start oversized",
            with_auth("/assessment.start", big.clone()),
            413,
        ),
        (
            "start duplicate key",
            with_auth(
                "/assessment.start",
                with_duplicate_key(&start_json, "", &json!(1)).into_bytes(),
            ),
            400,
        ),
        (
            "start wrong type",
            with_auth(
                "/assessment.start",
                start.replacen("\"Adaxyz\"", "[1,2]", 1).into_bytes(),
            ),
            400,
        ),
        (
            "start no token",
            Raw::new("/assessment.start", start.clone().into_bytes()),
            401,
        ),
        (
            "start bad basic",
            Raw::new("/assessment.start", start.clone().into_bytes())
                .header("authorization", "Basic !!!"),
            401,
        ),
        (
            "cancel bad id and unknown field",
            with_auth(
                "/assessment.cancel",
                br#"{"assessment_id":{"$ne":null},"x":[1]}"#.to_vec(),
            ),
            400,
        ),
        (
            "cancel as an array",
            with_auth(
                "/assessment.cancel",
                json!([live_id]).to_string().into_bytes(),
            ),
            400,
        ),
        (
            "cancel unknown id",
            with_auth("/assessment.cancel", unknown_id.into_bytes()),
            404,
        ),
        (
            "list garbage",
            with_auth("/assessment.list", b"\xff\x00garbage".to_vec()),
            200,
        ),
        (
            "list oversized",
            with_auth("/assessment.list", big.clone()),
            413,
        ),
        (
            "callback nested",
            signed("/callbacks/acme", VENDOR_SECRET, deep),
            400,
        ),
        (
            "callback as an array",
            signed(
                "/callbacks/acme",
                VENDOR_SECRET,
                json!([live_id, "in_progress", "label"])
                    .to_string()
                    .into_bytes(),
            ),
            400,
        ),
        (
            "callback truncated",
            signed(
                "/callbacks/acme",
                VENDOR_SECRET,
                cb_body[..cb_body.len() - 3].to_vec(),
            ),
            400,
        ),
        (
            "callback invalid utf-8",
            signed(
                "/callbacks/acme",
                VENDOR_SECRET,
                b"{\"assessment_id\":\"\xff\"}".to_vec(),
            ),
            400,
        ),
        (
            "callback oversized",
            signed("/callbacks/acme", VENDOR_SECRET, big),
            413,
        ),
        (
            "callback v1,",
            cb(IdHeader::Valid, TsHeader::Now, SigHeader::V1Empty),
            401,
        ),
        (
            "callback truncated signature",
            cb(IdHeader::Valid, TsHeader::Now, SigHeader::Truncated(20)),
            401,
        ),
        (
            "callback other secret",
            cb(IdHeader::Valid, TsHeader::Now, SigHeader::OtherSecret),
            401,
        ),
        (
            "callback stale",
            cb(IdHeader::Valid, TsHeader::Offset(-310), SigHeader::Valid),
            401,
        ),
        (
            "callback year 9999",
            cb(
                IdHeader::Valid,
                TsHeader::At(253_402_300_799),
                SigHeader::Valid,
            ),
            401,
        ),
        (
            "callback timestamp i64::MIN",
            cb(IdHeader::Valid, TsHeader::At(i64::MIN), SigHeader::Valid),
            401,
        ),
        (
            "callback negative timestamp",
            cb(IdHeader::Valid, TsHeader::At(-1), SigHeader::Valid),
            401,
        ),
        (
            "callback text timestamp",
            cb(
                IdHeader::Valid,
                TsHeader::Text("soon".into()),
                SigHeader::Valid,
            ),
            401,
        ),
        (
            "callback no signature",
            cb(IdHeader::Valid, TsHeader::Now, SigHeader::Missing),
            401,
        ),
        (
            "callback no id",
            cb(IdHeader::Missing, TsHeader::Now, SigHeader::Valid),
            401,
        ),
        ("callback traversal", vendor_path("..%2Facme"), 404),
        ("callback dot dot", vendor_path("%2e%2e"), 404),
        ("callback nul", vendor_path("acme%00"), 404),
        ("callback long vendor", vendor_path(&"a".repeat(4096)), 404),
        (
            "callback on another vendor's path",
            vendor_path("rival"),
            401,
        ),
    ]
}

/// API-Gateway-shaped events through the compiled functions answer as the local hub does.
#[tokio::test]
async fn the_compiled_functions_answer_hostile_input_as_the_local_hub_does() {
    let local = Fixture::local().await;
    let lambda = Fixture::lambda(1).await;
    let mut answers = Vec::new();
    for f in [&local, &lambda] {
        let hub = Hub::new(f).await;
        let mut got = Vec::new();
        for (name, req, want) in sample(f, &hub.callback_id) {
            let (status, body) = hub
                .check(&req)
                .await
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(status, want, "{name} via {}: {body}", f.base_url);
            got.push((name, status, code(&body).to_owned()));
        }
        answers.push(got);
    }
    assert_eq!(
        answers[0], answers[1],
        "the local hub (left) and the Lambda functions (right) answer alike"
    );
    local.stop().await;
    lambda.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Tenant and vendor isolation

/// Two tenants with different packages, two vendors, an Ashby per tenant.
struct Isolated {
    hub: RunningHub,
    addr: String,
    globex: String,
    initech: String,
    acme: Arc<FakeVendor>,
    globex_ashby: Arc<FakeAshby>,
    initech_ashby: Arc<FakeAshby>,
    /// acme/criminal-basic: Globex only.
    basic_type: String,
    /// acme/premium: Initech only.
    premium_type: String,
    /// rival/coding: Initech only.
    coding_type: String,
}

impl Isolated {
    async fn start() -> Self {
        let acme = FakeVendor::start(VENDOR_SECRET).await;
        let rival = FakeVendor::start(RIVAL_SECRET).await;
        let globex_ashby = FakeAshby::start("globex-key").await;
        let initech_ashby = FakeAshby::start("initech-key").await;
        let globex = format!("globex-{}", uuid::Uuid::new_v4());
        let initech = format!("initech-{}", uuid::Uuid::new_v4());
        let toml = format!(
            r#"
[[vendors]]
id = "acme"
name = "Acme"
order_url = "{acme_url}"
signing_secret = "{VENDOR_SECRET}"
[[vendors.packages]]
id = "criminal-basic"
name = "Criminal record check"
description = "basic"
[[vendors.packages]]
id = "premium"
name = "Premium check"
description = "premium"

[[vendors]]
id = "rival"
name = "Rival"
order_url = "{rival_url}"
signing_secret = "{RIVAL_SECRET}"
[[vendors.packages]]
id = "coding"
name = "Coding test"
description = "coding"

[[tenants]]
id = "globex"
name = "Globex"
trigger_token = "{globex}"
ashby_api_key = "globex-key"
ashby_base_url = "{globex_ashby}"
packages = ["acme/criminal-basic"]

[[tenants]]
id = "initech"
name = "Initech"
trigger_token = "{initech}"
ashby_api_key = "initech-key"
ashby_base_url = "{initech_ashby}"
packages = ["acme/premium", "rival/coding"]
"#,
            acme_url = acme.order_url,
            rival_url = rival.order_url,
            globex_ashby = globex_ashby.base_url,
            initech_ashby = initech_ashby.base_url,
        );
        let hub = start_local_hub(&toml, None, Duration::from_secs(3_600), &[]).await;
        let addr = hub
            .base_url
            .as_str()
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let type_of = |p: &str| {
            hub::domain::PackageRef::parse(p)
                .unwrap()
                .type_id()
                .to_string()
        };
        Self {
            addr,
            globex,
            initech,
            acme,
            globex_ashby,
            initech_ashby,
            basic_type: type_of("acme/criminal-basic"),
            premium_type: type_of("acme/premium"),
            coding_type: type_of("rival/coding"),
            hub,
        }
    }

    async fn call(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        let req =
            Raw::new(path, body.to_string().into_bytes()).header("authorization", basic(token));
        well_formed(&req, send(&self.addr, &req).await).unwrap_or_else(|e| panic!("{e}"))
    }

    async fn callback(&self, vendor: &str, secret: &str, body: &Value) -> (u16, Value) {
        let req = signed(
            &format!("/callbacks/{vendor}"),
            secret,
            body.to_string().into_bytes(),
        );
        well_formed(&req, send(&self.addr, &req).await).unwrap_or_else(|e| panic!("{e}"))
    }

    async fn start_for(&self, token: &str, type_id: &str) -> String {
        let body = json!({
            "assessment_type_id": type_id,
            "candidate": {"ashby_id": "c-1", "first_name": "Ada", "last_name": "L",
                          "email": "ada@candidate.example", "ashby_profile_url": "https://app.ashbyhq.com/c"},
            "application": {"ashby_id": crate::helpers::fresh_app(), "status": "Active"},
            "job": {"ashby_id": "j-1", "name": "Engineer", "ashby_job_url": "https://app.ashbyhq.com/j"}
        });
        let (s, b) = self.call("/assessment.start", token, &body).await;
        assert_eq!(s, 200, "{b}");
        b["results"]["assessment_id"].as_str().unwrap().to_owned()
    }

    fn types(list: &Value) -> Vec<String> {
        let mut t: Vec<String> = list["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["assessment_type_id"].as_str().unwrap().to_owned())
            .collect();
        t.sort();
        t
    }
}

#[tokio::test]
async fn a_tenant_lists_and_starts_only_its_own_packages() {
    let t = Isolated::start().await;
    let (s, list) = t.call("/assessment.list", &t.globex, &json!({})).await;
    assert_eq!(s, 200);
    assert_eq!(Isolated::types(&list), vec![t.basic_type.clone()]);
    let (s, list) = t.call("/assessment.list", &t.initech, &json!({})).await;
    assert_eq!(s, 200);
    let mut want = vec![t.premium_type.clone(), t.coding_type.clone()];
    want.sort();
    assert_eq!(Isolated::types(&list), want);
    // Globex cannot start Initech's package, even knowing its assessment_type_id.
    for type_id in [&t.premium_type, &t.coding_type] {
        let body = json!({
            "assessment_type_id": type_id,
            "candidate": {"ashby_id": "c", "first_name": "A", "last_name": "B", "email": "a@b.example",
                          "ashby_profile_url": "https://app.ashbyhq.com/c"},
            "application": {"ashby_id": "a", "status": "Active"},
            "job": {"ashby_id": "j", "name": "E", "ashby_job_url": "https://app.ashbyhq.com/j"}
        });
        let (s, b) = t.call("/assessment.start", &t.globex, &body).await;
        assert_eq!(s, 422, "{b}");
        assert_eq!(code(&b), "assessment_type_not_enabled");
    }
    assert!(t.acme.received().is_empty(), "no order placed");
    t.hub.stop().await;
}

#[tokio::test]
async fn a_tenant_can_neither_cancel_nor_learn_of_another_tenants_assessment() {
    let t = Isolated::start().await;
    let theirs = t.start_for(&t.initech, &t.premium_type).await;
    let nobodys = uuid::Uuid::new_v4().to_string();
    let (s1, b1) = t
        .call(
            "/assessment.cancel",
            &t.globex,
            &json!({ "assessment_id": theirs }),
        )
        .await;
    let (s2, b2) = t
        .call(
            "/assessment.cancel",
            &t.globex,
            &json!({ "assessment_id": nobodys }),
        )
        .await;
    assert_eq!((s1, s2), (404, 404), "{b1} {b2}");
    let scrub = |b: &Value| {
        let mut b = b.clone();
        if let Some(info) = b["errorInfo"].as_object_mut() {
            info.remove("requestId");
        }
        b
    };
    assert_eq!(
        scrub(&b1),
        scrub(&b2),
        "another tenant's assessment is answered exactly like one that does not exist"
    );
    assert_eq!(code(&b1), "assessment_not_found");
    assert!(
        t.acme.of_type("assessment.cancelled").is_empty(),
        "nothing cancelled"
    );
    // Initech's assessment is untouched: its result still reaches Initech's Ashby, and only it.
    let (s, b) = t
        .callback(
            "acme",
            VENDOR_SECRET,
            &json!({"assessment_id": theirs, "status": "completed", "report_url": "https://v.example/r",
                    "result": {"type": "boolean_success", "value": true, "label": "Clear"}}),
        )
        .await;
    assert_eq!(s, 200, "{b}");
    let got = t
        .initech_ashby
        .wait_for(&theirs, 1, Duration::from_secs(10))
        .await;
    assert_eq!(got[0]["assessment_result"]["value"], true);
    assert!(
        t.globex_ashby.received().is_empty(),
        "Globex's Ashby heard nothing"
    );
    // And Initech can cancel its own (finished: 200, nothing more sent).
    let (s, _) = t
        .call(
            "/assessment.cancel",
            &t.initech,
            &json!({ "assessment_id": theirs }),
        )
        .await;
    assert_eq!(s, 200);
    t.hub.stop().await;
}

#[tokio::test]
async fn a_vendor_can_post_results_only_for_its_own_assessments() {
    let t = Isolated::start().await;
    let acmes = t.start_for(&t.initech, &t.premium_type).await;
    let rivals = t.start_for(&t.initech, &t.coding_type).await;
    let news =
        |id: &str| json!({"assessment_id": id, "status": "in_progress", "status_label": "Forged"});
    // Rival, correctly signed with its own secret, about Acme's assessment: as if it did not exist.
    let (s, forged) = t.callback("rival", RIVAL_SECRET, &news(&acmes)).await;
    let (s2, missing) = t
        .callback(
            "rival",
            RIVAL_SECRET,
            &news(&uuid::Uuid::new_v4().to_string()),
        )
        .await;
    assert_eq!((s, s2), (404, 404), "{forged} {missing}");
    assert_eq!(forged, missing, "identical answers: nothing learnt");
    // Rival posting on Acme's path, or Acme on Rival's: the signature is not theirs.
    let (s, b) = t.callback("acme", RIVAL_SECRET, &news(&acmes)).await;
    assert_eq!((s, code(&b)), (401, "invalid_signature"), "{b}");
    let (s, b) = t.callback("rival", VENDOR_SECRET, &news(&rivals)).await;
    assert_eq!((s, code(&b)), (401, "invalid_signature"), "{b}");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        t.initech_ashby.received().is_empty(),
        "nothing forged reached Ashby"
    );
    // Each vendor's own news about its own assessment goes through.
    let (s, _) = t.callback("acme", VENDOR_SECRET, &news(&acmes)).await;
    assert_eq!(s, 200);
    let (s, _) = t.callback("rival", RIVAL_SECRET, &news(&rivals)).await;
    assert_eq!(s, 200);
    t.initech_ashby
        .wait_for(&acmes, 1, Duration::from_secs(10))
        .await;
    t.initech_ashby
        .wait_for(&rivals, 1, Duration::from_secs(10))
        .await;
    t.hub.stop().await;
}

/// A start's `additional_fields` carries the recruiter's package options, keyed by ids the hub
/// published: any JSON there (any type, any keys, the package's own ids with odd values) is
/// answered 200 (ordered), 400 (not an object) or 422 with a sentence for the recruiter, and an
/// order carries only the package's own options, each of its declared type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_additional_fields_get_200_400_or_a_422_for_the_recruiter() {
    let f = Fixture::local().await;
    let hub = &Hub::new(&f).await;
    let fields = prop_oneof![
        any_json(),
        (
            any_json(),
            any_json(),
            proptest::collection::vec((".{0,20}", any_json()), 0..4)
        )
            .prop_map(|(location, note, extra)| {
                let mut m: serde_json::Map<String, Value> = extra.into_iter().collect();
                m.insert("acme.panel.work_location".into(), location);
                m.insert("acme.panel.note".into(), note);
                Value::Object(m)
            }),
        prop_oneof![Just("us"), Just("uk"), Just("mars"), Just("")]
            .prop_map(|k| { json!({"acme.panel.work_location": k}) }),
    ];
    property("additional_fields", 160, fields, |fields| async move {
        let mut body = hub
            .f
            .start_body(&hub.f.panel_type_id, &crate::helpers::fresh_app());
        body["additional_fields"] = fields.clone();
        let req = Raw::new("/assessment.start", body.to_string().into_bytes())
            .header("authorization", basic(&hub.f.token));
        let (status, b) = hub.check(&req).await?;
        match status {
            200 => {
                let id = b["results"]["assessment_id"].as_str().unwrap_or_default();
                let order = hub
                    .f
                    .orders_for(id)
                    .pop()
                    .ok_or_else(|| format!("200 without an order: {b}"))?;
                let options = &order.body["options"];
                let keys: Vec<&String> = options
                    .as_object()
                    .map(|m| m.keys().collect())
                    .unwrap_or_default();
                if keys.iter().any(|k| *k != "work_location" && *k != "note") {
                    return Err(format!("foreign option reached the vendor: {options}"));
                }
                if !matches!(options["work_location"].as_str(), Some("us" | "uk")) {
                    return Err(format!("the required choice is off its list: {options}"));
                }
                if !(options["note"].is_null() || options["note"].is_string()) {
                    return Err(format!("the text option is not text: {options}"));
                }
                Ok(())
            }
            400 if !fields.is_object() && !fields.is_null() => Ok(()),
            422 if b["message"]
                .as_str()
                .is_some_and(|m| m.ends_with('.') && m.len() > 10) =>
            {
                Ok(())
            }
            other => Err(format!("answered {other} {b} to {fields}")),
        }
    });
    f.stop().await;
}
