//! Who may do what: built-in roles with separation of duties, the catalogue of actions,
//! per-key policies with conditions, tenant settings and M-of-N approval rules.
//!
//! Everything here is a pure function of its inputs (no clock, no store), so the whole
//! decision table is unit-tested; the service gathers the facts of a request into
//! [`RequestFacts`] and asks [`decide`].

use std::collections::BTreeMap;
use std::net::IpAddr;

use chrono::{DateTime, Datelike, Timelike, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::{Action, Error, Result};

/// Which door a request came through (for audit and for policy conditions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Door {
    Rest,
    Kmip,
    /// The AWS KMS-compatible API.
    Aws,
    /// AWS KMS calling Arca as its external key store (the XKS proxy API).
    Xks,
    /// Microsoft Purview calling Arca as its Double Key Encryption key service.
    Dke,
    /// Google Workspace client-side encryption calling Arca as its key service (KACLS).
    Cse,
    System,
}

impl Door {
    pub fn as_str(self) -> &'static str {
        match self {
            Door::Rest => "rest",
            Door::Kmip => "kmip",
            Door::Aws => "aws",
            Door::Xks => "xks",
            Door::Dke => "dke",
            Door::Cse => "cse",
            Door::System => "system",
        }
    }
}

/// The built-in roles. Their duties are disjoint on purpose (CSA segregation of duties):
/// whoever runs the service cannot use keys, whoever manages keys cannot use them unless a
/// key policy says so, whoever audits changes nothing.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Tenants, server configuration, backups. Never a tenant's keys.
    SystemOperator,
    /// Key lifecycle, policies, principals and settings of its tenant; cryptographic use
    /// only where a key policy grants it. (`admin` is read as this role: the name of the
    /// one role data directories made before roles existed gave their first principal.)
    #[serde(alias = "admin")]
    TenantAdmin,
    /// Only the operations its key policies grant.
    CryptoUser,
    /// Reads audit records and metadata; changes nothing, uses nothing.
    Auditor,
    /// Votes on quorum approval requests.
    Approver,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::SystemOperator,
        Role::TenantAdmin,
        Role::CryptoUser,
        Role::Auditor,
        Role::Approver,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::SystemOperator => "system-operator",
            Role::TenantAdmin => "tenant-admin",
            Role::CryptoUser => "crypto-user",
            Role::Auditor => "auditor",
            Role::Approver => "approver",
        }
    }

    pub fn parse(field: &str, s: &str) -> Result<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::invalid(
                    field,
                    format!(
                        "unknown role {s:?}; the roles are {}",
                        Role::ALL.map(|r| r.as_str()).join(", ")
                    ),
                )
            })
    }

    /// The categories of action this role may attempt at all (a key policy may still
    /// refuse a key action).
    fn categories(self) -> &'static [Category] {
        use Category::*;
        match self {
            // Identity here means the system tenant's own principals (operators,
            // their approvers and auditors): the system tenant holds no keys.
            Role::SystemOperator => &[System, Identity, SelfService],
            Role::TenantAdmin => &[
                KeyManage,
                KeyRead,
                KeyUse,
                Identity,
                ApprovalRead,
                SelfService,
            ],
            Role::CryptoUser => &[KeyUse, KeyRead, Random, SelfService],
            Role::Auditor => &[KeyRead, AuditRead, ApprovalRead, SelfService],
            Role::Approver => &[ApprovalRead, ApprovalVote, SelfService],
        }
    }
}

/// Families of actions, the unit in which roles are granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    /// Create, change, rotate, move through the lifecycle, set policy.
    KeyManage,
    /// Read key metadata (describe, list, history, aliases, policy).
    KeyRead,
    /// Cryptographic use of a key (including reading its public key and exporting it).
    KeyUse,
    /// Random bytes: no key involved.
    Random,
    /// Principals, credentials and settings of a tenant.
    Identity,
    AuditRead,
    ApprovalRead,
    ApprovalVote,
    /// Tenants and the server.
    System,
    /// What every authenticated principal may do about itself.
    SelfService,
    /// Operations the audit trail records but no role is granted: authentication, custody
    /// shares, what the server does by itself, refusals made before any operation.
    Recorded,
}

/// The category of an action named in a stored policy or rule, if it names one.
pub fn category(action: &str) -> Option<Category> {
    Action::parse(action).map(Action::category)
}

/// The actions that may appear in a key policy statement: the ones that act on one key.
pub fn is_key_action(action: &str) -> bool {
    Action::parse(action).is_some_and(Action::is_key_action)
}

impl Action {
    /// Whether a key policy statement may name this action: it acts on one key.
    pub fn is_key_action(self) -> bool {
        matches!(
            self.category(),
            Category::KeyUse | Category::KeyRead | Category::KeyManage
        ) && !matches!(
            self,
            Action::ListKeys | Action::CreateKey | Action::GenerateRandom | Action::Hash
        )
    }
}

/// True if some role of the list may attempt the action at all.
pub fn role_allows(roles: &[Role], action: Action) -> bool {
    let c = action.category();
    roles.iter().any(|r| r.categories().contains(&c))
}

/// Every action some role in `roles` covers, in [`Action::ALL`] order: what a user
/// interface may offer (a key policy can still refuse a key action). One pass over the
/// list, so it stays cheap on `whoami`, the benchmarks' no-op.
pub fn actions_allowed(roles: &[Role]) -> impl Iterator<Item = &'static str> + '_ {
    Action::ALL
        .iter()
        .filter(|a| roles.iter().any(|r| r.categories().contains(&a.category())))
        .map(|a| a.name())
}

/// Checks a set of roles against the rules of the tenant it is given in.
pub fn check_roles(
    field: &str,
    roles: &[Role],
    system_tenant: bool,
    settings: &TenantSettings,
) -> Result<()> {
    if roles.is_empty() {
        return Err(Error::invalid(field, "a principal needs at least one role"));
    }
    let mut seen = roles.to_vec();
    seen.sort();
    seen.dedup();
    if seen.len() != roles.len() {
        return Err(Error::invalid(field, "a role is listed twice"));
    }
    if system_tenant {
        if let Some(r) = roles
            .iter()
            .find(|r| !matches!(r, Role::SystemOperator | Role::Auditor | Role::Approver))
        {
            return Err(Error::invalid(
                field,
                format!(
                    "the system tenant holds no keys; role {} belongs in a tenant",
                    r.as_str()
                ),
            ));
        }
    } else if roles.contains(&Role::SystemOperator) {
        return Err(Error::invalid(
            field,
            "system-operator is a role of the system tenant only: operators never hold a tenant's keys",
        ));
    }
    if roles.len() > 1 && !settings.allow_multiple_roles {
        return Err(Error::invalid(
            field,
            "this tenant's settings give each principal one role (allow_multiple_roles is false)",
        ));
    }
    Ok(())
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Allow,
    Deny,
}

/// A UTC time-of-day window, `start_hour` inclusive to `end_hour` exclusive (it may wrap
/// midnight: 22 to 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HoursUtc {
    pub start_hour: u8,
    pub end_hour: u8,
}

/// Conditions of a statement; all present conditions must hold for it to apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Conditions {
    /// The client's address must be in one of these networks (`10.0.0.0/8`, `::1/128`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_cidrs: Vec<String>,
    /// The request must come through one of these doors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub doors: Vec<Door>,
    /// The client certificate must carry every one of these attributes. Names: `cn`, `o`,
    /// `ou`, `san_dns`, `san_uri`, `san_email`, `san_ip`, `fingerprint`. A value starting
    /// with `*` matches any suffix (`*.zone-a.example`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub certificate: BTreeMap<String, String>,
    /// Not before this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    /// Not at or after this time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<DateTime<Utc>>,
    /// Only within these hours of the day (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hours_utc: Option<HoursUtc>,
    /// Only on these weekdays (1 = Monday .. 7 = Sunday).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub weekdays: Vec<u8>,
    /// The request's encryption context must hold each of these pairs.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub encryption_context: BTreeMap<String, String>,
}

impl Conditions {
    fn is_empty(&self) -> bool {
        *self == Conditions::default()
    }
}

/// One statement of a key policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Statement {
    /// An optional label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: Effect,
    /// Who: `principal:<id or name>`, `group:<name>`, `role:<role>`, or `*` (everyone in
    /// the tenant).
    pub principals: Vec<String>,
    /// What: action names (`Encrypt`, `Decrypt`, ...) or `*`.
    pub actions: Vec<String>,
    #[serde(default, skip_serializing_if = "Conditions::is_empty")]
    pub conditions: Conditions,
    /// Set when the statement is a grant (AWS KMS's CreateGrant): who made it, who may
    /// retire it. A grant allows its operations like any statement; only its bookkeeping
    /// differs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantInfo>,
}

/// The bookkeeping of a grant statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GrantInfo {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// A subject (`principal:<name>`, ...) that may retire the grant besides its grantee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring_principal: Option<String>,
    pub created_at: DateTime<Utc>,
    pub created_by: String,
}

/// A key's policy: numbered, so that every change is a new version that can be rolled back.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KeyPolicy {
    pub version: u32,
    pub statements: Vec<Statement>,
    /// Who set this version, and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<DateTime<Utc>>,
}

/// Validates statements: known principals' shapes, key actions only, parseable conditions.
pub fn validate_statements(field: &str, statements: &[Statement]) -> Result<()> {
    if statements.len() > 100 {
        return Err(Error::invalid(field, "a policy has at most 100 statements"));
    }
    for (i, s) in statements.iter().enumerate() {
        let f = |sub: &str| format!("{field}[{i}].{sub}");
        if s.principals.is_empty() {
            return Err(Error::invalid(
                f("principals"),
                "name at least one principal, group or role (or \"*\")",
            ));
        }
        for p in &s.principals {
            parse_subject(&f("principals"), p)?;
        }
        if s.actions.is_empty() {
            return Err(Error::invalid(
                f("actions"),
                "name at least one action (or \"*\")",
            ));
        }
        for a in &s.actions {
            if a != "*" && !is_key_action(a) {
                return Err(Error::invalid(
                    f("actions"),
                    format!("{a:?} is not an action on a key"),
                ));
            }
        }
        let c = &s.conditions;
        for cidr in &c.source_cidrs {
            parse_cidr(&f("conditions.source_cidrs"), cidr)?;
        }
        for k in c.certificate.keys() {
            if !CERT_ATTRIBUTES.contains(&k.as_str()) {
                return Err(Error::invalid(
                    f("conditions.certificate"),
                    format!(
                        "unknown certificate attribute {k:?}; use one of {}",
                        CERT_ATTRIBUTES.join(", ")
                    ),
                ));
            }
        }
        if let Some(h) = &c.hours_utc {
            if h.start_hour > 23 || h.end_hour > 24 || h.start_hour == h.end_hour {
                return Err(Error::invalid(
                    f("conditions.hours_utc"),
                    "hours are 0..=24 and start differs from end",
                ));
            }
        }
        if c.weekdays.iter().any(|d| !(1..=7).contains(d)) {
            return Err(Error::invalid(
                f("conditions.weekdays"),
                "weekdays are 1 (Monday) to 7 (Sunday)",
            ));
        }
        if let (Some(a), Some(b)) = (c.not_before, c.not_after) {
            if a >= b {
                return Err(Error::invalid(
                    f("conditions.not_after"),
                    "must be after not_before",
                ));
            }
        }
    }
    Ok(())
}

/// The certificate attributes a condition can test.
pub const CERT_ATTRIBUTES: &[&str] = &[
    "cn",
    "o",
    "ou",
    "san_dns",
    "san_uri",
    "san_email",
    "san_ip",
    "fingerprint",
];

enum Subject<'a> {
    Any,
    Principal(&'a str),
    Group(&'a str),
    Role(Role),
}

fn parse_subject<'a>(field: &str, s: &'a str) -> Result<Subject<'a>> {
    if s == "*" {
        return Ok(Subject::Any);
    }
    match s.split_once(':') {
        Some(("principal", v)) if !v.is_empty() => Ok(Subject::Principal(v)),
        Some(("group", v)) if !v.is_empty() => Ok(Subject::Group(v)),
        Some(("role", v)) => Ok(Subject::Role(Role::parse(field, v)?)),
        _ => Err(Error::invalid(
            field,
            format!("{s:?} is not principal:<id or name>, group:<name>, role:<role> or *"),
        )),
    }
}

/// Parses `addr/len` (or a bare address, meaning one host).
pub fn parse_cidr(field: &str, s: &str) -> Result<(IpAddr, u8)> {
    let bad = || Error::invalid(field, format!("{s:?} is not a CIDR block like 10.0.0.0/8"));
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a, Some(l)),
        None => (s, None),
    };
    let addr: IpAddr = addr.parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = match len {
        Some(l) => l.parse::<u8>().map_err(|_| bad())?,
        None => max,
    };
    if len > max {
        return Err(bad());
    }
    Ok((addr, len))
}

fn in_cidr(ip: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - len)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Attributes of the client certificate a request was made with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertInfo {
    /// The subject in canonical RFC 4514 form ([`crate::dn`]): `CN=app,OU=zone-a,O=Example`.
    pub subject: String,
    pub cn: Vec<String>,
    pub o: Vec<String>,
    pub ou: Vec<String>,
    pub san_dns: Vec<String>,
    pub san_uri: Vec<String>,
    pub san_email: Vec<String>,
    pub san_ip: Vec<String>,
    /// Lower-case hex SHA-256 of the DER certificate.
    pub fingerprint: String,
    /// Lower-case hex SHA-256 of the SubjectPublicKeyInfo of the CA key that signed this
    /// certificate (its trust anchor), found by verifying the signature: the anchor decides
    /// the one tenant whose bindings the certificate is looked up in. `None` when no CA
    /// the server trusts verifies it (the certificate then authenticates no one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issuer_anchor: Option<String>,
}

impl CertInfo {
    /// The values of one attribute.
    pub fn values(&self, name: &str) -> Vec<&str> {
        let v: &[String] = match name {
            "cn" => &self.cn,
            "o" => &self.o,
            "ou" => &self.ou,
            "san_dns" => &self.san_dns,
            "san_uri" => &self.san_uri,
            "san_email" => &self.san_email,
            "san_ip" => &self.san_ip,
            "fingerprint" => return vec![self.fingerprint.as_str()],
            _ => &[],
        };
        v.iter().map(|s| s.as_str()).collect()
    }
}

fn glob_eq(pattern: &str, value: &str) -> bool {
    match pattern.strip_prefix('*') {
        Some(suffix) => {
            value.len() >= suffix.len()
                && value[value.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        }
        None => pattern.eq_ignore_ascii_case(value),
    }
}

/// Who is asking, and the circumstances, as far as a decision needs them.
#[derive(Debug, Clone)]
pub struct RequestFacts<'a> {
    pub principal_id: Uuid,
    pub principal_name: &'a str,
    pub roles: &'a [Role],
    pub groups: &'a [String],
    pub source: Option<IpAddr>,
    pub door: Door,
    pub cert: Option<&'a CertInfo>,
    pub now: DateTime<Utc>,
    pub encryption_context: Option<&'a BTreeMap<String, String>>,
}

impl RequestFacts<'_> {
    fn is(&self, s: &Subject<'_>) -> bool {
        match s {
            Subject::Any => true,
            Subject::Principal(p) => {
                *p == self.principal_name
                    || p.parse::<Uuid>().is_ok_and(|id| id == self.principal_id)
            }
            Subject::Group(g) => self.groups.iter().any(|x| x == g),
            Subject::Role(r) => self.roles.contains(r),
        }
    }

    fn meets(&self, c: &Conditions) -> bool {
        if !c.source_cidrs.is_empty() {
            let Some(ip) = self.source else { return false };
            if !c
                .source_cidrs
                .iter()
                .filter_map(|s| parse_cidr("", s).ok())
                .any(|n| in_cidr(ip, n))
            {
                return false;
            }
        }
        if !c.doors.is_empty() && !c.doors.contains(&self.door) {
            return false;
        }
        if !c.certificate.is_empty() {
            let Some(cert) = self.cert else { return false };
            for (k, want) in &c.certificate {
                if !cert.values(k).iter().any(|v| glob_eq(want, v)) {
                    return false;
                }
            }
        }
        if c.not_before.is_some_and(|t| self.now < t) || c.not_after.is_some_and(|t| self.now >= t)
        {
            return false;
        }
        if let Some(h) = &c.hours_utc {
            let hour = self.now.hour() as u8;
            let inside = if h.start_hour < h.end_hour {
                hour >= h.start_hour && hour < h.end_hour
            } else {
                hour >= h.start_hour || hour < h.end_hour
            };
            if !inside {
                return false;
            }
        }
        if !c.weekdays.is_empty()
            && !c
                .weekdays
                .contains(&(self.now.weekday().number_from_monday() as u8))
        {
            return false;
        }
        if !c.encryption_context.is_empty() {
            let Some(ctx) = self.encryption_context else {
                return false;
            };
            if !c
                .encryption_context
                .iter()
                .all(|(k, v)| ctx.get(k) == Some(v))
            {
                return false;
            }
        }
        true
    }

    fn matches(&self, s: &Statement, action: Action) -> bool {
        s.actions.iter().any(|a| a == "*" || a == action.name())
            && s.principals
                .iter()
                .filter_map(|p| parse_subject("", p).ok())
                .any(|p| self.is(&p))
            && self.meets(&s.conditions)
    }
}

/// Why a request was allowed or refused, for the audit trail and the error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow(&'static str),
    Deny(String),
}

/// The one authorization rule.
///
/// 1. Some role of the principal must cover the action's category (separation of duties:
///    no policy can make an auditor encrypt or an operator read a key).
/// 2. For an action on a key, a matching `deny` statement of the key's policy refuses it.
/// 3. Otherwise a matching `allow` statement permits it.
/// 4. Otherwise tenant-admins may manage and read the key and auditors may read it (the
///    built-in default: "its tenant-admins manage it; nobody uses it until granted").
pub fn decide(facts: &RequestFacts<'_>, action: Action, policy: Option<&KeyPolicy>) -> Decision {
    let cat = action.category();
    if !role_allows(facts.roles, action) {
        return Decision::Deny(format!(
            "no role of {} ({}) may {action}",
            facts.principal_name,
            facts
                .roles
                .iter()
                .map(|r| r.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let Some(policy) = policy else {
        return Decision::Allow("role");
    };
    if let Some(s) = policy
        .statements
        .iter()
        .find(|s| s.effect == Effect::Deny && facts.matches(s, action))
    {
        return Decision::Deny(format!(
            "the key policy denies {action}{}",
            s.sid
                .as_ref()
                .map(|x| format!(" (statement {x})"))
                .unwrap_or_default()
        ));
    }
    if policy
        .statements
        .iter()
        .any(|s| s.effect == Effect::Allow && facts.matches(s, action))
    {
        return Decision::Allow("key policy");
    }
    let builtin = match cat {
        Category::KeyManage => facts.roles.contains(&Role::TenantAdmin),
        Category::KeyRead => {
            facts.roles.contains(&Role::TenantAdmin) || facts.roles.contains(&Role::Auditor)
        }
        // An auditor reads a key's audit facts (its destruction receipts) by its role, as it
        // reads the key's metadata: no key policy has to name it.
        Category::AuditRead => facts.roles.contains(&Role::Auditor),
        _ => false,
    };
    if builtin {
        Decision::Allow("role")
    } else {
        Decision::Deny(format!(
            "the key policy does not grant {action} to {}",
            facts.principal_name
        ))
    }
}

/// One quorum rule of a tenant: these actions need `approvals` distinct approvers (holding
/// the approver role, in `group` if set), none of them the requester.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRule {
    pub actions: Vec<String>,
    pub approvals: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

/// The names of the actions a quorum rule may name (see [`Action::approvable`]).
pub fn approvable_names() -> impl Iterator<Item = &'static str> {
    Action::ALL
        .iter()
        .filter(|a| a.approvable())
        .map(|a| a.name())
}

/// A tenant's settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TenantSettings {
    /// Whether one principal may hold several roles.
    pub allow_multiple_roles: bool,
    /// Statements every new key starts with when its creator gives none.
    pub default_key_policy: Vec<Statement>,
    /// Which actions need M-of-N approval.
    pub approval_rules: Vec<ApprovalRule>,
    /// How long an approval request stays open, in seconds (default 24 h).
    pub approval_ttl_secs: u64,
    /// The shortest waiting period a destruction may be scheduled with, in days (default
    /// 1). 0 lets a destruction take effect at once: what KMIP clients expect of Destroy,
    /// and what a tenant that trusts its approval rules instead of a delay may choose.
    pub min_destruction_window_days: u32,
    /// Whether keys and parameters NIST no longer recommends for new data
    /// ([`LegacyAlgorithm`]) may be used in this tenant. Off by default: an old appliance
    /// that needs Triple DES or RSA-1024 gets them only where a tenant admin chose to
    /// allow them, and every other tenant's refusal names this setting.
    pub allow_legacy_algorithms: bool,
}

/// A key type or parameter that Arca runs only in tenants with
/// [`TenantSettings::allow_legacy_algorithms`]: each is weaker than what Arca offers by
/// default (NIST SP 800-131A disallows or deprecates it, or it lacks a margin Arca's own
/// formats rely on), yet existing KMIP clients and the OASIS profiles still use it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyAlgorithm {
    /// Triple DES (TDEA) keys: 64-bit blocks, disallowed for encryption after 2023.
    TripleDes,
    /// DSA keys and signatures: withdrawn from FIPS 186-5 for new signatures.
    Dsa,
    /// RSA keys under 2048 bits: below 112-bit security.
    RsaBelow2048,
    /// SHA-1 in signatures (RSA-PSS, PKCS#1 v1.5, DSA): collisions are practical.
    Sha1Signature,
    /// An HMAC keyed by the bytes of a key made for another algorithm (an AES key): one
    /// key serving two algorithms, which Arca's keys otherwise never do.
    CrossAlgorithmHmac,
    /// Raw ChaCha20 and ChaCha20-Poly1305 with a client's nonce: a stream cipher whose
    /// keystream a repeated nonce reveals; not a FIPS 140 algorithm.
    ChaCha20,
}

impl LegacyAlgorithm {
    /// How refusals and the documentation name it.
    pub fn describe(self) -> &'static str {
        match self {
            LegacyAlgorithm::TripleDes => "Triple DES",
            LegacyAlgorithm::Dsa => "DSA",
            LegacyAlgorithm::RsaBelow2048 => "an RSA key under 2048 bits",
            LegacyAlgorithm::Sha1Signature => "a signature with SHA-1",
            LegacyAlgorithm::CrossAlgorithmHmac => "an HMAC keyed by a key of another algorithm",
            LegacyAlgorithm::ChaCha20 => "ChaCha20",
        }
    }
}

impl Default for TenantSettings {
    fn default() -> Self {
        TenantSettings {
            allow_multiple_roles: false,
            default_key_policy: Vec::new(),
            approval_rules: Vec::new(),
            approval_ttl_secs: 24 * 3600,
            min_destruction_window_days: 1,
            allow_legacy_algorithms: false,
        }
    }
}

impl TenantSettings {
    /// The one check of [`TenantSettings::allow_legacy_algorithms`]: `Ok` when the tenant
    /// allows legacy algorithms, else a refusal about `field` that names `what` and the
    /// setting that would allow it.
    pub fn permit_legacy(&self, what: LegacyAlgorithm, field: &str) -> Result<()> {
        if self.allow_legacy_algorithms {
            return Ok(());
        }
        Err(Error::unprocessable(
            field,
            format!(
                "{} is a legacy algorithm this tenant does not allow; a tenant admin may \
                 turn on allow_legacy_algorithms in the tenant settings",
                what.describe()
            ),
        ))
    }

    /// Checks the settings before they are stored.
    pub fn validate(&self) -> Result<()> {
        validate_statements("default_key_policy", &self.default_key_policy)?;
        for (i, r) in self.approval_rules.iter().enumerate() {
            if r.actions.is_empty() {
                return Err(Error::invalid(
                    format!("approval_rules[{i}].actions"),
                    "name at least one action",
                ));
            }
            for a in &r.actions {
                if !Action::parse(a).is_some_and(Action::approvable) {
                    return Err(Error::invalid(
                        format!("approval_rules[{i}].actions"),
                        format!(
                            "{a:?} cannot require approval; these can: {}",
                            approvable_names().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
            if !(1..=16).contains(&r.approvals) {
                return Err(Error::invalid(
                    format!("approval_rules[{i}].approvals"),
                    "must be 1 to 16",
                ));
            }
        }
        if self.min_destruction_window_days > *crate::lifecycle::DESTRUCTION_WAIT_DAYS.end() {
            return Err(Error::invalid(
                "min_destruction_window_days",
                format!(
                    "must be 0 to {}",
                    crate::lifecycle::DESTRUCTION_WAIT_DAYS.end()
                ),
            ));
        }
        if !(60..=30 * 24 * 3600).contains(&self.approval_ttl_secs) {
            return Err(Error::invalid(
                "approval_ttl_secs",
                "must be 60 s to 30 days",
            ));
        }
        Ok(())
    }

    /// The strictest rule that covers an action, if any.
    /// A rule covers an action when it names the action or the kind of state the action
    /// changes ([`approval_kind`]).
    pub fn rule_for(&self, action: Action) -> Option<&ApprovalRule> {
        let kind = action.approval_kind().map(Action::name);
        self.approval_rules
            .iter()
            .filter(|r| {
                r.actions
                    .iter()
                    .any(|a| a == action.name() || Some(a.as_str()) == kind)
            })
            .max_by_key(|r| r.approvals)
    }
}

/// Where an approval request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    Expired,
    Executed,
    Cancelled,
}

/// One approver's vote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Vote {
    pub principal_id: Uuid,
    pub principal: String,
    pub approve: bool,
    pub at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// A sensitive operation waiting for M-of-N approval. The operation is stored as it was
/// asked, and only its requester can execute it, once, after enough approvals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApprovalRequest {
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<Uuid>,
    /// The operation's parameters, as the service will replay them.
    #[schema(value_type = Object)]
    pub operation: serde_json::Value,
    pub requester_id: Uuid,
    pub requester: String,
    pub required: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub status: ApprovalStatus,
    pub votes: Vec<Vote>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub executed_at: Option<DateTime<Utc>>,
}

impl ApprovalRequest {
    /// The status as of `now` (a pending or approved request past its expiry is expired).
    pub fn status_at(&self, now: DateTime<Utc>) -> ApprovalStatus {
        match self.status {
            ApprovalStatus::Pending | ApprovalStatus::Approved if now >= self.expires_at => {
                ApprovalStatus::Expired
            }
            s => s,
        }
    }

    /// Records a vote. The requester never votes; nobody votes twice; one deny refuses
    /// the request; `required` approvals approve it.
    pub fn vote(&mut self, v: Vote, eligible: bool, now: DateTime<Utc>) -> Result<()> {
        match self.status_at(now) {
            ApprovalStatus::Pending => {}
            s => {
                return Err(Error::conflict(format!(
                    "approval request {} is {}; it takes no more votes",
                    self.id,
                    serde_json::to_value(s)
                        .ok()
                        .and_then(|v| v.as_str().map(String::from))
                        .unwrap_or_default()
                )))
            }
        }
        if v.principal_id == self.requester_id {
            return Err(Error::NotPermitted {
                message: "the requester of an approval request can never approve or deny it".into(),
            });
        }
        if !eligible {
            return Err(Error::NotPermitted {
                message: match &self.group {
                    Some(g) => format!("only approvers in group {g} vote on this request"),
                    None => "only principals with the approver role vote on this request".into(),
                },
            });
        }
        if self.votes.iter().any(|x| x.principal_id == v.principal_id) {
            return Err(Error::conflict(format!(
                "{} has already voted on this request",
                v.principal
            )));
        }
        let approve = v.approve;
        self.votes.push(v);
        if !approve {
            self.status = ApprovalStatus::Denied;
        } else if self.votes.iter().filter(|x| x.approve).count() as u32 >= self.required {
            self.status = ApprovalStatus::Approved;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(roles: &'a [Role], groups: &'a [String]) -> RequestFacts<'a> {
        RequestFacts {
            principal_id: Uuid::nil(),
            principal_name: "app",
            roles,
            groups,
            source: Some("10.1.2.3".parse().unwrap()),
            door: Door::Rest,
            cert: None,
            now: "2026-11-25T10:00:00Z".parse().unwrap(),
            encryption_context: None,
        }
    }

    fn stmt(effect: Effect, who: &str, actions: &[&str]) -> Statement {
        Statement {
            sid: None,
            effect,
            principals: vec![who.into()],
            actions: actions.iter().map(|s| s.to_string()).collect(),
            conditions: Conditions::default(),
            grant: None,
        }
    }

    fn policy(s: Vec<Statement>) -> KeyPolicy {
        KeyPolicy {
            version: 1,
            statements: s,
            ..Default::default()
        }
    }

    fn allowed(d: Decision) -> bool {
        matches!(d, Decision::Allow(_))
    }

    #[test]
    fn every_grantable_action_has_a_role_and_recorded_ones_none() {
        for a in Action::ALL {
            let some_role = Role::ALL.iter().any(|r| role_allows(&[*r], *a));
            assert_eq!(some_role, a.category() != Category::Recorded, "{a}");
        }
    }

    /// What whoami offers a user interface is exactly what `role_allows` lets through.
    #[test]
    fn actions_allowed_agrees_with_role_allows() {
        let sets: Vec<Vec<Role>> = Role::ALL
            .iter()
            .map(|r| vec![*r])
            .chain([
                vec![Role::TenantAdmin, Role::CryptoUser, Role::Auditor],
                vec![],
            ])
            .collect();
        for roles in sets {
            let listed: Vec<&str> = actions_allowed(&roles).collect();
            for a in Action::ALL {
                assert_eq!(
                    listed.contains(&a.name()),
                    role_allows(&roles, *a),
                    "{roles:?} {a}"
                );
            }
        }
    }

    #[test]
    fn separation_of_duties() {
        let p = policy(vec![stmt(Effect::Allow, "*", &["*"])]);
        // Even a policy granting everything to everyone cannot make these happen.
        for (role, action) in [
            (Role::SystemOperator, Action::Encrypt),
            (Role::SystemOperator, Action::DescribeKey),
            (Role::Auditor, Action::Encrypt),
            (Role::Auditor, Action::ScheduleKeyDestruction),
            (Role::Approver, Action::Decrypt),
            (Role::CryptoUser, Action::ScheduleKeyDestruction),
            (Role::CryptoUser, Action::PutKeyPolicy),
            (Role::TenantAdmin, Action::CreateTenant),
        ] {
            assert!(
                !allowed(decide(&facts(&[role], &[]), action, Some(&p))),
                "{role:?} {action}"
            );
        }
    }

    #[test]
    fn default_policy_lets_admins_manage_and_nobody_use() {
        let p = policy(vec![]);
        let admin = [Role::TenantAdmin];
        assert!(allowed(decide(
            &facts(&admin, &[]),
            Action::ScheduleKeyDestruction,
            Some(&p)
        )));
        assert!(allowed(decide(
            &facts(&admin, &[]),
            Action::DescribeKey,
            Some(&p)
        )));
        assert!(!allowed(decide(
            &facts(&admin, &[]),
            Action::Encrypt,
            Some(&p)
        )));
        assert!(!allowed(decide(
            &facts(&[Role::CryptoUser], &[]),
            Action::Encrypt,
            Some(&p)
        )));
        assert!(allowed(decide(
            &facts(&[Role::Auditor], &[]),
            Action::DescribeKey,
            Some(&p)
        )));
    }

    #[test]
    fn deny_beats_allow_and_subjects_match() {
        let groups = vec!["payments".to_string()];
        let f = facts(&[Role::CryptoUser], &groups);
        let p = policy(vec![
            stmt(Effect::Allow, "group:payments", &["Encrypt", "Decrypt"]),
            stmt(Effect::Deny, "principal:app", &["Decrypt"]),
        ]);
        assert!(allowed(decide(&f, Action::Encrypt, Some(&p))));
        assert!(!allowed(decide(&f, Action::Decrypt, Some(&p))));
        assert!(!allowed(decide(&f, Action::Sign, Some(&p))));
        let by_role = policy(vec![stmt(Effect::Allow, "role:crypto-user", &["Sign"])]);
        assert!(allowed(decide(&f, Action::Sign, Some(&by_role))));
        let other = policy(vec![stmt(
            Effect::Allow,
            "principal:someone-else",
            &["Sign"],
        )]);
        assert!(!allowed(decide(&f, Action::Sign, Some(&other))));
    }

    #[test]
    fn conditions() {
        let mut s = stmt(Effect::Allow, "*", &["Encrypt"]);
        s.conditions.source_cidrs = vec!["10.0.0.0/8".into()];
        s.conditions.doors = vec![Door::Rest, Door::Kmip];
        let p = policy(vec![s.clone()]);
        let roles = [Role::CryptoUser];
        let mut f = facts(&roles, &[]);
        assert!(allowed(decide(&f, Action::Encrypt, Some(&p))));
        f.source = Some("192.168.0.1".parse().unwrap());
        assert!(!allowed(decide(&f, Action::Encrypt, Some(&p))));
        f.source = Some("::ffff:10.9.9.9".parse().unwrap());
        assert!(allowed(decide(&f, Action::Encrypt, Some(&p))));
        f.door = Door::Aws;
        assert!(!allowed(decide(&f, Action::Encrypt, Some(&p))));
        f.door = Door::Kmip;

        let mut c = stmt(Effect::Allow, "*", &["Decrypt"]);
        c.conditions.certificate = BTreeMap::from([
            ("ou".to_string(), "zone-a".to_string()),
            ("san_dns".to_string(), "*.eu-west.example".to_string()),
        ]);
        let p = policy(vec![c]);
        assert!(
            !allowed(decide(&f, Action::Decrypt, Some(&p))),
            "no certificate"
        );
        let cert = CertInfo {
            ou: vec!["zone-a".into()],
            san_dns: vec!["i-123.eu-west.example".into()],
            ..Default::default()
        };
        f.cert = Some(&cert);
        assert!(allowed(decide(&f, Action::Decrypt, Some(&p))));
        let cert_b = CertInfo {
            ou: vec!["zone-b".into()],
            ..cert.clone()
        };
        f.cert = Some(&cert_b);
        assert!(!allowed(decide(&f, Action::Decrypt, Some(&p))));

        let mut t = stmt(Effect::Allow, "*", &["Sign"]);
        t.conditions.hours_utc = Some(HoursUtc {
            start_hour: 22,
            end_hour: 6,
        });
        let p = policy(vec![t]);
        assert!(
            !allowed(decide(&f, Action::Sign, Some(&p))),
            "10:00 is outside 22-06"
        );
        f.now = "2026-11-25T23:30:00Z".parse().unwrap();
        assert!(allowed(decide(&f, Action::Sign, Some(&p))));

        let mut e = stmt(Effect::Allow, "*", &["Encrypt"]);
        e.conditions.encryption_context =
            BTreeMap::from([("app".to_string(), "billing".to_string())]);
        let p = policy(vec![e]);
        assert!(!allowed(decide(&f, Action::Encrypt, Some(&p))));
        let ctx = BTreeMap::from([
            ("app".to_string(), "billing".to_string()),
            ("x".to_string(), "y".to_string()),
        ]);
        f.encryption_context = Some(&ctx);
        assert!(allowed(decide(&f, Action::Encrypt, Some(&p))));
    }

    #[test]
    fn cidr_parsing() {
        assert!(parse_cidr("f", "10.0.0.0/33").is_err());
        assert!(parse_cidr("f", "nonsense").is_err());
        assert_eq!(parse_cidr("f", "::1").unwrap().1, 128);
        assert!(in_cidr(
            "10.255.0.1".parse().unwrap(),
            parse_cidr("f", "10.0.0.0/8").unwrap()
        ));
        assert!(in_cidr(
            "1.2.3.4".parse().unwrap(),
            parse_cidr("f", "0.0.0.0/0").unwrap()
        ));
        assert!(!in_cidr(
            "11.0.0.1".parse().unwrap(),
            parse_cidr("f", "10.0.0.0/8").unwrap()
        ));
    }

    #[test]
    fn statement_validation_names_the_field() {
        let mut s = stmt(Effect::Allow, "role:wizard", &["Encrypt"]);
        let e = validate_statements("policy", std::slice::from_ref(&s)).unwrap_err();
        assert_eq!(e.field(), Some("policy[0].principals"));
        s.principals = vec!["*".into()];
        s.actions = vec!["CreateTenant".into()];
        let e = validate_statements("policy", &[s]).unwrap_err();
        assert_eq!(e.field(), Some("policy[0].actions"));
    }

    #[test]
    fn roles_on_the_wire() {
        for r in Role::ALL {
            let j = serde_json::to_string(&r).unwrap();
            assert_eq!(j, format!("\"{}\"", r.as_str()));
            assert_eq!(serde_json::from_str::<Role>(&j).unwrap(), r);
        }
        // Principals stored before roles existed.
        assert_eq!(
            serde_json::from_str::<Role>("\"admin\"").unwrap(),
            Role::TenantAdmin
        );
    }

    #[test]
    fn role_combinations() {
        let strict = TenantSettings::default();
        let relaxed = TenantSettings {
            allow_multiple_roles: true,
            ..Default::default()
        };
        assert!(check_roles("roles", &[Role::TenantAdmin], false, &strict).is_ok());
        assert!(check_roles(
            "roles",
            &[Role::TenantAdmin, Role::CryptoUser],
            false,
            &strict
        )
        .is_err());
        assert!(check_roles(
            "roles",
            &[Role::TenantAdmin, Role::CryptoUser],
            false,
            &relaxed
        )
        .is_ok());
        assert!(check_roles("roles", &[Role::SystemOperator], false, &relaxed).is_err());
        assert!(check_roles("roles", &[Role::CryptoUser], true, &relaxed).is_err());
        assert!(check_roles("roles", &[], false, &relaxed).is_err());
    }

    #[test]
    fn quorum_votes() {
        let now: DateTime<Utc> = "2026-11-25T10:00:00Z".parse().unwrap();
        let requester = Uuid::now_v7();
        let mut r = ApprovalRequest {
            id: Uuid::now_v7(),
            tenant_id: Uuid::nil(),
            action: "ScheduleKeyDestruction".into(),
            key_id: None,
            operation: serde_json::Value::Null,
            requester_id: requester,
            requester: "alice".into(),
            required: 2,
            group: None,
            status: ApprovalStatus::Pending,
            votes: vec![],
            created_at: now,
            expires_at: now + chrono::Duration::hours(24),
            executed_at: None,
        };
        let vote = |id: Uuid, approve: bool| Vote {
            principal_id: id,
            principal: id.to_string(),
            approve,
            at: now,
            comment: None,
        };
        assert!(matches!(
            r.vote(vote(requester, true), true, now),
            Err(Error::NotPermitted { .. })
        ));
        let bob = Uuid::now_v7();
        assert!(
            r.vote(vote(Uuid::now_v7(), true), false, now).is_err(),
            "not eligible"
        );
        r.vote(vote(bob, true), true, now).unwrap();
        assert_eq!(
            r.status,
            ApprovalStatus::Pending,
            "M-1 approvals are not enough"
        );
        assert!(r.vote(vote(bob, true), true, now).is_err(), "twice");
        r.vote(vote(Uuid::now_v7(), true), true, now).unwrap();
        assert_eq!(r.status, ApprovalStatus::Approved);
        assert!(
            r.vote(vote(Uuid::now_v7(), true), true, now).is_err(),
            "closed"
        );
        assert_eq!(
            r.status_at(now + chrono::Duration::hours(25)),
            ApprovalStatus::Expired
        );
    }
}
