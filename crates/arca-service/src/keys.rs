//! Key administration: create and import, describe, list, update, aliases, rotation, the
//! lifecycle moves, history.

use arca_core::Action;
use std::collections::BTreeMap;

use arca_core::audit::AuditEvent;
use arca_core::lifecycle::{
    self, Transition, DEFAULT_DESTRUCTION_WAIT_DAYS, DESTRUCTION_WAIT_DAYS,
};
use arca_core::model::{DeactivationReason, Key, KeyEvent, KeyState, KeyUsage, KeyVersion, Origin};
use arca_core::names::{normalize_alias, validate_description, validate_name, validate_tags};
use arca_core::{Error, Result, StateDetail};
use arca_crypto::KeyMaterial;
use arca_store::{KeyFilter, KeyWrite, MaterialChange, VersionWrite};
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::api::*;

/// The name of a key version where a provider keeps keys itself (an HSM token object's
/// label): stable, so that destruction finds what generation made.
pub(crate) fn version_label(key: Uuid, version: u32) -> String {
    format!("arca:{key}:v{version}")
}
use crate::{Caller, Note, Service};

/// Longest serialized `meta` document.
const MAX_META_BYTES: usize = 16 * 1024;
/// Bounds of the automatic rotation period.
const ROTATION_DAYS: std::ops::RangeInclusive<u32> = 1..=3650;

/// A lifecycle move requested by a caller, of a key or of one version.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleAction {
    Activate,
    Suspend,
    Resume,
    Deactivate(DeactivationReason),
    ReportCompromise,
    Archive,
    Recover,
    ScheduleDestruction {
        pending_window_days: Option<u32>,
        /// An ACTIVE key is suspended in the same change first (AWS's ScheduleKeyDeletion:
        /// a key pending deletion is unusable, and stays disabled if the deletion is
        /// cancelled). Without it an active key must be suspended or deactivated first.
        suspend_if_active: bool,
    },
    CancelDestruction,
    /// Destruction as soon as the tenant allows: at once when its
    /// `min_destruction_window_days` is 0, else scheduled with that window. KMIP's Destroy.
    Destroy,
}

impl LifecycleAction {
    /// The operation's name in audit and history (the REST route's last segment).
    pub fn name(&self) -> &'static str {
        match self {
            LifecycleAction::Activate => "activate",
            LifecycleAction::Suspend => "suspend",
            LifecycleAction::Resume => "resume",
            LifecycleAction::Deactivate(_) => "deactivate",
            LifecycleAction::ReportCompromise => "report-compromise",
            LifecycleAction::Archive => "archive",
            LifecycleAction::Recover => "recover",
            LifecycleAction::ScheduleDestruction { .. } => "schedule-destruction",
            LifecycleAction::CancelDestruction => "cancel-destruction",
            LifecycleAction::Destroy => "destroy",
        }
    }

    /// The state move this action makes, for the five that move the state.
    fn transition(&self) -> Option<Transition> {
        Some(match self {
            LifecycleAction::Activate => Transition::Activate,
            LifecycleAction::Resume => Transition::Resume,
            LifecycleAction::Suspend => Transition::Suspend,
            LifecycleAction::Deactivate(r) => Transition::Deactivate(*r),
            LifecycleAction::ReportCompromise => Transition::ReportCompromise,
            _ => return None,
        })
    }

    pub(crate) fn audit_action(&self) -> Action {
        match self {
            LifecycleAction::Activate => Action::ActivateKey,
            LifecycleAction::Suspend => Action::SuspendKey,
            LifecycleAction::Resume => Action::ResumeKey,
            LifecycleAction::Deactivate(_) => Action::DeactivateKey,
            LifecycleAction::ReportCompromise => Action::ReportKeyCompromise,
            LifecycleAction::Archive => Action::ArchiveKey,
            LifecycleAction::Recover => Action::RecoverKey,
            LifecycleAction::ScheduleDestruction { .. } | LifecycleAction::Destroy => {
                Action::ScheduleKeyDestruction
            }
            LifecycleAction::CancelDestruction => Action::CancelKeyDestruction,
        }
    }
}

/// The waiting period of a scheduled destruction, checked against its upper bound (the
/// tenant's minimum is applied by [`Service::resolve_destruction`], which also fills in the
/// default).
fn destruction_window(days: Option<u32>) -> Result<u32> {
    let days = days.unwrap_or(DEFAULT_DESTRUCTION_WAIT_DAYS);
    if days > *DESTRUCTION_WAIT_DAYS.end() {
        return Err(Error::invalid(
            "pending_window_days",
            format!("must be at most {}", DESTRUCTION_WAIT_DAYS.end()),
        ));
    }
    Ok(days)
}

pub(crate) fn version_info(key: &Key, v: &KeyVersion) -> VersionInfo {
    VersionInfo {
        version: v.version,
        state: v.state,
        deactivation_reason: v.deactivation_reason,
        archived: v.archived,
        primary: v.version == key.primary_version,
        created_at: v.created_at,
        destroy_after: v.destroy_after,
        destroyed_at: v.destroyed_at,
        digest: v.digest.clone(),
    }
}

/// A key made but not yet written (see [`Service::create_key_pair`]).
struct NewKey {
    key: Key,
    versions: Vec<KeyVersion>,
    writes: Vec<arca_store::VersionWrite>,
    event: arca_core::model::KeyEvent,
    now: DateTime<Utc>,
}

pub(crate) fn key_info(
    key: &Key,
    versions: &[KeyVersion],
    aliases: Vec<String>,
    now: DateTime<Utc>,
) -> KeyInfo {
    let (state, reason) = lifecycle::effective_state(key, now);
    KeyInfo {
        id: key.id,
        name: key.name.clone(),
        description: key.description.clone(),
        spec: key.spec,
        usage: key.usage.clone(),
        origin: key.origin,
        extractable: key.extractable,
        protection_level: key.protection_level.as_str().into(),
        tags: key.tags.clone(),
        meta: key.meta.clone(),
        state,
        usable_now: lifecycle::usable_now(key, now),
        deactivation_reason: reason,
        archived: key.archived,
        created_at: key.created_at,
        updated_at: key.updated_at,
        activation_date: key.activation_date,
        protect_stop_date: key.protect_stop_date,
        process_start_date: key.process_start_date,
        exported: key.exported,
        pending_import: key.pending_import,
        raw_cipher_modes: key.raw_cipher_modes,
        usage_limits: key.usage_limits,
        material_expires_at: key.material_expires_at,
        deactivation_date: key.deactivation_date,
        compromise_date: key.compromise_date,
        destroy_after: key.destroy_after,
        destroyed_at: key.destroyed_at,
        rotation_period_days: key.rotation_period_days,
        next_rotation_at: key.next_rotation_at,
        last_rotated_at: key.last_rotated_at,
        primary_version: key.primary_version,
        aliases,
        versions: versions.iter().map(|v| version_info(key, v)).collect(),
    }
}

/// Merges `patch` into `target`: objects key by key, any other value replacing.
fn merge_json(target: &mut serde_json::Value, patch: &serde_json::Value) {
    match (target, patch) {
        (serde_json::Value::Object(t), serde_json::Value::Object(p)) => {
            for (k, v) in p {
                merge_json(t.entry(k.clone()).or_insert(serde_json::Value::Null), v);
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn validate_meta(meta: &serde_json::Value) -> Result<()> {
    if !meta.is_object() {
        return Err(Error::invalid("meta", "must be a JSON object"));
    }
    if serde_json::to_vec(meta)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
        > MAX_META_BYTES
    {
        return Err(Error::invalid(
            "meta",
            format!("at most {MAX_META_BYTES} bytes of JSON"),
        ));
    }
    Ok(())
}

fn validate_rotation(days: Option<u32>, origin: Origin) -> Result<()> {
    if let Some(d) = days {
        if !ROTATION_DAYS.contains(&d) {
            return Err(Error::invalid(
                "rotation_period_days",
                format!(
                    "must be {} to {}",
                    ROTATION_DAYS.start(),
                    ROTATION_DAYS.end()
                ),
            ));
        }
        if origin == Origin::Imported {
            return Err(Error::unprocessable(
                "rotation_period_days",
                "imported keys cannot rotate automatically: Arca cannot make their next material; rotate them by importing",
            ));
        }
    }
    Ok(())
}

fn validate_dates(key: &Key) -> Result<()> {
    if let (Some(a), Some(d)) = (key.activation_date, key.deactivation_date) {
        if d <= a {
            return Err(Error::invalid(
                "deactivation_date",
                "must be after the activation date",
            ));
        }
    }
    // Equal dates make a key that only ever processes (decrypts, verifies): an imported
    // key kept to read old data, as KMIP clients register them.
    if let (Some(a), Some(p)) = (key.activation_date, key.protect_stop_date) {
        if p < a {
            return Err(Error::invalid(
                "protect_stop_date",
                "must not be before the activation date",
            ));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn event(
    key: &Key,
    version: Option<u32>,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    from: Option<KeyState>,
    to: Option<KeyState>,
    reason: Option<String>,
) -> KeyEvent {
    KeyEvent {
        key_id: key.id,
        version,
        at,
        actor: actor.to_string(),
        action: action.to_string(),
        from_state: from,
        to_state: to,
        reason,
    }
}

impl Service {
    /// Fresh material for version `n` of a key, made by the provider of its protection
    /// level (in the token for an HSM key: the "material" is then the token object's
    /// reference, sealed like any material, and the secret never leaves the token).
    pub(crate) fn generate_material(&self, key: &Key, n: u32) -> Result<KeyMaterial> {
        self.provider(key.protection_level)?
            .generate_version(key.spec, &version_label(key.id, n))
    }

    /// KMIP's Digest of a version's material (see [`KeyVersion::digest`]), as the key's
    /// provider can show it (none for a key that never leaves an HSM).
    pub(crate) fn material_digest(&self, key: &Key, m: &KeyMaterial) -> Result<Option<String>> {
        Ok(self.provider(key.protection_level)?.digest(key.spec, m))
    }

    /// Seals a version's material and builds its row.
    pub(crate) async fn new_version(
        &self,
        key: &Key,
        n: u32,
        m: &KeyMaterial,
        now: DateTime<Utc>,
    ) -> Result<VersionWrite> {
        let kek = self.tenant_kek(key.tenant_id).await?;
        let sealed = arca_crypto::wrap::seal_material(&kek, key.tenant_id, key.id, n, &m.secret)?;
        Ok(VersionWrite {
            version: KeyVersion {
                key_id: key.id,
                version: n,
                state: KeyState::Active,
                deactivation_reason: None,
                archived: false,
                created_at: now,
                destroy_after: None,
                destroyed_at: None,
                public_key: m.public_spki.clone(),
                public_only: m.public_only,
                digest: self.material_digest(key, m)?,
                material_deleted: false,
            },
            material: MaterialChange::Set(sealed),
        })
    }

    /// Writes a small change to a key that concurrent requests (on this node or others)
    /// may race on, such as a flag or a counter: `change` is applied to the key as read, the
    /// write checks the revision, and a loser re-reads the key and applies `change` to what
    /// it finds (up to 16 times). `change` answers `Ok(false)` when nothing needs writing,
    /// and may refuse. Returns the key as written (or as found, when nothing was).
    pub(crate) async fn update_key_racing(
        &self,
        key: &Key,
        versions: &[KeyVersion],
        mut change: impl FnMut(&mut Key) -> Result<bool>,
    ) -> Result<Key> {
        let mut key = key.clone();
        let mut versions = versions.to_vec();
        for attempt in 0.. {
            if !change(&mut key)? {
                return Ok(key);
            }
            let rev = key.revision;
            match self
                .commit(key.clone(), Some(rev), &versions, vec![], vec![], vec![])
                .await
            {
                Err(Error::Conflict { .. }) if attempt < 16 => {
                    key = self
                        .store
                        .get_key(key.tenant_id, key.id)
                        .await?
                        .ok_or_else(|| Error::not_found("key", key.id.to_string()))?;
                    versions = self.store.get_versions(key.id).await?;
                }
                other => return other,
            }
        }
        unreachable!("the loop returns")
    }

    /// Writes a key change atomically, with the next due time recomputed, and forgets the
    /// cached copy.
    pub(crate) async fn commit(
        &self,
        key: Key,
        expected: Option<i64>,
        versions_after: &[KeyVersion],
        changed: Vec<VersionWrite>,
        events: Vec<KeyEvent>,
        audit: Vec<AuditEvent>,
    ) -> Result<Key> {
        self.commit_with(
            key,
            expected,
            versions_after,
            changed,
            events,
            vec![],
            audit,
        )
        .await
    }

    /// [`Service::commit`] with records written in the same transaction.
    // One transaction's parts: splitting them into a struct would only rename the list.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn commit_with(
        &self,
        mut key: Key,
        expected: Option<i64>,
        versions_after: &[KeyVersion],
        changed: Vec<VersionWrite>,
        events: Vec<KeyEvent>,
        records: Vec<arca_store::Record>,
        audit: Vec<AuditEvent>,
    ) -> Result<Key> {
        key.revision = expected.map(|r| r + 1).unwrap_or(1);
        key.updated_at = self.now();
        let next_due_at = lifecycle::next_due(&key, versions_after);
        self.store
            .write_key(&KeyWrite {
                key: key.clone(),
                expected_revision: expected,
                versions: changed,
                events,
                next_due_at,
                records,
                audit,
            })
            .await?;
        self.cache.invalidate_key(key.id);
        Ok(key)
    }

    /// The current key and versions, read from the store (never the cache), for a change.
    pub(crate) async fn fresh(
        &self,
        caller: &Caller,
        reference: &str,
    ) -> Result<(Key, Vec<KeyVersion>)> {
        let e = self.resolve(caller.tenant(), "key", reference).await?;
        let key = self
            .store
            .get_key(caller.tenant(), e.key.id)
            .await?
            .ok_or_else(|| Error::not_found("key", reference))?;
        let versions = self.store.get_versions(key.id).await?;
        Ok((key, versions))
    }

    pub(crate) async fn info(&self, key: &Key, versions: &[KeyVersion]) -> Result<KeyInfo> {
        let aliases = self
            .store
            .list_aliases(key.tenant_id, Some(key.id))
            .await?
            .into_iter()
            .map(|(a, _)| a)
            .collect();
        Ok(key_info(key, versions, aliases, self.now()))
    }

    /// Creates a key: generated material, or imported when `material` is given and the
    /// server allows plaintext import.
    pub async fn create_key(&self, caller: &Caller, req: CreateKeyRequest) -> Result<KeyInfo> {
        self.audited(caller, Action::CreateKey, async |note: &mut Note| {
            let k = self.new_key(caller, req, note).await?;
            self.commit_new_key(caller, k, note).await
        })
        .await
    }

    /// Creates an asymmetric key and a second, public-only key holding its public half:
    /// KMIP's Create Key Pair, whose two objects each have a lifecycle of their own. Both
    /// requests are checked, and the material made, before either is written, so a refusal
    /// leaves no half of a pair behind; reading the new key's public half is part of the
    /// creation (no `GetPublicKey` grant on a key that does not exist yet). `public` builds
    /// the second request from the first key and its public half (SPKI DER); `link` edits
    /// the first key's `meta` once the second key's id is known. Each key is one audited
    /// `CreateKey`.
    pub async fn create_key_pair(
        &self,
        caller: &Caller,
        private: CreateKeyRequest,
        public: impl FnOnce(&KeyInfo, Secret) -> Result<CreateKeyRequest> + Send,
        link: impl FnOnce(&mut serde_json::Value, Uuid) + Send,
    ) -> Result<(KeyInfo, KeyInfo)> {
        // The first record covers the preparation of both halves (a refusal of either is
        // the request's one record) and the first key's write; the second, begun while
        // preparing, covers the public half's write.
        let mut second = None;
        let a = self
            .audited(caller, Action::CreateKey, async |note: &mut Note| {
                let mut first = self.new_key(caller, private, note).await?;
                let spki = first
                    .versions
                    .first()
                    .and_then(|v| v.public_key.clone())
                    .ok_or_else(|| {
                        Error::unprocessable("spec", "a key pair needs an asymmetric key spec")
                    })?;
                let info = key_info(&first.key, &first.versions, vec![], first.now);
                let second_req = public(&info, Secret::new(zeroize::Zeroizing::new(spki)))?;
                let mut second_note = Note::with("key_pair_of", first.key.id.to_string());
                let half = self.new_key(caller, second_req, &mut second_note).await?;
                link(&mut first.key.meta, half.key.id);
                validate_meta(&first.key.meta)?;
                second = Some((half, second_note));
                self.commit_new_key(caller, first, note).await
            })
            .await?;
        let (half, second_note) =
            second.ok_or_else(|| Error::internal("a key pair's public half was not prepared"))?;
        let b = self
            .audited_from(
                caller,
                Action::CreateKey,
                second_note,
                async |note: &mut Note| self.commit_new_key(caller, half, note).await,
            )
            .await?;
        Ok((a, b))
    }

    /// Everything about a new key short of writing it: checks, policy, material.
    async fn new_key(
        &self,
        caller: &Caller,
        mut req: CreateKeyRequest,
        note: &mut Note,
    ) -> Result<NewKey> {
        self.authorize(caller, Action::CreateKey, None)?;
        validate_name("name", &req.name)?;
        let policy = self.initial_policy(caller, req.policy.take()).await?;
        let description = req.description.unwrap_or_default();
        validate_description("description", &description)?;
        validate_tags("tags", &req.tags)?;
        let meta = req.meta.unwrap_or_else(|| serde_json::json!({}));
        validate_meta(&meta)?;
        let spec = req.spec.unwrap_or(arca_core::model::KeySpec::Aes256);
        if spec.legacy().is_some() {
            note.set("spec", spec.as_str());
        }
        let usage = req.usage.unwrap_or_else(|| vec![spec.default_usage()]);
        if usage.is_empty() {
            return Err(Error::invalid("usage", "name at least one usage"));
        }
        if let Some(u) = usage.iter().find(|u| {
            !spec.possible_usages().contains(&u.pair()) && spec.legacy_usage(**u).is_none()
        }) {
            return Err(Error::wrong_usage(format!(
                "a {spec} key cannot have usage {u}; possible: {} (or one direction of a pair)",
                spec.possible_usages()
                    .iter()
                    .map(|u| u.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        let usage = KeyUsage::canonical(&usage);
        // Legacy specs and usages only where the tenant allows them (one check, audited as
        // this creation's refusal). The spec is checked before the usages, so a legacy spec
        // is refused as such whatever usage it asks for.
        if let Some(l) = spec.legacy() {
            self.permit_legacy(caller, l, "spec").await?;
        }
        for u in &usage {
            if let Some(l) = spec.legacy_usage(*u) {
                self.permit_legacy(caller, l, "usage").await?;
            }
        }
        let origin = if req.material.is_some() || req.pending_import {
            Origin::Imported
        } else {
            Origin::Generated
        };
        if req.pending_import && (req.material.is_some() || req.rotation_period_days.is_some()) {
            return Err(Error::invalid(
                "pending_import",
                "a key waiting for imported material has no material and no automatic rotation",
            ));
        }
        validate_rotation(req.rotation_period_days, origin)?;
        if req.raw_cipher_modes && !spec.offers_raw_modes() {
            return Err(Error::invalid(
                "raw_cipher_modes",
                format!("raw cipher modes are for AES, TRIPLE_DES and CHACHA20 keys, not {spec}"),
            ));
        }
        let usage_limits = req
            .usage_limits
            .map(|u| arca_core::model::UsageLimits::new(u.unit, u.total))
            .transpose()?;
        // Triple DES and ChaCha20 keys serve only raw calls: never Arca's ciphertexts.
        if spec.raw_only() {
            req.raw_cipher_modes = true;
        }
        let now = self.now();
        let (state, activation_date) = match req.activation_date {
            _ if req.pending_import => (KeyState::PreActive, None),
            Some(a) if a > now => (KeyState::PreActive, Some(a)),
            Some(a) => (KeyState::Active, Some(a)),
            None if req.pre_active => (KeyState::PreActive, None),
            None => (KeyState::Active, Some(now)),
        };
        let protection = req.protection_level.unwrap_or_default();
        let provider = self.provider(protection)?;
        provider.admit(
            spec,
            req.material.is_some() || req.pending_import,
            req.extractable,
        )?;
        // Imported material is checked now; generated material is made once the key has
        // its id and has passed every check (a provider may name the version by it).
        let material = match &req.material {
            Some(m) => {
                if !self.config.allow_plaintext_import {
                    return Err(Error::NotPermitted {
                        message: "this server does not accept plaintext key import (service.allow_plaintext_import = false)".into(),
                    });
                }
                Some(crate::encoding::with_importable(
                    m.expose(),
                    req.material_encoding,
                    |m| provider.import(spec, "material", m),
                )?)
            }
            None => None,
        };
        if material.as_ref().is_some_and(|m| m.public_only)
            && usage.iter().any(|u| {
                !matches!(
                    u,
                    KeyUsage::SignVerify
                        | KeyUsage::EncryptDecrypt
                        | KeyUsage::KeyEncapsulation
                        | KeyUsage::WrapUnwrap
                        | KeyUsage::Verify
                        | KeyUsage::Encrypt
                        | KeyUsage::Wrap
                )
            })
        {
            return Err(Error::wrong_usage(
                "a public-only key can only verify, encrypt, wrap or encapsulate",
            ));
        }
        let key = Key {
            id: Uuid::now_v7(),
            tenant_id: caller.tenant(),
            name: req.name,
            description,
            spec,
            usage,
            origin,
            extractable: req.extractable,
            tags: req.tags,
            meta,
            state,
            deactivation_reason: None,
            archived: false,
            created_at: now,
            updated_at: now,
            activation_date,
            protect_stop_date: req.protect_stop_date,
            process_start_date: req.process_start_date,
            exported: false,
            pending_import: req.pending_import,
            material_expires_at: None,
            deactivation_date: req.deactivation_date,
            compromise_date: None,
            destroy_after: None,
            destroyed_at: None,
            rotation_period_days: req.rotation_period_days,
            next_rotation_at: req
                .rotation_period_days
                .map(|d| now + Duration::days(d as i64)),
            last_rotated_at: None,
            primary_version: if req.pending_import { 0 } else { 1 },
            policy,
            protection_level: protection,
            raw_cipher_modes: req.raw_cipher_modes,
            usage_limits,
            revision: 0,
        };
        validate_dates(&key)?;
        note.key(key.id);
        note.set("spec", spec.as_str());
        note.set(
            "origin",
            if origin == Origin::Imported {
                "IMPORTED"
            } else {
                "GENERATED"
            },
        );
        let (versions, writes) = if key.pending_import {
            (vec![], vec![])
        } else {
            let material = match material {
                Some(m) => m,
                None => self.generate_material(&key, 1)?,
            };
            let vw = self.new_version(&key, 1, &material, now).await?;
            (vec![vw.version.clone()], vec![vw])
        };
        let ev = event(
            &key,
            (!key.pending_import).then_some(1),
            now,
            &caller.actor(),
            if key.pending_import {
                "create-pending-import"
            } else if origin == Origin::Imported {
                "import"
            } else {
                "create"
            },
            None,
            Some(state),
            None,
        );
        note.key_version = (!key.pending_import).then_some(1);
        note.set("protection_level", protection.as_str());
        Ok(NewKey {
            key,
            versions,
            writes,
            event: ev,
            now,
        })
    }

    /// Writes a key [`Service::new_key`] made, with its history and audit record.
    async fn commit_new_key(&self, caller: &Caller, k: NewKey, note: &mut Note) -> Result<KeyInfo> {
        let rec = crate::policies::policy_record(k.key.tenant_id, k.key.id, &k.key.policy)?;
        let audit = self.change_event(caller, Action::CreateKey, note);
        let key = self
            .commit_with(
                k.key,
                None,
                &k.versions,
                k.writes,
                vec![k.event],
                vec![rec],
                audit,
            )
            .await?;
        Ok(key_info(&key, &k.versions, vec![], k.now))
    }

    /// For a door whose protocol makes a transition idempotent (AWS's EnableKey on an
    /// enabled key, DisableKey on a disabled one): the caller must still be allowed the
    /// action, and the request is audited as that action, marked unchanged. Nothing is
    /// written.
    pub async fn acknowledge_unchanged(
        &self,
        caller: &Caller,
        reference: &str,
        action: Action,
    ) -> Result<()> {
        self.audited(caller, action, async |note: &mut Note| {
            let e = self.resolve(caller.tenant(), "key", reference).await?;
            note.key(e.key.id);
            self.authorize(caller, action, Some(&e.key))?;
            note.set("unchanged", true);
            Ok(())
        })
        .await
    }

    /// Describes a key: metadata, state, versions, aliases. Never material.
    pub async fn describe_key(&self, caller: &Caller, reference: &str) -> Result<KeyInfo> {
        self.audited(caller, Action::DescribeKey, async |note: &mut Note| {
            let (key, versions) = self.fresh(caller, reference).await?;
            note.key(key.id);
            self.authorize(caller, Action::DescribeKey, Some(&key))?;
            self.info(&key, &versions).await
        })
        .await
    }

    /// [`Service::describe_key`] from the key cache (as fresh as any use of the key, and
    /// without aliases): for protocol doors that read a key's attributes before each use
    /// (KMIP's cryptographic operations), where a store read per request would dominate.
    pub async fn describe_key_cached(&self, caller: &Caller, reference: &str) -> Result<KeyInfo> {
        self.audited(caller, Action::DescribeKey, async |note: &mut Note| {
            let e = self.resolve(caller.tenant(), "key", reference).await?;
            note.key(e.key.id);
            self.authorize(caller, Action::DescribeKey, Some(&e.key))?;
            Ok(key_info(&e.key, &e.versions, Vec::new(), self.now()))
        })
        .await
    }

    /// Lists keys with filters and cursor pagination.
    pub async fn list_keys(&self, caller: &Caller, q: ListKeysQuery) -> Result<KeyList> {
        self.audited(caller, Action::ListKeys, async |_: &mut Note| {
            self.list_keys_inner(caller, q).await
        })
        .await
    }

    async fn list_keys_inner(&self, caller: &Caller, q: ListKeysQuery) -> Result<KeyList> {
        self.authorize(caller, Action::ListKeys, None)?;
        let limit = q.limit.unwrap_or(100);
        if !(1..=1000).contains(&limit) {
            return Err(Error::invalid("limit", "must be 1 to 1000"));
        }
        let after =
            match &q.cursor {
                Some(c) => Some(Uuid::parse_str(c).map_err(|_| {
                    Error::invalid("cursor", "not a cursor returned by this listing")
                })?),
                None => None,
            };
        let mut tags = BTreeMap::new();
        for t in &q.tag {
            let (k, v) = t
                .split_once('=')
                .ok_or_else(|| Error::invalid("tag", format!("{t:?} is not key=value")))?;
            tags.insert(k.to_string(), v.to_string());
        }
        let filter = KeyFilter {
            name: q.name.clone(),
            alias: q.alias.as_deref().map(|a| normalize_alias(a).to_string()),
            state: q.state,
            spec: q.spec,
            tags,
        };
        let keys = self
            .store
            .list_keys(caller.tenant(), &filter, after, limit + 1)
            .await?;
        let more = keys.len() > limit as usize;
        let mut out = Vec::with_capacity(keys.len().min(limit as usize));
        let last_seen = keys.iter().take(limit as usize).next_back().map(|k| k.id);
        for k in keys.into_iter().take(limit as usize) {
            // A crypto-user sees the keys its policies let it describe, no others.
            if !matches!(
                self.decide(caller, Action::DescribeKey, Some(&k), None),
                arca_core::access::Decision::Allow(_)
            ) {
                continue;
            }
            let versions = self.store.get_versions(k.id).await?;
            out.push(self.info(&k, &versions).await?);
        }
        let next_cursor = if more {
            last_seen.map(|k| k.to_string())
        } else {
            None
        };
        Ok(KeyList {
            keys: out,
            next_cursor,
        })
    }

    /// Updates description, tags, meta, rotation period and dates.
    pub async fn update_key(
        &self,
        caller: &Caller,
        reference: &str,
        req: UpdateKeyRequest,
    ) -> Result<KeyInfo> {
        self.audited(caller, Action::UpdateKey, async |note: &mut Note| {
            self.update_key_inner(caller, reference, req, note).await
        })
        .await
    }

    async fn update_key_inner(
        &self,
        caller: &Caller,
        reference: &str,
        req: UpdateKeyRequest,
        note: &mut Note,
    ) -> Result<KeyInfo> {
        let (mut key, versions) = self.fresh(caller, reference).await?;
        note.key(key.id);
        self.authorize(caller, Action::UpdateKey, Some(&key))?;
        let replay = serde_json::to_value(&req).map_err(|e| Error::internal(e.to_string()))?;
        if key.state.is_destroyed() {
            return Err(Error::WrongState {
                operation: "update".into(),
                target: format!("key {}", key.id),
                state: key.state,
                detail: None,
            });
        }
        let before = key.clone();
        let now = self.now();
        let mut changed = Vec::new();
        if let Some(d) = req.description {
            validate_description("description", &d)?;
            key.description = d;
            changed.push("description");
        }
        if let Some(t) = req.tags {
            validate_tags("tags", &t)?;
            key.tags = t;
            changed.push("tags");
        }
        if let Some(m) = req.meta {
            validate_meta(&m)?;
            key.meta = m;
            changed.push("meta");
        }
        if let Some(r) = req.rotation_period_days {
            validate_rotation(r, key.origin)?;
            key.rotation_period_days = r;
            key.next_rotation_at = r.map(|d| {
                key.last_rotated_at
                    .unwrap_or(key.created_at)
                    .max(now - Duration::days(d as i64))
                    + Duration::days(d as i64)
            });
            changed.push("rotation_period_days");
        }
        if let Some(a) = req.activation_date {
            if key.state != KeyState::PreActive {
                return Err(Error::WrongState {
                    operation: "change the activation date".into(),
                    target: format!("key {}", key.id),
                    state: lifecycle::effective_state(&key, now).0,
                    detail: Some(StateDetail::other(
                        "only a PRE_ACTIVE key's activation date can change",
                    )),
                });
            }
            key.activation_date = a;
            changed.push("activation_date");
        }
        if let Some(p) = req.protect_stop_date {
            key.protect_stop_date = p;
            changed.push("protect_stop_date");
        }
        if let Some(p) = req.process_start_date {
            key.process_start_date = p;
            changed.push("process_start_date");
        }
        if let Some(d) = req.deactivation_date {
            key.deactivation_date = d;
            changed.push("deactivation_date");
        }
        validate_dates(&key)?;
        if key == before {
            return self.info(&key, &versions).await;
        }
        // Turning off automatic rotation or a scheduled end of use weakens the key's
        // protection: a separate action that policies and quorum rules can single out.
        let weakens = (before.rotation_period_days.is_some() && key.rotation_period_days.is_none())
            || (before.protect_stop_date.is_some() && key.protect_stop_date.is_none())
            || (before.deactivation_date.is_some() && key.deactivation_date.is_none());
        if weakens {
            note.set("disables_protection", true);
            self.authorize(caller, Action::DisableKeyProtection, Some(&before))?;
            self.gate(caller, Action::DisableKeyProtection, Some(&before), || {
                crate::approvals::Pending::UpdateKey {
                    key: before.id,
                    req: replay.clone(),
                }
            })
            .await?;
        }
        let ev = event(
            &key,
            None,
            now,
            &caller.actor(),
            "update",
            None,
            None,
            Some(format!("changed {}", changed.join(", "))),
        );
        let rev = key.revision;
        let audit = self.change_event(caller, Action::UpdateKey, note);
        let key = self
            .commit(key, Some(rev), &versions, vec![], vec![ev], audit)
            .await?;
        self.info(&key, &versions).await
    }

    /// A key's history: every transition, rotation and change.
    pub async fn key_history(&self, caller: &Caller, reference: &str) -> Result<KeyHistory> {
        self.audited(caller, Action::GetKeyHistory, async |note: &mut Note| {
            let e = self.resolve(caller.tenant(), "key", reference).await?;
            note.key(e.key.id);
            self.authorize(caller, Action::GetKeyHistory, Some(&e.key))?;
            Ok(KeyHistory {
                events: self.store.history(e.key.id).await?,
            })
        })
        .await
    }

    /// Creates an alias.
    pub async fn create_alias(
        &self,
        caller: &Caller,
        req: CreateAliasRequest,
    ) -> Result<AliasInfo> {
        self.point_alias(caller, &req.alias, &req.key, false).await
    }

    /// Moves an alias to another key.
    pub async fn move_alias(
        &self,
        caller: &Caller,
        alias: &str,
        req: MoveAliasRequest,
    ) -> Result<AliasInfo> {
        self.point_alias(caller, alias, &req.key, true).await
    }

    /// Points an alias at a key: a new alias, or (`existing`) one that must exist already.
    async fn point_alias(
        &self,
        caller: &Caller,
        alias: &str,
        key: &str,
        existing: bool,
    ) -> Result<AliasInfo> {
        let action = if existing {
            Action::UpdateAlias
        } else {
            Action::CreateAlias
        };
        self.audited(caller, action, async |note: &mut Note| {
            let alias = normalize_alias(alias).to_string();
            validate_name("alias", &alias)?;
            let e = self.resolve(caller.tenant(), "key", key).await?;
            note.key(e.key.id);
            note.set("alias", alias.clone());
            self.authorize(caller, action, Some(&e.key))?;
            let audit = self.change_event(caller, action, note);
            if existing {
                self.store
                    .move_alias(caller.tenant(), &alias, e.key.id, &audit)
                    .await?;
            } else {
                self.store
                    .create_alias(caller.tenant(), &alias, e.key.id, &audit)
                    .await?;
            }
            self.cache.names.clear();
            Ok(AliasInfo {
                alias,
                key_id: e.key.id,
            })
        })
        .await
    }

    /// Deletes an alias (the key stays).
    pub async fn delete_alias(&self, caller: &Caller, alias: &str) -> Result<()> {
        self.audited(caller, Action::DeleteAlias, async |note: &mut Note| {
            let alias = normalize_alias(alias).to_string();
            validate_name("alias", &alias)?;
            note.set("alias", alias.clone());
            self.authorize(caller, Action::DeleteAlias, None)?;
            let audit = self.change_event(caller, Action::DeleteAlias, note);
            self.store
                .delete_alias(caller.tenant(), &alias, &audit)
                .await?;
            self.cache.names.clear();
            Ok(())
        })
        .await
    }

    /// Lists the tenant's aliases, or one key's.
    pub async fn list_aliases(&self, caller: &Caller, key: Option<&str>) -> Result<AliasList> {
        self.audited(caller, Action::ListAliases, async |note: &mut Note| {
            let key_id = match key {
                Some(k) => {
                    let e = self.resolve(caller.tenant(), "key", k).await?;
                    note.key(e.key.id);
                    Some(e.key.id)
                }
                None => None,
            };
            self.authorize(caller, Action::ListAliases, None)?;
            let aliases = self
                .store
                .list_aliases(caller.tenant(), key_id)
                .await?
                .into_iter()
                .map(|(alias, key_id)| AliasInfo { alias, key_id })
                .collect();
            Ok(AliasList { aliases })
        })
        .await
    }

    /// Rotates a key now: a new primary version; older versions keep decrypting.
    pub async fn rotate_key(
        &self,
        caller: &Caller,
        reference: &str,
        req: RotateRequest,
    ) -> Result<KeyInfo> {
        self.audited(caller, Action::RotateKey, async |note: &mut Note| {
            let (key, versions) = self.fresh(caller, reference).await?;
            note.key(key.id);
            self.authorize(caller, Action::RotateKey, Some(&key))?;
            // New material of a legacy spec is made only where the tenant allows it.
            if let Some(l) = key.spec.legacy() {
                self.permit_legacy(caller, l, "key").await?;
            }
            if key.pending_import {
                return Err(Error::WrongState {
                    operation: "rotate".into(),
                    target: format!("key {}", key.id),
                    state: key.state,
                    detail: Some(StateDetail::PendingImport),
                });
            }
            let material = match (&req.material, key.origin) {
                (Some(_), Origin::Generated) => {
                    return Err(Error::unprocessable(
                        "material",
                        "this key was generated by Arca; rotation generates its next material",
                    ))
                }
                (None, Origin::Imported) => {
                    return Err(Error::unprocessable(
                        "material",
                        "this key was imported; rotating it needs the new material",
                    ))
                }
                (Some(m), Origin::Imported) => {
                    if !self.config.allow_plaintext_import {
                        return Err(Error::NotPermitted {
                            message: "this server does not accept plaintext key import".into(),
                        });
                    }
                    Some(self.provider(key.protection_level)?.import(
                        key.spec,
                        "material",
                        m.expose(),
                    )?)
                }
                (None, Origin::Generated) => None,
            };
            let audit = self.change_event(caller, Action::RotateKey, note);
            let (key, versions) = self
                .rotate_now(key, versions, material, &caller.actor(), "on demand", audit)
                .await?;
            note.key_version = Some(key.primary_version);
            self.info(&key, &versions).await
        })
        .await
    }

    /// Adds a version and makes it primary. The key must be ACTIVE and not archived.
    pub(crate) async fn rotate_now(
        &self,
        key: Key,
        mut versions: Vec<KeyVersion>,
        material: Option<KeyMaterial>,
        actor: &str,
        reason: &str,
        mut audit: Vec<AuditEvent>,
    ) -> Result<(Key, Vec<KeyVersion>)> {
        let now = self.now();
        let (state, _) = lifecycle::effective_state(&key, now);
        if state != KeyState::Active || key.archived {
            return Err(Error::WrongState {
                operation: "rotate".into(),
                target: format!("key {}", key.id),
                state,
                detail: Some(StateDetail::other(if key.archived {
                    "the key is archived"
                } else {
                    "only an ACTIVE key rotates"
                })),
            });
        }
        let n = versions.iter().map(|v| v.version).max().unwrap_or(0) + 1;
        let material = match material {
            Some(m) => m,
            None => self.generate_material(&key, n)?,
        };
        let vw = self.new_version(&key, n, &material, now).await?;
        versions.push(vw.version.clone());
        let mut k = key.clone();
        k.state = state;
        k.primary_version = n;
        k.last_rotated_at = Some(now);
        k.next_rotation_at = k
            .rotation_period_days
            .map(|d| now + Duration::days(d as i64));
        let ev = event(
            &k,
            Some(n),
            now,
            actor,
            "rotate",
            None,
            None,
            Some(reason.to_string()),
        );
        let rev = key.revision;
        for a in &mut audit {
            a.key_version = Some(n);
        }
        let k = self
            .commit(k, Some(rev), &versions, vec![vw], vec![ev], audit)
            .await?;
        Ok((k, versions))
    }

    /// Applies a lifecycle move to a key (`version` = None) or to one of its versions.
    pub async fn lifecycle(
        &self,
        caller: &Caller,
        reference: &str,
        version: Option<u32>,
        action: LifecycleAction,
        reason: Option<String>,
    ) -> Result<KeyInfo> {
        self.lifecycle_annotated(caller, reference, version, action, reason, None)
            .await
    }

    /// [`Service::lifecycle`] that also merges `annotation` (a JSON object) into the key's
    /// `meta` in the same change: what a protocol says about the move beyond Arca's own
    /// fields (KMIP's Revocation Reason and Compromise Occurrence Date) is kept with it,
    /// atomically, approved with it when the move needs approval, and bounded like any
    /// meta. Objects merge key by key; any other value replaces what was there.
    pub async fn lifecycle_annotated(
        &self,
        caller: &Caller,
        reference: &str,
        version: Option<u32>,
        action: LifecycleAction,
        reason: Option<String>,
        annotation: Option<serde_json::Value>,
    ) -> Result<KeyInfo> {
        self.audited(caller, action.audit_action(), async |note: &mut Note| {
            note.key_version = version;
            self.lifecycle_inner(caller, reference, version, action, reason, annotation, note)
                .await
        })
        .await
    }

    /// KMIP Obtain Lease: the client may go on using an object it holds for the server's
    /// lease time (`service.lease_time_secs`). Granted like a use of the key (role and key
    /// policy; not an approvable action) and recorded; refused with the object's state when it can serve
    /// nothing (destroyed or scheduled for destruction, Pre-Active or suspended, archived).
    /// Returns the key as described and the lease, in seconds.
    pub async fn obtain_lease(&self, caller: &Caller, reference: &str) -> Result<(KeyInfo, u32)> {
        self.audited(caller, Action::ObtainLease, async |note: &mut Note| {
            let (key, versions) = self.fresh(caller, reference).await?;
            note.key(key.id);
            self.authorize(caller, Action::ObtainLease, Some(&key))?;
            let info = self.info(&key, &versions).await?;
            let serves = matches!(
                info.state,
                KeyState::Active | KeyState::Deactivated | KeyState::Compromised
            ) && info.destroy_after.is_none()
                && !info.archived;
            if !serves {
                return Err(Error::WrongState {
                    operation: "ObtainLease".into(),
                    target: format!("key {}", key.id),
                    state: info.state,
                    detail: Some(StateDetail::other(
                        "the object serves nothing in this state, so no lease is granted",
                    )),
                });
            }
            note.set("lease_time_secs", self.config.lease_time_secs);
            Ok((info, self.config.lease_time_secs))
        })
        .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn lifecycle_inner(
        &self,
        caller: &Caller,
        reference: &str,
        version: Option<u32>,
        action: LifecycleAction,
        reason: Option<String>,
        annotation: Option<serde_json::Value>,
        note: &mut Note,
    ) -> Result<KeyInfo> {
        let (key, versions) = self.fresh(caller, reference).await?;
        note.key(key.id);
        self.authorize(caller, action.audit_action(), Some(&key))?;
        let action = self.resolve_destruction(caller, action).await?;
        if let Some(r) = &reason {
            if r.len() > 1024 {
                return Err(Error::invalid("reason", "at most 1024 bytes"));
            }
        }
        let now = self.now();
        let actor = caller.actor();
        let key_id = key.id;
        // Compute the move first: a request that cannot apply now is refused at once,
        // rather than sent to approvers.
        let (mut key, versions) = match version {
            None => self.key_move(key, versions, &action, reason.clone(), now, &actor)?,
            Some(n) => self.version_move(key, versions, n, &action, reason.clone(), now, &actor)?,
        };
        if let Some(a) = &annotation {
            if !a.is_object() {
                return Err(Error::invalid("annotation", "must be a JSON object"));
            }
            merge_json(&mut key.0.meta, a);
            validate_meta(&key.0.meta)?;
        }
        self.gate(caller, action.audit_action(), Some(&key.0), || {
            crate::approvals::Pending::Lifecycle {
                key: key_id,
                version,
                action: action.clone(),
                reason: reason.clone(),
                annotation: annotation.clone(),
            }
        })
        .await?;
        let (key, versions, changed, events) = (key.0, versions, key.1, key.2);
        let rev = key.revision;
        let audit = self.change_event(caller, action.audit_action(), note);
        let key = self
            .commit(key, Some(rev), &versions, changed, events, audit)
            .await?;
        let due_now = key.destroy_after.is_some_and(|d| d <= now)
            || versions
                .iter()
                .any(|v| v.destroy_after.is_some_and(|d| d <= now));
        if due_now {
            // A zero waiting period: erase now, as the lifecycle task would when it fell
            // due (receipt, HSM objects and all), before answering.
            self.handle_due(key.clone()).await?;
            let (key, versions) = self.fresh(caller, &key.id.to_string()).await?;
            return self.info(&key, &versions).await;
        }
        self.info(&key, &versions).await
    }

    /// Fills in and checks a destruction's waiting period against the tenant's minimum:
    /// `Destroy` asks for the minimum itself, a named period may not be shorter, and no
    /// period means the default (30 days, or the minimum if longer).
    async fn resolve_destruction(
        &self,
        caller: &Caller,
        action: LifecycleAction,
    ) -> Result<LifecycleAction> {
        let needs = matches!(
            action,
            LifecycleAction::Destroy | LifecycleAction::ScheduleDestruction { .. }
        );
        if !needs {
            return Ok(action);
        }
        let min = self
            .tenant(caller.tenant())
            .await?
            .settings
            .min_destruction_window_days;
        Ok(match action {
            LifecycleAction::Destroy => LifecycleAction::ScheduleDestruction {
                pending_window_days: Some(min),
                suspend_if_active: false,
            },
            LifecycleAction::ScheduleDestruction {
                pending_window_days: Some(d),
                ..
            } if d < min => {
                return Err(Error::invalid(
                    "pending_window_days",
                    format!("this tenant's destructions wait at least {min} day(s)"),
                ))
            }
            LifecycleAction::ScheduleDestruction {
                pending_window_days: None,
                suspend_if_active,
            } => LifecycleAction::ScheduleDestruction {
                pending_window_days: Some(DEFAULT_DESTRUCTION_WAIT_DAYS.max(min)),
                suspend_if_active,
            },
            a => a,
        })
    }

    /// The pure part of a key-level move: the new key, the changed versions and the events.
    #[allow(clippy::type_complexity)]
    fn key_move(
        &self,
        mut key: Key,
        versions: Vec<KeyVersion>,
        action: &LifecycleAction,
        reason: Option<String>,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<((Key, Vec<VersionWrite>, Vec<KeyEvent>), Vec<KeyVersion>)> {
        let (from, from_reason) = lifecycle::effective_state(&key, now);
        let target = format!("key {}", key.id);
        let wrong = |detail: &str| Error::WrongState {
            operation: action.name().into(),
            target: target.clone(),
            state: from,
            detail: Some(StateDetail::other(detail)),
        };
        if key.archived && !matches!(action, LifecycleAction::Recover) {
            return Err(wrong(
                "the key is archived; a tenant-admin must recover it first",
            ));
        }
        let mut events = Vec::new();
        // Persist any move that the dates already made, so history shows it.
        if from != key.state {
            events.push(event(
                &key,
                None,
                now,
                "system",
                "date-reached",
                Some(key.state),
                Some(from),
                None,
            ));
            key.state = from;
            key.deactivation_reason = from_reason;
        }
        let mut record_to: Option<KeyState> = None;
        // The state the action's own history event starts from (a suspension made first
        // by ScheduleDestruction has its own event).
        let mut event_from = from;
        match action {
            LifecycleAction::Activate
            | LifecycleAction::Resume
            | LifecycleAction::Suspend
            | LifecycleAction::Deactivate(_)
            | LifecycleAction::ReportCompromise => {
                let t = action
                    .transition()
                    .ok_or_else(|| Error::internal("not a state move"))?;
                if matches!(t, Transition::Activate | Transition::Resume)
                    && key.destroy_after.is_some()
                {
                    return Err(wrong("destruction is scheduled; cancel it first"));
                }
                if t == Transition::Activate && key.pending_import && versions.is_empty() {
                    return Err(wrong(
                        "the key has no material yet: importing it activates the key",
                    ));
                }
                let to = lifecycle::apply(from, t, &target)?;
                match t {
                    Transition::Activate if key.activation_date.is_none_or(|a| a > now) => {
                        key.activation_date = Some(now);
                    }
                    Transition::Deactivate(r) => {
                        key.deactivation_reason = Some(r);
                        if key.deactivation_date.is_none_or(|d| d > now) {
                            key.deactivation_date = Some(now);
                        }
                    }
                    Transition::ReportCompromise => key.compromise_date = Some(now),
                    _ => {}
                }
                if to != KeyState::Deactivated {
                    key.deactivation_reason = None;
                    if to == KeyState::Active {
                        key.deactivation_date = key.deactivation_date.filter(|d| *d > now);
                    }
                }
                key.state = to;
                record_to = Some(to);
            }
            LifecycleAction::Archive => {
                if key.state.is_destroyed() {
                    return Err(wrong("a destroyed key cannot be archived"));
                }
                key.archived = true;
            }
            LifecycleAction::Recover => {
                if !key.archived {
                    return Err(wrong("the key is not archived"));
                }
                key.archived = false;
            }
            LifecycleAction::ScheduleDestruction {
                pending_window_days,
                suspend_if_active,
            } => {
                let days = destruction_window(*pending_window_days)?;
                if key.destroy_after.is_some() {
                    return Err(Error::conflict(format!(
                        "destruction of key {} is already scheduled",
                        key.id
                    )));
                }
                if *suspend_if_active && from == KeyState::Active {
                    let to = lifecycle::apply(from, Transition::Suspend, &target)?;
                    events.push(event(
                        &key,
                        None,
                        now,
                        actor,
                        LifecycleAction::Suspend.name(),
                        Some(from),
                        Some(to),
                        Some("before a scheduled destruction".into()),
                    ));
                    key.state = to;
                    event_from = to;
                }
                lifecycle::apply(key.state, Transition::Destroy, &target)?;
                key.destroy_after = Some(now + Duration::days(days as i64));
            }
            LifecycleAction::Destroy => {
                return Err(Error::internal("Destroy is resolved before the move"))
            }
            LifecycleAction::CancelDestruction => {
                if key.destroy_after.is_none() {
                    return Err(wrong("no destruction is scheduled"));
                }
                key.destroy_after = None;
            }
        }
        let mut reason_text = reason;
        if let LifecycleAction::Deactivate(r) = action {
            reason_text = Some(match reason_text {
                Some(c) => format!("{}: {c}", r.as_str()),
                None => r.as_str().to_string(),
            });
        }
        if let LifecycleAction::ScheduleDestruction { .. } = action {
            let due = key
                .destroy_after
                .map(|d| d.to_rfc3339())
                .unwrap_or_default();
            reason_text = Some(match reason_text {
                Some(c) => format!("due {due}: {c}"),
                None => format!("due {due}"),
            });
        }
        events.push(event(
            &key,
            None,
            now,
            actor,
            action.name(),
            Some(event_from),
            record_to.or(Some(key.state)),
            reason_text,
        ));
        Ok(((key, vec![], events), versions))
    }

    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    fn version_move(
        &self,
        key: Key,
        mut versions: Vec<KeyVersion>,
        n: u32,
        action: &LifecycleAction,
        reason: Option<String>,
        now: DateTime<Utc>,
        actor: &str,
    ) -> Result<((Key, Vec<VersionWrite>, Vec<KeyEvent>), Vec<KeyVersion>)> {
        let idx = versions
            .iter()
            .position(|v| v.version == n)
            .ok_or_else(|| Error::not_found("version", format!("{n} of key {}", key.id)))?;
        let mut v = versions[idx].clone();
        let from = v.state;
        let target = format!("version {n} of key {}", key.id);
        let wrong = |detail: &str| Error::WrongState {
            operation: action.name().into(),
            target: target.clone(),
            state: from,
            detail: Some(StateDetail::other(detail)),
        };
        if v.archived && !matches!(action, LifecycleAction::Recover) {
            return Err(wrong(
                "the version is archived; a tenant-admin must recover it first",
            ));
        }
        match action {
            LifecycleAction::Activate
            | LifecycleAction::Resume
            | LifecycleAction::Suspend
            | LifecycleAction::Deactivate(_)
            | LifecycleAction::ReportCompromise => {
                let t = action
                    .transition()
                    .ok_or_else(|| Error::internal("not a state move"))?;
                if matches!(t, Transition::Activate | Transition::Resume)
                    && v.destroy_after.is_some()
                {
                    return Err(wrong("destruction is scheduled; cancel it first"));
                }
                v.state = lifecycle::apply(from, t, &target)?;
                v.deactivation_reason = match t {
                    Transition::Deactivate(r) => Some(r),
                    _ if v.state == KeyState::Deactivated => v.deactivation_reason,
                    _ => None,
                };
            }
            LifecycleAction::Archive => {
                if v.state.is_destroyed() {
                    return Err(wrong("a destroyed version cannot be archived"));
                }
                v.archived = true;
            }
            LifecycleAction::Recover => {
                if !v.archived {
                    return Err(wrong("the version is not archived"));
                }
                v.archived = false;
            }
            LifecycleAction::ScheduleDestruction {
                pending_window_days,
                ..
            } => {
                let days = destruction_window(*pending_window_days)?;
                if n == key.primary_version {
                    return Err(wrong(
                        "the primary version cannot be destroyed; rotate first or destroy the key",
                    ));
                }
                if v.destroy_after.is_some() {
                    return Err(Error::conflict(format!(
                        "destruction of {target} is already scheduled"
                    )));
                }
                lifecycle::apply(from, Transition::Destroy, &target)?;
                v.destroy_after = Some(now + Duration::days(days as i64));
            }
            LifecycleAction::Destroy => {
                return Err(Error::internal("Destroy is resolved before the move"))
            }
            LifecycleAction::CancelDestruction => {
                if v.destroy_after.is_none() {
                    return Err(wrong("no destruction is scheduled"));
                }
                v.destroy_after = None;
            }
        }
        let ev = event(
            &key,
            Some(n),
            now,
            actor,
            action.name(),
            Some(from),
            Some(v.state),
            reason,
        );
        versions[idx] = v.clone();
        Ok((
            (
                key,
                vec![VersionWrite {
                    version: v,
                    material: MaterialChange::Keep,
                }],
                vec![ev],
            ),
            versions,
        ))
    }
}
