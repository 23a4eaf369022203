//! What every command works with: the same store and secrets adapters as the Lambda functions,
//! pointed at the deployment that the usual AWS variables (`AWS_REGION`, `AWS_PROFILE`,
//! credentials, `AWS_ENDPOINT_URL` for an emulator) and `--table` name.

use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use hub::ports::{AdminStore, StoreError};
use hub::secrets::{SecretAdmin, SecretError, SecretNames, SecretsManagerSource};
use hub::store::DynamoDbStore;

use crate::output::Failure;

pub struct Ctx {
    pub table: String,
    pub store: Box<dyn AdminStore>,
    /// Operators write secrets (`put`) as well as read them.
    pub secrets: Box<dyn SecretAdmin>,
    pub names: SecretNames,
    /// For `DescribeSecret`: listings say whether a secret is set without reading its value.
    secrets_manager: aws_sdk_secretsmanager::Client,
}

/// What a listing shows about a secret: that it exists and when it last changed.
pub struct SecretInfo {
    pub last_changed_ms: i64,
}

impl Ctx {
    pub async fn connect(table: String, secret_prefix: String) -> Result<Self, Failure> {
        let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
        if aws.region().is_none() {
            return Err(Failure::usage(
                "no AWS region: set AWS_REGION (or use a profile with a region) to the region \
                 the hub is deployed in",
            ));
        }
        let secrets_manager = aws_sdk_secretsmanager::Client::new(&aws);
        Ok(Self {
            store: Box::new(DynamoDbStore::new(
                aws_sdk_dynamodb::Client::new(&aws),
                table.clone(),
            )),
            secrets: Box::new(SecretsManagerSource::new(secrets_manager.clone())),
            names: SecretNames::new(secret_prefix),
            secrets_manager,
            table,
        })
    }

    /// A store failure, with where to look.
    pub fn store_failed(&self, e: StoreError) -> Failure {
        Failure::failed(format!(
            "the hub's table {} could not be used ({e}); check --table (or HUB_TABLE), the AWS \
             region and your credentials",
            self.table
        ))
    }

    pub fn secret_failed(&self, name: &str, e: SecretError) -> Failure {
        Failure::failed(format!(
            "Secrets Manager refused or could not be reached for {name} ({e}); check the AWS \
             region, your credentials and --secret-prefix (or HUB_SECRET_PREFIX)"
        ))
    }

    /// Whether a secret exists and when it last changed, without reading its value.
    pub async fn secret_info(&self, name: &str) -> Result<Option<SecretInfo>, Failure> {
        match self
            .secrets_manager
            .describe_secret()
            .secret_id(name)
            .send()
            .await
        {
            Ok(out) => {
                let changed = out.last_changed_date().or(out.created_date());
                Ok(Some(SecretInfo {
                    last_changed_ms: changed.map_or(0, |d| d.secs() * 1000),
                }))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(self.secret_failed(
                name,
                SecretError::Unavailable(format!("DescribeSecret: {}", code(&e))),
            )),
        }
    }
}

/// The AWS error code only: service messages can quote request parameters back.
fn code<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    match e {
        SdkError::ServiceError(s) => s.err().code().unwrap_or("unknown service error").to_owned(),
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(_) => "could not reach the service".into(),
        _ => "unknown error".into(),
    }
}
