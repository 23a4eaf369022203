//! `hubctl tenant invite | invites | status`: connect links, with which a customer's Ashby admin
//! connects the account themselves (the trigger token, the Ashby API key), and what the hub knows
//! of a tenant's connection. A link's code is printed once, in the link; the registry keeps only
//! its SHA-256, and operators name a link by the first 12 hex digits of that hash.

use std::time::Duration;

use clap::Args;
use hub::clock::{Clock, SystemClock, Timestamp};
use hub::domain::connect::{DEFAULT_INVITE_DAYS, MAX_INVITE_DAYS, generate_connect_code};
use hub::domain::{
    Ats, Connection, ConnectionState, Invite, InviteDead, Tenant, TenantHealth, TenantId, TokenHash,
};
use hub::ports::RegistryOutcome;
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::BaseUrl;
use crate::context::{Ctx, SecretInfo};
use crate::output::{Failure, Report, table, time, time_json};
use crate::tenant::{ats_key_name, existing, no_such_tenant, unexpected};

/// A tenant named by position (`hubctl tenant status globex`) or, like the other tenant
/// commands, by `--id`.
#[derive(Args)]
#[group(required = true, multiple = false)]
pub struct TenantRef {
    /// The tenant id: 1-64 characters of a-z, 0-9, '-', '_'.
    #[arg(value_name = "TENANT", value_parser = TenantId::parse)]
    tenant: Option<TenantId>,
    /// The tenant id, as an option (as the other tenant commands take it).
    #[arg(long = "id", value_name = "TENANT", value_parser = TenantId::parse)]
    id: Option<TenantId>,
}

impl TenantRef {
    /// The id given (the argument group lets clap refuse none or both first).
    pub fn id(self) -> Result<TenantId, Failure> {
        self.tenant
            .or(self.id)
            .ok_or_else(|| Failure::usage("name the tenant: TENANT or --id TENANT"))
    }
}

/// How long a new link works.
#[derive(Args, Clone, Copy)]
pub struct Validity {
    /// How many days the link works (1-90).
    #[arg(long = "valid-days", value_name = "N", default_value_t = DEFAULT_INVITE_DAYS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_INVITE_DAYS)))]
    pub days: u32,
}

/// The hub's base URL, required for a link (the code is shown only once, inside it).
pub fn link_base(base_url: &BaseUrl) -> Result<String, Failure> {
    base_url.text().ok_or_else(|| {
        Failure::usage(
            "a connect link needs the hub's base URL, and its code is shown only once: pass \
             --base-url URL (the stack output AshbyBaseUrl) or set HUB_PUBLIC_URL; nothing was \
             created",
        )
    })
}

fn now() -> Timestamp {
    SystemClock.now()
}

/// Makes a connect link for an enabled Ashby tenant and prints it once.
pub async fn invite(
    ctx: &Ctx,
    id: &TenantId,
    validity: Validity,
    base_url: &BaseUrl,
) -> Result<Report, Failure> {
    let base = link_base(base_url)?;
    let tenant = existing(ctx, id).await?;
    if tenant.ats != Ats::Ashby {
        return Err(Failure::usage(format!(
            "tenant {id} is a Greenhouse tenant: connect links are for Ashby accounts (a \
             Greenhouse tenant's partner key was printed by `hubctl tenant create`)"
        )));
    }
    if tenant.disabled {
        return Err(Failure::failed(format!(
            "tenant {id} is disabled, and a disabled tenant's links do not work; `hubctl tenant \
             enable --id {id}` first"
        )));
    }
    make_link(ctx, &tenant, validity, &base).await
}

/// Stores a new link for `tenant` and reports it (the code only in the URL, only here).
pub async fn make_link(
    ctx: &Ctx,
    tenant: &Tenant,
    validity: Validity,
    base: &str,
) -> Result<Report, Failure> {
    let id = &tenant.id;
    let code = generate_connect_code();
    let created = now();
    let invite = Invite {
        hash: TokenHash::of(&code),
        tenant_id: id.clone(),
        created_at_ms: created,
        expires_at_ms: created + Duration::from_secs(u64::from(validity.days) * 86_400),
        revoked_at_ms: None,
        token_shown_at_ms: None,
    };
    match ctx
        .store
        .create_invite(&invite)
        .await
        .map_err(|e| ctx.store_failed(e))?
    {
        RegistryOutcome::Done => {}
        RegistryOutcome::NotFound => return Err(no_such_tenant(id)),
        other => return Err(unexpected(other)),
    }
    let url = format!("{base}/connect/{}", code.expose_secret());
    let link_id = invite.id();
    let text = format!(
        "Connect link for tenant {id} ({}), shown only this once (the hub keeps only its hash):\n\n\
         \x20   {url}\n\n\
         It works until {} ({} day(s)), for whoever holds it.\n\
         Send it to the customer's Ashby admin over a channel you would trust with a password:\n\
         on it they get the External Trigger Token, follow the steps in Ashby and save their\n\
         Ashby API key.\n\n\
         Link id: {link_id}. `hubctl tenant invites {id}` lists the links and how each stands;\n\
         `hubctl tenant invites {id} --revoke {link_id}` ends this one.\n",
        tenant.name,
        time(invite.expires_at_ms),
        validity.days,
    );
    Ok(Report {
        text,
        json: json!({
            "connect_url": url,
            "expires_at": time_json(invite.expires_at_ms),
            "tenant": id.as_str(),
            "invite_id": link_id,
        }),
    })
}

/// How a link stands, for listings.
fn link_state(i: &Invite, now: Timestamp) -> &'static str {
    match i.check(now) {
        Err(InviteDead::Revoked) => "revoked",
        Err(InviteDead::Expired) => "expired",
        Ok(()) if i.token_shown_at_ms.is_some() => "working, token shown",
        Ok(()) => "working",
    }
}

/// Lists the tenant's links, or with `revoke` ends one first.
pub async fn invites(ctx: &Ctx, id: &TenantId, revoke: Option<&str>) -> Result<Report, Failure> {
    existing(ctx, id).await?;
    let at = now();
    // Newest first, as the store lists them.
    let list = ctx
        .store
        .invites(id)
        .await
        .map_err(|e| ctx.store_failed(e))?;
    if let Some(wanted) = revoke {
        let wanted = wanted.trim().to_ascii_lowercase();
        if wanted.len() != 12 || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Failure::usage(format!(
                "--revoke takes a link id, 12 hex digits (`hubctl tenant invites {id}` lists them)"
            )));
        }
        match ctx
            .store
            .revoke_invite(id, &wanted, at)
            .await
            .map_err(|e| ctx.store_failed(e))?
        {
            RegistryOutcome::Done => {}
            RegistryOutcome::UnknownInvite | RegistryOutcome::NotFound => {
                return Err(Failure::failed(format!(
                    "tenant {id} has no connect link {wanted}; `hubctl tenant invites {id}` \
                     lists them"
                )));
            }
            other => return Err(unexpected(other)),
        }
        let text = format!(
            "Ended the connect link {wanted} of tenant {id}: opening it now shows \"This connect \
             link no longer works\". Tokens already issued on it keep working (`hubctl tenant \
             revoke-token` ends one)."
        );
        return Ok(Report {
            text,
            json: json!({ "tenant": id.as_str(), "revoked_invite": wanted }),
        });
    }
    let rows: Vec<Vec<String>> = list
        .iter()
        .map(|i| {
            vec![
                i.id(),
                time(i.created_at_ms),
                time(i.expires_at_ms),
                link_state(i, at).to_owned(),
            ]
        })
        .collect();
    let text = if list.is_empty() {
        format!("Tenant {id} has no connect links: `hubctl tenant invite {id}` makes one.")
    } else {
        table(&["LINK ID", "CREATED", "EXPIRES", "STATE"], &rows)
    };
    Ok(Report {
        text,
        json: json!({
            "tenant": id.as_str(),
            "invites": list.iter().map(|i| json!({
                "id": i.id(),
                "created_at": time_json(i.created_at_ms),
                "expires_at": time_json(i.expires_at_ms),
                "revoked_at": i.revoked_at_ms.map_or(Value::Null, time_json),
                "token_shown_at": i.token_shown_at_ms.map_or(Value::Null, time_json),
                "state": link_state(i, at),
            })).collect::<Vec<_>>(),
        }),
    })
}

/// The connection as the page shows it, from the health and whether a key is stored (checked
/// on the page, or put by an operator).
pub fn connection(tenant: &Tenant, health: &TenantHealth, key: Option<&SecretInfo>) -> Connection {
    health.connection(tenant.ats, health.key.is_some() || key.is_some())
}

/// One tenant's connection, key check, last ATS call, last delivery and links.
pub async fn status(ctx: &Ctx, id: &TenantId) -> Result<Report, Failure> {
    let account = ctx
        .store
        .account(id)
        .await
        .map_err(|e| ctx.store_failed(e))?
        .ok_or_else(|| no_such_tenant(id))?;
    let (t, h) = (&account.tenant, &account.health);
    let key_name = ats_key_name(ctx, t);
    let key = ctx.secret_info(&key_name).await?;
    let tokens = ctx
        .store
        .tenant_tokens(id)
        .await
        .map_err(|e| ctx.store_failed(e))?;
    let links = ctx
        .store
        .invites(id)
        .await
        .map_err(|e| ctx.store_failed(e))?;
    let at = now();
    let working = links.iter().filter(|i| i.check(at).is_ok()).count();
    let conn = connection(t, h, key.as_ref());
    let state = if t.disabled {
        "disabled (its tokens get 401)".to_owned()
    } else {
        conn.state.title().to_owned()
    };

    let last_call = h.last_call.as_ref().map_or_else(
        || "none yet".to_owned(),
        |c| format!("{} {}", time(c.at_ms), c.route),
    );
    let key_line = match (t.ats, &h.key, &key) {
        (Ats::Greenhouse, _, Some(k)) => format!(
            "partner key stored {} ({key_name})",
            time(Timestamp::from_ms(k.last_changed_ms))
        ),
        (Ats::Greenhouse, _, None) => format!("partner key missing ({key_name})"),
        (Ats::Ashby, Some(c), _) if c.scopes_verified => format!(
            "{}, saved on the connect page {} (Ashby showed Candidates: Write)",
            c.label,
            time(c.at_ms)
        ),
        (Ats::Ashby, Some(c), _) => format!(
            "{}, saved on the connect page {} (it may not read its own scopes: make sure \
             Candidates: Write is on)",
            c.label,
            time(c.at_ms)
        ),
        (Ats::Ashby, None, Some(k)) => format!(
            "stored by an operator {}",
            time(Timestamp::from_ms(k.last_changed_ms))
        ),
        (Ats::Ashby, None, None) => "missing".to_owned(),
    };
    let delivery = h.last_delivery.as_ref().map_or_else(
        || "none yet".to_owned(),
        |d| format!("{} {} ({})", d.outcome.as_str(), time(d.at_ms), d.detail),
    );
    let mut rows = vec![
        vec![
            "Tenant".into(),
            format!("{id} ({}), {}", t.name, t.ats.as_str()),
        ],
        vec!["Connection".into(), state.clone()],
        // The page's own words, which point at its key field "below".
        vec![
            String::new(),
            conn.detail.replace(" below", " on the connect page"),
        ],
        vec!["Last ATS call".into(), last_call],
        vec![
            match t.ats {
                Ats::Ashby => "Ashby API key",
                Ats::Greenhouse => "Partner key",
            }
            .into(),
            key_line,
        ],
        vec!["Last delivery".into(), delivery],
        vec!["Trigger tokens".into(), tokens.len().to_string()],
    ];
    if h.pending_token.is_some() {
        rows.push(vec![
            String::new(),
            "one was issued on the connect page and awaits the ATS's first call with it; the \
             others stay valid until then"
                .into(),
        ]);
    }
    rows.push(vec![
        "Connect links".into(),
        format!("{working} working of {}", links.len()),
    ]);
    let text = rows
        .iter()
        .map(|r| format!("{:<16}{}", r[0], r[1]).trim_end().to_owned())
        .collect::<Vec<_>>()
        .join("\n");
    Ok(Report {
        text,
        json: json!({
            "tenant": id.as_str(),
            "name": t.name,
            "ats": t.ats.as_str(),
            "status": if t.disabled { "disabled" } else { "enabled" },
            "connection": conn.state.as_str(),
            "detail": conn.detail,
            "needs_attention": conn.state == ConnectionState::NeedsAttention,
            "last_call": h.last_call.as_ref().map(|c| json!({
                "at": time_json(c.at_ms), "route": c.route,
            })),
            "key": {
                "stored": h.key.is_some() || key.is_some(),
                "label": h.key.as_ref().map(|c| c.label.clone()),
                "checked_at": h.key.as_ref().map(|c| time_json(c.at_ms)),
                "scopes_verified": h.key.as_ref().map(|c| c.scopes_verified),
                "last_changed": key.as_ref().map(|k| time_json(Timestamp::from_ms(k.last_changed_ms))),
            },
            "last_delivery": h.last_delivery.as_ref().map(|d| json!({
                "at": time_json(d.at_ms), "outcome": d.outcome.as_str(), "detail": d.detail,
            })),
            "token_count": tokens.len(),
            "pending_token": h.pending_token.is_some(),
            "invites": { "working": working, "total": links.len() },
        }),
    })
}
