//! AWS Secrets Manager adapter. A current-only read fetches the `AWSCURRENT` value (one
//! `GetSecretValue`); a versioned read also fetches the `AWSPREVIOUS` value when a rotation left
//! one. Errors carry the operation and the AWS error code only, never a secret value or a
//! service message.

use async_trait::async_trait;
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput;
use secrecy::{ExposeSecret, SecretString};

use super::{SecretAdmin, SecretError, SecretSource, SecretVersions};

#[derive(Clone)]
pub struct SecretsManagerSource {
    client: aws_sdk_secretsmanager::Client,
}

impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { client }
    }

    /// One staged version of `name`; `None` if the secret or that stage does not exist.
    async fn stage(&self, name: &str, stage: &str) -> Result<Option<SecretString>, SecretError> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(name)
            .version_stage(stage)
            .send()
            .await;
        match out {
            Ok(out) => string_value(name, out).map(Some),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(unavailable("GetSecretValue", &e)),
        }
    }
}

/// Takes the string out of the response without copying it anywhere else.
fn string_value(name: &str, out: GetSecretValueOutput) -> Result<SecretString, SecretError> {
    out.secret_string
        .map(SecretString::from)
        // The hub only ever writes strings; a binary secret was put there by hand.
        .ok_or_else(|| SecretError::Unavailable(format!("secret {name} has no string value")))
}

fn unavailable<E: ProvideErrorMetadata, R>(op: &str, e: &SdkError<E, R>) -> SecretError {
    SecretError::Unavailable(format!("{op}: {}", describe(e)))
}

/// What went wrong, without the service's message: the code names the problem well enough and
/// cannot echo a request parameter back.
fn describe<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> String {
    match e {
        SdkError::ServiceError(s) => s.err().code().unwrap_or("unknown service error").to_owned(),
        SdkError::TimeoutError(_) => "timed out".into(),
        SdkError::DispatchFailure(_) => "could not reach the service".into(),
        SdkError::ResponseError(_) => "unreadable response".into(),
        SdkError::ConstructionFailure(_) => "could not build the request".into(),
        _ => "unknown error".into(),
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn current(&self, name: &str) -> Result<SecretString, SecretError> {
        self.stage(name, "AWSCURRENT")
            .await?
            .ok_or_else(|| SecretError::NotFound(name.to_owned()))
    }

    async fn versions(&self, name: &str) -> Result<SecretVersions, SecretError> {
        let current = self.current(name).await?;
        // No AWSPREVIOUS just means the secret was never rotated.
        let previous = self.stage(name, "AWSPREVIOUS").await?;
        Ok(SecretVersions { current, previous })
    }
}

#[async_trait]
impl SecretAdmin for SecretsManagerSource {
    async fn put(&self, name: &str, value: &SecretString) -> Result<(), SecretError> {
        // Two rounds: a concurrent `put` may create the secret between our PutSecretValue and
        // our CreateSecret, after which PutSecretValue succeeds.
        for _ in 0..2 {
            let put = self
                .client
                .put_secret_value()
                .secret_id(name)
                .secret_string(value.expose_secret())
                .send()
                .await;
            match put {
                Ok(_) => return Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_not_found_exception()) => {}
                Err(e) => return Err(unavailable("PutSecretValue", &e)),
            }
            let create = self
                .client
                .create_secret()
                .name(name)
                .secret_string(value.expose_secret())
                .send()
                .await;
            match create {
                Ok(_) => return Ok(()),
                Err(e)
                    if e.as_service_error()
                        .is_some_and(|s| s.is_resource_exists_exception()) => {}
                Err(e) => return Err(unavailable("CreateSecret", &e)),
            }
        }
        Err(SecretError::Unavailable(format!(
            "secret {name} kept appearing and disappearing while being written"
        )))
    }
}
