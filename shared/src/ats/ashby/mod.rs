//! Ashby's side of the contract: the bodies Ashby sends us (`types`), the bodies we answer with
//! and send back (`assessment.update`), what a start must hold (`validate`), the client that
//! delivers those updates, and
//! [`AshbyGateway`], the hub's `AtsGateway` for Ashby.

pub mod client;
pub mod types;
pub(crate) mod validate;

use std::sync::Arc;

use async_trait::async_trait;

pub use client::{AshbyClient, AshbyError};
pub use types::*;

use super::{AtsError, AtsGateway};
use crate::clock::Timestamp;
use crate::domain::{AssessmentId, Notice, Tenant};
use crate::secrets::{SecretError, SecretNames, SecretSource};

/// `assessment.update` with the tenant's Ashby API key from the secret store.
pub struct AshbyGateway {
    client: AshbyClient,
    secrets: Arc<dyn SecretSource>,
    names: SecretNames,
}

impl AshbyGateway {
    pub fn new(client: AshbyClient, secrets: Arc<dyn SecretSource>, names: SecretNames) -> Self {
        Self {
            client,
            secrets,
            names,
        }
    }
}

#[async_trait]
impl AtsGateway for AshbyGateway {
    fn notice_body(
        &self,
        id: AssessmentId,
        at: Timestamp,
        notice: &Notice,
    ) -> Result<String, serde_json::Error> {
        serde_json::to_string(&UpdateRequest::from_notice(id, at, notice))
    }

    async fn send(&self, tenant: &Tenant, body: &str) -> Result<(), AtsError> {
        let key = match self
            .secrets
            .current(&self.names.ashby_api_key(&tenant.id))
            .await
        {
            Ok(k) => k,
            Err(SecretError::NotFound(_)) => return Err(AtsError::NoCredentials),
            Err(e) => return Err(AtsError::Unavailable(e.to_string())),
        };
        match self.client.update(&tenant.ashby_base_url, &key, body).await {
            Ok(()) => Ok(()),
            Err(e @ AshbyError::Unauthorized(_)) => Err(AtsError::Unauthorized(format!(
                "{e}: store a valid key with Candidates write, then redeliver"
            ))),
            Err(
                ref e @ AshbyError::RateLimited {
                    retry_after,
                    partner_wide,
                },
            ) => Err(AtsError::RateLimited {
                retry_after,
                partner_wide,
                detail: e.to_string(),
            }),
            Err(e @ AshbyError::Unavailable(_)) => Err(AtsError::Unavailable(e.to_string())),
            Err(e @ AshbyError::Rejected { .. }) => Err(AtsError::Rejected(e.to_string())),
        }
    }
}
