//! The benchmark's floor (`infra/bench.sh`): the smallest `lambda_http` function, with the same
//! runtime, features and release profile as the hub's functions, so the difference between
//! them is the hub's own cost.

use lambda_http::{Body, Error, Request, Response, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(|_req: Request| async {
        let mut response = Response::new(Body::from(r#"{"message":"hello"}"#));
        response.headers_mut().insert(
            "content-type",
            lambda_http::http::HeaderValue::from_static("application/json"),
        );
        Ok::<_, std::convert::Infallible>(response)
    }))
    .await
}
