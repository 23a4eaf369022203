//! `hubctl vendor …`: background-check and assessment vendors. A vendor's signing secret is
//! generated here, printed once and kept in Secrets Manager; rotating it keeps the previous value
//! as `AWSPREVIOUS`, which the hub still accepts on callbacks.

use clap::{Args, Subcommand};
use hub::domain::{
    Package, PackageId, PackageOption, PackageRef, Vendor, VendorId, generate_signing_secret,
    options,
};
use hub::ports::RegistryOutcome;
use hub::vendors::url_policy::{LoopbackHttp, check_order_url};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use url::Url;

use crate::context::{Ctx, SecretInfo};
use crate::output::{Failure, Report, table, time, time_json};
use crate::{BASE_URL_HINT, BaseUrl, urls};

#[derive(Subcommand)]
pub enum Command {
    /// Register a vendor; prints its signing secret once.
    Add(AddArgs),
    /// Add a package to a vendor's offer.
    AddPackage {
        #[command(flatten)]
        id: IdArg,
        /// The package, as id:name[:description].
        #[arg(long, value_name = "ID:NAME[:DESCRIPTION]", value_parser = parse_package)]
        package: Package,
        /// The package's options (what the recruiter gives on start, shown in Ashby as custom
        /// fields): a JSON array of {"id", "name", "type", "required", "possible_values"}; see
        /// docs/onboarding.md.
        #[arg(long, value_name = "FILE.json", value_parser = read_options)]
        options: Option<OptionsFile>,
    },
    /// Replace the options of a package the vendor offers (an empty array removes them).
    SetOptions {
        #[command(flatten)]
        id: IdArg,
        /// The package id.
        #[arg(long, value_name = "PACKAGE", value_parser = PackageId::parse)]
        package: PackageId,
        /// A JSON array of options, as for `add-package --options`.
        #[arg(long, value_name = "FILE.json", value_parser = read_options)]
        options: OptionsFile,
    },
    /// List vendors, their packages (with Ashby's assessment type ids) and secrets' ages.
    List,
    /// Store a new signing secret and print it once; the previous one still verifies callbacks.
    RotateSecret {
        #[command(flatten)]
        id: IdArg,
    },
}

#[derive(Args)]
pub struct IdArg {
    /// The vendor id: 1-64 characters of a-z, 0-9, '-', '_'; the last segment of its callback URL.
    #[arg(long, value_name = "VENDOR", value_parser = VendorId::parse)]
    id: VendorId,
}

#[derive(Args)]
pub struct AddArgs {
    #[command(flatten)]
    id: IdArg,
    /// The vendor's name, for operators.
    #[arg(long, value_parser = non_empty)]
    name: String,
    /// Where the hub posts orders and cancels: https.
    #[arg(long, value_name = "URL", value_parser = Url::parse)]
    order_url: Url,
    /// A package, as id:name[:description]; repeat for several.
    #[arg(long = "package", value_name = "ID:NAME[:DESCRIPTION]", value_parser = parse_package)]
    packages: Vec<Package>,
    /// Accept an http order URL on loopback (127.0.0.0/8, ::1, localhost), for local runs.
    #[arg(long)]
    allow_insecure_loopback: bool,
    #[command(flatten)]
    base_url: BaseUrl,
}

fn non_empty(s: &str) -> Result<String, String> {
    let t = s.trim();
    if t.is_empty() {
        Err("must not be empty".into())
    } else {
        Ok(t.to_owned())
    }
}

/// The options read from a `--options` file.
#[derive(Clone, Debug)]
pub struct OptionsFile(Vec<PackageOption>);

/// A JSON file holding an array of package options, checked as the hub checks them.
fn read_options(path: &str) -> Result<OptionsFile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
    let options: Vec<PackageOption> =
        serde_json::from_str(&text).map_err(|e| format!("{path}: {e}"))?;
    options::check_options(&options).map_err(|e| format!("{path}: {e}"))?;
    Ok(OptionsFile(options))
}

/// `id:name[:description]`; the description may itself contain colons.
fn parse_package(s: &str) -> Result<Package, String> {
    let mut parts = s.splitn(3, ':');
    let id = parts.next().unwrap_or_default();
    let name = parts.next().map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Err(format!(
            "{s:?} must be id:name[:description], e.g. criminal-basic:Criminal record check"
        ));
    }
    Ok(Package {
        id: PackageId::parse(id).map_err(|e| e.to_string())?,
        name: name.to_owned(),
        description: parts.next().map(str::trim).unwrap_or_default().to_owned(),
        options: vec![],
    })
}

pub async fn run(command: Command, ctx: &Ctx) -> Result<Report, Failure> {
    match command {
        Command::Add(args) => add(ctx, args).await,
        Command::AddPackage {
            id,
            mut package,
            options,
        } => {
            package.options = options.map(|o| o.0).unwrap_or_default();
            add_package(ctx, &id.id, package).await
        }
        Command::SetOptions {
            id,
            package,
            options,
        } => set_options(ctx, &id.id, &package, options.0).await,
        Command::List => list(ctx).await,
        Command::RotateSecret { id } => rotate_secret(ctx, &id.id).await,
    }
}

async fn add(ctx: &Ctx, args: AddArgs) -> Result<Report, Failure> {
    urls::check_outbound(&args.order_url, "order URL", args.allow_insecure_loopback)
        .map_err(Failure::usage)?;
    // And the policy the functions apply before calling a vendor, so that nothing is registered
    // that the hub would then refuse to call.
    let loopback = if args.allow_insecure_loopback {
        LoopbackHttp::Allow
    } else {
        LoopbackHttp::Refuse
    };
    check_order_url(&args.order_url, loopback)
        .map_err(|e| Failure::usage(format!("order URL {} is refused: {e}", args.order_url)))?;
    let mut packages: Vec<Package> = Vec::new();
    for p in args.packages {
        if packages.iter().any(|q| q.id == p.id) {
            return Err(Failure::usage(format!("package {} is given twice", p.id)));
        }
        packages.push(p);
    }
    let vendor = Vendor {
        id: args.id.id,
        name: args.name,
        order_url: args.order_url,
        packages,
    };
    // The record first: if the vendor already exists, its secret must not be touched.
    match ctx
        .store
        .create_vendor(&vendor)
        .await
        .map_err(|e| ctx.store_failed(e))?
    {
        RegistryOutcome::Done => {}
        RegistryOutcome::AlreadyExists => {
            return Err(Failure::failed(format!(
                "vendor {} already exists and was left as it is (`hubctl vendor add-package` \
                 and `hubctl vendor rotate-secret` change it)",
                vendor.id
            )));
        }
        other => {
            return Err(Failure::failed(format!(
                "the store answered {other:?}, which this command does not expect"
            )));
        }
    }
    let id = &vendor.id;
    let secret = generate_signing_secret();
    let name = ctx.names.signing_secret(id);
    ctx.secrets.put(&name, &secret).await.map_err(|e| {
        Failure::failed(format!(
            "vendor {id} is registered, but its signing secret could not be stored in Secrets \
             Manager as {name} ({e}); until it is, its orders and callbacks fail. Run `hubctl \
             vendor rotate-secret --id {id}` to generate and store one."
        ))
    })?;
    let callback = args.base_url.text().map(|b| format!("{b}/callbacks/{id}"));
    let mut text = format!(
        "Registered vendor {id} ({}), orders to {}.\n\n\
         Signing secret (shown only this once; kept in Secrets Manager as {name}):\n\n    {}\n\n",
        vendor.name,
        vendor.order_url,
        secret.expose_secret()
    );
    text.push_str(&match &callback {
        Some(c) => format!("Callback URL: {c}\n"),
        None => format!(
            "Callback URL: <hub base URL>/callbacks/{id}; the base URL is {BASE_URL_HINT}\n"
        ),
    });
    text.push_str(&packages_text(&vendor));
    text.push_str(
        "\nGive the vendor its id, the signing secret (over a channel you would trust with a\n\
         password) and docs/vendor-protocol.md. Every order carries the full callback URL.\n",
    );
    Ok(Report {
        text,
        json: json!({
            "vendor": vendor_json(&vendor, None),
            "signing_secret": secret.expose_secret(),
            "secret_name": name,
            "callback_url": callback,
        }),
    })
}

async fn add_package(ctx: &Ctx, id: &VendorId, package: Package) -> Result<Report, Failure> {
    let vendor = existing(ctx, id).await?;
    if vendor.package(&package.id).is_some() {
        return Err(Failure::failed(format!(
            "vendor {id} already offers a package {}",
            package.id
        )));
    }
    let vendor = ctx
        .store
        .update_vendor(id, &|v| {
            if v.package(&package.id).is_none() {
                v.packages.push(package.clone());
            }
        })
        .await
        .map_err(|e| ctx.store_failed(e))?
        .ok_or_else(|| no_such_vendor(id))?;
    let reference = PackageRef {
        vendor: id.clone(),
        package: package.id.clone(),
    };
    Ok(Report {
        text: format!(
            "Vendor {id} now offers {reference} ({}), assessment type id {}.\n\
             Tenants see it once it is enabled for them: hubctl tenant enable-package --id \
             TENANT --package {reference}",
            package.name,
            reference.type_id()
        ),
        json: json!({ "vendor": vendor_json(&vendor, None) }),
    })
}

async fn set_options(
    ctx: &Ctx,
    id: &VendorId,
    package: &PackageId,
    options: Vec<PackageOption>,
) -> Result<Report, Failure> {
    let vendor = existing(ctx, id).await?;
    if vendor.package(package).is_none() {
        return Err(Failure::failed(format!(
            "vendor {id} offers no package {package} (`hubctl vendor list` shows them)"
        )));
    }
    let vendor = ctx
        .store
        .update_vendor(id, &|v| {
            if let Some(p) = v.packages.iter_mut().find(|p| &p.id == package) {
                p.options = options.clone();
            }
        })
        .await
        .map_err(|e| ctx.store_failed(e))?
        .ok_or_else(|| no_such_vendor(id))?;
    let reference = PackageRef {
        vendor: id.clone(),
        package: package.clone(),
    };
    let ids: Vec<String> = options
        .iter()
        .map(|o| hub::domain::options::field_id(&reference, &o.id))
        .collect();
    Ok(Report {
        text: if ids.is_empty() {
            format!("Package {reference} now has no options.")
        } else {
            format!(
                "Package {reference} now has {} option(s); Ashby lists them (customField.list) \
                 as {}.",
                ids.len(),
                ids.join(", ")
            )
        },
        json: json!({ "vendor": vendor_json(&vendor, None) }),
    })
}

async fn list(ctx: &Ctx) -> Result<Report, Failure> {
    let vendors = ctx
        .store
        .list_vendors()
        .await
        .map_err(|e| ctx.store_failed(e))?;
    let mut rows = Vec::new();
    let mut package_rows = Vec::new();
    let mut docs = Vec::new();
    for v in &vendors {
        let secret = ctx.secret_info(&ctx.names.signing_secret(&v.id)).await?;
        rows.push(vec![
            v.id.to_string(),
            v.name.clone(),
            v.order_url.to_string(),
            secret.as_ref().map_or("missing".into(), |s| {
                format!(
                    "set {}",
                    time(hub::clock::Timestamp::from_ms(s.last_changed_ms))
                )
            }),
        ]);
        for p in &v.packages {
            let r = PackageRef {
                vendor: v.id.clone(),
                package: p.id.clone(),
            };
            package_rows.push(vec![r.to_string(), p.name.clone(), r.type_id().to_string()]);
        }
        docs.push(vendor_json(v, Some(secret.as_ref())));
    }
    let text = if vendors.is_empty() {
        "No vendors yet: `hubctl vendor add --id ID --name NAME --order-url URL` registers one."
            .into()
    } else {
        let mut text = table(&["ID", "NAME", "ORDER URL", "SIGNING SECRET"], &rows);
        text.push_str("\n\nPackages:\n");
        text.push_str(&table(
            &["PACKAGE", "NAME", "ASSESSMENT TYPE ID"],
            &package_rows,
        ));
        text
    };
    Ok(Report {
        text,
        json: json!({ "vendors": docs }),
    })
}

async fn rotate_secret(ctx: &Ctx, id: &VendorId) -> Result<Report, Failure> {
    existing(ctx, id).await?;
    let secret = generate_signing_secret();
    let name = ctx.names.signing_secret(id);
    ctx.secrets
        .put(&name, &secret)
        .await
        .map_err(|e| ctx.secret_failed(&name, e))?;
    Ok(Report {
        text: format!(
            "Stored a new signing secret for vendor {id} as {name}.\n\n\
             New signing secret (shown only this once):\n\n    {}\n\n\
             Give it to the vendor. Callbacks signed with this secret or with the previous one\n\
             are accepted until the next rotation, so the vendor can switch at its own pace.\n\
             Orders and cancels are signed with the new secret once running functions refresh\n\
             their cache (HUB_SECRET_CACHE_SECONDS, default 5 minutes). Rotate again only after\n\
             the vendor has switched: a second rotation retires the previous secret.",
            secret.expose_secret()
        ),
        json: json!({
            "vendor": id.as_str(),
            "signing_secret": secret.expose_secret(),
            "secret_name": name,
        }),
    })
}

async fn existing(ctx: &Ctx, id: &VendorId) -> Result<Vendor, Failure> {
    ctx.store
        .vendor(id)
        .await
        .map_err(|e| ctx.store_failed(e))?
        .ok_or_else(|| no_such_vendor(id))
}

fn no_such_vendor(id: &VendorId) -> Failure {
    Failure::failed(format!(
        "there is no vendor {id} (`hubctl vendor list` shows the vendors)"
    ))
}

fn packages_text(v: &Vendor) -> String {
    if v.packages.is_empty() {
        return format!(
            "Packages: none yet (`hubctl vendor add-package --id {} --package ID:NAME`)\n",
            v.id
        );
    }
    let mut text = String::from("Packages:\n");
    for p in &v.packages {
        let r = PackageRef {
            vendor: v.id.clone(),
            package: p.id.clone(),
        };
        text.push_str(&format!(
            "    {r}  {}  (assessment type id {}{})\n",
            p.name,
            r.type_id(),
            match p.options.len() {
                0 => String::new(),
                n => format!("; {n} option(s)"),
            }
        ));
    }
    text
}

/// A vendor for scripts; `secret` (whether the signing secret is set) only when asked for.
fn vendor_json(v: &Vendor, secret: Option<Option<&SecretInfo>>) -> Value {
    let mut doc = json!({
        "id": v.id.as_str(),
        "name": v.name,
        "order_url": v.order_url.as_str(),
        "packages": v.packages.iter().map(|p| json!({
            "id": p.id.as_str(),
            "name": p.name,
            "description": p.description,
            "assessment_type_id": PackageRef { vendor: v.id.clone(), package: p.id.clone() }
                .type_id()
                .to_string(),
            "options": p.options,
        })).collect::<Vec<_>>(),
    });
    if let Some(secret) = secret {
        doc["signing_secret"] = json!({
            "set": secret.is_some(),
            "last_changed": secret.map_or(Value::Null, |s| time_json(hub::clock::Timestamp::from_ms(s.last_changed_ms))),
        });
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_package_spec_keeps_colons_in_its_description() {
        let p = parse_package("criminal-basic:Criminal record check:County: all").expect("valid");
        assert_eq!(p.id.as_str(), "criminal-basic");
        assert_eq!(p.name, "Criminal record check");
        assert_eq!(p.description, "County: all");
        assert_eq!(parse_package("x:Y").expect("valid").description, "");
        assert!(parse_package("x").is_err());
        assert!(parse_package("x:").is_err());
        assert!(parse_package("Bad Id:Name").is_err());
    }
}
