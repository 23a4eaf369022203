//! Typed values a vendor reports and the hub passes on to the ATS: the result and metadata of an
//! assessment. The shape (identifier, label, type, value) is the vendor protocol's; each ATS
//! adapter maps it to its own wire form.

use serde::{Deserialize, Serialize};

/// What kind of value a field holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    NumericScore,
    NumericDurationMinutes,
    Url,
    String,
    BooleanSuccess,
}

impl FieldKind {
    /// The value this kind needs, in words for a vendor's developers.
    pub fn expected(self) -> &'static str {
        match self {
            Self::NumericScore | Self::NumericDurationMinutes => "a number",
            Self::BooleanSuccess => "a boolean",
            Self::String => "a string",
            Self::Url => "an absolute http(s) URL string",
        }
    }
}

/// A field's raw value: string, number or boolean.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FieldValue {
    Bool(bool),
    Number(serde_json::Number),
    Text(String),
}

/// One reported value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Field {
    pub identifier: String,
    pub label: String,
    #[serde(rename = "type")]
    pub kind: FieldKind,
    pub value: FieldValue,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl Field {
    pub fn text(identifier: &str, label: &str, value: impl Into<String>) -> Self {
        Self {
            identifier: identifier.into(),
            label: label.into(),
            kind: FieldKind::String,
            value: FieldValue::Text(value.into()),
            description: None,
        }
    }
}

/// Identifiers the hub itself gives the fields it reports; vendor metadata may not reuse them.
pub mod ids {
    pub const STATUS: &str = "status";
    pub const RESULT: &str = "result";
    pub const REPORT_URL: &str = "report_url";
    pub const CANCELLED_REASON: &str = "cancelled_reason";
    pub const RESERVED: [&str; 4] = [STATUS, RESULT, REPORT_URL, CANCELLED_REASON];
}
