//! AWS SDK clients pointed at the emulator (moto) that `./infra/test.sh` starts and names in
//! `HUB_TEST_AWS_ENDPOINT`. Every test gets its own table, so tests can run in parallel.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use hub::store::DynamoDbStore;

/// The emulator's endpoint; panics with how to get one when the tests were not started by
/// `./infra/test.sh`.
pub fn endpoint() -> String {
    std::env::var("HUB_TEST_AWS_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "HUB_TEST_AWS_ENDPOINT is not set: run the tests with ./infra/test.sh, which starts \
             moto and exports it (or start moto_server yourself and set it to its URL)"
        )
    })
}

/// An SDK configuration for the emulator. Region and dummy credentials are set here rather than
/// read from the environment, so that no test can ever reach a real AWS account.
pub async fn sdk_config() -> SdkConfig {
    sdk_config_at(&endpoint()).await
}

/// The same configuration for another endpoint on loopback, such as a recording proxy in front of
/// the emulator (`crate::aws_proxy`).
pub async fn sdk_config_at(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("test", "test", None, None, "hub-tests"))
        .load()
        .await
}

/// A new, uniquely named hub table, created the way production and the local hub create it.
pub async fn fresh_table() -> (aws_sdk_dynamodb::Client, String) {
    let client = aws_sdk_dynamodb::Client::new(&sdk_config().await);
    let name = format!("hub-test-{}", uuid::Uuid::new_v4().simple());
    DynamoDbStore::create_table(&client, &name)
        .await
        .unwrap_or_else(|e| panic!("creating table {name}: {e}"));
    (client, name)
}
