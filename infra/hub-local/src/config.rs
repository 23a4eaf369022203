//! The local hub's registry: tenants and vendors from a TOML file (`--config`), or the built-in
//! demo (a sandbox vendor and a demo tenant wired to the Ashby stand-in).

use std::collections::HashSet;

use anyhow::{Context, bail};
use hub::domain::{
    Ats, OptionId, OptionKind, Package, PackageId, PackageOption, PackageRef, PossibleValue,
    Tenant, TenantId, Vendor, VendorId, options,
};
use serde::Deserialize;
use url::Url;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    #[serde(default)]
    pub vendors: Vec<VendorConfig>,
    #[serde(default)]
    pub tenants: Vec<TenantConfig>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VendorConfig {
    pub id: VendorId,
    pub name: String,
    pub order_url: Url,
    pub signing_secret: String,
    #[serde(default)]
    pub packages: Vec<Package>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TenantConfig {
    pub id: TenantId,
    pub name: String,
    /// `"ashby"` (the default) or `"greenhouse"`.
    #[serde(default)]
    pub ats: Ats,
    /// For a Greenhouse tenant, its partner key: what Greenhouse sends as the Basic username
    /// and the hub sends back on its `PATCH`es. An Ashby tenant given neither this nor
    /// `ashby_api_key` awaits connection: the hub prints a connect link for it.
    #[serde(default)]
    pub trigger_token: String,
    /// Ashby tenants only.
    #[serde(default)]
    pub ashby_api_key: String,
    #[serde(default = "default_ashby_base_url")]
    pub ashby_base_url: Url,
    #[serde(default)]
    pub packages: Vec<PackageRef>,
}

impl TenantConfig {
    /// An Ashby tenant given neither a token nor a key: its customer connects it from a connect
    /// link.
    pub fn awaits_connection(&self) -> bool {
        self.ats == Ats::Ashby && self.trigger_token.is_empty() && self.ashby_api_key.is_empty()
    }
}

fn default_ashby_base_url() -> Url {
    Url::parse("https://api.ashbyhq.com").unwrap_or_else(|_| unreachable!("constant URL"))
}

/// The sandbox's options for a package: one required choice and one optional free text, so the
/// local demo shows both (Ashby's custom fields, checked on start, passed to the vendor).
fn sandbox_options(id: &str, name: &str, choices: &[(&str, &str)]) -> Vec<PackageOption> {
    let parse = |s: &str| OptionId::parse(s).unwrap_or_else(|_| unreachable!("constant id"));
    vec![
        PackageOption {
            id: parse(id),
            name: name.into(),
            kind: OptionKind::ValueSelect,
            required: true,
            possible_values: choices
                .iter()
                .map(|(key, value)| PossibleValue {
                    key: (*key).into(),
                    value: (*value).into(),
                })
                .collect(),
        },
        PackageOption {
            id: parse("note"),
            name: "Note for the provider".into(),
            kind: OptionKind::String,
            required: false,
            possible_values: vec![],
        },
    ]
}

pub const SANDBOX_VENDOR: &str = "sandbox";
pub const DEMO_TOKEN: &str = "demo-trigger-token";
pub const DEMO_ASHBY_KEY: &str = "demo-ashby-api-key";
/// The demo tenant that is not connected yet (the connect page's demo).
pub const DEMO_CONNECT_TENANT: &str = "demo-connect";
pub const DEMO_GREENHOUSE_KEY: &str = "demo-greenhouse-partner-key";
/// Greenhouse limits an org's API key to under 171 characters.
pub const MAX_GREENHOUSE_KEY: usize = 170;

impl LocalConfig {
    pub fn load(path: &std::path::Path) -> anyhow::Result<Self> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let config: Self =
            toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        config.validate()?;
        Ok(config)
    }

    /// The built-in demo: the sandbox vendor and the Ashby stand-in, both served by this process
    /// at `base`.
    pub fn demo(base: &Url, sandbox_secret: &str) -> anyhow::Result<Self> {
        let packages = vec![
            Package {
                id: PackageId::parse("criminal-basic")?,
                name: "Sandbox criminal record check".into(),
                description: "County and national criminal search (simulated)".into(),
                options: sandbox_options(
                    "work_location",
                    "Work location",
                    &[
                        ("us", "United States"),
                        ("uk", "United Kingdom"),
                        ("de", "Germany"),
                    ],
                ),
            },
            Package {
                id: PackageId::parse("skills-test")?,
                name: "Sandbox skills test".into(),
                description: "A timed coding exercise (simulated)".into(),
                options: sandbox_options(
                    "language",
                    "Programming language",
                    &[("rust", "Rust"), ("python", "Python"), ("go", "Go")],
                ),
            },
            // No options: what a Greenhouse tenant can start (Greenhouse cannot ask the
            // recruiter for an option, so its list_tests leaves out packages with required ones).
            Package {
                id: PackageId::parse("reference-check")?,
                name: "Sandbox reference check".into(),
                description: "Two references contacted (simulated)".into(),
                options: vec![],
            },
        ];
        let vendor = VendorId::parse(SANDBOX_VENDOR)?;
        let refs: Vec<PackageRef> = packages
            .iter()
            .map(|p| PackageRef {
                vendor: vendor.clone(),
                package: p.id.clone(),
            })
            .collect();
        let config = Self {
            vendors: vec![VendorConfig {
                id: vendor,
                name: "Sandbox Checks".into(),
                order_url: base.join("sandbox/orders")?,
                signing_secret: sandbox_secret.to_owned(),
                packages,
            }],
            tenants: vec![
                TenantConfig {
                    id: TenantId::parse("demo")?,
                    name: "Demo customer".into(),
                    ats: Ats::Ashby,
                    trigger_token: DEMO_TOKEN.into(),
                    ashby_api_key: DEMO_ASHBY_KEY.into(),
                    ashby_base_url: base.join("ashby")?,
                    packages: refs.clone(),
                },
                // Not connected yet: the customer connects it on its connect page.
                TenantConfig {
                    id: TenantId::parse(DEMO_CONNECT_TENANT)?,
                    name: "Demo customer (not connected yet)".into(),
                    ats: Ats::Ashby,
                    trigger_token: String::new(),
                    ashby_api_key: String::new(),
                    ashby_base_url: base.join("ashby")?,
                    packages: refs.clone(),
                },
                TenantConfig {
                    id: TenantId::parse("demo-greenhouse")?,
                    name: "Demo Greenhouse customer".into(),
                    ats: Ats::Greenhouse,
                    trigger_token: DEMO_GREENHOUSE_KEY.into(),
                    ashby_api_key: String::new(),
                    ashby_base_url: default_ashby_base_url(),
                    packages: refs,
                },
            ],
        };
        config.validate()?;
        Ok(config)
    }

    /// Refuses configurations the hub could not serve correctly, naming the offending entry.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut vendor_ids = HashSet::new();
        for v in &self.vendors {
            if !vendor_ids.insert(&v.id) {
                bail!("vendor {} is defined twice", v.id);
            }
            for p in &v.packages {
                if let Err(e) = options::check_options(&p.options) {
                    bail!("vendor {}, package {}: {e}", v.id, p.id);
                }
            }
            if standardwebhooks::Webhook::new(&v.signing_secret).is_err()
                || !v.signing_secret.starts_with("whsec_")
            {
                bail!(
                    "vendor {}: signing_secret must be whsec_ followed by base64",
                    v.id
                );
            }
            if !matches!(v.order_url.scheme(), "http" | "https") {
                bail!("vendor {}: order_url must be http(s)", v.id);
            }
        }
        let mut tenant_ids = HashSet::new();
        let mut tokens = HashSet::new();
        for t in &self.tenants {
            if !tenant_ids.insert(&t.id) {
                bail!("tenant {} is defined twice", t.id);
            }
            if t.awaits_connection() {
                continue;
            }
            if t.trigger_token.len() < 8 || !tokens.insert(&t.trigger_token) {
                bail!(
                    "tenant {}: trigger_token must be unique and at least 8 characters",
                    t.id
                );
            }
            match t.ats {
                Ats::Ashby if t.ashby_api_key.is_empty() => {
                    bail!(
                        "tenant {}: ashby_api_key must not be empty (or give neither it nor \
                         trigger_token, and the tenant is connected from its connect page)",
                        t.id
                    );
                }
                Ats::Greenhouse if !t.ashby_api_key.is_empty() => {
                    bail!(
                        "tenant {}: a Greenhouse tenant has no ashby_api_key (its trigger_token \
                         is the partner key)",
                        t.id
                    );
                }
                Ats::Greenhouse if t.trigger_token.len() > MAX_GREENHOUSE_KEY => {
                    bail!(
                        "tenant {}: a Greenhouse partner key must be under 171 characters",
                        t.id
                    );
                }
                _ => {}
            }
            for p in &t.packages {
                let offered = self
                    .vendors
                    .iter()
                    .find(|v| v.id == p.vendor)
                    .is_some_and(|v| v.packages.iter().any(|q| q.id == p.package));
                if !offered {
                    bail!("tenant {}: package {p} is not offered by any vendor", t.id);
                }
            }
        }
        Ok(())
    }

    pub fn vendor_records(&self) -> Vec<Vendor> {
        self.vendors
            .iter()
            .map(|v| Vendor {
                id: v.id.clone(),
                name: v.name.clone(),
                order_url: v.order_url.clone(),
                packages: v.packages.clone(),
            })
            .collect()
    }

    pub fn tenant_record(t: &TenantConfig) -> Tenant {
        Tenant {
            id: t.id.clone(),
            name: t.name.clone(),
            ats: t.ats,
            ashby_base_url: t.ashby_base_url.clone(),
            packages: t.packages.clone(),
            disabled: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_in_the_repo_is_valid() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("example.toml");
        let c = LocalConfig::load(&path).expect("example.toml must load");
        assert!(!c.tenants.is_empty() && !c.vendors.is_empty());
    }

    #[test]
    fn package_options_load_from_toml_and_bad_ones_are_refused() {
        let text = |kind: &str, values: &str| {
            format!(
                r#"
            [[vendors]]
            id = "acme"
            name = "Acme"
            order_url = "http://127.0.0.1:9100/orders"
            signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            [[vendors.packages]]
            id = "basic"
            name = "Basic"
            [[vendors.packages.options]]
            id = "tier"
            name = "Tier"
            type = "{kind}"
            required = true
            {values}
        "#
            )
        };
        let ok: LocalConfig = toml::from_str(&text(
            "ValueSelect",
            r#"possible_values = [{ key = "std", value = "Standard" }]"#,
        ))
        .expect("parses");
        ok.validate().expect("valid");
        let o = &ok.vendors[0].packages[0].options[0];
        assert_eq!((o.id.as_str(), o.required), ("tier", true));
        let no_values: LocalConfig = toml::from_str(&text("ValueSelect", "")).expect("parses");
        let e = no_values.validate().expect_err("a select needs values");
        assert!(e.to_string().contains("package basic"), "{e}");
        assert!(toml::from_str::<LocalConfig>(&text("Colour", "")).is_err());
    }

    #[test]
    fn a_tenant_enabling_an_unknown_package_is_refused_with_its_name() {
        let text = r#"
            [[vendors]]
            id = "acme"
            name = "Acme"
            order_url = "http://127.0.0.1:9100/orders"
            signing_secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
            [[vendors.packages]]
            id = "basic"
            name = "Basic"

            [[tenants]]
            id = "globex"
            name = "Globex"
            trigger_token = "0123456789abcdef"
            ashby_api_key = "k"
            packages = ["acme/premium"]
        "#;
        let c: LocalConfig = toml::from_str(text).expect("parses");
        let e = c.validate().expect_err("must be refused");
        assert!(e.to_string().contains("acme/premium"), "{e}");
    }

    #[test]
    fn a_greenhouse_tenant_needs_no_ashby_key_and_an_ashby_tenant_does() {
        let tenant = |ats: &str, key: &str| {
            format!(
                r#"
                [[tenants]]
                id = "globex"
                name = "Globex"
                {ats}
                trigger_token = "0123456789abcdef"
                {key}
            "#
            )
        };
        let load = |text: String| {
            toml::from_str::<LocalConfig>(&text)
                .expect("parses")
                .validate()
        };
        let ok: LocalConfig = toml::from_str(&tenant(r#"ats = "greenhouse""#, "")).expect("parses");
        ok.validate()
            .expect("a Greenhouse tenant without an Ashby key");
        assert_eq!(ok.tenants[0].ats, Ats::Greenhouse);
        assert!(
            load(tenant("", "")).is_err(),
            "an Ashby tenant with a token needs its key"
        );
        assert!(load(tenant(r#"ats = "greenhouse""#, r#"ashby_api_key = "k""#)).is_err());
        assert!(toml::from_str::<LocalConfig>(&tenant(r#"ats = "workday""#, "")).is_err());
    }

    #[test]
    fn an_ashby_tenant_without_token_and_key_awaits_connection_but_not_with_one_of_them() {
        let text = |extra: &str| {
            format!(
                r#"
                [[tenants]]
                id = "globex"
                name = "Globex"
                {extra}
            "#
            )
        };
        let c: LocalConfig = toml::from_str(&text("")).expect("parses");
        c.validate().expect("awaits connection");
        assert!(c.tenants[0].awaits_connection());
        let half: LocalConfig = toml::from_str(&text(r#"ashby_api_key = "k""#)).expect("parses");
        assert!(half.validate().is_err(), "a key without a token is refused");
        let gh: LocalConfig = toml::from_str(&text(r#"ats = "greenhouse""#)).expect("parses");
        assert!(
            gh.validate().is_err(),
            "a Greenhouse tenant needs its partner key"
        );
    }
}
