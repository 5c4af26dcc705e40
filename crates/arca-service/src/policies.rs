//! Key policies: the statements that say who may do what with one key, versioned, changed
//! only through the quorum gate and rolled back to an earlier version, each version kept as
//! a record written in the same transaction as the key.

use arca_core::Action;

use arca_core::access::{self, KeyPolicy, Statement};
use arca_core::{Error, Result};
use arca_store::Record;
use uuid::Uuid;

use crate::api::*;
use crate::approvals::Pending;
use crate::{Caller, Note, Service};

/// The record kind of key policy versions.
pub(crate) const POLICY: &str = "key-policy";

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
}
