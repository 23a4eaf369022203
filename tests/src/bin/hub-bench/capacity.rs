//! DynamoDB capacity units of recorded calls, by DynamoDB's published rules, from the sizes of
//! the items each call read or wrote (the emulator's own `ConsumedCapacity` is a constant, not a
//! measurement). Rules, from the DynamoDB developer guide ("Item sizes and formats", "Read/write
//! capacity mode", "Capacity management for transactions"):
//! - an item's size is the sum of its attribute names' and values' sizes (strings in UTF-8
//!   bytes, numbers about one byte per two significant digits plus one, binary in bytes, null and
//!   booleans one byte, lists and maps three bytes plus one per element plus their contents);
//! - a read is one unit per 4 KB (a Query per 4 KB of all the items it returns), half of that
//!   when eventually consistent, at least one (half) unit;
//! - a write is one unit per 1 KB of the larger of the item before and after, at least one;
//! - in a transaction, every part (`ConditionCheck` included) costs twice that;
//! - a write that adds, removes or moves an item in a global secondary index costs one more
//!   write per index entry written (here: the keys-only index `due`, entries far under 1 KB); a
//!   moved entry is a delete and a put.

use serde_json::Value;

use hub_tests::aws_proxy::AwsCall;

/// The size DynamoDB bills an item by, from its wire form (`{"attr": {"S": "..."}, ...}`).
pub fn item_size(item: &Value) -> u64 {
    item.as_object().map_or(0, |attrs| {
        attrs
            .iter()
            .map(|(name, value)| name.len() as u64 + value_size(value))
            .sum()
    })
}

fn value_size(value: &Value) -> u64 {
    let Some((kind, v)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" => v.as_str().map_or(0, |s| s.len() as u64),
        "N" => v.as_str().map_or(0, number_size),
        "B" => v.as_str().map_or(0, base64_len),
        "BOOL" | "NULL" => 1,
        "SS" => strings(v).map(|s| s.len() as u64).sum(),
        "NS" => strings(v).map(number_size).sum(),
        "BS" => strings(v).map(base64_len).sum(),
        "L" => {
            let items = v.as_array().map(Vec::as_slice).unwrap_or_default();
            3 + items.iter().map(|e| 1 + value_size(e)).sum::<u64>()
        }
        "M" => {
            3 + v.as_object().map_or(0, |m| {
                m.iter()
                    .map(|(k, e)| 1 + k.len() as u64 + value_size(e))
                    .sum()
            })
        }
        _ => 0,
    }
}

fn strings(v: &Value) -> impl Iterator<Item = &str> {
    v.as_array().into_iter().flatten().filter_map(Value::as_str)
}

/// One byte per two significant digits, plus one.
fn number_size(n: &str) -> u64 {
    let digits = n
        .trim_start_matches(['-', '+'])
        .split(['e', 'E'])
        .next()
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_digit)
        .collect::<String>();
    let significant = digits
        .trim_start_matches('0')
        .trim_end_matches('0')
        .len()
        .max(1);
    significant.div_ceil(2) as u64 + 1
}

fn base64_len(b64: &str) -> u64 {
    let padding = b64.chars().rev().take_while(|c| *c == '=').count();
    (b64.len() * 3 / 4).saturating_sub(padding) as u64
}

/// Read and write units of one call.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Units {
    pub read: f64,
    pub write: f64,
}

impl std::ops::AddAssign for Units {
    fn add_assign(&mut self, other: Self) {
        self.read += other.read;
        self.write += other.write;
    }
}

fn read_units(bytes: u64, consistent: bool) -> f64 {
    let units = bytes.div_ceil(4096).max(1) as f64;
    if consistent { units } else { units / 2.0 }
}

fn write_units(before: &Value, after: &Value) -> f64 {
    item_size(before)
        .max(item_size(after))
        .div_ceil(1024)
        .max(1) as f64
}

/// Index writes of one item write: the keys-only index holds the items with `gsi1pk`.
fn index_writes(before: &Value, after: &Value) -> f64 {
    let key = |item: &Value| {
        item.get("gsi1pk")
            .map(|pk| (pk.clone(), item.get("gsi1sk").cloned()))
    };
    match (key(before), key(after)) {
        (None, None) => 0.0,
        (Some(a), Some(b)) if a == b => 0.0,
        (Some(_), Some(_)) => 2.0,
        _ => 1.0,
    }
}

/// The units one recorded DynamoDB call consumed. Writes need the items the proxy read around
/// them ([`hub_tests::aws_proxy::AwsProxy::measure_items`]).
pub fn units(call: &AwsCall) -> Units {
    let consistent = call.body["ConsistentRead"].as_bool().unwrap_or(false);
    let response = call.response_json();
    let writes = |factor: f64| {
        call.items
            .iter()
            .map(|(before, after)| {
                factor * write_units(before, after) + index_writes(before, after)
            })
            .sum::<f64>()
    };
    match call.operation.as_str() {
        "dynamodb:GetItem" => Units {
            read: read_units(item_size(&response["Item"]), consistent),
            write: 0.0,
        },
        "dynamodb:Query" | "dynamodb:Scan" => {
            let bytes = response["Items"]
                .as_array()
                .into_iter()
                .flatten()
                .map(item_size)
                .sum();
            Units {
                read: read_units(bytes, consistent),
                write: 0.0,
            }
        }
        "dynamodb:TransactGetItems" => Units {
            read: response["Responses"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|r| 2.0 * read_units(item_size(&r["Item"]), true))
                .sum(),
            write: 0.0,
        },
        "dynamodb:PutItem" | "dynamodb:UpdateItem" | "dynamodb:DeleteItem" => Units {
            read: 0.0,
            write: writes(1.0),
        },
        "dynamodb:TransactWriteItems" => Units {
            read: 0.0,
            write: writes(2.0),
        },
        _ => Units::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sizes_follow_the_published_rules() {
        // Example from the developer guide's spirit: names count, strings in bytes.
        assert_eq!(item_size(&json!({"pk": {"S": "abc"}})), 2 + 3);
        assert_eq!(number_size("12345"), 4);
        assert_eq!(number_size("-0.001"), 2);
        assert_eq!(item_size(&json!({"ok": {"BOOL": true}})), 3);
        assert_eq!(
            item_size(&json!({"m": {"M": {"a": {"S": "xy"}}}})),
            1 + 3 + 1 + 1 + 2
        );
        assert_eq!(
            item_size(&json!({"l": {"L": [{"N": "1"}, {"NULL": true}]}})),
            // One byte per element, plus the element: `N` "1" is 2 bytes, `NULL` 1.
            1 + 3 + (1 + 2) + (1 + 1)
        );
    }

    #[test]
    fn units_round_up_per_kilobyte_and_double_in_transactions() {
        let small = json!({"pk": {"S": "a"}, "sk": {"S": "b"}});
        let big = json!({"pk": {"S": "a"}, "sk": {"S": "b"}, "x": {"S": "y".repeat(1500)}});
        assert_eq!(write_units(&Value::Null, &small), 1.0);
        assert_eq!(write_units(&big, &small), 2.0);
        assert_eq!(read_units(0, false), 0.5);
        assert_eq!(read_units(5000, true), 2.0);
        let due = json!({"gsi1pk": {"S": "DUE"}, "gsi1sk": {"S": "1"}});
        let moved = json!({"gsi1pk": {"S": "DUE"}, "gsi1sk": {"S": "2"}});
        assert_eq!(index_writes(&Value::Null, &due), 1.0);
        assert_eq!(index_writes(&due, &moved), 2.0);
        assert_eq!(index_writes(&due, &due), 0.0);
        assert_eq!(index_writes(&due, &Value::Null), 1.0);
    }
}
