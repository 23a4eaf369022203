//! Checks JSON bodies against Greenhouse's assessment-partner schemas
//! (`../shared/greenhouse/schemas.json`: one `$defs` entry per body).

/// A copy of `../shared/greenhouse/schemas.json`, so the local hub runs from a bare clone. A test
/// asserts the copy is identical to the ground truth.
pub const EMBEDDED_SCHEMAS: &str = include_str!("../greenhouse-schemas.json");

/// The bodies `schemas.json` defines.
pub const LIST_TESTS_RESPONSE: &str = "ListTestsResponse";
pub const SEND_TEST_REQUEST: &str = "SendTestRequest";
pub const SEND_TEST_RESPONSE: &str = "SendTestResponse";
pub const TEST_STATUS_RESPONSE: &str = "TestStatusResponse";
pub const RESPONSE_ERROR_REQUEST: &str = "ResponseErrorRequest";

/// `schemas.json`'s bodies, checked like Ashby's extras (formats enforced).
pub type GreenhouseSchemas = crate::openapi::DefsSchemas;

/// The embedded copy of `schemas.json`.
pub fn embedded() -> anyhow::Result<GreenhouseSchemas> {
    parse(EMBEDDED_SCHEMAS)
}

/// `schemas.json` from `text` (the tests read the ground truth beside the repository).
pub fn parse(text: &str) -> anyhow::Result<GreenhouseSchemas> {
    GreenhouseSchemas::parse_named("schemas.json", text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_schemas_catch_what_greenhouse_would_refuse() {
        let s = embedded().expect("schemas");
        s.check(
            TEST_STATUS_RESPONSE,
            &json!({"partner_status":"complete","partner_profile_url":"https://x/r","partner_score":81,
                    "metadata":{"Notes":"ok","Passed":true}}),
        )
        .expect("the contract's example conforms");
        for bad in [
            json!({"partner_status":"complete"}),
            json!({"partner_status":"In progress","metadata":{"x":{"nested":1}}}),
            json!({"partner_status":""}),
        ] {
            assert!(s.check(TEST_STATUS_RESPONSE, &bad).is_err(), "{bad}");
        }
        assert!(
            s.check(LIST_TESTS_RESPONSE, &json!([{"partner_test_id": "1"}]))
                .is_err()
        );
    }
}
