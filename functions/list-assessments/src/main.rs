//! Lambda function `list-assessments`: wiring only; the work is in `hub::handlers`. It answers
//! the read operations: Ashby's `assessment.list`, Greenhouse's `list_tests` and `test_status`.

use hub::handlers::{greenhouse, list_assessments};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub::lambda::serve_routes::<(
        greenhouse::ListTests,
        greenhouse::TestStatus,
        list_assessments::ListAssessments,
    )>()
    .await
}
