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
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum FieldValue {
    Bool(bool),
    Number(serde_json::Number),
    Text(String),
}

/// By hand rather than `#[serde(untagged)]`, whose refusal names the Rust type ("data did not
/// match any variant of untagged enum FieldValue").
impl<'de> Deserialize<'de> for FieldValue {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Any;
        impl serde::de::Visitor<'_> for Any {
            type Value = FieldValue;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string, a number or a boolean")
            }
            fn visit_bool<E>(self, v: bool) -> Result<FieldValue, E> {
                Ok(FieldValue::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<FieldValue, E> {
                Ok(FieldValue::Number(v.into()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<FieldValue, E> {
                Ok(FieldValue::Number(v.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<FieldValue, E> {
                serde_json::Number::from_f64(v)
                    .map(FieldValue::Number)
                    .ok_or_else(|| E::invalid_value(serde::de::Unexpected::Float(v), &self))
            }
            fn visit_str<E>(self, v: &str) -> Result<FieldValue, E> {
                Ok(FieldValue::Text(v.to_owned()))
            }
            fn visit_string<E>(self, v: String) -> Result<FieldValue, E> {
                Ok(FieldValue::Text(v))
            }
        }
        d.deserialize_any(Any)
    }
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
