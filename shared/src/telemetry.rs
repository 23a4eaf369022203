//! Logging set-up. JSON lines in Lambda (CloudWatch parses them), compact text locally. Fields are
//! allow-listed at each call site: ids and outcomes only, never candidate data or secrets.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
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
