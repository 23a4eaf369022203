//! Greenhouse's assessment-partner contract (`../shared/greenhouse/CONTRACT.md`): the bodies it
//! sends us and the ones we answer (`types`), what a `send_test` must hold, and
//! [`GreenhouseClient`], which sends the empty `PATCH` that tells Greenhouse to read
//! `test_status`. Greenhouse authenticates with the org's partner key as the Basic username;
//! the hub sends the `PATCH` with the same key, read from the secret store (only its hash is in
//! the registry).

pub mod client;
pub mod types;

pub use client::GreenhouseClient;
pub use types::*;

use async_trait::async_trait;

use super::AtsError;
use crate::domain::Tenant;

/// The body of a `greenhouse_patch` delivery: where the `PATCH` goes. Kept as JSON so that the
/// delivery queue stores it like every other message.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PatchBody {
    pub url: String,
}

/// Telling an ATS that pulls results that an assessment has news (Greenhouse: an empty `PATCH`
/// to the `url` of its `send_test`). Success means the ATS took it; it is not sent again.
#[async_trait]
pub trait AtsPatch: Send + Sync {
    /// Sends one delivery body (a [`PatchBody`]) for `tenant` with the tenant's partner key.
    async fn patch(&self, tenant: &Tenant, body: &str) -> Result<(), AtsError>;
}
