//! Lambda function `list-assessments`: wiring only; the work is in `hub::handlers`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub::lambda::serve::<hub::handlers::list_assessments::ListAssessments>().await
}
