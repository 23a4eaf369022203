//! `POST /assessment.list`: the packages the calling tenant has enabled, as Ashby assessment types.

use http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::ats::ashby::{AssessmentType, ListResponse};
use crate::error::{ApiError, json_response};
use crate::usecases::catalogue;

pub struct ListAssessments;

impl super::Endpoint for ListAssessments {
    const NAME: &'static str = "list_assessments";
    fn handle<'a>(
        app: &'a App,
        req: &'a Request,
    ) -> impl Future<Output = Result<Response<Body>, ApiError>> + Send + 'a {
        handle(app, req)
    }
}

pub async fn handle(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let tenant = super::authenticate(app, req, crate::domain::Ats::Ashby).await?;
    // The body is `{}` per the spec; anything is tolerated, but not an oversized one.
    super::body_bytes(req)?;
    let results = catalogue::assessment_types(app, &tenant)
        .await?
        .into_iter()
        .map(|(assessment_type_id, package)| AssessmentType {
            assessment_type_id,
            name: package.name,
            description: package.description,
        })
        .collect();
    Ok(json_response(
        StatusCode::OK,
        &ListResponse {
            success: true,
            results,
        },
    ))
}
