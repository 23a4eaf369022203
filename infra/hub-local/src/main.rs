//! `cargo run -p hub-local [-- --port N] [--config FILE] [--public-url URL] [--table NAME]`

use std::time::Duration;

use anyhow::{Context, bail};
use hub_local::server::{Options, start};

const USAGE: &str = "usage: hub-local [--port N] [--config FILE] [--public-url URL] \
[--table NAME] [--sandbox-delay-ms N] [--retry-interval-ms N] [--connect-link-valid-secs N]

  --port N             port on 127.0.0.1 (default 8000; 0 picks a free one)
  --config FILE        tenants and vendors from a TOML file instead of the built-in demo
  --public-url URL     base URL vendors call back to (default: this server's own)
  --table NAME         use this DynamoDB table and Secrets Manager (usual AWS variables,
                       AWS_ENDPOINT_URL included) instead of memory; created if missing
  --sandbox-delay-ms N pause between the sandbox vendor's callbacks (default 3000)
  --retry-interval-ms N how often owed deliveries are retried (default 5000); the first
                       backoff after a failure is HUB_RETRY_BASE_MS (default 30000)
  --connect-link-valid-secs N  how long the printed connect links work (default 7 days)

  HUB_PARTNER_NAME     the integration's name in Ashby, as the connect page words it";

fn parse_args() -> anyhow::Result<Options> {
    let mut opts = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value\n\n{USAGE}"))?;
        match flag.as_str() {
            "--port" => opts.port = value.parse().context("--port must be a number")?,
            "--config" => opts.config = Some(value.into()),
            "--public-url" => {
                opts.public_url = Some(url::Url::parse(&value).context("--public-url")?)
            }
            "--table" => opts.table = Some(value),
            "--sandbox-delay-ms" => {
                opts.sandbox_delay = Duration::from_millis(
                    value
                        .parse()
                        .context("--sandbox-delay-ms must be a number")?,
                )
            }
            "--retry-interval-ms" => {
                opts.retry_interval = Duration::from_millis(
                    value
                        .parse::<u64>()
                        .context("--retry-interval-ms must be a number")?
                        .max(10),
                )
            }
            "--connect-link-valid-secs" => {
                opts.connect_link_valid = Duration::from_secs(
                    value
                        .parse::<u64>()
                        .context("--connect-link-valid-secs must be a number")?
                        .max(1),
                )
            }
            other => bail!("unknown flag {other}\n\n{USAGE}"),
        }
    }
    Ok(opts)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    hub::telemetry::init();
    let opts = parse_args()?;
    let hub = start(opts.clone()).await?;
    let base = hub.base_url.as_str().trim_end_matches('/').to_owned();
    println!("Ashby assessment hub running at {base}");
    println!(
        "  store: {}",
        opts.table
            .as_deref()
            .map(|t| format!("DynamoDB table {t}"))
            .unwrap_or_else(|| "in memory".into())
    );
    println!(
        "  Ashby stand-in: {base}/ashby/assessment.update (received: GET {base}/ashby/updates; \
         report files: GET {base}/ashby/files)"
    );
    if let Some(token) = &hub.demo_token {
        println!("  sandbox vendor: {base}/sandbox/orders");
        println!("  demo trigger token: {token}");
        println!();
        println!("Try it:");
        println!("  curl -s -u {token}: -X POST {base}/assessment.list -d '{{}}'");
        println!("  curl -s -u {token}: -X POST {base}/assessment.customField.list -d '{{}}'");
        println!(
            "  curl -s -u {token}: -X POST {base}/assessment.start -H 'content-type: application/json' \\\n    -d '{}'",
            demo_start_body(&hub).await
        );
        println!("  then watch this terminal: the sandbox vendor reports progress and a result.");
    }
    for (tenant, url) in &hub.connect_links {
        println!();
        if opts.config.is_none() {
            println!("A customer not connected yet ({tenant}) connects itself on its page:");
            println!("  connect page: {url}");
            println!(
                "  (paste the Ashby key {} there; Ashby's refresh is: curl -s -u <token>: -X POST {base}/assessment.list -d '{{}}')",
                hub_local::config::DEMO_ASHBY_KEY
            );
        } else {
            println!("connect page for {tenant}: {url}");
        }
    }
    if let Some(key) = &hub.demo_greenhouse_key {
        println!();
        println!("Greenhouse (demo partner key: {key}):");
        println!("  curl -s -u {key}: {base}/greenhouse/list_tests");
        println!(
            "  curl -s -X POST {base}/greenhouse-standin/send_test   # the Greenhouse stand-in sends send_test"
        );
        println!(
            "  then watch this terminal: after the result, the hub PATCHes the stand-in, which reads test_status."
        );
    }
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = hub.wait() => {}
    }
    Ok(())
}

/// A start body for the demo tenant's first package (with its required option), ready to paste.
async fn demo_start_body(hub: &hub_local::server::RunningHub) -> String {
    let type_id = match hub
        .store
        .tenant(&hub::domain::TenantId::parse("demo").unwrap_or_else(|_| unreachable!()))
        .await
    {
        Ok(Some(t)) => t
            .packages
            .first()
            .map(|p| p.type_id().to_string())
            .unwrap_or_default(),
        _ => String::new(),
    };
    serde_json::json!({
        "assessment_type_id": type_id,
        "candidate": {"ashby_id": "cand-1", "first_name": "Ada", "last_name": "Lovelace",
                      "email": "ada@example.com", "ashby_profile_url": "https://app.ashbyhq.com/candidates/cand-1"},
        "application": {"ashby_id": "app-1", "status": "Active"},
        "job": {"ashby_id": "job-1", "name": "Backend Engineer", "ashby_job_url": "https://app.ashbyhq.com/jobs/job-1"},
        "additional_fields": {"sandbox.criminal-basic.work_location": "uk"}
    })
    .to_string()
}
