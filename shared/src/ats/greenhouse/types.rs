//! Typed bodies of Greenhouse's partner endpoints, per `schemas.json`. Requests are parsed into
//! these types at the edge (unknown properties ignored: Greenhouse may add some); responses are
//! only ever built from them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::domain::{Assessment, FieldValue, Status, current_label, labels};
use crate::error::ApiError;

/// One entry of `GET list_tests`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TestEntry {
    pub partner_test_id: String,
    pub partner_test_name: String,
}

/// `POST send_test`. `Option` where the contract allows `null`.
#[derive(Debug, Deserialize)]
pub struct SendTestRequest {
    pub partner_test_id: String,
    pub candidate: SendTestCandidate,
    #[serde(default)]
    pub sent_by: Option<String>,
    pub url: String,
}

#[derive(Deserialize)]
pub struct SendTestCandidate {
    pub first_name: String,
    pub last_name: String,
    #[serde(default)]
    pub preferred_name: Option<String>,
    #[serde(default)]
    pub resume_url: Option<String>,
    #[serde(default)]
    pub phone_number: Option<String>,
    pub email: String,
    pub greenhouse_profile_url: String,
}

impl std::fmt::Debug for SendTestCandidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SendTestCandidate([redacted])")
    }
}

/// Longest value of any one field; real ones are far shorter.
const MAX_FIELD: usize = 2048;

impl SendTestRequest {
    /// `Ok` if the hub can order this test; otherwise a 400 naming the field (Greenhouse shows
    /// nothing at send time, so every problem is the request's). Never quotes candidate data.
    pub fn validate(&self) -> Result<(), ApiError> {
        let c = &self.candidate;
        let fields = [
            ("partner_test_id", Some(&self.partner_test_id), true),
            ("candidate.first_name", Some(&c.first_name), false),
            ("candidate.last_name", Some(&c.last_name), false),
            ("candidate.email", Some(&c.email), true),
            (
                "candidate.greenhouse_profile_url",
                Some(&c.greenhouse_profile_url),
                true,
            ),
            ("candidate.preferred_name", c.preferred_name.as_ref(), false),
            ("candidate.resume_url", c.resume_url.as_ref(), false),
            ("candidate.phone_number", c.phone_number.as_ref(), false),
            ("sent_by", self.sent_by.as_ref(), false),
            ("url", Some(&self.url), true),
        ];
        for (name, value, required) in fields {
            let Some(value) = value else { continue };
            if required && value.trim().is_empty() {
                return Err(ApiError::bad_request(format!("{name} must not be empty")));
            }
            if value.len() > MAX_FIELD {
                return Err(ApiError::bad_request(format!(
                    "{name} is longer than {MAX_FIELD} bytes"
                )));
            }
        }
        if !crate::ats::ashby::validate::is_email_address(&c.email) {
            return Err(ApiError::bad_request(
                "candidate.email must be an email address",
            ));
        }
        if url::Url::parse(&c.greenhouse_profile_url).is_err() {
            return Err(ApiError::bad_request(
                "candidate.greenhouse_profile_url must be an absolute URL",
            ));
        }
        Ok(())
    }

    /// The application id Greenhouse puts in the profile URL's query (`?application_id=…`).
    pub fn application_id(&self) -> Option<String> {
        let url = url::Url::parse(&self.candidate.greenhouse_profile_url).ok()?;
        url.query_pairs()
            .find(|(k, _)| k == "application_id")
            .map(|(_, v)| v.into_owned())
            .filter(|v| !v.is_empty())
    }
}

/// The answer to `send_test`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SendTestResponse {
    pub partner_interview_id: String,
}

/// The answer to `test_status`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TestStatusResponse {
    pub partner_status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_profile_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partner_score: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, FieldValue>>,
}

/// `partner_status` of a finished test: the one value that ends it for Greenhouse.
pub const COMPLETE: &str = "complete";

impl TestStatusResponse {
    /// Where the assessment stands, from the stored state: `complete` with the report link,
    /// score and metadata once completed; otherwise the status in words (with the summary's
    /// metadata once it ended otherwise).
    pub fn of(a: &Assessment) -> Self {
        let metadata = a.summary.as_ref().map(|s| {
            s.metadata
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect::<BTreeMap<_, _>>()
        });
        match (a.status, &a.summary) {
            (Status::Completed, Some(s)) if s.report_url.is_some() => Self {
                partner_status: COMPLETE.into(),
                partner_profile_url: s.report_url.clone(),
                partner_score: s.score,
                metadata,
            },
            (status, Some(s)) if status.is_terminal() && status != Status::Completed => Self {
                partner_status: s.label.clone(),
                partner_profile_url: None,
                partner_score: None,
                metadata,
            },
            (Status::Rejected, None) => Self::words(labels::NOT_ACCEPTED),
            // Completed without a report link cannot be `complete` (Greenhouse requires the
            // link); the vendor protocol requires one, so this is an old or hand-made record.
            (status, _) => Self::words(current_label(status, a.status_label.as_deref())),
        }
    }

    fn words(s: &str) -> Self {
        Self {
            partner_status: s.to_owned(),
            partner_profile_url: None,
            partner_score: None,
            metadata: None,
        }
    }
}

/// `POST response_error`: Greenhouse could not use one of our replies. Only `api_call` and
/// `errors` are guaranteed.
#[derive(Deserialize)]
pub struct ResponseErrorRequest {
    pub api_call: String,
    pub errors: Vec<String>,
    #[serde(default)]
    pub partner_test_id: Option<String>,
    #[serde(default)]
    pub partner_test_name: Option<String>,
    #[serde(default)]
    pub partner_interview_id: Option<String>,
    /// PII: read to be ignored, never stored or logged.
    #[serde(default)]
    #[allow(dead_code)]
    candidate_email: Option<String>,
}

impl std::fmt::Debug for ResponseErrorRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseErrorRequest")
            .field("api_call", &self.api_call)
            .field("errors", &self.errors.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::Timestamp;
    use crate::domain::{AssessmentId, PackageRef, Summary, TenantId};

    fn assessment(status: Status, label: Option<&str>, summary: Option<Summary>) -> Assessment {
        let p = PackageRef::parse("acme/basic").expect("ref");
        Assessment {
            id: AssessmentId::new(),
            tenant_id: TenantId::parse("t").expect("id"),
            vendor_id: p.vendor.clone(),
            package_id: p.package.clone(),
            assessment_type_id: p.type_id(),
            application_id: "greenhouse-url:https://x".into(),
            status,
            status_label: label.map(str::to_owned),
            vendor_reference: None,
            rejection_message: None,
            created_at_ms: Timestamp::EPOCH,
            updated_at_ms: Timestamp::EPOCH,
            last_update_ms: Timestamp::EPOCH,
            update_seq: 1,
            version: 1,
            ats: crate::domain::Ats::Greenhouse,
            ats_url: Some("https://x".into()),
            summary,
            ats_errors: 0,
            last_ats_error: None,
            candidate_id: None,
        }
    }

    #[test]
    fn only_a_completed_test_with_a_report_is_complete() {
        let done = Summary {
            label: "Clear".into(),
            report_url: Some("https://v.example/r".into()),
            score: Some(81.0),
            metadata: vec![("Notes".into(), FieldValue::Text("ok".into()))],
        };
        let r = TestStatusResponse::of(&assessment(Status::Completed, Some("Clear"), Some(done)));
        assert_eq!(r.partner_status, COMPLETE);
        assert_eq!(
            r.partner_profile_url.as_deref(),
            Some("https://v.example/r")
        );
        assert_eq!(r.partner_score, Some(81.0));
        let no_report = Summary {
            label: "Clear".into(),
            report_url: None,
            score: None,
            metadata: vec![],
        };
        let r = TestStatusResponse::of(&assessment(
            Status::Completed,
            Some("Clear"),
            Some(no_report),
        ));
        assert_ne!(r.partner_status, COMPLETE, "complete needs the profile URL");
        for (status, label, want) in [
            (Status::Ordering, None, labels::QUEUED),
            (Status::Ordered, Some(labels::STARTED), labels::STARTED),
            (
                Status::InProgress,
                Some("Awaiting consent"),
                "Awaiting consent",
            ),
            (Status::Rejected, None, labels::NOT_ACCEPTED),
        ] {
            let r = TestStatusResponse::of(&assessment(status, label, None));
            assert_eq!(r.partner_status, want);
            assert_eq!((r.partner_profile_url, r.partner_score), (None, None));
        }
    }

    #[test]
    fn the_application_id_comes_from_the_profile_url_when_it_has_one() {
        let req = |profile: &str| -> SendTestRequest {
            serde_json::from_value(serde_json::json!({
                "partner_test_id": "x", "url": "https://g/1",
                "candidate": {"first_name": "A", "last_name": "B", "email": "a@b.example",
                              "greenhouse_profile_url": profile}
            }))
            .expect("parses")
        };
        assert_eq!(
            req("https://app.greenhouse.io/people/17681532?application_id=26234709")
                .application_id()
                .as_deref(),
            Some("26234709")
        );
        assert_eq!(
            req("https://app.greenhouse.io/people/17681532").application_id(),
            None
        );
        assert_eq!(
            req("https://app.greenhouse.io/people/1?application_id=").application_id(),
            None
        );
    }
}
