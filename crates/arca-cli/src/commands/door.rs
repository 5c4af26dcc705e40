//! `arca cse setup` and `arca dke setup`: what docs/cse.md has an administrator do by hand
//! before Google Workspace client-side encryption or Microsoft Purview Double Key Encryption
//! can call Arca, done through the REST API by a tenant-admin of a running server.
//!
//! Each command makes sure that the Arca keys exist with the spec and usage the door needs
//! (creating them, or reusing a key that fits), that the principal the door acts as exists
//! with the `crypto-user` role, and that each key's policy grants that principal exactly
//! the actions the door calls, through that door only (a statement with a `doors`
//! condition and a sid of its own). Then it prints the configuration to paste into the
//! server's file, checked with the server's own configuration rules, and what to paste into
//! Google's admin console or Purview. Everything is checked before anything is changed,
//! and running it again changes nothing and says so.

use std::path::PathBuf;

use anyhow::{bail, Result};
use arca_core::access::{Conditions, Door, Effect, KeyPolicy, Role, Statement};
use arca_core::model::{KeySpec, KeyUsage};
use arca_core::Action;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

use super::Ctx;
use crate::client::{ApiClient, ServerError};
use crate::output::{outln, print_json};

/// `arca cse` subcommands.
#[derive(Debug, Subcommand)]
pub enum CseCommand {
    /// Create (or check) the AES-256 wrapping key, the door's principals and their grants
    /// for Google Workspace client-side encryption, and print the server configuration
    /// and the KACLS URL for the Google admin console. Safe to run again.
    Setup(CseSetupArgs),
}

/// `arca dke` subcommands.
#[derive(Debug, Subcommand)]
pub enum DkeCommand {
    /// Create (or check) the RSA-2048 keys, the door's principal and its grants for
    /// Microsoft Purview Double Key Encryption, and print the server configuration and the
    /// key URLs for Purview. Safe to run again.
    Setup(DkeSetupArgs),
}

/// A Google Workspace application whose authorization tokens the KACLS accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GoogleApp {
    /// Drive and Docs.
    Drive,
    /// Meet.
    Meet,
    /// Calendar.
    Calendar,
    /// Gmail.
    Gmail,
}

impl GoogleApp {
    /// The application's name, for comments.
    fn label(self) -> &'static str {
        match self {
            GoogleApp::Drive => "Drive and Docs",
            GoogleApp::Meet => "Meet",
            GoogleApp::Calendar => "Calendar",
            GoogleApp::Gmail => "Gmail",
        }
    }

    /// The `iss` of this application's authorization tokens.
    fn issuer(self) -> String {
        let app = match self {
            GoogleApp::Drive => "drive",
            GoogleApp::Meet => "meet",
            GoogleApp::Calendar => "calendar",
            GoogleApp::Gmail => "gmail",
        };
        format!("gsuitecse-tokenissuer-{app}@system.gserviceaccount.com")
    }
}

/// Where Google publishes the keys of one of its token issuers.
fn google_jwks_url(issuer: &str) -> String {
    format!("https://www.googleapis.com/service_accounts/v1/jwk/{issuer}")
}

/// Options of `arca cse setup`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("idp_jwks").required(true).args(["idp_jwks_url", "idp_jwks_file"])))]
pub struct CseSetupArgs {
    /// The KACLS URL to paste into the Google admin console: https://HOST/PATH, the host
    /// Google's clients reach Arca by and the path Arca serves the KACLS under.
    #[arg(long, value_name = "URL")]
    pub kacls_url: String,
    /// The path Arca serves the KACLS under [default: the path of --kacls-url].
    #[arg(long, value_name = "PATH")]
    pub path_prefix: Option<String>,
    /// The Arca AES-256 key that wraps Google's keys (created if missing).
    #[arg(long, value_name = "KEY", default_value = "cse-kek")]
    pub key: String,
    /// The principal the door acts as for Google's everyday methods (created if missing).
    #[arg(long, value_name = "NAME", default_value = "cse-service")]
    pub principal: String,
    /// The `iss` of your identity provider's authentication tokens.
    #[arg(long, value_name = "ISSUER")]
    pub idp_issuer: String,
    /// The `aud` of those tokens: the client id Google's clients use with your IdP.
    #[arg(long, value_name = "AUDIENCE")]
    pub idp_audience: String,
    /// Your IdP's JWKS URL (https://).
    #[arg(long, value_name = "URL")]
    pub idp_jwks_url: Option<String>,
    /// Your IdP's JWKS as a file on the server.
    #[arg(long, value_name = "FILE")]
    pub idp_jwks_file: Option<PathBuf>,
    /// An algorithm of your IdP's tokens (repeatable).
    #[arg(long = "idp-algorithm", value_name = "ALG", default_value = "RS256")]
    pub idp_algorithms: Vec<String>,
    /// The Google applications that use CSE (repeatable): their authorization tokens are
    /// accepted.
    #[arg(long = "google-app", value_enum, value_name = "APP", default_values_t = [GoogleApp::Drive])]
    pub google_apps: Vec<GoogleApp>,
    /// Allow the end users with this address (repeatable).
    #[arg(long = "allowed-email", value_name = "EMAIL")]
    pub allowed_emails: Vec<String>,
    /// Allow the end users of this domain (repeatable).
    #[arg(long = "allowed-domain", value_name = "DOMAIN")]
    pub allowed_domains: Vec<String>,
    /// Allow the end users whose token lists this group id (repeatable).
    #[arg(long = "allowed-group", value_name = "GROUP")]
    pub allowed_groups: Vec<String>,
    /// The Google Workspace domain that owns this KACLS (checks the authorization tokens'
    /// `kacls_owner_domain`).
    #[arg(long, value_name = "DOMAIN")]
    pub owner_domain: Option<String>,
    /// Serve `delegate` and `jwks` with this Arca ED25519 signing key (created if missing).
    #[arg(long, value_name = "KEY")]
    pub delegate_key: Option<String>,
    /// Serve the privileged methods (Takeout exports, `wrapprivatekey`), the door acting as
    /// this principal (created if missing; not --principal).
    #[arg(long, value_name = "NAME")]
    pub privileged_principal: Option<String>,
    /// Allow this administrator to call the privileged methods (repeatable).
    #[arg(
        long = "privileged-email",
        value_name = "EMAIL",
        requires = "privileged_principal"
    )]
    pub privileged_emails: Vec<String>,
    /// Allow the administrators of this domain to call the privileged methods (repeatable).
    #[arg(
        long = "privileged-domain",
        value_name = "DOMAIN",
        requires = "privileged_principal"
    )]
    pub privileged_domains: Vec<String>,
    /// Allow the members of this group to call the privileged methods (repeatable).
    #[arg(
        long = "privileged-group",
        value_name = "GROUP",
        requires = "privileged_principal"
    )]
    pub privileged_groups: Vec<String>,
}

/// Options of `arca dke setup`.
#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("jwks").args(["jwks_url", "jwks_file"])))]
pub struct DkeSetupArgs {
    /// A key as labels name it in their URL, and optionally the Arca key behind it
    /// (`NAME` or `NAME=ARCA-KEY`; default ARCA-KEY: dke-NAME); repeatable.
    #[arg(long = "key-name", value_name = "NAME[=KEY]", required = true)]
    pub key_names: Vec<String>,
    /// The URL Office reaches Arca by: https://HOST, no path.
    #[arg(long, value_name = "URL")]
    pub service_url: String,
    /// The path before the key names.
    #[arg(long, value_name = "PATH", default_value = "/dke")]
    pub path_prefix: String,
    /// The principal the door acts as (created if missing).
    #[arg(long, value_name = "NAME", default_value = "dke-service")]
    pub principal: String,
    /// The `iss` of the users' Entra ID tokens (https://sts.windows.net/TENANT-ID/).
    #[arg(long, value_name = "ISSUER")]
    pub issuer: String,
    /// The `aud` of those tokens: the Application ID URI of the app registration
    /// [default: --service-url].
    #[arg(long, value_name = "AUDIENCE")]
    pub audience: Option<String>,
    /// The issuer's JWKS URL [default: Entra ID's, from --issuer].
    #[arg(long, value_name = "URL")]
    pub jwks_url: Option<String>,
    /// The issuer's JWKS as a file on the server.
    #[arg(long, value_name = "FILE")]
    pub jwks_file: Option<PathBuf>,
    /// An algorithm of the tokens (repeatable).
    #[arg(long = "algorithm", value_name = "ALG", default_value = "RS256")]
    pub algorithms: Vec<String>,
    /// Allow the users with this address (repeatable).
    #[arg(long = "allowed-email", value_name = "EMAIL")]
    pub allowed_emails: Vec<String>,
    /// Allow the users of this domain (repeatable).
    #[arg(long = "allowed-domain", value_name = "DOMAIN")]
    pub allowed_domains: Vec<String>,
    /// Allow the members of this Entra group, by object id (repeatable; needs the groups
    /// claim in the tokens).
    #[arg(long = "allowed-group", value_name = "GROUP-ID")]
    pub allowed_groups: Vec<String>,
    /// How many days Office may cache a public key (0: ask every time).
    #[arg(long, value_name = "DAYS", default_value_t = 1)]
    pub cache_days: u32,
}

/// Runs an `arca cse` subcommand.
pub async fn cse(ctx: &Ctx, cmd: CseCommand) -> Result<()> {
    match cmd {
        CseCommand::Setup(a) => cse_setup(ctx, a).await,
    }
}

/// Runs an `arca dke` subcommand.
pub async fn dke(ctx: &Ctx, cmd: DkeCommand) -> Result<()> {
    match cmd {
        DkeCommand::Setup(a) => dke_setup(ctx, a).await,
    }
}

/// A TOML string.
fn tq(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML array of strings.
fn ta(v: &[String]) -> String {
    let items: Vec<String> = v.iter().map(|s| tq(s)).collect();
    format!("[{}]", items.join(", "))
}

/// A `[[service.jwt_issuers]]` entry.
struct Issuer {
    comment: String,
    issuer: String,
    audience: String,
    jwks_url: Option<String>,
    jwks_file: Option<PathBuf>,
    algorithms: Vec<String>,
}

impl Issuer {
    fn toml(&self) -> String {
        let mut s = format!(
            "[[service.jwt_issuers]]   # {}\nissuer = {}\naudience = {}\n",
            self.comment,
            tq(&self.issuer),
            tq(&self.audience)
        );
        if let Some(u) = &self.jwks_url {
            s.push_str(&format!("jwks_url = {}\n", tq(u)));
        }
        if let Some(f) = &self.jwks_file {
            s.push_str(&format!("jwks_file = {}\n", tq(&f.to_string_lossy())));
        }
        s.push_str(&format!("algorithms = {}\n", ta(&self.algorithms)));
        s
    }

    /// Checks the entry with the server's rule for `[[service.jwt_issuers]]`, naming the
    /// flags that gave it in the error.
    fn check(&self, flags: &IssuerFlags) -> Result<()> {
        let cfg = arca_service::ServiceConfig {
            jwt_issuers: vec![arca_service::JwtIssuer {
                issuer: self.issuer.clone(),
                audience: self.audience.clone(),
                jwks_file: self.jwks_file.clone(),
                jwks_url: self.jwks_url.clone(),
                claim: "sub".into(),
                algorithms: self.algorithms.clone(),
            }],
            ..Default::default()
        };
        match cfg.validate() {
            Ok(()) => Ok(()),
            Err(arca_core::Error::InvalidInput { field, message }) => {
                let flag = if field.ends_with("jwks_url") {
                    flags.jwks_url
                } else if field.ends_with("jwks_file") {
                    flags.jwks
                } else if field.ends_with("algorithms") {
                    flags.algorithm
                } else {
                    flags.issuer
                };
                bail!("{flag}: {message}")
            }
            Err(e) => bail!("{e}"),
        }
    }
}

/// The flags an [`Issuer`] comes from, for errors.
struct IssuerFlags {
    issuer: &'static str,
    jwks_url: &'static str,
    jwks: &'static str,
    algorithm: &'static str,
}

/// An access rule's TOML body (`tenant`, `principal`, `issuer`, the allow lists).
fn access_toml(tenant: &str, principal: &str, issuer: &str, allowed: [&[String]; 3]) -> String {
    let mut s = format!(
        "tenant = {}\nprincipal = {}\nissuer = {}\n",
        tq(tenant),
        tq(principal),
        tq(issuer)
    );
    for (name, list) in ["allowed_emails", "allowed_domains", "allowed_groups"]
        .iter()
        .zip(allowed)
    {
        if !list.is_empty() {
            s.push_str(&format!("{name} = {}\n", ta(list)));
        }
    }
    s
}

/// Refuses an access rule that allows nobody, naming the flags.
fn require_someone(allowed: [&[String]; 3], flags: &str) -> Result<()> {
    if allowed.iter().all(|l| l.is_empty()) {
        bail!("name the end users allowed: {flags} (at least one)");
    }
    Ok(())
}

/// Checks a name a flag gives by the server's rule for it (a principal's, or a key's that
/// is to be created), so that a bad one is refused naming the flag before anything changes.
fn check_name(flag: &str, v: &str, principal: bool) -> Result<()> {
    let r = if principal {
        arca_core::names::validate_identity_name(flag, v)
    } else {
        arca_core::names::validate_name(flag, v)
    };
    match r {
        Ok(()) => Ok(()),
        Err(arca_core::Error::InvalidInput { message, .. }) => bail!("{flag} {v:?}: {message}"),
        Err(e) => bail!("{flag} {v:?}: {e}"),
    }
}

/// An https:// URL from a flag, parsed.
fn https_url(flag: &str, v: &str) -> Result<reqwest::Url> {
    let u = reqwest::Url::parse(v).map_err(|e| anyhow::anyhow!("{flag} {v:?}: not a URL ({e})"))?;
    if u.scheme() != "https" || u.host_str().is_none() {
        bail!("{flag} {v:?}: must be an https:// URL with a host");
    }
    if u.query().is_some() || u.fragment().is_some() || !u.username().is_empty() {
        bail!("{flag} {v:?}: no query, fragment or user name");
    }
    Ok(u)
}

/// Checks the configuration this command prints with the server's own loader and rules,
/// so that what the administrator pastes is what `arca serve` accepts.
fn check_config(text: &str) -> Result<()> {
    let cfg: arca_server::config::Config = toml::from_str(text).map_err(|e| {
        anyhow::anyhow!("the configuration to print does not parse (a bug of this command): {e}")
    })?;
    cfg.service
        .validate()
        .map_err(|e| anyhow::anyhow!("the configuration to print is refused: {e}"))?;
    cfg.validate_delegated_doors()
        .map_err(|e| anyhow::anyhow!("the configuration to print is refused: {e}"))
}

/// What a run did to one object.
struct Step {
    object: &'static str,
    name: String,
    result: &'static str,
    detail: String,
}

/// What a key must be for a door.
struct KeyNeed<'a> {
    /// The flag that names it, for errors.
    flag: String,
    name: &'a str,
    spec: KeySpec,
    /// The usage it is created with.
    usage: KeyUsage,
    /// What an existing key's usage must allow.
    needs: &'a [KeyUsage],
    description: &'a str,
    /// The statements the door needs on it, one per principal.
    grants: Vec<Statement>,
}

/// The statement that lets `principal` do `actions` on a key through `door` only.
fn door_statement(door: Door, principal: &str, actions: &[Action]) -> Statement {
    Statement {
        sid: Some(format!("{}-door-{principal}", door.as_str())),
        effect: Effect::Allow,
        principals: vec![format!("principal:{principal}")],
        actions: actions.iter().map(|a| a.name().to_string()).collect(),
        conditions: Conditions {
            doors: vec![door],
            ..Default::default()
        },
        grant: None,
    }
}

/// One run of a setup: the client, the caller's tenant, and what was done.
struct Setup {
    c: ApiClient,
    tenant: String,
    steps: Vec<Step>,
    warnings: Vec<String>,
}

fn not_found(e: &anyhow::Error) -> bool {
    e.downcast_ref::<ServerError>()
        .is_some_and(|s| s.status == 404)
}

fn str_of<'a>(v: &'a Value, name: &str) -> &'a str {
    v.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn strings(v: &Value, name: &str) -> Vec<String> {
    v.get(name)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

impl Setup {
    /// Connects and checks that the caller is a tenant-admin (reads only).
    async fn start(ctx: &Ctx, command: &str) -> Result<Setup> {
        let c = ctx.client()?;
        let me = c.get(&["v1", "whoami"], &[]).await?.value()?;
        if !strings(&me, "roles")
            .iter()
            .any(|r| r == Role::TenantAdmin.as_str())
        {
            bail!(
                "{command} is for a tenant-admin of the tenant that owns the keys; {} has roles {}",
                str_of(&me, "principal"),
                strings(&me, "roles").join(", ")
            );
        }
        Ok(Setup {
            c,
            tenant: str_of(&me, "tenant").to_string(),
            steps: Vec::new(),
            warnings: Vec::new(),
        })
    }

    fn step(&mut self, object: &'static str, name: &str, result: &'static str, detail: String) {
        self.steps.push(Step {
            object,
            name: name.to_string(),
            result,
            detail,
        });
    }

    /// The door's principal if it exists, checked: enabled and holding `crypto-user`
    /// (reads only).
    async fn check_principal(&mut self, flag: &str, name: &str) -> Result<Option<Value>> {
        let cu = Role::CryptoUser.as_str();
        let p = match self.c.get(&["v1", "principals", name], &[]).await {
            Ok(b) => b.value()?,
            Err(e) if not_found(&e) => return Ok(None),
            Err(e) => return Err(e),
        };
        if p.get("disabled").and_then(Value::as_bool) == Some(true) {
            bail!(
                "{flag} {name}: the principal is disabled; enable it (`arca principal \
                 update {name} --enable`) or name another"
            );
        }
        let roles = strings(&p, "roles");
        if !roles.iter().any(|r| r == cu) {
            bail!(
                "{flag} {name}: the principal exists without the {cu} role a door needs to use \
                 a key (roles: {}); give it the role (`arca principal update {name} --role \
                 {cu}`) or name another",
                roles.join(", ")
            );
        }
        if roles.len() > 1 {
            self.warnings.push(format!(
                "principal {name} also holds {}: a door principal needs only {cu}",
                roles
                    .iter()
                    .filter(|r| *r != cu)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        Ok(Some(p))
    }

    /// The door's principal: `existing` (from [`Setup::check_principal`]), or created as a
    /// `crypto-user` service.
    async fn principal(&mut self, name: &str, existing: Option<Value>) -> Result<Value> {
        let cu = Role::CryptoUser.as_str();
        if let Some(p) = existing {
            self.step(
                "principal",
                name,
                "unchanged",
                format!("exists with role {cu}"),
            );
            return Ok(p);
        }
        let p = self
            .c
            .post(
                &["v1", "principals"],
                &json!({"name": name, "roles": [cu], "groups": [], "kind": "service"}),
            )
            .await?
            .value()?;
        self.step(
            "principal",
            name,
            "created",
            format!("a service with role {cu}"),
        );
        Ok(p)
    }

    /// The key if it exists, checked: the spec, a usage that allows what the door needs,
    /// not destroyed (reads only).
    async fn check_key(&mut self, need: &KeyNeed<'_>) -> Result<Option<Value>> {
        let name = need.name;
        let k = match self.c.get(&["v1", "keys", name], &[]).await {
            Ok(b) => b.value()?,
            Err(e) if not_found(&e) => {
                // Not a key's id, name or alias: the name of the key to create.
                check_name(&need.flag, name, false)?;
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let spec: Option<KeySpec> = k
            .get("spec")
            .and_then(|s| serde_json::from_value(s.clone()).ok());
        if spec != Some(need.spec) {
            bail!(
                "{} {name}: the key exists as {}; the door needs {}: name another key with {}",
                need.flag,
                str_of(&k, "spec"),
                need.spec.as_str(),
                need.flag
            );
        }
        let usage: Vec<KeyUsage> = k
            .get("usage")
            .and_then(|u| serde_json::from_value(u.clone()).ok())
            .unwrap_or_default();
        if let Some(missing) = need
            .needs
            .iter()
            .find(|u| !arca_core::model::can(&usage, **u))
        {
            bail!(
                "{} {name}: the key's usage ({}) does not allow {}, which the door needs: name \
                 another key with {}",
                need.flag,
                usage
                    .iter()
                    .map(|u| u.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                missing.as_str(),
                need.flag
            );
        }
        let state = str_of(&k, "state");
        if state.starts_with("DESTROYED") {
            bail!(
                "{} {name}: the key is {state}; name another key with {}",
                need.flag,
                need.flag
            );
        }
        if state != "ACTIVE" {
            self.warnings.push(format!(
                "key {name} is {state}, not ACTIVE: the door will not protect new data with it"
            ));
        }
        if k.get("destroy_after").is_some_and(|d| !d.is_null()) {
            self.warnings.push(format!(
                "key {name} is scheduled for destruction: the door refuses it \
                 (`arca key cancel-destruction {name}`)"
            ));
        }
        Ok(Some(k))
    }

    /// The key: `existing` (from [`Setup::check_key`]), its policy given each of the door's
    /// statements (replacing a statement of the same sid that differs), or created with the
    /// spec, the usage and a policy of the door's statements alone.
    async fn key(
        &mut self,
        need: &KeyNeed<'_>,
        existing: Option<Value>,
        principals: &[Value],
    ) -> Result<()> {
        let name = need.name;
        if let Some(k) = existing {
            self.step(
                "key",
                name,
                "unchanged",
                format!("exists as {} {}", need.spec.as_str(), str_of(&k, "state")),
            );
            for (g, p) in need.grants.iter().zip(principals) {
                self.grant(name, g, p).await?;
            }
            return Ok(());
        }
        let k = self
            .c
            .post(
                &["v1", "keys"],
                &json!({"name": name, "spec": need.spec.as_str(),
                    "usage": [need.usage.as_str()], "description": need.description,
                    "policy": need.grants}),
            )
            .await?
            .value()?;
        self.step(
            "key",
            name,
            "created",
            format!(
                "{} {} ({}), {}",
                need.spec.as_str(),
                need.usage.as_str(),
                str_of(&k, "id"),
                str_of(&k, "state")
            ),
        );
        for g in &need.grants {
            self.step("grant", name, "created", grant_text(g));
        }
        Ok(())
    }

    /// Puts `want` into the key's policy unless it is there already, and warns about
    /// other statements that give the door principal more, or refuse it what it needs.
    async fn grant(&mut self, key: &str, want: &Statement, principal: &Value) -> Result<()> {
        let path = ["v1", "keys", key, "policy"];
        let current: KeyPolicy = self.c.get(&path, &[]).await?.parse()?;
        let pname = str_of(principal, "name");
        let subjects = subjects_of(principal);
        for s in current.statements.iter().filter(|s| s.sid != want.sid) {
            if !s.principals.iter().any(|p| subjects.contains(p)) {
                continue;
            }
            let label = s.sid.clone().unwrap_or_else(|| "without a sid".to_string());
            let fix = match &s.sid {
                Some(sid) => format!("`arca policy remove {key} --sid {sid}`"),
                None => format!("`arca policy show {key}`, then `arca policy set`"),
            };
            let all = s.actions.iter().any(|a| a == "*");
            match s.effect {
                Effect::Deny if all || s.actions.iter().any(|a| want.actions.contains(a)) => {
                    self.warnings.push(format!(
                        "key {key}: statement {label} denies {pname} {}: the door may be refused",
                        s.actions.join(", ")
                    ));
                }
                Effect::Allow if all || s.actions.iter().any(|a| !want.actions.contains(a)) => {
                    self.warnings.push(format!(
                        "key {key}: statement {label} lets {} {} too, which covers {pname}: \
                         more than the door needs (to narrow it: {fix})",
                        s.principals.join(", "),
                        s.actions.join(", ")
                    ));
                }
                _ => {}
            }
        }
        if current.statements.iter().any(|s| s == want) {
            self.step("grant", key, "unchanged", grant_text(want));
            return Ok(());
        }
        let mut statements: Vec<Statement> = current
            .statements
            .iter()
            .filter(|s| s.sid != want.sid)
            .cloned()
            .collect();
        let replaced = statements.len() != current.statements.len();
        statements.push(want.clone());
        self.c
            .put(
                &path,
                &json!({"statements": statements, "expected_version": current.version}),
            )
            .await?;
        self.step(
            "grant",
            key,
            if replaced { "updated" } else { "created" },
            grant_text(want),
        );
        Ok(())
    }

    fn changed(&self) -> bool {
        self.steps.iter().any(|s| s.result != "unchanged")
    }

    /// Prints what was done, the configuration and the console instructions.
    fn finish(&self, ctx: &Ctx, config: &str, console: Value, console_text: &str) {
        for w in &self.warnings {
            eprintln!("warning: {w}");
        }
        if ctx.json() {
            let steps: Vec<Value> = self
                .steps
                .iter()
                .map(|s| json!({"object": s.object, "name": s.name, "result": s.result, "detail": s.detail}))
                .collect();
            let mut v = json!({
                "tenant": self.tenant,
                "changed": self.changed(),
                "steps": steps,
                "warnings": self.warnings,
                "config": config,
            });
            if let (Some(o), Some(extra)) = (v.as_object_mut(), console.as_object()) {
                o.extend(extra.clone());
            }
            print_json(&v);
            return;
        }
        outln!("tenant {}:", self.tenant);
        for s in &self.steps {
            outln!("  {} {} {}: {}", s.result, s.object, s.name, s.detail);
        }
        if !self.changed() {
            outln!("nothing changed: the keys, principals and grants were already in place");
        }
        outln!("\n# Paste into the server's configuration file (arca.toml; leave out an issuer");
        outln!("# entry it already has), then restart Arca:\n");
        outln!("{config}");
        outln!("{console_text}");
    }
}

/// A grant in one line.
fn grant_text(s: &Statement) -> String {
    format!(
        "{} may {} through the {} door only (statement {})",
        s.principals.join(", "),
        s.actions.join(", "),
        s.conditions
            .doors
            .iter()
            .map(|d| d.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        s.sid.as_deref().unwrap_or("")
    )
}

/// The policy subjects that name a principal: itself by name and id, its roles and groups,
/// and everyone.
fn subjects_of(p: &Value) -> Vec<String> {
    let mut v = vec![
        "*".to_string(),
        format!("principal:{}", str_of(p, "name")),
        format!("principal:{}", str_of(p, "id")),
    ];
    v.extend(strings(p, "roles").iter().map(|r| format!("role:{r}")));
    v.extend(strings(p, "groups").iter().map(|g| format!("group:{g}")));
    v
}

async fn cse_setup(ctx: &Ctx, a: CseSetupArgs) -> Result<()> {
    // Everything from the flags is checked before the first request.
    let url = https_url("--kacls-url", &a.kacls_url)?;
    let kacls_url = a.kacls_url.trim_end_matches('/').to_string();
    let prefix = match &a.path_prefix {
        Some(p) => p.clone(),
        None => {
            let p = url.path().trim_end_matches('/');
            if p.is_empty() {
                bail!(
                    "--kacls-url {kacls_url:?} has no path: give the path Arca serves the KACLS \
                     under in it (https://HOST/cse) or with --path-prefix"
                );
            }
            p.to_string()
        }
    };
    let flag = if a.path_prefix.is_some() {
        "--path-prefix"
    } else {
        "the path of --kacls-url"
    };
    arca_server::config::check_prefix(flag, &prefix)?;
    if a.key.trim().is_empty() {
        bail!("--key: must not be empty");
    }
    check_name("--principal", &a.principal, true)?;
    if a.delegate_key
        .as_deref()
        .is_some_and(|k| k.trim().is_empty())
    {
        bail!("--delegate-key: must not be empty");
    }
    if a.delegate_key.as_deref() == Some(a.key.as_str()) {
        bail!("--delegate-key must differ from --key: one wraps keys (AES-256), the other signs (ED25519)");
    }
    let allowed = [
        a.allowed_emails.as_slice(),
        a.allowed_domains.as_slice(),
        a.allowed_groups.as_slice(),
    ];
    require_someone(
        allowed,
        "--allowed-email, --allowed-domain or --allowed-group",
    )?;
    let privileged = [
        a.privileged_emails.as_slice(),
        a.privileged_domains.as_slice(),
        a.privileged_groups.as_slice(),
    ];
    if let Some(p) = &a.privileged_principal {
        if p == &a.principal {
            bail!(
                "--privileged-principal must differ from --principal, so that the key policy \
                 grants the privileged methods apart from the everyday ones"
            );
        }
        check_name("--privileged-principal", p, true)?;
        require_someone(
            privileged,
            "--privileged-email, --privileged-domain or --privileged-group",
        )?;
    }
    if a.google_apps.is_empty() {
        bail!("--google-app: name at least one");
    }
    let mut apps: Vec<GoogleApp> = Vec::new();
    for g in &a.google_apps {
        if !apps.contains(g) {
            apps.push(*g);
        }
    }
    let idp = Issuer {
        comment: "your identity provider (authentication tokens)".into(),
        issuer: a.idp_issuer.clone(),
        audience: a.idp_audience.clone(),
        jwks_url: a.idp_jwks_url.clone(),
        jwks_file: a.idp_jwks_file.clone(),
        algorithms: a.idp_algorithms.clone(),
    };
    idp.check(&IssuerFlags {
        issuer: "--idp-issuer and --idp-audience",
        jwks_url: "--idp-jwks-url",
        jwks: "--idp-jwks-url or --idp-jwks-file",
        algorithm: "--idp-algorithm",
    })?;

    let mut s = Setup::start(ctx, "arca cse setup").await?;

    // The configuration, checked by the server's rules before anything changes.
    let mut issuers = vec![idp];
    let auth_issuers: Vec<String> = apps.iter().map(|g| g.issuer()).collect();
    for (app, iss) in apps.iter().zip(&auth_issuers) {
        issuers.push(Issuer {
            comment: format!("Google {} (authorization tokens)", app.label()),
            issuer: iss.clone(),
            audience: "cse-authorization".into(),
            jwks_url: Some(google_jwks_url(iss)),
            jwks_file: None,
            algorithms: vec!["RS256".into()],
        });
    }
    if a.delegate_key.is_some() {
        issuers.push(Issuer {
            comment: "this KACLS's delegated tokens (delegate)".into(),
            issuer: kacls_url.clone(),
            audience: arca_server::cse::DELEGATED_AUDIENCE.into(),
            jwks_url: Some(format!("{kacls_url}/jwks")),
            jwks_file: None,
            algorithms: vec!["EdDSA".into()],
        });
    }
    let mut config: String = issuers.iter().map(|i| i.toml() + "\n").collect();
    config.push_str(&format!(
        "[cse]\npath_prefix = {}\nkey = {}\nkacls_url = {}\nauthorization_issuers = {}\n",
        tq(&prefix),
        tq(&a.key),
        tq(&kacls_url),
        ta(&auth_issuers)
    ));
    if let Some(d) = &a.owner_domain {
        config.push_str(&format!("owner_domain = {}\n", tq(d)));
    }
    if let Some(d) = &a.delegate_key {
        config.push_str(&format!("delegate_key = {}\n", tq(d)));
    }
    config.push_str("\n[cse.access]\n");
    config.push_str(&access_toml(
        &s.tenant,
        &a.principal,
        &a.idp_issuer,
        allowed,
    ));
    if let Some(p) = &a.privileged_principal {
        config.push_str("\n[cse.privileged]\n");
        config.push_str(&access_toml(&s.tenant, p, &a.idp_issuer, privileged));
    }
    check_config(&config)?;

    // What exists is read and checked first, so that a misfit changes nothing.
    let mut kek_grants = vec![door_statement(
        Door::Cse,
        &a.principal,
        &[Action::Encrypt, Action::Decrypt],
    )];
    if let Some(p) = &a.privileged_principal {
        kek_grants.push(door_statement(
            Door::Cse,
            p,
            &[Action::Encrypt, Action::Decrypt],
        ));
    }
    let kek = KeyNeed {
        flag: "--key".into(),
        name: &a.key,
        spec: KeySpec::Aes256,
        usage: KeyUsage::EncryptDecrypt,
        needs: &[KeyUsage::EncryptDecrypt],
        description: "Google Workspace client-side encryption: wraps Google's data keys",
        grants: kek_grants,
    };
    let delegate = a.delegate_key.as_deref().map(|d| KeyNeed {
        flag: "--delegate-key".into(),
        name: d,
        spec: KeySpec::Ed25519,
        usage: KeyUsage::Sign,
        needs: &[KeyUsage::Sign],
        description: "Google Workspace client-side encryption: signs delegated tokens",
        grants: vec![door_statement(
            Door::Cse,
            &a.principal,
            &[Action::Sign, Action::GetPublicKey],
        )],
    });
    let main_found = s.check_principal("--principal", &a.principal).await?;
    let admin_found = match &a.privileged_principal {
        Some(p) => s.check_principal("--privileged-principal", p).await?,
        None => None,
    };
    let kek_found = s.check_key(&kek).await?;
    let delegate_found = match &delegate {
        Some(d) => s.check_key(d).await?,
        None => None,
    };

    // Then the principals, the keys and their grants.
    let main = s.principal(&a.principal, main_found).await?;
    let mut kek_principals = vec![main.clone()];
    if let Some(p) = &a.privileged_principal {
        kek_principals.push(s.principal(p, admin_found).await?);
    }
    s.key(&kek, kek_found, &kek_principals).await?;
    if let Some(d) = &delegate {
        s.key(d, delegate_found, std::slice::from_ref(&main))
            .await?;
    }

    let console = json!({"google_admin_console": {
        "kacls_url": kacls_url,
        "identity_provider_client_id": a.idp_audience,
    }});
    let text = format!(
        "In the Google admin console (Security, Access and data control, Client-side \
         encryption): Add external key service, with the KACLS URL\n\n  {kacls_url}\n\nand, under \
         Identity provider, the client id {} of your IdP.",
        a.idp_audience
    );
    s.finish(ctx, &config, console, &text);
    Ok(())
}

/// Entra ID's JWKS URL for its token issuers (v1 `https://sts.windows.net/TID/`, v2
/// `https://login.microsoftonline.com/TID/v2.0`).
fn entra_jwks_url(issuer: &str) -> Option<String> {
    let tid_ok =
        |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    if let Some(t) = issuer
        .strip_prefix("https://sts.windows.net/")
        .map(|r| r.trim_end_matches('/'))
        .filter(|t| tid_ok(t))
    {
        return Some(format!(
            "https://login.microsoftonline.com/{t}/discovery/keys"
        ));
    }
    issuer
        .strip_prefix("https://login.microsoftonline.com/")
        .and_then(|r| r.trim_end_matches('/').strip_suffix("/v2.0"))
        .filter(|t| tid_ok(t))
        .map(|t| format!("https://login.microsoftonline.com/{t}/discovery/v2.0/keys"))
}

async fn dke_setup(ctx: &Ctx, a: DkeSetupArgs) -> Result<()> {
    let url = https_url("--service-url", &a.service_url)?;
    if url.path() != "/" {
        bail!(
            "--service-url {:?}: the scheme and host Office reaches Arca by, without a path (the \
             path is --path-prefix)",
            a.service_url
        );
    }
    let base = a.service_url.trim_end_matches('/').to_string();
    arca_server::config::check_prefix("--path-prefix", &a.path_prefix)?;
    check_name("--principal", &a.principal, true)?;
    let allowed = [
        a.allowed_emails.as_slice(),
        a.allowed_domains.as_slice(),
        a.allowed_groups.as_slice(),
    ];
    require_someone(
        allowed,
        "--allowed-email, --allowed-domain or --allowed-group",
    )?;
    // NAME or NAME=ARCA-KEY, each name once.
    let mut keys: Vec<(String, String)> = Vec::new();
    for k in &a.key_names {
        let (name, key) = match k.split_once('=') {
            Some((n, key)) => (n.to_string(), key.to_string()),
            None => (k.clone(), format!("dke-{k}")),
        };
        arca_server::config::check_dke_key_name("--key-name", &name)?;
        if key.trim().is_empty() {
            bail!("--key-name {k:?}: the Arca key after = is empty");
        }
        if keys.iter().any(|(n, _)| *n == name) {
            bail!("--key-name {name:?} is given twice");
        }
        keys.push((name, key));
    }
    let jwks_url = match (&a.jwks_url, &a.jwks_file) {
        (Some(u), _) => Some(u.clone()),
        (None, Some(_)) => None,
        (None, None) => Some(entra_jwks_url(&a.issuer).ok_or_else(|| {
            anyhow::anyhow!(
                "--jwks-url: {:?} is not an Entra ID issuer whose JWKS this command knows; give \
                 --jwks-url or --jwks-file",
                a.issuer
            )
        })?),
    };
    let audience = a.audience.clone().unwrap_or_else(|| base.clone());
    let entra = Issuer {
        comment: "Entra ID (the users' tokens)".into(),
        issuer: a.issuer.clone(),
        audience,
        jwks_url,
        jwks_file: a.jwks_file.clone(),
        algorithms: a.algorithms.clone(),
    };
    entra.check(&IssuerFlags {
        issuer: "--issuer and --audience",
        jwks_url: "--jwks-url",
        jwks: "--jwks-url or --jwks-file",
        algorithm: "--algorithm",
    })?;

    let mut s = Setup::start(ctx, "arca dke setup").await?;

    let mut config = entra.toml();
    config.push_str(&format!(
        "\n[dke]\npath_prefix = {}\npublic_key_cache_days = {}\n",
        tq(&a.path_prefix),
        a.cache_days
    ));
    for (name, key) in &keys {
        config.push_str(&format!(
            "\n[[dke.keys]]\nname = {}\nkey = {}\n[dke.keys.access]\n",
            tq(name),
            tq(key)
        ));
        config.push_str(&access_toml(&s.tenant, &a.principal, &a.issuer, allowed));
    }
    check_config(&config)?;

    // What exists is read and checked first, so that a misfit changes nothing.
    let mut needs: Vec<KeyNeed> = Vec::new();
    for (name, key) in &keys {
        if needs.iter().any(|n| n.name == key.as_str()) {
            continue;
        }
        needs.push(KeyNeed {
            flag: format!("--key-name {name}"),
            name: key,
            spec: KeySpec::Rsa2048,
            usage: KeyUsage::Decrypt,
            needs: &[KeyUsage::Decrypt],
            description: "Microsoft Purview Double Key Encryption",
            grants: vec![door_statement(
                Door::Dke,
                &a.principal,
                &[Action::Decrypt, Action::GetPublicKey],
            )],
        });
    }
    let found_principal = s.check_principal("--principal", &a.principal).await?;
    let mut found = Vec::new();
    for n in &needs {
        found.push(s.check_key(n).await?);
    }

    let p = s.principal(&a.principal, found_principal).await?;
    for (n, f) in needs.iter().zip(found) {
        s.key(n, f, std::slice::from_ref(&p)).await?;
    }

    let urls: Vec<(String, String)> = keys
        .iter()
        .map(|(n, _)| (n.clone(), format!("{base}{}/{n}", a.path_prefix)))
        .collect();
    let console = json!({"purview": {"key_urls": urls.iter()
        .map(|(n, u)| json!({"name": n, "url": u})).collect::<Vec<_>>()}});
    let mut text = String::from(
        "In Purview (Information protection, Labels): for each label, choose Use Double Key \
         Encryption and paste its key's URL:\n",
    );
    for (n, u) in &urls {
        text.push_str(&format!("\n  {n}: {u}"));
    }
    s.finish(ctx, &config, console, &text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_issuers_give_their_jwks() {
        assert_eq!(
            entra_jwks_url("https://sts.windows.net/72f988bf-86f1/").as_deref(),
            Some("https://login.microsoftonline.com/72f988bf-86f1/discovery/keys")
        );
        assert_eq!(
            entra_jwks_url("https://login.microsoftonline.com/abc/v2.0").as_deref(),
            Some("https://login.microsoftonline.com/abc/discovery/v2.0/keys")
        );
        assert_eq!(entra_jwks_url("https://idp.example/"), None);
        assert_eq!(entra_jwks_url("https://sts.windows.net/a/b/"), None);
    }

    #[test]
    fn toml_strings_are_quoted_and_escaped() {
        // Whatever a flag holds comes back from the TOML as it was.
        for v in [
            "plain",
            "a\"b",
            "back\\slash",
            "two\nlines",
            "it's \"both\"",
        ] {
            let t: toml::Table = toml::from_str(&format!("x = {}", tq(v))).unwrap();
            assert_eq!(t["x"].as_str(), Some(v));
        }
        assert_eq!(ta(&["x".into(), "y".into()]), "[\"x\", \"y\"]");
    }

    #[test]
    fn door_statements_name_the_door_and_the_actions() {
        let s = door_statement(Door::Cse, "svc", &[Action::Encrypt, Action::Decrypt]);
        assert_eq!(s.sid.as_deref(), Some("cse-door-svc"));
        assert_eq!(s.principals, ["principal:svc"]);
        assert_eq!(s.actions, ["Encrypt", "Decrypt"]);
        assert_eq!(s.conditions.doors, [Door::Cse]);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["conditions"]["doors"], json!(["cse"]));
    }
}
