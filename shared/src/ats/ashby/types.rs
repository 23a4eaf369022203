//! Typed bodies of Ashby's assessment endpoints, per `assessments-openapi.json`. Requests are
//! parsed into these types at the edge; responses are only ever built from them.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;
use crate::domain::fields::ids;
use crate::domain::{
    AssessmentId, AssessmentTypeId, Field, FieldKind, FieldValue, Notice, OptionKind, Package,
    PackageOption, PackageRef, PossibleValue, labels, options,
};

/// `POST /assessment.start`, as Ashby sends it. Unknown fields are ignored (Ashby may add some).
#[derive(Debug, Deserialize)]
pub struct StartRequest {
    pub assessment_type_id: AssessmentTypeId,
    pub candidate: StartCandidate,
    pub application: StartApplication,
    pub job: StartJob,
    /// The recruiter's values for the package options listed by `assessment.customField.list`,
    /// keyed by field id (CONTRACT.md §3, §5). Not in Ashby's schema; `null` reads as absent.
    #[serde(default)]
    pub additional_fields: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
pub struct StartCandidate {
    pub ashby_id: String,
    pub first_name: String,
    pub last_name: String,
    /// Missing or `null` reads as empty: a candidate without an email address is the
    /// recruiter's to fix (a 422, `StartRequest::validate`), not a malformed request.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub email: String,
    pub ashby_profile_url: String,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Option::<String>::deserialize(d).map(Option::unwrap_or_default)
}

impl std::fmt::Debug for StartCandidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StartCandidate([redacted])")
    }
}

#[derive(Debug, Deserialize)]
pub struct StartApplication {
    pub ashby_id: String,
    /// Ashby documents `Hired`, `Archived`, `Active` and `Lead`. Any string is taken: the hub
    /// does not act on it, and a status Ashby adds later must not stop starts.
    pub status: String,
}

#[derive(Debug, Deserialize)]
pub struct StartJob {
    pub ashby_id: String,
    pub name: String,
    #[serde(default)]
    pub req_id: Option<String>,
    pub ashby_job_url: String,
    #[serde(default, rename = "hiringTeam")]
    pub hiring_team: Option<Vec<HiringTeamMember>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HiringTeamMember {
    pub user_id: uuid::Uuid,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub role: String,
}

impl std::fmt::Debug for HiringTeamMember {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HiringTeamMember([redacted])")
    }
}

/// `POST /assessment.cancel`.
#[derive(Debug, Deserialize)]
pub struct CancelRequest {
    pub assessment_id: String,
}

/// One entry of `assessment.list`.
#[derive(Debug, Serialize)]
pub struct AssessmentType {
    pub assessment_type_id: AssessmentTypeId,
    pub name: String,
    pub description: String,
}

#[derive(Debug, Serialize)]
pub struct ListResponse {
    pub success: bool,
    pub results: Vec<AssessmentType>,
}

/// One entry of `assessment.customField.list`: a package option. Its `id` is namespaced by
/// vendor and package (`domain::options::field_id`); its name says which package it is for,
/// since Ashby lists every field for every assessment type.
#[derive(Debug, Serialize)]
pub struct CustomField {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub kind: OptionKind,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub possible_values: Vec<PossibleValue>,
    #[serde(rename = "isRequired")]
    pub is_required: bool,
}

impl CustomField {
    pub fn of(package_ref: &PackageRef, package: &Package, option: &PackageOption) -> Self {
        Self {
            id: options::field_id(package_ref, &option.id),
            name: format!("{}: {}", package.name, option.name),
            kind: option.kind,
            possible_values: option.possible_values.clone(),
            is_required: option.required,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct CustomFieldListResponse {
    pub success: bool,
    pub fields: Vec<CustomField>,
}

#[derive(Debug, Serialize)]
pub struct StartResults {
    pub assessment_id: AssessmentId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update_request: Option<UpdateRequest>,
}

/// The 200 body of both `assessment.start` and `assessment.cancel`.
#[derive(Debug, Serialize)]
pub struct StartResponse {
    pub success: bool,
    pub results: StartResults,
}

/// Ashby's data-field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DataType {
    NumericScore,
    NumericDurationMinutes,
    Url,
    String,
    BooleanSuccess,
}

/// A data field's raw value: string, number or boolean.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum DataValue {
    Bool(bool),
    Number(serde_json::Number),
    Text(String),
}

/// Ashby's `AssessmentDataField`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DataField {
    pub identifier: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: DataType,
    pub value: DataValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl DataField {
    pub fn text(identifier: &str, label: &str, value: impl Into<String>) -> Self {
        Self {
            identifier: identifier.into(),
            label: label.into(),
            kind: DataType::String,
            value: DataValue::Text(value.into()),
            description: None,
        }
    }
    pub fn url(identifier: &str, label: &str, value: impl Into<String>) -> Self {
        Self {
            kind: DataType::Url,
            ..Self::text(identifier, label, value)
        }
    }
}

impl From<&Field> for DataField {
    fn from(f: &Field) -> Self {
        Self {
            identifier: f.identifier.clone(),
            label: f.label.clone(),
            kind: match f.kind {
                FieldKind::NumericScore => DataType::NumericScore,
                FieldKind::NumericDurationMinutes => DataType::NumericDurationMinutes,
                FieldKind::Url => DataType::Url,
                FieldKind::String => DataType::String,
                FieldKind::BooleanSuccess => DataType::BooleanSuccess,
            },
            value: match &f.value {
                FieldValue::Bool(b) => DataValue::Bool(*b),
                FieldValue::Number(n) => DataValue::Number(n.clone()),
                FieldValue::Text(t) => DataValue::Text(t.clone()),
            },
            description: f.description.clone(),
        }
    }
}

/// The label of the status field in Ashby's assessment card.
const STATUS_FIELD_LABEL: &str = "Status";

/// `POST /assessment.update` (Ashby implements it; we call it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UpdateRequest {
    pub assessment_id: AssessmentId,
    /// Milliseconds since the Unix epoch.
    pub timestamp: Timestamp,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assessment_status: Option<DataField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assessment_result: Option<DataField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assessment_profile_url: Option<DataField>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cancelled_reason: Option<DataField>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub metadata: Vec<DataField>,
}

impl UpdateRequest {
    fn empty(assessment_id: AssessmentId, timestamp: Timestamp) -> Self {
        Self {
            assessment_id,
            timestamp,
            assessment_status: None,
            assessment_result: None,
            assessment_profile_url: None,
            cancelled_reason: None,
            metadata: Vec::new(),
        }
    }

    /// A status-only update (`Started`, or the vendor's in-progress wording).
    pub fn status(assessment_id: AssessmentId, timestamp: Timestamp, label: &str) -> Self {
        Self {
            assessment_status: Some(DataField::text(ids::STATUS, STATUS_FIELD_LABEL, label)),
            ..Self::empty(assessment_id, timestamp)
        }
    }

    /// How Ashby is told `notice`: a status update, the update that marks the assessment
    /// complete (result, "Full report" link), or the one that marks it cancelled with a reason.
    pub fn from_notice(assessment_id: AssessmentId, timestamp: Timestamp, notice: &Notice) -> Self {
        let fields = |m: &[Field]| m.iter().map(DataField::from).collect::<Vec<_>>();
        match notice {
            Notice::Progress { label, metadata } => Self {
                metadata: fields(metadata),
                ..Self::status(assessment_id, timestamp, label)
            },
            Notice::Completed {
                label,
                result,
                report_url,
                metadata,
            } => Self {
                assessment_result: Some(result.into()),
                assessment_profile_url: Some(DataField::url(
                    ids::REPORT_URL,
                    labels::FULL_REPORT,
                    report_url.as_ref().map(|u| u.as_str()).unwrap_or_default(),
                )),
                metadata: fields(metadata),
                ..Self::status(assessment_id, timestamp, label)
            },
            Notice::Ended {
                title,
                reason,
                metadata,
            } => Self {
                cancelled_reason: Some(DataField::text(ids::CANCELLED_REASON, title, reason)),
                metadata: fields(metadata),
                ..Self::empty(assessment_id, timestamp)
            },
        }
    }
}
