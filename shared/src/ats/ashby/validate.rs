//! What a parsed `assessment.start` must hold before the hub acts on it, split by who can fix it.
//!
//! - Ashby's side of the contract (ids it always has, sane sizes): a 400 naming the field, since
//!   only Ashby's engineers could change it.
//! - What a recruiter can fix in Ashby (the candidate's email address): a 422, whose message Ashby
//!   shows the recruiter as it is, so it says what to do. It never quotes the candidate's data.
//!
//! `application.status` is not checked: the hub does not act on it, and a status Ashby adds later
//! must not stop starts.

use super::StartRequest;
use crate::error::ApiError;

/// Longest value of any one field; real ones are far shorter.
const MAX_FIELD: usize = 2048;

/// RFC 5321's limits on an address that can receive mail.
const MAX_EMAIL: usize = 254;
const MAX_LOCAL_PART: usize = 64;

impl StartRequest {
    /// `Ok` if the hub can order this assessment; otherwise the answer for Ashby.
    pub fn validate(&self) -> Result<(), ApiError> {
        let c = &self.candidate;
        let fields = [
            ("candidate.ashby_id", &c.ashby_id, true),
            ("candidate.first_name", &c.first_name, false),
            ("candidate.last_name", &c.last_name, false),
            ("candidate.email", &c.email, false),
            ("candidate.ashby_profile_url", &c.ashby_profile_url, false),
            ("application.ashby_id", &self.application.ashby_id, true),
            ("application.status", &self.application.status, false),
            ("job.ashby_id", &self.job.ashby_id, true),
            ("job.name", &self.job.name, false),
            ("job.ashby_job_url", &self.job.ashby_job_url, false),
        ];
        for (name, value, required) in fields {
            if required && value.trim().is_empty() {
                return Err(ApiError::bad_request(format!("{name} must not be empty")));
            }
            if value.len() > MAX_FIELD {
                return Err(ApiError::bad_request(format!(
                    "{name} is longer than {MAX_FIELD} bytes"
                )));
            }
        }
        if self
            .job
            .req_id
            .as_ref()
            .is_some_and(|r| r.len() > MAX_FIELD)
        {
            return Err(ApiError::bad_request(format!(
                "job.req_id is longer than {MAX_FIELD} bytes"
            )));
        }
        if c.email.trim().is_empty() {
            return Err(ApiError::Unprocessable {
                code: "candidate_email_missing",
                message: "This candidate has no email address; add one in Ashby and start \
                          again."
                    .into(),
            });
        }
        if !is_email_address(&c.email) {
            return Err(ApiError::Unprocessable {
                code: "candidate_email_invalid",
                message: "This candidate's email address is not a valid email address; correct \
                          it in Ashby and start again."
                    .into(),
            });
        }
        Ok(())
    }
}

/// Whether `s` can be a deliverable address: `local@domain`, no spaces or control characters,
/// a domain of dot-separated non-empty labels with at least one dot, within RFC 5321's lengths.
/// Deliberately lenient otherwise (internationalised addresses pass): it catches what a person
/// typed in the wrong field ("n/a", "ada at example.com", "ada@example"), not every RFC corner.
pub(crate) fn is_email_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    s.len() <= MAX_EMAIL
        && !local.is_empty()
        && local.len() <= MAX_LOCAL_PART
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && !domain.contains(['@', '(', ')', ',', ';', ':', '<', '>', '"', '\\'])
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(email: &str) -> StartRequest {
        let body = serde_json::json!({
            "assessment_type_id": "6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10",
            "candidate": {"ashby_id": "c", "first_name": "Ada", "last_name": "Lovelace",
                          "email": email, "ashby_profile_url": "https://app.ashbyhq.com/c"},
            "application": {"ashby_id": "app", "status": "Active"},
            "job": {"ashby_id": "j", "name": "Eng", "ashby_job_url": "https://app.ashbyhq.com/j"}
        });
        serde_json::from_value(body).expect("valid start")
    }

    #[test]
    fn ordinary_and_international_addresses_pass() {
        for ok in [
            "ada@example.com",
            "ada.lovelace+jobs@mail.example.co.uk",
            "o'brien@example.ie",
            "josé@exämple.com",
        ] {
            assert!(start(ok).validate().is_ok(), "{ok}");
        }
    }

    #[test]
    fn a_missing_email_is_a_422_asking_the_recruiter_to_add_one() {
        for email in ["", "   "] {
            let e = start(email).validate().expect_err("no email");
            assert_eq!(e.status(), 422);
            assert_eq!(
                e.to_string(),
                "This candidate has no email address; add one in Ashby and start again."
            );
        }
    }

    #[test]
    fn a_malformed_email_is_a_422_that_does_not_quote_it() {
        for bad in [
            "n/a",
            "ada at example.com",
            "ada@",
            "@example.com",
            "ada@example",
            "ada@example..com",
            "ada@.example.com",
            "ada lovelace@example.com",
            " ada@example.com",
            "ada@exa mple.com",
            "ada@example.com\n",
            "ada@(example).com",
        ] {
            let e = start(bad).validate().expect_err(bad);
            assert_eq!(e.status(), 422, "{bad:?}");
            let msg = e.to_string();
            assert!(msg.contains("correct it in Ashby"), "{msg}");
            assert!(!msg.contains("ada") && !msg.contains("example"), "{msg}");
        }
        let long = format!("{}@example.com", "a".repeat(65));
        assert_eq!(start(&long).validate().expect_err("long").status(), 422);
    }

    #[test]
    fn ashby_side_problems_stay_a_400_naming_the_field() {
        let mut s = start("ada@example.com");
        s.application.ashby_id = " ".into();
        let e = s.validate().expect_err("empty id");
        assert_eq!(e.status(), 400);
        assert_eq!(e.to_string(), "application.ashby_id must not be empty");
        // A contract violation is reported before anything the recruiter could fix.
        let mut s = start("");
        s.job.name = "x".repeat(MAX_FIELD + 1);
        let e = s.validate().expect_err("oversized");
        assert_eq!(e.status(), 400);
        assert_eq!(e.to_string(), "job.name is longer than 2048 bytes");
    }

    #[test]
    fn any_application_status_is_accepted() {
        let mut s = start("ada@example.com");
        s.application.status = "Interviewing".into();
        assert!(s.validate().is_ok());
    }
}
