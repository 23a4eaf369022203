//! `hubctl assessment show ID`: one assessment's timeline for an operator: its record, then every
//! delivery the hub owed (the vendor order, each update to Ashby, each report file put on the
//! candidate, a cancel) with its attempts and
//! outcome. Candidate data (in the vendor order) and vendors' own words (a refusal, a reason for
//! cancelling: free text that may quote the candidate) are shown only with `--reveal-pii`.

use clap::Subcommand;
use hub::domain::{AssessmentId, Delivery, DeliveryKind};
use serde_json::{Value, json};

use crate::context::Ctx;
use crate::output::{Failure, Report, table, time, time_json};

#[derive(Subcommand)]
pub enum Command {
    /// Show an assessment's state and timeline.
    Show {
        /// The assessment id (what Ashby and the vendor know it by).
        #[arg(value_parser = AssessmentId::parse)]
        id: AssessmentId,
        /// Include the candidate's name and email from the vendor order, and the vendor's own
        /// words (why it refused or cancelled), which may quote the candidate.
        #[arg(long)]
        reveal_pii: bool,
    },
}

pub async fn run(command: Command, ctx: &Ctx) -> Result<Report, Failure> {
    match command {
        Command::Show { id, reveal_pii } => show(ctx, id, reveal_pii).await,
    }
}

/// Said in place of a vendor's words when `--reveal-pii` is not given.
const HIDDEN: &str = "vendor's words hidden; --reveal-pii shows them";

/// What a delivery said, in a few words, without candidate data or a vendor's words unless
/// asked.
pub fn summary(d: &Delivery, reveal_pii: bool) -> String {
    let body: Value = serde_json::from_str(&d.body).unwrap_or(Value::Null);
    match d.kind {
        DeliveryKind::VendorOrder if reveal_pii => format!(
            "order for {} {} <{}>",
            body["candidate"]["first_name"].as_str().unwrap_or("?"),
            body["candidate"]["last_name"].as_str().unwrap_or("?"),
            body["candidate"]["email"].as_str().unwrap_or("?"),
        ),
        DeliveryKind::VendorOrder => format!(
            "order of package {}",
            body["package_id"].as_str().unwrap_or("?")
        ),
        DeliveryKind::VendorCancel => "cancel".into(),
        // The file name is the vendor's and may name the candidate: shown only when asked. Its
        // URL (which may carry a token) is never shown.
        DeliveryKind::AtsFile if reveal_pii => format!(
            "report file {} ({})",
            body["attachment"]["filename"].as_str().unwrap_or("?"),
            body["attachment"]["content_type"].as_str().unwrap_or("?")
        ),
        DeliveryKind::AtsFile => format!(
            "report file ({})",
            body["attachment"]["content_type"].as_str().unwrap_or("?")
        ),
        DeliveryKind::AtsPatch => "PATCH to Greenhouse (read test_status)".into(),
        DeliveryKind::AtsUpdate => {
            if let Some(reason) = body["cancelled_reason"]["value"].as_str() {
                if reveal_pii {
                    format!("cancelled: {reason}")
                } else {
                    // The label is the hub's ("Not accepted by the provider", "Failed"); the
                    // reason may be the vendor's free text.
                    let label = body["cancelled_reason"]["label"].as_str().unwrap_or("?");
                    format!("cancelled ({label}; {HIDDEN})")
                }
            } else if body.get("assessment_result").is_some() {
                format!(
                    "completed: {} {}",
                    body["assessment_result"]["label"].as_str().unwrap_or(""),
                    body["assessment_result"]["value"]
                )
            } else {
                format!(
                    "status: {}",
                    body["assessment_status"]["value"].as_str().unwrap_or("?")
                )
            }
        }
    }
}

/// One delivery as JSON, for `assessment show` and `deliveries list`.
pub fn delivery_json(d: &Delivery, reveal_pii: bool) -> Value {
    json!({
        "seq": d.seq,
        "kind": d.kind.as_str(),
        "summary": summary(d, reveal_pii),
        "state": d.state.name(),
        "reason": d.state.reason(),
        "attempts": d.attempts,
        "created": time_json(d.created_ms),
        "next_attempt": time_json(d.next_attempt_ms),
        "last_error": d.last_error,
    })
}

async fn show(ctx: &Ctx, id: AssessmentId, reveal_pii: bool) -> Result<Report, Failure> {
    let a = ctx
        .store
        .assessment(id)
        .await
        .map_err(|e| ctx.store_failed(e))?
        .ok_or_else(|| Failure::failed(format!("no assessment {id}")))?;
    let deliveries = ctx
        .store
        .deliveries(id)
        .await
        .map_err(|e| ctx.store_failed(e))?;
    let rows: Vec<Vec<String>> = deliveries
        .iter()
        .map(|d| {
            vec![
                d.seq.to_string(),
                time(d.created_ms),
                d.kind.as_str().into(),
                summary(d, reveal_pii),
                match d.state.reason() {
                    Some(r) => format!("{} ({r})", d.state.name()),
                    None => d.state.name().into(),
                },
                d.attempts.to_string(),
                d.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    let mut text = format!(
        "assessment {id}\n  tenant {}  vendor {}  package {}\n  application {}\n  status {}{}\n  \
         created {}  updated {}\n  vendor reference {}\n\nTimeline:\n",
        a.tenant_id,
        a.vendor_id,
        a.package_id,
        a.application_id,
        a.status.as_str(),
        match &a.rejection_message {
            Some(m) if reveal_pii => format!(" ({m})"),
            Some(_) => format!(" ({HIDDEN})"),
            None => String::new(),
        },
        time(a.created_at_ms),
        time(a.updated_at_ms),
        a.vendor_reference.as_deref().unwrap_or("-"),
    );
    if a.ats != hub::domain::Ats::Ashby {
        text = text.replacen(
            "\n  status ",
            &format!("\n  ats {}\n  status ", a.ats.as_str()),
            1,
        );
    }
    if a.ats_errors > 0 {
        let last = match &a.last_ats_error {
            Some(e) if reveal_pii => e.clone(),
            Some(_) => "its words hidden; --reveal-pii shows them".into(),
            None => "-".into(),
        };
        text = text.replacen(
            "\n\nTimeline:\n",
            &format!(
                "\n  {} reported {} unusable repl{} (response_error); last: {last}\n\nTimeline:\n",
                a.ats.as_str(),
                a.ats_errors,
                if a.ats_errors == 1 { "y" } else { "ies" }
            ),
            1,
        );
    }
    text.push_str(&table(
        &[
            "#",
            "CREATED",
            "KIND",
            "WHAT",
            "STATE",
            "ATTEMPTS",
            "LAST ERROR",
        ],
        &rows,
    ));
    let json = json!({
        "assessment_id": id.to_string(),
        "tenant": a.tenant_id.as_str(),
        "vendor": a.vendor_id.as_str(),
        "package": a.package_id.as_str(),
        "application_id": a.application_id,
        "status": a.status.as_str(),
        "rejection_message": a.rejection_message.as_ref().filter(|_| reveal_pii),
        "rejection_message_hidden": a.rejection_message.is_some() && !reveal_pii,
        "vendor_reference": a.vendor_reference,
        "ats": a.ats.as_str(),
        "ats_errors": a.ats_errors,
        "last_ats_error": a.last_ats_error.as_ref().filter(|_| reveal_pii),
        "created": time_json(a.created_at_ms),
        "updated": time_json(a.updated_at_ms),
        "timeline": deliveries.iter().map(|d| delivery_json(d, reveal_pii)).collect::<Vec<_>>(),
    });
    Ok(Report { text, json })
}
