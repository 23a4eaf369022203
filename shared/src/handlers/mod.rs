//! One module per function: parse the request, make one use-case call, answer. Every expected
//! failure becomes `Ok(Response)` with a JSON body; a handler never returns `Err` (which API
//! Gateway would turn into a bare 502) and never panics on input.

pub mod cancel;
pub mod connect;
pub mod greenhouse;
pub mod list_assessments;
pub mod result_callback;
pub mod start_assessment;

use std::future::Future;

use base64::Engine;
use lambda_http::{Body, Request, RequestExt, Response};
use secrecy::SecretString;
use tracing::Instrument;

use crate::app::App;
use crate::domain::{Ats, Tenant, TokenHash};
use crate::error::ApiError;

/// Largest body accepted from Ashby or a vendor. Real bodies are a few KiB.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// One HTTP entry point. Each Lambda function serves one (`lambda::serve::<E>`), so its binary
/// links that handler alone; the local hub routes to all of them.
pub trait Endpoint {
    /// The `endpoint` field of its log lines.
    const NAME: &'static str;
    /// The one method it answers; others get 405.
    const METHOD: http::Method = http::Method::POST;
    /// Whether it answers `method` (`METHOD` unless it says otherwise).
    fn allows(method: &http::Method) -> bool {
        method == Self::METHOD
    }
    /// Whether it serves `path`, for a function that serves several routes ([`Routes`]); the
    /// last endpoint of a function takes every path the others do not.
    fn matches(_path: &str) -> bool {
        true
    }
    fn handle<'a>(
        app: &'a App,
        req: &'a Request,
    ) -> impl Future<Output = Result<Response<Body>, ApiError>> + Send + 'a;
}

/// The routes, as API Gateway (and the local hub) match them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    ListAssessments,
    StartAssessment,
    Cancel,
    ResultCallback,
    GreenhouseListTests,
    GreenhouseSendTest,
    GreenhouseTestStatus,
    GreenhouseResponseError,
    Connect,
}

impl Route {
    /// The route of a path as Ashby (or a vendor) calls it.
    pub fn of(path: &str) -> Option<Self> {
        match path {
            "/assessment.list" | list_assessments::CUSTOM_FIELD_LIST_PATH => {
                Some(Self::ListAssessments)
            }
            "/assessment.start" => Some(Self::StartAssessment),
            "/assessment.cancel" => Some(Self::Cancel),
            greenhouse::LIST_TESTS => Some(Self::GreenhouseListTests),
            greenhouse::SEND_TEST => Some(Self::GreenhouseSendTest),
            greenhouse::TEST_STATUS => Some(Self::GreenhouseTestStatus),
            greenhouse::RESPONSE_ERROR => Some(Self::GreenhouseResponseError),
            p if p.starts_with("/callbacks/") => Some(Self::ResultCallback),
            p if p.starts_with(connect::PREFIX) => Some(Self::Connect),
            _ => None,
        }
    }

    /// Serves `req` with this route's endpoint (the local hub's router).
    pub async fn serve(self, app: &App, req: Request) -> Response<Body> {
        match self {
            Self::ListAssessments => dispatch::<list_assessments::ListAssessments>(app, req).await,
            Self::StartAssessment => dispatch::<start_assessment::StartAssessment>(app, req).await,
            Self::Cancel => dispatch::<cancel::Cancel>(app, req).await,
            Self::ResultCallback => dispatch::<result_callback::ResultCallback>(app, req).await,
            Self::GreenhouseListTests => dispatch::<greenhouse::ListTests>(app, req).await,
            Self::GreenhouseSendTest => dispatch::<greenhouse::SendTest>(app, req).await,
            Self::GreenhouseTestStatus => dispatch::<greenhouse::TestStatus>(app, req).await,
            Self::GreenhouseResponseError => dispatch::<greenhouse::ResponseError>(app, req).await,
            Self::Connect => dispatch::<connect::Connect>(app, req).await,
        }
    }
}

/// The endpoints one Lambda function serves, chosen by path in order (the last one takes the
/// rest): `(E,)`, `(A, B)` or `(A, B, C)`. Generic, so that a binary links its own handlers only.
pub trait Routes {
    fn serve<'a>(app: &'a App, req: Request) -> impl Future<Output = Response<Body>> + Send + 'a;
}

impl<E: Endpoint + 'static> Routes for (E,) {
    fn serve<'a>(app: &'a App, req: Request) -> impl Future<Output = Response<Body>> + Send + 'a {
        dispatch::<E>(app, req)
    }
}

impl<A: Endpoint + 'static, B: Endpoint + 'static> Routes for (A, B) {
    async fn serve(app: &App, req: Request) -> Response<Body> {
        if A::matches(req.uri().path()) {
            dispatch::<A>(app, req).await
        } else {
            dispatch::<B>(app, req).await
        }
    }
}

impl<A: Endpoint + 'static, B: Endpoint + 'static, C: Endpoint + 'static> Routes for (A, B, C) {
    async fn serve(app: &App, req: Request) -> Response<Body> {
        let path = req.uri().path();
        if A::matches(path) {
            dispatch::<A>(app, req).await
        } else if B::matches(path) {
            dispatch::<B>(app, req).await
        } else {
            dispatch::<C>(app, req).await
        }
    }
}

/// Runs one request through endpoint `E` inside a span carrying only the request id.
pub async fn dispatch<E: Endpoint>(app: &App, req: Request) -> Response<Body> {
    let request_id = request_id(&req);
    let span = tracing::info_span!(
        "request",
        endpoint = E::NAME,
        request_id = request_id.as_deref().unwrap_or("-"),
        tenant = tracing::field::Empty,
        vendor = tracing::field::Empty,
        assessment_id = tracing::field::Empty,
    );
    let rid = request_id.as_deref();
    async move {
        let started = std::time::Instant::now();
        let (outcome, waited) = crate::waits::account(async {
            if !E::allows(req.method()) {
                Err(ApiError::MethodNotAllowed)
            } else {
                E::handle(app, &req).await
            }
        })
        .await;
        let resp = outcome.unwrap_or_else(|e| e.into_response(rid));
        // The hub's own time is elapsed - waited (calls to AWS, the vendor, Ashby).
        tracing::info!(
            status = resp.status().as_u16(),
            elapsed_us = started.elapsed().as_micros() as u64,
            waited_us = waited.as_micros() as u64,
            "answered"
        );
        resp
    }
    .instrument(span)
    .await
}

pub(crate) fn request_id(req: &Request) -> Option<String> {
    req.lambda_context_ref()
        .map(|c| c.request_id.clone())
        .filter(|id| !id.is_empty())
        .or_else(|| {
            req.headers()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .filter(|v| v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
                .map(str::to_owned)
        })
}

/// The raw body, refusing anything over `MAX_BODY_BYTES`.
pub(crate) fn body_bytes(req: &Request) -> Result<&[u8], ApiError> {
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(t) => t.as_bytes(),
        Body::Binary(b) => b,
        _ => &[],
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge(MAX_BODY_BYTES));
    }
    Ok(bytes)
}

/// Parses a JSON body into `T`, naming the first offending field on failure. Objects must be
/// JSON objects at every depth, not arrays read by position (`crate::json`).
pub(crate) fn parse_json<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request(
            "request body is empty; a JSON object is required",
        ));
    }
    crate::json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request(crate::error::describe_json_error(&e)))
}

const MAX_TOKEN_LEN: usize = 512;

/// The trigger token from `Authorization`: Basic with the token as username or password (the
/// other half empty), or Bearer.
fn trigger_token(req: &Request) -> Option<SecretString> {
    let value = req
        .headers()
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, rest) = value.trim().split_once(' ')?;
    let rest = rest.trim();
    let token = if scheme.eq_ignore_ascii_case("bearer") {
        rest.to_owned()
    } else if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let pair = String::from_utf8(decoded).ok()?;
        match pair.split_once(':')? {
            (user, "") => user.to_owned(),
            ("", pass) => pass.to_owned(),
            _ => return None,
        }
    } else {
        return None;
    };
    (!token.is_empty() && token.len() <= MAX_TOKEN_LEN).then(|| SecretString::from(token))
}

/// The calling tenant of `ats`, or 401 without saying which half of the check failed. A token of
/// another ATS's tenant is refused like an unknown one: each ATS's routes take its tokens only.
pub(crate) async fn authenticate(app: &App, req: &Request, ats: Ats) -> Result<Tenant, ApiError> {
    let token = trigger_token(req).ok_or(ApiError::Unauthorized)?;
    crate::usecases::catalogue::tenant_for(app, &TokenHash::of(&token), ats, req.uri().path())
        .await?
        .ok_or(ApiError::Unauthorized)
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn with_auth(v: &str) -> Request {
        let mut r = Request::new(Body::Empty);
        r.headers_mut().insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_str(v).expect("header"),
        );
        r
    }

    fn basic(user: &str, pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"))
        )
    }

    #[test]
    fn the_token_is_accepted_as_username_password_or_bearer() {
        for h in [basic("tok", ""), basic("", "tok"), "Bearer tok".into()] {
            let t = trigger_token(&with_auth(&h)).expect("token");
            assert_eq!(t.expose_secret(), "tok", "{h}");
        }
    }

    #[test]
    fn ambiguous_or_malformed_credentials_are_refused() {
        for h in [
            basic("a", "b"),
            basic("", ""),
            "Basic !!!".into(),
            "Bearer ".into(),
            "Digest x".into(),
            format!("Bearer {}", "x".repeat(600)),
        ] {
            assert!(trigger_token(&with_auth(&h)).is_none(), "{h}");
        }
        assert!(trigger_token(&Request::new(Body::Empty)).is_none());
    }

    const START: &str = r#"{"assessment_type_id":"6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10",
        "candidate":{"ashby_id":"c","first_name":"A","last_name":"L","email":"a@example.com",
                     "ashby_profile_url":"https://app.ashbyhq.com/c"},
        "application":{"ashby_id":"app","status":"Active"},
        "job":{"ashby_id":"j","name":"Eng","ashby_job_url":"https://app.ashbyhq.com/j",
               "hiringTeam":[{"userId":"e9ed20fd-d45f-4aad-8a00-a19bfba0083e","firstName":"G",
                              "lastName":"H","email":"g@example.com","role":"Hiring Manager"}]}}"#;

    fn refusal<T: serde::de::DeserializeOwned + std::fmt::Debug>(body: &str) -> String {
        parse_json::<T>(body.as_bytes())
            .expect_err("must be refused")
            .to_string()
    }

    #[test]
    fn bodies_and_nested_objects_written_as_arrays_are_refused_by_name() {
        use crate::ats::ashby::{CancelRequest, StartRequest};
        parse_json::<StartRequest>(START.as_bytes()).expect("the object form parses");
        assert_eq!(
            refusal::<CancelRequest>(r#"["6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10"]"#),
            "request body must be a JSON object"
        );
        let positional = r#"["6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10",
            ["c","A","L","a@example.com","https://app.ashbyhq.com/c"],["app","Active"],
            ["j","Eng",null,"https://app.ashbyhq.com/j"]]"#;
        assert_eq!(
            refusal::<StartRequest>(positional),
            "request body must be a JSON object"
        );
        let start: serde_json::Value = serde_json::from_str(START).expect("json");
        for (pointer, replacement, path) in [
            (
                "/candidate",
                r#"["c","A","L","a@example.com","u"]"#,
                "candidate",
            ),
            ("/application", r#"["app","Active"]"#, "application"),
            (
                "/job/hiringTeam/0",
                r#"["e9ed20fd-d45f-4aad-8a00-a19bfba0083e","G","H","g@example.com","r"]"#,
                "job.hiringTeam[0]",
            ),
        ] {
            let mut body = start.clone();
            *body.pointer_mut(pointer).expect("pointer") =
                serde_json::from_str(replacement).expect("json");
            assert_eq!(
                refusal::<StartRequest>(&body.to_string()),
                format!("{path} must be a JSON object")
            );
        }
    }

    #[test]
    fn any_application_status_parses_but_only_as_a_string() {
        use crate::ats::ashby::StartRequest;
        for status in ["Active", "Interviewing", "Offer Extended", ""] {
            let body = START.replace(r#""status":"Active""#, &format!(r#""status":"{status}""#));
            let parsed = parse_json::<StartRequest>(body.as_bytes());
            assert!(parsed.is_ok(), "{status:?}: {parsed:?}");
        }
        let body = START.replace(r#""status":"Active""#, r#""status":3"#);
        assert_eq!(
            refusal::<StartRequest>(&body),
            "application.status must be a string"
        );
    }

    #[test]
    fn routes_match_what_ashby_appends_to_the_base_url() {
        assert_eq!(Route::of("/assessment.start"), Some(Route::StartAssessment));
        assert_eq!(
            Route::of("/assessment.customField.list"),
            Some(Route::ListAssessments)
        );
        assert_eq!(Route::of("/callbacks/acme"), Some(Route::ResultCallback));
        assert_eq!(Route::of("/assessment.update"), None);
    }
}
