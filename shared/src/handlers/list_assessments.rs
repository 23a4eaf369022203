//! `POST /assessment.list`: the packages the calling tenant has enabled, as Ashby assessment
//! types; and `POST /assessment.customField.list` (served by the same function): those packages'
//! options, as Ashby custom fields whose ids are namespaced by vendor and package.

use http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::ats::ashby::{AssessmentType, CustomField, CustomFieldListResponse, ListResponse};
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

/// The path of Ashby's custom-field listing, which this endpoint also answers.
pub const CUSTOM_FIELD_LIST_PATH: &str = "/assessment.customField.list";

pub async fn handle(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let tenant = super::authenticate(app, req, crate::domain::Ats::Ashby).await?;
    // The body is `{}` per the spec; anything is tolerated, but not an oversized one.
    super::body_bytes(req)?;
    let types = catalogue::assessment_types(app, &tenant).await?;
    if req.uri().path().ends_with(CUSTOM_FIELD_LIST_PATH) {
        let fields = types
            .iter()
            .flat_map(|(package_ref, package)| {
                package
                    .options
                    .iter()
                    .map(|o| CustomField::of(package_ref, package, o))
            })
            .collect();
        return Ok(json_response(
            StatusCode::OK,
            &CustomFieldListResponse {
                success: true,
                fields,
            },
        ));
    }
    let results = types
        .into_iter()
        .map(|(package_ref, package)| AssessmentType {
            assessment_type_id: package_ref.type_id(),
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
