//! `arca principal ...`, `arca token ...` and `arca binding ...`: who may call Arca in a
//! tenant, with which roles and groups, and the credentials that prove it (API tokens,
//! client certificates, JWT identities).

use std::collections::BTreeMap;

use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

use super::{deliver_secret, Ctx, SaveProfileArgs};
use crate::client::ApiClient;
use crate::output::{self, get, items, outln, print_json};

/// The role names the server knows, for `--role` (help, completion, early typo check).
fn role_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(arca_core::access::Role::ALL.map(|r| r.as_str()))
}

/// `arca principal` subcommands.
#[derive(Debug, Subcommand)]
pub enum PrincipalCommand {
    /// List the principals of your tenant.
    List,
    /// Show one principal.
    Show(PrincipalArg),
    /// Create a principal (a user or a service) with roles and groups; give it a
    /// credential with `arca token create` or `arca binding create`.
    Create(CreatePrincipalArgs),
    /// Change a principal's roles or groups, or disable it (a disabled principal cannot
    /// authenticate at all).
    Update(UpdatePrincipalArgs),
}

/// `PRINCIPAL`.
#[derive(Debug, Args)]
pub struct PrincipalArg {
    /// Principal id or name.
    #[arg(value_name = "PRINCIPAL")]
    pub principal: String,
}

/// Options of `arca principal create`.
#[derive(Debug, Args)]
pub struct CreatePrincipalArgs {
    /// Principal name (unique in the tenant).
    pub name: String,
    /// A role (repeatable; several only where the tenant allows multiple roles).
    #[arg(long = "role", value_name = "ROLE", required = true, value_parser = role_parser())]
    pub roles: Vec<String>,
    /// A group, for key policies (`group:NAME`) and approval rules (repeatable).
    #[arg(long = "group", value_name = "GROUP")]
    pub groups: Vec<String>,
    /// What it is: informative only.
    #[arg(long, value_enum, default_value_t = PrincipalKind::User)]
    pub kind: PrincipalKind,
}

/// A principal's kind.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PrincipalKind {
    /// A person.
    User,
    /// An application or a machine.
    Service,
}

/// Options of `arca principal update`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("change").required(true).multiple(true)))]
pub struct UpdatePrincipalArgs {
    /// Principal id or name.
    #[arg(value_name = "PRINCIPAL")]
    pub principal: String,
    /// A role (repeatable); the given roles replace all current ones.
    #[arg(long = "role", value_name = "ROLE", value_parser = role_parser(), group = "change")]
    pub roles: Vec<String>,
    /// A group (repeatable); the given groups replace all current ones.
    #[arg(long = "group", value_name = "GROUP", group = "change")]
    pub groups: Vec<String>,
    /// Remove the principal from every group.
    #[arg(long, conflicts_with = "groups", group = "change")]
    pub no_groups: bool,
    /// Disable the principal: its tokens, sessions and bindings stop working.
    #[arg(long, group = "change")]
    pub disable: bool,
    /// Enable a disabled principal.
    #[arg(long, conflicts_with = "disable", group = "change")]
    pub enable: bool,
}

/// `arca token` subcommands.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue an API token for a principal. The token is printed once, alone on stdout
    /// (details on stderr), or saved to a profile with --save-profile.
    Create(CreateTokenArgs),
    /// List API tokens (metadata only: a token's secret is never shown again).
    List(ListTokensArgs),
    /// Revoke an API token by its id: it stops working at once.
    Revoke(TokenIdArg),
}

/// `arca credentials` subcommands.
#[derive(Debug, Subcommand)]
pub enum CredentialsCommand {
    /// Issue an AWS access key pair for a principal (yourself by default). The pair is
    /// printed once, on stdout, in the form of an `~/.aws/credentials` profile.
    Create(CreateCredentialsArgs),
    /// List AWS access key pairs (never their secrets).
    List(ListTokensArgs),
    /// Revoke an AWS access key pair by its access key id: it stops working at once.
    Revoke(AccessKeyArg),
}

/// Options of `arca credentials create`.
#[derive(Debug, Args)]
pub struct CreateCredentialsArgs {
    /// An AWS access key pair (SigV4), for the AWS-compatible API and the XKS proxy API.
    /// The only kind there is today; required so that the command says what it makes.
    #[arg(long, required = true)]
    pub aws: bool,
    /// Principal id or name [default: yourself].
    #[arg(long, value_name = "PRINCIPAL")]
    pub principal: Option<String>,
    /// A label for listings [server default: aws].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Lifetime in seconds [default: no expiry].
    #[arg(long, value_name = "SECS")]
    pub expires_in: Option<u64>,
}

/// `ACCESS-KEY-ID`.
#[derive(Debug, Args)]
pub struct AccessKeyArg {
    /// The access key id (`ARCA...`), never the secret.
    #[arg(value_name = "ACCESS-KEY-ID")]
    pub id: String,
}

/// Options of `arca token create`.
#[derive(Debug, Args)]
pub struct CreateTokenArgs {
    /// Principal id or name.
    #[arg(value_name = "PRINCIPAL")]
    pub principal: String,
    /// A label for listings [server default: api].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Lifetime in seconds [default: no expiry].
    #[arg(long, value_name = "SECS")]
    pub expires_in: Option<u64>,
    /// Where the token goes.
    #[command(flatten)]
    pub save: SaveProfileArgs,
}

/// Options of `arca token list`.
#[derive(Debug, Args)]
pub struct ListTokensArgs {
    /// Only this principal's tokens (id or name).
    #[arg(long, value_name = "PRINCIPAL")]
    pub principal: Option<String>,
}

/// `TOKEN-ID`.
#[derive(Debug, Args)]
pub struct TokenIdArg {
    /// The token's id (from `arca token list`), never the token itself.
    #[arg(value_name = "TOKEN-ID")]
    pub id: String,
}

/// `arca binding` subcommands.
#[derive(Debug, Subcommand)]
pub enum BindingCommand {
    /// Let a client certificate or a JWT identity authenticate as a principal.
    Create(CreateBindingArgs),
    /// List the credential bindings of your tenant.
    List,
    /// Remove a binding by its id (from `arca binding list`).
    Delete(BindingIdArg),
}

/// What a binding matches.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BindingKind {
    /// SHA-256 of the client certificate (hex).
    CertificateFingerprint,
    /// The certificate subject as an RFC 4514 string, most specific RDN first
    /// (CN=app,OU=zone-a,O=Example); `,` `+` `=` inside a value are escaped with `\`.
    CertificateSubject,
    /// One subject alternative name (DNS name, URI, e-mail or IP address).
    CertificateSan,
    /// The mapped claim of a JWT from a configured issuer (give --issuer).
    Jwt,
}

impl BindingKind {
    /// The name on the wire.
    pub fn wire(self) -> &'static str {
        match self {
            BindingKind::CertificateFingerprint => "certificate-fingerprint",
            BindingKind::CertificateSubject => "certificate-subject",
            BindingKind::CertificateSan => "certificate-san",
            BindingKind::Jwt => "jwt",
        }
    }
}

/// Options of `arca binding create`.
#[derive(Debug, Args)]
pub struct CreateBindingArgs {
    /// Principal id or name.
    #[arg(value_name = "PRINCIPAL")]
    pub principal: String,
    /// What the value is.
    #[arg(long, value_enum)]
    pub kind: BindingKind,
    /// The fingerprint, subject, SAN, or JWT claim value.
    #[arg(long, value_name = "VALUE")]
    pub value: String,
    /// For --kind jwt: the issuer (`iss`) as configured on the server.
    #[arg(long, value_name = "ISSUER")]
    pub issuer: Option<String>,
    /// For a certificate binding: the certificate (PEM file), so that the server refuses
    /// a binding that would make it match two principals.
    #[arg(long, value_name = "FILE")]
    pub certificate: Option<std::path::PathBuf>,
}

/// `BINDING-ID`.
#[derive(Debug, Args)]
pub struct BindingIdArg {
    /// The binding's id, as `arca binding list` shows it.
    #[arg(value_name = "BINDING-ID")]
    pub id: String,
}

/// One line about a principal.
pub fn principal_line(v: &Value) -> String {
    let mut s = format!(
        "principal {} ({}): {}, roles {}",
        get(v, "name"),
        get(v, "id"),
        get(v, "kind"),
        get(v, "roles")
    );
    if !items(v, "groups").is_empty() {
        s.push_str(&format!(", groups {}", get(v, "groups")));
    }
    if v.get("disabled").and_then(Value::as_bool) == Some(true) {
        s.push_str(", DISABLED");
    }
    s
}

/// `token ID for principal P (expires ...)`, from a `TokenCreated` answer.
pub fn token_created_line(v: &Value, principal: &str) -> String {
    let expiry = match v.get("expires_at").filter(|e| !e.is_null()) {
        Some(_) => format!("expires {}", get(v, "expires_at")),
        None => "no expiry".into(),
    };
    format!(
        "token {} for principal {principal} ({expiry})",
        get(v, "id")
    )
}

/// Principal names by id, for listings that carry only ids. Best effort: an empty map when
/// the caller may not list principals.
pub async fn principal_names(c: &ApiClient) -> BTreeMap<String, String> {
    let Ok(Ok(v)) = c.get(&["v1", "principals"], &[]).await.map(|b| b.value()) else {
        return BTreeMap::new();
    };
    items(&v, "principals")
        .iter()
        .map(|p| (get(p, "id"), get(p, "name")))
        .collect()
}

/// Runs an `arca principal` subcommand.
pub async fn principal(ctx: &Ctx, cmd: PrincipalCommand) -> Result<()> {
    let c = ctx.client()?;
    let v = match cmd {
        PrincipalCommand::List => {
            let v = c.get(&["v1", "principals"], &[]).await?.value()?;
            if ctx.json() {
                print_json(&v);
            } else {
                let mut t = output::table([
                    "NAME", "ID", "KIND", "ROLES", "GROUPS", "DISABLED", "CREATED",
                ]);
                for p in items(&v, "principals") {
                    t.add_row(vec![
                        get(p, "name"),
                        get(p, "id"),
                        get(p, "kind"),
                        get(p, "roles"),
                        get(p, "groups"),
                        get(p, "disabled"),
                        get(p, "created_at"),
                    ]);
                }
                output::show(&t);
            }
            return Ok(());
        }
        PrincipalCommand::Show(a) => {
            let v = c
                .get(&["v1", "principals", &a.principal], &[])
                .await?
                .value()?;
            if ctx.json() {
                print_json(&v);
            } else {
                let rows = [
                    ("Id", get(&v, "id")),
                    ("Name", get(&v, "name")),
                    ("Kind", get(&v, "kind")),
                    ("Roles", get(&v, "roles")),
                    ("Groups", get(&v, "groups")),
                    ("Disabled", get(&v, "disabled")),
                    ("Tenant id", get(&v, "tenant_id")),
                    ("Created", get(&v, "created_at")),
                ];
                output::show(&output::fields_table(&rows));
            }
            return Ok(());
        }
        PrincipalCommand::Create(a) => {
            let kind = match a.kind {
                PrincipalKind::User => "user",
                PrincipalKind::Service => "service",
            };
            let body = json!({
                "name": a.name,
                "roles": a.roles,
                "groups": a.groups,
                "kind": kind,
            });
            let v = c.post(&["v1", "principals"], &body).await?.value()?;
            ("created", v)
        }
        PrincipalCommand::Update(a) => {
            let mut body = json!({});
            if !a.roles.is_empty() {
                body["roles"] = json!(a.roles);
            }
            if !a.groups.is_empty() {
                body["groups"] = json!(a.groups);
            } else if a.no_groups {
                body["groups"] = json!([]);
            }
            if a.disable {
                body["disabled"] = json!(true);
            } else if a.enable {
                body["disabled"] = json!(false);
            }
            let v = c
                .patch(&["v1", "principals", &a.principal], &body)
                .await?
                .value()?;
            ("updated", v)
        }
    };
    let (verb, v) = v;
    if ctx.json() {
        print_json(&v);
    } else {
        outln!("{verb} {}", principal_line(&v));
    }
    Ok(())
}

/// Runs an `arca token` subcommand.
pub async fn token(ctx: &Ctx, cmd: TokenCommand) -> Result<()> {
    let c = ctx.client()?;
    match cmd {
        TokenCommand::Create(a) => {
            a.save.precheck(&ctx.settings)?;
            let mut body = json!({});
            if let Some(n) = &a.name {
                body["name"] = json!(n);
            }
            if let Some(s) = a.expires_in {
                body["expires_in_secs"] = json!(s);
            }
            let v = c
                .post(&["v1", "principals", &a.principal, "tokens"], &body)
                .await?
                .value()?;
            let secret = v.get("token").and_then(Value::as_str).unwrap_or_default();
            let what = format!("created {}", token_created_line(&v, &a.principal));
            let redacted = output::without(&v, &["token"]);
            deliver_secret(ctx, &a.save, &v, redacted, secret, &what)?;
        }
        TokenCommand::List(a) => {
            let v = match &a.principal {
                Some(p) => c.get(&["v1", "principals", p, "tokens"], &[]).await?,
                None => c.get(&["v1", "tokens"], &[]).await?,
            }
            .value()?;
            if ctx.json() {
                print_json(&v);
                return Ok(());
            }
            let list = items(&v, "tokens");
            if list.is_empty() {
                outln!("no tokens");
                return Ok(());
            }
            let names = principal_names(&c).await;
            let mut t = output::table([
                "ID",
                "PRINCIPAL",
                "NAME",
                "CREATED",
                "EXPIRES",
                "REVOKED",
                "LAST USED",
            ]);
            for x in list {
                let pid = get(x, "principal_id");
                t.add_row(vec![
                    get(x, "id"),
                    names.get(&pid).cloned().unwrap_or(pid),
                    get(x, "name"),
                    get(x, "created_at"),
                    get(x, "expires_at"),
                    get(x, "revoked_at"),
                    get(x, "last_used_at"),
                ]);
            }
            output::show(&t);
        }
        TokenCommand::Revoke(a) => {
            let v = c.delete(&["v1", "tokens", &a.id]).await?.value()?;
            if ctx.json() {
                print_json(&v);
            } else {
                let pid = get(&v, "principal_id");
                let who = principal_names(&c).await.remove(&pid).unwrap_or(pid);
                outln!(
                    "revoked token {} ({}) of principal {who}",
                    get(&v, "id"),
                    get(&v, "name"),
                );
            }
        }
    }
    Ok(())
}

/// Runs an `arca binding` subcommand.
pub async fn binding(ctx: &Ctx, cmd: BindingCommand) -> Result<()> {
    let c = ctx.client()?;
    match cmd {
        BindingCommand::Create(a) => {
            let mut body = json!({ "kind": a.kind.wire(), "value": a.value });
            if let Some(i) = &a.issuer {
                body["issuer"] = json!(i);
            }
            if let Some(f) = &a.certificate {
                let pem = std::fs::read_to_string(f)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?;
                body["certificate"] = json!(pem);
            }
            let v = c
                .post(&["v1", "principals", &a.principal, "bindings"], &body)
                .await?
                .value()?;
            if ctx.json() {
                print_json(&v);
            } else {
                outln!(
                    "created binding {} -> principal {} ({})",
                    get(&v, "id"),
                    a.principal,
                    get(&v, "principal_id")
                );
            }
        }
        BindingCommand::List => {
            let v = c.get(&["v1", "bindings"], &[]).await?.value()?;
            if ctx.json() {
                print_json(&v);
                return Ok(());
            }
            let list = items(&v, "bindings");
            if list.is_empty() {
                outln!("no bindings");
                return Ok(());
            }
            let names = principal_names(&c).await;
            let mut t = output::table(["ID", "PRINCIPAL", "KIND", "VALUE", "ISSUER", "CREATED"]);
            for x in list {
                let pid = get(x, "principal_id");
                t.add_row(vec![
                    get(x, "id"),
                    names.get(&pid).cloned().unwrap_or(pid),
                    get(x, "kind"),
                    get(x, "value"),
                    get(x, "issuer"),
                    get(x, "created_at"),
                ]);
            }
            output::show(&t);
        }
        BindingCommand::Delete(a) => {
            c.delete(&["v1", "bindings", &a.id]).await?;
            if ctx.json() {
                print_json(&json!({ "deleted": a.id }));
            } else {
                outln!("deleted binding {}", a.id);
            }
        }
    }
    Ok(())
}

/// `arca credentials ...`.
pub async fn credentials(ctx: &Ctx, cmd: CredentialsCommand) -> Result<()> {
    let c = ctx.client()?;
    match cmd {
        CredentialsCommand::Create(a) => {
            let principal = match &a.principal {
                Some(p) => p.clone(),
                None => get(
                    &c.get(&["v1", "whoami"], &[]).await?.value()?,
                    "principal_id",
                ),
            };
            let mut body = json!({});
            if let Some(n) = &a.name {
                body["name"] = json!(n);
            }
            if let Some(s) = a.expires_in {
                body["expires_in_secs"] = json!(s);
            }
            let v = c
                .post(&["v1", "principals", &principal, "aws-credentials"], &body)
                .await?
                .value()?;
            if ctx.json() {
                print_json(&v);
                return Ok(());
            }
            // The secret goes to stdout only, in the shape `aws configure` writes, so that
            // `arca credentials create --aws >> ~/.aws/credentials` (under a profile
            // header) just works; what it is goes to stderr.
            println!("aws_access_key_id = {}", get(&v, "access_key_id"));
            println!("aws_secret_access_key = {}", get(&v, "secret_access_key"));
            eprintln!(
                "created AWS access key {} ({}) for principal {principal}; the secret is shown only now",
                get(&v, "access_key_id"),
                get(&v, "name"),
            );
        }
        CredentialsCommand::List(a) => {
            let v = match &a.principal {
                Some(p) => {
                    c.get(&["v1", "principals", p, "aws-credentials"], &[])
                        .await?
                }
                None => c.get(&["v1", "aws-credentials"], &[]).await?,
            }
            .value()?;
            if ctx.json() {
                print_json(&v);
                return Ok(());
            }
            let list = items(&v, "credentials");
            if list.is_empty() {
                outln!("no AWS access keys");
                return Ok(());
            }
            let names = principal_names(&c).await;
            let mut t = output::table([
                "ACCESS KEY ID",
                "PRINCIPAL",
                "NAME",
                "CREATED",
                "EXPIRES",
                "REVOKED",
                "LAST USED",
            ]);
            for x in list {
                let pid = get(x, "principal_id");
                t.add_row(vec![
                    get(x, "access_key_id"),
                    names.get(&pid).cloned().unwrap_or(pid),
                    get(x, "name"),
                    get(x, "created_at"),
                    get(x, "expires_at"),
                    get(x, "revoked_at"),
                    get(x, "last_used_at"),
                ]);
            }
            output::show(&t);
        }
        CredentialsCommand::Revoke(a) => {
            let v = c.delete(&["v1", "aws-credentials", &a.id]).await?.value()?;
            if ctx.json() {
                print_json(&v);
            } else {
                outln!("revoked AWS access key {}", get(&v, "access_key_id"));
            }
        }
    }
    Ok(())
}
