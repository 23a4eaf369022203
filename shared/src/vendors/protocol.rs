//! Bodies of the vendor protocol, as the hub sends them.

use serde::{Deserialize, Serialize};

use crate::domain::{AssessmentId, Ats, Candidate, OptionValues, PackageId};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrderJob {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub req_id: Option<String>,
}

/// `assessment.requested`: order one package for one candidate. `assessment_id` is the vendor's
/// idempotency key; a retry carries the same body and the same `webhook-id`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct OrderRequest {
    #[serde(rename = "type")]
    pub kind: String,
    pub assessment_id: AssessmentId,
    pub package_id: PackageId,
    pub candidate: Candidate,
    /// The ATS the order came from (`"ashby"` or `"greenhouse"`): the protocol is the same for
    /// every ATS, but what the recruiter sees of a result differs.
    pub ats: Ats,
    /// The ATS's application id; `null` when the ATS gave none.
    pub application_id: Option<String>,
    /// `null` when the ATS names no job (Greenhouse).
    pub job: Option<OrderJob>,
    /// The package options the recruiter gave, keyed by the option ids the vendor declared;
    /// absent when none were given.
    #[serde(default, skip_serializing_if = "OptionValues::is_empty")]
    pub options: OptionValues,
    pub callback_url: String,
}

pub const ORDER_TYPE: &str = "assessment.requested";
pub const CANCEL_TYPE: &str = "assessment.cancelled";

/// `assessment.cancelled`: stop working on an assessment.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CancelOrder {
    #[serde(rename = "type")]
    pub kind: String,
    pub assessment_id: AssessmentId,
}

impl CancelOrder {
    pub fn new(assessment_id: AssessmentId) -> Self {
        Self {
            kind: CANCEL_TYPE.into(),
            assessment_id,
        }
    }
}

/// The `webhook-id` of an order: the same on every retry of the same order.
pub fn order_message_id(id: AssessmentId) -> String {
    format!("msg_order_{}", id)
}

/// The `webhook-id` of a cancel.
pub fn cancel_message_id(id: AssessmentId) -> String {
    format!("msg_cancel_{}", id)
}
