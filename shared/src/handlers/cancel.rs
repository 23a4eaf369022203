//! `POST /assessment.cancel`: parse, cancel (`usecases::cancel`), answer Ashby. Idempotent:
//! cancelling a finished assessment answers 200.

use http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::ats::ashby::{CancelRequest, StartResponse, StartResults};
use crate::domain::AssessmentId;
use crate::error::{ApiError, json_response};
use crate::usecases::cancel::{Cancelled, cancel};

pub struct Cancel;

impl super::Endpoint for Cancel {
    const NAME: &'static str = "cancel";
    fn handle<'a>(
        app: &'a App,
        req: &'a Request,
    ) -> impl Future<Output = Result<Response<Body>, ApiError>> + Send + 'a {
        handle(app, req)
    }
}

pub async fn handle(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let tenant = super::authenticate(app, req, crate::domain::Ats::Ashby).await?;
    let body: CancelRequest = super::parse_json(super::body_bytes(req)?)?;
    let id = AssessmentId::parse(&body.assessment_id)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    tracing::Span::current().record("assessment_id", id.to_string());
    match cancel(app, &tenant, id).await? {
        Cancelled::NotFound => Err(ApiError::NotFound {
            code: "assessment_not_found",
            message: "No assessment with this id exists for this account.".into(),
        }),
        Cancelled::Done => Ok(json_response(
            StatusCode::OK,
            &StartResponse {
                success: true,
                results: StartResults {
                    assessment_id: id,
                    update_request: None,
                },
            },
        )),
    }
}
