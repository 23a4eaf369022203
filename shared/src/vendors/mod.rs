//! Vendors behind one port, [`VendorGateway`]: the use cases say what to order or cancel and act
//! on verified callbacks; the adapter words and signs the messages. Its one implementation today
//! is [`SignedProtocol`], the hub's generic vendor protocol (Standard Webhooks with the vendor's
//! `whsec_` secret in both directions; see `docs/vendor-protocol.md`).

pub mod callback;
pub mod client;
pub mod protocol;
pub mod url_policy;

use std::sync::Arc;

use async_trait::async_trait;
use http::HeaderMap;

pub use callback::{
    CallbackError, VerifiedCallback, VerifiedPayload, parse_callback, verify_signature,
};
pub use client::{FetchError, VendorClient, VendorError, VendorReply};
pub use protocol::*;

use crate::clock::Timestamp;
use crate::domain::{AssessmentId, Attachment, Candidate, OptionValues, Order, PackageId, Vendor};
use crate::retry::Backoff;
use crate::secrets::{SecretError, SecretNames, SecretSource};

/// Which message a delivery to a vendor is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    Order,
    Cancel,
}

/// Talking to vendors.
#[async_trait]
pub trait VendorGateway: Send + Sync {
    /// The exact body of the order of `package` for `order` as assessment `id`, with the values
    /// of the package's options the recruiter gave (already checked) and the URL the
    /// vendor calls back. Kept in the delivery queue (it carries candidate PII, so it expires
    /// with the PII retention) and sent as it is on every try.
    fn order_body(
        &self,
        id: AssessmentId,
        package: &PackageId,
        order: &Order,
        options: &OptionValues,
        callback_url: &str,
    ) -> Result<String, serde_json::Error>;
    /// The exact body of the cancel of assessment `id`.
    fn cancel_body(&self, id: AssessmentId) -> Result<String, serde_json::Error>;
    /// Sends one body built above to `vendor`. The vendor deduplicates by assessment id: a retry
    /// of the same message is the same message. `tries` bounds the attempts within this call.
    async fn send(
        &self,
        vendor: &Vendor,
        message: Message,
        id: AssessmentId,
        body: &str,
        tries: Backoff,
    ) -> Result<VendorReply, VendorError>;
    /// Verifies a callback's signature over the raw `body` as of `now`, then parses it. The only
    /// way to a [`VerifiedCallback`].
    async fn receive(
        &self,
        vendor: &Vendor,
        headers: &HeaderMap,
        body: &[u8],
        now: Timestamp,
    ) -> Result<VerifiedCallback, CallbackError>;
    /// Downloads a report file the vendor attached to its result (at most
    /// [`MAX_ATTACHMENT_BYTES`], of its declared type).
    async fn fetch(&self, attachment: &Attachment) -> Result<Vec<u8>, FetchError> {
        let _ = attachment;
        Err(FetchError::Refused(
            "this vendor gateway fetches no files".into(),
        ))
    }
}

/// The largest report file the hub takes from a vendor: 10 MiB.
pub const MAX_ATTACHMENT_BYTES: u64 = 10 * 1024 * 1024;

/// The hub's generic signed vendor protocol.
pub struct SignedProtocol {
    client: VendorClient,
    secrets: Arc<dyn SecretSource>,
    names: SecretNames,
}

impl SignedProtocol {
    pub fn new(client: VendorClient, secrets: Arc<dyn SecretSource>, names: SecretNames) -> Self {
        Self {
            client,
            secrets,
            names,
        }
    }
}

#[async_trait]
impl VendorGateway for SignedProtocol {
    fn order_body(
        &self,
        id: AssessmentId,
        package: &PackageId,
        order: &Order,
        options: &OptionValues,
        callback_url: &str,
    ) -> Result<String, serde_json::Error> {
        serde_json::to_string(&OrderRequest {
            kind: ORDER_TYPE.into(),
            assessment_id: id,
            package_id: package.clone(),
            candidate: Candidate {
                first_name: order.candidate.first_name.clone(),
                last_name: order.candidate.last_name.clone(),
                email: order.candidate.email.clone(),
            },
            ats: order.ats,
            application_id: order.application_id.clone(),
            job: order.job.as_ref().map(|j| OrderJob {
                id: j.id.clone(),
                name: j.name.clone(),
                req_id: j.req_id.clone(),
            }),
            options: options.clone(),
            callback_url: callback_url.to_owned(),
        })
    }

    fn cancel_body(&self, id: AssessmentId) -> Result<String, serde_json::Error> {
        serde_json::to_string(&CancelOrder::new(id))
    }

    async fn send(
        &self,
        vendor: &Vendor,
        message: Message,
        id: AssessmentId,
        body: &str,
        tries: Backoff,
    ) -> Result<VendorReply, VendorError> {
        let secret = self
            .secrets
            .current(&self.names.signing_secret(&vendor.id))
            .await
            .map_err(|e| VendorError::SecretUnavailable(e.to_string()))?;
        let msg_id = match message {
            Message::Order => order_message_id(id),
            Message::Cancel => cancel_message_id(id),
        };
        self.client
            .send(&vendor.order_url, &secret, &msg_id, body.as_bytes(), tries)
            .await
    }

    async fn receive(
        &self,
        vendor: &Vendor,
        headers: &HeaderMap,
        body: &[u8],
        now: Timestamp,
    ) -> Result<VerifiedCallback, CallbackError> {
        let secrets = match self
            .secrets
            .versions(&self.names.signing_secret(&vendor.id))
            .await
        {
            Ok(s) => s.all(),
            Err(SecretError::NotFound(_)) => {
                tracing::error!("vendor has no signing secret; callbacks cannot be verified");
                Vec::new()
            }
            Err(e) => return Err(CallbackError::Unavailable(e)),
        };
        let verified = verify_signature(&secrets, headers, body, now)?;
        parse_callback(&verified)
    }

    async fn fetch(&self, attachment: &Attachment) -> Result<Vec<u8>, FetchError> {
        self.client
            .download(
                &attachment.url,
                &attachment.content_type,
                MAX_ATTACHMENT_BYTES,
            )
            .await
    }
}
