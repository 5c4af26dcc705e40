//! The audit trail's data and its tamper evidence, without I/O.
//!
//! Every event is appended to one hash chain: the stored form of event `n` is the canonical
//! JSON of the event with its sequence number and the SHA-256 of event `n-1`'s stored form
//! (`prev`), and its own hash is the SHA-256 of those bytes. Editing, deleting, inserting or
//! reordering a record breaks a link; recomputing every later link to hide that is what the
//! signed [`Checkpoint`]s catch, since a forger does not hold the audit signing key. The
//! [`ChainVerifier`] walks a trail (from the store or an export) and names the first record
//! that does not hold. Signature checks are passed in as a function, so this module needs no
//! crypto library beyond SHA-256.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The `prev` of the first event.
pub const GENESIS: [u8; 32] = [0u8; 32];

/// One thing that happened: a request through a door (allowed or refused) or something
/// the server did by itself. Never key material, never a credential, never plaintext.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub at: DateTime<Utc>,
    pub request_id: String,
    /// The tenant the event belongs to (`None` for a caller that never authenticated).
    pub tenant_id: Option<Uuid>,
    pub principal_id: Option<Uuid>,
    /// The principal's name, `system` for the server itself, `anonymous` before
    /// authentication.
    pub principal: String,
    /// How the caller authenticated (`api_token`, `session`, `certificate`, `jwt`).
    pub credential: Option<String>,
    /// The client's address.
    pub source: String,
    /// `rest`, `kmip`, `aws`, `system`.
    pub door: String,
    /// The action's name (see `arca_core::access::ACTIONS`).
    pub operation: String,
    pub key_id: Option<Uuid>,
    pub key_version: Option<u32>,
    /// `ok`, or the error code of the refusal or failure.
    pub outcome: String,
    /// Other facts: the refusal message, an approval id, a new state.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub detail: serde_json::Map<String, serde_json::Value>,
}

/// An event as it sits in the chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainedEvent {
    /// Position in the chain, from 1, without gaps.
    pub seq: u64,
    /// Hex SHA-256 of the previous event's stored form (zeros for the first).
    pub prev: String,
    #[serde(flatten)]
    pub event: AuditEvent,
}

/// A record as read back: its position, the hash stored beside it and its stored bytes.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    pub seq: u64,
    pub hash: [u8; 32],
    /// The canonical JSON of a [`ChainedEvent`].
    pub doc: String,
    /// The store's searchable copy of the record's fields, when read from a store (an
    /// export has none).
    pub columns: Option<AuditColumns>,
}

/// The searchable copy of an event's fields that a store keeps beside the hashed record
/// (its index columns). They are not hashed themselves, so [`ChainVerifier`] compares them
/// with the record and a search checks each row it returns: a search can never answer from
/// columns that disagree with the verified chain, and an edited column is a break.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AuditColumns {
    /// `at` in milliseconds since the epoch.
    pub at_ms: i64,
    pub tenant_id: Option<String>,
    pub principal_id: Option<String>,
    pub principal: String,
    pub operation: String,
    pub key_id: Option<String>,
    pub outcome: String,
}

impl AuditColumns {
    /// The columns a store writes for an event.
    pub fn of(e: &AuditEvent) -> AuditColumns {
        AuditColumns {
            at_ms: e.at.timestamp_millis(),
            tenant_id: e.tenant_id.map(|t| t.to_string()),
            principal_id: e.principal_id.map(|p| p.to_string()),
            principal: e.principal.clone(),
            operation: e.operation.clone(),
            key_id: e.key_id.map(|k| k.to_string()),
            outcome: e.outcome.clone(),
        }
    }

    /// The first column that differs from the record, if any.
    pub fn mismatch(&self, e: &AuditEvent) -> Option<&'static str> {
        let want = AuditColumns::of(e);
        [
            ("at", self.at_ms == want.at_ms),
            ("tenant_id", self.tenant_id == want.tenant_id),
            ("principal_id", self.principal_id == want.principal_id),
            ("principal", self.principal == want.principal),
            ("operation", self.operation == want.operation),
            ("key_id", self.key_id == want.key_id),
            ("outcome", self.outcome == want.outcome),
        ]
        .into_iter()
        .find(|(_, same)| !same)
        .map(|(name, _)| name)
    }
}

/// The operation of the event the server records just before it signs a checkpoint: the
/// chain itself then says that a checkpoint was signed there, so a trail whose checkpoints
/// were deleted no longer verifies.
pub const CHECKPOINT_OPERATION: &str = crate::Action::SignAuditCheckpoint.name();

impl StoredEvent {
    /// Decodes the event (the chain is checked by [`ChainVerifier`], not here).
    pub fn decode(&self) -> Result<ChainedEvent, String> {
        serde_json::from_str(&self.doc).map_err(|e| format!("does not decode: {e}"))
    }

    /// Checks the record on its own (not its place in the chain): its content matches its
    /// hash, and the store's searchable columns match its content. A search runs this on
    /// every row it returns, so that it never answers from an edited index.
    pub fn check_alone(&self) -> Result<ChainedEvent, String> {
        if sha256(self.doc.as_bytes()) != self.hash {
            return Err("its content does not match its hash (the record was edited)".into());
        }
        let decoded = self.decode()?;
        if let Some(column) = self
            .columns
            .as_ref()
            .and_then(|c| c.mismatch(&decoded.event))
        {
            return Err(format!(
                "its searchable {column} column differs from the hashed record (the index was edited)"
            ));
        }
        Ok(decoded)
    }

    /// The export form: the stored object with its `hash` beside it, one JSON line that a
    /// SIEM reads as an event and `arca audit verify` reads as a link.
    pub fn export_line(&self) -> String {
        let mut v: serde_json::Value =
            serde_json::from_str(&self.doc).unwrap_or(serde_json::Value::Null);
        if let serde_json::Value::Object(m) = &mut v {
            m.insert("hash".into(), hex(&self.hash).into());
        }
        String::from_utf8(canonical(&v)).unwrap_or_default()
    }
}

/// Links the next event into the chain: its stored form and hash.
pub fn link(seq: u64, prev: &[u8; 32], event: &AuditEvent) -> StoredEvent {
    PreparedEvent::new(event.clone()).link(seq, prev)
}

/// An event already in its stored form but for its place in the chain (`seq` and `prev`),
/// which only the store knows when it appends. Preparing is most of the work of linking
/// (the canonical JSON of every field); doing it where the event is made, on the request's
/// own task, leaves the one writer that appends the chain in turn only the two numbers to
/// splice in and a SHA-256 per event. [`PreparedEvent::link`] gives exactly what
/// [`link`] gives.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedEvent {
    pub event: AuditEvent,
    /// The canonical JSON up to where `"prev":` goes, then up to where `"seq":` goes, then
    /// the rest (each with its separating commas).
    parts: [Vec<u8>; 3],
}

impl From<AuditEvent> for PreparedEvent {
    fn from(event: AuditEvent) -> Self {
        PreparedEvent::new(event)
    }
}

impl PreparedEvent {
    /// Encodes every field of the event canonically (as [`canonical`] would with `prev`
    /// and `seq` among them).
    pub fn new(event: AuditEvent) -> Self {
        let fields = match serde_json::to_value(&event) {
            Ok(serde_json::Value::Object(m)) => m,
            _ => serde_json::Map::new(),
        };
        let mut sorted: Vec<(&str, Option<&serde_json::Value>)> =
            fields.iter().map(|(k, v)| (k.as_str(), Some(v))).collect();
        sorted.push(("prev", None));
        sorted.push(("seq", None));
        sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut parts: [Vec<u8>; 3] = Default::default();
        let mut part = 0;
        parts[0].push(b'{');
        for (i, (k, v)) in sorted.into_iter().enumerate() {
            if i > 0 {
                parts[part].push(b',');
            }
            let Some(v) = v else {
                // `prev` or `seq`: its key and value are spliced in here by `link`.
                part += 1;
                continue;
            };
            write_canonical(&serde_json::Value::String(k.to_string()), &mut parts[part]);
            parts[part].push(b':');
            write_canonical(v, &mut parts[part]);
        }
        parts[2].push(b'}');
        PreparedEvent { event, parts }
    }

    /// The stored form and hash of this event at `seq`, after the record whose hash is
    /// `prev`.
    pub fn link(&self, seq: u64, prev: &[u8; 32]) -> StoredEvent {
        let mut bytes = Vec::with_capacity(self.parts.iter().map(Vec::len).sum::<usize>() + 96);
        bytes.extend_from_slice(&self.parts[0]);
        bytes.extend_from_slice(b"\"prev\":\"");
        bytes.extend_from_slice(hex(prev).as_bytes());
        bytes.push(b'"');
        bytes.extend_from_slice(&self.parts[1]);
        bytes.extend_from_slice(b"\"seq\":");
        bytes.extend_from_slice(seq.to_string().as_bytes());
        bytes.extend_from_slice(&self.parts[2]);
        let hash: [u8; 32] = Sha256::digest(&bytes).into();
        StoredEvent {
            seq,
            hash,
            doc: String::from_utf8(bytes).unwrap_or_default(),
            columns: None,
        }
    }
}

/// Compact JSON with object keys in byte order at every level: the one encoding that is
/// hashed and signed, whatever produced the value.
pub fn canonical(v: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(v, &mut out);
    out
}

fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    match v {
        serde_json::Value::Object(m) => {
            let sorted: BTreeMap<&String, &serde_json::Value> = m.iter().collect();
            out.push(b'{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                out.extend_from_slice(
                    serde_json::to_string(k)
                        .unwrap_or_else(|_| "\"\"".into())
                        .as_bytes(),
                );
                out.push(b':');
                write_canonical(v, out);
            }
            out.push(b'}');
        }
        serde_json::Value::Array(a) => {
            out.push(b'[');
            for (i, v) in a.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_canonical(v, out);
            }
            out.push(b']');
        }
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

/// Lower-case hex.
pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Parses 64 hex digits.
pub fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

/// SHA-256 of a byte string.
pub fn sha256(b: &[u8]) -> [u8; 32] {
    Sha256::digest(b).into()
}

/// A signed statement that the chain up to `seq` ends in `hash`. Since every hash covers all
/// earlier records, one signature vouches for the whole prefix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Checkpoint {
    pub seq: u64,
    /// Hex SHA-256 of event `seq`'s stored form.
    pub hash: String,
    pub at: DateTime<Utc>,
    /// Fingerprint of the signing public key ([`key_fingerprint`]).
    pub signer: String,
    /// Base64 (standard, padded) Ed25519 signature over [`Checkpoint::signed_bytes`].
    pub signature: String,
}

impl Checkpoint {
    /// What is signed: the canonical JSON of everything but the signature, with a type tag
    /// so that a checkpoint signature can never pass for a receipt's or vice versa.
    pub fn signed_bytes(&self) -> Vec<u8> {
        canonical(&serde_json::json!({
            "type": "arca-audit-checkpoint-v1",
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "signer": self.signer,
        }))
    }
}

/// Proof that a key version's material was destroyed: who asked, who approved, when. Signed
/// by the audit signing key, checked by `arca audit verify-receipt`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DestructionReceipt {
    pub tenant_id: Uuid,
    pub key_id: Uuid,
    pub key_name: String,
    pub version: u32,
    pub destroyed_at: DateTime<Utc>,
    /// Who scheduled the destruction (`name:id`), or `system` for a policy.
    pub requested_by: String,
    /// The approvers, when a quorum rule covered the request.
    #[serde(default)]
    pub approved_by: Vec<String>,
    pub approval_id: Option<Uuid>,
    pub signer: String,
    pub signature: String,
}

impl DestructionReceipt {
    /// What is signed: every field but the signature, canonically, with a type tag.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut v = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let serde_json::Value::Object(m) = &mut v {
            m.remove("signature");
            m.insert("type".into(), "arca-destruction-receipt-v1".into());
        }
        canonical(&v)
    }
}

/// The fingerprint by which checkpoints and receipts name their signing key: hex SHA-256
/// of the raw public key, first 16 bytes.
pub fn key_fingerprint(public_key: &[u8]) -> String {
    hex(&sha256(public_key)[..16])
}

/// One line of the key usage report: how often a principal used a key for an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct UsageRow {
    pub key_id: Uuid,
    pub operation: String,
    pub principal: String,
    pub count: u64,
    pub last_at: DateTime<Utc>,
}

/// The first record that does not hold, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error, utoipa::ToSchema)]
#[error("record {seq}: {problem}")]
pub struct ChainBreak {
    /// The record (sequence number) at which the trail stops holding.
    pub seq: u64,
    pub problem: String,
}

/// What a successful verification covered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct VerifyReport {
    pub events: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    /// Hex SHA-256 of the last record.
    pub last_hash: String,
    /// Signed checkpoints, every one verified.
    pub checkpoints: u64,
    /// The record the last signed checkpoint covers (0 if none).
    pub last_checkpoint_seq: u64,
    /// Events after the last checkpoint: linked, but not yet vouched for by a signature.
    pub unsigned_tail: u64,
}

/// Walks a trail in order and stops at the first record that does not hold. Feed it every
/// checkpoint first ([`ChainVerifier::checkpoint`]), then every event in sequence order
/// ([`ChainVerifier::event`]), then call [`ChainVerifier::finish`].
pub struct ChainVerifier<F: Fn(&Checkpoint) -> bool> {
    verify_signature: F,
    checkpoints: BTreeMap<u64, Checkpoint>,
    next_seq: u64,
    prev: [u8; 32],
    report: VerifyReport,
    /// The last two records that say a checkpoint was signed at them (older first).
    signed_at: [Option<u64>; 2],
}

impl<F: Fn(&Checkpoint) -> bool> ChainVerifier<F> {
    /// A verifier for a trail starting at event 1; `verify_signature` checks a checkpoint
    /// against the trusted public key.
    pub fn new(verify_signature: F) -> Self {
        ChainVerifier {
            verify_signature,
            checkpoints: BTreeMap::new(),
            next_seq: 1,
            prev: GENESIS,
            report: VerifyReport::default(),
            signed_at: [None, None],
        }
    }

    /// Adds a checkpoint; a bad signature is a break at the checkpoint's record.
    pub fn checkpoint(&mut self, c: Checkpoint) -> Result<(), ChainBreak> {
        if !(self.verify_signature)(&c) {
            return Err(ChainBreak {
                seq: c.seq,
                problem: format!(
                    "the checkpoint at this record has an invalid signature (signer {})",
                    c.signer
                ),
            });
        }
        if self.checkpoints.insert(c.seq, c.clone()).is_some() {
            return Err(ChainBreak {
                seq: c.seq,
                problem: "two checkpoints claim this record".into(),
            });
        }
        Ok(())
    }

    /// Checks the next record: its position, its link to the one before, its own hash
    /// and, where a checkpoint covers it, the signed hash.
    pub fn event(&mut self, e: &StoredEvent) -> Result<(), ChainBreak> {
        let expect = self.next_seq;
        let brk = |seq: u64, problem: String| Err(ChainBreak { seq, problem });
        if e.seq < expect {
            return brk(
                e.seq,
                format!("out of order or duplicated (expected record {expect} next)"),
            );
        }
        if e.seq > expect {
            return brk(
                expect,
                format!(
                    "missing: record {} comes next (a record was removed or the order changed)",
                    e.seq
                ),
            );
        }
        let computed = sha256(e.doc.as_bytes());
        if computed != e.hash {
            return brk(
                e.seq,
                "its content does not match its hash (the record was edited)".into(),
            );
        }
        let decoded = match e.decode() {
            Ok(d) => d,
            Err(p) => return brk(e.seq, p),
        };
        if decoded.seq != e.seq {
            return brk(
                e.seq,
                format!(
                    "it holds record {} (records were moved or swapped)",
                    decoded.seq
                ),
            );
        }
        if decoded.prev != hex(&self.prev) {
            return brk(
                e.seq,
                format!(
                    "its link to record {} does not match (a record before it was changed, removed or inserted)",
                    e.seq.saturating_sub(1)
                ),
            );
        }
        let as_value: serde_json::Value = serde_json::from_str(&e.doc).unwrap_or_default();
        if canonical(&as_value) != e.doc.as_bytes() {
            return brk(e.seq, "it is not in canonical form".into());
        }
        if let Some(column) = e.columns.as_ref().and_then(|c| c.mismatch(&decoded.event)) {
            return brk(
                e.seq,
                format!("its searchable {column} column differs from the hashed record (the index was edited)"),
            );
        }
        if decoded.event.operation == CHECKPOINT_OPERATION {
            self.signed_at = [self.signed_at[1], Some(e.seq)];
        }
        if let Some(c) = self.checkpoints.get(&e.seq) {
            if c.hash != hex(&computed) {
                return brk(
                    e.seq,
                    "it differs from what the signed checkpoint vouches for (the trail up to here was rewritten)"
                        .into(),
                );
            }
            self.report.last_checkpoint_seq = e.seq;
        }
        if self.report.events == 0 {
            self.report.first_seq = e.seq;
        }
        self.report.events += 1;
        self.report.last_seq = e.seq;
        self.prev = computed;
        self.next_seq = e.seq + 1;
        Ok(())
    }

    /// Ends the walk: a checkpoint beyond the last record means the tail was cut off.
    pub fn finish(mut self) -> Result<VerifyReport, ChainBreak> {
        if let Some((&seq, _)) = self.checkpoints.range(self.next_seq..).next() {
            return Err(ChainBreak {
                seq: self.next_seq,
                problem: format!(
                    "missing: the trail ends at record {} but a signed checkpoint covers record {seq} (the tail was truncated)",
                    self.next_seq - 1
                ),
            });
        }
        let signed = self.checkpoints.keys().next_back().copied();
        if self.report.events > 0 && signed.is_none() {
            return Err(ChainBreak {
                seq: self.report.last_seq,
                problem: "no signed checkpoint vouches for any record (a server signs one at every start: they were removed)".into(),
            });
        }
        // Every record saying a checkpoint was signed must be covered by one, but the
        // newest (its checkpoint may still be on its way to the store).
        if let Some(at) = self.signed_at[0] {
            if signed.is_none_or(|s| s < at) {
                return Err(ChainBreak {
                    seq: at,
                    problem: "a checkpoint was signed at this record, and no checkpoint covers it (checkpoints were removed)".into(),
                });
            }
        }
        self.report.checkpoints = self.checkpoints.len() as u64;
        self.report.last_hash = hex(&self.prev);
        self.report.unsigned_tail = self.report.last_seq - self.report.last_checkpoint_seq;
        Ok(self.report)
    }
}

/// Parses one line of an export: an event (with its `hash`) or `{"checkpoint": {...}}`.
pub enum ExportLine {
    Event(StoredEvent),
    Checkpoint(Checkpoint),
}

/// Reads a line of `arca audit export` output.
pub fn parse_export_line(line: &str) -> Result<ExportLine, String> {
    let mut v: serde_json::Value =
        serde_json::from_str(line).map_err(|e| format!("is not JSON: {e}"))?;
    let m = v
        .as_object_mut()
        .ok_or_else(|| "is not a JSON object".to_string())?;
    if let Some(c) = m.remove("checkpoint") {
        return serde_json::from_value(c)
            .map(ExportLine::Checkpoint)
            .map_err(|e| format!("is not a checkpoint: {e}"));
    }
    let hash = m
        .remove("hash")
        .and_then(|h| h.as_str().and_then(unhex32))
        .ok_or_else(|| "has no valid \"hash\"".to_string())?;
    let seq = m
        .get("seq")
        .and_then(|s| s.as_u64())
        .ok_or_else(|| "has no \"seq\"".to_string())?;
    let doc = String::from_utf8(canonical(&v)).map_err(|e| e.to_string())?;
    Ok(ExportLine::Event(StoredEvent {
        seq,
        hash,
        doc,
        columns: None,
    }))
}

/// The export form of a checkpoint.
pub fn checkpoint_line(c: &Checkpoint) -> String {
    String::from_utf8(canonical(&serde_json::json!({ "checkpoint": c }))).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_event_links_to_the_bytes_of_the_canonical_form() {
        let mut e = ev(7);
        e.tenant_id = Some(Uuid::from_u128(1));
        e.key_version = Some(3);
        e.detail.insert(
            "zeta \"quoted\"".into(),
            serde_json::json!({"b": [1, "x"], "a": null}),
        );
        e.detail.insert("alpha".into(), "é\u{1}".into());
        for (seq, prev) in [(1, GENESIS), (u64::MAX, [0xab; 32])] {
            let chained = ChainedEvent {
                seq,
                prev: hex(&prev),
                event: e.clone(),
            };
            let want = canonical(&serde_json::to_value(&chained).unwrap());
            let got = PreparedEvent::new(e.clone()).link(seq, &prev);
            assert_eq!(got.doc.as_bytes(), &want[..]);
            assert_eq!(got.hash, sha256(&want));
            assert_eq!(got.decode().unwrap(), chained);
        }
    }

    fn ev(i: u32) -> AuditEvent {
        AuditEvent {
            at: DateTime::from_timestamp(1_700_000_000 + i as i64, 0).unwrap(),
            request_id: format!("req-{i}"),
            tenant_id: None,
            principal_id: None,
            principal: "alice".into(),
            credential: Some("api_token".into()),
            source: "127.0.0.1:1".into(),
            door: "rest".into(),
            operation: "Encrypt".into(),
            key_id: Some(Uuid::nil()),
            key_version: Some(1),
            outcome: "ok".into(),
            detail: Default::default(),
        }
    }

    fn chain(n: u32) -> Vec<StoredEvent> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|i| {
                let s = link(i as u64, &prev, &ev(i));
                prev = s.hash;
                s
            })
            .collect()
    }

    /// A "signature" that only this test can make: the hash reversed.
    fn cp(e: &StoredEvent) -> Checkpoint {
        let mut c = Checkpoint {
            seq: e.seq,
            hash: hex(&e.hash),
            at: DateTime::from_timestamp(0, 0).unwrap(),
            signer: "t".into(),
            signature: String::new(),
        };
        c.signature = c.hash.chars().rev().collect();
        c
    }

    fn verify(events: &[StoredEvent], cps: &[Checkpoint]) -> Result<VerifyReport, ChainBreak> {
        let mut v = ChainVerifier::new(|c: &Checkpoint| {
            c.signature == c.hash.chars().rev().collect::<String>()
        });
        for c in cps {
            v.checkpoint(c.clone())?;
        }
        for e in events {
            v.event(e)?;
        }
        v.finish()
    }

    #[test]
    fn untouched_chain_verifies() {
        let c = chain(10);
        let r = verify(&c, &[cp(&c[4]), cp(&c[9])]).unwrap();
        assert_eq!((r.events, r.checkpoints, r.unsigned_tail), (10, 2, 0));
        let r = verify(&c, &[cp(&c[4])]).unwrap();
        assert_eq!(r.unsigned_tail, 5);
    }

    #[test]
    fn each_tampering_is_found_at_the_right_record() {
        let c = chain(10);
        let cps = [cp(&c[9])];
        // edit: flip a byte of record 4
        let mut t = c.clone();
        t[3].doc = t[3].doc.replacen("Encrypt", "Encrypu", 1);
        assert_eq!(verify(&t, &cps).unwrap_err().seq, 4);
        // delete record 6
        let mut t = c.clone();
        t.remove(5);
        assert_eq!(verify(&t, &cps).unwrap_err().seq, 6);
        // insert a record after 3, renumbering and re-hashing everything after it
        let mut t: Vec<StoredEvent> = c[..3].to_vec();
        let mut prev = t[2].hash;
        for i in 4..=11u32 {
            let s = link(i as u64, &prev, &ev(if i == 4 { 99 } else { i - 1 }));
            prev = s.hash;
            t.push(s);
        }
        assert_eq!(verify(&t, &cps).unwrap_err().seq, 10);
        // swap records 7 and 8
        let mut t = c.clone();
        t.swap(6, 7);
        assert_eq!(verify(&t, &cps).unwrap_err().seq, 7);
        // truncate the tail
        let t = c[..8].to_vec();
        assert_eq!(verify(&t, &cps).unwrap_err().seq, 9);
        // a forged checkpoint
        let mut bad = cp(&c[9]);
        bad.signature = "x".into();
        assert_eq!(verify(&c, &[bad]).unwrap_err().seq, 10);
    }

    /// Issue 17: the searchable columns were outside the chain, so they could be edited
    /// while verification said intact and search gave false answers.
    #[test]
    fn an_edited_search_column_is_a_break() {
        let mut c = chain(5);
        for (i, e) in c.iter_mut().enumerate() {
            e.columns = Some(AuditColumns::of(&ev(i as u32 + 1)));
        }
        let cps = [cp(&c[4])];
        assert!(verify(&c, &cps).is_ok());
        for edit in [
            |k: &mut AuditColumns| k.operation = "Describe".into(),
            |k: &mut AuditColumns| k.principal = "mallory".into(),
            |k: &mut AuditColumns| k.outcome = "not_permitted".into(),
            |k: &mut AuditColumns| k.key_id = None,
            |k: &mut AuditColumns| k.at_ms += 1,
        ] {
            let mut t = c.clone();
            edit(t[2].columns.as_mut().unwrap());
            let b = verify(&t, &cps).unwrap_err();
            assert_eq!(b.seq, 3);
            assert!(b.problem.contains("column"), "{}", b.problem);
            assert!(t[2].check_alone().is_err());
        }
    }

    /// Issue 17: a trail whose checkpoints were all deleted verified.
    #[test]
    fn removed_checkpoints_are_a_break() {
        let c = chain(4);
        assert!(verify(&c, &[])
            .unwrap_err()
            .problem
            .contains("no signed checkpoint"));
        // Records saying "a checkpoint was signed here": every one but the newest must be
        // covered.
        let mut prev = GENESIS;
        let t: Vec<StoredEvent> = (1..=6u32)
            .map(|i| {
                let mut e = ev(i);
                if i == 2 || i == 5 {
                    e.operation = CHECKPOINT_OPERATION.into();
                }
                let s = link(i as u64, &prev, &e);
                prev = s.hash;
                s
            })
            .collect();
        assert!(verify(&t, &[cp(&t[1]), cp(&t[4])]).is_ok());
        assert!(
            verify(&t, &[cp(&t[1])]).is_ok(),
            "the newest may be on its way"
        );
        let b = verify(&t, &[cp(&t[0])]).unwrap_err();
        assert_eq!(b.seq, 2);
        assert!(b.problem.contains("no checkpoint covers it"));
    }

    #[test]
    fn export_lines_round_trip() {
        let c = chain(3);
        for e in &c {
            match parse_export_line(&e.export_line()).unwrap() {
                ExportLine::Event(back) => assert_eq!(&back, e),
                ExportLine::Checkpoint(_) => panic!("not a checkpoint"),
            }
        }
        let k = cp(&c[2]);
        match parse_export_line(&checkpoint_line(&k)).unwrap() {
            ExportLine::Checkpoint(back) => assert_eq!(back, k),
            ExportLine::Event(_) => panic!("not an event"),
        }
    }

    #[test]
    fn canonical_sorts_keys_at_every_level() {
        let v = serde_json::json!({"b": {"z": 1, "a": [ {"y": 2, "x": 3} ]}, "a": "é\n"});
        assert_eq!(
            String::from_utf8(canonical(&v)).unwrap(),
            r#"{"a":"é\n","b":{"a":[{"x":3,"y":2}],"z":1}}"#
        );
    }
}
