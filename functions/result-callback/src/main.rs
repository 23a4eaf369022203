//! Lambda function `result-callback`: wiring only; the work is in `hub::handlers`. It records
//! what other parties report: vendor callbacks and Greenhouse's `response_error`.

use hub::handlers::{greenhouse, result_callback};

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub::lambda::serve_routes::<(greenhouse::ResponseError, result_callback::ResultCallback)>()
        .await
}
