//! Ashby's side of the contract: the bodies Ashby sends us (`types`), the bodies we answer with
//! and send back (`assessment.update`), what a start must hold (`validate`), the client that
//! delivers those updates, and
//! [`AshbyGateway`], the hub's `AtsGateway` for Ashby.

pub mod client;
pub mod types;
pub(crate) mod validate;

use std::sync::Arc;

use async_trait::async_trait;

pub use client::{
    AshbyClient, AshbyError, CANDIDATES_WRITE, CreateFileUploadHandle, KeyInfo, StorageError,
    Upload,
};
pub use types::*;

use super::{AtsError, AtsGateway};
use crate::clock::Timestamp;
use crate::domain::{AssessmentId, FileDelivery, Notice, Tenant};
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

    async fn check_key(&self, tenant: &Tenant, key: &secrecy::SecretString) -> KeyInfo {
        self.client.api_key_info(&tenant.ashby_base_url, key).await
    }

    async fn send(&self, tenant: &Tenant, body: &str) -> Result<(), AtsError> {
        let key = self.key(tenant).await?;
        self.client
            .update(&tenant.ashby_base_url, &key, body)
            .await
            .map_err(to_ats)
    }

    /// The three steps of CONTRACT.md §11: an upload handle, the file to storage, the file on
    /// the candidate. Storage refusing the file (its URL expired: it lasts 10 minutes) starts
    /// again from step 1, once; a failure of step 3 is retried by the queue from step 1, which
    /// uploads the file to storage again but puts it on the candidate only once.
    async fn attach(
        &self,
        tenant: &Tenant,
        file: &FileDelivery,
        bytes: Vec<u8>,
    ) -> Result<(), AtsError> {
        let key = self.key(tenant).await?;
        let base = &tenant.ashby_base_url;
        let request = CreateFileUploadHandle {
            file_upload_context: "CandidateFiles",
            filename: &file.attachment.filename,
            content_type: &file.attachment.content_type,
            content_length: bytes.len() as u64,
        };
        let mut last = None;
        for _ in 0..2 {
            let handle = self
                .client
                .create_upload_handle(base, &key, &request)
                .await
                .map_err(to_ats)?;
            let upload = Upload {
                filename: file.attachment.filename.clone(),
                content_type: file.attachment.content_type.clone(),
                bytes: bytes.clone(),
            };
            match self.client.upload_to_storage(&handle, upload).await {
                Ok(()) => {
                    return self
                        .client
                        .attach_to_candidate(base, &key, &file.candidate_id, &handle.handle)
                        .await
                        .map_err(to_ats);
                }
                Err(e @ StorageError::Refused(_)) => {
                    tracing::info!(error = %e, "upload URL refused; starting again with a new one");
                    last = Some(AtsError::Rejected(e.to_string()));
                }
                Err(e @ StorageError::Unavailable(_)) => {
                    return Err(AtsError::Unavailable(e.to_string()));
                }
                Err(e @ StorageError::NotAllowed(_)) => {
                    return Err(AtsError::Rejected(e.to_string()));
                }
            }
        }
        Err(last.unwrap_or_else(|| AtsError::Rejected("upload refused".into())))
    }
}

impl AshbyGateway {
    /// The tenant's Ashby API key.
    async fn key(&self, tenant: &Tenant) -> Result<secrecy::SecretString, AtsError> {
        match self
            .secrets
            .current(&self.names.ashby_api_key(&tenant.id))
            .await
        {
            Ok(k) => Ok(k),
            Err(SecretError::NotFound(_)) => Err(AtsError::NoCredentials),
            Err(e) => Err(AtsError::Unavailable(e.to_string())),
        }
    }
}

/// Ashby's refusal in the port's terms.
fn to_ats(e: AshbyError) -> AtsError {
    match e {
        e @ AshbyError::Unauthorized(_) => AtsError::Unauthorized(format!(
            "{e}: store a valid key with Candidates write, then redeliver"
        )),
        ref e @ AshbyError::RateLimited {
            retry_after,
            partner_wide,
        } => AtsError::RateLimited {
            retry_after,
            partner_wide,
            detail: e.to_string(),
        },
        e @ AshbyError::Unavailable(_) => AtsError::Unavailable(e.to_string()),
        e @ AshbyError::Rejected { .. } => AtsError::Rejected(e.to_string()),
    }
}
