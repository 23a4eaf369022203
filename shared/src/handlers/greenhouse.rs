//! Greenhouse's four partner endpoints, under `/greenhouse/` (CONTRACT.md §3). Each takes a
//! Greenhouse tenant's partner key only (HTTP Basic, the key as username); an Ashby tenant's
//! token is refused like an unknown one. They share the use cases with Ashby's routes:
//! `list_tests` is the catalogue, `send_test` a start (idempotent by Greenhouse's `url`),
//! `test_status` reads the stored state, `response_error` records Greenhouse's report.
//!
//! Served by the functions of the same operation: `list_tests` and `test_status` by
//! list-assessments (reads), `send_test` by start-assessment, `response_error` by result-callback
//! (the function that records what other parties report).

use http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};

use crate::app::App;
use crate::ats::greenhouse::{
    ResponseErrorRequest, SendTestRequest, SendTestResponse, TestEntry, TestStatusResponse,
    client::check_url,
};
use crate::domain::{AssessmentId, AssessmentTypeId, Ats, Candidate, Order};
use crate::error::{ApiError, json_response};
use crate::metrics::names;
use crate::usecases::start::{Started, start};
use crate::usecases::{catalogue, pull};
use crate::vendors::url_policy::LoopbackHttp;

pub const LIST_TESTS: &str = "/greenhouse/list_tests";
pub const SEND_TEST: &str = "/greenhouse/send_test";
pub const TEST_STATUS: &str = "/greenhouse/test_status";
pub const RESPONSE_ERROR: &str = "/greenhouse/response_error";

/// Largest number of errors of one `response_error` kept (joined) on the assessment.
const MAX_ERRORS: usize = 20;

pub struct ListTests;
pub struct SendTest;
pub struct TestStatus;
pub struct ResponseError;

impl super::Endpoint for ListTests {
    const NAME: &'static str = "greenhouse_list_tests";
    const METHOD: Method = Method::GET;
    fn matches(path: &str) -> bool {
        path == LIST_TESTS
    }
    fn handle<'a>(
        app: &'a App,
        req: &'a Request,
    ) -> impl Future<Output = Result<Response<Body>, ApiError>> + Send + 'a {
        list_tests(app, req)
    }
}

impl super::Endpoint for SendTest {
    const NAME: &'static str = "greenhouse_send_test";
    fn matches(path: &str) -> bool {
        path == SEND_TEST
    }
    fn handle<'a>(
        app: &'a App,
        req: &'a Request,
    ) -> impl Future<Output = Result<Response<Body>, ApiError>> + Send + 'a {
        send_test(app, req)
    }
}

impl super::Endpoint for TestStatus {
    const NAME: &'static str = "greenhouse_test_status";
    const METHOD: Method = Method::GET;
    fn matches(path: &str) -> bool {
        path == TEST_STATUS
    }
    fn handle<'a>(
        app: &'a App,
        req: &'a Request,
    ) -> impl Future<Output = Result<Response<Body>, ApiError>> + Send + 'a {
        test_status(app, req)
    }
}

impl super::Endpoint for ResponseError {
    const NAME: &'static str = "greenhouse_response_error";
    fn matches(path: &str) -> bool {
        path == RESPONSE_ERROR
    }
    fn handle<'a>(
        app: &'a App,
        req: &'a Request,
    ) -> impl Future<Output = Result<Response<Body>, ApiError>> + Send + 'a {
        response_error(app, req)
    }
}

/// The tenant's enabled packages as tests; `partner_test_id` is the package's assessment type
/// id, the same stable id Ashby is given. A package with a required option is left out:
/// Greenhouse has no way to ask the recruiter for it.
pub async fn list_tests(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let tenant = super::authenticate(app, req, Ats::Greenhouse).await?;
    let tests: Vec<TestEntry> = catalogue::assessment_types(app, &tenant)
        .await?
        .into_iter()
        .filter(|(_, package)| !package.options.iter().any(|o| o.required))
        .map(|(package_ref, package)| TestEntry {
            partner_test_id: package_ref.type_id().to_string(),
            partner_test_name: package.name,
        })
        .collect();
    Ok(json_response(StatusCode::OK, &tests))
}

pub async fn send_test(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let tenant = super::authenticate(app, req, Ats::Greenhouse).await?;
    let request: SendTestRequest = super::parse_json(super::body_bytes(req)?)?;
    request.validate()?;
    let loopback = if app.config.allow_insecure_loopback {
        LoopbackHttp::Allow
    } else {
        LoopbackHttp::Refuse
    };
    check_url(&request.url, loopback).map_err(ApiError::BadRequest)?;
    let assessment_type_id = AssessmentTypeId::parse(&request.partner_test_id)
        .map_err(|_| ApiError::bad_request("partner_test_id is not one of this account's tests"))?;
    let base = super::start_assessment::callback_base(app, req)?;
    let order = Order {
        ats: Ats::Greenhouse,
        assessment_type_id,
        application_id: request.application_id(),
        // Greenhouse names no candidate id (so no report files) and asks for no options.
        candidate_id: None,
        additional_fields: Default::default(),
        candidate: Candidate {
            first_name: request.candidate.first_name,
            last_name: request.candidate.last_name,
            email: request.candidate.email,
        },
        start_key: format!("greenhouse-url:{}", request.url),
        job: None,
        ats_url: Some(request.url),
    };
    let id = match start(app, &tenant, &order, &base).await? {
        Started::Live { id, .. } => id,
        // Greenhouse shows nothing at send time: the refusal is read by `test_status`.
        Started::Refused { id, .. } => id,
        Started::NotEnabled => {
            return Err(ApiError::bad_request(
                "partner_test_id is not one of this account's tests",
            ));
        }
        // A package that needs the recruiter's input, which Greenhouse cannot ask for (such
        // packages are not in list_tests).
        Started::InvalidOptions(message) => {
            return Err(ApiError::Unprocessable {
                code: "invalid_assessment_options",
                message: format!("This test needs options Greenhouse cannot send: {message}"),
            });
        }
        Started::Misconfigured {
            vendor_name,
            detail,
        } => {
            return Err(ApiError::Unavailable {
                status: StatusCode::BAD_GATEWAY,
                code: "vendor_error",
                message: format!(
                    "{vendor_name} could not accept the order because of a configuration \
                     problem. Please contact your integration administrator."
                ),
                detail,
            });
        }
    };
    Ok(json_response(
        StatusCode::OK,
        &SendTestResponse {
            partner_interview_id: id.to_string(),
        },
    ))
}

/// `partner_interview_id` from the query string (API Gateway's parsed parameters, else the URI's
/// own query: the local hub and function URLs).
fn interview_id(req: &Request) -> Result<AssessmentId, ApiError> {
    let from_gateway = req
        .query_string_parameters_ref()
        .and_then(|q| q.first("partner_interview_id").map(str::to_owned));
    let raw = from_gateway.or_else(|| {
        url::form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .find(|(k, _)| k == "partner_interview_id")
            .map(|(_, v)| v.into_owned())
    });
    let raw = raw.ok_or_else(|| ApiError::bad_request("partner_interview_id is required"))?;
    AssessmentId::parse(&raw)
        .map_err(|_| ApiError::bad_request("partner_interview_id must be an id from send_test"))
}

fn not_found() -> ApiError {
    ApiError::NotFound {
        code: "not_found",
        message: "unknown partner_interview_id".into(),
    }
}

pub async fn test_status(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let tenant = super::authenticate(app, req, Ats::Greenhouse).await?;
    let id = interview_id(req)?;
    let a = pull::assessment_of(app, &tenant, id)
        .await?
        .ok_or_else(not_found)?;
    Ok(json_response(StatusCode::OK, &TestStatusResponse::of(&a)))
}

/// Records Greenhouse's report against the assessment it names, if it is the tenant's; always
/// counted and logged (the call and the number of errors only: the texts may quote candidate
/// data). Answered 200 whenever the body is one, as the contract asks.
pub async fn response_error(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let tenant = super::authenticate(app, req, Ats::Greenhouse).await?;
    let report: ResponseErrorRequest = super::parse_json(super::body_bytes(req)?)?;
    app.metrics.count(names::GREENHOUSE_RESPONSE_ERRORS, 1);
    let api_call: String = report
        .api_call
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .take(32)
        .collect();
    let id = report
        .partner_interview_id
        .as_deref()
        .and_then(|s| AssessmentId::parse(s).ok());
    let text = format!(
        "{api_call}: {}",
        report
            .errors
            .iter()
            .take(MAX_ERRORS)
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join("; ")
    );
    let mut recorded = false;
    if let Some(id) = id {
        recorded = pull::record_ats_error(app, &tenant, id, &text).await?;
    }
    // A report that names none of the tenant's assessments is kept on the tenant.
    if !recorded {
        pull::record_tenant_ats_error(app, &tenant, &text).await?;
    }
    tracing::warn!(
        api_call = api_call.as_str(),
        errors = report.errors.len(),
        recorded_on = if recorded { "assessment" } else { "tenant" },
        "Greenhouse reported an unusable reply"
    );
    Ok(json_response(StatusCode::OK, &serde_json::json!({})))
}
