//! Credentials other than API tokens: short-lived sessions, client certificates and JWTs
//! from configured OpenID Connect issuers.
//!
//! **Sessions** follow the KeySecure REST model: a caller trades any credential for an
//! access token (a JWT signed by the server's Ed25519 session key, valid five minutes) and a
//! refresh token (`arcar_…`, stored as a hash, rotated on every use; presenting an old one
//! revokes the session, as OAuth 2.0 refresh-token rotation advises). Logout revokes both.
//! The session key is generated on first use and stored wrapped by the root key, so every
//! node of a cluster verifies every other node's tokens.
//!
//! **JWTs** from configured issuers are verified against the issuer's JWKS (a file or a
//! URL), with `iss`, `aud`, `exp` and `nbf` checked on the service clock and the algorithm
//! taken from an allow-list that never contains `none` or an HMAC algorithm (an HMAC "signed"
//! with a public key is the classic JWT confusion attack).

use arca_core::Action;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use arca_core::model::Principal;
use arca_core::{Error, Result};
use arca_store::Record;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use aws_lc_rs::{constant_time, digest};
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::api::{BindingKind, SessionRequest, SessionTokens};
use crate::bindings::binding_id;
use crate::{Caller, Credential, Note, RequestMeta, Service};

/// The `iss` of Arca's own access tokens.
pub const SESSION_ISSUER: &str = "arca";
/// The prefix of refresh tokens.
pub const REFRESH_PREFIX: &str = "arcar_";
const SESSION: &str = "session";
pub(crate) const SESSION_KEY_META: &str = "session.signing-key.wrapped";

/// A configured JWT issuer (an OpenID Connect provider or any JWKS-publishing issuer).
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct JwtIssuer {
    /// The exact `iss` value.
    pub issuer: String,
    /// The `aud` value tokens must carry.
    pub audience: String,
    /// The issuer's JWKS as a file...
    #[serde(default)]
    pub jwks_file: Option<std::path::PathBuf>,
    /// ...or a URL (fetched at first use, again when an unknown `kid` appears, at most
    /// once a minute, and every ten minutes).
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The claim whose value names the principal through a `jwt` binding (default `sub`).
    #[serde(default = "default_claim")]
    pub claim: String,
    /// Accepted algorithms (default RS256, PS256, ES256, ES384, EdDSA). HMAC and `none`
    /// are refused whatever this says.
    #[serde(default = "default_algs")]
    pub algorithms: Vec<String>,
}

fn default_claim() -> String {
    "sub".into()
}

fn default_algs() -> Vec<String> {
    ["RS256", "PS256", "ES256", "ES384", "EdDSA"]
        .map(String::from)
        .to_vec()
}

fn unauthenticated(message: &str) -> Error {
    Error::Unauthenticated {
        message: message.to_string(),
    }
}

fn b64u() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

fn internal(e: impl std::fmt::Display) -> Error {
    Error::internal(e.to_string())
}

/// The server's session signing key (private half inside aws-lc-rs, which cleanses it).
pub(crate) struct SessionKey {
    pair: Ed25519KeyPair,
}

/// A session as stored.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct SessionDoc {
    principal_id: Uuid,
    tenant_id: Uuid,
    /// SHA-256 (hex) of the current refresh token.
    refresh_hash: String,
    created_at: DateTime<Utc>,
    refresh_expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    /// The credential that started the session.
    started_with: String,
    /// The API token that started it, if one did: revoking or expiring that token ends
    /// the session at its next refresh (its access token lives 5 minutes at most).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    api_token_id: Option<String>,
    /// SHA-256 (hex) of the refresh tokens this session has spent, newest last (at most
    /// [`SPENT_KEPT`]): one of them coming back means someone else holds the chain, and
    /// ends the session. A token that was never issued (a session id with made-up bytes)
    /// is only refused: knowing a session id must not be enough to end the session.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    spent: Vec<String>,
}

/// How many spent refresh tokens a session remembers for reuse detection.
const SPENT_KEPT: usize = 32;

/// A session's state as the cache keeps it.
#[derive(Clone)]
pub struct CachedSession {
    pub principal: Arc<Principal>,
    pub revoked: bool,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct AccessClaims {
    iss: String,
    sub: String,
    tid: String,
    sid: String,
    iat: i64,
    exp: i64,
}

/// A JWT that [`Service::verify_jwt_claims`] accepted: its issuer's configuration, its
/// claims and its `exp`.
pub(crate) struct VerifiedJwt<'a> {
    pub issuer: &'a JwtIssuer,
    pub claims: serde_json::Value,
    pub expires: i64,
}

/// JWKS sets by issuer, with when they were fetched.
#[derive(Default)]
pub(crate) struct JwksCache {
    sets: tokio::sync::Mutex<HashMap<String, (jsonwebtoken::jwk::JwkSet, DateTime<Utc>)>>,
}

fn hash_hex(s: &str) -> String {
    digest::digest(&digest::SHA256, s.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The claims part of a JWT, decoded without verification, to pick the verifier.
fn peek_claims(token: &str) -> Option<serde_json::Value> {
    let mut parts = token.split('.');
    let (_, payload, _) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    serde_json::from_slice(&b64u().decode(payload).ok()?).ok()
}

impl Service {
    /// The session signing key: loaded from the store (wrapped by the root key) or made.
    async fn session_key(&self) -> Result<Arc<SessionKey>> {
        if let Some(k) = self
            .session_key
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            return Ok(k);
        }
        let root = self.root()?;
        let wrapped = match self.store.get_meta(SESSION_KEY_META).await? {
            Some(w) => w,
            None => {
                let rng = aws_lc_rs::rand::SystemRandom::new();
                let doc = Ed25519KeyPair::generate_pkcs8(&rng).map_err(internal)?;
                let w = root.wrap(doc.as_ref())?;
                if !self.store.put_meta_if_absent(SESSION_KEY_META, &w).await? {
                    // Another node made one first: use theirs.
                    self.store
                        .get_meta(SESSION_KEY_META)
                        .await?
                        .ok_or_else(|| Error::internal("session key vanished"))?
                } else {
                    w
                }
            }
        };
        let pkcs8 = root.unwrap(&wrapped)?;
        let pair = Ed25519KeyPair::from_pkcs8(&pkcs8).map_err(internal)?;
        let k = Arc::new(SessionKey { pair });
        *self.session_key.write().unwrap_or_else(|e| e.into_inner()) = Some(k.clone());
        Ok(k)
    }

    async fn sign_access_token(
        &self,
        p: &Principal,
        sid: Uuid,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let key = self.session_key().await?;
        let header = b64u().encode(br#"{"alg":"EdDSA","typ":"JWT","kid":"arca-session"}"#);
        let claims = AccessClaims {
            iss: SESSION_ISSUER.into(),
            sub: p.id.to_string(),
            tid: p.tenant_id.to_string(),
            sid: sid.to_string(),
            iat: now.timestamp(),
            exp: now.timestamp() + self.config.session_ttl_secs as i64,
        };
        let body = b64u().encode(serde_json::to_vec(&claims).map_err(internal)?);
        let signing_input = format!("{header}.{body}");
        let sig = key.pair.sign(signing_input.as_bytes());
        Ok(format!("{signing_input}.{}", b64u().encode(sig.as_ref())))
    }

    fn new_refresh_token(&self, sid: Uuid) -> Result<Zeroizing<String>> {
        let secret = self.crypto.random(32)?;
        Ok(Zeroizing::new(format!(
            "{REFRESH_PREFIX}{}_{}",
            sid.simple(),
            b64u().encode(&secret[..])
        )))
    }

    async fn session_tokens(
        &self,
        p: &Principal,
        sid: Uuid,
        refresh: &str,
        doc: &SessionDoc,
        now: DateTime<Utc>,
    ) -> Result<SessionTokens> {
        Ok(SessionTokens {
            access_token: self.sign_access_token(p, sid, now).await?,
            token_type: "Bearer".into(),
            expires_in: self.config.session_ttl_secs,
            refresh_token: refresh.to_string(),
            refresh_expires_in: (doc.refresh_expires_at - now).num_seconds().max(0) as u64,
            session_id: sid,
        })
    }

    /// Starts a session for an authenticated caller (any credential but a session).
    pub async fn create_session(&self, caller: &Caller) -> Result<SessionTokens> {
        self.audited(caller, Action::CreateSession, async |note: &mut Note| {
            self.authorize(caller, Action::CreateSession, None)?;
            if let Credential::Session(_) = caller.credential {
                return Err(Error::invalid(
                    "grant_type",
                    "a session cannot start another; use the refresh token",
                ));
            }
            let now = self.now();
            let sid = Uuid::now_v7();
            note.set("session_id", sid.to_string());
            let refresh = self.new_refresh_token(sid)?;
            // A session lives no longer than the credential that started it (a JWT's `exp`,
            // an API token's expiry): it must not outlast the identity provider's word.
            let mut refresh_expires_at =
                now + chrono::Duration::seconds(self.config.refresh_ttl_secs as i64);
            if let Some(end) = self.credential_end(caller).await? {
                refresh_expires_at = refresh_expires_at.min(end);
            }
            let doc = SessionDoc {
                principal_id: caller.principal.id,
                tenant_id: caller.tenant(),
                refresh_hash: hash_hex(&refresh),
                created_at: now,
                refresh_expires_at,
                revoked_at: None,
                started_with: caller.credential.kind().into(),
                api_token_id: match &caller.credential {
                    crate::Credential::ApiToken(id) => Some(id.clone()),
                    _ => None,
                },
                spent: Vec::new(),
            };
            let audit = self.change_event(caller, Action::CreateSession, note);
            self.store
                .put_record(&session_record(sid, &doc, 1, now)?, None, &audit)
                .await?;
            self.session_tokens(&caller.principal, sid, &refresh, &doc, now)
                .await
        })
        .await
    }

    /// `POST /v1/auth/token` in one call: a refresh grant needs no other credential; a
    /// credential grant needs the caller authenticated.
    pub async fn token_grant(
        &self,
        caller: Option<&Caller>,
        meta: RequestMeta,
        req: SessionRequest,
    ) -> Result<SessionTokens> {
        match req.grant_type.as_deref().unwrap_or(if req.refresh_token.is_some() {
            "refresh_token"
        } else {
            "credential"
        }) {
            "refresh_token" => {
                let t = req.refresh_token.ok_or_else(|| {
                    Error::invalid("refresh_token", "a refresh grant carries the refresh token")
                })?;
                self.refresh_session(&t, meta).await
            }
            "credential" => match caller {
                Some(c) => self.create_session(c).await,
                None => Err(unauthenticated(
                    "a credential grant needs a credential (Authorization header or client certificate)",
                )),
            },
            other => Err(Error::invalid(
                "grant_type",
                format!("{other:?} is not credential or refresh_token"),
            )),
        }
    }

    /// Continues a session: a new access token and a new refresh token; the old refresh
    /// token stops working. Presenting a spent refresh token revokes the session.
    pub async fn refresh_session(&self, refresh: &str, meta: RequestMeta) -> Result<SessionTokens> {
        let ip = meta.source_ip();
        // The record of a refusal names no principal: none is known until the refresh
        // token is. A success's record is the event written with the session's rotation,
        // which names it.
        self.audited_as(
            &meta,
            None,
            Action::RefreshSession,
            async |note: &mut Note| {
                let r = self.rotate_refresh_token(refresh, &meta, note).await;
                if let Err(Error::Unauthenticated { .. }) = &r {
                    self.limits.failed(ip, self.now());
                }
                r
            },
        )
        .await
    }

    /// The refresh itself, for [`Service::refresh_session`], which records it and counts
    /// a refused refresh token against its source address.
    async fn rotate_refresh_token(
        &self,
        refresh: &str,
        meta: &RequestMeta,
        note: &mut Note,
    ) -> Result<SessionTokens> {
        self.admit_source(meta.source_ip())?;
        let sid = refresh
            .strip_prefix(REFRESH_PREFIX)
            .and_then(|r| r.split_once('_'))
            .and_then(|(id, _)| Uuid::parse_str(id).ok())
            .ok_or_else(|| unauthenticated("the refresh token is not valid"))?;
        note.set("session_id", sid.to_string());
        let rec = self
            .store
            .get_record(SESSION, &sid.to_string())
            .await?
            .ok_or_else(|| unauthenticated("the refresh token is not valid"))?;
        let rev = rec.revision;
        let mut doc: SessionDoc = serde_json::from_value(rec.doc).map_err(internal)?;
        let now = self.now();
        if doc.revoked_at.is_some() || doc.refresh_expires_at <= now {
            return Err(unauthenticated(
                "the refresh token is not valid (session expired or revoked)",
            ));
        }
        let presented = hash_hex(refresh);
        let current = constant_time::verify_slices_are_equal(
            presented.as_bytes(),
            doc.refresh_hash.as_bytes(),
        )
        .is_ok();
        let spent = doc.spent.iter().any(|h| {
            constant_time::verify_slices_are_equal(presented.as_bytes(), h.as_bytes()).is_ok()
        });
        if !current && !spent {
            return Err(unauthenticated("the refresh token is not valid"));
        }
        if !current {
            // A spent refresh token came back: someone else may hold the live one.
            doc.revoked_at = Some(now);
            let mut n = Note {
                tenant_id: Some(doc.tenant_id),
                ..Default::default()
            };
            n.set("session_id", sid.to_string());
            n.set("reason", "a spent refresh token was presented again");
            let audit = vec![self.event(meta, None, Action::RevokeSession, &n, Ok(()))];
            self.store
                .put_record(&session_record(sid, &doc, rev + 1, now)?, Some(rev), &audit)
                .await?;
            self.cache.sessions.remove(&sid);
            note.set("reuse_detected", true);
            return Err(unauthenticated(
                "the refresh token was already used; the session is revoked",
            ));
        }
        let p = self
            .store
            .get_principal(doc.principal_id)
            .await?
            .ok_or_else(|| unauthenticated("the refresh token is not valid"))?;
        self.check_active(&p).await?;
        if let Some(id) = &doc.api_token_id {
            // Read from the store, not a cache: a revocation on another node counts.
            let live =
                self.store.get_token(id).await?.is_some_and(|t| {
                    t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > now)
                });
            if !live {
                note.set("api_token_id", id.clone());
                return Err(unauthenticated(
                    "the API token that started this session was revoked or has expired; sign in again",
                ));
            }
        }
        let next = self.new_refresh_token(sid)?;
        let old = std::mem::replace(&mut doc.refresh_hash, hash_hex(&next));
        doc.spent.push(old);
        if doc.spent.len() > SPENT_KEPT {
            doc.spent.remove(0);
        }
        let mut n = note.clone();
        n.set("credential", "refresh_token");
        let audit = vec![self.event(meta, Some(&p), Action::RefreshSession, &n, Ok(()))];
        note.committed = true;
        self.store
            .put_record(&session_record(sid, &doc, rev + 1, now)?, Some(rev), &audit)
            .await
            .map_err(|e| match e {
                Error::Conflict { .. } => unauthenticated("the refresh token was already used"),
                other => other,
            })?;
        self.session_tokens(&p, sid, &next, &doc, now).await
    }

    /// When a session ends at the latest (its refresh expiry).
    pub(crate) async fn session_end(&self, sid: Uuid) -> Result<DateTime<Utc>> {
        let rec = self
            .store
            .get_record(SESSION, &sid.to_string())
            .await?
            .ok_or_else(|| Error::not_found("session", sid.to_string()))?;
        let doc: SessionDoc = serde_json::from_value(rec.doc).map_err(internal)?;
        Ok(doc.refresh_expires_at)
    }

    /// Revokes the caller's session (its access and refresh tokens).
    pub async fn logout(&self, caller: &Caller) -> Result<()> {
        self.audited(caller, Action::Logout, async |note: &mut Note| {
            let Credential::Session(sid) = caller.credential else {
                return Err(Error::invalid(
                    "authorization",
                    "logout ends a session: call it with a session access token",
                ));
            };
            note.set("session_id", sid.to_string());
            let rec = self
                .store
                .get_record(SESSION, &sid.to_string())
                .await?
                .ok_or_else(|| Error::not_found("session", sid.to_string()))?;
            let mut doc: SessionDoc = serde_json::from_value(rec.doc).map_err(internal)?;
            let now = self.now();
            doc.revoked_at.get_or_insert(now);
            let audit = self.change_event(caller, Action::Logout, note);
            self.store
                .put_record(
                    &session_record(sid, &doc, rec.revision + 1, now)?,
                    Some(rec.revision),
                    &audit,
                )
                .await?;
            self.cache.sessions.remove(&sid);
            Ok(())
        })
        .await
    }

    /// Verifies one of Arca's access tokens.
    pub(crate) async fn verify_access_token(
        &self,
        token: &str,
    ) -> Result<(Arc<Principal>, Credential)> {
        let bad = || unauthenticated("the access token is not valid");
        let (signing_input, sig) = token.rsplit_once('.').ok_or_else(bad)?;
        let (header, _) = signing_input.split_once('.').ok_or_else(bad)?;
        let header: serde_json::Value =
            serde_json::from_slice(&b64u().decode(header).map_err(|_| bad())?)
                .map_err(|_| bad())?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("EdDSA") {
            return Err(bad());
        }
        let key = self.session_key().await?;
        let sig = b64u().decode(sig).map_err(|_| bad())?;
        UnparsedPublicKey::new(&signature::ED25519, key.pair.public_key().as_ref())
            .verify(signing_input.as_bytes(), &sig)
            .map_err(|_| bad())?;
        let claims: AccessClaims =
            serde_json::from_value(peek_claims(token).ok_or_else(bad)?).map_err(|_| bad())?;
        if claims.exp <= self.now().timestamp() {
            return Err(unauthenticated(
                "the access token has expired; refresh the session",
            ));
        }
        let sid = Uuid::parse_str(&claims.sid).map_err(|_| bad())?;
        let cached = match self.cache.sessions.get(&sid) {
            Some(c) => c,
            None => {
                let rec = self
                    .store
                    .get_record(SESSION, &sid.to_string())
                    .await?
                    .ok_or_else(bad)?;
                let doc: SessionDoc = serde_json::from_value(rec.doc).map_err(internal)?;
                let p = self
                    .store
                    .get_principal(doc.principal_id)
                    .await?
                    .ok_or_else(bad)?;
                let c = CachedSession {
                    principal: Arc::new(p),
                    revoked: doc.revoked_at.is_some(),
                };
                self.cache.sessions.insert(sid, c.clone());
                c
            }
        };
        if cached.revoked || cached.principal.id.to_string() != claims.sub {
            return Err(unauthenticated(
                "the access token is not valid (session revoked)",
            ));
        }
        Ok((cached.principal, Credential::Session(sid)))
    }

    /// Verifies a JWT of a configured issuer and maps it to its bound principal.
    pub(crate) async fn verify_jwt(&self, token: &str) -> Result<(Arc<Principal>, Credential)> {
        let bad = |why: &str| unauthenticated(&format!("the JWT is not valid: {why}"));
        let v = self.verify_jwt_claims(token, None).await?;
        let (cfg, c, exp) = (v.issuer, v.claims, v.expires);
        let value = match c.get(&cfg.claim) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            _ => return Err(bad(&format!("no {} claim", cfg.claim))),
        };
        // The issuer's tenant, and only its bindings: a JWT never resolves into a tenant the
        // issuer is not assigned to.
        let tenant = self
            .anchor_owner(&format!("jwt:{}", cfg.issuer))
            .await?
            .ok_or_else(|| bad("its issuer is not assigned to any tenant"))?;
        let id = binding_id(BindingKind::Jwt, tenant, Some(&cfg.issuer), &value);
        let p = self
            .bound_principal(&id)
            .await?
            .filter(|p| p.tenant_id == tenant)
            .ok_or_else(|| bad("no principal is bound to this identity"))?;
        Ok((
            p,
            Credential::Jwt(cfg.issuer.clone(), DateTime::from_timestamp(exp, 0)),
        ))
    }

    /// The one JWT verifier: the token's issuer must be a configured one (and `only`, when
    /// given: a door that trusts one issuer accepts no other), its algorithm on that
    /// issuer's allow-list (never `none`, never HMAC), its signature good under the issuer's
    /// JWKS, `iss` and `aud` the configured ones, `exp` in the future and `nbf` (if any) in
    /// the past on the service clock. Every door that accepts JWTs calls this: the REST
    /// door's bearer JWTs, and the end-user tokens of the delegated doors (Microsoft DKE,
    /// Google Workspace CSE), so that there is one place where a JWT is judged.
    pub(crate) async fn verify_jwt_claims(
        &self,
        token: &str,
        only: Option<&str>,
    ) -> Result<VerifiedJwt<'_>> {
        let bad = |why: &str| unauthenticated(&format!("the JWT is not valid: {why}"));
        let claims = peek_claims(token).ok_or_else(|| bad("malformed"))?;
        let iss = claims
            .get("iss")
            .and_then(|v| v.as_str())
            .ok_or_else(|| bad("no iss claim"))?;
        if only.is_some_and(|o| o != iss) {
            return Err(bad("wrong issuer"));
        }
        let cfg = self
            .config
            .jwt_issuers
            .iter()
            .find(|i| i.issuer == iss)
            .ok_or_else(|| bad("unknown issuer"))?;
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| bad("malformed or unsupported header (alg none is never accepted)"))?;
        let alg_name = format!("{:?}", header.alg);
        if alg_name.starts_with("HS") || !cfg.algorithms.contains(&alg_name) {
            return Err(bad(&format!(
                "algorithm {alg_name} is not allowed for this issuer"
            )));
        }
        let jwk = self.jwk_for(cfg, header.kid.as_deref()).await?;
        let key =
            jsonwebtoken::DecodingKey::from_jwk(&jwk).map_err(|_| bad("unusable key in JWKS"))?;
        let mut v = jsonwebtoken::Validation::new(header.alg);
        v.set_issuer(&[&cfg.issuer]);
        v.set_audience(&[&cfg.audience]);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.required_spec_claims = ["iss", "aud", "exp"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let data = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            match e.kind() {
                ErrorKind::InvalidAudience => bad("wrong audience"),
                ErrorKind::InvalidIssuer => bad("wrong issuer"),
                ErrorKind::InvalidSignature => bad("bad signature"),
                ErrorKind::MissingRequiredClaim(c) => bad(&format!("no {c} claim")),
                ErrorKind::InvalidAlgorithm => bad("algorithm does not match the key"),
                _ => bad("does not verify"),
            }
        })?;
        let now = self.now().timestamp();
        let c = data.claims;
        let exp = c
            .get("exp")
            .and_then(|v| v.as_i64())
            .ok_or_else(|| bad("exp is not a number"))?;
        if exp <= now {
            return Err(bad("expired"));
        }
        if let Some(nbf) = c.get("nbf") {
            if nbf.as_i64().is_none_or(|n| n > now) {
                return Err(bad("not yet valid (nbf)"));
            }
        }
        Ok(VerifiedJwt {
            issuer: cfg,
            claims: c,
            expires: exp,
        })
    }

    async fn jwk_for(&self, cfg: &JwtIssuer, kid: Option<&str>) -> Result<jsonwebtoken::jwk::Jwk> {
        let mut sets = self.jwks.sets.lock().await;
        let pick = |set: &jsonwebtoken::jwk::JwkSet| match kid {
            Some(k) => set.find(k).cloned(),
            None if set.keys.len() == 1 => set.keys.first().cloned(),
            None => None,
        };
        // On the service clock, so that tests move time instead of sleeping.
        let now = self.now();
        if let Some((set, at)) = sets.get(&cfg.issuer) {
            let age = now - *at;
            let fresh = age < chrono::Duration::seconds(600);
            if let Some(k) = pick(set).filter(|_| fresh) {
                return Ok(k);
            }
            if age < chrono::Duration::seconds(60) {
                return Err(unauthenticated("the JWT is not valid: unknown key id"));
            }
        }
        let set = load_jwks(cfg).await?;
        let k = pick(&set);
        sets.insert(cfg.issuer.clone(), (set, now));
        k.ok_or_else(|| unauthenticated("the JWT is not valid: unknown key id"))
    }

    /// Authenticates by the connection's client certificate: its fingerprint, subject or
    /// one of its SANs must be bound to a principal.
    /// The principal a request's client certificate is bound to, if it is: for the record
    /// of a refusal a door made before any operation (which names the caller when it can).
    pub async fn certificate_principal(&self, meta: &RequestMeta) -> Option<Arc<Principal>> {
        meta.client_cert.as_ref()?;
        self.authenticate_certificate(meta.clone())
            .await
            .ok()
            .map(|c| c.principal)
    }

    pub async fn authenticate_certificate(&self, meta: RequestMeta) -> Result<Caller> {
        let ip = meta.source_ip();
        let r = async {
            self.admit_source(ip)?;
            let cert = meta.client_cert.clone().ok_or_else(|| {
                unauthenticated("no credential: send a bearer token or a client certificate")
            })?;
            // A certificate seen before resolves in one lookup (KMIP clients present theirs
            // on every request); creating or deleting a binding forgets these.
            let resolved = format!("resolved-certificate:{}", cert.fingerprint);
            if let Some(p) = self.cache.bindings.get(&resolved) {
                return Ok((p, Credential::Certificate(cert.fingerprint.clone())));
            }
            // The CA that signed it decides the one tenant it can authenticate into.
            let anchor = cert.issuer_anchor.as_deref().ok_or_else(|| {
                unauthenticated("the client certificate is not signed by a CA the server knows")
            })?;
            let tenant = self
                .anchor_owner(&format!("ca:{anchor}"))
                .await?
                .ok_or_else(|| {
                    unauthenticated("the client certificate's CA is not assigned to any tenant")
                })?;
            let mut ids = vec![
                binding_id(BindingKind::CertificateFingerprint, tenant, None, &cert.fingerprint),
                binding_id(BindingKind::CertificateSubject, tenant, None, &cert.subject),
            ];
            for v in cert
                .san_dns
                .iter()
                .chain(&cert.san_uri)
                .chain(&cert.san_email)
                .chain(&cert.san_ip)
            {
                ids.push(binding_id(BindingKind::CertificateSan, tenant, None, v));
            }
            // Every binding it matches: one principal, or none at all.
            let mut found: Vec<Arc<Principal>> = vec![];
            for id in ids {
                if let Some(p) = self.bound_principal(&id).await? {
                    if p.tenant_id == tenant && !found.iter().any(|f| f.id == p.id) {
                        found.push(p);
                    }
                }
            }
            match found.len() {
                0 => Err(unauthenticated(
                    "the client certificate is not bound to any principal",
                )),
                1 => {
                    let p = found.remove(0);
                    self.cache.bindings.insert(resolved, p.clone());
                    Ok((p, Credential::Certificate(cert.fingerprint.clone())))
                }
                _ => Err(unauthenticated(&format!(
                    "the client certificate matches bindings to several principals ({}): a tenant-admin must remove all but one",
                    found
                        .iter()
                        .map(|p| p.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))),
            }
        }
        .await;
        self.admit(r, meta, ip).await
    }
}

fn session_record(sid: Uuid, doc: &SessionDoc, revision: i64, at: DateTime<Utc>) -> Result<Record> {
    Ok(Record {
        kind: SESSION.into(),
        id: sid.to_string(),
        tenant_id: Some(doc.tenant_id),
        revision,
        doc: serde_json::to_value(doc).map_err(internal)?,
        updated_at: at,
    })
}

async fn load_jwks(cfg: &JwtIssuer) -> Result<jsonwebtoken::jwk::JwkSet> {
    let unavailable = |m: String| Error::Unavailable { message: m };
    let bytes = match (&cfg.jwks_file, &cfg.jwks_url) {
        (Some(f), _) => tokio::fs::read(f).await.map_err(|e| {
            unavailable(format!("JWKS file {} of {}: {e}", f.display(), cfg.issuer))
        })?,
        (None, Some(u)) => {
            let client = reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .map_err(internal)?;
            let resp = client
                .get(u)
                .send()
                .await
                .map_err(|e| unavailable(format!("JWKS of {}: {e}", cfg.issuer)))?;
            if !resp.status().is_success() {
                return Err(unavailable(format!(
                    "JWKS of {}: HTTP {}",
                    cfg.issuer,
                    resp.status()
                )));
            }
            resp.bytes()
                .await
                .map_err(|e| unavailable(format!("JWKS of {}: {e}", cfg.issuer)))?
                .to_vec()
        }
        (None, None) => {
            return Err(unavailable(format!(
                "issuer {} has no jwks_file or jwks_url",
                cfg.issuer
            )))
        }
    };
    serde_json::from_slice(&bytes).map_err(|e| unavailable(format!("JWKS of {}: {e}", cfg.issuer)))
}
