//! The records the hub keeps: tenants, vendors and assessments. Candidate PII is kept apart from
//! the assessment record (it expires on its own TTL) and has a redacting `Debug`.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

use crate::clock::Timestamp;

use super::{
    AssessmentId, AssessmentTypeId, FieldValue, PackageId, PackageOption, PackageRef, Status,
    TenantId, VendorId,
};

/// Which applicant-tracking system a tenant is an account of. Its routes, its tokens and the
/// way it is told about results follow from it; the core is the same for every one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ats {
    /// Pushed every change by `assessment.update`.
    #[default]
    Ashby,
    /// Told of a final state by an empty `PATCH` to the URL of its `send_test`; it then pulls
    /// `test_status`.
    Greenhouse,
}

impl Ats {
    pub const ALL: [Ats; 2] = [Self::Ashby, Self::Greenhouse];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ashby => "ashby",
            Self::Greenhouse => "greenhouse",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl fmt::Display for Ats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One customer account of an ATS (Ashby or Greenhouse).
#[derive(Clone, Debug, PartialEq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// The ATS this account is of. Its trigger tokens authenticate on that ATS's routes only.
    pub ats: Ats,
    /// Where `assessment.update` goes; `https://api.ashbyhq.com` in production. Unused for a
    /// Greenhouse tenant.
    pub ashby_base_url: Url,
    /// Packages this tenant's recruiters may start.
    pub packages: Vec<PackageRef>,
    pub disabled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub id: PackageId,
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// What the recruiter must or may give when starting it (see `domain::options`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<PackageOption>,
}

/// A background-check or assessment provider speaking the hub's vendor protocol.
#[derive(Clone, Debug, PartialEq)]
pub struct Vendor {
    pub id: VendorId,
    pub name: String,
    /// Where orders and cancels are POSTed.
    pub order_url: Url,
    pub packages: Vec<Package>,
}

impl Vendor {
    pub fn package(&self, id: &PackageId) -> Option<&Package> {
        self.packages.iter().find(|p| &p.id == id)
    }
}

/// The hub's record of one assessment. Holds ids and state only, never candidate PII.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    pub id: AssessmentId,
    pub tenant_id: TenantId,
    pub vendor_id: VendorId,
    pub package_id: PackageId,
    pub assessment_type_id: AssessmentTypeId,
    /// Ashby's application id: with the tenant and type, the start-idempotency key.
    pub application_id: String,
    /// The ATS's id of the candidate (Ashby's `candidate.ashby_id`): where report files go.
    /// `None` on assessments recorded before the hub kept it.
    pub candidate_id: Option<String>,
    pub status: Status,
    /// The label last reported to Ashby as `assessment_status` (vendor wording).
    pub status_label: Option<String>,
    pub vendor_reference: Option<String>,
    /// The vendor's explanation when it refused the order.
    pub rejection_message: Option<String>,
    pub created_at_ms: Timestamp,
    pub updated_at_ms: Timestamp,
    /// `timestamp` of the last update queued for Ashby; the next one is strictly greater.
    pub last_update_ms: Timestamp,
    /// Sequence number of the last delivery queued for this assessment (0 = none).
    pub update_seq: u64,
    /// Optimistic-concurrency version, bumped by every write.
    pub version: u64,
    /// The ATS of the tenant that started it (fixed at the start).
    pub ats: Ats,
    /// Where the ATS is told that the assessment has news, when it names such a URL per
    /// assessment: Greenhouse's `send_test` `url`. Not PII (ids only).
    pub ats_url: Option<String>,
    /// What the assessment ended with, kept for an ATS that pulls results (Greenhouse's
    /// `test_status`); set once, by the transition to a final state.
    pub summary: Option<Summary>,
    /// How many times the ATS reported a reply of the hub's as unusable (Greenhouse's
    /// `response_error`), and the last such report's errors (no PII).
    pub ats_errors: u32,
    pub last_ats_error: Option<String>,
}

/// A final state in the terms an ATS that pulls results needs: the report link, the numeric
/// score if the vendor gave one, and the rest flattened to label → primitive value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The status in words (the vendor's label, or the hub's title for an end without result).
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// In the order reported; labels are unique (a later one with the same label is dropped).
    #[serde(default)]
    pub metadata: Vec<(String, FieldValue)>,
}

impl Assessment {
    pub fn package_ref(&self) -> PackageRef {
        PackageRef {
            vendor: self.vendor_id.clone(),
            package: self.package_id.clone(),
        }
    }
}

/// The candidate's personal data as Ashby sent it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub first_name: String,
    pub last_name: String,
    pub email: String,
}

impl fmt::Debug for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Candidate([redacted])")
    }
}

/// The job an assessment is for, as the ATS names it.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: String,
    pub name: String,
    pub req_id: Option<String>,
}

/// What a recruiter asked for: one assessment type for one candidate of one application.
#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub ats: Ats,
    pub assessment_type_id: AssessmentTypeId,
    /// The ATS's id of the candidate, where it gives one (Ashby's; Greenhouse sends none).
    pub candidate_id: Option<String>,
    pub candidate: Candidate,
    /// With the tenant and the type, the start-idempotency key: Ashby's application id, or
    /// Greenhouse's `send_test` `url` (one test instance).
    pub start_key: String,
    /// The ATS's application id, when it gives one (Greenhouse's only inside the profile URL).
    pub application_id: Option<String>,
    /// Greenhouse names no job.
    pub job: Option<Job>,
    /// Where the ATS is told of news about this assessment (Greenhouse's `url`).
    pub ats_url: Option<String>,
    /// The package options the recruiter gave, raw as the ATS sent them (keyed by the ids the
    /// ATS knows them by); checked against the chosen package by the start.
    pub additional_fields: serde_json::Map<String, serde_json::Value>,
}

/// A file a vendor attached to its result, for the hub to put on the candidate in the ATS.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    /// Where the hub downloads it (the vendor's; checked like an order URL).
    pub url: Url,
    pub filename: String,
    /// The declared media type; the download must match it.
    pub content_type: String,
}

/// The body of a file delivery: which file goes on which candidate. ATS-neutral; the ATS
/// adapter makes the calls.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDelivery {
    pub candidate_id: String,
    pub attachment: Attachment,
}

/// What a delivery carries, and so where it goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryKind {
    /// A message to the tenant's ATS (an `assessment.update` to Ashby).
    AtsUpdate,
    /// An empty `PATCH` to the URL an ATS gave for the assessment (Greenhouse): "read my
    /// `test_status`". Its body is the URL, as JSON.
    AtsPatch,
    /// An `assessment.requested` order to the vendor (carries candidate PII).
    VendorOrder,
    /// An `assessment.cancelled` to the vendor.
    VendorCancel,
    /// A report file the vendor attached, to put on the candidate in the ATS ([`FileDelivery`]).
    AtsFile,
}

impl DeliveryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AtsUpdate => "ashby_update",
            Self::AtsPatch => "greenhouse_patch",
            Self::VendorOrder => "vendor_order",
            Self::VendorCancel => "vendor_cancel",
            Self::AtsFile => "ashby_file",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ashby_update" => Self::AtsUpdate,
            "greenhouse_patch" => Self::AtsPatch,
            "vendor_order" => Self::VendorOrder,
            "vendor_cancel" => Self::VendorCancel,
            "ashby_file" => Self::AtsFile,
            _ => return None,
        })
    }
    /// Deliveries to the same party go out in sequence; the two parties are independent.
    pub fn to_vendor(self) -> bool {
        matches!(self, Self::VendorOrder | Self::VendorCancel)
    }
}

/// Where a delivery stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryState {
    /// Owed: tried at `next_attempt_ms` by whoever takes its lease.
    Pending,
    /// The receiver accepted it; never sent again.
    Delivered,
    /// Gave up after the maximum age; kept for manual redelivery.
    Dead(String),
    /// Waiting for an operator (e.g. Ashby refused the tenant's API key).
    Parked(String),
}

impl DeliveryState {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead(_) => "dead",
            Self::Parked(_) => "parked",
        }
    }
    pub fn reason(&self) -> Option<&str> {
        match self {
            Self::Dead(r) | Self::Parked(r) => Some(r),
            _ => None,
        }
    }
}

/// A message the hub owes Ashby or a vendor, kept until it is accepted.
#[derive(Clone, PartialEq)]
pub struct Delivery {
    pub assessment_id: AssessmentId,
    /// Per assessment, increasing; deliveries of one party go out in this order.
    pub seq: u64,
    pub kind: DeliveryKind,
    /// The exact JSON body to POST.
    pub body: String,
    pub state: DeliveryState,
    pub attempts: u32,
    pub created_ms: Timestamp,
    pub next_attempt_ms: Timestamp,
    /// Until when one request holds the right to send it (0 = nobody).
    pub lease_until_ms: Timestamp,
    /// Why the last attempt failed (no PII, no key).
    pub last_error: Option<String>,
}

impl fmt::Debug for Delivery {
    // The body of a vendor order carries candidate PII: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("assessment_id", &self.assessment_id)
            .field("seq", &self.seq)
            .field("kind", &self.kind)
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .field("created_ms", &self.created_ms)
            .field("next_attempt_ms", &self.next_attempt_ms)
            .field("lease_until_ms", &self.lease_until_ms)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

/// A delivery to add, written atomically with the state change that owes it.
#[derive(Clone, PartialEq)]
pub struct NewDelivery {
    pub kind: DeliveryKind,
    pub body: String,
    /// When it may first be tried; a lease until then is held by the writer when
    /// `leased_until_ms > 0` (it means to try at once itself).
    pub next_attempt_ms: Timestamp,
    pub leased_until_ms: Timestamp,
    /// Unix seconds after which the store may delete it once settled (PII retention for orders).
    pub expires_at_s: Option<i64>,
}

impl fmt::Debug for NewDelivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewDelivery")
            .field("kind", &self.kind)
            .field("next_attempt_ms", &self.next_attempt_ms)
            .finish_non_exhaustive()
    }
}
