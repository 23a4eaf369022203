//! Lambda function `deliver-updates`: wiring only. Run every minute by an EventBridge schedule, it
//! retries the deliveries owed to Ashby and to vendors (`hub::delivery::run_due`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    hub::lambda::serve_scheduled().await
}
