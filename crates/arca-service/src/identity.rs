//! Tenants, principals, API tokens and tenant settings: who exists and how they sign in.
//! Credential bindings and trust anchors are in `bindings.rs`, key policies in
//! `policies.rs`. Every operation here passes the same authorize step as key operations,
//! and the sensitive ones pass the quorum gate ([`Service::gate`]).

use arca_core::Action;
use std::sync::Arc;

use arca_core::access::{self, Role, TenantSettings};
use arca_core::model::{Principal, Tenant};
use arca_core::names::validate_identity_name as validate_name;
use arca_core::{Error, Result};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::api::*;
use crate::approvals::Pending;
use crate::bindings::{binding_id, TRUST};
use crate::{Actor, Caller, Note, Service};
use arca_core::audit::AuditEvent;

/// The name of the built-in tenant that holds the system operators.
pub const SYSTEM_TENANT: &str = "system";

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

    /// Refuses `what` about `field` unless the caller's tenant allows legacy algorithms
    /// ([`TenantSettings::permit_legacy`]): every operation that makes or uses a legacy key
    /// or parameter asks here, inside its audited span, so the refusal is recorded.
    pub(crate) async fn permit_legacy(
        &self,
        caller: &Caller,
        what: access::LegacyAlgorithm,
        field: &str,
    ) -> Result<()> {
        self.tenant(caller.tenant())
            .await?
            .settings
            .permit_legacy(what, field)
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
    pub(crate) async fn tenant_by_ref(&self, reference: &str) -> Result<Tenant> {
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
            crate::Credential::Certificate(_) | crate::Credential::DoorDefault(_) => None,
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

/// The time an API token's last use was last written, so that writes stay rare.
pub(crate) fn touch_due(last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last.is_none_or(|l| now - l >= chrono::Duration::seconds(60))
}
