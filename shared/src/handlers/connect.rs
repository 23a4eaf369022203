//! The connect function: the customer's page at `GET /connect/{code}`, its stylesheet and
//! script, its status (`GET /connect/{code}/status`) and its three actions, each a POST:
//! `/connect/{code}/token` ("Show token", once), `/connect/{code}/token/rotate` ("Issue a new
//! token") and `/connect/{code}/ashby-key` (save the pasted Ashby API key).
//!
//! A GET never changes anything (mail scanners and link previews fetch links). A POST is served
//! only when it comes from the page: `Sec-Fetch-Site: same-origin` (or, from a client that does
//! not send it, an `Origin` naming this host) and the page's anti-forgery token in the body,
//! compared in constant time; anything else is a 403 with nothing done and no call to Ashby.

use http::{Method, StatusCode, header};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use secrecy::SecretString;
use serde_json::{Value, json};
use subtle::ConstantTimeEq;

use super::Endpoint;
use crate::app::App;
use crate::clock::Timestamp;
use crate::connect::{self as assets, HTML, PageValues};
use crate::domain::connect::csrf_token;
use crate::error::{ApiError, ErrorBody};
use crate::usecases::connect::{
    self as uc, ConnectError, GoneReason, KeySaved, Opened, Source, pasted_key,
};

/// The path prefix of every connect route.
pub const PREFIX: &str = "/connect/";

pub struct Connect;

impl Endpoint for Connect {
    const NAME: &'static str = "connect";
    const METHOD: Method = Method::GET;

    fn allows(method: &Method) -> bool {
        method == Method::GET || method == Method::POST
    }

    fn matches(path: &str) -> bool {
        path.starts_with(PREFIX)
    }

    async fn handle(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
        Ok(serve(app, req).await)
    }
}

/// What a path under `/connect/` asks for.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Asset(&'static str, &'static str),
    Page(&'a str),
    Status(&'a str),
    Reveal(&'a str),
    Rotate(&'a str),
    SaveKey(&'a str),
    Unknown,
}

fn target<'a>(method: &Method, path: &'a str) -> Target<'a> {
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return Target::Unknown;
    };
    let parts: Vec<&str> = rest.split('/').collect();
    let get = method == Method::GET;
    match parts.as_slice() {
        ["assets", "connect.css"] if get => {
            Target::Asset(assets::STYLESHEET, "text/css; charset=utf-8")
        }
        ["assets", "connect.js"] if get => {
            Target::Asset(assets::SCRIPT, "text/javascript; charset=utf-8")
        }
        [code] if get => Target::Page(code),
        [code, ""] if get => Target::Page(code),
        [code, "status"] if get => Target::Status(code),
        [code, "token"] if !get => Target::Reveal(code),
        [code, "token", "rotate"] if !get => Target::Rotate(code),
        [code, "ashby-key"] if !get => Target::SaveKey(code),
        _ => Target::Unknown,
    }
}

async fn serve(app: &App, req: &Request) -> Response<Body> {
    let rid = super::request_id(req);
    let source = source(req);
    let json_answer = req.method() == Method::POST || req.uri().path().ends_with("/status");
    let result = match target(req.method(), req.uri().path()) {
        Target::Asset(body, content_type) => {
            let mut resp = assets::respond(StatusCode::OK, content_type, body.to_owned());
            // Not one customer's: the same bytes for everyone, so a short cache is fine.
            resp.headers_mut().insert(
                header::CACHE_CONTROL,
                http::HeaderValue::from_static("public, max-age=300"),
            );
            return resp;
        }
        Target::Page(code) => page(app, code, &source).await,
        Target::Status(code) => status(app, code, &source).await,
        Target::Reveal(code) => action(app, req, code, &source, Action::Reveal).await,
        Target::Rotate(code) => action(app, req, code, &source, Action::Rotate).await,
        Target::SaveKey(code) => action(app, req, code, &source, Action::SaveKey).await,
        Target::Unknown => Err(ConnectError::NotFound),
    };
    result.unwrap_or_else(|e| refusal(&e, json_answer, rid.as_deref()))
}

/// The caller's address as API Gateway saw it (never logged; the limits hash it).
fn source(req: &Request) -> Source {
    Source(match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
        _ => None,
    })
}

fn code_of(code: &str) -> SecretString {
    SecretString::from(code.to_owned())
}

fn human_time(t: Timestamp) -> String {
    aws_smithy_types::DateTime::from_secs(t.as_secs())
        .fmt(aws_smithy_types::date_time::Format::DateTime)
        .map(|s| format!("{} UTC", s.get(..16).unwrap_or(&s).replace('T', " ")))
        .unwrap_or_default()
}

async fn page(app: &App, code: &str, source: &Source) -> Result<Response<Body>, ConnectError> {
    let secret = code_of(code);
    let opened = uc::open(app, &secret, source).await?;
    let csrf = csrf_token(&secret);
    let key_label = opened
        .account
        .health
        .key
        .as_ref()
        .map(|k| k.label.clone())
        .unwrap_or_default();
    let html = assets::page(&PageValues {
        partner_name: &app.config.partner_name,
        tenant_name: &opened.account.tenant.name,
        csrf_token: &csrf,
        token_state: if opened.invite.token_shown_at_ms.is_some() {
            "shown"
        } else {
            "new"
        },
        status_state: opened.connection.state.as_str(),
        status_title: opened.connection.state.title(),
        status_detail: &opened.connection.detail,
        key_label: &key_label,
        expires: &human_time(opened.invite.expires_at_ms),
    });
    Ok(assets::respond(StatusCode::OK, HTML, html))
}

fn status_json(opened: &Opened) -> Value {
    json!({
        "state": opened.connection.state.as_str(),
        "title": opened.connection.state.title(),
        "detail": opened.connection.detail,
        "key_label": opened.account.health.key.as_ref().map(|k| k.label.clone()),
        "key_stored": opened.key_stored,
        "token_shown": opened.invite.token_shown_at_ms.is_some(),
        "rotation_pending": opened.account.health.pending_token.is_some(),
        "expires_at": human_time(opened.invite.expires_at_ms),
    })
}

async fn status(app: &App, code: &str, source: &Source) -> Result<Response<Body>, ConnectError> {
    let opened = uc::open(app, &code_of(code), source).await?;
    Ok(json(StatusCode::OK, &status_json(&opened)))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Action {
    Reveal,
    Rotate,
    SaveKey,
}

/// Whether a POST comes from a page of this origin. Browsers send `Sec-Fetch-Site` on every
/// request: it must say `same-origin`. A client that sends none must send an `Origin` naming
/// this host (a form elsewhere cannot make a browser lie about either).
fn same_origin(req: &Request) -> bool {
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return site.eq_ignore_ascii_case("same-origin");
    }
    let (Some(origin), Some(host)) = (header("origin"), header("host")) else {
        return false;
    };
    url::Url::parse(origin).is_ok_and(|o| {
        let authority = match (o.host_str(), o.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            _ => return false,
        };
        authority.eq_ignore_ascii_case(host)
    })
}

async fn action(
    app: &App,
    req: &Request,
    code: &str,
    source: &Source,
    action: Action,
) -> Result<Response<Body>, ConnectError> {
    let secret = code_of(code);
    // The link first (unknown and dead links answer 404/410 whoever asks), then the proof that
    // the page sent this, before anything is done.
    let opened = uc::open(app, &secret, source).await?;
    let body: Value = super::body_bytes(req)
        .ok()
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null);
    let sent = body.get("csrf").and_then(Value::as_str).unwrap_or("");
    let expected = csrf_token(&secret);
    let token_ok: bool = sent.as_bytes().ct_eq(expected.as_bytes()).into();
    if !same_origin(req) || !token_ok {
        uc::fail(app, source, Some(&opened.hash), "forged").await;
        return Err(ConnectError::Forged);
    }
    match action {
        Action::Reveal | Action::Rotate => {
            let token = uc::issue_token(app, &opened, action == Action::Reveal).await?;
            Ok(json(
                StatusCode::OK,
                &json!({ "token": secrecy::ExposeSecret::expose_secret(&token) }),
            ))
        }
        Action::SaveKey => {
            let raw = body.get("api_key").and_then(Value::as_str).unwrap_or("");
            let key = pasted_key(raw)?;
            let saved = uc::save_key(app, &opened, &key, source).await?;
            let status = match saved {
                KeySaved::Stored { .. } | KeySaved::StoredUnverified { .. } => StatusCode::OK,
                KeySaved::MissingPermission | KeySaved::Refused => StatusCode::UNPROCESSABLE_ENTITY,
                KeySaved::Unreachable => StatusCode::SERVICE_UNAVAILABLE,
            };
            Ok(json(
                status,
                &json!({
                    "stored": saved.stored(),
                    "outcome": saved.outcome(),
                    "message": saved.message(),
                    "key_label": saved.label(),
                    "resent": saved.resent(),
                }),
            ))
        }
    }
}

fn json(status: StatusCode, body: &Value) -> Response<Body> {
    assets::respond(
        status,
        "application/json",
        serde_json::to_string(body).unwrap_or_else(|_| "{}".into()),
    )
}

/// A refusal: a small page for a browser's GET of the page, the hub's JSON error otherwise.
/// Neither says more than the words below (not whose link it was, nor why beyond expired or
/// revoked).
fn refusal(e: &ConnectError, json_answer: bool, rid: Option<&str>) -> Response<Body> {
    let (status, code, title) = match e {
        ConnectError::NotFound => (StatusCode::NOT_FOUND, "not_found", "Link not found"),
        ConnectError::Gone(GoneReason::Expired) => {
            (StatusCode::GONE, "link_expired", "This link has expired")
        }
        ConnectError::Gone(_) => (StatusCode::GONE, "link_gone", "This link no longer works"),
        ConnectError::Limited(_) => (
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_attempts",
            "Too many attempts",
        ),
        ConnectError::Forged => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
        ConnectError::AlreadyShown => (StatusCode::CONFLICT, "already_shown", "Already shown"),
        ConnectError::TooManyTokens => (StatusCode::CONFLICT, "too_many_tokens", "Too many tokens"),
        ConnectError::BadKey(_) => (StatusCode::BAD_REQUEST, "invalid_key", "Not a key"),
        ConnectError::Store(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "storage_unavailable",
            "Temporarily unavailable",
        ),
    };
    if let ConnectError::Store(inner) = e {
        tracing::warn!(error = %inner, "connect request failed on the store");
    } else {
        tracing::info!(code, status = status.as_u16(), "connect request refused");
    }
    let message = match e {
        ConnectError::NotFound => {
            "This connect link does not exist. Ask the person who sent it for a new one.".into()
        }
        ConnectError::Gone(_) => format!("{} Ask the person who sent it for a new link.", e),
        other => other.to_string(),
    };
    let mut resp = if json_answer {
        json(
            status,
            &serde_json::to_value(ErrorBody::new(code, message, rid.map(str::to_owned)))
                .unwrap_or(Value::Null),
        )
    } else {
        assets::respond(status, HTML, assets::error_page(title, &message))
    };
    if let ConnectError::Limited(minutes) = e
        && let Ok(v) = http::HeaderValue::from_str(&(minutes * 60).to_string())
    {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_their_targets_by_method() {
        let c = "a".repeat(43);
        let page = format!("/connect/{c}");
        assert_eq!(target(&Method::GET, &page), Target::Page(&c));
        assert_eq!(target(&Method::POST, &page), Target::Unknown);
        assert_eq!(
            target(&Method::GET, &format!("{page}/status")),
            Target::Status(&c)
        );
        assert_eq!(
            target(&Method::POST, &format!("{page}/token")),
            Target::Reveal(&c)
        );
        assert_eq!(
            target(&Method::GET, &format!("{page}/token")),
            Target::Unknown,
            "a GET never issues a token"
        );
        assert_eq!(
            target(&Method::POST, &format!("{page}/token/rotate")),
            Target::Rotate(&c)
        );
        assert_eq!(
            target(&Method::POST, &format!("{page}/ashby-key")),
            Target::SaveKey(&c)
        );
        assert!(matches!(
            target(&Method::GET, "/connect/assets/connect.js"),
            Target::Asset(..)
        ));
        assert_eq!(target(&Method::GET, "/connect/a/b/c"), Target::Unknown);
    }

    fn post(headers: &[(&str, &str)]) -> Request {
        let mut r = Request::new(Body::Empty);
        *r.method_mut() = Method::POST;
        for (k, v) in headers {
            r.headers_mut().insert(
                http::HeaderName::from_bytes(k.as_bytes()).expect("name"),
                http::HeaderValue::from_str(v).expect("value"),
            );
        }
        r
    }

    #[test]
    fn only_a_same_origin_post_passes() {
        assert!(same_origin(&post(&[("sec-fetch-site", "same-origin")])));
        for site in ["cross-site", "same-site", "none"] {
            assert!(!same_origin(&post(&[("sec-fetch-site", site)])), "{site}");
        }
        // Sec-Fetch-Site decides when present, whatever Origin says.
        assert!(!same_origin(&post(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "https://hub.example"),
            ("host", "hub.example"),
        ])));
        assert!(same_origin(&post(&[
            ("origin", "https://hub.example"),
            ("host", "hub.example")
        ])));
        assert!(same_origin(&post(&[
            ("origin", "http://127.0.0.1:8000"),
            ("host", "127.0.0.1:8000")
        ])));
        for origin in ["null", "https://evil.example", "http://127.0.0.1:9000"] {
            assert!(
                !same_origin(&post(&[("origin", origin), ("host", "127.0.0.1:8000")])),
                "{origin}"
            );
        }
        assert!(!same_origin(&post(&[("host", "hub.example")])));
    }
}
