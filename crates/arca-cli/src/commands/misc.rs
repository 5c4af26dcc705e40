//! `arca health`, `arca whoami` and `arca openapi`.

use anyhow::Result;
use serde_json::{json, Value};

use super::Ctx;
use crate::client::ApiClient;
use crate::output::{self, get, outln, print_json};

/// `arca health`: liveness (`/healthz`) and readiness (`/readyz`); no token needed.
pub async fn health(ctx: &Ctx) -> Result<()> {
    let c = ApiClient::connect(&ctx.settings, false)?;
    let live = c.get(&["healthz"], &[]).await?.value()?;
    // Not ready is an answer worth showing, not only an error.
    let ready = match c.get(&["readyz"], &[]).await {
        Ok(b) => b.value()?,
        Err(e) => match e.downcast_ref::<crate::client::ServerError>() {
            Some(se) => json!({"status": "not ready", "error": se}),
            None => return Err(e),
        },
    };
    let is_ready = ready.get("status").and_then(Value::as_str) == Some("ready");
    if ctx.json() {
        print_json(&json!({"healthz": live, "readyz": ready}));
    } else {
        outln!("live:  {}", get(&live, "status"));
        let mut line = format!("ready: {}", get(&ready, "status"));
        if let Some(store) = ready.get("store") {
            let root = match ready.get("root") {
                Some(r) => format!(", root {}", output::cell(r)),
                None => String::new(),
            };
            line.push_str(&format!(
                " (store {}{root}, crypto {})",
                output::cell(store),
                get(&ready, "crypto")
            ));
        }
        if let Some(m) = ready.pointer("/error/message") {
            line.push_str(&format!(": {}", output::cell(m)));
        }
        outln!("{line}");
    }
    if is_ready {
        Ok(())
    } else {
        anyhow::bail!("the server is not ready")
    }
}

/// `arca openapi`: the server's OpenAPI document (always JSON).
pub async fn openapi(ctx: &Ctx) -> Result<()> {
    let c = ApiClient::connect(&ctx.settings, false)?;
    print_json(&c.get(&["v1", "openapi.json"], &[]).await?.value()?);
    Ok(())
}

/// `arca whoami`: the caller's principal, tenant and roles, as the server sees them.
pub async fn whoami(ctx: &Ctx) -> Result<()> {
    let v = ctx.client()?.get(&["v1", "whoami"], &[]).await?.value()?;
    if ctx.json() {
        print_json(&v);
    } else {
        let rows = [
            ("Principal", get(&v, "principal")),
            ("Principal id", get(&v, "principal_id")),
            ("Tenant id", get(&v, "tenant_id")),
            ("Roles", get(&v, "roles")),
            ("Groups", get(&v, "groups")),
            ("Credential", get(&v, "credential")),
        ];
        output::show(&output::fields_table(&rows));
    }
    Ok(())
}
