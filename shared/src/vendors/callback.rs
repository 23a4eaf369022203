//! Vendor result callbacks. The signature is checked over the raw bytes first; only a
//! `VerifiedPayload`, which nothing but `verify_signature` can make, is ever parsed, and only
//! parsing one makes a [`VerifiedCallback`]: a callback the use cases act on has been verified.

use std::collections::HashSet;

use http::HeaderMap;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use url::Url;

use crate::clock::Timestamp;

use crate::domain::fields::ids;
use crate::domain::{
    AssessmentId, Attachment, Field, FieldKind, FieldValue, VendorStatus, VendorUpdate,
};
use crate::json::describe_json_error;

/// Why a callback was refused, worded for the vendor's developers.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CallbackError {
    #[error("{0}")]
    Signature(&'static str),
    #[error("{0}")]
    Invalid(String),
    /// The hub could not read the vendor's signing secret: nothing was checked; try again.
    #[error(transparent)]
    Unavailable(#[from] crate::secrets::SecretError),
}

/// A body whose Standard Webhooks signature checked out against one of the vendor's secrets.
/// Its fields are private: only `verify_signature` makes one.
#[derive(Debug)]
pub struct VerifiedPayload<'a> {
    webhook_id: String,
    body: &'a [u8],
}

impl VerifiedPayload<'_> {
    pub fn webhook_id(&self) -> &str {
        &self.webhook_id
    }
}

const MAX_WEBHOOK_ID: usize = 128;

/// The Standard Webhooks tolerance: timestamps further than this from now are refused.
const TOLERANCE_S: i64 = 5 * 60;

/// Checks the `webhook-*` headers over `body` against each of `secrets` (current first, then the
/// previous one during a rotation). Timestamps more than 5 minutes away from `now` are refused.
/// The signature is the crate's (`sign`), compared here in constant time: the crate's own
/// `verify` reads the system clock, which would bypass the hub's injected one.
pub fn verify_signature<'a>(
    secrets: &[SecretString],
    headers: &HeaderMap,
    body: &'a [u8],
    now: Timestamp,
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
    if ts
        .checked_sub(now.as_secs())
        .is_none_or(|skew| skew.unsigned_abs() > TOLERANCE_S.unsigned_abs())
    {
        return Err(CallbackError::Signature(
            "webhook-timestamp is more than 5 minutes from now",
        ));
    }
    let signatures = headers
        .get(standardwebhooks::HEADER_WEBHOOK_SIGNATURE)
        .ok_or(CallbackError::Signature(
            "missing webhook signature headers",
        ))?
        .to_str()
        .map_err(|_| CallbackError::Signature("malformed webhook signature headers"))?;
    let mut outcome = CallbackError::Signature("no signing secret is configured for this vendor");
    for secret in secrets {
        let Ok(wh) = standardwebhooks::Webhook::new(secret.expose_secret()) else {
            continue;
        };
        let expected = wh
            .sign(&webhook_id, ts, body)
            .map_err(|e| map_webhook_error(&e))?;
        let matches = signatures
            .split(' ')
            .filter(|sig| sig.starts_with("v1,"))
            .any(|sig| bool::from(sig.as_bytes().ct_eq(expected.as_bytes())));
        if matches {
            return Ok(VerifiedPayload { webhook_id, body });
        }
        outcome = CallbackError::Signature("signature does not match");
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
    metadata: Option<Vec<Field>>,
    #[serde(default)]
    attachments: Option<Vec<RawAttachment>>,
}

/// Fields not listed are ignored, as everywhere in a callback (the protocol may add some).
#[derive(Deserialize)]
struct RawAttachment {
    url: String,
    filename: String,
    content_type: String,
}

#[derive(Deserialize)]
struct RawResult {
    #[serde(rename = "type")]
    kind: FieldKind,
    value: FieldValue,
    label: String,
    #[serde(default)]
    description: Option<String>,
}

/// A callback whose signature verified and whose body parsed and passed every check: ready to
/// apply. Its fields are private: only [`parse_callback`] of a [`VerifiedPayload`] makes one.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedCallback {
    assessment_id: AssessmentId,
    webhook_id: String,
    update: VendorUpdate,
}

impl VerifiedCallback {
    pub fn assessment_id(&self) -> AssessmentId {
        self.assessment_id
    }
    /// The vendor's `webhook-id`: a replay of the same message carries the same one.
    pub fn webhook_id(&self) -> &str {
        &self.webhook_id
    }
    pub fn update(&self) -> &VendorUpdate {
        &self.update
    }
}

const MAX_LABEL: usize = 200;
const MAX_TEXT: usize = 2000;
const MAX_METADATA: usize = 50;
/// At most this many files per callback.
pub const MAX_ATTACHMENTS: usize = 5;
const MAX_FILENAME: usize = 200;

/// The media types a report file may have: documents and images an ATS shows as they are. No
/// HTML or scripts (they would run in whoever opens them).
pub const ATTACHMENT_TYPES: [&str; 5] = [
    "application/pdf",
    "image/png",
    "image/jpeg",
    "text/plain",
    "text/csv",
];

fn check_attachment(i: usize, a: RawAttachment) -> Result<Attachment, CallbackError> {
    let name = format!("attachments[{i}]");
    let url = parse_http_url(&format!("{name}.url"), &a.url)?;
    let filename = a.filename.trim();
    if filename.is_empty()
        || filename.chars().count() > MAX_FILENAME
        || filename == "."
        || filename == ".."
        || filename
            .chars()
            .any(|c| c.is_control() || c == '/' || c == '\\')
    {
        return Err(CallbackError::Invalid(format!(
            "{name}.filename must be a file name of 1-{MAX_FILENAME} characters without \
             slashes or control characters"
        )));
    }
    let content_type = a.content_type.trim().to_ascii_lowercase();
    if !ATTACHMENT_TYPES.contains(&content_type.as_str()) {
        return Err(CallbackError::Invalid(format!(
            "{name}.content_type must be one of {}",
            ATTACHMENT_TYPES.join(", ")
        )));
    }
    Ok(Attachment {
        url,
        filename: filename.to_owned(),
        content_type,
    })
}

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

fn check_field(field: &str, f: &Field) -> Result<(), CallbackError> {
    check_len(&format!("{field}.identifier"), &f.identifier, MAX_LABEL)?;
    check_len(&format!("{field}.label"), &f.label, MAX_LABEL)?;
    if let Some(d) = &f.description {
        check_len(&format!("{field}.description"), d, MAX_TEXT)?;
    }
    let ok = match (f.kind, &f.value) {
        (FieldKind::NumericScore | FieldKind::NumericDurationMinutes, FieldValue::Number(_)) => {
            true
        }
        (FieldKind::BooleanSuccess, FieldValue::Bool(_)) => true,
        (FieldKind::String, FieldValue::Text(t)) => {
            check_len(&format!("{field}.value"), t, MAX_TEXT)?;
            true
        }
        (FieldKind::Url, FieldValue::Text(t)) => {
            parse_http_url(&format!("{field}.value"), t)?;
            true
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(CallbackError::Invalid(format!(
            "{field}.value must be {} for its type",
            f.kind.expected()
        )))
    }
}

/// Parses and validates a verified callback body. Error messages name the offending field and
/// never echo its value.
pub fn parse_callback(payload: &VerifiedPayload<'_>) -> Result<VerifiedCallback, CallbackError> {
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
    let result = raw.result.map(|r| Field {
        identifier: ids::RESULT.into(),
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
        if ids::RESERVED.contains(&m.identifier.as_str()) {
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
    let attachments = raw.attachments.unwrap_or_default();
    if attachments.len() > MAX_ATTACHMENTS {
        return Err(CallbackError::Invalid(format!(
            "attachments has more than {MAX_ATTACHMENTS} entries"
        )));
    }
    if !attachments.is_empty() && raw.status != VendorStatus::Completed {
        return Err(CallbackError::Invalid(
            "attachments are accepted only when status is completed".into(),
        ));
    }
    let attachments = attachments
        .into_iter()
        .enumerate()
        .map(|(i, a)| check_attachment(i, a))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(VerifiedCallback {
        assessment_id,
        webhook_id: payload.webhook_id.clone(),
        update: VendorUpdate {
            status: raw.status,
            label: raw.status_label.filter(|l| !l.trim().is_empty()),
            result,
            report_url,
            metadata,
            attachments,
        },
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

    fn clock() -> Timestamp {
        crate::clock::Clock::now(&crate::clock::SystemClock)
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
        let ok = verify_signature(&[SecretString::from(SECRET)], &h, body, clock()).expect("valid");
        assert_eq!(ok.webhook_id(), "msg_1");
        let other = "whsec_QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=";
        assert!(verify_signature(&[SecretString::from(other)], &h, body, clock()).is_err());
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
                body,
                clock()
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
                verify_signature(&[SecretString::from(SECRET)], &h, body, clock()).map(|_| ()),
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
                verify_signature(&[SecretString::from(SECRET)], &h, body, clock()).is_err(),
                "{ts}"
            );
        }
    }

    #[test]
    fn a_tampered_body_or_empty_signature_is_refused() {
        let h = signed(SECRET, "msg_1", now(), b"{\"a\":1}");
        assert!(
            verify_signature(&[SecretString::from(SECRET)], &h, b"{\"a\":2}", clock()).is_err()
        );
        let mut h2 = h.clone();
        h2.insert("webhook-signature", HeaderValue::from_static("v1,"));
        assert!(
            verify_signature(&[SecretString::from(SECRET)], &h2, b"{\"a\":1}", clock()).is_err()
        );
        let mut h3 = h;
        h3.remove("webhook-id");
        assert!(
            verify_signature(&[SecretString::from(SECRET)], &h3, b"{\"a\":1}", clock()).is_err()
        );
    }

    #[test]
    fn the_tolerance_is_measured_on_the_injected_clock() {
        let body = b"{}";
        let signed_at = 1_000_000;
        let h = signed(SECRET, "msg_1", signed_at, body);
        let secrets = [SecretString::from(SECRET)];
        let at = |s: i64| Timestamp::from_ms(s * 1000);
        assert!(verify_signature(&secrets, &h, body, at(signed_at + 299)).is_ok());
        assert!(verify_signature(&secrets, &h, body, at(signed_at - 299)).is_ok());
        assert!(verify_signature(&secrets, &h, body, at(signed_at + 301)).is_err());
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
        let u = cb.update();
        assert_eq!(u.status, VendorStatus::Completed);
        assert_eq!(
            u.result.as_ref().map(|r| r.identifier.as_str()),
            Some("result")
        );
        assert_eq!(u.metadata.len(), 1);
        assert_eq!(cb.webhook_id(), "msg_1");
    }
}
