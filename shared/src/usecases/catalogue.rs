//! Who is calling, and what they may start: the tenant a trigger token belongs to, and the
//! assessment types (packages) it has enabled that their vendors still offer.

use std::collections::HashMap;

use crate::app::App;
use crate::domain::{Ats, Package, PackageRef, Tenant, TokenHash};
use crate::ports::StoreResult;

/// The enabled tenant of `ats` whose trigger token hashes to `token`, calling `route`. The call
/// is noted on the tenant's health (`health::note_call`: no write on a warm call).
pub async fn tenant_for(
    app: &App,
    token: &TokenHash,
    ats: Ats,
    route: &str,
) -> StoreResult<Option<Tenant>> {
    let Some(account) = app
        .store
        .account_by_token(token)
        .await?
        .filter(|a| a.tenant.ats == ats)
    else {
        return Ok(None);
    };
    tracing::Span::current().record("tenant", account.tenant.id.as_str());
    super::health::note_call(app, &account, token, route).await;
    Ok(Some(account.tenant))
}

/// The tenant's enabled packages (each an assessment type: `PackageRef::type_id`), in the
/// tenant's order, with their options. A package its vendor no longer offers is left out (and
/// logged for the operator).
pub async fn assessment_types(
    app: &App,
    tenant: &Tenant,
) -> StoreResult<Vec<(PackageRef, Package)>> {
    let mut vendors = HashMap::new();
    let mut types = Vec::with_capacity(tenant.packages.len());
    for p in &tenant.packages {
        if !vendors.contains_key(&p.vendor) {
            let v = app.store.vendor(&p.vendor).await?;
            vendors.insert(p.vendor.clone(), v);
        }
        let Some(package) = vendors
            .get(&p.vendor)
            .and_then(Option::as_ref)
            .and_then(|v| v.package(&p.package))
        else {
            tracing::warn!(package = %p, "enabled package no longer offered by its vendor; not listed");
            continue;
        };
        types.push((p.clone(), package.clone()));
    }
    Ok(types)
}
