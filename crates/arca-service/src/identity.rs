//! Tenants, principals, API tokens, credential bindings, tenant settings and key policies:
//! the administration of who may do what. Every operation here passes the same authorize
//! step as key operations, and the sensitive ones pass the quorum gate
//! ([`Service::gate`]).

use arca_core::Action;
use std::sync::Arc;

use arca_core::access::{self, KeyPolicy, Role, Statement, TenantSettings};
use arca_core::model::{Principal, Tenant};
use arca_core::names::validate_identity_name as validate_name;
use arca_core::{Error, Result};
use arca_store::Record;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::api::*;
use crate::approvals::Pending;
use crate::{Actor, Caller, Note, Service};
use arca_core::audit::AuditEvent;

/// The name of the built-in tenant that holds the system operators.
pub const SYSTEM_TENANT: &str = "system";

pub(crate) const BINDING: &str = "binding";
pub(crate) const POLICY: &str = "key-policy";

fn tenant_info(t: &Tenant) -> TenantInfo {
    TenantInfo {
        id: t.id,
        name: t.name.clone(),
        created_at: t.created_at,
        disabled: t.disabled,
        system: t.system,
        deleted: t.deleted,
        settings: t.settings.clone(),
    }
}

fn token_info(t: &arca_store::ApiToken) -> TokenInfo {
    TokenInfo {
        id: t.id.clone(),
        principal_id: t.principal_id,
        name: t.name.clone(),
        created_at: t.created_at,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
        last_used_at: t.last_used_at,
    }
}

fn validate_groups(groups: &[String]) -> Result<()> {
    if groups.len() > 32 {
        return Err(Error::invalid("groups", "at most 32 groups"));
    }
    for g in groups {
        validate_name("groups", g)?;
    }
    Ok(())
}

/// The record id of a policy version: sortable by version within its key.
pub(crate) fn policy_record_id(key: Uuid, version: u32) -> String {
    format!("{key}/{version:010}")
}

/// The record of a key policy version, written in the same transaction as the key.
pub(crate) fn policy_record(tenant: Uuid, key: Uuid, p: &KeyPolicy) -> Result<Record> {
    Ok(Record {
        kind: POLICY.into(),
        id: policy_record_id(key, p.version),
        tenant_id: Some(tenant),
        revision: 1,
        doc: serde_json::to_value(p).map_err(|e| Error::internal(e.to_string()))?,
        updated_at: p.updated_at.unwrap_or_default(),
    })
}

impl Service {
    /// A tenant through the cache.
    pub(crate) async fn tenant(&self, id: Uuid) -> Result<Arc<Tenant>> {
        if let Some(t) = self.cache.tenants.get(&id) {
            return Ok(t);
        }
        let (t, _) = self
            .store
            .get_tenant(id)
            .await?
            .ok_or_else(|| Error::not_found("tenant", id.to_string()))?;
        let t = Arc::new(t);
        self.cache.tenants.insert(id, t.clone());
        Ok(t)
    }

    async fn write_tenant(&self, t: &Tenant, audit: &[AuditEvent]) -> Result<()> {
        self.store.update_tenant(t, audit).await?;
        self.cache.tenants.remove(&t.id);
        // Principals of a disabled tenant must stop authenticating now, not after the TTL.
        self.cache.tokens.clear();
        self.cache.sessions.clear();
        Ok(())
    }

    /// A tenant by id or name, for the system operator.
    async fn tenant_by_ref(&self, reference: &str) -> Result<Tenant> {
        let t = match Uuid::parse_str(reference) {
            Ok(id) => self.store.get_tenant(id).await?.map(|(t, _)| t),
            Err(_) => self.store.find_tenant_by_name(reference).await?,
        };
        t.filter(|t| !t.deleted)
            .ok_or_else(|| Error::not_found("tenant", reference))
    }

    /// Creates a tenant and its first tenant-admin (system operators only).
    pub async fn create_tenant(
        &self,
        caller: &Caller,
        req: CreateTenantRequest,
    ) -> Result<TenantCreated> {
        self.audited(caller, Action::CreateTenant, async |note: &mut Note| {
            self.authorize(caller, Action::CreateTenant, None)?;
            validate_name("name", &req.name)?;
            let admin_name = req.admin_name.unwrap_or_else(|| "admin".into());
            validate_name("admin_name", &admin_name)?;
            let settings = req.settings.unwrap_or_default();
            settings.validate()?;
            if self.store.find_tenant_by_name(&req.name).await?.is_some() {
                return Err(Error::conflict(format!(
                    "a tenant named {:?} already exists",
                    req.name
                )));
            }
            if !req.trust.is_empty()
                && caller.approval.is_none()
                && self
                    .tenant(caller.tenant())
                    .await?
                    .settings
                    .rule_for(Action::AssignTrustAnchor)
                    .is_some()
            {
                // One gated write per kind of state: no way round the approval rule.
                return Err(Error::invalid(
                    "trust",
                    "AssignTrustAnchor needs approval here: create the tenant without trust, then assign its anchors (arca tenant trust add)",
                ));
            }
            let mut trust = vec![];
            for (i, a) in req.trust.iter().enumerate() {
                let (id, subject) = self.trust_anchor_id(a).map_err(|e| match e {
                    Error::InvalidInput { field, message } => {
                        Error::invalid(format!("trust[{i}].{field}"), message)
                    }
                    other => other,
                })?;
                if self.store.get_record(TRUST, &id).await?.is_some_and(|r| {
                    serde_json::from_value::<TrustAnchorInfo>(r.doc)
                        .map_or(true, |d| d.tenant_id.is_some())
                }) {
                    return Err(Error::conflict(format!(
                        "trust[{i}]: {id} is assigned to another tenant"
                    )));
                }
                trust.push((id, subject));
            }
            let planned: Vec<String> = trust.iter().map(|(id, _)| id.clone()).collect();
            let binding = match &req.admin_binding {
                Some(b) => {
                    // The new tenant has no id yet: its anchors are the planned ones.
                    let prepared = self
                        .prepare_binding(None, None, &planned, b)
                        .await
                        .map_err(|e| match e {
                            Error::InvalidInput { field, message } => {
                                Error::invalid(format!("admin_binding.{field}"), message)
                            }
                            other => other,
                        })?;
                    Some((b.kind, prepared))
                }
                None => None,
            };
            let by = Actor::Caller(caller);
            let tenant = self
                .create_tenant_record(&req.name, settings, false, &by)
                .await?;
            note.set("tenant_id", tenant.id.to_string());
            note.committed = true;
            for (id, subject) in trust {
                self.write_trust_anchor(&tenant, id, subject, &by).await?;
            }
            let admin = self
                .create_principal_record(tenant.id, &admin_name, vec![Role::TenantAdmin], &by)
                .await?;
            let (admin_token, admin_token_expires_at, admin_binding) = match binding {
                Some((kind, mut prepared)) => {
                    prepared.id =
                        binding_id(kind, tenant.id, prepared.issuer.as_deref(), &prepared.value);
                    (
                        None,
                        None,
                        Some(self.write_binding(&admin, kind, prepared, &by).await?),
                    )
                }
                None => {
                    // Short-lived: the operator hands it over; the tenant's admin replaces it.
                    let expires = self.now() + chrono::Duration::hours(24);
                    let token = self
                        .issue_token(&admin, "initial", Some(expires), &by)
                        .await?;
                    (Some(token.token.to_string()), Some(expires), None)
                }
            };
            Ok(TenantCreated {
                tenant: tenant_info(&tenant),
                admin,
                admin_token,
                admin_token_expires_at,
                admin_binding,
            })
        })
        .await
    }

    /// All tenants (system operators only).
    pub async fn list_tenants(&self, caller: &Caller) -> Result<TenantList> {
        self.audited(caller, Action::ListTenants, async |_: &mut Note| {
            self.authorize(caller, Action::ListTenants, None)?;
            let tenants = self.store.list_tenants().await?;
            Ok(TenantList {
                tenants: tenants
                    .iter()
                    .filter(|t| !t.deleted)
                    .map(tenant_info)
                    .collect(),
            })
        })
        .await
    }

    /// One tenant (system operators only).
    pub async fn describe_tenant(&self, caller: &Caller, reference: &str) -> Result<TenantInfo> {
        self.audited(caller, Action::DescribeTenant, async |_: &mut Note| {
            self.authorize(caller, Action::DescribeTenant, None)?;
            Ok(tenant_info(&self.tenant_by_ref(reference).await?))
        })
        .await
    }

    /// Disables or enables a tenant (system operators only): a disabled tenant's principals
    /// cannot authenticate; its keys are untouched.
    pub async fn set_tenant_disabled(
        &self,
        caller: &Caller,
        reference: &str,
        disabled: bool,
    ) -> Result<TenantInfo> {
        let action = if disabled {
            Action::DisableTenant
        } else {
            Action::EnableTenant
        };
        self.audited(caller, action, async |note: &mut Note| {
            self.authorize(caller, action, None)?;
            let mut t = self.tenant_by_ref(reference).await?;
            note.set("tenant_id", t.id.to_string());
            if t.system {
                return Err(Error::invalid(
                    "tenant",
                    "the system tenant cannot be disabled",
                ));
            }
            self.gate(caller, action, None, || Pending::SetTenantDisabled {
                tenant: t.id,
                disabled,
            })
            .await?;
            t.disabled = disabled;
            let audit = self.change_event(caller, action, note);
            self.write_tenant(&t, &audit).await?;
            Ok(tenant_info(&t))
        })
        .await
    }

    /// Deletes a tenant (system operators only, after approval where a rule asks for it).
    /// The tenant must be disabled and hold no key that is not destroyed; its record stays
    /// as a tombstone so that its name and id are never reused.
    pub async fn delete_tenant(&self, caller: &Caller, reference: &str) -> Result<TenantInfo> {
        self.audited(caller, Action::DeleteTenant, async |note: &mut Note| {
            self.authorize(caller, Action::DeleteTenant, None)?;
            let mut t = self.tenant_by_ref(reference).await?;
            note.set("tenant_id", t.id.to_string());
            if t.system {
                return Err(Error::invalid(
                    "tenant",
                    "the system tenant cannot be deleted",
                ));
            }
            if !t.disabled {
                return Err(Error::conflict("disable the tenant before deleting it"));
            }
            let live = self
                .store
                .list_keys(t.id, &Default::default(), None, 1000)
                .await?
                .into_iter()
                .filter(|k| !k.state.is_destroyed())
                .count();
            if live > 0 {
                return Err(Error::conflict(format!(
                    "the tenant still holds {live} key(s) that are not destroyed"
                )));
            }
            self.gate(caller, Action::DeleteTenant, None, || {
                Pending::DeleteTenant { tenant: t.id }
            })
            .await?;
            t.deleted = true;
            let audit = self.change_event(caller, Action::DeleteTenant, note);
            self.write_tenant(&t, &audit).await?;
            Ok(tenant_info(&t))
        })
        .await
    }

    /// The caller's tenant settings.
    pub async fn get_tenant_settings(&self, caller: &Caller) -> Result<TenantSettings> {
        self.audited(caller, Action::GetTenantSettings, async |_: &mut Note| {
            self.authorize(caller, Action::GetTenantSettings, None)?;
            Ok(self.tenant(caller.tenant()).await?.settings.clone())
        })
        .await
    }

    /// Replaces the caller's tenant settings (tenant-admins; approval where required).
    pub async fn update_tenant_settings(
        &self,
        caller: &Caller,
        settings: TenantSettings,
    ) -> Result<TenantSettings> {
        self.audited(
            caller,
            Action::UpdateTenantSettings,
            async |note: &mut Note| {
                self.authorize(caller, Action::UpdateTenantSettings, None)?;
                settings.validate()?;
                let (mut t, _) = self
                    .store
                    .get_tenant(caller.tenant())
                    .await?
                    .ok_or_else(|| Error::not_found("tenant", caller.tenant().to_string()))?;
                self.gate(caller, Action::UpdateTenantSettings, None, || {
                    Pending::UpdateTenantSettings {
                        settings: settings.clone(),
                    }
                })
                .await?;
                t.settings = settings;
                let audit = self.change_event(caller, Action::UpdateTenantSettings, note);
                self.write_tenant(&t, &audit).await?;
                Ok(t.settings)
            },
        )
        .await
    }

    /// A principal of the caller's tenant by id or name.
    pub(crate) async fn principal_by_ref(
        &self,
        caller: &Caller,
        reference: &str,
    ) -> Result<Principal> {
        let p = match Uuid::parse_str(reference) {
            Ok(id) => self.store.get_principal(id).await?,
            Err(_) => {
                self.store
                    .find_principal(caller.tenant(), reference)
                    .await?
            }
        };
        p.filter(|p| p.tenant_id == caller.tenant())
            .ok_or_else(|| Error::not_found("principal", reference))
    }

    /// Creates a principal in the caller's tenant.
    pub async fn create_principal(
        &self,
        caller: &Caller,
        req: CreatePrincipalRequest,
    ) -> Result<Principal> {
        self.audited(caller, Action::CreatePrincipal, async |note: &mut Note| {
            self.authorize(caller, Action::CreatePrincipal, None)?;
            validate_name("name", &req.name)?;
            validate_groups(&req.groups)?;
            let kind = req.kind.clone().unwrap_or_else(|| "user".into());
            if !matches!(kind.as_str(), "user" | "service") {
                return Err(Error::invalid("kind", "must be user or service"));
            }
            let t = self.tenant(caller.tenant()).await?;
            access::check_roles("roles", &req.roles, t.system, &t.settings)?;
            if self.store.find_principal(t.id, &req.name).await?.is_some() {
                return Err(Error::conflict(format!(
                    "a principal named {:?} already exists in this tenant",
                    req.name
                )));
            }
            self.gate(caller, Action::CreatePrincipal, None, || {
                Pending::CreatePrincipal {
                    req: CreatePrincipalRequest {
                        kind: Some(kind.clone()),
                        ..req.clone()
                    },
                }
            })
            .await?;
            let p = Principal {
                id: Uuid::now_v7(),
                tenant_id: t.id,
                name: req.name,
                roles: req.roles,
                groups: req.groups,
                kind,
                disabled: false,
                created_at: self.now(),
            };
            let mut n = Note::with("created_principal", format!("{}:{}", p.name, p.id));
            let audit = self.change_event(caller, Action::CreatePrincipal, &mut n);
            self.store.create_principal(&p, &audit).await?;
            note.committed = true;
            Ok(p)
        })
        .await
    }

    /// Principals of the caller's tenant.
    pub async fn list_principals(&self, caller: &Caller) -> Result<PrincipalList> {
        self.audited(caller, Action::ListPrincipals, async |_: &mut Note| {
            self.authorize(caller, Action::ListPrincipals, None)?;
            Ok(PrincipalList {
                principals: self.store.list_principals(caller.tenant()).await?,
            })
        })
        .await
    }

    /// One principal of the caller's tenant.
    pub async fn describe_principal(&self, caller: &Caller, reference: &str) -> Result<Principal> {
        self.audited(caller, Action::DescribePrincipal, async |_: &mut Note| {
            self.authorize(caller, Action::DescribePrincipal, None)?;
            self.principal_by_ref(caller, reference).await
        })
        .await
    }

    /// Changes a principal's roles, groups or disabled flag. Nobody changes its own roles
    /// or disables itself (no self-escalation, no lock-out by accident).
    pub async fn update_principal(
        &self,
        caller: &Caller,
        reference: &str,
        req: UpdatePrincipalRequest,
    ) -> Result<Principal> {
        self.audited(caller, Action::UpdatePrincipal, async |note: &mut Note| {
            self.authorize(caller, Action::UpdatePrincipal, None)?;
            let replay = UpdatePrincipalRequest {
                roles: req.roles.clone(),
                groups: req.groups.clone(),
                disabled: req.disabled,
            };
            let mut p = self.principal_by_ref(caller, reference).await?;
            if p.id == caller.principal.id && (req.roles.is_some() || req.disabled == Some(true)) {
                return Err(Error::NotPermitted {
                    message: "a principal cannot change its own roles or disable itself".into(),
                });
            }
            let t = self.tenant(caller.tenant()).await?;
            if let Some(roles) = req.roles {
                access::check_roles("roles", &roles, t.system, &t.settings)?;
                p.roles = roles;
            }
            if let Some(g) = req.groups {
                validate_groups(&g)?;
                p.groups = g;
            }
            if let Some(d) = req.disabled {
                p.disabled = d;
            }
            self.gate(caller, Action::UpdatePrincipal, None, || {
                Pending::UpdatePrincipal {
                    principal: p.id,
                    req: replay,
                }
            })
            .await?;
            let mut n = Note::with("updated_principal", format!("{}:{}", p.name, p.id));
            let audit = self.change_event(caller, Action::UpdatePrincipal, &mut n);
            self.store.update_principal(&p, &audit).await?;
            note.committed = true;
            let id = p.id;
            self.cache.tokens.remove_where(|_, c| c.principal.id == id);
            self.cache
                .sessions
                .remove_where(|_, c| c.principal.id == id);
            self.cache.bindings.clear();
            Ok(p)
        })
        .await
    }

    /// Issues an API token for a principal of the caller's tenant (shown once).
    pub async fn create_api_token(
        &self,
        caller: &Caller,
        principal: &str,
        req: CreateTokenRequest,
    ) -> Result<TokenCreated> {
        self.audited(caller, Action::CreateApiToken, async |note: &mut Note| {
            let (p, name, expires_at) = self
                .credential_for(caller, principal, &req, "api", |id, req| {
                    Pending::CreateApiToken { principal: id, req }
                })
                .await?;
            let t = self
                .issue_token(&p, &name, expires_at, &Actor::Caller(caller))
                .await?;
            note.committed = true;
            Ok(TokenCreated {
                id: t.id.clone(),
                principal_id: p.id,
                token: t.token.to_string(),
                expires_at,
            })
        })
        .await
    }

    /// The checks every new credential (API token, AWS access key pair) passes: a
    /// principal may always make one for itself; one for someone else is identity
    /// administration (`CreateApiToken`, which a quorum rule can gate: it lets its holder
    /// act as that principal). Returns the principal, the label and the expiry.
    pub(crate) async fn credential_for(
        &self,
        caller: &Caller,
        principal: &str,
        req: &CreateTokenRequest,
        default_name: &str,
        pending: impl FnOnce(Uuid, CreateTokenRequest) -> Pending,
    ) -> Result<(Principal, String, Option<DateTime<Utc>>)> {
        let p = self.principal_by_ref(caller, principal).await?;
        let own = p.id == caller.principal.id;
        self.authorize(
            caller,
            if own {
                Action::CreateOwnCredential
            } else {
                Action::CreateApiToken
            },
            None,
        )?;
        let name = req.name.clone().unwrap_or_else(|| default_name.into());
        if name.is_empty() || name.len() > 128 {
            return Err(Error::invalid("name", "1 to 128 bytes"));
        }
        let mut expires_at = self.token_expiry(req.expires_in_secs)?;
        // A credential one issues oneself lives no longer than the one in use: a session
        // (or a token from an identity provider) must not mint a credential that outlives
        // it, and the principal's IdP account with it. Longer needs a quorum's approval.
        let mut beyond = false;
        if own && caller.approval.is_none() {
            if let Some(limit) = self.credential_end(caller).await? {
                match expires_at {
                    None => expires_at = Some(limit),
                    Some(e) if e > limit => beyond = true,
                    Some(_) => {}
                }
            }
        }
        if beyond {
            let t = self.tenant(caller.tenant()).await?;
            if t.settings.rule_for(Action::CreateApiToken).is_none() {
                return Err(Error::invalid(
                    "expires_in_secs",
                    "a credential you issue yourself cannot outlive the credential you are using; ask for less, or have an administrator issue it (or set an approval rule on CreateApiToken)",
                ));
            }
        }
        if !own || beyond {
            self.gate(caller, Action::CreateApiToken, None, || {
                pending(p.id, req.clone())
            })
            .await?;
        }
        Ok((p, name, expires_at))
    }

    /// When the credential of this request stops working, where Arca knows it: a session's
    /// refresh expiry, an API token's or access key's expiry, a JWT's `exp`. `None` for a
    /// credential without an end (a client certificate is bounded by its CA, not here).
    pub(crate) async fn credential_end(&self, caller: &Caller) -> Result<Option<DateTime<Utc>>> {
        Ok(match &caller.credential {
            crate::Credential::Session(sid) => Some(self.session_end(*sid).await?),
            crate::Credential::ApiToken(id) => {
                self.store.get_token(id).await?.and_then(|t| t.expires_at)
            }
            crate::Credential::Jwt(_, exp) => *exp,
            crate::Credential::AwsAccessKey(id) => self.aws_credential_end(id).await?,
            crate::Credential::Certificate(_) => None,
        })
    }

    /// The name of the caller's own tenant (for doors that route by tenant, such as the
    /// XKS proxy API's path prefixes).
    pub async fn caller_tenant_name(&self, caller: &Caller) -> Result<String> {
        Ok(self.tenant(caller.tenant()).await?.name.clone())
    }

    /// When a credential issued now with this lifetime expires (1 s to 10 years; none
    /// without one).
    pub(crate) fn token_expiry(&self, secs: Option<u64>) -> Result<Option<DateTime<Utc>>> {
        match secs {
            None => Ok(None),
            Some(s) if (1..=10 * 365 * 86400).contains(&s) => {
                Ok(Some(self.now() + chrono::Duration::seconds(s as i64)))
            }
            Some(_) => Err(Error::invalid("expires_in_secs", "must be 1 s to 10 years")),
        }
    }

    /// Tokens of the caller's tenant (of one principal if given). Never their secrets.
    pub async fn list_api_tokens(
        &self,
        caller: &Caller,
        principal: Option<&str>,
    ) -> Result<TokenList> {
        self.audited(caller, Action::ListApiTokens, async |_: &mut Note| {
            let pid = match principal {
                Some(p) => Some(self.principal_by_ref(caller, p).await?.id),
                None => None,
            };
            // Everyone may list its own tokens (to find one to revoke); others' tokens are
            // identity administration.
            if pid != Some(caller.principal.id) {
                self.authorize(caller, Action::ListApiTokens, None)?;
            }
            let tokens = self.store.list_tokens(caller.tenant(), pid).await?;
            Ok(TokenList {
                tokens: tokens.iter().map(token_info).collect(),
            })
        })
        .await
    }

    /// Revokes a token: tenant-admins any of their tenant, every principal its own.
    pub async fn revoke_api_token(&self, caller: &Caller, id: &str) -> Result<TokenInfo> {
        self.audited(caller, Action::RevokeApiToken, async |note: &mut Note| {
            note.set("token_id", id);
            let t = self
                .store
                .get_token(id)
                .await?
                .filter(|t| t.tenant_id == caller.tenant())
                .ok_or_else(|| Error::not_found("token", id))?;
            if t.principal_id != caller.principal.id {
                self.authorize(caller, Action::RevokeApiToken, None)?;
            }
            let audit = self.change_event(caller, Action::RevokeApiToken, note);
            self.store
                .revoke_token(caller.tenant(), id, self.now(), &audit)
                .await?;
            self.cache.tokens.remove(&id.to_string());
            let t = self
                .store
                .get_token(id)
                .await?
                .ok_or_else(|| Error::not_found("token", id))?;
            Ok(token_info(&t))
        })
        .await
    }

    /// Maps a certificate or JWT identity to a principal of the caller's tenant. The
    /// mapping is unique server-wide: one certificate never means two principals.
    pub async fn create_binding(
        &self,
        caller: &Caller,
        principal: &str,
        req: CreateBindingRequest,
    ) -> Result<BindingInfo> {
        self.audited(caller, Action::CreateBinding, async |note: &mut Note| {
            self.authorize(caller, Action::CreateBinding, None)?;
            let p = self.principal_by_ref(caller, principal).await?;
            let prepared = self
                .prepare_binding(Some(p.tenant_id), Some(p.id), &[], &req)
                .await?;
            self.gate(caller, Action::CreateBinding, None, || {
                Pending::CreateBinding {
                    principal: p.id,
                    req: CreateBindingRequest {
                        kind: req.kind,
                        value: prepared.value.clone(),
                        issuer: prepared.issuer.clone(),
                        certificate: req.certificate.clone(),
                    },
                }
            })
            .await?;
            note.committed = true;
            self.write_binding(&p, req.kind, prepared, &Actor::Caller(caller))
                .await
        })
        .await
    }

    /// Checks a binding request: its value's shape, its issuer, and that the identity can
    /// only come from a trust anchor of the tenant (`tenant`; `None` for a tenant being
    /// created, whose anchors are `planned`): a tenant never binds an identity issued under
    /// another tenant's CA or JWT issuer. Returns the normalized value, the issuer and the
    /// record id, which is unique per tenant, so no tenant can squat another's values.
    async fn prepare_binding(
        &self,
        tenant: Option<Uuid>,
        principal: Option<Uuid>,
        planned: &[String],
        req: &CreateBindingRequest,
    ) -> Result<Prepared> {
        let value = normalize_binding(req.kind, &req.value)?;
        let cert = match &req.certificate {
            None => None,
            Some(_) if req.kind == BindingKind::Jwt => {
                return Err(Error::invalid(
                    "certificate",
                    "only certificate bindings take a certificate",
                ))
            }
            Some(pem) => Some(certificate_names(pem)?),
        };
        if let Some(c) = &cert {
            let named = match req.kind {
                BindingKind::CertificateFingerprint => c.fingerprint == value,
                BindingKind::CertificateSubject => c.subject == value,
                _ => c.sans.contains(&value),
            };
            if !named {
                return Err(Error::invalid(
                    "value",
                    format!("not the {} of the given certificate", req.kind.as_str()),
                ));
            }
        }
        let issuer = match (req.kind, req.issuer.clone()) {
            (BindingKind::Jwt, Some(i)) => {
                if !self.config.jwt_issuers.iter().any(|x| x.issuer == i) {
                    return Err(Error::invalid(
                        "issuer",
                        format!("{i:?} is not a configured JWT issuer"),
                    ));
                }
                Some(i)
            }
            (BindingKind::Jwt, None) => {
                return Err(Error::invalid("issuer", "a jwt binding names its issuer"))
            }
            (_, Some(_)) => {
                return Err(Error::invalid("issuer", "only jwt bindings have an issuer"))
            }
            (_, None) => None,
        };
        match &issuer {
            Some(i) => {
                let anchor = format!("jwt:{i}");
                let own = match tenant {
                    Some(t) => self.anchor_owner(&anchor).await? == Some(t),
                    None => false,
                };
                if !own && !planned.contains(&anchor) {
                    return Err(Error::NotPermitted {
                        message: format!(
                            "issuer: the JWT issuer {i:?} is not assigned to this tenant, so its tokens cannot authenticate here (the system operator assigns issuers: arca tenant trust add)"
                        ),
                    });
                }
            }
            None => {
                let own = match tenant {
                    Some(t) => self.owns_a_ca(t).await?,
                    None => false,
                };
                if !own && !planned.iter().any(|a| a.starts_with("ca:")) {
                    return Err(Error::NotPermitted {
                        message: "kind: no client CA is assigned to this tenant, so no certificate can authenticate here (the system operator assigns the CA that issues your certificates: arca tenant trust add)".into(),
                    });
                }
            }
        }
        let id = match tenant {
            Some(t) => {
                let id = binding_id(req.kind, t, issuer.as_deref(), &value);
                if self.store.get_record(BINDING, &id).await?.is_some() {
                    return Err(Error::conflict(
                        "this identity is already bound to a principal of this tenant",
                    ));
                }
                self.refuse_ambiguity(t, principal, req.kind, &value, cert.as_ref())
                    .await?;
                id
            }
            None => String::new(),
        };
        Ok(Prepared {
            value,
            issuer,
            id,
            cert,
        })
    }

    /// Refuses a certificate binding that would make a certificate known to this tenant
    /// (given now, or with an earlier fingerprint binding) match a second principal.
    /// Certificates never shown are checked when they are presented: a certificate that
    /// matches two principals authenticates no one.
    async fn refuse_ambiguity(
        &self,
        tenant: Uuid,
        principal: Option<Uuid>,
        kind: BindingKind,
        value: &str,
        cert: Option<&CertificateNames>,
    ) -> Result<()> {
        if kind == BindingKind::Jwt {
            return Ok(());
        }
        let other = |b: &BindingInfo| Some(b.principal_id) != principal;
        if let Some(c) = cert {
            let mut ids = vec![
                binding_id(
                    BindingKind::CertificateFingerprint,
                    tenant,
                    None,
                    &c.fingerprint,
                ),
                binding_id(BindingKind::CertificateSubject, tenant, None, &c.subject),
            ];
            for s in &c.sans {
                ids.push(binding_id(BindingKind::CertificateSan, tenant, None, s));
            }
            for id in ids {
                if let Some(rec) = self.store.get_record(BINDING, &id).await? {
                    let b: BindingInfo = serde_json::from_value(rec.doc)
                        .map_err(|e| Error::internal(e.to_string()))?;
                    if other(&b) {
                        return Err(Error::conflict(format!(
                            "certificate: its {} {:?} is bound to another principal ({}); a certificate maps to one principal",
                            b.kind.as_str(),
                            b.value,
                            b.principal_id
                        )));
                    }
                }
            }
        }
        if kind != BindingKind::CertificateFingerprint {
            let prefix = format!("{}:{tenant}|", BindingKind::CertificateFingerprint.as_str());
            for rec in self
                .store
                .list_records(BINDING, Some(tenant), &prefix, None, 100_000)
                .await?
            {
                let b: BindingInfo =
                    serde_json::from_value(rec.doc).map_err(|e| Error::internal(e.to_string()))?;
                let Some(c) = &b.certificate else { continue };
                let named = match kind {
                    BindingKind::CertificateSubject => c.subject == value,
                    _ => c.sans.iter().any(|s| s == value),
                };
                if named && other(&b) {
                    return Err(Error::conflict(format!(
                        "value: the certificate {} has this {} and is bound to another principal ({}); a certificate maps to one principal",
                        c.fingerprint,
                        kind.as_str(),
                        b.principal_id
                    )));
                }
            }
        }
        Ok(())
    }

    /// Stores a binding (already validated and, where needed, approved).
    async fn write_binding(
        &self,
        p: &Principal,
        kind: BindingKind,
        prepared: Prepared,
        by: &Actor<'_>,
    ) -> Result<BindingInfo> {
        let Prepared {
            value,
            issuer,
            id,
            cert,
        } = prepared;
        {
            let n = Note::with("binding_id", id.clone()).and("principal", p.name.clone());
            let audit = self.event_by(by, Action::CreateBinding, &n);
            let b = BindingInfo {
                id: id.clone(),
                tenant_id: p.tenant_id,
                principal_id: p.id,
                kind,
                value,
                issuer,
                certificate: cert,
                created_at: self.now(),
            };
            self.store
                .put_record(
                    &Record {
                        kind: BINDING.into(),
                        id,
                        tenant_id: Some(p.tenant_id),
                        revision: 1,
                        doc: serde_json::to_value(&b)
                            .map_err(|e| Error::internal(e.to_string()))?,
                        updated_at: b.created_at,
                    },
                    None,
                    &audit,
                )
                .await
                .map_err(|e| match e {
                    Error::Conflict { .. } => Error::conflict(
                        "this identity is already bound to a principal of this tenant",
                    ),
                    other => other,
                })?;
            // A certificate resolved before may now match this binding first.
            self.cache.bindings.clear();
            Ok(b)
        }
    }

    /// The tenant a trust anchor (`ca:…` or `jwt:…`) authenticates into: the tenant it is
    /// assigned to; none once withdrawn; the `default` tenant if it was never assigned (so
    /// a single-tenant or development server needs no assignment). Cached.
    pub(crate) async fn anchor_owner(&self, anchor: &str) -> Result<Option<Uuid>> {
        let key = anchor.to_string();
        if let Some(t) = self.cache.anchors.get(&key) {
            return Ok(t);
        }
        let owner = match self.store.get_record(TRUST, anchor).await? {
            Some(rec) => {
                serde_json::from_value::<TrustAnchorInfo>(rec.doc)
                    .map_err(|e| Error::internal(e.to_string()))?
                    .tenant_id
            }
            None => self
                .store
                .find_tenant_by_name(crate::bootstrap::DEFAULT_TENANT)
                .await?
                .filter(|t| !t.deleted)
                .map(|t| t.id),
        };
        self.cache.anchors.insert(key, owner);
        Ok(owner)
    }

    /// Whether some client CA can authenticate into `tenant`: one is assigned to it, or it
    /// is the `default` tenant (which owns the CAs never assigned).
    async fn owns_a_ca(&self, tenant: Uuid) -> Result<bool> {
        if self.tenant(tenant).await?.name == crate::bootstrap::DEFAULT_TENANT {
            return Ok(true);
        }
        Ok(!self.tenant_anchors(tenant, "ca:").await?.is_empty())
    }

    async fn tenant_anchors(&self, tenant: Uuid, prefix: &str) -> Result<Vec<TrustAnchorInfo>> {
        Ok(self
            .store
            .list_records(TRUST, Some(tenant), prefix, None, 10_000)
            .await?
            .into_iter()
            .filter_map(|r| serde_json::from_value::<TrustAnchorInfo>(r.doc).ok())
            .filter(|a| a.tenant_id == Some(tenant))
            .collect())
    }

    /// The anchor id of a request (and, for a CA, its subject): `ca:<SPKI SHA-256>` of a
    /// CA certificate, or `jwt:<issuer>` of a configured issuer.
    fn trust_anchor_id(&self, req: &TrustAnchorRequest) -> Result<(String, Option<String>)> {
        match (&req.ca_pem, &req.jwt_issuer) {
            (Some(pem), None) => {
                let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
                    .map_err(|_| Error::invalid("ca_pem", "not a PEM certificate"))?;
                let cert = pem.parse_x509().map_err(|_| {
                    Error::invalid("ca_pem", "the PEM block is not an X.509 certificate")
                })?;
                if !cert.is_ca() {
                    return Err(Error::invalid(
                        "ca_pem",
                        "not a CA certificate (basic constraints do not say CA)",
                    ));
                }
                Ok((
                    format!("ca:{}", crate::certs::spki_anchor(&cert)),
                    Some(crate::certs::canonical_name(cert.subject())),
                ))
            }
            (None, Some(i)) => {
                if !self.config.jwt_issuers.iter().any(|x| &x.issuer == i) {
                    return Err(Error::invalid(
                        "jwt_issuer",
                        format!("{i:?} is not a configured JWT issuer"),
                    ));
                }
                Ok((format!("jwt:{i}"), None))
            }
            _ => Err(Error::invalid(
                "ca_pem",
                "give exactly one of ca_pem and jwt_issuer",
            )),
        }
    }

    /// Records that an anchor belongs to a tenant (the one write of an assignment).
    async fn write_trust_anchor(
        &self,
        t: &Tenant,
        id: String,
        ca_subject: Option<String>,
        by: &Actor<'_>,
    ) -> Result<TrustAnchorInfo> {
        let existing = self.store.get_record(TRUST, &id).await?;
        if let Some(rec) = &existing {
            let doc: TrustAnchorInfo = serde_json::from_value(rec.doc.clone())
                .map_err(|e| Error::internal(e.to_string()))?;
            match doc.tenant_id {
                Some(o) if o == t.id => {
                    return Err(Error::conflict(format!("{id} is already assigned to this tenant")))
                }
                // A deleted tenant's anchors are free again (its record stays as a tombstone).
                Some(o) if !self.tenant(o).await.map(|t| t.deleted).unwrap_or(true) => {
                    return Err(Error::conflict(format!(
                        "{id} is assigned to another tenant: an anchor belongs to one tenant at most (withdraw it there first)"
                    )))
                }
                _ => {}
            }
        }
        let info = TrustAnchorInfo {
            id: id.clone(),
            tenant_id: Some(t.id),
            ca_subject,
            assigned_at: self.now(),
        };
        let mut n = Note {
            tenant_id: Some(t.id),
            ..Default::default()
        };
        n.set("trust_anchor", id.clone());
        n.set("tenant", t.name.clone());
        let audit = self.event_by(by, Action::AssignTrustAnchor, &n);
        self.store
            .put_record(
                &Record {
                    kind: TRUST.into(),
                    id,
                    tenant_id: Some(t.id),
                    revision: existing.as_ref().map_or(1, |r| r.revision + 1),
                    doc: serde_json::to_value(&info).map_err(|e| Error::internal(e.to_string()))?,
                    updated_at: info.assigned_at,
                },
                existing.map(|r| r.revision),
                &audit,
            )
            .await?;
        self.cache.anchors.clear();
        self.cache.bindings.clear();
        Ok(info)
    }

    /// Assigns a client CA or a JWT issuer to a tenant (system operators): from then on the
    /// certificates that CA signs, or the tokens of that issuer, authenticate into that
    /// tenant only, and only that tenant can bind identities issued under it.
    pub async fn assign_trust_anchor(
        &self,
        caller: &Caller,
        reference: &str,
        req: TrustAnchorRequest,
    ) -> Result<TrustAnchorInfo> {
        self.audited(
            caller,
            Action::AssignTrustAnchor,
            async |note: &mut Note| {
                self.authorize(caller, Action::AssignTrustAnchor, None)?;
                let t = self.tenant_by_ref(reference).await?;
                note.set("tenant_id", t.id.to_string());
                // The system tenant may hold anchors too: its approvers can sign in with an
                // IdP's JWT or a certificate.
                let (id, subject) = self.trust_anchor_id(&req)?;
                note.set("trust_anchor", id.clone());
                self.gate(caller, Action::AssignTrustAnchor, None, || {
                    Pending::AssignTrustAnchor {
                        tenant: t.id,
                        req: req.clone(),
                    }
                })
                .await?;
                self.write_trust_anchor(&t, id, subject, &Actor::Caller(caller))
                    .await
            },
        )
        .await
    }

    /// The trust anchors of a tenant (system operators).
    pub async fn list_trust_anchors(
        &self,
        caller: &Caller,
        reference: &str,
    ) -> Result<TrustAnchorList> {
        self.audited(caller, Action::ListTrustAnchors, async |_: &mut Note| {
            self.authorize(caller, Action::ListTrustAnchors, None)?;
            let t = self.tenant_by_ref(reference).await?;
            Ok(TrustAnchorList {
                anchors: self.tenant_anchors(t.id, "").await?,
                owns_unassigned: t.name == crate::bootstrap::DEFAULT_TENANT,
            })
        })
        .await
    }

    /// Withdraws an anchor from a tenant (system operators). It then authenticates no one
    /// (it does not fall back to the `default` tenant) until it is assigned again; the
    /// tenant's bindings stay and match again if it is.
    pub async fn withdraw_trust_anchor(
        &self,
        caller: &Caller,
        reference: &str,
        id: &str,
    ) -> Result<TrustAnchorInfo> {
        self.audited(
            caller,
            Action::WithdrawTrustAnchor,
            async |note: &mut Note| {
                note.set("trust_anchor", id);
                self.authorize(caller, Action::WithdrawTrustAnchor, None)?;
                let t = self.tenant_by_ref(reference).await?;
                note.set("tenant_id", t.id.to_string());
                let rec = self
                    .store
                    .get_record(TRUST, id)
                    .await?
                    .ok_or_else(|| Error::not_found("trust anchor", id))?;
                let mut doc: TrustAnchorInfo =
                    serde_json::from_value(rec.doc).map_err(|e| Error::internal(e.to_string()))?;
                if doc.tenant_id != Some(t.id) {
                    return Err(Error::not_found("trust anchor", id));
                }
                self.gate(caller, Action::WithdrawTrustAnchor, None, || {
                    Pending::WithdrawTrustAnchor {
                        tenant: t.id,
                        anchor: id.to_string(),
                    }
                })
                .await?;
                doc.tenant_id = None;
                doc.assigned_at = self.now();
                let audit = self.change_event(caller, Action::WithdrawTrustAnchor, note);
                self.store
                    .put_record(
                        &Record {
                            kind: TRUST.into(),
                            id: id.to_string(),
                            tenant_id: None,
                            revision: rec.revision + 1,
                            doc: serde_json::to_value(&doc)
                                .map_err(|e| Error::internal(e.to_string()))?,
                            updated_at: doc.assigned_at,
                        },
                        Some(rec.revision),
                        &audit,
                    )
                    .await?;
                self.cache.anchors.clear();
                self.cache.bindings.clear();
                Ok(doc)
            },
        )
        .await
    }

    /// Upgrade: bindings written before they were scoped by tenant get their tenant-scoped
    /// id, and subjects their canonical RFC 4514 form (the old display string listed the
    /// RDNs in DER order, unescaped: it is read as such, so a subject whose value held a
    /// `,` now means the multi-RDN name, the one that could be written). A binding whose
    /// subject does not parse, or whose new id is taken, is left as it was: it matches
    /// nothing, and is logged. Runs at every start; does nothing once done.
    pub(crate) async fn migrate_bindings(&self) -> Result<()> {
        let recs = self
            .store
            .list_records(BINDING, None, "", None, 100_000)
            .await?;
        let meta = crate::bootstrap::first_start_meta();
        for rec in recs {
            let Some(tenant) = rec.tenant_id else {
                continue;
            };
            let Ok(mut b) = serde_json::from_value::<BindingInfo>(rec.doc.clone()) else {
                continue;
            };
            if rec
                .id
                .starts_with(&format!("{}:{tenant}|", b.kind.as_str()))
            {
                continue;
            }
            if b.kind == BindingKind::CertificateSubject {
                match arca_core::dn::Dn::parse(&b.value) {
                    Ok(dn) => b.value = arca_core::dn::Dn::from_der_order(dn.0).canonical(),
                    Err(e) => {
                        tracing::warn!(binding = %rec.id, error = %e, "an old subject binding does not parse; recreate it");
                        continue;
                    }
                }
            }
            let id = binding_id(b.kind, tenant, b.issuer.as_deref(), &b.value);
            if let Some(new) = self.store.get_record(BINDING, &id).await? {
                let same = serde_json::from_value::<BindingInfo>(new.doc)
                    .is_ok_and(|n| n.principal_id == b.principal_id);
                if same {
                    // Moved already (a start that stopped half-way, or another node).
                    let _ = self.store.delete_record(BINDING, &rec.id, &[]).await;
                } else {
                    tracing::warn!(binding = %rec.id, "an old binding's new id is taken; it matches nothing");
                }
                continue;
            }
            let old = rec.id.clone();
            b.id = id.clone();
            let mut n = Note {
                tenant_id: Some(tenant),
                ..Default::default()
            };
            n.set("binding_id", id.clone());
            n.set("migrated_from", old.clone());
            let audit = self.event_by(&Actor::Server(&meta), Action::MigrateBinding, &n);
            let r = self
                .store
                .put_record(
                    &Record {
                        kind: BINDING.into(),
                        id,
                        tenant_id: Some(tenant),
                        revision: 1,
                        doc: serde_json::to_value(&b)
                            .map_err(|e| Error::internal(e.to_string()))?,
                        updated_at: b.created_at,
                    },
                    None,
                    &audit,
                )
                .await;
            match r {
                Ok(()) => {}
                // Another node of the cluster moved it at the same time.
                Err(Error::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.store.delete_record(BINDING, &old, &[]).await {
                tracing::warn!(binding = %old, error = %e, "could not remove an old binding after moving it");
            }
        }
        self.cache.bindings.clear();
        Ok(())
    }

    /// Bindings of the caller's tenant.
    pub async fn list_bindings(&self, caller: &Caller) -> Result<BindingList> {
        self.audited(caller, Action::ListBindings, async |_: &mut Note| {
            self.authorize(caller, Action::ListBindings, None)?;
            let recs = self
                .store
                .list_records(BINDING, Some(caller.tenant()), "", None, 10_000)
                .await?;
            let bindings = recs
                .into_iter()
                .map(|r| serde_json::from_value(r.doc).map_err(|e| Error::internal(e.to_string())))
                .collect::<Result<Vec<BindingInfo>>>()?;
            Ok(BindingList { bindings })
        })
        .await
    }

    /// Removes a binding of the caller's tenant.
    pub async fn delete_binding(&self, caller: &Caller, id: &str) -> Result<()> {
        self.audited(caller, Action::DeleteBinding, async |note: &mut Note| {
            self.authorize(caller, Action::DeleteBinding, None)?;
            let rec = self
                .store
                .get_record(BINDING, id)
                .await?
                .filter(|r| r.tenant_id == Some(caller.tenant()))
                .ok_or_else(|| Error::not_found("binding", id))?;
            let audit = self.change_event(caller, Action::DeleteBinding, note);
            self.store.delete_record(BINDING, &rec.id, &audit).await?;
            self.cache.bindings.clear();
            Ok(())
        })
        .await
    }

    /// The principal a binding id maps to (through the cache), if any, and if enabled.
    pub(crate) async fn bound_principal(&self, id: &str) -> Result<Option<Arc<Principal>>> {
        if let Some(p) = self.cache.bindings.get(&id.to_string()) {
            return Ok(Some(p));
        }
        let Some(rec) = self.store.get_record(BINDING, id).await? else {
            return Ok(None);
        };
        let b: BindingInfo =
            serde_json::from_value(rec.doc).map_err(|e| Error::internal(e.to_string()))?;
        let Some(p) = self.store.get_principal(b.principal_id).await? else {
            return Ok(None);
        };
        let p = Arc::new(p);
        self.cache.bindings.insert(id.to_string(), p.clone());
        Ok(Some(p))
    }

    /// The policy of a key.
    pub async fn get_key_policy(&self, caller: &Caller, reference: &str) -> Result<KeyPolicy> {
        self.audited(caller, Action::GetKeyPolicy, async |note: &mut Note| {
            let e = self.resolve(caller.tenant(), "key", reference).await?;
            note.key(e.key.id);
            self.authorize(caller, Action::GetKeyPolicy, Some(&e.key))?;
            Ok(e.key.policy.clone())
        })
        .await
    }

    /// Every version of a key's policy, newest first.
    pub async fn list_key_policy_versions(
        &self,
        caller: &Caller,
        reference: &str,
    ) -> Result<PolicyVersions> {
        self.audited(
            caller,
            Action::ListKeyPolicyVersions,
            async |note: &mut Note| {
                let e = self.resolve(caller.tenant(), "key", reference).await?;
                note.key(e.key.id);
                self.authorize(caller, Action::ListKeyPolicyVersions, Some(&e.key))?;
                let mut versions = self
                    .store
                    .list_records(
                        POLICY,
                        Some(caller.tenant()),
                        &format!("{}/", e.key.id),
                        None,
                        10_000,
                    )
                    .await?
                    .into_iter()
                    .map(|r| {
                        serde_json::from_value(r.doc).map_err(|e| Error::internal(e.to_string()))
                    })
                    .collect::<Result<Vec<KeyPolicy>>>()?;
                versions.reverse();
                Ok(PolicyVersions { versions })
            },
        )
        .await
    }

    /// Replaces a key's policy with new statements, as a new version.
    pub async fn put_key_policy(
        &self,
        caller: &Caller,
        reference: &str,
        statements: Vec<Statement>,
        expected_version: Option<u32>,
    ) -> Result<KeyPolicy> {
        self.audited(caller, Action::PutKeyPolicy, async |note: &mut Note| {
            self.put_key_policy_inner(caller, reference, statements, None, expected_version, note)
                .await
        })
        .await
    }

    /// Makes an earlier version's statements current again, as a new version.
    pub async fn rollback_key_policy(
        &self,
        caller: &Caller,
        reference: &str,
        version: u32,
    ) -> Result<KeyPolicy> {
        self.audited(caller, Action::PutKeyPolicy, async |note: &mut Note| {
            note.set("rollback_to", version);
            let e = self.resolve(caller.tenant(), "key", reference).await?;
            note.key(e.key.id);
            self.authorize(caller, Action::PutKeyPolicy, Some(&e.key))?;
            let rec = self
                .store
                .get_record(POLICY, &policy_record_id(e.key.id, version))
                .await?
                .ok_or_else(|| Error::not_found("policy version", version.to_string()))?;
            let old: KeyPolicy =
                serde_json::from_value(rec.doc).map_err(|e| Error::internal(e.to_string()))?;
            self.put_key_policy_inner(caller, reference, old.statements, Some(version), None, note)
                .await
        })
        .await
    }

    async fn put_key_policy_inner(
        &self,
        caller: &Caller,
        reference: &str,
        statements: Vec<Statement>,
        rollback_to: Option<u32>,
        expected_version: Option<u32>,
        note: &mut Note,
    ) -> Result<KeyPolicy> {
        access::validate_statements("statements", &statements)?;
        let (key, versions) = self.fresh(caller, reference).await?;
        note.key(key.id);
        self.authorize(caller, Action::PutKeyPolicy, Some(&key))?;
        if let Some(v) = expected_version {
            if v != key.policy.version {
                return Err(Error::conflict(format!(
                    "the policy of key {} is at version {}, not {v}; read it again and retry",
                    key.id, key.policy.version
                )));
            }
        }
        let now = self.now();
        let candidate = KeyPolicy {
            version: key.policy.version + 1,
            statements,
            updated_by: Some(caller.actor()),
            updated_at: Some(now),
        };
        // Lock-out check (as AWS's): the new policy must still let its author manage it.
        let mut probe = key.clone();
        probe.policy = candidate.clone();
        if let Err(Error::NotPermitted { .. }) =
            self.authorize(caller, Action::PutKeyPolicy, Some(&probe))
        {
            return Err(Error::invalid(
                "statements",
                "this policy would deny you PutKeyPolicy on the key: nobody could change it back",
            ));
        }
        let pending = Pending::PutKeyPolicy {
            key: key.id,
            statements: candidate.statements.clone(),
        };
        let reason = match rollback_to {
            Some(v) => format!("policy version {} (rollback to {v})", candidate.version),
            None => format!("policy version {}", candidate.version),
        };
        self.commit_policy(
            caller,
            key,
            &versions,
            candidate,
            Action::PutKeyPolicy,
            reason,
            note,
            || pending,
        )
        .await
    }

    /// The one write of a key's policy, whatever reaches it (PutKeyPolicy, a rollback,
    /// CreateGrant, RetireGrant, RevokeGrant, on any door): the approval gate for `action`
    /// (a rule on PutKeyPolicy covers every one of them), then the new version with its
    /// history event and audit record, in one transaction. The policy's own checks are the
    /// caller's; `pending` is what an approval would replay.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn commit_policy(
        &self,
        caller: &Caller,
        mut key: arca_core::model::Key,
        versions: &[arca_core::model::KeyVersion],
        candidate: KeyPolicy,
        action: Action,
        reason: String,
        note: &mut Note,
        pending: impl FnOnce() -> Pending,
    ) -> Result<KeyPolicy> {
        self.gate(caller, action, Some(&key), pending).await?;
        note.set("policy_version", candidate.version);
        key.policy = candidate.clone();
        let ev = crate::keys::event(
            &key,
            None,
            self.now(),
            &caller.actor(),
            "policy",
            None,
            None,
            Some(reason),
        );
        let rec = policy_record(key.tenant_id, key.id, &candidate)?;
        let rev = key.revision;
        let audit = self.change_event(caller, action, note);
        self.commit_with(key, Some(rev), versions, vec![], vec![ev], vec![rec], audit)
            .await?;
        Ok(candidate)
    }

    /// The initial policy of a new key: the creator's statements or the tenant default.
    pub(crate) async fn initial_policy(
        &self,
        caller: &Caller,
        statements: Option<Vec<Statement>>,
    ) -> Result<KeyPolicy> {
        let statements = match statements {
            Some(s) => {
                access::validate_statements("policy", &s)?;
                s
            }
            None => self
                .tenant(caller.tenant())
                .await?
                .settings
                .default_key_policy
                .clone(),
        };
        Ok(KeyPolicy {
            version: 1,
            statements,
            updated_by: Some(caller.actor()),
            updated_at: Some(self.now()),
        })
    }

    /// Revalidates an authenticated principal against its tenant: a disabled principal or
    /// tenant stops here.
    pub(crate) async fn check_active(&self, p: &Principal) -> Result<()> {
        let t = self.tenant(p.tenant_id).await?;
        if p.disabled || t.disabled || t.deleted {
            return Err(Error::Unauthenticated {
                message: "the credential is not valid (principal or tenant disabled)".into(),
            });
        }
        Ok(())
    }

    /// Creates the system tenant and its first operator if absent.
    pub(crate) async fn ensure_system_tenant(
        &self,
    ) -> Result<Option<(Principal, crate::IssuedToken)>> {
        if self
            .store
            .find_tenant_by_name(SYSTEM_TENANT)
            .await?
            .is_some()
        {
            return Ok(None);
        }
        let meta = crate::bootstrap::first_start_meta();
        let by = Actor::Server(&meta);
        let t = self
            .create_tenant_record(SYSTEM_TENANT, TenantSettings::default(), true, &by)
            .await?;
        let op = self
            .create_principal_record(t.id, "operator", vec![Role::SystemOperator], &by)
            .await?;
        let token = self.issue_token(&op, "bootstrap", None, &by).await?;
        Ok(Some((op, token)))
    }

    /// Creates a tenant with a fresh KEK wrapped by the root of trust.
    pub async fn create_tenant_record(
        &self,
        name: &str,
        settings: TenantSettings,
        system: bool,
        by: &Actor<'_>,
    ) -> Result<Tenant> {
        let root = self.root()?;
        let kek = self.crypto.random(32)?;
        let wrapped = root.wrap(&kek)?;
        let tenant = Tenant {
            id: Uuid::now_v7(),
            name: name.to_string(),
            created_at: self.now(),
            disabled: false,
            system,
            deleted: false,
            settings,
        };
        let mut n = Note {
            tenant_id: Some(tenant.id),
            ..Default::default()
        };
        n.set("tenant", tenant.name.clone());
        n.set("tenant_id", tenant.id.to_string());
        let audit = self.event_by(by, Action::CreateTenant, &n);
        self.store.create_tenant(&tenant, &wrapped, &audit).await?;
        Ok(tenant)
    }

    /// Creates a principal in a tenant without a caller (first start, tenant creation).
    pub async fn create_principal_record(
        &self,
        tenant: Uuid,
        name: &str,
        roles: Vec<Role>,
        by: &Actor<'_>,
    ) -> Result<Principal> {
        let p = Principal {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            name: name.to_string(),
            roles,
            groups: vec![],
            kind: "user".into(),
            disabled: false,
            created_at: self.now(),
        };
        let mut n = Note {
            tenant_id: Some(tenant),
            ..Default::default()
        };
        n.set("created_principal", format!("{}:{}", p.name, p.id));
        let audit = self.event_by(by, Action::CreatePrincipal, &n);
        self.store.create_principal(&p, &audit).await?;
        Ok(p)
    }
}

/// A checked binding request: the normalized value, the issuer, the record id and the
/// names of the certificate it came with.
struct Prepared {
    value: String,
    issuer: Option<String>,
    id: String,
    cert: Option<CertificateNames>,
}

/// The names of a certificate given in PEM with a binding request.
fn certificate_names(pem: &str) -> Result<CertificateNames> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|_| Error::invalid("certificate", "not a PEM certificate"))?;
    let cert = pem
        .parse_x509()
        .map_err(|_| Error::invalid("certificate", "the PEM block is not an X.509 certificate"))?;
    let info = crate::certs::describe(&pem.contents, &cert);
    Ok(CertificateNames {
        fingerprint: info.fingerprint,
        subject: info.subject,
        sans: info
            .san_dns
            .into_iter()
            .chain(info.san_uri)
            .chain(info.san_email)
            .chain(info.san_ip)
            .collect(),
    })
}

/// The record kind of trust anchor assignments: id `ca:<spki sha-256>` or `jwt:<issuer>`,
/// unique server-wide, so an anchor belongs to one tenant at most.
pub(crate) const TRUST: &str = "trust-anchor";

/// The record id of a binding: scoped by tenant, so that a value is unique within its
/// tenant (the tenant the identity's trust anchor belongs to) and no tenant can take it
/// from another. The issuer is length-prefixed: no `|` in it can make two ids meet.
pub(crate) fn binding_id(
    kind: BindingKind,
    tenant: Uuid,
    issuer: Option<&str>,
    value: &str,
) -> String {
    match issuer {
        Some(i) => format!("{}:{tenant}|{}:{i}|{value}", kind.as_str(), i.len()),
        None => format!("{}:{tenant}|{value}", kind.as_str()),
    }
}

fn normalize_binding(kind: BindingKind, value: &str) -> Result<String> {
    if value.is_empty() || value.len() > 1024 || value.chars().any(|c| c.is_control()) {
        return Err(Error::invalid("value", "1 to 1024 printable characters"));
    }
    Ok(match kind {
        BindingKind::CertificateFingerprint => {
            let hex: String = value
                .chars()
                .filter(|c| *c != ':')
                .collect::<String>()
                .to_ascii_lowercase();
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error::invalid(
                    "value",
                    "a certificate fingerprint is 64 hex digits (SHA-256 of the DER certificate)",
                ));
            }
            hex
        }
        BindingKind::CertificateSubject => arca_core::dn::canonical_subject(value).map_err(|e| {
            Error::invalid(
                "value",
                format!("not an RFC 4514 distinguished name ({e}); escape , + = inside a value with \\"),
            )
        })?,
        _ => value.to_string(),
    })
}

/// The time an API token's last use was last written, so that writes stay rare.
pub(crate) fn touch_due(last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last.is_none_or(|l| now - l >= chrono::Duration::seconds(60))
}
