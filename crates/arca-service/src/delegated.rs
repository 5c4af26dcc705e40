//! Delegated doors: protocols in which a cloud provider's client calls Arca for its end
//! users (Microsoft Purview Double Key Encryption; Google Workspace client-side encryption).
//! The end user proves who they are with a JWT of their identity provider, which the one
//! JWT verifier ([`Service::verify_jwt_claims`]) judges; the door then acts as one Arca
//! principal that the administrator configured, so the key's policy, lifecycle, approvals
//! and audit apply as to any other use, and every record names the end user beside it.

use std::sync::Arc;

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

    /// The principal, or why the door cannot act.
    fn door_principal(
        access: &DelegatedAccess,
        p: Option<Arc<Principal>>,
    ) -> Result<Arc<Principal>> {
        p.ok_or_else(|| Error::Unavailable {
            message: format!(
                "the delegated door's principal {} of tenant {} does not exist",
                access.principal, access.tenant
            ),
        })
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
        let ip = meta.source_ip();
        let (tenant, principal) = self.delegated_principal(access).await?;
        let mut end_user = None;
        let r = async {
            self.limits.admit_source(ip, self.now())?;
            let v = self.verify_jwt_claims(token, Some(&access.issuer)).await?;
            let exp = chrono::DateTime::from_timestamp(v.expires, 0);
            let email = match access.allows(&v.claims) {
                Ok(e) => e,
                Err(e) => {
                    end_user = Some(e.clone());
                    return Err(Error::NotPermitted {
                        message: format!("{e} is not allowed to use this key"),
                    });
                }
            };
            end_user = Some(email);
            let p = Self::door_principal(access, principal)?;
            Ok((p, Credential::Jwt(access.issuer.clone(), exp)))
        }
        .await;
        self.admit_with_note(r, meta, ip, None, Some((end_user, tenant)))
            .await
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
        let ip = meta.source_ip();
        let (tenant, principal) = self.delegated_principal(access).await?;
        let r = async {
            self.limits.admit_source(ip, self.now())?;
            let p = Self::door_principal(access, principal)?;
            Ok((p, Credential::DoorDefault(door)))
        }
        .await;
        let caller = self
            .admit_with_note(r, meta, ip, None, Some((None, tenant)))
            .await?;
        self.public_key_for(&caller, key, None, true).await
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
}
