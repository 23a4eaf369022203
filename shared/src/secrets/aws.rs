//! AWS Secrets Manager adapter (placeholder until implemented).

use async_trait::async_trait;
use secrecy::SecretString;

use super::{SecretError, SecretSource, SecretVersions};

#[derive(Clone)]
pub struct SecretsManagerSource {
    _client: aws_sdk_secretsmanager::Client,
}

impl SecretsManagerSource {
    pub fn new(client: aws_sdk_secretsmanager::Client) -> Self {
        Self { _client: client }
    }
}

#[async_trait]
impl SecretSource for SecretsManagerSource {
    async fn get(&self, name: &str) -> Result<SecretVersions, SecretError> {
        Err(SecretError::NotFound(name.to_owned()))
    }
    async fn put(&self, _name: &str, _value: &SecretString) -> Result<(), SecretError> {
        Err(SecretError::Unavailable("not implemented".into()))
    }
}
