//! The lifecycle state machine, exactly as the table in DESIGN.md draws it.
//!
//! | state | protect | process | can move to |
//! |---|---|---|---|
//! | pre-active | no | no | active, destroyed, compromised |
//! | active | yes | yes | suspended, deactivated, compromised |
//! | suspended | no | no | active, deactivated, compromised, destroyed |
//! | deactivated | no | yes | compromised, destroyed |
//! | compromised | no | yes (flagged) | destroyed-compromised |
//! | destroyed | no | no | destroyed-compromised |
//! | destroyed-compromised | no | no | — |
//!
//! Suspension is the kill switch: a suspended key serves nothing on any door until it is
//! resumed (as AWS, Google Cloud and Azure treat a disabled key). A key or version whose
//! destruction is scheduled serves nothing either, whatever its state (AWS's
//! PendingDeletion); cancelling the destruction gives back what the state allows. Doors
//! whose protocol knows only enabled and disabled (AWS, XKS) cannot tell a caller that a key
//! decrypts but no longer encrypts, so there a key serves either direction only when it
//! serves both ([`check_use`] with such a door, [`usable_now`] for what they report).
//!
//! Everything here is a pure function of its arguments (the clock is passed in), so the whole
//! table is tested without a runtime, a store or a socket. The service asks this module and
//! nothing else whether a use or a move is allowed: one place for each rule.

use chrono::{DateTime, Utc};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::access::Door;
use crate::error::{Error, Result, StateDetail};
use crate::model::{DeactivationReason, Key, KeyState, KeyVersion};

/// The two classes of cryptographic use that the lifecycle distinguishes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// Applying protection: encrypt, sign, wrap, MAC generation, encapsulate.
    Protect,
    /// Processing protected data: decrypt, verify, unwrap, MAC verification, decapsulate.
    Process,
}

/// A requested move of a key or a version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Activate,
    Suspend,
    Resume,
    Deactivate(DeactivationReason),
    ReportCompromise,
    Destroy,
}

impl Transition {
    /// The operation's name as users see it, for error messages and history.
    pub fn name(self) -> &'static str {
        match self {
            Transition::Activate => "activate",
            Transition::Suspend => "suspend",
            Transition::Resume => "resume",
            Transition::Deactivate(_) => "deactivate",
            Transition::ReportCompromise => "report-compromise",
            Transition::Destroy => "destroy",
        }
    }
}

/// The "can move to" column of the table.
pub fn can_move(from: KeyState, to: KeyState) -> bool {
    use KeyState::*;
    matches!(
        (from, to),
        (PreActive, Active | Destroyed | Compromised)
            | (Active, Suspended | Deactivated | Compromised)
            | (Suspended, Active | Deactivated | Compromised | Destroyed)
            | (Deactivated, Compromised | Destroyed)
            | (Compromised, DestroyedCompromised)
            | (Destroyed, DestroyedCompromised)
    )
}

/// The "protect" and "process" columns of the table.
pub fn allows(state: KeyState, use_: Use) -> bool {
    use KeyState::*;
    match use_ {
        Use::Protect => state == Active,
        Use::Process => matches!(state, Active | Deactivated | Compromised),
    }
}

/// The state a transition leads to from `from`, or a [`Error::WrongState`] naming both.
///
/// `target` names what moves ("key 1234…", "version 2 of key 1234…") in the error.
pub fn apply(from: KeyState, t: Transition, target: &str) -> Result<KeyState> {
    use KeyState::*;
    let to = match t {
        Transition::Activate if from == PreActive => Some(Active),
        Transition::Resume if from == Suspended => Some(Active),
        Transition::Activate | Transition::Resume => None,
        Transition::Suspend => Some(Suspended),
        Transition::Deactivate(_) => Some(Deactivated),
        Transition::ReportCompromise => Some(if from.is_destroyed() {
            DestroyedCompromised
        } else {
            Compromised
        }),
        Transition::Destroy => Some(if from == Compromised {
            DestroyedCompromised
        } else {
            Destroyed
        }),
    };
    match to {
        Some(to) if can_move(from, to) => Ok(to),
        _ => Err(Error::WrongState {
            operation: t.name().to_string(),
            target: target.to_string(),
            state: from,
            detail: None,
        }),
    }
}

/// The state a key is in at `now` once its dates have had their effect: an activation date
/// that has passed makes a pre-active key active; a deactivation date that has passed makes
/// it deactivated (reason: expired). The background task persists these moves; this function
/// makes them exact between two runs of it.
pub fn effective_state(key: &Key, now: DateTime<Utc>) -> (KeyState, Option<DeactivationReason>) {
    let mut state = key.state;
    let mut reason = key.deactivation_reason;
    if state == KeyState::PreActive && key.activation_date.is_some_and(|d| d <= now) {
        state = KeyState::Active;
    }
    if matches!(state, KeyState::Active | KeyState::Suspended)
        && key.deactivation_date.is_some_and(|d| d <= now)
    {
        state = KeyState::Deactivated;
        reason = Some(DeactivationReason::Expired);
    }
    (state, reason)
}

/// What a permitted use should tell the caller and the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UseVerdict {
    /// The key or version is compromised: processing is allowed but must be flagged.
    pub compromised: bool,
}

/// True for doors whose protocol has only an enabled and a disabled key status (AWS's
/// `KeyState`, XKS's `keyStatus`): there a key is usable in one direction only when it is
/// usable in both, so that what the door reports is what it does.
pub fn binary_status(door: Door) -> bool {
    matches!(door, Door::Aws | Door::Xks)
}

/// What the key (not one version) allows now, direction by direction: the rule
/// [`check_use`] applies at the key level, for doors and listings that report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct UsableNow {
    /// New protection (encrypt, sign, wrap, MAC generation) would be applied.
    pub protect: bool,
    /// Protected data would be processed (decrypt, verify, unwrap, MAC verification).
    pub process: bool,
}

/// [`UsableNow`] of `key` at `now`: what its state, dates, archive flag, imported material
/// and any scheduled destruction allow, before usages and permissions are considered.
pub fn usable_now(key: &Key, now: DateTime<Utc>) -> UsableNow {
    UsableNow {
        protect: check_key(key, Use::Protect, "use", now).is_ok(),
        process: check_key(key, Use::Process, "use", now).is_ok(),
    }
}

/// The key-level half of [`check_use`].
fn check_key(key: &Key, use_: Use, operation: &str, now: DateTime<Utc>) -> Result<KeyState> {
    let (key_state, _) = effective_state(key, now);
    let refuse = |detail: Option<StateDetail>| Error::WrongState {
        operation: operation.to_string(),
        target: format!("key {}", key.id),
        state: key_state,
        detail,
    };
    if key.archived {
        return Err(refuse(Some(StateDetail::other(
            "the key is archived; a tenant-admin must recover it first",
        ))));
    }
    if key.destroy_after.is_some() && !key_state.is_destroyed() {
        return Err(refuse(Some(StateDetail::PendingDestruction)));
    }
    if !allows(key_state, use_) {
        return Err(refuse(None));
    }
    if key.pending_import {
        return Err(refuse(Some(StateDetail::PendingImport)));
    }
    if use_ == Use::Process && key.process_start_date.is_some_and(|d| now < d) {
        return Err(refuse(Some(StateDetail::other(
            "the key's process-start date has not come",
        ))));
    }
    if use_ == Use::Protect && key.protect_stop_date.is_some_and(|d| d <= now) {
        return Err(refuse(Some(StateDetail::other(
            "the key's protect-stop date has passed",
        ))));
    }
    Ok(key_state)
}

/// Whether `version` of `key` may be used for `use_` at `now`, through `door`. The one rule
/// for every use.
///
/// Both the key and the version must allow the use, neither may be archived or scheduled
/// for destruction, after the key's protect-stop date no new protection is applied, and
/// on a door with a binary status ([`binary_status`]) the key must allow both directions.
pub fn check_use(
    key: &Key,
    version: &KeyVersion,
    use_: Use,
    operation: &str,
    now: DateTime<Utc>,
    door: Door,
) -> Result<UseVerdict> {
    let key_state = check_key(key, use_, operation, now)?;
    if binary_status(door) {
        let other = match use_ {
            Use::Protect => Use::Process,
            Use::Process => Use::Protect,
        };
        check_key(key, other, operation, now).map_err(|e| match e {
            Error::WrongState {
                operation,
                target,
                state,
                detail,
            } => Error::WrongState {
                operation,
                target,
                state,
                detail: Some(StateDetail::Other(format!(
                    "{}the {} door serves a key only while it both encrypts and decrypts",
                    detail.map(|d| format!("{d}; ")).unwrap_or_default(),
                    door.as_str().to_uppercase()
                ))),
            },
            e => e,
        })?;
    }
    if version.material_deleted {
        return Err(Error::WrongState {
            operation: operation.to_string(),
            target: format!("key {}", key.id),
            state: key_state,
            detail: Some(StateDetail::PendingImport),
        });
    }
    let version_target = format!("version {} of key {}", version.version, key.id);
    if version.archived {
        return Err(Error::WrongState {
            operation: operation.to_string(),
            target: version_target,
            state: version.state,
            detail: Some(StateDetail::other(
                "the version is archived; a tenant-admin must recover it first",
            )),
        });
    }
    if version.destroy_after.is_some() && !version.state.is_destroyed() {
        return Err(Error::WrongState {
            operation: operation.to_string(),
            target: version_target,
            state: version.state,
            detail: Some(StateDetail::PendingDestruction),
        });
    }
    if !allows(version.state, use_) {
        return Err(Error::WrongState {
            operation: operation.to_string(),
            target: version_target,
            state: version.state,
            detail: None,
        });
    }
    Ok(UseVerdict {
        compromised: key_state == KeyState::Compromised || version.state == KeyState::Compromised,
    })
}

/// Bounds on the waiting period before a scheduled destruction, in days.
pub const DESTRUCTION_WAIT_DAYS: std::ops::RangeInclusive<u32> = 1..=365;
/// The waiting period when the request names none.
pub const DEFAULT_DESTRUCTION_WAIT_DAYS: u32 = 30;

/// The earliest moment at which something is due for this key without anyone asking:
/// activation, deactivation, a scheduled destruction (of the key or a version) or an
/// automatic rotation. The store indexes it so that the background task finds due keys
/// without scanning.
pub fn next_due(key: &Key, versions: &[KeyVersion]) -> Option<DateTime<Utc>> {
    let mut due: Vec<DateTime<Utc>> = Vec::new();
    if key.state.is_destroyed() {
        return None;
    }
    // A pre-active key is due at activation (a deactivation date that has also passed is
    // applied in the same run); only active and suspended keys expire by date.
    if key.state == KeyState::PreActive {
        due.extend(key.activation_date);
    }
    if matches!(key.state, KeyState::Active | KeyState::Suspended) {
        due.extend(key.deactivation_date);
    }
    due.extend(key.destroy_after);
    if !key.pending_import {
        due.extend(key.material_expires_at);
    }
    if key.state == KeyState::Active && key.rotation_period_days.is_some() {
        due.extend(key.next_rotation_at);
    }
    due.extend(
        versions
            .iter()
            .filter(|v| !v.state.is_destroyed())
            .filter_map(|v| v.destroy_after),
    );
    due.into_iter().min()
}

#[cfg(test)]
mod tests {
    use super::*;
    use KeyState::*;

    fn key(state: KeyState) -> Key {
        let t = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        Key {
            id: uuid::Uuid::nil(),
            tenant_id: uuid::Uuid::nil(),
            name: "k".into(),
            description: String::new(),
            spec: crate::model::KeySpec::Aes256,
            usage: vec![crate::model::KeyUsage::EncryptDecrypt],
            origin: crate::model::Origin::Generated,
            extractable: false,
            tags: Default::default(),
            meta: serde_json::json!({}),
            state,
            deactivation_reason: None,
            archived: false,
            created_at: t,
            updated_at: t,
            activation_date: None,
            protect_stop_date: None,
            process_start_date: None,
            exported: false,
            pending_import: false,
            material_expires_at: None,
            deactivation_date: None,
            compromise_date: None,
            destroy_after: None,
            destroyed_at: None,
            rotation_period_days: None,
            next_rotation_at: None,
            last_rotated_at: None,
            primary_version: 1,
            protection_level: Default::default(),
            raw_cipher_modes: false,
            usage_limits: None,
            policy: Default::default(),
            revision: 1,
        }
    }

    /// Whatever is due must be something the task can act on, or the key would be due
    /// again on every run: a pre-active key with no activation date never expires by itself.
    #[test]
    fn next_due_only_names_actionable_dates() {
        let past = DateTime::<Utc>::from_timestamp(1_600_000_000, 0).unwrap();
        let mut k = key(PreActive);
        k.deactivation_date = Some(past);
        assert_eq!(next_due(&k, &[]), None);
        k.activation_date = Some(past);
        assert_eq!(next_due(&k, &[]), Some(past));
        let (s, r) = effective_state(&k, past + chrono::Duration::days(1));
        assert_eq!((s, r), (Deactivated, Some(DeactivationReason::Expired)));
        for st in [Deactivated, Compromised, Destroyed, DestroyedCompromised] {
            let mut k = key(st);
            k.deactivation_date = Some(past);
            k.rotation_period_days = Some(1);
            k.next_rotation_at = Some(past);
            assert_eq!(next_due(&k, &[]), None, "{st}");
        }
        let mut k = key(Suspended);
        k.rotation_period_days = Some(1);
        k.next_rotation_at = Some(past);
        assert_eq!(next_due(&k, &[]), None, "a suspended key does not rotate");
        k.destroy_after = Some(past);
        assert_eq!(next_due(&k, &[]), Some(past));
    }

    fn version(state: KeyState) -> KeyVersion {
        KeyVersion {
            key_id: uuid::Uuid::nil(),
            version: 1,
            state,
            deactivation_reason: None,
            archived: false,
            created_at: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap(),
            destroy_after: None,
            destroyed_at: None,
            public_key: None,
            public_only: false,
            digest: None,
            material_deleted: false,
        }
    }

    /// Suspension and a scheduled destruction stop every use on every door; deactivated and
    /// compromised keys still process on REST and KMIP but serve nothing on AWS and XKS,
    /// which can only say enabled or disabled.
    #[test]
    fn kill_switches_and_binary_doors() {
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let all = [Door::Rest, Door::Kmip, Door::Aws, Door::Xks];
        let ok = |k: &Key, u, d| check_use(k, &version(Active), u, "op", now, d).is_ok();
        let k = key(Suspended);
        for d in all {
            assert!(
                !ok(&k, Use::Process, d) && !ok(&k, Use::Protect, d),
                "{d:?}"
            );
        }
        let mut k = key(Active);
        k.destroy_after = Some(now + chrono::Duration::days(3));
        for d in all {
            assert!(
                !ok(&k, Use::Process, d) && !ok(&k, Use::Protect, d),
                "{d:?}"
            );
        }
        assert_eq!(usable_now(&k, now), UsableNow::default());
        k.destroy_after = None;
        assert!(ok(&k, Use::Process, Door::Xks) && ok(&k, Use::Protect, Door::Aws));
        assert_eq!(
            usable_now(&k, now),
            UsableNow {
                protect: true,
                process: true
            }
        );
        for st in [Deactivated, Compromised] {
            let k = key(st);
            assert!(ok(&k, Use::Process, Door::Rest) && ok(&k, Use::Process, Door::Kmip));
            assert!(!ok(&k, Use::Process, Door::Aws) && !ok(&k, Use::Process, Door::Xks));
        }
        let mut k = key(Active);
        k.protect_stop_date = Some(now - chrono::Duration::days(1));
        assert!(ok(&k, Use::Process, Door::Rest));
        assert!(
            !ok(&k, Use::Process, Door::Xks),
            "past protect-stop: disabled on XKS"
        );
        let mut v = version(Active);
        v.destroy_after = Some(now);
        assert!(check_use(&key(Active), &v, Use::Process, "op", now, Door::Rest).is_err());
    }

    #[test]
    fn table_protect_and_process_columns() {
        let expect = [
            (PreActive, false, false),
            (Active, true, true),
            (Suspended, false, false),
            (Deactivated, false, true),
            (Compromised, false, true),
            (Destroyed, false, false),
            (DestroyedCompromised, false, false),
        ];
        for (s, p, q) in expect {
            assert_eq!(allows(s, Use::Protect), p, "{s} protect");
            assert_eq!(allows(s, Use::Process), q, "{s} process");
        }
    }

    #[test]
    fn table_can_move_column() {
        let allowed = [
            (PreActive, vec![Active, Destroyed, Compromised]),
            (Active, vec![Suspended, Deactivated, Compromised]),
            (Suspended, vec![Active, Deactivated, Compromised, Destroyed]),
            (Deactivated, vec![Compromised, Destroyed]),
            (Compromised, vec![DestroyedCompromised]),
            (Destroyed, vec![DestroyedCompromised]),
            (DestroyedCompromised, vec![]),
        ];
        for (from, tos) in allowed {
            for to in KeyState::ALL {
                assert_eq!(can_move(from, to), tos.contains(&to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn every_transition_result_is_a_legal_move() {
        let ts = [
            Transition::Activate,
            Transition::Suspend,
            Transition::Resume,
            Transition::Deactivate(DeactivationReason::Revoked),
            Transition::ReportCompromise,
            Transition::Destroy,
        ];
        for from in KeyState::ALL {
            for t in ts {
                match apply(from, t, "key k") {
                    Ok(to) => assert!(can_move(from, to), "{from} --{}--> {to}", t.name()),
                    Err(Error::WrongState {
                        state, operation, ..
                    }) => {
                        assert_eq!(state, from);
                        assert_eq!(operation, t.name());
                    }
                    Err(e) => panic!("unexpected {e}"),
                }
            }
        }
        assert_eq!(apply(Active, Transition::Activate, "k").ok(), None);
        assert_eq!(apply(PreActive, Transition::Resume, "k").ok(), None);
        assert_eq!(
            apply(Compromised, Transition::Destroy, "k"),
            Ok(DestroyedCompromised)
        );
        assert_eq!(
            apply(Destroyed, Transition::ReportCompromise, "k"),
            Ok(DestroyedCompromised)
        );
    }

    #[test]
    fn wrong_state_message_names_state_and_operation() {
        let e = apply(Active, Transition::Destroy, "key abc").unwrap_err();
        let m = e.to_string();
        assert!(
            m.contains("destroy") && m.contains("ACTIVE") && m.contains("key abc"),
            "{m}"
        );
    }
}

#[cfg(test)]
mod props {
    use super::*;
    use proptest::prelude::*;

    fn transition() -> impl Strategy<Value = Transition> {
        prop_oneof![
            Just(Transition::Activate),
            Just(Transition::Suspend),
            Just(Transition::Resume),
            Just(Transition::Deactivate(DeactivationReason::Revoked)),
            Just(Transition::ReportCompromise),
            Just(Transition::Destroy),
        ]
    }

    proptest! {
        /// Any sequence of requested moves, applied where allowed, only ever takes legal
        /// steps; once destroyed nothing is usable again; nothing leaves
        /// DESTROYED_COMPROMISED; a compromised key never protects again.
        #[test]
        fn random_walks_stay_in_the_table(start in 0usize..7, moves in proptest::collection::vec(transition(), 0..40)) {
            let mut s = KeyState::ALL[start];
            let mut was_destroyed = s.is_destroyed();
            let mut was_compromised = matches!(s, KeyState::Compromised | KeyState::DestroyedCompromised);
            for t in moves {
                match apply(s, t, "k") {
                    Ok(to) => {
                        prop_assert!(can_move(s, to));
                        s = to;
                    }
                    Err(Error::WrongState { state, .. }) => prop_assert_eq!(state, s),
                    Err(e) => prop_assert!(false, "unexpected {}", e),
                }
                was_destroyed |= s.is_destroyed();
                was_compromised |= matches!(s, KeyState::Compromised | KeyState::DestroyedCompromised);
                if was_destroyed {
                    prop_assert!(s.is_destroyed());
                    prop_assert!(!allows(s, Use::Process) && !allows(s, Use::Protect));
                }
                if was_compromised {
                    prop_assert!(!allows(s, Use::Protect));
                }
            }
            if s == KeyState::DestroyedCompromised {
                for t in [Transition::Activate, Transition::Suspend, Transition::Resume, Transition::ReportCompromise, Transition::Destroy] {
                    prop_assert!(apply(s, t, "k").is_err());
                }
            }
        }
    }
}
