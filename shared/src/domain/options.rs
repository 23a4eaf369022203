//! Package options: the inputs a vendor's package needs from the recruiter (a work location, a
//! tier, a language). A vendor declares them per package; the ATS shows them as custom fields
//! (Ashby's `assessment.customField.list`) under ids namespaced by vendor and package, and sends
//! the recruiter's values back with the start. Here: the declaration, the namespaced ids, and the
//! check of a start's values against the chosen package's options. No I/O.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::PackageRef;
use super::ids::{InvalidId, parse_slug, slug};

slug!(
    /// An option's id as its vendor declared it: what the vendor's order carries.
    OptionId,
    "option id"
);

/// The kinds of input, as Ashby names its custom-field types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OptionKind {
    String,
    LongText,
    Email,
    Phone,
    Url,
    Number,
    Score,
    Currency,
    Boolean,
    Date,
    DateRange,
    ValueSelect,
    MultiValueSelect,
    SocialLink,
    Location,
}

impl OptionKind {
    /// Every kind, for messages that list them.
    pub const ALL: [OptionKind; 15] = [
        Self::String,
        Self::LongText,
        Self::Email,
        Self::Phone,
        Self::Url,
        Self::Number,
        Self::Score,
        Self::Currency,
        Self::Boolean,
        Self::Date,
        Self::DateRange,
        Self::ValueSelect,
        Self::MultiValueSelect,
        Self::SocialLink,
        Self::Location,
    ];

    fn is_select(self) -> bool {
        matches!(self, Self::ValueSelect | Self::MultiValueSelect)
    }
}

/// One choice of a select option: `key` is what the ATS sends back, `value` the label shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PossibleValue {
    pub key: String,
    pub value: String,
}

/// One input a package needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageOption {
    pub id: OptionId,
    /// Shown to the recruiter, e.g. "Work location".
    pub name: String,
    #[serde(rename = "type")]
    pub kind: OptionKind,
    #[serde(default)]
    pub required: bool,
    /// The choices of a `ValueSelect` or `MultiValueSelect` (required for those, empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub possible_values: Vec<PossibleValue>,
}

const MAX_OPTIONS: usize = 20;
const MAX_VALUES: usize = 100;
const MAX_NAME: usize = 100;
const MAX_TEXT_VALUE: usize = 2000;

/// Checks a package's declared options; the message names the problem, for the operator.
pub fn check_options(options: &[PackageOption]) -> Result<(), InvalidId> {
    if options.len() > MAX_OPTIONS {
        return Err(InvalidId(format!(
            "a package may declare at most {MAX_OPTIONS} options"
        )));
    }
    for (i, o) in options.iter().enumerate() {
        if options[..i].iter().any(|p| p.id == o.id) {
            return Err(InvalidId(format!("option id {} is declared twice", o.id)));
        }
        let name = o.name.trim();
        if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control)
        {
            return Err(InvalidId(format!(
                "option {}: name must be 1-{MAX_NAME} printable characters",
                o.id
            )));
        }
        match (o.kind.is_select(), o.possible_values.is_empty()) {
            (true, true) => {
                return Err(InvalidId(format!(
                    "option {}: a {:?} needs possible_values",
                    o.id, o.kind
                )));
            }
            (false, false) => {
                return Err(InvalidId(format!(
                    "option {}: possible_values are only for ValueSelect and MultiValueSelect",
                    o.id
                )));
            }
            _ => {}
        }
        if o.possible_values.len() > MAX_VALUES {
            return Err(InvalidId(format!(
                "option {}: at most {MAX_VALUES} possible_values",
                o.id
            )));
        }
        for (j, v) in o.possible_values.iter().enumerate() {
            let bad = |s: &str| {
                s.trim().is_empty()
                    || s.chars().count() > MAX_NAME
                    || s.chars().any(char::is_control)
            };
            if bad(&v.key) || bad(&v.value) {
                return Err(InvalidId(format!(
                    "option {}: each possible value needs a key and a value of 1-{MAX_NAME} \
                     printable characters",
                    o.id
                )));
            }
            if o.possible_values[..j].iter().any(|w| w.key == v.key) {
                return Err(InvalidId(format!(
                    "option {}: possible value key {:?} is declared twice",
                    o.id, v.key
                )));
            }
        }
    }
    Ok(())
}

/// The id the ATS knows an option by: `<vendor>.<package>.<option>`. Slugs hold no `.`, so two
/// packages' options never collide, and the id depends only on names the operator chose: the
/// same in every deployment.
pub fn field_id(package: &PackageRef, option: &OptionId) -> String {
    format!("{}.{}.{}", package.vendor, package.package, option)
}

/// The values a start gives for the chosen package's options, keyed by the vendor's option ids;
/// only options that were given.
pub type OptionValues = BTreeMap<OptionId, Value>;

/// Why a start's values do not fit the package: worded for the recruiter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OptionProblem(pub String);

/// Checks the values a start carries (`given`, keyed by namespaced field id: what the ATS sends)
/// against `options` of `package`, and returns them keyed by the vendor's option ids. Values for
/// other packages' options, or for ids the hub does not know, are ignored. `null` or an empty
/// string is "not given".
pub fn check_values(
    package: &PackageRef,
    options: &[PackageOption],
    given: &serde_json::Map<String, Value>,
) -> Result<OptionValues, OptionProblem> {
    let mut values = OptionValues::new();
    for o in options {
        let value = given
            .get(&field_id(package, &o.id))
            .filter(|v| !is_blank(v));
        let Some(value) = value else {
            if o.required {
                return Err(OptionProblem(missing(o)));
            }
            continue;
        };
        let value = normalise(o, value)?;
        values.insert(o.id.clone(), value);
    }
    Ok(values)
}

fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn missing(o: &PackageOption) -> String {
    let name = lower_first(&o.name);
    match o.kind {
        OptionKind::ValueSelect => format!("Choose a {name}."),
        OptionKind::MultiValueSelect => format!("Choose at least one {name}."),
        OptionKind::Boolean => format!("Answer \"{}\".", o.name),
        _ => format!("Enter a {name}."),
    }
}

/// "Work location" → "work location"; an acronym ("URL of …") stays as it is.
fn lower_first(s: &str) -> String {
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(a), Some(b)) if a.is_uppercase() && !b.is_uppercase() => a
            .to_lowercase()
            .chain(std::iter::once(b))
            .chain(chars)
            .collect(),
        _ => s.to_owned(),
    }
}

/// The value in the encoding the vendor protocol documents for the option's kind.
fn normalise(o: &PackageOption, v: &Value) -> Result<Value, OptionProblem> {
    let wrong = |what: &str| OptionProblem(format!("{} must be {what}.", o.name));
    let key_of = |v: &Value| -> Result<String, OptionProblem> {
        let key = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return Err(wrong("one of the listed choices")),
        };
        if o.possible_values.iter().any(|p| p.key == key) {
            Ok(key)
        } else {
            Err(OptionProblem(format!(
                "Choose a {} from the list: {}.",
                lower_first(&o.name),
                o.possible_values
                    .iter()
                    .map(|p| p.value.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    Ok(match o.kind {
        OptionKind::ValueSelect => Value::String(key_of(v)?),
        OptionKind::MultiValueSelect => {
            let items: Vec<Value> = match v {
                Value::Array(items) => items.clone(),
                single => vec![single.clone()],
            };
            let mut keys = Vec::new();
            for item in &items {
                let key = key_of(item)?;
                if !keys.contains(&key) {
                    keys.push(key);
                }
            }
            Value::Array(keys.into_iter().map(Value::String).collect())
        }
        OptionKind::Number | OptionKind::Score | OptionKind::Currency => match v {
            Value::Number(_) => v.clone(),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(f) if f.is_finite() => serde_json::Number::from_f64(f)
                    .map(|n| {
                        // A whole number stays an integer on the wire.
                        match s.trim().parse::<i64>() {
                            Ok(i) => Value::Number(i.into()),
                            Err(_) => Value::Number(n),
                        }
                    })
                    .ok_or_else(|| wrong("a number"))?,
                _ => return Err(wrong("a number")),
            },
            _ => return Err(wrong("a number")),
        },
        OptionKind::Boolean => match v {
            Value::Bool(_) => v.clone(),
            Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            _ => return Err(wrong("yes or no")),
        },
        OptionKind::Date => {
            let s = text(v).ok_or_else(|| wrong("a date"))?;
            if !looks_like_date(&s) {
                return Err(wrong("a date"));
            }
            Value::String(s)
        }
        OptionKind::Email => {
            let s = text(v).ok_or_else(|| wrong("an email address"))?;
            let ok = s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty() && domain.contains('.') && !s.contains(char::is_whitespace)
            });
            if !ok {
                return Err(wrong("an email address"));
            }
            Value::String(s)
        }
        OptionKind::Url | OptionKind::SocialLink => {
            let s = text(v).ok_or_else(|| wrong("a web address"))?;
            let ok = url::Url::parse(&s).is_ok_and(|u| matches!(u.scheme(), "http" | "https"));
            if !ok {
                return Err(wrong("a web address (https://…)"));
            }
            Value::String(s)
        }
        OptionKind::String | OptionKind::LongText | OptionKind::Phone => {
            Value::String(text(v).ok_or_else(|| wrong("text"))?)
        }
        // Ashby does not document these encodings: passed on as sent, within a size bound.
        OptionKind::DateRange | OptionKind::Location => {
            if v.to_string().len() > MAX_TEXT_VALUE {
                return Err(wrong(&format!("at most {MAX_TEXT_VALUE} characters")));
            }
            v.clone()
        }
    })
}

/// A text value: a string within the size bound, with no control characters but newlines and
/// tabs.
fn text(v: &Value) -> Option<String> {
    let s = v.as_str()?.trim();
    (s.chars().count() <= MAX_TEXT_VALUE
        && !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t'))
    .then(|| s.to_owned())
}

/// `YYYY-MM-DD`, optionally followed by a time (`T…`), with a plausible month and day.
fn looks_like_date(s: &str) -> bool {
    let date = s.split('T').next().unwrap_or("");
    let parts: Vec<&str> = date.split('-').collect();
    let [y, m, d] = parts.as_slice() else {
        return false;
    };
    let num = |p: &str, len: usize| p.len() == len && p.bytes().all(|b| b.is_ascii_digit());
    if !(num(y, 4) && num(m, 2) && num(d, 2)) {
        return false;
    }
    let (m, d) = (m.parse::<u32>().unwrap_or(0), d.parse::<u32>().unwrap_or(0));
    (1..=12).contains(&m) && (1..=31).contains(&d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn package() -> PackageRef {
        PackageRef::parse("acme/criminal").expect("ref")
    }

    fn options() -> Vec<PackageOption> {
        serde_json::from_value(json!([
            {"id": "work_location", "name": "Work location", "type": "ValueSelect", "required": true,
             "possible_values": [{"key": "us", "value": "United States"}, {"key": "uk", "value": "United Kingdom"}]},
            {"id": "note", "name": "Note for the vendor", "type": "LongText"},
            {"id": "seats", "name": "Seats", "type": "Number"},
            {"id": "langs", "name": "Languages", "type": "MultiValueSelect",
             "possible_values": [{"key": "en", "value": "English"}, {"key": "fr", "value": "French"}]}
        ]))
        .expect("options")
    }

    fn given(v: Value) -> serde_json::Map<String, Value> {
        v.as_object().expect("object").clone()
    }

    #[test]
    fn ids_are_namespaced_by_vendor_and_package() {
        let o = OptionId::parse("work_location").expect("id");
        assert_eq!(field_id(&package(), &o), "acme.criminal.work_location");
        let other = PackageRef::parse("acme/drug").expect("ref");
        assert_ne!(field_id(&package(), &o), field_id(&other, &o));
    }

    #[test]
    fn a_missing_required_option_is_worded_for_the_recruiter() {
        let e = check_values(&package(), &options(), &given(json!({}))).expect_err("missing");
        assert_eq!(e.0, "Choose a work location.");
        let e = check_values(
            &package(),
            &options(),
            &given(json!({"acme.criminal.work_location": ""})),
        )
        .expect_err("blank");
        assert_eq!(e.0, "Choose a work location.");
    }

    #[test]
    fn values_are_keyed_by_the_vendors_ids_and_other_packages_are_ignored() {
        let v = check_values(
            &package(),
            &options(),
            &given(json!({
                "acme.criminal.work_location": "uk",
                "acme.criminal.seats": "3",
                "acme.criminal.langs": ["fr", "en", "fr"],
                "acme.drug.work_location": "nowhere",
                "unknown": 1
            })),
        )
        .expect("valid");
        assert_eq!(
            serde_json::to_value(&v).expect("json"),
            json!({"work_location": "uk", "seats": 3, "langs": ["fr", "en"]})
        );
    }

    #[test]
    fn a_value_outside_the_choices_names_them() {
        let e = check_values(
            &package(),
            &options(),
            &given(json!({"acme.criminal.work_location": "mars"})),
        )
        .expect_err("outside");
        assert_eq!(
            e.0,
            "Choose a work location from the list: United States, United Kingdom."
        );
        let e = check_values(
            &package(),
            &options(),
            &given(json!({"acme.criminal.work_location": "us", "acme.criminal.seats": "many"})),
        )
        .expect_err("not a number");
        assert_eq!(e.0, "Seats must be a number.");
    }

    #[test]
    fn declarations_are_checked() {
        let mut o = options();
        o[0].possible_values.clear();
        assert!(check_options(&o).is_err());
        let mut o = options();
        o.push(o[1].clone());
        let e = check_options(&o).expect_err("a repeated id");
        assert!(e.0.contains("declared twice"));
        assert!(check_options(&options()).is_ok());
        let bad: Result<PackageOption, _> =
            serde_json::from_value(json!({"id": "x", "name": "X", "type": "Colour"}));
        assert!(bad.is_err());
    }

    #[test]
    fn dates_emails_and_urls_are_checked() {
        let opts: Vec<PackageOption> = serde_json::from_value(json!([
            {"id": "d", "name": "Start date", "type": "Date"},
            {"id": "e", "name": "Email", "type": "Email"},
            {"id": "u", "name": "Profile", "type": "Url"}
        ]))
        .expect("options");
        let p = package();
        assert!(check_values(&p, &opts, &given(json!({"acme.criminal.d": "2026-12-01"}))).is_ok());
        assert!(check_values(&p, &opts, &given(json!({"acme.criminal.d": "tomorrow"}))).is_err());
        assert!(check_values(&p, &opts, &given(json!({"acme.criminal.e": "a@b.example"}))).is_ok());
        assert!(check_values(&p, &opts, &given(json!({"acme.criminal.e": "nobody"}))).is_err());
        assert!(
            check_values(
                &p,
                &opts,
                &given(json!({"acme.criminal.u": "javascript:x"}))
            )
            .is_err()
        );
    }
}
