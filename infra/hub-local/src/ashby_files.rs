//! A stand-in for Ashby's candidate-file upload (CONTRACT.md §11), shared by the local hub's
//! Ashby stand-in and the tests' fake Ashby: `file.createFileUploadHandle`, a storage endpoint
//! taking the `multipart/form-data` POST of step 2, and `candidate.uploadFile`. Each JSON body is
//! checked against `extras-schemas.json`, the multipart request against the rules of step 2 (every
//! returned field, then the file last, named `file`, of the announced length and type), and every
//! call for the `Ashby-Version` header. Faults can be switched on for tests: fail the next step 1
//! or step 3 with a 500, or let the next upload URL expire before it is used.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Multipart, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};

use crate::openapi::Extras;

/// A file as it was put on a candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedFile {
    pub candidate_id: String,
    pub filename: String,
    pub content_type: String,
    pub bytes: usize,
    /// The first bytes, to tell a PDF (`%PDF-`) from anything else.
    pub head: Vec<u8>,
}

/// Faults to inject: each counter is the number of next calls that fail.
#[derive(Debug, Default, Clone, Copy)]
pub struct Faults {
    pub fail_handle: u32,
    pub fail_attach: u32,
    pub expire_upload: u32,
}

struct Handle {
    filename: String,
    content_type: String,
    length: u64,
    fields: BTreeMap<String, String>,
    expired: bool,
    uploaded: Option<Vec<u8>>,
    attached: bool,
}

#[derive(Default)]
struct Files {
    handles: HashMap<String, Handle>,
    attached: Vec<AttachedFile>,
    violations: Vec<String>,
    /// `step name` per call, in arrival order.
    calls: Vec<String>,
    faults: Faults,
}

pub struct AshbyFiles {
    extras: Extras,
    keys: HashSet<String>,
    /// Where storage is served: `<base><prefix>/storage/<handle>`.
    storage_base: String,
    files: Mutex<Files>,
    next: AtomicU64,
    quiet: bool,
}

impl AshbyFiles {
    /// `storage_base` is the URL under which this router is mounted (e.g.
    /// `http://127.0.0.1:8000/ashby`); `keys` are the Ashby API keys it accepts.
    pub fn new(
        storage_base: &str,
        keys: impl IntoIterator<Item = String>,
        quiet: bool,
    ) -> anyhow::Result<Self> {
        Ok(Self {
            extras: Extras::embedded()?,
            keys: keys.into_iter().collect(),
            storage_base: storage_base.trim_end_matches('/').to_owned(),
            files: Mutex::new(Files::default()),
            next: AtomicU64::new(1),
            quiet,
        })
    }

    /// The routes, under `prefix` (`/ashby` in the local hub, empty in the tests' fake).
    pub fn router(self: Arc<Self>, prefix: &str) -> axum::Router {
        axum::Router::new()
            .route(
                &format!("{prefix}/file.createFileUploadHandle"),
                post(create_handle),
            )
            .route(&format!("{prefix}/storage/{{handle}}"), post(storage))
            .route(&format!("{prefix}/candidate.uploadFile"), post(attach))
            .route(&format!("{prefix}/files"), get(list))
            .with_state(self)
    }

    pub fn set_faults(&self, faults: Faults) {
        self.lock().faults = faults;
    }

    /// Files put on candidates so far, oldest first.
    pub fn attached(&self) -> Vec<AttachedFile> {
        self.lock().attached.clone()
    }

    /// Everything that broke the contract so far.
    pub fn violations(&self) -> Vec<String> {
        self.lock().violations.clone()
    }

    /// The steps called so far: `handle`, `storage`, `attach`.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Files> {
        self.files.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn violation(&self, v: String) {
        eprintln!("ashby REJECTED file upload: {v}");
        self.lock().violations.push(v);
    }

    fn key_ok(&self, headers: &HeaderMap) -> bool {
        basic_user(headers).is_some_and(|k| self.keys.contains(&k))
    }
}

/// The Basic username when the password is empty (how Ashby takes its API key).
pub fn basic_user(headers: &HeaderMap) -> Option<String> {
    let v = headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(v.strip_prefix("Basic ")?.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    pass.is_empty().then(|| user.to_owned())
}

/// Ashby's error envelope.
pub fn ashby_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"success": false, "errors": [code],
                    "errorInfo": {"code": code, "message": message}})),
    )
        .into_response()
}

/// What every call to Ashby must carry beyond its body: the key, a JSON content type, a
/// User-Agent and the pinned `Ashby-Version`.
pub fn check_headers(headers: &HeaderMap) -> Vec<String> {
    let mut v = Vec::new();
    let has = |n: &str| headers.get(n).and_then(|h| h.to_str().ok());
    if !has("content-type").is_some_and(|c| c.starts_with("application/json")) {
        v.push("Content-Type must be application/json".into());
    }
    if has("user-agent").is_none_or(str::is_empty) {
        v.push("a User-Agent header is required".into());
    }
    if has("ashby-version").is_none_or(|d| d.len() != 10) {
        v.push("an Ashby-Version header (a date) is required".into());
    }
    v
}

/// The checks of a JSON step: key, headers, body against `schema`.
fn check_json(
    s: &AshbyFiles,
    step: &str,
    headers: &HeaderMap,
    body: &[u8],
    schema: &str,
) -> Result<Value, Box<Response>> {
    s.lock().calls.push(step.to_owned());
    if !s.key_ok(headers) {
        return Err(Box::new(ashby_error(
            StatusCode::UNAUTHORIZED,
            "invalid_api_key",
            "API key missing or invalid",
        )));
    }
    let mut problems = check_headers(headers);
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if let Err(e) = s.extras.check(schema, &v) {
        problems.extend(e);
    }
    if problems.is_empty() {
        Ok(v)
    } else {
        let text = format!("{step}: {}", problems.join("; "));
        s.violation(text.clone());
        Err(Box::new(ashby_error(
            StatusCode::OK,
            "invalid_input",
            &text,
        )))
    }
}

async fn create_handle(
    State(s): State<Arc<AshbyFiles>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let v = match check_json(
        &s,
        "handle",
        &headers,
        &body,
        "CreateFileUploadHandleRequest",
    ) {
        Ok(v) => v,
        Err(r) => return *r,
    };
    if v["fileUploadContext"] != "CandidateFiles" {
        s.violation("a report file must be uploaded as CandidateFiles".into());
    }
    {
        let mut f = s.lock();
        if f.faults.fail_handle > 0 {
            f.faults.fail_handle -= 1;
            return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
        }
    }
    let n = s.next.fetch_add(1, Ordering::Relaxed);
    let handle = format!("fh_{n:06}");
    let fields: BTreeMap<String, String> = [
        ("key".to_owned(), format!("uploads/{handle}")),
        ("policy".to_owned(), format!("policy-{n}")),
        ("x-amz-signature".to_owned(), format!("sig-{n}")),
    ]
    .into();
    let expired = {
        let mut f = s.lock();
        let expire = f.faults.expire_upload > 0;
        if expire {
            f.faults.expire_upload -= 1;
        }
        f.handles.insert(
            handle.clone(),
            Handle {
                filename: v["filename"].as_str().unwrap_or_default().to_owned(),
                content_type: v["contentType"].as_str().unwrap_or_default().to_owned(),
                length: v["contentLength"].as_u64().unwrap_or_default(),
                fields: fields.clone(),
                expired: expire,
                uploaded: None,
                attached: false,
            },
        );
        expire
    };
    if !s.quiet {
        println!(
            "ashby <- file.createFileUploadHandle {} ({}, {} bytes){}",
            v["filename"],
            v["contentType"],
            v["contentLength"],
            if expired {
                " [URL will have expired]"
            } else {
                ""
            }
        );
    }
    Json(json!({"success": true, "results": {
        "handle": handle,
        "url": format!("{}/storage/{handle}", s.storage_base),
        "fields": fields,
    }}))
    .into_response()
}

/// One multipart field: name, file name, media type, bytes.
type Part = (String, Option<String>, Option<String>, Vec<u8>);

async fn storage(
    State(s): State<Arc<AshbyFiles>>,
    Path(handle): Path<String>,
    headers: HeaderMap,
    mut form: Multipart,
) -> Response {
    s.lock().calls.push("storage".into());
    if headers.contains_key(axum::http::header::AUTHORIZATION) {
        s.violation("step 2 goes to storage and must carry no Ashby key".into());
    }
    let mut parts: Vec<Part> = Vec::new();
    loop {
        match form.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_owned();
                let filename = field.file_name().map(str::to_owned);
                let ctype = field.content_type().map(str::to_owned);
                match field.bytes().await {
                    Ok(b) => parts.push((name, filename, ctype, b.to_vec())),
                    Err(e) => {
                        s.violation(format!("step 2: unreadable multipart field: {e}"));
                        return (StatusCode::BAD_REQUEST, "bad multipart").into_response();
                    }
                }
            }
            Ok(None) => break,
            Err(e) => {
                s.violation(format!("step 2: not multipart/form-data: {e}"));
                return (StatusCode::BAD_REQUEST, "bad multipart").into_response();
            }
        }
    }
    let mut f = s.lock();
    let Some(h) = f.handles.get(&handle) else {
        return (StatusCode::FORBIDDEN, "no such upload").into_response();
    };
    if h.expired {
        return (StatusCode::FORBIDDEN, "Request has expired").into_response();
    }
    let mut problems = Vec::new();
    let Some((last, rest)) = parts.split_last() else {
        return (StatusCode::BAD_REQUEST, "empty form").into_response();
    };
    if last.0 != "file" {
        problems.push("the file must be the last field, named file".to_owned());
    }
    if rest.iter().any(|p| p.0 == "file") {
        problems.push("only one field may be named file".to_owned());
    }
    for (name, value) in &h.fields {
        let given = rest.iter().find(|p| &p.0 == name).map(|p| p.3.as_slice());
        if given != Some(value.as_bytes()) {
            problems.push(format!("field {name} missing or changed"));
        }
    }
    if last.3.len() as u64 != h.length {
        problems.push(format!(
            "the file has {} bytes, {} were announced",
            last.3.len(),
            h.length
        ));
    }
    if last.2.as_deref() != Some(h.content_type.as_str()) {
        problems.push(format!(
            "the file's type is {:?}, {} was announced",
            last.2, h.content_type
        ));
    }
    if last.1.as_deref() != Some(h.filename.as_str()) {
        problems.push("the file's name differs from the announced one".to_owned());
    }
    if !problems.is_empty() {
        drop(f);
        s.violation(format!("step 2: {}", problems.join("; ")));
        return (StatusCode::BAD_REQUEST, "bad upload").into_response();
    }
    let bytes = last.3.clone();
    if let Some(h) = f.handles.get_mut(&handle) {
        h.uploaded = Some(bytes);
    }
    StatusCode::NO_CONTENT.into_response()
}

async fn attach(
    State(s): State<Arc<AshbyFiles>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let v = match check_json(&s, "attach", &headers, &body, "CandidateUploadFileRequest") {
        Ok(v) => v,
        Err(r) => return *r,
    };
    let mut f = s.lock();
    if f.faults.fail_attach > 0 {
        f.faults.fail_attach -= 1;
        return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
    }
    let handle = v["fileHandle"].as_str().unwrap_or_default().to_owned();
    let candidate_id = v["candidateId"].as_str().unwrap_or_default().to_owned();
    let Some(h) = f.handles.get_mut(&handle) else {
        return ashby_error(StatusCode::OK, "invalid_input", "unknown file handle");
    };
    let Some(bytes) = h.uploaded.clone() else {
        return ashby_error(StatusCode::OK, "invalid_input", "nothing was uploaded");
    };
    if h.attached {
        return ashby_error(StatusCode::OK, "invalid_input", "handle already used");
    }
    h.attached = true;
    let file = AttachedFile {
        candidate_id,
        filename: h.filename.clone(),
        content_type: h.content_type.clone(),
        bytes: bytes.len(),
        head: bytes.iter().take(8).copied().collect(),
    };
    if !s.quiet {
        println!(
            "ashby <- candidate.uploadFile {} ({} bytes) on candidate {}",
            file.filename, file.bytes, file.candidate_id
        );
    }
    f.attached.push(file);
    Json(json!({"success": true, "results": {}})).into_response()
}

async fn list(State(s): State<Arc<AshbyFiles>>) -> Json<Value> {
    let files: Vec<Value> = s
        .attached()
        .into_iter()
        .map(|f| {
            json!({"candidate_id": f.candidate_id, "filename": f.filename,
                   "content_type": f.content_type, "bytes": f.bytes})
        })
        .collect();
    Json(json!(files))
}
