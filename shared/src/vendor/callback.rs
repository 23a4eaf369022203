//! Vendor result callbacks. The signature is checked over the raw bytes first; only a
//! `VerifiedPayload`, which nothing but `verify_signature` can make, is ever parsed.

use std::collections::HashSet;

use http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::ashby::{DataField, DataType, DataValue, RESERVED_IDS, RESULT_ID};
use crate::domain::{AssessmentId, VendorStatus};
use crate::error::describe_json_error;

/// Why a callback was refused, worded for the vendor's developers.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CallbackError {
    #[error("{0}")]
    Signature(&'static str),
    #[error("{0}")]
    Invalid(String),
}

/// A body whose Standard Webhooks signature checked out against one of the vendor's secrets.
#[derive(Debug)]
pub struct VerifiedPayload<'a> {
    pub webhook_id: String,
    pub body: &'a [u8],
}

const MAX_WEBHOOK_ID: usize = 128;

/// The Standard Webhooks tolerance: timestamps further than this from now are refused.
const TOLERANCE_S: i64 = 5 * 60;

/// Checks the `webhook-*` headers over `body` against each of `secrets` (current first, then the
/// previous one during a rotation). Timestamps more than 5 minutes away from now are refused.
pub fn verify_signature<'a>(
    secrets: &[SecretString],
    headers: &HeaderMap,
    body: &'a [u8],
) -> Result<VerifiedPayload<'a>, CallbackError> {
    let webhook_id = headers
        .get(standardwebhooks::HEADER_WEBHOOK_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_WEBHOOK_ID)
        .filter(|v| v.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or(CallbackError::Signature(
            "missing or malformed webhook-id header",
        ))?
        .to_owned();
    // Checked here before the crate sees it: the crate computes `now - timestamp` unchecked, which
    // overflows (a panic in debug builds) on extreme values such as i64::MIN.
    let ts = headers
        .get(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP)
        .ok_or(CallbackError::Signature(
            "missing webhook signature headers",
        ))?
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<i64>().ok())
        .ok_or(CallbackError::Signature(
            "malformed webhook signature headers",
        ))?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    if ts
        .checked_sub(now)
        .is_none_or(|skew| skew.unsigned_abs() > TOLERANCE_S.unsigned_abs())
    {
        return Err(CallbackError::Signature(
            "webhook-timestamp is more than 5 minutes from now",
        ));
    }
    let mut outcome = CallbackError::Signature("no signing secret is configured for this vendor");
    for secret in secrets {
        let Ok(wh) = standardwebhooks::Webhook::new(secret.expose_secret()) else {
            continue;
        };
        match wh.verify(body, headers) {
            Ok(()) => return Ok(VerifiedPayload { webhook_id, body }),
            Err(e) => outcome = map_webhook_error(&e),
        }
    }
    Err(outcome)
}

fn map_webhook_error(e: &standardwebhooks::WebhookError) -> CallbackError {
    use standardwebhooks::WebhookError as E;
    match e {
        E::MissingHeader(_) => CallbackError::Signature("missing webhook signature headers"),
        E::InvalidHeader(_) | E::InvalidTimestamp => {
            CallbackError::Signature("malformed webhook signature headers")
        }
        E::TimestampTooOldError | E::FutureTimestampError => {
            CallbackError::Signature("webhook-timestamp is more than 5 minutes from now")
        }
        E::InvalidPayload => CallbackError::Invalid("body is not valid UTF-8".into()),
        E::InvalidSignature | E::InvalidSecret(_) => {
            CallbackError::Signature("signature does not match")
        }
    }
}

#[derive(Deserialize)]
struct RawCallback {
    assessment_id: String,
    status: VendorStatus,
    #[serde(default)]
    status_label: Option<String>,
    #[serde(default)]
    result: Option<RawResult>,
    #[serde(default)]
    report_url: Option<String>,
    #[serde(default)]
    metadata: Option<Vec<DataField>>,
}

#[derive(Deserialize)]
struct RawResult {
    #[serde(rename = "type")]
    kind: DataType,
    value: DataValue,
    label: String,
    #[serde(default)]
    description: Option<String>,
}

/// A callback that parsed and passed every check: ready to apply.
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    pub assessment_id: AssessmentId,
    pub status: VendorStatus,
    pub status_label: Option<String>,
    pub result: Option<DataField>,
    pub report_url: Option<Url>,
    pub metadata: Vec<DataField>,
}

const MAX_LABEL: usize = 200;
const MAX_TEXT: usize = 2000;
const MAX_METADATA: usize = 50;

fn check_len(field: &str, s: &str, max: usize) -> Result<(), CallbackError> {
    if s.chars().count() > max {
        return Err(CallbackError::Invalid(format!(
            "{field} is longer than {max} characters"
        )));
    }
    if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(CallbackError::Invalid(format!(
            "{field} contains control characters"
        )));
    }
    Ok(())
}

fn parse_http_url(field: &str, s: &str) -> Result<Url, CallbackError> {
    check_len(field, s, MAX_TEXT)?;
    Url::parse(s)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http") && u.host().is_some())
        .ok_or_else(|| CallbackError::Invalid(format!("{field} must be an absolute http(s) URL")))
}

fn check_field(field: &str, f: &DataField) -> Result<(), CallbackError> {
    check_len(&format!("{field}.identifier"), &f.identifier, MAX_LABEL)?;
    check_len(&format!("{field}.label"), &f.label, MAX_LABEL)?;
    if let Some(d) = &f.description {
        check_len(&format!("{field}.description"), d, MAX_TEXT)?;
    }
    let ok = match (f.kind, &f.value) {
        (DataType::NumericScore | DataType::NumericDurationMinutes, DataValue::Number(_)) => true,
        (DataType::BooleanSuccess, DataValue::Bool(_)) => true,
        (DataType::String, DataValue::Text(t)) => {
            check_len(&format!("{field}.value"), t, MAX_TEXT)?;
            true
        }
        (DataType::Url, DataValue::Text(t)) => {
            parse_http_url(&format!("{field}.value"), t)?;
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        let want = match f.kind {
            DataType::NumericScore | DataType::NumericDurationMinutes => "a number",
            DataType::BooleanSuccess => "a boolean",
            DataType::String => "a string",
            DataType::Url => "an absolute http(s) URL string",
        };
        Err(CallbackError::Invalid(format!(
            "{field}.value must be {want} for its type"
        )))
    }
}

/// Parses and validates a verified callback body. Error messages name the offending field and
/// never echo its value.
pub fn parse_callback(payload: &VerifiedPayload<'_>) -> Result<Callback, CallbackError> {
    let raw: RawCallback = crate::json::from_slice(payload.body)
        .map_err(|e| CallbackError::Invalid(describe_json_error(&e)))?;
    let assessment_id = AssessmentId::parse(&raw.assessment_id)
        .map_err(|e| CallbackError::Invalid(e.to_string()))?;
    if let Some(l) = &raw.status_label {
        check_len("status_label", l, MAX_LABEL)?;
    }
    let report_url = raw
        .report_url
        .as_deref()
        .map(|u| parse_http_url("report_url", u))
        .transpose()?;
    if raw.status == VendorStatus::Completed && report_url.is_none() {
        return Err(CallbackError::Invalid(
            "report_url is required when status is completed".into(),
        ));
    }
    let result = raw.result.map(|r| DataField {
        identifier: RESULT_ID.into(),
        label: r.label,
        kind: r.kind,
        value: r.value,
        description: r.description,
    });
    if let Some(r) = &result {
        check_field("result", r)?;
    }
    let metadata = raw.metadata.unwrap_or_default();
    if metadata.len() > MAX_METADATA {
        return Err(CallbackError::Invalid(format!(
            "metadata has more than {MAX_METADATA} entries"
        )));
    }
    let mut seen = HashSet::new();
    for (i, m) in metadata.iter().enumerate() {
        let name = format!("metadata[{i}]");
        check_field(&name, m)?;
        if m.identifier.is_empty() {
            return Err(CallbackError::Invalid(format!(
                "{name}.identifier must not be empty"
            )));
        }
        if RESERVED_IDS.contains(&m.identifier.as_str()) {
            return Err(CallbackError::Invalid(format!(
                "{name}.identifier is reserved by the hub"
            )));
        }
        if !seen.insert(m.identifier.as_str()) {
            return Err(CallbackError::Invalid(format!(
                "{name}.identifier repeats an earlier identifier"
            )));
        }
    }
    Ok(Callback {
        assessment_id,
        status: raw.status,
        status_label: raw.status_label.filter(|l| !l.trim().is_empty()),
        result,
        report_url,
        metadata,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

    fn signed(secret: &str, id: &str, ts: i64, body: &[u8]) -> HeaderMap {
        let sig = standardwebhooks::Webhook::new(secret)
            .expect("secret")
            .sign(id, ts, body)
            .expect("sign");
        let mut h = HeaderMap::new();
        h.insert("webhook-id", HeaderValue::from_str(id).expect("hv"));
        h.insert(
            "webhook-timestamp",
            HeaderValue::from_str(&ts.to_string()).expect("hv"),
        );
        h.insert(
            "webhook-signature",
            HeaderValue::from_str(&sig).expect("hv"),
        );
        h
    }

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs() as i64
    }

    fn verified(body: &[u8]) -> VerifiedPayload<'_> {
        VerifiedPayload {
            webhook_id: "msg_1".into(),
            body,
        }
    }

    #[test]
    fn a_correct_signature_verifies_and_a_wrong_secret_does_not() {
        let body = br#"{"a":1}"#;
        let h = signed(SECRET, "msg_1", now(), body);
        let ok = verify_signature(&[SecretString::from(SECRET)], &h, body).expect("valid");
        assert_eq!(ok.webhook_id, "msg_1");
        let other = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
        assert!(verify_signature(&[SecretString::from(other)], &h, body).is_err());
    }

    #[test]
    fn the_previous_secret_still_verifies_during_rotation() {
        let body = br#"{"a":1}"#;
        let h = signed(SECRET, "msg_1", now(), body);
        let new = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
        assert!(
            verify_signature(
                &[SecretString::from(new), SecretString::from(SECRET)],
                &h,
                body
            )
            .is_ok()
        );
    }

    #[test]
    fn stale_and_future_timestamps_are_refused() {
        let body = b"{}";
        for ts in [now() - 301, now() + 301] {
            let h = signed(SECRET, "msg_1", ts, body);
            assert_eq!(
                verify_signature(&[SecretString::from(SECRET)], &h, body).map(|_| ()),
                Err(CallbackError::Signature(
                    "webhook-timestamp is more than 5 minutes from now"
                ))
            );
        }
    }

    #[test]
    fn extreme_timestamps_are_refused_without_overflow() {
        let body = b"{}";
        for ts in [
            "-9223372036854775808",
            "9223372036854775807",
            "253402300799",
            "abc",
            "",
        ] {
            let mut h = signed(SECRET, "msg_1", now(), body);
            h.insert("webhook-timestamp", HeaderValue::from_str(ts).expect("hv"));
            assert!(
                verify_signature(&[SecretString::from(SECRET)], &h, body).is_err(),
                "{ts}"
            );
        }
    }

    #[test]
    fn a_tampered_body_or_empty_signature_is_refused() {
        let h = signed(SECRET, "msg_1", now(), b"{\"a\":1}");
        assert!(verify_signature(&[SecretString::from(SECRET)], &h, b"{\"a\":2}").is_err());
        let mut h2 = h.clone();
        h2.insert("webhook-signature", HeaderValue::from_static("v1,"));
        assert!(verify_signature(&[SecretString::from(SECRET)], &h2, b"{\"a\":1}").is_err());
        let mut h3 = h;
        h3.remove("webhook-id");
        assert!(verify_signature(&[SecretString::from(SECRET)], &h3, b"{\"a\":1}").is_err());
    }

    #[test]
    fn completed_without_report_url_names_the_field() {
        let body =
            br#"{"assessment_id":"6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10","status":"completed"}"#;
        let e = parse_callback(&verified(body)).expect_err("must fail");
        assert!(e.to_string().contains("report_url"), "{e}");
    }

    #[test]
    fn a_value_of_the_wrong_type_is_refused_without_echoing_it() {
        let body =
            br#"{"assessment_id":"6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10","status":"completed",
            "report_url":"https://v.example/r/1",
            "result":{"type":"numeric_score","value":"secret-ish","label":"Score"}}"#;
        let e = parse_callback(&verified(body)).expect_err("must fail");
        assert!(e.to_string().contains("result.value"), "{e}");
        assert!(!e.to_string().contains("secret-ish"), "{e}");
    }

    #[test]
    fn an_unknown_status_names_the_field() {
        let body = br#"{"assessment_id":"6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10","status":"done"}"#;
        let e = parse_callback(&verified(body)).expect_err("must fail");
        assert!(e.to_string().contains("status"), "{e}");
        assert!(!e.to_string().contains("done"), "{e}");
    }

    #[test]
    fn duplicate_or_reserved_metadata_identifiers_are_refused() {
        let body =
            br#"{"assessment_id":"6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10","status":"in_progress",
            "metadata":[{"identifier":"eta","label":"ETA","type":"string","value":"2 days"},
                        {"identifier":"eta","label":"ETA","type":"string","value":"3 days"}]}"#;
        assert!(parse_callback(&verified(body)).is_err());
        let body =
            br#"{"assessment_id":"6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10","status":"in_progress",
            "metadata":[{"identifier":"status","label":"S","type":"string","value":"x"}]}"#;
        assert!(parse_callback(&verified(body)).is_err());
    }

    #[test]
    fn a_callback_or_its_parts_written_as_arrays_are_refused_by_name() {
        let positional = br#"["6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10","in_progress","label"]"#;
        assert_eq!(
            parse_callback(&verified(positional)),
            Err(CallbackError::Invalid(
                "request body must be a JSON object".into()
            ))
        );
        let body =
            br#"{"assessment_id":"6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10","status":"completed",
            "report_url":"https://v.example/r/1","result":["numeric_score",87,"Score"]}"#;
        assert_eq!(
            parse_callback(&verified(body)),
            Err(CallbackError::Invalid(
                "result must be a JSON object".into()
            ))
        );
        let body =
            br#"{"assessment_id":"6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10","status":"in_progress",
            "metadata":[["eta","ETA","string","3 days"]]}"#;
        assert_eq!(
            parse_callback(&verified(body)),
            Err(CallbackError::Invalid(
                "metadata[0] must be a JSON object".into()
            ))
        );
    }

    #[test]
    fn a_value_that_is_no_json_scalar_is_refused_in_json_terms() {
        let body =
            br#"{"assessment_id":"6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10","status":"in_progress",
            "metadata":[{"identifier":"eta","label":"ETA","type":"string","value":{"days":3}}]}"#;
        assert_eq!(
            parse_callback(&verified(body)),
            Err(CallbackError::Invalid(
                "metadata[0].value must be a string, a number or a boolean".into()
            ))
        );
        let body =
            br#"{"assessment_id":"6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10","status":"finished"}"#;
        assert_eq!(
            parse_callback(&verified(body)),
            Err(CallbackError::Invalid(
                "status must be one of in_progress, completed, cancelled, failed, expired".into()
            ))
        );
    }

    #[test]
    fn a_full_completed_callback_parses() {
        let body = br#"{"assessment_id":"6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10","status":"completed",
            "status_label":"Clear","report_url":"https://v.example/r/1",
            "result":{"type":"boolean_success","value":true,"label":"Clear"},
            "metadata":[{"identifier":"eta","label":"Took","type":"numeric_duration_minutes","value":74}]}"#;
        let cb = parse_callback(&verified(body)).expect("valid");
        assert_eq!(cb.status, VendorStatus::Completed);
        assert_eq!(cb.result.map(|r| r.identifier), Some("result".into()));
        assert_eq!(cb.metadata.len(), 1);
    }
}
