//! `hubctl`: the operator's command line for a deployed hub. It onboards Ashby customers
//! (tenants) and vendors, and rotates their credentials, through the same store and secrets
//! adapters as the Lambda functions. One module per noun; this file only parses and dispatches.
//!
//! Tokens and secrets are printed exactly once, when they are created; listings show hashes and
//! dates only. Output is a table for people or, with `--json`, one JSON document for scripts.
//! Exit codes: 0 done, 1 failed, 2 usage (the command line cannot be carried out as written).

mod assessment;
mod connect;
mod context;
mod deliveries;
mod output;
mod tenant;
mod urls;
mod vendor;

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use hub::config::vars;
use url::Url;

use crate::context::Ctx;
use crate::output::{Failure, Report};

#[derive(Parser)]
#[command(
    name = "hubctl",
    version,
    about = "Onboard Ashby customers and vendors onto a deployed assessment hub",
    after_help = "AWS access comes from the usual variables (AWS_REGION, AWS_PROFILE, \
                  credentials; AWS_ENDPOINT_URL for an emulator).\n\
                  Exit codes: 0 done, 1 failed, 2 usage error.\n\
                  Guides: docs/onboarding.md, docs/deploy.md."
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    noun: Noun,
}

#[derive(Args)]
struct Global {
    /// The hub's DynamoDB table (the stack output TableName).
    #[arg(long, global = true, env = vars::TABLE, value_name = "NAME")]
    table: Option<String>,
    /// Prefix of the hub's Secrets Manager names (the stack parameter SecretPrefix).
    #[arg(long, global = true, env = vars::SECRET_PREFIX, value_name = "PREFIX",
          default_value_t = hub::Config::default().secret_prefix)]
    secret_prefix: String,
    /// Print one JSON document instead of tables.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Noun {
    /// Ashby customer accounts: trigger tokens, Ashby API keys, enabled packages.
    #[command(subcommand)]
    Tenant(tenant::Command),
    /// Background-check and assessment vendors: order URLs, signing secrets, packages.
    #[command(subcommand)]
    Vendor(vendor::Command),
    /// One assessment's state and timeline.
    #[command(subcommand)]
    Assessment(assessment::Command),
    /// Deliveries that need an operator: list the stuck ones, redeliver them.
    #[command(subcommand)]
    Deliveries(deliveries::Command),
}

/// The hub's public base URL, for the lines the operator passes on (Ashby's base URL, a vendor's
/// callback URL). Optional: without it the output says where to find it.
#[derive(Args, Clone)]
pub struct BaseUrl {
    /// The hub's base URL (the stack output AshbyBaseUrl), to print with the credentials.
    #[arg(long = "base-url", env = vars::PUBLIC_URL, value_name = "URL",
          value_parser = parse_base_url)]
    pub url: Option<Url>,
}

impl BaseUrl {
    /// The URL without a trailing slash, as Ashby and vendors append paths to it.
    pub fn text(&self) -> Option<String> {
        self.url
            .as_ref()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
    }
}

/// Where to find the base URL when it was not given.
pub const BASE_URL_HINT: &str = "the stack output AshbyBaseUrl (pass it as --base-url or set \
    HUB_PUBLIC_URL to have it printed here)";

fn parse_base_url(s: &str) -> Result<Url, String> {
    Url::parse(s)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .ok_or_else(|| format!("{s:?} is not an absolute http(s) URL"))
}

async fn run(cli: Cli) -> Result<Report, Failure> {
    let table = cli.global.table.ok_or_else(|| {
        Failure::usage(format!(
            "no table: pass --table NAME or set {} (the stack output TableName)",
            vars::TABLE
        ))
    })?;
    let ctx = Ctx::connect(table, cli.global.secret_prefix).await?;
    match cli.noun {
        Noun::Tenant(c) => tenant::run(c, &ctx).await,
        Noun::Vendor(c) => vendor::run(c, &ctx).await,
        Noun::Assessment(c) => assessment::run(c, &ctx).await,
        Noun::Deliveries(c) => deliveries::run(c, &ctx).await,
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = cli.global.json;
    match run(cli).await {
        Ok(report) if json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&report.json).unwrap_or_else(|_| "null".into())
            );
            ExitCode::SUCCESS
        }
        Ok(report) => {
            println!("{}", report.text);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}
