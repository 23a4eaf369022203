//! `hubctl deliveries …`: what the hub could not deliver by itself. `list --stuck` shows parked
//! deliveries (waiting for an operator, e.g. after Ashby refused a tenant's key) and dead ones
//! (older than HUB_DELIVERY_MAX_AGE_HOURS); `redeliver` puts them back in the queue, due now, and
//! the next scheduled run (every minute) sends them, in order.

use clap::Subcommand;
use hub::domain::AssessmentId;
use serde_json::json;

use crate::assessment::{delivery_json, summary};
use crate::context::Ctx;
use crate::output::{Failure, Report, table, time};

#[derive(Subcommand)]
pub enum Command {
    /// List deliveries that need an operator.
    List {
        /// Only parked and dead deliveries (the only listing there is, for now).
        #[arg(long)]
        stuck: bool,
        /// At most this many.
        #[arg(long, default_value_t = 200)]
        limit: usize,
    },
    /// Put parked or dead deliveries back in the queue: one (`--assessment ID --seq N`), all of an
    /// assessment (`--assessment ID`), or all that are stuck (`--all`).
    Redeliver {
        #[arg(long, value_parser = AssessmentId::parse)]
        assessment: Option<AssessmentId>,
        #[arg(long, requires = "assessment")]
        seq: Option<u64>,
        #[arg(long, conflicts_with_all = ["assessment", "seq"])]
        all: bool,
    },
}

pub async fn run(command: Command, ctx: &Ctx) -> Result<Report, Failure> {
    match command {
        Command::List { stuck: _, limit } => list(ctx, limit).await,
        Command::Redeliver {
            assessment,
            seq,
            all,
        } => redeliver(ctx, assessment, seq, all).await,
    }
}

async fn list(ctx: &Ctx, limit: usize) -> Result<Report, Failure> {
    let stuck = ctx
        .store
        .stuck_deliveries(limit)
        .await
        .map_err(|e| ctx.store_failed(e))?;
    let rows: Vec<Vec<String>> = stuck
        .iter()
        .map(|d| {
            vec![
                d.assessment_id.to_string(),
                d.seq.to_string(),
                d.kind.as_str().into(),
                summary(d, false),
                d.state.name().into(),
                d.state.reason().unwrap_or_default().into(),
                time(d.created_ms),
                d.attempts.to_string(),
            ]
        })
        .collect();
    let text = if stuck.is_empty() {
        "Nothing is stuck: every delivery is delivered or on its way.".into()
    } else {
        table(
            &[
                "ASSESSMENT",
                "#",
                "KIND",
                "WHAT",
                "STATE",
                "REASON",
                "SINCE",
                "ATTEMPTS",
            ],
            &rows,
        )
    };
    let docs: Vec<_> = stuck
        .iter()
        .map(|d| {
            let mut v = delivery_json(d, false);
            v["assessment_id"] = json!(d.assessment_id.to_string());
            v
        })
        .collect();
    Ok(Report {
        text,
        json: json!({ "stuck": docs }),
    })
}

async fn redeliver(
    ctx: &Ctx,
    assessment: Option<AssessmentId>,
    seq: Option<u64>,
    all: bool,
) -> Result<Report, Failure> {
    let targets: Vec<(AssessmentId, u64)> = match (assessment, seq, all) {
        (Some(id), Some(seq), false) => vec![(id, seq)],
        (Some(id), None, false) => ctx
            .store
            .open_deliveries(id)
            .await
            .map_err(|e| ctx.store_failed(e))?
            .into_iter()
            .filter(|d| d.state.reason().is_some())
            .map(|d| (id, d.seq))
            .collect(),
        (None, None, true) => ctx
            .store
            .stuck_deliveries(10_000)
            .await
            .map_err(|e| ctx.store_failed(e))?
            .into_iter()
            .map(|d| (d.assessment_id, d.seq))
            .collect(),
        _ => {
            return Err(Failure::usage(
                "say what to redeliver: --assessment ID [--seq N], or --all",
            ));
        }
    };
    let now = hub::clock::Clock::now(&hub::clock::SystemClock);
    let mut done = Vec::new();
    for (id, seq) in &targets {
        if ctx
            .store
            .redeliver(*id, *seq, now)
            .await
            .map_err(|e| ctx.store_failed(e))?
        {
            done.push(json!({"assessment_id": id.to_string(), "seq": seq}));
        }
    }
    if done.is_empty() {
        return Err(Failure::failed(
            "nothing to redeliver: no parked or dead delivery matches",
        ));
    }
    Ok(Report {
        text: format!(
            "Queued {} deliver{} again; the next scheduled run (within a minute) sends them in order.",
            done.len(),
            if done.len() == 1 { "y" } else { "ies" }
        ),
        json: json!({ "redelivered": done }),
    })
}
