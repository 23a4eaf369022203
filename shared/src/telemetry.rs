//! Logging set-up. JSON lines in Lambda (CloudWatch parses them), compact text locally. Fields are
//! allow-listed at each call site: ids and outcomes only, never candidate data or secrets.

use tracing_subscriber::EnvFilter;

/// Crates that log whole request or response bodies at trace level: AWS SDK bodies hold delivery
/// items, and a vendor order carries the candidate's name and email. Whatever `RUST_LOG` asks,
/// they log at debug at most.
const BODY_LOGGERS: [&str; 6] = [
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "hyper",
    "reqwest",
];

/// `RUST_LOG` (default `info`), with the body-logging crates capped at debug.
fn filter_from(directives: Option<&str>) -> EnvFilter {
    let base = directives
        .filter(|d| !d.trim().is_empty())
        .unwrap_or("info");
    let caps: Vec<String> = BODY_LOGGERS.iter().map(|c| format!("{c}=debug")).collect();
    EnvFilter::try_new(format!("{base},{}", caps.join(",")))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{}", caps.join(","))))
}

pub fn init() {
    let filter = filter_from(std::env::var("RUST_LOG").ok().as_deref());
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // `try_init`: a second call (tests, the local hub) keeps the first subscriber.
    let _ = if in_lambda {
        builder.json().with_current_span(true).try_init()
    } else {
        builder
            .compact()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_everywhere_still_caps_the_crates_that_log_bodies() {
        let f = filter_from(Some("trace")).to_string();
        assert!(f.contains("aws_smithy_runtime=debug"), "{f}");
        assert!(f.contains("trace"), "{f}");
        let bad = filter_from(Some("not a [valid filter")).to_string();
        assert!(bad.contains("info") && bad.contains("hyper=debug"), "{bad}");
    }
}
