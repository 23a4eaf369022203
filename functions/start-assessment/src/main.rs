//! Lambda function `start-assessment`: wiring only; the work is in `hub::handlers`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub::lambda::serve::<hub::handlers::start_assessment::StartAssessment>().await
}
