//! `POST /assessment.list`: the packages the calling tenant has enabled, as Ashby assessment types.

use std::collections::HashMap;

use http::StatusCode;
use lambda_http::{Body, Request, Response};

use crate::app::App;
use crate::ashby::{AssessmentType, ListResponse};
use crate::error::{ApiError, json_response};

pub async fn handle(app: &App, req: &Request) -> Result<Response<Body>, ApiError> {
    let tenant = super::authenticate(app, req).await?;
    // The body is `{}` per the spec; anything is tolerated, but not an oversized one.
    super::body_bytes(req)?;
    let mut vendors = HashMap::new();
    let mut results = Vec::with_capacity(tenant.packages.len());
    for p in &tenant.packages {
        if !vendors.contains_key(&p.vendor) {
            let v = app.store.vendor(&p.vendor).await?;
            vendors.insert(p.vendor.clone(), v);
        }
        let Some(package) = vendors
            .get(&p.vendor)
            .and_then(Option::as_ref)
            .and_then(|v| v.package(&p.package))
        else {
            tracing::warn!(package = %p, "enabled package no longer offered by its vendor; not listed");
            continue;
        };
        results.push(AssessmentType {
            assessment_type_id: p.type_id(),
            name: package.name.clone(),
            description: package.description.clone(),
        });
    }
    Ok(json_response(
        StatusCode::OK,
        &ListResponse {
            success: true,
            results,
        },
    ))
}
