//! `arca tenant ...`: tenants (system operators) and the settings of one's own tenant
//! (tenant-admins): role combinations, the default key policy, and which actions need
//! M-of-N approval.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::{Ctx, SaveProfileArgs};
use crate::output::{self, get, items, outln, print_json};

/// `arca tenant` subcommands.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// List tenants (system operators: `--profile operator`).
    List,
    /// Show a tenant and its settings (system operators).
    Show(TenantArg),
    /// Create a tenant and its first tenant-admin, whose API token is shown once (or who
    /// signs in with a certificate or JWT identity) (system operators).
    Create(CreateArgs),
    /// Disable a tenant: none of its principals can authenticate until it is enabled
    /// (system operators; may need approval).
    Disable(TenantArg),
    /// Enable a disabled tenant (system operators).
    Enable(TenantArg),
    /// Delete a disabled tenant that holds no live keys (system operators; may need
    /// approval).
    Delete(TenantArg),
    /// The client CAs and JWT issuers whose identities authenticate into a tenant, and
    /// into no other (system operators).
    Trust {
        #[command(subcommand)]
        cmd: TrustCommand,
    },
    /// Show or change your own tenant's settings (tenant-admins): role combinations,
    /// default key policy, approval rules, the shortest destruction waiting period.
    Settings {
        #[command(subcommand)]
        cmd: Option<SettingsCommand>,
    },
}

/// `TENANT`.
#[derive(Debug, Args)]
pub struct TenantArg {
    /// Tenant id or name.
    #[arg(value_name = "TENANT")]
    pub tenant: String,
}

/// `arca tenant trust` subcommands.
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// List a tenant's trust anchors.
    List(TenantArg),
    /// Assign a client CA (the one that signs the tenant's client certificates) or a
    /// configured JWT issuer to a tenant. An anchor belongs to one tenant at most.
    Add(TrustAddArgs),
    /// Withdraw an anchor (`ca:<hex>` or `jwt:<issuer>`): it then authenticates no one.
    Remove {
        /// Tenant id or name.
        #[arg(value_name = "TENANT")]
        tenant: String,
        /// The anchor id, as `list` shows it.
        #[arg(value_name = "ANCHOR")]
        anchor: String,
    },
}

/// Options of `arca tenant trust add`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("anchor").required(true)))]
pub struct TrustAddArgs {
    /// Tenant id or name.
    #[arg(value_name = "TENANT")]
    pub tenant: String,
    /// A CA certificate (PEM file).
    #[arg(long, value_name = "FILE", group = "anchor")]
    pub ca_file: Option<PathBuf>,
    /// A JWT issuer (`iss`) as configured on the server.
    #[arg(long, value_name = "ISSUER", group = "anchor")]
    pub jwt_issuer: Option<String>,
}

/// Options of `arca tenant create`.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Tenant name (unique on the server).
    pub name: String,
    /// Name of the tenant's first tenant-admin [server default: admin].
    #[arg(long, value_name = "NAME")]
    pub admin_name: Option<String>,
    /// Let the first admin sign in with this kind of external identity instead of a token
    /// (then the operator never holds a credential of the tenant).
    #[arg(
        long,
        value_enum,
        value_name = "KIND",
        requires = "admin_binding_value"
    )]
    pub admin_binding_kind: Option<super::identity::BindingKind>,
    /// The admin's certificate fingerprint, subject, SAN, or JWT claim value.
    #[arg(long, value_name = "VALUE", requires = "admin_binding_kind")]
    pub admin_binding_value: Option<String>,
    /// For a jwt binding: the issuer (`iss`) as configured on the server.
    #[arg(long, value_name = "ISSUER", requires = "admin_binding_kind")]
    pub admin_binding_issuer: Option<String>,
    /// Assign the new tenant this client CA (PEM file; repeatable): certificates it signs
    /// authenticate into this tenant only (see `arca tenant trust`).
    #[arg(long, value_name = "FILE")]
    pub trust_ca_file: Vec<PathBuf>,
    /// Assign the new tenant this configured JWT issuer (repeatable).
    #[arg(long, value_name = "ISSUER")]
    pub trust_jwt_issuer: Vec<String>,
    /// Initial settings (JSON, as `arca tenant settings show --output json` prints them);
    /// `-` reads stdin [default: strict: one role per principal, no default key policy].
    #[arg(long, value_name = "FILE")]
    pub settings_file: Option<PathBuf>,
    /// Where the admin's token goes.
    #[command(flatten)]
    pub save: SaveProfileArgs,
}

/// `arca tenant settings` subcommands (without one: `show`).
#[derive(Debug, Subcommand)]
pub enum SettingsCommand {
    /// Show your tenant's settings.
    Show,
    /// Replace the settings from a JSON file, or change single fields with flags.
    Set(SetArgs),
    /// Require M-of-N approval for actions: replaces whatever rule covered them before.
    RequireApproval(RequireApprovalArgs),
    /// Stop requiring approval for actions.
    ClearApproval(ClearApprovalArgs),
}

/// Options of `arca tenant settings set`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true)))]
pub struct SetArgs {
    /// The whole settings document (JSON, as `settings show --output json` prints it);
    /// `-` reads stdin. The flags below apply on top of it.
    #[arg(long, value_name = "FILE", group = "change")]
    pub file: Option<PathBuf>,
    /// Whether one principal may hold several roles (false separates duties strictly).
    #[arg(long, value_name = "true|false", group = "change")]
    pub allow_multiple_roles: Option<bool>,
    /// How long an approval request stays open, in seconds (60 to 2592000).
    #[arg(long, value_name = "SECS", group = "change")]
    pub approval_ttl_secs: Option<u64>,
    /// The shortest waiting period a key destruction may be scheduled with, in days (0 to
    /// 365; default 1). 0 lets `arca key schedule-destruction KEY --days 0` (and KMIP's
    /// Destroy) erase the material at once.
    #[arg(long, value_name = "DAYS", group = "change", value_parser = clap::value_parser!(u32).range(0..=365))]
    pub min_destruction_window_days: Option<u32>,
    /// Whether legacy algorithms (Triple DES, DSA, RSA under 2048 bits, SHA-1 signatures,
    /// an HMAC keyed by an AES key, ChaCha20) may be used in this tenant; off by default.
    /// See docs/kmip.md "Legacy algorithms".
    #[arg(long, value_name = "true|false", group = "change")]
    pub allow_legacy_algorithms: Option<bool>,
}

/// Options of `arca tenant settings require-approval`.
#[derive(Debug, Args)]
pub struct RequireApprovalArgs {
    /// An action that needs approval (repeatable).
    #[arg(
        long = "action",
        value_name = "ACTION",
        required = true,
        value_parser = clap::builder::PossibleValuesParser::new(arca_core::access::approvable_names())
    )]
    pub actions: Vec<String>,
    /// How many distinct approvers (principals with the approver role, never the
    /// requester) must approve: 1 to 16.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=16))]
    pub approvals: u32,
    /// Only approvers in this group count.
    #[arg(long, value_name = "GROUP")]
    pub group: Option<String>,
}

/// Options of `arca tenant settings clear-approval`.
#[derive(Debug, Args)]
pub struct ClearApprovalArgs {
    /// An action that no longer needs approval (repeatable).
    #[arg(
        long = "action",
        value_name = "ACTION",
        required = true,
        value_parser = clap::builder::PossibleValuesParser::new(arca_core::access::approvable_names())
    )]
    pub actions: Vec<String>,
}

fn tenants_table(list: &[Value]) -> comfy_table::Table {
    let mut t = output::table(["NAME", "ID", "DISABLED", "SYSTEM", "CREATED"]);
    for x in list {
        t.add_row(vec![
            get(x, "name"),
            get(x, "id"),
            get(x, "disabled"),
            get(x, "system"),
            get(x, "created_at"),
        ]);
    }
    t
}

/// Tenant settings as text: the scalar fields, the approval rules and the default policy.
pub fn settings_text(s: &Value) -> String {
    let ttl = s
        .get("approval_ttl_secs")
        .and_then(Value::as_u64)
        .map(|n| format!("{n} s ({})", human_secs(n)))
        .unwrap_or_else(|| "-".into());
    let window = match s.get("min_destruction_window_days").and_then(Value::as_u64) {
        Some(0) => "0 days (a destruction may take effect at once)".to_string(),
        Some(1) => "1 day".to_string(),
        Some(n) => format!("{n} days"),
        None => "-".into(),
    };
    let rows = [
        ("Allow multiple roles", get(s, "allow_multiple_roles")),
        ("Approval TTL", ttl),
        ("Min destruction window", window),
        ("Allow legacy algorithms", get(s, "allow_legacy_algorithms")),
    ];
    let mut text = output::render(&output::fields_table(&rows));
    let rules = items(s, "approval_rules");
    text.push_str("\n\nApproval rules:\n");
    if rules.is_empty() {
        text.push_str("none: no action needs approval");
    } else {
        let mut t = output::table(["ACTIONS", "APPROVALS", "GROUP"]);
        for r in rules {
            t.add_row(vec![
                get(r, "actions"),
                get(r, "approvals"),
                get(r, "group"),
            ]);
        }
        text.push_str(&output::render(&t));
    }
    let policy = items(s, "default_key_policy");
    text.push_str("\n\nDefault key policy (for new keys created without one):\n");
    if policy.is_empty() {
        text.push_str("none: nobody uses a new key until its policy says so");
    } else {
        text.push_str(&output::render(&super::policy::statements_table(policy)));
    }
    text
}

/// `90061` as `1d 1h 1m 1s`.
fn human_secs(mut n: u64) -> String {
    if n == 0 {
        return "0s".into();
    }
    let mut parts = Vec::new();
    for (unit, size) in [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)] {
        if n >= size {
            parts.push(format!("{}{unit}", n / size));
            n %= size;
        }
    }
    parts.join(" ")
}

fn tenant_line(v: &Value) -> String {
    let mut s = format!("tenant {} ({})", get(v, "name"), get(v, "id"));
    if v.get("deleted").and_then(Value::as_bool) == Some(true) {
        s.push_str(": deleted");
    } else if v.get("disabled").and_then(Value::as_bool) == Some(true) {
        s.push_str(": disabled");
    } else {
        s.push_str(": enabled");
    }
    s
}

/// Removes `actions` from every rule; rules left with no action go.
fn clear_rules(settings: &mut Value, actions: &[String]) -> Result<usize> {
    let Some(rules) = settings
        .get_mut("approval_rules")
        .and_then(Value::as_array_mut)
    else {
        return Ok(0);
    };
    let mut touched = 0;
    for r in rules.iter_mut() {
        if let Some(a) = r.get_mut("actions").and_then(Value::as_array_mut) {
            let before = a.len();
            a.retain(|x| !x.as_str().is_some_and(|s| actions.iter().any(|y| y == s)));
            if a.len() != before {
                touched += 1;
            }
        }
    }
    rules.retain(|r| !items(r, "actions").is_empty());
    Ok(touched)
}

/// Runs an `arca tenant` subcommand.
pub async fn run(ctx: &Ctx, cmd: TenantCommand) -> Result<()> {
    let c = ctx.client()?;
    match cmd {
        TenantCommand::List => {
            let v = c.get(&["v1", "tenants"], &[]).await?.value()?;
            if ctx.json() {
                print_json(&v);
            } else {
                output::show(&tenants_table(items(&v, "tenants")));
            }
        }
        TenantCommand::Show(a) => {
            let v = c.get(&["v1", "tenants", &a.tenant], &[]).await?.value()?;
            if ctx.json() {
                print_json(&v);
            } else {
                let rows = [
                    ("Id", get(&v, "id")),
                    ("Name", get(&v, "name")),
                    ("Disabled", get(&v, "disabled")),
                    ("System", get(&v, "system")),
                    ("Created", get(&v, "created_at")),
                ];
                outln!(
                    "{}\n\nSettings:\n{}",
                    output::render(&output::fields_table(&rows)),
                    settings_text(v.get("settings").unwrap_or(&Value::Null))
                );
            }
        }
        TenantCommand::Create(a) => create(ctx, a).await?,
        TenantCommand::Disable(a) => state(ctx, &a.tenant, "disable").await?,
        TenantCommand::Enable(a) => state(ctx, &a.tenant, "enable").await?,
        TenantCommand::Delete(a) => {
            let v = c.delete(&["v1", "tenants", &a.tenant]).await?.value()?;
            if ctx.json() {
                print_json(&v);
            } else {
                outln!("deleted {}", tenant_line(&v));
            }
        }
        TenantCommand::Trust { cmd } => trust(ctx, cmd).await?,
        TenantCommand::Settings { cmd } => {
            settings(ctx, cmd.unwrap_or(SettingsCommand::Show)).await?
        }
    }
    Ok(())
}

fn anchor_line(a: &Value) -> String {
    let owner = match a.get("tenant_id").and_then(|t| t.as_str()) {
        Some(t) => format!("tenant {t}"),
        None => "withdrawn".to_string(),
    };
    match a.get("ca_subject").and_then(|s| s.as_str()) {
        Some(s) => format!("{}  {owner}  ({s})", get(a, "id")),
        None => format!("{}  {owner}", get(a, "id")),
    }
}

async fn trust(ctx: &Ctx, cmd: TrustCommand) -> Result<()> {
    let c = ctx.client()?;
    let v = match cmd {
        TrustCommand::List(a) => {
            let v = c
                .get(&["v1", "tenants", &a.tenant, "trust"], &[])
                .await?
                .value()?;
            if !ctx.json() {
                let list = items(&v, "anchors");
                if list.is_empty() {
                    outln!("no trust anchors assigned");
                }
                for a in list {
                    outln!("{}", anchor_line(a));
                }
                if v.get("owns_unassigned").and_then(|b| b.as_bool()) == Some(true) {
                    outln!("and every anchor never assigned to a tenant (the default tenant)");
                }
                return Ok(());
            }
            v
        }
        TrustCommand::Add(a) => {
            let body = match (&a.ca_file, &a.jwt_issuer) {
                (Some(f), _) => json!({ "ca_pem": std::fs::read_to_string(f)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))? }),
                (None, Some(i)) => json!({ "jwt_issuer": i }),
                (None, None) => bail!("give --ca-file or --jwt-issuer"),
            };
            let v = c
                .post(&["v1", "tenants", &a.tenant, "trust"], &body)
                .await?
                .value()?;
            if !ctx.json() {
                outln!("assigned {}", anchor_line(&v));
                return Ok(());
            }
            v
        }
        TrustCommand::Remove { tenant, anchor } => {
            let v = c
                .delete(&["v1", "tenants", &tenant, "trust", &anchor])
                .await?
                .value()?;
            if !ctx.json() {
                outln!("withdrew {}", anchor_line(&v));
                return Ok(());
            }
            v
        }
    };
    print_json(&v);
    Ok(())
}

async fn state(ctx: &Ctx, tenant: &str, action: &str) -> Result<()> {
    let v = ctx
        .client()?
        .post(&["v1", "tenants", tenant, action], &json!({}))
        .await?
        .value()?;
    if ctx.json() {
        print_json(&v);
    } else {
        outln!("{}", tenant_line(&v));
    }
    Ok(())
}

async fn create(ctx: &Ctx, a: CreateArgs) -> Result<()> {
    a.save.precheck(&ctx.settings)?;
    let mut body = json!({ "name": a.name });
    if let Some(n) = &a.admin_name {
        body["admin_name"] = json!(n);
    }
    let mut trust = vec![];
    for f in &a.trust_ca_file {
        let pem = std::fs::read_to_string(f)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?;
        trust.push(json!({ "ca_pem": pem }));
    }
    for i in &a.trust_jwt_issuer {
        trust.push(json!({ "jwt_issuer": i }));
    }
    if !trust.is_empty() {
        body["trust"] = json!(trust);
    }
    if let Some(kind) = a.admin_binding_kind {
        let mut b = json!({ "kind": kind.wire(), "value": a.admin_binding_value });
        if let Some(i) = &a.admin_binding_issuer {
            b["issuer"] = json!(i);
        }
        body["admin_binding"] = b;
    }
    if let Some(f) = &a.settings_file {
        body["settings"] = super::read_json_file(f)?;
    }
    let v = ctx
        .client()?
        .post(&["v1", "tenants"], &body)
        .await?
        .value()?;
    let admin = v.get("admin").cloned().unwrap_or(Value::Null);
    let tenant = v.get("tenant").cloned().unwrap_or(Value::Null);
    let what = format!(
        "created tenant {} ({}) with tenant-admin {} ({})",
        get(&tenant, "name"),
        get(&tenant, "id"),
        get(&admin, "name"),
        get(&admin, "id")
    );
    match v.get("admin_token").and_then(Value::as_str) {
        Some(token) => {
            let expiry = match v.get("admin_token_expires_at").filter(|e| !e.is_null()) {
                Some(_) => format!(
                    "; its token expires {}: the tenant's admin replaces it with their own",
                    get(&v, "admin_token_expires_at")
                ),
                None => String::new(),
            };
            let redacted = output::without(&v, &["admin_token"]);
            super::deliver_secret(
                ctx,
                &a.save,
                &v,
                redacted,
                token,
                &format!("{what}{expiry}"),
            )
        }
        None => {
            // The admin signs in with a certificate or JWT identity: no secret to hand over.
            if ctx.json() {
                print_json(&v);
            } else {
                let b = v.get("admin_binding").cloned().unwrap_or(Value::Null);
                outln!(
                    "{what}, who signs in with binding {} ({} {})",
                    get(&b, "id"),
                    get(&b, "kind"),
                    get(&b, "value")
                );
            }
            if let Some(name) = &a.save.save_profile {
                eprintln!("no token was issued, so profile {name:?} was not written");
            }
            Ok(())
        }
    }
}

async fn settings(ctx: &Ctx, cmd: SettingsCommand) -> Result<()> {
    let c = ctx.client()?;
    let path = ["v1", "tenant", "settings"];
    let (new, verb) = match cmd {
        SettingsCommand::Show => {
            let v = c.get(&path, &[]).await?.value()?;
            if ctx.json() {
                print_json(&v);
            } else {
                outln!("{}", settings_text(&v));
            }
            return Ok(());
        }
        SettingsCommand::Set(a) => {
            let mut s = match &a.file {
                Some(f) => super::read_json_file(f)?,
                None => c.get(&path, &[]).await?.value()?,
            };
            if !s.is_object() {
                bail!("the settings document must be a JSON object");
            }
            if let Some(b) = a.allow_multiple_roles {
                s["allow_multiple_roles"] = json!(b);
            }
            if let Some(t) = a.approval_ttl_secs {
                s["approval_ttl_secs"] = json!(t);
            }
            if let Some(d) = a.min_destruction_window_days {
                s["min_destruction_window_days"] = json!(d);
            }
            if let Some(b) = a.allow_legacy_algorithms {
                s["allow_legacy_algorithms"] = json!(b);
            }
            (s, "updated the tenant settings".to_string())
        }
        SettingsCommand::RequireApproval(a) => {
            let mut s = c.get(&path, &[]).await?.value()?;
            clear_rules(&mut s, &a.actions)?;
            let mut rule = json!({ "actions": a.actions, "approvals": a.approvals });
            if let Some(g) = &a.group {
                rule["group"] = json!(g);
            }
            match s.get_mut("approval_rules").and_then(Value::as_array_mut) {
                Some(rules) => rules.push(rule),
                None => s["approval_rules"] = json!([rule]),
            }
            let verb = format!(
                "{} now need{} {} approval{}{}",
                a.actions.join(", "),
                if a.actions.len() == 1 { "s" } else { "" },
                a.approvals,
                if a.approvals == 1 { "" } else { "s" },
                a.group
                    .as_ref()
                    .map(|g| format!(" from group {g}"))
                    .unwrap_or_default()
            );
            (s, verb)
        }
        SettingsCommand::ClearApproval(a) => {
            let mut s = c.get(&path, &[]).await?.value()?;
            if clear_rules(&mut s, &a.actions)? == 0 {
                if ctx.json() {
                    print_json(&s);
                } else {
                    outln!("no rule covered {}: nothing changed", a.actions.join(", "));
                }
                return Ok(());
            }
            (
                s,
                format!("{} no longer need approval", a.actions.join(", ")),
            )
        }
    };
    let v = c.put(&path, &new).await?.value()?;
    if ctx.json() {
        print_json(&v);
    } else {
        outln!("{verb}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_are_replaced_not_stacked() {
        let mut s = json!({
            "approval_rules": [
                {"actions": ["ScheduleKeyDestruction", "ExportKey"], "approvals": 1},
                {"actions": ["SuspendKey"], "approvals": 3}
            ]
        });
        assert_eq!(
            clear_rules(&mut s, &["ScheduleKeyDestruction".into()]).unwrap(),
            1
        );
        assert_eq!(
            s["approval_rules"],
            json!([
                {"actions": ["ExportKey"], "approvals": 1},
                {"actions": ["SuspendKey"], "approvals": 3}
            ])
        );
        clear_rules(&mut s, &["SuspendKey".into()]).unwrap();
        assert_eq!(s["approval_rules"].as_array().unwrap().len(), 1);
        assert_eq!(clear_rules(&mut s, &["DeleteTenant".into()]).unwrap(), 0);
    }

    #[test]
    fn durations() {
        assert_eq!(human_secs(86_400), "1d");
        assert_eq!(human_secs(90_061), "1d 1h 1m 1s");
        assert_eq!(human_secs(60), "1m");
    }
}
