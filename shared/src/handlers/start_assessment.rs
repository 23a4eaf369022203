//! `POST /assessment.start`: parse and check Ashby's request, start the assessment
//! (`usecases::start`), answer Ashby with where it stands: started, queued (the vendor is not
//! reachable yet; the hub keeps trying), or the vendor's refusal (422, shown to the recruiter).

use http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::ats::ashby::{StartRequest, StartResponse, StartResults, UpdateRequest};
use crate::domain::{Ats, Candidate, Job, Order};
use crate::error::{ApiError, json_response};
use crate::usecases::start::{Started, start};

pub struct StartAssessment;

impl super::Endpoint for StartAssessment {
    const NAME: &'static str = "start_assessment";
    fn handle<'a>(
        app: &'a App,
        req: &'a Request,
    ) -> impl Future<Output = Result<Response<Body>, ApiError>> + Send + 'a {
        handle(app, req)
    }
}

pub async fn handle(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let tenant = super::authenticate(app, req, Ats::Ashby).await?;
    let request: StartRequest = super::parse_json(super::body_bytes(req)?)?;
    request.validate()?;
    let base = callback_base(app, req)?;
    match start(app, &tenant, &order(request), &base).await? {
        Started::Live { id, label, at } => Ok(json_response(
            StatusCode::OK,
            &StartResponse {
                success: true,
                results: StartResults {
                    assessment_id: id,
                    update_request: Some(UpdateRequest::status(id, at, &label)),
                },
            },
        )),
        Started::Refused { message, .. } => Err(ApiError::Unprocessable {
            code: "vendor_rejected",
            message,
        }),
        Started::InvalidOptions(message) => Err(ApiError::Unprocessable {
            code: "invalid_assessment_options",
            message,
        }),
        Started::NotEnabled => Err(ApiError::Unprocessable {
            code: "assessment_type_not_enabled",
            message: "This assessment type is not available for your account. Ask your Ashby \
                      administrator to check the assessment integration settings, or pick another \
                      assessment."
                .into(),
        }),
        Started::Misconfigured {
            vendor_name,
            detail,
        } => Err(ApiError::Unavailable {
            status: StatusCode::BAD_GATEWAY,
            code: "vendor_error",
            message: format!(
                "{vendor_name} could not accept the order because of a configuration problem. \
                 Please contact your integration administrator."
            ),
            detail,
        }),
    }
}

/// Ashby's request in the hub's terms.
fn order(r: StartRequest) -> Order {
    Order {
        ats: Ats::Ashby,
        assessment_type_id: r.assessment_type_id,
        candidate_id: Some(r.candidate.ashby_id),
        candidate: Candidate {
            first_name: r.candidate.first_name,
            last_name: r.candidate.last_name,
            email: r.candidate.email,
        },
        start_key: r.application.ashby_id.clone(),
        application_id: Some(r.application.ashby_id),
        job: Some(Job {
            id: r.job.ashby_id,
            name: r.job.name,
            req_id: r.job.req_id,
        }),
        ats_url: None,
        additional_fields: r.additional_fields.unwrap_or_default(),
    }
}

/// Where vendors post results (under `/callbacks/`): the configured public URL, else the host this
/// request came in on (API Gateway's domain or the custom domain in front of it).
pub(crate) fn callback_base(app: &App, req: &Request) -> Result<String, ApiError> {
    let base = match &app.config.public_url {
        Some(u) => u.as_str().trim_end_matches('/').to_owned(),
        None => {
            let host = req
                .headers()
                .get(http::header::HOST)
                .and_then(|h| h.to_str().ok())
                .filter(|h| {
                    !h.is_empty()
                        && h.len() <= 253
                        && h.bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
                })
                .ok_or_else(|| {
                    ApiError::Internal(anyhow::anyhow!(
                        "cannot derive the callback URL: no usable Host header; set HUB_PUBLIC_URL"
                    ))
                })?;
            let proto = match req
                .headers()
                .get("x-forwarded-proto")
                .and_then(|h| h.to_str().ok())
            {
                Some("http") => "http",
                _ => "https",
            };
            format!("{proto}://{host}")
        }
    };
    Ok(base)
}
