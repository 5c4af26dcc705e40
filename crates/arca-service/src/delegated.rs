//! Delegated doors: protocols in which a cloud provider's client calls Arca for its end
//! users (Microsoft Purview Double Key Encryption; Google Workspace client-side encryption).
//! The end user proves who they are with a JWT of their identity provider, which the one
//! JWT verifier ([`Service::verify_jwt_claims`]) judges; the door then acts as one Arca
//! principal that the administrator configured, so the key's policy, lifecycle, approvals
//! and audit apply as to any other use, and every record names the end user beside it.

use std::sync::{Arc, OnceLock};

use arca_core::model::Principal;
use arca_core::{Error, Result};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::api::PublicKeyResponse;
use crate::{Caller, Credential, RequestMeta, Service};

/// Who may use a key through a delegated door, and as whom the door acts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DelegatedAccess {
    /// The tenant of `principal` and of the key.
    pub tenant: String,
    /// The Arca principal the door acts as: its key policies say what the door may do.
    pub principal: String,
    /// The `iss` of end users' tokens: one of `[[service.jwt_issuers]]`, whose entry gives
    /// the audience, the JWKS and the accepted algorithms.
    pub issuer: String,
    /// End users allowed by email address (case-insensitive)...
    #[serde(default)]
    pub allowed_emails: Vec<String>,
    /// ...or by the domain of their address...
    #[serde(default)]
    pub allowed_domains: Vec<String>,
    /// ...or by one of the group ids in their token's `groups` claim (Entra ID's).
    #[serde(default)]
    pub allowed_groups: Vec<String>,
}

impl DelegatedAccess {
    /// Checks what a configuration can get wrong before any request: an access rule that
    /// allows nobody is a mistake, not a policy.
    pub fn validate(&self, what: &str) -> Result<()> {
        for (f, v) in [
            ("tenant", &self.tenant),
            ("principal", &self.principal),
            ("issuer", &self.issuer),
        ] {
            if v.is_empty() {
                return Err(Error::invalid(format!("{what}.{f}"), "is required"));
            }
        }
        if self.allowed_emails.is_empty()
            && self.allowed_domains.is_empty()
            && self.allowed_groups.is_empty()
        {
            return Err(Error::invalid(
                format!("{what}.allowed_emails"),
                "name the end users allowed: allowed_emails, allowed_domains or allowed_groups",
            ));
        }
        Ok(())
    }

    /// Whether the end user these claims describe is allowed: their email (`email`, else
    /// `upn`, else `preferred_username`) listed or of a listed domain, or one of their
    /// `groups` listed. Returns the email, which names them in the audit trail.
    pub fn allows(&self, claims: &serde_json::Value) -> std::result::Result<String, String> {
        let email = end_user_email(claims).ok_or_else(|| {
            "the token names no end user (no email, upn or preferred_username claim)".to_string()
        })?;
        let lower = email.to_ascii_lowercase();
        let domain = lower.rsplit_once('@').map(|(_, d)| d).unwrap_or("");
        let by_email = self
            .allowed_emails
            .iter()
            .any(|e| e.eq_ignore_ascii_case(&lower));
        let by_domain = !domain.is_empty()
            && self
                .allowed_domains
                .iter()
                .any(|d| d.eq_ignore_ascii_case(domain));
        let by_group = claims
            .get("groups")
            .and_then(|g| g.as_array())
            .is_some_and(|gs| {
                gs.iter()
                    .filter_map(|g| g.as_str())
                    .any(|g| self.allowed_groups.iter().any(|a| a == g))
            });
        if by_email || by_domain || by_group {
            Ok(email)
        } else {
            Err(email)
        }
    }
}

/// The end user's email address in an identity token, by the claims Entra ID and Google
/// Workspace's identity providers use for it.
pub fn end_user_email(claims: &serde_json::Value) -> Option<String> {
    ["email", "upn", "preferred_username"]
        .iter()
        .find_map(|c| claims.get(*c).and_then(|v| v.as_str()))
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl Service {
    /// The door's configured tenant (its id) and principal in it. `Unavailable` when
    /// either is missing: the configuration names them, the request cannot fix it.
    async fn delegated_principal(
        &self,
        access: &DelegatedAccess,
    ) -> Result<(Uuid, Option<Arc<Principal>>)> {
        let missing = || Error::Unavailable {
            message: format!(
                "the delegated door's tenant {} does not exist",
                access.tenant
            ),
        };
        let tenant = self
            .store
            .find_tenant_by_name(&access.tenant)
            .await?
            .ok_or_else(missing)?;
        let p = self
            .store
            .find_principal(tenant.id, &access.principal)
            .await?
            .map(Arc::new);
        Ok((tenant.id, p))
    }

    /// The principal, or why the door cannot act: missing, or disabled (it or its tenant).
    /// Either is the door's configuration, not the caller's doing, so it is Unavailable
    /// and never counts as a failed authentication of the caller's address.
    async fn door_principal(
        &self,
        access: &DelegatedAccess,
        p: Option<Arc<Principal>>,
    ) -> Result<Arc<Principal>> {
        let p = p.ok_or_else(|| Error::Unavailable {
            message: format!(
                "the delegated door's principal {} of tenant {} does not exist",
                access.principal, access.tenant
            ),
        })?;
        if self.check_active(&p).await.is_err() {
            return Err(Error::Unavailable {
                message: format!(
                    "the delegated door's principal {} of tenant {} is disabled, or its tenant is",
                    access.principal, access.tenant
                ),
            });
        }
        Ok(p)
    }

    /// Authenticates an end user of a delegated door by their identity provider's JWT and
    /// the door's access rule, and answers the caller the door acts as: the configured
    /// principal, naming the end user. A token of another issuer, a bad token, or an end
    /// user the rule does not allow is refused (the last with `NotPermitted`), and the
    /// refusal recorded naming whom the token named.
    pub async fn authenticate_delegated(
        &self,
        token: &str,
        access: &DelegatedAccess,
        meta: RequestMeta,
    ) -> Result<Caller> {
        self.authenticate_delegated_for(token, access, None, meta)
            .await
    }

    /// Authenticates a privileged Google Workspace CSE request (`privilegedwrap`,
    /// `privilegedunwrap`, `privilegedprivatekeydecrypt`, `wrapprivatekey`): the identity
    /// provider's authentication token alone, judged by `access` (the `[cse.privileged]`
    /// rule: its own principal, so key policy may grant the privileged methods apart from
    /// the everyday ones), for the `resource_name` the body names (at most 128 bytes), which
    /// every record names.
    pub async fn authenticate_cse_privileged(
        &self,
        authentication: &str,
        access: &DelegatedAccess,
        resource_name: Option<&str>,
        meta: RequestMeta,
    ) -> Result<Caller> {
        self.authenticate_delegated_for(authentication, access, resource_name, meta)
            .await
    }

    async fn authenticate_delegated_for(
        &self,
        token: &str,
        access: &DelegatedAccess,
        resource: Option<&str>,
        meta: RequestMeta,
    ) -> Result<Caller> {
        let ip = meta.source_ip();
        let (tenant, principal) = self.delegated_principal(access).await?;
        let mut end_user = None;
        let r = async {
            self.limits.admit_source(ip, self.now())?;
            if resource.is_some_and(|r| r.is_empty() || r.len() > CSE_MAX_RESOURCE_BYTES) {
                return Err(Error::invalid(
                    "resource_name",
                    format!("1 to {CSE_MAX_RESOURCE_BYTES} bytes"),
                ));
            }
            let v = self.verify_jwt_claims(token, Some(&access.issuer)).await?;
            let exp = chrono::DateTime::from_timestamp(v.expires, 0);
            let email = match access.allows(&v.claims) {
                Ok(e) => e,
                Err(e) => {
                    end_user = Some(e.clone());
                    return Err(not_permitted(e));
                }
            };
            end_user = Some(email);
            let p = self.door_principal(access, principal).await?;
            Ok((p, Credential::Jwt(access.issuer.clone(), exp)))
        }
        .await;
        let mut caller = self
            .admit_with_note(r, meta, ip, None, Some((end_user, tenant)))
            .await?;
        caller.resource = resource.map(str::to_string);
        Ok(caller)
    }

    /// The public key of `key` for a delegated door whose protocol fetches it without a
    /// credential (Microsoft DKE's `GET /{keyName}`): the door's principal asks, so its key
    /// policy and the audit trail apply as to any other fetch, and only while the key may
    /// protect new data (the client encrypts under what it fetched).
    pub async fn delegated_public_key(
        &self,
        access: &DelegatedAccess,
        key: &str,
        door: &'static str,
        meta: RequestMeta,
    ) -> Result<PublicKeyResponse> {
        let caller = self.delegated_door_caller(access, door, meta).await?;
        self.public_key_for(&caller, key, None, true).await
    }

    /// A question about a delegated door itself that its protocol asks without a
    /// credential (Google's KACLS `status`, which the admin console calls to test the
    /// connection): asked as the door's principal and recorded as its
    /// [`Action::QueryServer`](arca_core::Action::QueryServer), like KMIP's Query, so the
    /// trail has every call and the source's rate limit applies. Refused (and recorded)
    /// while the door could not act: its principal missing or disabled.
    pub async fn delegated_query(
        &self,
        access: &DelegatedAccess,
        door: &'static str,
        meta: RequestMeta,
    ) -> Result<()> {
        let caller = self.delegated_door_caller(access, door, meta).await?;
        self.query_server(&caller).await
    }

    /// The caller of a delegated door's request that carries no credential: the door's
    /// principal, credential `none`, admitted by the source's rate limit (a refusal is
    /// recorded in the door's tenant).
    async fn delegated_door_caller(
        &self,
        access: &DelegatedAccess,
        door: &'static str,
        meta: RequestMeta,
    ) -> Result<Caller> {
        let ip = meta.source_ip();
        let (tenant, principal) = self.delegated_principal(access).await?;
        let r = async {
            self.limits.admit_source(ip, self.now())?;
            let p = self.door_principal(access, principal).await?;
            Ok((p, Credential::DoorDefault(door)))
        }
        .await;
        self.admit_with_note(r, meta, ip, None, Some((None, tenant)))
            .await
    }
}

/// The largest `resource_name` and `perimeter_id` Google's authorization tokens carry.
pub const CSE_MAX_RESOURCE_BYTES: usize = 128;

/// What a Google Workspace CSE request must prove beyond the end user's identity: the
/// authorization token's issuer (Google's, per application), the KACLS URL it names and the
/// roles the method accepts.
pub struct CseCheck<'a> {
    /// Who may use the key, and the identity provider of the authentication token.
    pub access: &'a DelegatedAccess,
    /// The `iss` values of Google's authorization tokens accepted (each one of
    /// `[[service.jwt_issuers]]`, whose audience is `cse-authorization`).
    pub authorization_issuers: &'a [String],
    /// The KACLS URL configured in the Google admin console: a token naming another
    /// `kacls_url` was meant for another service.
    pub kacls_url: &'a str,
    /// The roles of the authorization token this method accepts (`writer` for wrap,
    /// `reader` or `writer` for unwrap).
    pub roles: &'a [&'a str],
    /// The Google Workspace domain that owns this KACLS: an authorization token whose
    /// `kacls_owner_domain` claim names another is refused (unset: the claim is not checked).
    pub owner_domain: Option<&'a str>,
    /// The issuer of the delegated authentication tokens this KACLS's `delegate` method
    /// issues (one of `[[service.jwt_issuers]]`, whose JWKS is the one `delegate` publishes):
    /// an authentication token of this issuer is accepted for the delegation it names.
    pub delegate_issuer: Option<&'a str>,
    /// True for the `delegate` method itself: the user's own authentication token with an
    /// authorization naming the delegate (a delegated token is not delegated again).
    pub issuing_delegation: bool,
}

/// What Google's authorization token grants, once both tokens are checked.
#[derive(Debug, Clone)]
pub struct CseGrant {
    /// The user, as both tokens name them.
    pub email: String,
    pub role: String,
    /// The document the key protects: bound into the wrapped key.
    pub resource_name: String,
    pub perimeter_id: Option<String>,
    /// Gmail's tokens: the digest of the SubjectPublicKeyInfo of the user's key pair the
    /// token is for (standard base64), and its algorithm (`SHA-256`).
    pub spki_hash: Option<String>,
    pub spki_hash_algorithm: Option<String>,
    /// The entity the user delegates to (the `delegate` method's tokens).
    pub delegated_to: Option<String>,
}

fn claim<'a>(c: &'a serde_json::Value, name: &str) -> Option<&'a str> {
    c.get(name)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
}

/// The checks of Google's reference that tie the two tokens together: the same user
/// (the authentication token's `google_email`, else its `email`, against the
/// authorization token's `email`, case-insensitively), an accepted role, this KACLS's URL,
/// and a resource name within its limit.
pub fn cse_grant(
    authentication: &serde_json::Value,
    authorization: &serde_json::Value,
    check: &CseCheck<'_>,
) -> Result<CseGrant> {
    let unauth = |m: &str| Error::Unauthenticated {
        message: m.to_string(),
    };
    let authz_email = claim(authorization, "email")
        .ok_or_else(|| unauth("the authorization token names no email"))?;
    let authn_email = claim(authentication, "google_email")
        .or_else(|| claim(authentication, "email"))
        .ok_or_else(|| unauth("the authentication token names no email"))?;
    if !authz_email.eq_ignore_ascii_case(authn_email) {
        return Err(unauth(
            "the authentication and authorization tokens name different users",
        ));
    }
    cse_authorization_grant(authorization, check)
}

/// The checks of an authorization token alone (the methods Google calls without an
/// authentication token: `rewrap`, `digest`): an accepted role, this KACLS's URL and owner
/// domain, a resource name within its limit.
pub fn cse_authorization_grant(
    authorization: &serde_json::Value,
    check: &CseCheck<'_>,
) -> Result<CseGrant> {
    let authz_email = claim(authorization, "email").ok_or_else(|| Error::Unauthenticated {
        message: "the authorization token names no email".into(),
    })?;
    let role = claim(authorization, "role").unwrap_or("");
    if !check.roles.contains(&role) {
        return Err(Error::NotPermitted {
            message: format!(
                "the authorization token's role {role:?} is not one of {:?}",
                check.roles
            ),
        });
    }
    if let Some(u) = claim(authorization, "kacls_url") {
        if u.trim_end_matches('/') != check.kacls_url.trim_end_matches('/') {
            return Err(Error::NotPermitted {
                message: format!("the authorization token is for the KACLS at {u}, not this one"),
            });
        }
    }
    if let (Some(d), Some(own)) = (
        claim(authorization, "kacls_owner_domain"),
        check.owner_domain,
    ) {
        if !d.eq_ignore_ascii_case(own) {
            return Err(Error::NotPermitted {
                message: format!(
                    "the authorization token is for a KACLS of the domain {d}, not this one's"
                ),
            });
        }
    }
    let resource_name = claim(authorization, "resource_name").ok_or_else(|| {
        Error::invalid("resource_name", "the authorization token names no resource")
    })?;
    let perimeter_id = claim(authorization, "perimeter_id");
    if resource_name.len() > CSE_MAX_RESOURCE_BYTES
        || perimeter_id.is_some_and(|p| p.len() > CSE_MAX_RESOURCE_BYTES)
    {
        return Err(Error::invalid(
            "resource_name",
            format!("resource_name and perimeter_id are at most {CSE_MAX_RESOURCE_BYTES} bytes"),
        ));
    }
    Ok(CseGrant {
        email: authz_email.to_string(),
        role: role.to_string(),
        resource_name: resource_name.to_string(),
        perimeter_id: perimeter_id.map(str::to_string),
        spki_hash: claim(authorization, "spki_hash").map(str::to_string),
        spki_hash_algorithm: claim(authorization, "spki_hash_algorithm").map(str::to_string),
        delegated_to: claim(authorization, "delegated_to").map(str::to_string),
    })
}

/// The reference's rule for delegation: a delegated authentication token (issued by this
/// KACLS's `delegate`) is valid only with an authorization token for the same
/// `delegated_to` and `resource_name`, and an authorization token for a delegate needs
/// the delegated authentication token.
pub fn check_delegation(
    authentication: &serde_json::Value,
    grant: &CseGrant,
    delegated: bool,
) -> Result<()> {
    let unauth = |m: &str| Error::Unauthenticated {
        message: m.to_string(),
    };
    match (delegated, grant.delegated_to.as_deref()) {
        (false, None) => Ok(()),
        (false, Some(_)) => Err(unauth(
            "an authorization for a delegate needs the delegated authentication token",
        )),
        (true, None) => Err(unauth(
            "a delegated authentication token needs an authorization for its delegate",
        )),
        (true, Some(to)) => {
            if claim(authentication, "delegated_to") != Some(to)
                || claim(authentication, "resource_name") != Some(grant.resource_name.as_str())
            {
                return Err(unauth(
                    "the delegated authentication token is for another delegate or resource",
                ));
            }
            Ok(())
        }
    }
}

impl Service {
    /// Authenticates a Google Workspace CSE request by its two tokens: the customer
    /// identity provider's authentication token (the access rule's issuer) and Google's
    /// authorization token (one of `check.authorization_issuers`), both judged by the one
    /// JWT verifier, then tied together by [`cse_grant`] and the access rule. The caller is
    /// the door's principal naming the user and the resource; every refusal is recorded in
    /// the door's tenant.
    pub async fn authenticate_cse(
        &self,
        authentication: &str,
        authorization: &str,
        check: &CseCheck<'_>,
        meta: RequestMeta,
    ) -> Result<(Caller, CseGrant)> {
        let access = check.access;
        let end_user = OnceLock::new();
        let judged = async {
            let authn = self.verify_jwt_claims(authentication, None).await?;
            let delegated = check.delegate_issuer == Some(authn.issuer.issuer.as_str());
            if !delegated && authn.issuer.issuer != access.issuer {
                return Err(Error::Unauthenticated {
                    message: "the JWT is not valid: wrong issuer".into(),
                });
            }
            let authz = self.verify_cse_authorization(authorization, check).await?;
            if let Some(e) = claim(&authz.claims, "email") {
                let _ = end_user.set(e.to_string());
            }
            let g = cse_grant(&authn.claims, &authz.claims, check)?;
            if check.issuing_delegation {
                if delegated {
                    return Err(Error::Unauthenticated {
                        message: "a delegated authentication token is not delegated again".into(),
                    });
                }
            } else {
                check_delegation(&authn.claims, &g, delegated)?;
            }
            // The rule judges the Google Workspace user both tokens agree on, with the
            // identity provider's groups.
            let judged = serde_json::json!({
                "email": g.email,
                "groups": authn.claims.get("groups").cloned().unwrap_or_default(),
            });
            access.allows(&judged).map_err(not_permitted)?;
            let exp = chrono::DateTime::from_timestamp(authn.expires.min(authz.expires), 0);
            Ok((g, Credential::Jwt(access.issuer.clone(), exp)))
        };
        self.admit_cse(access, meta, &end_user, judged).await
    }

    /// What both CSE admissions share: the door's principal, the source's rate limit,
    /// `judged` (the tokens' verdict: the grant and the credential; `end_user` the user the
    /// authorization token names, once known), then the admission, recorded in the door's
    /// tenant, refusals too; the caller names the grant's resource.
    async fn admit_cse(
        &self,
        access: &DelegatedAccess,
        meta: RequestMeta,
        end_user: &OnceLock<String>,
        judged: impl std::future::Future<Output = Result<(CseGrant, Credential)>>,
    ) -> Result<(Caller, CseGrant)> {
        let ip = meta.source_ip();
        let (tenant, principal) = self.delegated_principal(access).await?;
        let mut grant = None;
        let r = async {
            self.limits.admit_source(ip, self.now())?;
            let (g, credential) = judged.await?;
            let p = self.door_principal(access, principal).await?;
            grant = Some(g);
            Ok((p, credential))
        }
        .await;
        let delegated = Some((end_user.get().cloned(), tenant));
        let mut caller = self.admit_with_note(r, meta, ip, None, delegated).await?;
        let grant = grant.ok_or_else(|| Error::internal("a CSE caller without its grant"))?;
        caller.resource = Some(grant.resource_name.clone());
        Ok((caller, grant))
    }

    /// Google's authorization token, by the one JWT verifier, from one of the configured
    /// authorization issuers.
    async fn verify_cse_authorization(
        &self,
        authorization: &str,
        check: &CseCheck<'_>,
    ) -> Result<crate::sessions::VerifiedJwt<'_>> {
        let authz = self.verify_jwt_claims(authorization, None).await?;
        if !check.authorization_issuers.contains(&authz.issuer.issuer) {
            return Err(Error::Unauthenticated {
                message:
                    "the JWT is not valid: wrong issuer (not a configured authorization issuer)"
                        .into(),
            });
        }
        Ok(authz)
    }

    /// Authorizes a Google Workspace CSE request that carries Google's authorization token
    /// alone (`rewrap`, `digest`, which Google's servers call for a migration): the token is
    /// judged by the one JWT verifier and [`cse_authorization_grant`], the user it names by
    /// the access rule; the caller is the door's principal naming the user and the
    /// resource, and every refusal is recorded in the door's tenant.
    pub async fn authorize_cse(
        &self,
        authorization: &str,
        check: &CseCheck<'_>,
        meta: RequestMeta,
    ) -> Result<(Caller, CseGrant)> {
        let access = check.access;
        let end_user = OnceLock::new();
        let judged = async {
            let authz = self.verify_cse_authorization(authorization, check).await?;
            if let Some(e) = claim(&authz.claims, "email") {
                let _ = end_user.set(e.to_string());
            }
            let g = cse_authorization_grant(&authz.claims, check)?;
            access
                .allows(&serde_json::json!({ "email": g.email }))
                .map_err(not_permitted)?;
            let exp = chrono::DateTime::from_timestamp(authz.expires, 0);
            let issuer = authz.issuer.issuer.clone();
            Ok((g, Credential::Jwt(issuer, exp)))
        };
        self.admit_cse(access, meta, &end_user, judged).await
    }
}

/// The refusal of a user the door's access rule does not allow.
fn not_permitted(user: String) -> Error {
    Error::NotPermitted {
        message: format!("{user} is not allowed to use this key"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn access() -> DelegatedAccess {
        DelegatedAccess {
            tenant: "t".into(),
            principal: "p".into(),
            issuer: "i".into(),
            allowed_emails: vec!["Alice@Example.com".into()],
            allowed_domains: vec!["corp.example".into()],
            allowed_groups: vec!["g-1".into()],
        }
    }

    #[test]
    fn rule_by_email_domain_and_group() {
        let a = access();
        assert_eq!(
            a.allows(&json!({"email": "alice@example.com"})).unwrap(),
            "alice@example.com"
        );
        assert!(a.allows(&json!({"upn": "bob@CORP.example"})).is_ok());
        assert!(a
            .allows(&json!({"preferred_username": "eve@x.example", "groups": ["g-1"]}))
            .is_ok());
        assert_eq!(
            a.allows(&json!({"email": "eve@x.example", "groups": ["g-2"]}))
                .unwrap_err(),
            "eve@x.example"
        );
        // A domain is matched whole: a look-alike suffix is not it.
        assert!(a.allows(&json!({"email": "eve@evilcorp.example"})).is_err());
        assert!(a.allows(&json!({"sub": "x"})).is_err());
    }

    #[test]
    fn a_rule_allowing_nobody_is_refused() {
        let mut a = access();
        assert!(a.validate("dke.keys[0]").is_ok());
        a.allowed_emails.clear();
        a.allowed_domains.clear();
        a.allowed_groups.clear();
        assert!(a.validate("dke.keys[0]").is_err());
    }

    #[test]
    fn the_two_cse_tokens_must_agree() {
        let a = access();
        let issuers = vec!["google".to_string()];
        let check = CseCheck {
            access: &a,
            authorization_issuers: &issuers,
            kacls_url: "https://k.test/cse/",
            roles: &["reader", "writer"],
            owner_domain: Some("example.com"),
            delegate_issuer: None,
            issuing_delegation: false,
        };
        let authz = json!({"email": "Alice@Example.com", "role": "reader",
            "resource_name": "doc", "kacls_url": "https://k.test/cse"});
        let g = cse_grant(&json!({"email": "alice@example.com"}), &authz, &check).unwrap();
        assert_eq!(
            (g.resource_name.as_str(), g.role.as_str()),
            ("doc", "reader")
        );
        // google_email, when present, is what is compared, not email.
        assert!(cse_grant(
            &json!({"email": "a@idp.test", "google_email": "alice@example.com"}),
            &authz,
            &check
        )
        .is_ok());
        assert!(cse_grant(
            &json!({"email": "alice@example.com", "google_email": "bob@example.com"}),
            &authz,
            &check
        )
        .is_err());
        let authn = json!({"email": "alice@example.com"});
        let with = |p: serde_json::Value| {
            let mut z = authz.clone();
            for (k, v) in p.as_object().unwrap() {
                z[k] = v.clone();
            }
            cse_grant(&authn, &z, &check).unwrap_err().code()
        };
        assert_eq!(with(json!({"email": "bob@example.com"})), "unauthenticated");
        assert_eq!(with(json!({"role": "upgrader"})), "not_permitted");
        assert_eq!(
            with(json!({"kacls_url": "https://other.test/cse"})),
            "not_permitted"
        );
        assert_eq!(
            with(json!({"resource_name": "x".repeat(129)})),
            "invalid_input"
        );
        assert_eq!(with(json!({"resource_name": ""})), "invalid_input");
        assert_eq!(
            with(json!({"kacls_owner_domain": "evil.example"})),
            "not_permitted"
        );
        let g = cse_grant(
            &authn,
            &{
                let mut z = authz.clone();
                z["kacls_owner_domain"] = json!("EXAMPLE.com");
                z["spki_hash"] = json!("aGFzaA==");
                z
            },
            &check,
        )
        .unwrap();
        assert_eq!(g.spki_hash.as_deref(), Some("aGFzaA=="));
    }
}
