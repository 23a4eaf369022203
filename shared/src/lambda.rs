//! What each function's `main` calls: logging, the app built once, then the Lambda runtime loop.

use std::time::Duration;

use lambda_http::{Body, Request, Response, service_fn};
use lambda_runtime::LambdaEvent;

use crate::app::App;
use crate::handlers::{Endpoint, Routes};
use crate::usecases::deliver::run_due;

/// Serves endpoint `E` until the runtime stops the process. Fails only at init (bad config).
/// Generic, so that each function's binary links its own handler and no other.
pub async fn serve<E: Endpoint + 'static>() -> Result<(), lambda_http::Error> {
    serve_routes::<(E,)>().await
}

/// Serves the endpoints `R` (chosen by path) until the runtime stops the process: a function
/// that answers an operation for more than one ATS.
pub async fn serve_routes<R: Routes>() -> Result<(), lambda_http::Error> {
    crate::telemetry::init();
    let app = App::from_env().await.map_err(|e| {
        tracing::error!(error = format!("{e:#}"), "cold start failed");
        e
    })?;
    let app = &app;
    lambda_http::run(service_fn(move |req: Request| async move {
        Ok::<Response<Body>, std::convert::Infallible>(R::serve(app, req).await)
    }))
    .await
}

/// Deliveries one scheduled run looks at; more wait for the next run.
const RUN_LIMIT: usize = 500;

/// Serves the scheduled delivery run: each invocation (an EventBridge schedule event, whose
/// content is ignored) retries what is due and answers with the run's counts.
pub async fn serve_scheduled() -> Result<(), lambda_runtime::Error> {
    crate::telemetry::init();
    let app = App::from_env().await.map_err(|e| {
        tracing::error!(error = format!("{e:#}"), "cold start failed");
        e
    })?;
    let app = &app;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<serde_json::Value>| async move {
            // Leave headroom below the function timeout for the last call in flight.
            let budget = event
                .context
                .deadline()
                .duration_since(std::time::SystemTime::now())
                .unwrap_or_default()
                .saturating_sub(Duration::from_secs(15));
            let started = std::time::Instant::now();
            let (report, waited) = crate::waits::account(run_due(app, RUN_LIMIT, budget)).await;
            tracing::info!(
                elapsed_us = started.elapsed().as_micros() as u64,
                waited_us = waited.as_micros() as u64,
                "answered"
            );
            Ok::<_, lambda_runtime::Error>(serde_json::to_value(report?)?)
        },
    ))
    .await
}
