//! The applicant-tracking systems the hub serves, behind one port: the use cases decide *what*
//! the ATS is told ([`Notice`]); an ATS adapter decides how it is worded on the wire and sends it.
//! Ashby (`ashby`) is told by `assessment.update`; Greenhouse (`greenhouse`) pulls results and is
//! only told, by an empty `PATCH`, that there is something to read ([`greenhouse::AtsPatch`]).
//! Their wire types never leave their modules.

pub mod ashby;
pub mod greenhouse;

use std::time::Duration;

use async_trait::async_trait;

use crate::clock::Timestamp;
use crate::domain::{AssessmentId, FileDelivery, Notice, Tenant};

/// Why the ATS did not take a message. Texts carry no key and no candidate data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AtsError {
    /// No API key is stored for the tenant: someone must store one, then redeliver.
    #[error("no ATS API key is stored for this tenant")]
    NoCredentials,
    /// The ATS refused the tenant's key (revoked, or without the permission the hub needs).
    #[error("{0}")]
    Unauthorized(String),
    /// Throttled. `partner_wide`: the ATS throttles the partner across all its customers.
    #[error("{detail}")]
    RateLimited {
        retry_after: Option<Duration>,
        partner_wide: bool,
        detail: String,
    },
    /// Unreachable, timed out, a 5xx, or the hub's secret store unavailable: worth retrying.
    #[error("{0}")]
    Unavailable(String),
    /// The ATS refused this message.
    #[error("{0}")]
    Rejected(String),
}

/// Telling one ATS about its assessments.
#[async_trait]
pub trait AtsGateway: Send + Sync {
    /// The exact body that tells the ATS `notice` about assessment `id` as of `at`. Kept in the
    /// delivery queue and sent as it is on every try, so a retry repeats the same message.
    /// `at` orders an assessment's messages: each is strictly later than the one before.
    fn notice_body(
        &self,
        id: AssessmentId,
        at: Timestamp,
        notice: &Notice,
    ) -> Result<String, serde_json::Error>;
    /// Sends one body built by `notice_body` to `tenant`'s ATS. Success means the ATS took it;
    /// the caller never sends that body again.
    async fn send(&self, tenant: &Tenant, body: &str) -> Result<(), AtsError>;
    /// Puts one report file (`bytes`, already downloaded and checked against `file`'s declared
    /// type and the size limit) on candidate `file.candidate_id` in `tenant`'s ATS. Success
    /// means the ATS holds it; the caller never sends it again. An ATS that takes no files
    /// refuses every one.
    async fn attach(
        &self,
        tenant: &Tenant,
        file: &FileDelivery,
        bytes: Vec<u8>,
    ) -> Result<(), AtsError> {
        let _ = (tenant, file, bytes);
        Err(AtsError::Rejected("this ATS takes no report files".into()))
    }
    /// What the ATS says of an API key a customer pasted for `tenant` (Ashby's `apiKey.info`).
    /// An ATS without API keys for the hub says it cannot check.
    async fn check_key(
        &self,
        tenant: &Tenant,
        key: &secrecy::SecretString,
    ) -> ashby::client::KeyInfo {
        let _ = (tenant, key);
        ashby::client::KeyInfo::Unavailable("this ATS takes no API key".into())
    }
}
