//! Lambda function `start-assessment`: wiring only; the work is in `hub::handlers`. It answers
//! the starts: Ashby's `assessment.start` and Greenhouse's `send_test`.

use hub::handlers::{greenhouse, start_assessment};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub::lambda::serve_routes::<(greenhouse::SendTest, start_assessment::StartAssessment)>().await
}
