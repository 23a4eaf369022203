//! Checks JSON bodies against Ashby's published OpenAPI document: the JSON-schema part with
//! formats enforced, plus the rules Ashby states only in prose for `assessment.update`.

use std::collections::HashSet;

use anyhow::{Context, anyhow};
use serde_json::{Value, json};

/// A copy of `../shared/ashby/assessments-openapi.json`, so the local hub runs from a bare clone.
/// A test asserts the copy is identical to the ground truth.
pub const EMBEDDED_SPEC: &str = include_str!("../ashby-openapi.json");

/// A copy of `../shared/ashby/extras-schemas.json` (the Ashby bodies beyond assessments: key
/// checks and file uploads); a test asserts it is identical to the ground truth.
pub const EMBEDDED_EXTRAS: &str = include_str!("../ashby-extras-schemas.json");

pub struct OpenApi {
    components: Value,
}

/// A JSON-schema document with one schema per body under `$defs`: Ashby's
/// `extras-schemas.json`, Greenhouse's `schemas.json`.
pub struct DefsSchemas {
    /// The file's name, for messages.
    file: &'static str,
    defs: Value,
}

/// The Ashby bodies beyond assessments (key checks, file uploads).
pub type Extras = DefsSchemas;

impl DefsSchemas {
    /// Parses `text`, the contents of `file`.
    pub fn parse_named(file: &'static str, text: &str) -> anyhow::Result<Self> {
        let doc: Value = serde_json::from_str(text).with_context(|| format!("parsing {file}"))?;
        let defs = doc
            .get("$defs")
            .cloned()
            .ok_or_else(|| anyhow!("{file} has no $defs"))?;
        Ok(Self { file, defs })
    }

    /// The embedded copy of Ashby's `extras-schemas.json`.
    pub fn embedded() -> anyhow::Result<Self> {
        Self::parse_named("extras-schemas.json", EMBEDDED_EXTRAS)
    }

    /// Validates `instance` against `#/$defs/<schema>`. Returns every violation.
    pub fn check(&self, schema: &str, instance: &Value) -> Result<(), Vec<String>> {
        if self.defs.get(schema).is_none() {
            return Err(vec![format!("{} has no schema {schema}", self.file)]);
        }
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/$defs/{schema}"),
            "$defs": self.defs,
        });
        validate(&root, schema, instance)
    }
}

/// Every violation of `instance` against the schema `root`.
fn validate(root: &Value, schema: &str, instance: &Value) -> Result<(), Vec<String>> {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(root)
        .map_err(|e| vec![format!("schema {schema} does not compile: {e}")])?;
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

impl OpenApi {
    pub fn parse(spec: &str) -> anyhow::Result<Self> {
        let doc: Value = serde_json::from_str(spec).context("parsing the OpenAPI document")?;
        let components = doc
            .get("components")
            .cloned()
            .ok_or_else(|| anyhow!("OpenAPI document has no components"))?;
        Ok(Self { components })
    }

    pub fn embedded() -> anyhow::Result<Self> {
        Self::parse(EMBEDDED_SPEC)
    }

    /// Validates `instance` against `#/components/schemas/<schema>`. Returns every violation.
    pub fn check(&self, schema: &str, instance: &Value) -> Result<(), Vec<String>> {
        if self
            .components
            .pointer(&format!("/schemas/{schema}"))
            .is_none()
        {
            return Err(vec![format!("the spec has no schema {schema}")]);
        }
        let root = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$ref": format!("#/components/schemas/{schema}"),
            "components": self.components,
        });
        validate(&root, schema, instance)
    }

    /// `AssessmentUpdateRequest` plus its prose rules: `assessment_status` unless
    /// `cancelled_reason`; `assessment_profile_url` of type `url` whenever `assessment_result` is
    /// set; unique identifiers across all data fields.
    pub fn check_update(&self, body: &Value) -> Result<(), Vec<String>> {
        self.check("AssessmentUpdateRequest", body)?;
        let mut errors = Vec::new();
        let has = |k: &str| body.get(k).is_some();
        if !has("assessment_status") && !has("cancelled_reason") {
            errors.push("assessment_status is required unless cancelled_reason is set".into());
        }
        if has("assessment_result") {
            match body.pointer("/assessment_profile_url/type") {
                Some(Value::String(t)) if t == "url" => {}
                _ => errors.push(
                    "assessment_profile_url of type url is required with assessment_result".into(),
                ),
            }
        }
        let mut seen = HashSet::new();
        let fields = [
            "assessment_status",
            "assessment_result",
            "assessment_profile_url",
            "cancelled_reason",
        ]
        .iter()
        .filter_map(|k| body.get(*k))
        .chain(
            body.get("metadata")
                .and_then(Value::as_array)
                .into_iter()
                .flatten(),
        );
        for f in fields {
            if let Some(id) = f.get("identifier").and_then(Value::as_str)
                && !seen.insert(id.to_owned())
            {
                errors.push(format!("identifier {id:?} is used twice"));
            }
        }
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
    fn a_valid_update_passes_and_broken_ones_are_caught() {
        let api = OpenApi::embedded().expect("spec");
        let ok = json!({"assessment_id":"6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10","timestamp":1,
            "assessment_status":{"identifier":"status","label":"Status","type":"string","value":"Started"}});
        assert_eq!(api.check_update(&ok), Ok(()));
        let bad_uuid = json!({"assessment_id":"nope","timestamp":1,
            "assessment_status":{"identifier":"status","label":"Status","type":"string","value":"x"}});
        assert!(api.check_update(&bad_uuid).is_err());
        let no_status =
            json!({"assessment_id":"6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10","timestamp":1});
        assert!(api.check_update(&no_status).is_err());
        let result_without_url = json!({"assessment_id":"6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10","timestamp":1,
            "assessment_status":{"identifier":"status","label":"S","type":"string","value":"x"},
            "assessment_result":{"identifier":"result","label":"R","type":"numeric_score","value":1}});
        assert!(api.check_update(&result_without_url).is_err());
        let bad_type = json!({"assessment_id":"6a2f41a3-c54c-4f5e-a8e5-2a1c1d8e7d10","timestamp":1,
            "assessment_status":{"identifier":"status","label":"S","type":"colour","value":"x"}});
        assert!(api.check_update(&bad_type).is_err());
    }
}
