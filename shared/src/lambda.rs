//! What each function's `main` calls: logging, the app built once, then the Lambda runtime loop.

use lambda_http::{Body, Request, Response, service_fn};

use crate::app::App;
use crate::handlers::{Endpoint, dispatch};

/// Serves one endpoint until the runtime stops the process. Fails only at init (bad config).
pub async fn serve(endpoint: Endpoint) -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let app = App::from_env().await.map_err(|e| {
        tracing::error!(error = format!("{e:#}"), "cold start failed");
        e
    })?;
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<Response<Body>, std::convert::Infallible>(dispatch(app, endpoint, req).await)
    }))
    .await
}
