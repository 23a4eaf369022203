//! `hubctl tenant …`: Ashby and Greenhouse customer accounts. A tenant's trigger token (Ashby's
//! "External Trigger Token", Greenhouse's partner key) is generated here, printed once and stored
//! in the registry only as its SHA-256; the customer's Ashby API key goes to Secrets Manager from
//! stdin, never from the command line. A Greenhouse tenant has no Ashby key: the hub sends its
//! partner key back on its `PATCH`es, so that key is also kept in Secrets Manager.

use std::io::{IsTerminal, Read};

use clap::{Args, Subcommand};
use hub::domain::{Ats, PackageRef, Tenant, TenantId, TokenHash, generate_trigger_token};
use hub::ports::{MAX_TENANT_TOKENS, RegistryOutcome, TenantToken};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};
use url::Url;

use crate::connect::{self, TenantRef, Validity};
use crate::context::{Ctx, SecretInfo};
use crate::output::{Failure, Report, table, time, time_json};
use crate::{BASE_URL_HINT, BaseUrl, urls};

const ASHBY_API: &str = "https://api.ashbyhq.com";

/// The longest Ashby API key accepted; real ones are far shorter.
const MAX_KEY_LEN: usize = 4096;

#[derive(Subcommand)]
pub enum Command {
    /// Register an Ashby (or, with --ats greenhouse, a Greenhouse) customer; prints its token
    /// (Greenhouse: its partner key) once.
    Create(CreateArgs),
    /// Store the customer's Ashby API key, read from stdin (or typed at a hidden prompt).
    SetAshbyKey(IdArg),
    /// List tenants: status, packages, how many tokens, whether the Ashby API key is set.
    List {
        /// Also list each token's SHA-256 and when it was added (for revoke-token).
        #[arg(long)]
        show_token_hashes: bool,
    },
    /// Refuse the tenant's tokens (Ashby gets 401) while keeping everything else.
    Disable(IdArg),
    /// Accept the tenant's tokens again.
    Enable(IdArg),
    /// Add a new trigger token and print it once; the old ones keep working until revoked.
    RotateToken {
        #[command(flatten)]
        id: IdArg,
        #[command(flatten)]
        base_url: BaseUrl,
    },
    /// Revoke one trigger token, named by its hash (see `tenant list --show-token-hashes`).
    RevokeToken {
        #[command(flatten)]
        id: IdArg,
        /// The token's SHA-256 in hex, or a unique prefix of at least 8 characters.
        #[arg(long, value_name = "HEX")]
        token_hash: String,
    },
    /// Make a connect link (printed once) on which the customer's Ashby admin gets the trigger
    /// token and saves the Ashby API key themselves.
    Invite {
        #[command(flatten)]
        tenant: TenantRef,
        #[command(flatten)]
        validity: Validity,
        #[command(flatten)]
        base_url: BaseUrl,
    },
    /// List the tenant's connect links and how each stands, or end one with --revoke.
    Invites {
        #[command(flatten)]
        tenant: TenantRef,
        /// End the link with this id (12 hex digits, from the listing) at once.
        #[arg(long, value_name = "LINK_ID")]
        revoke: Option<String>,
    },
    /// The tenant's connection: last ATS call, Ashby API key, last delivery, connect links.
    Status {
        #[command(flatten)]
        tenant: TenantRef,
    },
    /// Let the tenant's recruiters start a vendor's package.
    EnablePackage(PackageArgs),
    /// Stop offering a package to the tenant (assessments already started are unaffected).
    DisablePackage(PackageArgs),
}

#[derive(Args)]
pub struct IdArg {
    /// The tenant id: 1-64 characters of a-z, 0-9, '-', '_'.
    #[arg(long, value_name = "TENANT", value_parser = TenantId::parse)]
    id: TenantId,
}

#[derive(Args)]
pub struct CreateArgs {
    #[command(flatten)]
    id: IdArg,
    /// The customer's name, for operators.
    #[arg(long, value_parser = non_empty)]
    name: String,
    /// The customer's ATS: ashby or greenhouse.
    #[arg(long, value_name = "ATS", default_value = "ashby", value_parser = parse_ats)]
    ats: Ats,
    /// Where the hub calls assessment.update.
    #[arg(long, value_name = "URL", default_value = ASHBY_API, value_parser = Url::parse)]
    ashby_base_url: Url,
    /// A package to enable, as vendor/package; repeat for several.
    #[arg(long = "package", value_name = "VENDOR/PACKAGE", value_parser = PackageRef::parse)]
    packages: Vec<PackageRef>,
    /// Accept an http Ashby base URL on loopback (a local Ashby stand-in).
    #[arg(long)]
    allow_insecure_loopback: bool,
    /// Create the tenant without a token and print a connect link instead, on which the
    /// customer's Ashby admin gets the token and saves the Ashby API key (needs --base-url).
    #[arg(long)]
    invite: bool,
    #[command(flatten)]
    validity: Validity,
    #[command(flatten)]
    base_url: BaseUrl,
}

#[derive(Args)]
pub struct PackageArgs {
    #[command(flatten)]
    id: IdArg,
    /// The package, as vendor/package (see `hubctl vendor list`).
    #[arg(long, value_name = "VENDOR/PACKAGE", value_parser = PackageRef::parse)]
    package: PackageRef,
}

fn parse_ats(s: &str) -> Result<Ats, String> {
    Ats::parse(s).ok_or_else(|| "must be ashby or greenhouse".into())
}

fn non_empty(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(t.to_owned())
    }
}

pub async fn run(command: Command, ctx: &Ctx) -> Result<Report, Failure> {
    match command {
        Command::Create(args) => create(ctx, args).await,
        Command::SetAshbyKey(IdArg { id }) => set_ashby_key(ctx, &id).await,
        Command::List { show_token_hashes } => list(ctx, show_token_hashes).await,
        Command::Disable(IdArg { id }) => set_disabled(ctx, &id, true).await,
        Command::Enable(IdArg { id }) => set_disabled(ctx, &id, false).await,
        Command::RotateToken { id, base_url } => rotate_token(ctx, &id.id, &base_url).await,
        Command::RevokeToken { id, token_hash } => revoke_token(ctx, &id.id, &token_hash).await,
        Command::Invite {
            tenant,
            validity,
            base_url,
        } => connect::invite(ctx, &tenant.id()?, validity, &base_url).await,
        Command::Invites { tenant, revoke } => {
            connect::invites(ctx, &tenant.id()?, revoke.as_deref()).await
        }
        Command::Status { tenant } => connect::status(ctx, &tenant.id()?).await,
        Command::EnablePackage(a) => enable_package(ctx, &a.id.id, &a.package).await,
        Command::DisablePackage(a) => disable_package(ctx, &a.id.id, &a.package).await,
    }
}

async fn create(ctx: &Ctx, args: CreateArgs) -> Result<Report, Failure> {
    // Checked before anything is written: the link's code is shown only once, in the link.
    let link_base = if args.invite {
        if args.ats != Ats::Ashby {
            return Err(Failure::usage(
                "--invite is for Ashby tenants: a Greenhouse tenant's partner key is printed here \
                 and sent to Greenhouse",
            ));
        }
        Some(connect::link_base(&args.base_url)?)
    } else {
        None
    };
    urls::check_outbound(
        &args.ashby_base_url,
        "Ashby base URL",
        args.allow_insecure_loopback,
    )
    .map_err(Failure::usage)?;
    let mut packages: Vec<PackageRef> = Vec::new();
    for p in args.packages {
        offered(ctx, &p).await?;
        if !packages.contains(&p) {
            packages.push(p);
        }
    }
    let tenant = Tenant {
        id: args.id.id,
        name: args.name,
        ats: args.ats,
        ashby_base_url: args.ashby_base_url,
        packages,
        disabled: false,
    };
    if let Some(base) = link_base {
        return create_awaiting(ctx, &tenant, args.validity, &base).await;
    }
    let token = generate_trigger_token();
    let hash = TokenHash::of(&token);
    match ctx
        .store
        .create_tenant(&tenant, &hash)
        .await
        .map_err(|e| ctx.store_failed(e))?
    {
        RegistryOutcome::Done => {}
        RegistryOutcome::AlreadyExists => {
            return Err(Failure::failed(format!(
                "tenant {} already exists and was left as it is; `hubctl tenant rotate-token \
                 --id {0}` gives it a new token",
                tenant.id
            )));
        }
        other => return Err(unexpected(other)),
    }
    let id = &tenant.id;
    let base = args.base_url.text();
    if tenant.ats == Ats::Greenhouse {
        store_partner_key(ctx, id, &token).await?;
        return Ok(greenhouse_created(&tenant, &token, &hash, base));
    }
    let mut text = format!(
        "Created tenant {id} ({}).\n\n\
         External Trigger Token (shown only this once; the hub keeps only its hash):\n\n    {}\n\n\
         Token hash: {}\n",
        tenant.name,
        token.expose_secret(),
        hash.to_hex()
    );
    text.push_str(&base_url_line(base.as_deref()));
    text.push_str(&packages_line(&tenant));
    text.push_str(&format!(
        "\nNext:\n\
         1. Give the customer the token over a channel you would trust with a password.\n\
         2. In Ashby (Admin > Integrations) the customer enables the hub's integration, pastes\n   \
         the token into its API key field, and creates an Ashby API key with the Candidates\n   \
         write permission for the hub.\n\
         3. Store that key: hubctl tenant set-ashby-key --id {id}\n"
    ));
    Ok(Report {
        text,
        json: json!({
            "tenant": tenant_json(&tenant, None, None),
            "trigger_token": token.expose_secret(),
            "token_hash": hash.to_hex(),
            "base_url": base,
        }),
    })
}

/// `tenant create --invite`: the tenant without a token, awaiting its customer, and its first
/// connect link.
async fn create_awaiting(
    ctx: &Ctx,
    tenant: &Tenant,
    validity: Validity,
    base: &str,
) -> Result<Report, Failure> {
    match ctx
        .store
        .create_tenant_awaiting(tenant)
        .await
        .map_err(|e| ctx.store_failed(e))?
    {
        RegistryOutcome::Done => {}
        RegistryOutcome::AlreadyExists => {
            return Err(Failure::failed(format!(
                "tenant {} already exists and was left as it is; `hubctl tenant invite {0}` \
                 makes it a connect link",
                tenant.id
            )));
        }
        other => return Err(unexpected(other)),
    }
    let link = connect::make_link(ctx, tenant, validity, base).await?;
    let text = format!(
        "Created tenant {} ({}), awaiting its customer: it has no trigger token until the \
         customer presses \"Show token\" on the link.\n{}\n{}",
        tenant.id,
        tenant.name,
        packages_line(tenant),
        link.text
    );
    let mut json = link.json;
    json["tenant"] = tenant_json(tenant, None, None);
    Ok(Report { text, json })
}

/// Keeps a Greenhouse tenant's partner key for the hub's `PATCH`es (the newest one wins).
async fn store_partner_key(ctx: &Ctx, id: &TenantId, key: &SecretString) -> Result<(), Failure> {
    let name = ctx.names.greenhouse_partner_key(id);
    ctx.secrets
        .put(&name, key)
        .await
        .map_err(|e| ctx.secret_failed(&name, e))
}

/// What `tenant create --ats greenhouse` prints: the key and the Greenhouse steps.
fn greenhouse_created(
    tenant: &Tenant,
    key: &SecretString,
    hash: &TokenHash,
    base: Option<String>,
) -> Report {
    let id = &tenant.id;
    let mut text = format!(
        "Created Greenhouse tenant {id} ({}).\n\n\
         Partner API key (shown only this once; the registry keeps only its hash, and Secrets \
         Manager a copy for the hub's PATCHes):\n\n    {}\n\n\
         Token hash: {}\n",
        tenant.name,
        key.expose_secret(),
        hash.to_hex()
    );
    text.push_str(&packages_line(tenant));
    let endpoints = ["list_tests", "send_test", "test_status", "response_error"];
    let urls: Vec<String> = endpoints
        .iter()
        .map(|e| match &base {
            Some(b) => format!("{b}/greenhouse/{e}"),
            None => format!("<base URL>/greenhouse/{e}"),
        })
        .collect();
    text.push_str(&format!(
        "\nNext:\n\
         1. Send the key, over a channel you would trust with a password, and these four URLs to\n   \
         Greenhouse (a support ticket), or have the customer enter them under Configure > Dev\n   \
         Center if their organisation can:\n\n       {}\n\n\
         2. The customer adds the hub's interview stage to a job; its tests are the packages\n   \
         above.\n",
        urls.join("\n       ")
    ));
    if base.is_none() {
        text.push_str(&format!("\nThe base URL is {BASE_URL_HINT}.\n"));
    }
    Report {
        text,
        json: json!({
            "tenant": tenant_json(tenant, None, None),
            "partner_key": key.expose_secret(),
            "token_hash": hash.to_hex(),
            "base_url": base,
            "urls": urls,
        }),
    }
}

async fn set_ashby_key(ctx: &Ctx, id: &TenantId) -> Result<Report, Failure> {
    // Before reading the key, so that nobody types a key for a tenant that does not exist.
    if existing(ctx, id).await?.ats == Ats::Greenhouse {
        return Err(Failure::usage(format!(
            "tenant {id} is a Greenhouse tenant: it has no Ashby API key (the hub PATCHes \
             Greenhouse with the tenant's partner key)"
        )));
    }
    let key = read_key(id)?;
    let name = ctx.names.ashby_api_key(id);
    ctx.secrets
        .put(&name, &key)
        .await
        .map_err(|e| ctx.secret_failed(&name, e))?;
    Ok(Report {
        text: format!(
            "Stored the Ashby API key of tenant {id} in Secrets Manager as {name}.\n\
             A key that replaces another reaches running functions within HUB_SECRET_CACHE_SECONDS \
             (default 5 minutes)."
        ),
        json: json!({ "tenant": id.as_str(), "secret_name": name }),
    })
}

/// The key from stdin: piped in, or typed at a prompt that does not echo it.
fn read_key(id: &TenantId) -> Result<SecretString, Failure> {
    let raw = if std::io::stdin().is_terminal() {
        rpassword::prompt_password(format!(
            "Ashby API key for tenant {id} (input hidden, then Enter): "
        ))
        .map_err(|e| Failure::failed(format!("could not read the key from the terminal: {e}")))?
    } else {
        let mut buf = String::new();
        std::io::stdin().read_to_string(&mut buf).map_err(|_| {
            Failure::usage("could not read the Ashby API key from stdin: it must be UTF-8 text")
        })?;
        buf
    };
    let raw = SecretString::from(raw);
    let key = raw.expose_secret().trim();
    if key.is_empty() {
        return Err(Failure::usage(format!(
            "no Ashby API key on stdin; pipe it in (for example `pbpaste | hubctl tenant \
             set-ashby-key --id {id}`) or run the command in a terminal and paste it at the prompt"
        )));
    }
    if key.len() > MAX_KEY_LEN || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(Failure::usage(
            "the input is not an Ashby API key: it must be one line without spaces; paste \
             only the key",
        ));
    }
    Ok(SecretString::from(key.to_owned()))
}

async fn list(ctx: &Ctx, show_token_hashes: bool) -> Result<Report, Failure> {
    let entries = ctx
        .store
        .list_tenants()
        .await
        .map_err(|e| ctx.store_failed(e))?;
    let mut rows = Vec::new();
    let mut token_rows = Vec::new();
    let mut docs = Vec::new();
    for e in &entries {
        let t = &e.tenant;
        // A Greenhouse tenant has no Ashby key: its column shows the partner key the hub
        // PATCHes with.
        let what = match t.ats {
            Ats::Ashby => "",
            Ats::Greenhouse => "greenhouse key ",
        };
        let key = ctx.secret_info(&ats_key_name(ctx, t)).await?;
        // Reports the ATS made of unusable replies naming none of the tenant's assessments
        // (Greenhouse's response_error): their count; their texts may quote candidate data.
        let standing = match e.ats_errors {
            0 => status(t).to_owned(),
            n => format!("{}; {n} ATS error report(s)", status(t)),
        };
        // The connection as the tenant's connect page shows it.
        let health = connect::connection(t, &e.health, key.as_ref()).state;
        rows.push(vec![
            t.id.to_string(),
            t.name.clone(),
            standing,
            health.as_str().to_owned(),
            e.tokens.len().to_string(),
            key.as_ref().map_or(format!("{what}missing"), |k| {
                format!(
                    "{what}set {}",
                    time(hub::clock::Timestamp::from_ms(k.last_changed_ms))
                )
            }),
            t.packages
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", "),
        ]);
        for tok in &e.tokens {
            token_rows.push(vec![
                t.id.to_string(),
                tok.hash.to_hex(),
                time(tok.added_at_ms),
            ]);
        }
        let tokens = show_token_hashes.then_some(e.tokens.as_slice());
        let mut doc = tenant_json(t, tokens, Some(key.as_ref()));
        doc["token_count"] = json!(e.tokens.len());
        doc["ats_error_reports"] = json!(e.ats_errors);
        doc["connection"] = json!(health.as_str());
        docs.push(doc);
    }
    let text = if entries.is_empty() {
        "No tenants yet: `hubctl tenant create --id ID --name NAME` registers one.".into()
    } else {
        let mut text = table(
            &[
                "ID",
                "NAME",
                "STATUS",
                "CONNECTION",
                "TOKENS",
                "ASHBY KEY",
                "PACKAGES",
            ],
            &rows,
        );
        if show_token_hashes {
            text.push_str("\n\nTrigger tokens (SHA-256 only; the tokens are not kept):\n");
            text.push_str(&table(&["TENANT", "TOKEN HASH", "ADDED"], &token_rows));
        }
        text
    };
    Ok(Report {
        text,
        json: json!({ "tenants": docs }),
    })
}

async fn set_disabled(ctx: &Ctx, id: &TenantId, disabled: bool) -> Result<Report, Failure> {
    let tenant = ctx
        .store
        .update_tenant(id, &|t| t.disabled = disabled)
        .await
        .map_err(|e| ctx.store_failed(e))?
        .ok_or_else(|| no_such_tenant(id))?;
    let text = if disabled {
        format!(
            "Tenant {id} is disabled: Ashby's calls with any of its tokens now get 401.\n\
             Its tokens, Ashby API key and packages are kept; `hubctl tenant enable --id {id}`\n\
             restores it."
        )
    } else {
        format!("Tenant {id} is enabled: its tokens are accepted again.")
    };
    Ok(Report {
        text,
        json: json!({ "tenant": tenant_json(&tenant, None, None) }),
    })
}

async fn rotate_token(ctx: &Ctx, id: &TenantId, base_url: &BaseUrl) -> Result<Report, Failure> {
    let token = generate_trigger_token();
    let hash = TokenHash::of(&token);
    match ctx
        .store
        .add_tenant_token(id, &hash)
        .await
        .map_err(|e| ctx.store_failed(e))?
    {
        RegistryOutcome::Done => {}
        RegistryOutcome::NotFound => return Err(no_such_tenant(id)),
        RegistryOutcome::TooManyTokens => {
            return Err(Failure::failed(format!(
                "tenant {id} already holds {MAX_TENANT_TOKENS} trigger tokens; revoke one first \
                 (`hubctl tenant list --show-token-hashes`, then `hubctl tenant revoke-token`)"
            )));
        }
        other => return Err(unexpected(other)),
    }
    if existing(ctx, id).await?.ats == Ats::Greenhouse {
        // Greenhouse holds one key per org: the hub PATCHes with the newest.
        store_partner_key(ctx, id, &token).await?;
    }
    let older: Vec<TenantToken> = tokens(ctx, id)
        .await?
        .into_iter()
        .filter(|t| t.hash != hash)
        .collect();
    let base = base_url.text();
    let mut text = format!(
        "Added a trigger token to tenant {id}.\n\n\
         New External Trigger Token (shown only this once):\n\n    {}\n\n\
         Token hash: {}\n",
        token.expose_secret(),
        hash.to_hex()
    );
    text.push_str(&base_url_line(base.as_deref()));
    if older.is_empty() {
        text.push_str("\nIt is the tenant's only token.\n");
    } else {
        text.push_str(
            "\nThe older tokens keep working. Once the customer has pasted the new token into\n\
             Ashby, revoke the old one:\n",
        );
        for t in &older {
            text.push_str(&format!(
                "\n    # added {}\n    hubctl tenant revoke-token --id {id} --token-hash {}\n",
                time(t.added_at_ms),
                t.hash.to_hex()
            ));
        }
    }
    Ok(Report {
        text,
        json: json!({
            "tenant": id.as_str(),
            "trigger_token": token.expose_secret(),
            "token_hash": hash.to_hex(),
            "base_url": base,
            "other_tokens": older.iter().map(token_json).collect::<Vec<_>>(),
        }),
    })
}

async fn revoke_token(ctx: &Ctx, id: &TenantId, wanted: &str) -> Result<Report, Failure> {
    let wanted = wanted.trim().to_ascii_lowercase();
    if wanted.len() < 8 || wanted.len() > 64 || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::usage(
            "--token-hash must be a token's SHA-256 in hex, or at least its first 8 characters \
             (see `hubctl tenant list --show-token-hashes`)",
        ));
    }
    existing(ctx, id).await?;
    let held = tokens(ctx, id).await?;
    let matching: Vec<&TenantToken> = held
        .iter()
        .filter(|t| t.hash.to_hex().starts_with(&wanted))
        .collect();
    let target = match matching.as_slice() {
        [one] => **one,
        [] => {
            return Err(Failure::failed(format!(
                "tenant {id} holds no token whose hash starts with {wanted}; \
                 `hubctl tenant list --show-token-hashes` lists them"
            )));
        }
        _ => {
            return Err(Failure::usage(format!(
                "{wanted} matches several of tenant {id}'s tokens; give more of the hash"
            )));
        }
    };
    if held.len() == 1 {
        return Err(Failure::failed(format!(
            "this is tenant {id}'s only token, and revoking it would lock the customer out; \
             `hubctl tenant rotate-token --id {id}` first, or `hubctl tenant disable --id {id}` \
             to cut the tenant off"
        )));
    }
    match ctx
        .store
        .revoke_tenant_token(id, &target.hash)
        .await
        .map_err(|e| ctx.store_failed(e))?
    {
        RegistryOutcome::Done => {}
        RegistryOutcome::NotFound => return Err(no_such_tenant(id)),
        RegistryOutcome::UnknownToken => {
            return Err(Failure::failed(format!(
                "the token {} of tenant {id} was revoked by someone else meanwhile",
                target.hash.to_hex()
            )));
        }
        other => return Err(unexpected(other)),
    }
    let remaining = held.len() - 1;
    Ok(Report {
        text: format!(
            "Revoked the token {} of tenant {id}: Ashby's calls with it now get 401. \
             {remaining} token(s) remain.",
            target.hash.to_hex()
        ),
        json: json!({
            "tenant": id.as_str(),
            "revoked_token_hash": target.hash.to_hex(),
            "remaining_tokens": remaining,
        }),
    })
}

async fn enable_package(ctx: &Ctx, id: &TenantId, package: &PackageRef) -> Result<Report, Failure> {
    existing(ctx, id).await?;
    offered(ctx, package).await?;
    let tenant = ctx
        .store
        .update_tenant(id, &|t| {
            if !t.packages.contains(package) {
                t.packages.push(package.clone());
            }
        })
        .await
        .map_err(|e| ctx.store_failed(e))?
        .ok_or_else(|| no_such_tenant(id))?;
    Ok(Report {
        text: format!(
            "Tenant {id} may now start {package}; Ashby lists it (assessment type id {}) the \
             next time it calls assessment.list.",
            package.type_id()
        ),
        json: json!({ "tenant": tenant_json(&tenant, None, None) }),
    })
}

async fn disable_package(
    ctx: &Ctx,
    id: &TenantId,
    package: &PackageRef,
) -> Result<Report, Failure> {
    let tenant = ctx
        .store
        .update_tenant(id, &|t| t.packages.retain(|p| p != package))
        .await
        .map_err(|e| ctx.store_failed(e))?
        .ok_or_else(|| no_such_tenant(id))?;
    Ok(Report {
        text: format!(
            "Tenant {id} can no longer start {package}; assessments already started carry on."
        ),
        json: json!({ "tenant": tenant_json(&tenant, None, None) }),
    })
}

// --- helpers ---

/// The secret holding the key the hub writes back to the tenant's ATS with: its Ashby API key,
/// or a Greenhouse tenant's partner key.
pub(crate) fn ats_key_name(ctx: &Ctx, t: &Tenant) -> String {
    match t.ats {
        Ats::Ashby => ctx.names.ashby_api_key(&t.id),
        Ats::Greenhouse => ctx.names.greenhouse_partner_key(&t.id),
    }
}

pub(crate) async fn existing(ctx: &Ctx, id: &TenantId) -> Result<Tenant, Failure> {
    ctx.store
        .tenant(id)
        .await
        .map_err(|e| ctx.store_failed(e))?
        .ok_or_else(|| no_such_tenant(id))
}

async fn tokens(ctx: &Ctx, id: &TenantId) -> Result<Vec<TenantToken>, Failure> {
    ctx.store
        .tenant_tokens(id)
        .await
        .map_err(|e| ctx.store_failed(e))
}

/// Refuses a package that no registered vendor offers, saying what the vendor does offer.
async fn offered(ctx: &Ctx, package: &PackageRef) -> Result<(), Failure> {
    let vendor = ctx
        .store
        .vendor(&package.vendor)
        .await
        .map_err(|e| ctx.store_failed(e))?
        .ok_or_else(|| {
            Failure::failed(format!(
                "package {package} is not offered: there is no vendor {} (`hubctl vendor list` \
                 shows the vendors)",
                package.vendor
            ))
        })?;
    if vendor.package(&package.package).is_some() {
        return Ok(());
    }
    let ids: Vec<&str> = vendor.packages.iter().map(|p| p.id.as_str()).collect();
    Err(Failure::failed(format!(
        "package {package} is not offered: vendor {} offers {}",
        vendor.id,
        if ids.is_empty() {
            "no packages yet".to_owned()
        } else {
            ids.join(", ")
        }
    )))
}

pub(crate) fn no_such_tenant(id: &TenantId) -> Failure {
    Failure::failed(format!(
        "there is no tenant {id} (`hubctl tenant list` shows the tenants)"
    ))
}

/// An outcome the store's contract rules out for this call.
pub(crate) fn unexpected(outcome: RegistryOutcome) -> Failure {
    Failure::failed(format!(
        "the store answered {outcome:?}, which this command does not expect; nothing was changed"
    ))
}

fn status(t: &Tenant) -> &'static str {
    if t.disabled { "disabled" } else { "enabled" }
}

fn base_url_line(base: Option<&str>) -> String {
    match base {
        Some(b) => format!("Hub base URL (Ashby calls it): {b}\n"),
        None => format!("Hub base URL (Ashby calls it): not given; it is {BASE_URL_HINT}\n"),
    }
}

fn packages_line(t: &Tenant) -> String {
    if t.packages.is_empty() {
        format!(
            "Packages: none yet (`hubctl tenant enable-package --id {} --package VENDOR/PACKAGE`)\n",
            t.id
        )
    } else {
        let list: Vec<String> = t.packages.iter().map(ToString::to_string).collect();
        format!("Packages: {}\n", list.join(", "))
    }
}

fn token_json(t: &TenantToken) -> Value {
    json!({ "hash": t.hash.to_hex(), "added_at": time_json(t.added_at_ms) })
}

/// A tenant for scripts. `tokens` (hashes) and `key` (whether the Ashby API key is set) only
/// when asked for.
fn tenant_json(
    t: &Tenant,
    tokens: Option<&[TenantToken]>,
    key: Option<Option<&SecretInfo>>,
) -> Value {
    let mut doc = json!({
        "id": t.id.as_str(),
        "name": t.name,
        "status": status(t),
        "ats": t.ats.as_str(),
        "ashby_base_url": t.ashby_base_url.as_str(),
        "packages": t.packages.iter().map(|p| json!({
            "package": p.to_string(),
            "assessment_type_id": p.type_id().to_string(),
        })).collect::<Vec<_>>(),
    });
    if let Some(tokens) = tokens {
        doc["tokens"] = tokens.iter().map(token_json).collect();
    }
    if let Some(key) = key {
        let field = match t.ats {
            Ats::Ashby => "ashby_api_key",
            Ats::Greenhouse => "greenhouse_partner_key",
        };
        doc[field] = json!({
            "set": key.is_some(),
            "last_changed": key.map_or(Value::Null, |k| time_json(hub::clock::Timestamp::from_ms(k.last_changed_ms))),
        });
    }
    doc
}
