//! Lambda function `connect`: the customer's connect page; wiring only, the work is in
//! `hub::handlers::connect`.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    hub::lambda::serve::<hub::handlers::connect::Connect>().await
}
