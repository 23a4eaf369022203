//! One error type for every entry point and one mapping to HTTP. 4xx bodies name the problem;
//! 5xx bodies are opaque and the detail goes to the log (which never carries PII or secrets).
//! Every error body is Ashby's `ErrorResponse` envelope plus a top-level `message`.

use http::StatusCode;
use lambda_http::{Body, Response};
use serde::Serialize;

pub use crate::json::describe_json_error;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("missing or invalid credentials")]
    Unauthorized,
    /// A vendor callback whose signature did not verify; the reason helps the vendor's developers
    /// tell clock skew from a wrong secret and reveals nothing about the secret.
    #[error("{0}")]
    BadSignature(&'static str),
    #[error("{0}")]
    BadRequest(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    #[error("method not allowed")]
    MethodNotAllowed,
    /// 422: a message Ashby shows to the recruiter as it is.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    /// A dependency (vendor, Ashby, the table) is down or throttling: worth retrying later.
    #[error("{message}")]
    Unavailable {
        status: StatusCode,
        code: &'static str,
        message: String,
        /// Logged, never answered.
        detail: String,
    },
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        Self::BadRequest(msg.into())
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized | Self::BadSignature(_) => StatusCode::UNAUTHORIZED,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Unprocessable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unavailable { status, .. } => *status,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::BadSignature(_) => "invalid_signature",
            Self::BadRequest(_) => "invalid_input",
            Self::PayloadTooLarge(_) => "payload_too_large",
            Self::NotFound { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::Unavailable { code, .. } => code,
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The HTTP response; logs what the caller is not told.
    pub fn into_response(self, request_id: Option<&str>) -> Response<Body> {
        let status = self.status();
        match &self {
            Self::Internal(e) => tracing::error!(error = format!("{e:#}"), "request failed"),
            Self::Unavailable { detail, code, .. } => {
                tracing::warn!(code, detail = detail.as_str(), "dependency unavailable")
            }
            other => tracing::info!(
                code = other.code(),
                status = status.as_u16(),
                "request refused"
            ),
        }
        let message = match &self {
            Self::Internal(_) => "The hub hit an internal error; please try again.".to_owned(),
            other => other.to_string(),
        };
        json_response(
            status,
            &ErrorBody::new(self.code(), message, request_id.map(str::to_owned)),
        )
    }
}

impl From<crate::ports::StoreError> for ApiError {
    fn from(e: crate::ports::StoreError) -> Self {
        match e {
            crate::ports::StoreError::Unavailable(detail) => Self::Unavailable {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "storage_unavailable",
                message: "The hub's storage is temporarily unavailable; please try again.".into(),
                detail,
            },
            crate::ports::StoreError::Corrupt(detail) => {
                Self::Internal(anyhow::anyhow!("corrupt record: {detail}"))
            }
        }
    }
}

impl From<crate::secrets::SecretError> for ApiError {
    fn from(e: crate::secrets::SecretError) -> Self {
        Self::Unavailable {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "secrets_unavailable",
            message: "The hub could not read its credentials; please try again.".into(),
            detail: e.to_string(),
        }
    }
}

/// Ashby's `ErrorResponse` envelope, with a top-level `message` as well, so that one error body
/// satisfies both the envelope (list, cancel) and start's `{ "message" }` custom-error schema.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub success: bool,
    pub message: String,
    pub errors: Vec<String>,
    #[serde(rename = "errorInfo")]
    pub error_info: ErrorInfo,
}

#[derive(Debug, Serialize)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl ErrorBody {
    pub fn new(code: &str, message: impl Into<String>, request_id: Option<String>) -> Self {
        let message = message.into();
        Self {
            success: false,
            errors: vec![code.to_owned()],
            error_info: ErrorInfo {
                code: code.to_owned(),
                message: message.clone(),
                request_id,
            },
            message,
        }
    }
}

/// A JSON response with the right content type. Serialising our own types cannot fail; if it
/// somehow did, the caller still gets a JSON 500 rather than a panic.
pub fn json_response(status: StatusCode, body: &impl Serialize) -> Response<Body> {
    let (status, text) = match serde_json::to_string(body) {
        Ok(t) => (status, t),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"success":false,"message":"internal error","errors":["internal_error"],"errorInfo":{"code":"internal_error","message":"internal error"}}"#.to_owned(),
        ),
    };
    let mut resp = Response::new(Body::from(text));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct T {
        a: Inner,
    }
    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        email: String,
        n: u32,
        id: uuid::Uuid,
    }

    fn err(s: &str) -> String {
        let de = &mut serde_json::Deserializer::from_str(s);
        describe_json_error(&serde_path_to_error::deserialize::<_, T>(de).expect_err("must fail"))
    }

    #[test]
    fn parse_errors_name_the_field_and_hide_the_value() {
        assert_eq!(err(r#"{"a":{"n":1}}"#), "a.email is required");
        let m = err(r#"{"a":{"email":"ada@example.com","n":"ada@example.com"}}"#);
        assert!(m.starts_with("a.n must be"), "{m}");
        assert!(!m.contains("ada@"), "{m}");
        let m = err(r#"{"a":{"email":"x","n":1,"id":"ada@example.com"}}"#);
        assert_eq!(m, "a.id must be a UUID");
        assert!(err(r#"{"a":"#).contains("not valid JSON"));
        assert_eq!(err("{}"), "a is required");
    }

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Rusty {
        n: u32,
        pair: (String, String),
        kind: Kind,
    }
    #[derive(Debug, serde::Deserialize)]
    enum Kind {
        Hired,
        Archived,
        Active,
    }

    fn rusty(s: &str) -> String {
        describe_json_error(&crate::json::from_slice::<Rusty>(s.as_bytes()).expect_err("fails"))
    }

    #[test]
    fn expectations_are_worded_in_json_terms_never_rust_ones() {
        let ok = r#""pair":["a","b"],"kind":"Hired""#;
        let whole = "n must be a whole number from 0 to 4294967295";
        assert_eq!(rusty(&format!(r#"{{"n":-1,{ok}}}"#)), whole);
        assert_eq!(rusty(&format!(r#"{{"n":"x",{ok}}}"#)), whole);
        assert_eq!(
            rusty(r#"{"n":1,"pair":["a","b"],"kind":"Lead"}"#),
            "kind must be one of Hired, Archived, Active"
        );
        assert_eq!(
            rusty(r#"{"n":1,"pair":["a","b"],"kind":1}"#),
            "kind must be one of Hired, Archived, Active"
        );
        assert_eq!(
            rusty(r#"{"n":1,"pair":{},"kind":"Hired"}"#),
            "pair must be an array"
        );
        assert_eq!(
            rusty(r#"{"n":1,"pair":["a"],"kind":"Hired"}"#),
            "pair is invalid"
        );
        assert_eq!(rusty("[]"), "request body must be a JSON object");
    }

    #[test]
    fn internal_errors_are_opaque() {
        let r = ApiError::Internal(anyhow::anyhow!("table hub-prod exploded")).into_response(None);
        assert_eq!(r.status(), 500);
        let Body::Text(t) = r.body() else {
            panic!("text body expected")
        };
        assert!(!t.contains("exploded"));
    }
}
