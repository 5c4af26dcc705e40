//! AWS-style access key pairs and Signature Version 4 authentication.
//!
//! SigV4 is a shared-secret scheme: the server recomputes the client's HMAC, so it must be
//! able to read the secret access key. Arca keeps it sealed under the principal's tenant KEK
//! (AES-256-GCM, the AAD naming the tenant and the access key id) in a `aws-credential`
//! record, never in plain form at rest, and only the service ever opens it: a protocol
//! adapter hands over the string to sign and the signature, and gets back a [`Caller`] or a
//! refusal, never the secret.

use arca_core::Action;
use std::sync::Arc;

use arca_core::model::Principal;
use arca_core::{Error, Result};
use arca_store::Record;
use aws_lc_rs::{constant_time, hmac};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;
use zeroize::Zeroizing;

use crate::api::{AwsCredentialCreated, AwsCredentialInfo, AwsCredentialList, CreateTokenRequest};
use crate::approvals::Pending;
use crate::{Actor, Caller, Credential, Note, RequestMeta, Service};

/// The record family of access key pairs.
pub(crate) const AWS_CREDENTIAL: &str = "aws-credential";

/// Access key ids start with this (AWS's own start with `AKIA`), so that they are
/// recognisable in logs and by secret scanners.
pub const ACCESS_KEY_PREFIX: &str = "ARCA";

/// The stored form of an access key pair.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredCredential {
    access_key_id: String,
    principal_id: Uuid,
    name: String,
    /// The secret access key sealed under the tenant KEK (base64).
    sealed_secret: String,
    created_at: DateTime<Utc>,
    expires_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

impl StoredCredential {
    fn info(&self) -> AwsCredentialInfo {
        AwsCredentialInfo {
            access_key_id: self.access_key_id.clone(),
            principal_id: self.principal_id,
            name: self.name.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
        }
    }
}

/// An opened credential, cached so that a signed request does not read the store.
#[derive(Clone)]
pub struct CachedAwsCredential {
    stored: Arc<StoredCredential>,
    revision: i64,
    tenant: Uuid,
    principal: Arc<Principal>,
    secret: Arc<Zeroizing<Vec<u8>>>,
}

/// What a SigV4 request proves: the adapter builds the canonical request and the string to
/// sign from the HTTP request (see `arca-server`'s `sigv4` module); the service checks the
/// signature with the secret only it can open.
#[derive(Debug, Clone)]
pub struct SigV4Proof {
    pub access_key_id: String,
    /// The credential scope's date, `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
    pub string_to_sign: String,
    /// The `Signature=` value, lowercase hex.
    pub signature: String,
}

fn label(tenant: Uuid, access_key_id: &str) -> Vec<u8> {
    let mut l = b"arca/aws-credential/v1/".to_vec();
    l.extend_from_slice(tenant.as_bytes());
    l.extend_from_slice(access_key_id.as_bytes());
    l
}

fn record(c: &StoredCredential, tenant: Uuid, revision: i64, at: DateTime<Utc>) -> Result<Record> {
    Ok(Record {
        kind: AWS_CREDENTIAL.into(),
        id: c.access_key_id.clone(),
        tenant_id: Some(tenant),
        revision,
        doc: serde_json::to_value(c).map_err(|e| Error::internal(e.to_string()))?,
        updated_at: at,
    })
}

fn from_record(r: &Record) -> Result<StoredCredential> {
    serde_json::from_value(r.doc.clone())
        .map_err(|e| Error::internal(format!("stored credential does not decode: {e}")))
}

/// The refusal of a signature that does not match (AWS's InvalidSignatureException).
pub const SIGNATURE_MISMATCH: &str = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.";

/// The refusal of an access key id that names no credential (AWS's
/// UnrecognizedClientException).
pub const UNKNOWN_ACCESS_KEY: &str = "The security token included in the request is invalid.";

fn unknown() -> Error {
    Error::Unauthenticated {
        message: UNKNOWN_ACCESS_KEY.into(),
    }
}

/// True if `id` has the shape of an Arca access key id (checked before any store read).
pub fn is_access_key_id(id: &str) -> bool {
    id.len() == 20
        && id.starts_with(ACCESS_KEY_PREFIX)
        && id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

/// SigV4's signing key: HMAC chain over the scope, starting from `"AWS4" + secret`.
fn signing_key(secret: &[u8], date: &str, region: &str, service: &str) -> hmac::Key {
    let mut k0 = Zeroizing::new(Vec::with_capacity(4 + secret.len()));
    k0.extend_from_slice(b"AWS4");
    k0.extend_from_slice(secret);
    let mut k = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &k0), date.as_bytes());
    for part in [region.as_bytes(), service.as_bytes(), b"aws4_request"] {
        k = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()), part);
    }
    hmac::Key::new(hmac::HMAC_SHA256, k.as_ref())
}

/// The SigV4 signature of `string_to_sign`, lowercase hex. Public so that tests and tools
/// sign the way the verifier checks.
pub fn sigv4_signature(
    secret: &[u8],
    date: &str,
    region: &str,
    service: &str,
    string_to_sign: &str,
) -> String {
    let tag = hmac::sign(
        &signing_key(secret, date, region, service),
        string_to_sign.as_bytes(),
    );
    tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// SigV4's hash of a payload or of a canonical request: SHA-256, lowercase hex. Public so
/// that the protocol adapter, which builds the string to sign, hashes nothing itself.
pub fn sigv4_hash(data: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, data);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

impl Service {
    /// Issues an access key pair for a principal of the caller's tenant. As with API
    /// tokens, a principal may make its own; making one for someone else is identity
    /// administration (action `CreateApiToken`, which a quorum rule can gate).
    pub async fn create_aws_credential(
        &self,
        caller: &Caller,
        principal: &str,
        req: CreateTokenRequest,
    ) -> Result<AwsCredentialCreated> {
        self.audited(
            caller,
            Action::CreateAwsCredential,
            async |note: &mut Note| {
                let (p, name, expires_at) = self
                    .credential_for(caller, principal, &req, "aws", |id, req| {
                        Pending::CreateAwsCredential { principal: id, req }
                    })
                    .await?;
                let created = self
                    .issue_aws_credential(&p, &name, expires_at, &Actor::Caller(caller), note)
                    .await?;
                note.committed = true;
                Ok(created)
            },
        )
        .await
    }

    /// Makes and stores an access key pair (the secret sealed under the tenant KEK).
    pub(crate) async fn issue_aws_credential(
        &self,
        p: &Principal,
        name: &str,
        expires_at: Option<DateTime<Utc>>,
        by: &Actor<'_>,
        note: &mut Note,
    ) -> Result<AwsCredentialCreated> {
        const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
        let id_bytes = self.crypto.random(16)?;
        let access_key_id: String = ACCESS_KEY_PREFIX
            .chars()
            .chain(id_bytes.iter().map(|b| BASE32[(b & 31) as usize] as char))
            .collect();
        // 256 bits, 44 base64 characters: what the XKS proxy spec asks of its secrets.
        let raw = self.crypto.random(32)?;
        let secret = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&raw[..]));
        let kek = self.tenant_kek(p.tenant_id).await?;
        let sealed = arca_crypto::wrap::seal_labeled(
            &kek,
            &label(p.tenant_id, &access_key_id),
            secret.as_bytes(),
        )?;
        let now = self.now();
        let stored = StoredCredential {
            access_key_id: access_key_id.clone(),
            principal_id: p.id,
            name: name.to_string(),
            sealed_secret: base64::engine::general_purpose::STANDARD.encode(sealed),
            created_at: now,
            expires_at,
            revoked_at: None,
            last_used_at: None,
        };
        note.tenant_id = Some(p.tenant_id);
        note.set("access_key_id", access_key_id.clone());
        note.set("for_principal", format!("{}:{}", p.name, p.id));
        let audit = self.event_by(by, Action::CreateAwsCredential, note);
        self.store
            .put_record(&record(&stored, p.tenant_id, 1, now)?, None, &audit)
            .await?;
        Ok(AwsCredentialCreated {
            access_key_id,
            secret_access_key: secret.to_string(),
            principal_id: p.id,
            name: name.to_string(),
            expires_at,
        })
    }

    /// Access key pairs of the caller's tenant (of one principal if given); never secrets.
    pub async fn list_aws_credentials(
        &self,
        caller: &Caller,
        principal: Option<&str>,
    ) -> Result<AwsCredentialList> {
        self.audited(caller, Action::ListAwsCredentials, async |_: &mut Note| {
            let pid = match principal {
                Some(p) => Some(self.principal_by_ref(caller, p).await?.id),
                None => None,
            };
            if pid != Some(caller.principal.id) {
                self.authorize(caller, Action::ListApiTokens, None)?;
            }
            let mut out = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = self
                    .store
                    .list_records(
                        AWS_CREDENTIAL,
                        Some(caller.tenant()),
                        "",
                        after.as_deref(),
                        500,
                    )
                    .await?;
                let done = page.len() < 500;
                after = page.last().map(|r| r.id.clone());
                for r in &page {
                    let c = from_record(r)?;
                    if pid.is_none_or(|p| p == c.principal_id) {
                        out.push(c.info());
                    }
                }
                if done {
                    break;
                }
            }
            Ok(AwsCredentialList { credentials: out })
        })
        .await
    }

    /// Revokes an access key pair: tenant-admins any of their tenant, everyone their own.
    /// Requests signed with it are refused from then on (this node at once, others within
    /// the cache lifetime).
    pub async fn revoke_aws_credential(
        &self,
        caller: &Caller,
        access_key_id: &str,
    ) -> Result<AwsCredentialInfo> {
        self.audited(
            caller,
            Action::RevokeAwsCredential,
            async |note: &mut Note| {
                note.set("access_key_id", access_key_id);
                let rec = self
                    .store
                    .get_record(AWS_CREDENTIAL, access_key_id)
                    .await?
                    .filter(|r| r.tenant_id == Some(caller.tenant()))
                    .ok_or_else(|| Error::not_found("credential", access_key_id))?;
                let mut c = from_record(&rec)?;
                if c.principal_id != caller.principal.id {
                    self.authorize(caller, Action::RevokeApiToken, None)?;
                }
                if c.revoked_at.is_none() {
                    let now = self.now();
                    c.revoked_at = Some(now);
                    let audit = self.change_event(caller, Action::RevokeAwsCredential, note);
                    self.store
                        .put_record(
                            &record(&c, caller.tenant(), rec.revision + 1, now)?,
                            Some(rec.revision),
                            &audit,
                        )
                        .await?;
                }
                self.cache
                    .aws_credentials
                    .remove(&access_key_id.to_string());
                Ok(c.info())
            },
        )
        .await
    }

    /// Authenticates a SigV4-signed request. The adapter has checked the request's shape
    /// (the scope's service and region, the date within the allowed skew, the body hash);
    /// this finds the access key, opens its secret and compares signatures in constant
    /// time. Failures are audited and rate-limited like every authentication.
    pub async fn authenticate_sigv4(
        &self,
        proof: &SigV4Proof,
        meta: RequestMeta,
    ) -> Result<Caller> {
        let ip = meta.source_ip();
        let r = async {
            self.admit_source(ip)?;
            if !is_access_key_id(&proof.access_key_id) {
                return Err(unknown());
            }
            let c = self.aws_credential(&proof.access_key_id).await?;
            let expected = sigv4_signature(
                &c.secret,
                &proof.date,
                &proof.region,
                &proof.service,
                &proof.string_to_sign,
            );
            if constant_time::verify_slices_are_equal(
                expected.as_bytes(),
                proof.signature.to_ascii_lowercase().as_bytes(),
            )
            .is_err()
            {
                return Err(Error::Unauthenticated {
                    message: SIGNATURE_MISMATCH.into(),
                });
            }
            let now = self.now();
            if c.stored.revoked_at.is_some() || c.stored.expires_at.is_some_and(|e| e <= now) {
                return Err(Error::Unauthenticated {
                    message: "the access key is expired or revoked".into(),
                });
            }
            if crate::identity::touch_due(c.stored.last_used_at, now) {
                self.touch_aws_credential(&c, now);
            }
            Ok((
                c.principal.clone(),
                Credential::AwsAccessKey(proof.access_key_id.clone()),
            ))
        }
        .await;
        self.admit(r, meta, ip).await
    }

    /// When an access key stops working (`None`: never).
    pub(crate) async fn aws_credential_end(
        &self,
        access_key_id: &str,
    ) -> Result<Option<DateTime<Utc>>> {
        Ok(self.aws_credential(access_key_id).await?.stored.expires_at)
    }

    /// The credential with its secret opened, through the cache.
    async fn aws_credential(&self, access_key_id: &str) -> Result<CachedAwsCredential> {
        if let Some(c) = self.cache.aws_credentials.get(&access_key_id.to_string()) {
            return Ok(c);
        }
        let rec = self
            .store
            .get_record(AWS_CREDENTIAL, access_key_id)
            .await?
            .ok_or_else(unknown)?;
        let tenant = rec
            .tenant_id
            .ok_or_else(|| Error::internal("a credential record without a tenant"))?;
        let stored = from_record(&rec)?;
        let principal = self
            .store
            .get_principal(stored.principal_id)
            .await?
            .ok_or_else(unknown)?;
        let sealed = base64::engine::general_purpose::STANDARD
            .decode(&stored.sealed_secret)
            .map_err(|_| Error::internal("a credential's sealed secret does not decode"))?;
        let kek = self.tenant_kek(tenant).await?;
        let secret = arca_crypto::wrap::open_labeled(&kek, &label(tenant, access_key_id), &sealed)?;
        let c = CachedAwsCredential {
            stored: Arc::new(stored),
            revision: rec.revision,
            tenant,
            principal: Arc::new(principal),
            secret: Arc::new(secret),
        };
        self.cache
            .aws_credentials
            .insert(access_key_id.to_string(), c.clone());
        Ok(c)
    }

    /// Records a credential's last use, at most once a minute, off the request path.
    fn touch_aws_credential(&self, c: &CachedAwsCredential, now: DateTime<Utc>) {
        let mut stored = (*c.stored).clone();
        stored.last_used_at = Some(now);
        let mut fresh = c.clone();
        fresh.stored = Arc::new(stored.clone());
        fresh.revision = c.revision + 1;
        self.cache
            .aws_credentials
            .insert(stored.access_key_id.clone(), fresh);
        let store = self.store.clone();
        let (tenant, revision) = (c.tenant, c.revision);
        tokio::spawn(async move {
            let r = match record(&stored, tenant, revision + 1, now) {
                Ok(r) => store.put_record(&r, Some(revision), &[]).await,
                Err(e) => Err(e),
            };
            if let Err(e) = r {
                // A concurrent revocation wins; the next use records the time again.
                tracing::debug!(error = %e, "could not record an access key's last use");
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of AWS's SigV4 documentation ("Examples of how to derive a
    /// signing key"): secret `wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY`, 20120215,
    /// us-east-1, iam.
    #[test]
    fn signing_key_matches_the_documented_example() {
        let k = signing_key(
            b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            "20120215",
            "us-east-1",
            "iam",
        );
        // The signing key itself is not exposed by aws-lc-rs; recompute it the long way.
        let mut k0 = b"AWS4".to_vec();
        k0.extend_from_slice(b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY");
        let mut d = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &k0), b"20120215")
            .as_ref()
            .to_vec();
        for part in [&b"us-east-1"[..], b"iam", b"aws4_request"] {
            d = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &d), part)
                .as_ref()
                .to_vec();
        }
        let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
        );
        assert_eq!(
            hmac::sign(&k, b"x").as_ref(),
            hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &d), b"x").as_ref()
        );
    }

    #[test]
    fn access_key_id_shape() {
        assert!(is_access_key_id("ARCAABCDEFGHIJ234567"));
        assert!(!is_access_key_id("AKIAABCDEFGHIJ234567"));
        assert!(!is_access_key_id("ARCAabcdefghij234567"));
        assert!(!is_access_key_id("ARCA1"));
    }
}
