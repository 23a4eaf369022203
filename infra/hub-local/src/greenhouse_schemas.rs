//! Checks JSON bodies against Greenhouse's assessment-partner schemas
//! (`../shared/greenhouse/schemas.json`: one `$defs` entry per body).

use anyhow::{Context, anyhow};
use serde_json::{Value, json};

/// A copy of `../shared/greenhouse/schemas.json`, so the local hub runs from a bare clone. A test
/// asserts the copy is identical to the ground truth.
pub const EMBEDDED_SCHEMAS: &str = include_str!("../greenhouse-schemas.json");

/// The bodies `schemas.json` defines.
pub const LIST_TESTS_RESPONSE: &str = "ListTestsResponse";
pub const SEND_TEST_REQUEST: &str = "SendTestRequest";
pub const SEND_TEST_RESPONSE: &str = "SendTestResponse";
pub const TEST_STATUS_RESPONSE: &str = "TestStatusResponse";
pub const RESPONSE_ERROR_REQUEST: &str = "ResponseErrorRequest";

pub struct GreenhouseSchemas {
    defs: Value,
}

impl GreenhouseSchemas {
    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let doc: Value = serde_json::from_str(text).context("parsing schemas.json")?;
        let defs = doc
            .get("$defs")
            .cloned()
            .ok_or_else(|| anyhow!("schemas.json has no $defs"))?;
        Ok(Self { defs })
    }

    pub fn embedded() -> anyhow::Result<Self> {
        Self::parse(EMBEDDED_SCHEMAS)
    }

    /// Validates `instance` against `#/$defs/<name>`; every violation, or `Ok`.
    pub fn check(&self, name: &str, instance: &Value) -> Result<(), Vec<String>> {
        if self.defs.get(name).is_none() {
            return Err(vec![format!("schemas.json has no {name}")]);
        }
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/$defs/{name}"),
            "$defs": self.defs,
        });
        let validator = jsonschema::options()
            .build(&root)
            .map_err(|e| vec![format!("schema {name} does not compile: {e}")])?;
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schemas_catch_what_greenhouse_would_refuse() {
        let s = GreenhouseSchemas::embedded().expect("schemas");
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
