//! Logging set-up. JSON lines in Lambda (CloudWatch parses them), compact text locally. Fields are
//! allow-listed at each call site: ids and outcomes only, never candidate data or secrets.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

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

/// `RUST_LOG` (default `info`; an invalid value falls back to it).
fn filter_from(directives: Option<&str>) -> EnvFilter {
    let base = directives
        .filter(|d| !d.trim().is_empty())
        .unwrap_or("info");
    EnvFilter::try_new(base).unwrap_or_else(|_| EnvFilter::new("info"))
}

/// Whether an event or span may be logged whatever `RUST_LOG` says: not at trace level from a
/// crate that logs bodies there. (Caps, not levels: `RUST_LOG=info` leaves them at info.)
fn below_body_level(meta: &tracing::Metadata<'_>) -> bool {
    *meta.level() < tracing::Level::TRACE
        || !BODY_LOGGERS.iter().any(|c| {
            meta.target()
                .strip_prefix(c)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
        })
}

pub fn init() {
    let filter = filter_from(std::env::var("RUST_LOG").ok().as_deref());
    let caps = tracing_subscriber::filter::filter_fn(below_body_level);
    let in_lambda = std::env::var_os("AWS_LAMBDA_FUNCTION_NAME").is_some();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    // `try_init`: a second call (tests, the local hub) keeps the first subscriber.
    let _ = if in_lambda {
        builder
            .json()
            .with_current_span(true)
            .finish()
            .with(caps)
            .try_init()
    } else {
        builder
            .compact()
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
            .finish()
            .with(caps)
            .try_init()
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;
    use tracing::callsite::Identifier;
    use tracing::metadata::Kind;

    struct Site;
    impl tracing::Callsite for Site {
        fn set_interest(&self, _: tracing::subscriber::Interest) {}
        fn metadata(&self) -> &tracing::Metadata<'_> {
            unreachable!()
        }
    }
    static SITE: Site = Site;

    fn meta(target: &'static str, level: Level) -> tracing::Metadata<'static> {
        tracing::Metadata::new(
            "event",
            target,
            level,
            None,
            None,
            None,
            tracing::field::FieldSet::new(&[], Identifier(&SITE)),
            Kind::EVENT,
        )
    }

    #[test]
    fn body_loggers_never_log_at_trace() {
        assert!(!below_body_level(&meta("aws_smithy_runtime", Level::TRACE)));
        assert!(!below_body_level(&meta("hyper::proto::h1", Level::TRACE)));
        assert!(below_body_level(&meta("hyper::proto::h1", Level::DEBUG)));
        assert!(below_body_level(&meta("hub::handlers", Level::TRACE)));
        // A prefix of the name is not the crate.
        assert!(below_body_level(&meta("hyperloop", Level::TRACE)));
    }

    #[test]
    fn info_leaves_the_sdk_at_info() {
        let f = filter_from(Some("info"));
        assert_eq!(
            f.max_level_hint(),
            Some(tracing::level_filters::LevelFilter::INFO)
        );
        let bad = filter_from(Some("not a [valid filter")).to_string();
        assert_eq!(bad, "info");
    }
}
