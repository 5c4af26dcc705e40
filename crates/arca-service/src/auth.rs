//! API tokens: `arca_<id>_<secret>`, 256 bits of secret, stored as a SHA-256 hash only and
//! compared in constant time. The id half finds the row; the secret half proves possession.

use arca_core::Action;
use std::sync::Arc;

use arca_core::model::Principal;
use arca_core::{Error, Result};
use arca_store::ApiToken;
use aws_lc_rs::{constant_time, digest};
use base64::Engine;
use chrono::{DateTime, Utc};
use zeroize::Zeroizing;

use crate::cache::CachedToken;
use crate::{Caller, Credential, Note, RequestMeta, Service};

/// The prefix that makes Arca tokens recognisable (to people and to secret scanners).
pub const TOKEN_PREFIX: &str = "arca_";

/// A token as issued: the secret string is shown once and never stored.
pub struct IssuedToken {
    pub id: String,
    pub token: Zeroizing<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

fn hash(token: &str) -> Vec<u8> {
    digest::digest(&digest::SHA256, token.as_bytes())
        .as_ref()
        .to_vec()
}

fn unauthenticated(message: &str) -> Error {
    Error::Unauthenticated {
        message: message.to_string(),
    }
}

impl Service {
    /// Issues a new API token for a principal.
    pub async fn issue_token(
        &self,
        principal: &Principal,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
        by: &crate::Actor<'_>,
    ) -> Result<IssuedToken> {
        let id_bytes = self.crypto.random(9)?;
        let secret = self.crypto.random(32)?;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let id = b64.encode(&id_bytes[..]).replace(['-', '_'], "x");
        let token = Zeroizing::new(format!("{TOKEN_PREFIX}{id}_{}", b64.encode(&secret[..])));
        let mut n = crate::Note {
            tenant_id: Some(principal.tenant_id),
            ..Default::default()
        };
        n.set("token_id", id.clone());
        n.set(
            "for_principal",
            format!("{}:{}", principal.name, principal.id),
        );
        let audit = self.event_by(by, Action::CreateApiToken, &n);
        self.store
            .create_token(
                &ApiToken {
                    id: id.clone(),
                    principal_id: principal.id,
                    tenant_id: principal.tenant_id,
                    name: name.to_string(),
                    hash: hash(&token),
                    created_at: self.now(),
                    expires_at,
                    revoked_at: None,
                    last_used_at: None,
                },
                &audit,
            )
            .await?;
        Ok(IssuedToken {
            id,
            token,
            expires_at,
        })
    }

    /// Authenticates a bearer credential: an API token (`arca_…`), one of Arca's session
    /// access tokens, or a JWT of a configured issuer. A failure is audited and says little
    /// about why, so that it teaches an attacker nothing; repeated failures from one address
    /// meet a growing back-off.
    pub async fn authenticate(&self, token: &str, meta: RequestMeta) -> Result<Caller> {
        let ip = meta.source_ip();
        let r = async {
            self.admit_source(ip)?;
            if token.starts_with(TOKEN_PREFIX) {
                let id = token_id(token).ok_or_else(|| {
                    unauthenticated("the bearer token is not a valid Arca API token")
                })?;
                let p = self.authenticate_api_token(id, token).await?;
                Ok((p, Credential::ApiToken(id.to_string())))
            } else if token.split('.').count() == 3 {
                let iss = token
                    .split('.')
                    .nth(1)
                    .and_then(|c| {
                        base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .decode(c)
                            .ok()
                    })
                    .and_then(|c| serde_json::from_slice::<serde_json::Value>(&c).ok())
                    .and_then(|c| c.get("iss").and_then(|i| i.as_str()).map(String::from));
                if iss.as_deref() == Some(crate::sessions::SESSION_ISSUER) {
                    self.verify_access_token(token).await
                } else {
                    self.verify_jwt(token).await
                }
            } else {
                Err(unauthenticated(
                    "the bearer credential is not an Arca API token, session token or JWT",
                ))
            }
        }
        .await;
        let id = if r.is_err() {
            token_id(token).map(String::from)
        } else {
            None
        };
        self.admit_with_note(r, meta, ip, id, None).await
    }

    /// The common end of every authentication: the principal and tenant must be enabled,
    /// the principal within its rate; failures are counted and audited.
    pub(crate) async fn admit(
        &self,
        r: Result<(Arc<Principal>, Credential)>,
        meta: RequestMeta,
        ip: Option<std::net::IpAddr>,
    ) -> Result<Caller> {
        self.admit_with_note(r, meta, ip, None, None).await
    }

    /// [`Service::admit`] saying more in the record of a refusal: the API token's id, and
    /// for a delegated door the end user the token named and the door's tenant.
    pub(crate) async fn admit_with_note(
        &self,
        r: Result<(Arc<Principal>, Credential)>,
        meta: RequestMeta,
        ip: Option<std::net::IpAddr>,
        token_id: Option<String>,
        delegated: Option<(Option<String>, uuid::Uuid)>,
    ) -> Result<Caller> {
        let end_user = delegated.as_ref().and_then(|(u, _)| u.clone());
        let r = match r {
            Ok((p, c)) => self.check_active(&p).await.map(|_| (p, c)),
            Err(e) => Err(e),
        };
        match r {
            Ok((principal, credential)) => {
                self.limits.succeeded(ip);
                if let Err(e) = self.limits.admit_principal(principal.id, self.now()) {
                    return Err(self
                        .audit_refusal(&meta, Some(&principal), Action::Authenticate, e)
                        .await);
                }
                Ok(Caller {
                    principal,
                    meta,
                    credential,
                    approval: None,
                    end_user,
                    resource: None,
                    reason: None,
                    notes: Vec::new(),
                })
            }
            Err(e) => {
                if matches!(e, Error::Unauthenticated { .. }) {
                    self.limits.failed(ip, self.now());
                }
                self.audited_as(
                    &meta,
                    None,
                    Action::Authenticate,
                    async |note: &mut Note| {
                        if let Some(id) = token_id {
                            note.set("token_id", id);
                        }
                        // A delegated door's refusal belongs to the tenant whose key the
                        // door serves: its administrators see who was turned away.
                        if let Some((u, tenant)) = delegated {
                            note.tenant_id = Some(tenant);
                            if let Some(u) = u {
                                note.set("end_user", u);
                            }
                        }
                        if let Some(c) = &meta.client_cert {
                            note.set("certificate", c.fingerprint.clone());
                        }
                        Err(e)
                    },
                )
                .await
            }
        }
    }

    async fn authenticate_api_token(&self, id: &str, token: &str) -> Result<Arc<Principal>> {
        let presented = hash(token);
        let cached = match self.cache.tokens.get(&id.to_string()) {
            Some(c) => c,
            None => {
                let t = self
                    .store
                    .get_token(id)
                    .await?
                    .ok_or_else(|| unauthenticated("the API token is not valid"))?;
                let p = self
                    .store
                    .get_principal(t.principal_id)
                    .await?
                    .ok_or_else(|| unauthenticated("the API token is not valid"))?;
                let c = CachedToken {
                    token: t,
                    principal: Arc::new(p),
                };
                self.cache.tokens.insert(id.to_string(), c.clone());
                c
            }
        };
        if constant_time::verify_slices_are_equal(&cached.token.hash, &presented).is_err() {
            return Err(unauthenticated("the API token is not valid"));
        }
        let now = self.now();
        if cached.token.revoked_at.is_some() || cached.token.expires_at.is_some_and(|e| e <= now) {
            return Err(unauthenticated(
                "the API token is not valid (expired or revoked)",
            ));
        }
        if crate::identity::touch_due(cached.token.last_used_at, now) {
            // Last-used time, written at most once a minute per token and off the request
            // path: a failed write costs only accuracy.
            let mut c = cached.clone();
            c.token.last_used_at = Some(now);
            self.cache.tokens.insert(id.to_string(), c);
            let store = self.store.clone();
            let id = id.to_string();
            tokio::spawn(async move {
                if let Err(e) = store.touch_token(&id, now).await {
                    tracing::warn!(error = %e, "could not record a token's last use");
                }
            });
        }
        Ok(cached.principal)
    }
}

/// The id part of a well-formed token, without touching the store.
fn token_id(token: &str) -> Option<&str> {
    let rest = token.strip_prefix(TOKEN_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if id.is_empty()
        || id.len() > 64
        || secret.len() < 40
        || !id.chars().all(|c| c.is_ascii_alphanumeric())
    {
        return None;
    }
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_shape() {
        assert_eq!(
            token_id("arca_abc123_0123456789012345678901234567890123456789012"),
            Some("abc123")
        );
        assert_eq!(token_id("Bearer x"), None);
        assert_eq!(token_id("arca_abc_short"), None);
        assert_eq!(
            token_id("arca_a-b_0123456789012345678901234567890123456789012"),
            None
        );
    }
}
