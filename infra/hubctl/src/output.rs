//! What a command hands back: a human-readable text and a JSON document, of which `main` prints
//! exactly one on stdout. Errors are `Failure`s, printed on stderr with their exit code.

use hub::clock::Timestamp;
use std::fmt;

use aws_sdk_dynamodb::primitives::{DateTime, DateTimeFormat};
use serde_json::Value;

/// A finished command's output.
pub struct Report {
    pub text: String,
    pub json: Value,
}

/// Why a command did not do what was asked, as one sentence for the operator.
#[derive(Debug)]
pub enum Failure {
    /// The command line asks for something that cannot be done as written: exit code 2, as for
    /// the usage errors the argument parser reports.
    Usage(String),
    /// The command could not be carried out (unknown tenant, AWS refused, …): exit code 1.
    Failed(String),
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Self::Usage(message.into())
    }

    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => 2,
            Self::Failed(_) => 1,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(m) | Self::Failed(m) => f.write_str(m),
        }
    }
}

/// Left-aligned columns separated by two spaces, with a header row.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        padded.join("  ").trim_end().to_owned()
    };
    let mut out = vec![line(headers.to_vec())];
    out.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    out.join("\n")
}

/// A Unix-milliseconds instant as RFC 3339 UTC to the second; 0 means "not recorded".
pub fn time(t: Timestamp) -> String {
    let ms = t.as_ms();
    if ms <= 0 {
        return "unknown".into();
    }
    DateTime::from_secs(ms / 1000)
        .fmt(DateTimeFormat::DateTime)
        .unwrap_or_else(|_| ms.to_string())
}

/// `time` for JSON: `null` when not recorded.
pub fn time_json(t: Timestamp) -> Value {
    if t.as_ms() <= 0 {
        Value::Null
    } else {
        Value::String(time(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_their_columns() {
        let t = table(
            &["ID", "NAME"],
            &[
                vec!["globex".into(), "Globex".into()],
                vec!["a".into(), "".into()],
            ],
        );
        assert_eq!(t, "ID      NAME\nglobex  Globex\na");
    }

    #[test]
    fn instants_print_as_utc_seconds() {
        assert_eq!(
            time(Timestamp::from_ms(1_700_000_000_123)),
            "2023-11-14T22:13:20Z"
        );
        assert_eq!(time(Timestamp::EPOCH), "unknown");
        assert_eq!(time_json(Timestamp::EPOCH), Value::Null);
    }
}
