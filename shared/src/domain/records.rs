//! The records the hub keeps: tenants, vendors and assessments. Candidate PII is kept apart from
//! the assessment record (it expires on its own TTL) and has a redacting `Debug`.

use std::fmt;

use serde::{Deserialize, Serialize};
use url::Url;

use super::{AssessmentId, AssessmentTypeId, PackageId, PackageRef, Status, TenantId, VendorId};

/// One Ashby customer account.
#[derive(Clone, Debug, PartialEq)]
pub struct Tenant {
    pub id: TenantId,
    pub name: String,
    /// Where `assessment.update` goes; `https://api.ashbyhq.com` in production.
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
    pub status: Status,
    /// The label last reported to Ashby as `assessment_status` (vendor wording).
    pub status_label: Option<String>,
    pub vendor_reference: Option<String>,
    /// The vendor's explanation when it refused the order.
    pub rejection_message: Option<String>,
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    /// `timestamp` of the last update queued for Ashby; the next one is strictly greater.
    pub last_update_ms: i64,
    /// Sequence number of the last update queued for Ashby (0 = none).
    pub update_seq: u64,
    /// Until when a request holds the right to send the vendor order (0 = nobody).
    pub order_lease_until_ms: i64,
    /// Optimistic-concurrency version, bumped by every write.
    pub version: u64,
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

/// An `assessment.update` body owed to Ashby, kept until Ashby has accepted it.
#[derive(Clone, Debug, PartialEq)]
pub struct OutboxUpdate {
    pub assessment_id: AssessmentId,
    pub seq: u64,
    /// The exact JSON body to POST (already carries `timestamp`).
    pub body: String,
    pub delivered: bool,
    pub attempts: u32,
    pub lease_until_ms: i64,
    pub last_error: Option<String>,
}
