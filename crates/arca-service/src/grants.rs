//! Grants (AWS KMS's CreateGrant / ListGrants / RetireGrant / RevokeGrant), mapped onto key
//! policies: a grant is an ALLOW statement of the key's policy that carries a
//! [`GrantInfo`]. It is enforced exactly like any other statement (one authorization rule),
//! versioned and audited with the policy, and visible in the policy over REST. Creating or
//! revoking one writes a new policy version.

use arca_core::Action;
use std::collections::BTreeMap;

use arca_core::access::{self, Conditions, Effect, GrantInfo, KeyPolicy, Statement};
use arca_core::{Error, Result};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::approvals::Pending;
use crate::{Caller, Note, Service};

/// The operations a grant may allow (AWS's `GrantOperation` names, which are Arca's).
pub const GRANT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
];

/// Creates a grant on a key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateGrantRequest {
    /// Who the grant is for: `principal:<id or name>`, `group:<name>` or `role:<role>`.
    pub grantee: String,
    pub operations: Vec<String>,
    /// Who else may retire it (a subject as above).
    #[serde(default)]
    pub retiring_principal: Option<String>,
    /// The request's encryption context must hold these pairs (AWS's
    /// `EncryptionContextSubset`).
    #[serde(default)]
    pub encryption_context_subset: BTreeMap<String, String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// A grant as listed.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Grant {
    pub grant_id: String,
    pub key_id: Uuid,
    pub grantee: String,
    pub operations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retiring_principal: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub encryption_context_subset: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub created_by: String,
}

fn grant_of(key: Uuid, s: &Statement) -> Option<Grant> {
    let g = s.grant.as_ref()?;
    Some(Grant {
        grant_id: g.id.clone(),
        key_id: key,
        grantee: s.principals.first().cloned().unwrap_or_default(),
        operations: s.actions.clone(),
        retiring_principal: g.retiring_principal.clone(),
        encryption_context_subset: s.conditions.encryption_context.clone(),
        name: g.name.clone(),
        created_at: g.created_at,
        created_by: g.created_by.clone(),
    })
}

/// True if `subject` (`principal:<id or name>`) names the caller.
fn names_caller(subject: &str, caller: &Caller) -> bool {
    subject
        .strip_prefix("principal:")
        .is_some_and(|p| p == caller.principal.name || p == caller.principal.id.to_string())
}

impl Service {
    /// Adds a grant to a key's policy.
    pub async fn create_grant(
        &self,
        caller: &Caller,
        reference: &str,
        req: CreateGrantRequest,
    ) -> Result<Grant> {
        self.audited(caller, Action::CreateGrant, async |note: &mut Note| {
            let (key, versions) = self.fresh(caller, reference).await?;
            note.key(key.id);
            self.authorize(caller, Action::CreateGrant, Some(&key))?;
            if req.grantee == "*" {
                return Err(Error::invalid(
                    "grantee",
                    "a grant is for one grantee, not *",
                ));
            }
            if req.operations.is_empty() {
                return Err(Error::invalid("operations", "name at least one operation"));
            }
            if let Some(op) = req
                .operations
                .iter()
                .find(|o| !GRANT_OPERATIONS.contains(&o.as_str()))
            {
                return Err(Error::invalid(
                    "operations",
                    format!("{op} is not an operation a grant can allow"),
                ));
            }
            if let Some(n) = &req.name {
                if n.is_empty() || n.len() > 256 {
                    return Err(Error::invalid("name", "1 to 256 characters"));
                }
            }
            let id: String = self
                .crypto
                .random(32)?
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let now = self.now();
            let statement = Statement {
                sid: Some(format!("grant-{}", &id[..16])),
                effect: Effect::Allow,
                principals: vec![req.grantee.clone()],
                actions: req.operations.clone(),
                conditions: Conditions {
                    encryption_context: req.encryption_context_subset.clone(),
                    ..Default::default()
                },
                grant: Some(GrantInfo {
                    id: id.clone(),
                    name: req.name.clone(),
                    retiring_principal: req.retiring_principal.clone(),
                    created_at: now,
                    created_by: caller.actor(),
                }),
            };
            let mut statements = key.policy.statements.clone();
            statements.push(statement.clone());
            access::validate_statements("grant", &statements)?;
            if let Some(r) = &req.retiring_principal {
                access::validate_statements(
                    "retiring_principal",
                    &[Statement {
                        principals: vec![r.clone()],
                        ..statement.clone()
                    }],
                )?;
            }
            note.set("grant_id", id.clone());
            let candidate = KeyPolicy {
                version: key.policy.version + 1,
                statements,
                updated_by: Some(caller.actor()),
                updated_at: Some(now),
            };
            let key_id = key.id;
            self.commit_policy(
                caller,
                key,
                &versions,
                candidate,
                Action::CreateGrant,
                format!("grant {id} to {}", req.grantee),
                note,
                || Pending::CreateGrant {
                    key: key_id,
                    req: req.clone(),
                },
            )
            .await?;
            grant_of(key_id, &statement).ok_or_else(|| Error::internal("a grant without its info"))
        })
        .await
    }

    /// The grants of a key.
    pub async fn list_grants(&self, caller: &Caller, reference: &str) -> Result<Vec<Grant>> {
        self.audited(caller, Action::ListGrants, async |note: &mut Note| {
            let (key, _) = self.fresh(caller, reference).await?;
            note.key(key.id);
            self.authorize(caller, Action::ListGrants, Some(&key))?;
            Ok(key
                .policy
                .statements
                .iter()
                .filter_map(|s| grant_of(key.id, s))
                .collect())
        })
        .await
    }

    /// Removes a grant. `retire`: the grantee or the retiring principal may do it without
    /// any other permission (AWS's RetireGrant); otherwise `RevokeGrant` (or `RetireGrant`)
    /// must be allowed on the key.
    pub async fn remove_grant(
        &self,
        caller: &Caller,
        reference: &str,
        grant_id: &str,
        retire: bool,
    ) -> Result<Grant> {
        let action = if retire {
            Action::RetireGrant
        } else {
            Action::RevokeGrant
        };
        self.audited(caller, action, async |note: &mut Note| {
            note.set("grant_id", grant_id);
            let (key, versions) = self.fresh(caller, reference).await?;
            note.key(key.id);
            let Some(pos) = key
                .policy
                .statements
                .iter()
                .position(|s| s.grant.as_ref().is_some_and(|g| g.id == grant_id))
            else {
                // Not found, and not "forbidden": the caller may not see the policy.
                return Err(Error::not_found("grant", grant_id));
            };
            let grant = grant_of(key.id, &key.policy.statements[pos])
                .ok_or_else(|| Error::internal("a grant without its info"))?;
            let own = retire
                && (names_caller(&grant.grantee, caller)
                    || grant
                        .retiring_principal
                        .as_deref()
                        .is_some_and(|r| names_caller(r, caller)));
            if !own {
                self.authorize(caller, action, Some(&key))?;
            }
            let mut statements = key.policy.statements.clone();
            statements.remove(pos);
            let candidate = KeyPolicy {
                version: key.policy.version + 1,
                statements,
                updated_by: Some(caller.actor()),
                updated_at: Some(self.now()),
            };
            let key_id = key.id;
            self.commit_policy(
                caller,
                key,
                &versions,
                candidate,
                action,
                format!(
                    "grant {grant_id} {}",
                    if retire { "retired" } else { "revoked" }
                ),
                note,
                || Pending::RemoveGrant {
                    key: key_id,
                    grant_id: grant_id.to_string(),
                    retire,
                },
            )
            .await?;
            Ok(grant)
        })
        .await
    }
}
