//! The audit trail's data and its tamper evidence, without I/O.
//!
//! Every event is appended to one hash chain: the stored form of event `n` is an encoding of
//! the event with its sequence number and the SHA-256 of event `n-1`'s stored form (`prev`),
//! and its own hash is the SHA-256 of those bytes. The encoding is the compact binary form
//! (v2, [`encode_compact`]) since issue 20; records written before are canonical JSON (v1)
//! and still verify, and a trail switches from v1 to v2 once, never back. Editing, deleting, inserting or
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
    /// The hashed bytes of a [`ChainedEvent`]: its compact form (v2, first byte
    /// [`COMPACT`]) or, for a record written before it, its canonical JSON (v1, first byte
    /// `{`).
    pub doc: Vec<u8>,
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

/// The operation of the event that records a prune: its `detail.through_seq` names the last
/// record removed from the store. A store (or an export of one) that starts after record 1
/// must hold the record of a prune naming exactly where it starts.
pub const PRUNE_OPERATION: &str = crate::Action::PruneAudit.name();

/// A sealed segment of the trail: records `first_seq..=last_seq`, closed by a signed
/// checkpoint at `last_seq`, written to a file of the archive directory (JSON lines in the
/// export form: the events and the checkpoints in the range).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditSegment {
    pub first_seq: u64,
    pub last_seq: u64,
    /// Hex SHA-256 of record `last_seq` (what its closing checkpoint signs).
    pub last_hash: String,
    /// When record `last_seq` was written (the segment's age, for pruning by age).
    pub last_at: DateTime<Utc>,
    /// The file's name in the archive directory ([`segment_file_name`]).
    pub file: String,
    /// Hex SHA-256 of the file's bytes as written.
    pub sha256: String,
    pub archived_at: DateTime<Utc>,
    /// When its records were deleted from the store (`None`: still there too).
    #[serde(default)]
    pub pruned_at: Option<DateTime<Utc>>,
}

/// The file name of the segment `first..=last`: `arca-audit-<first>-<last>.jsonl`.
pub fn segment_file_name(first: u64, last: u64) -> String {
    format!("arca-audit-{first}-{last}.jsonl")
}

/// The range a segment file's name claims, if it is a segment file's name.
pub fn parse_segment_file_name(name: &str) -> Option<(u64, u64)> {
    let (first, last) = name
        .strip_prefix("arca-audit-")?
        .strip_suffix(".jsonl")?
        .split_once('-')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(first) || !digits(last) {
        return None;
    }
    let (first, last) = (first.parse().ok()?, last.parse().ok()?);
    (first >= 1 && first <= last).then_some((first, last))
}

impl StoredEvent {
    /// Whether the record is in the compact form (v2); else it is canonical JSON (v1).
    pub fn is_compact(&self) -> bool {
        self.doc.first() == Some(&COMPACT)
    }

    /// Decodes the event (the chain is checked by [`ChainVerifier`], not here). A compact
    /// record decodes only from its one canonical encoding.
    pub fn decode(&self) -> Result<ChainedEvent, String> {
        match self.doc.first() {
            Some(&COMPACT) => decode_compact(&self.doc),
            Some(b'{') => {
                serde_json::from_slice(&self.doc).map_err(|e| format!("does not decode: {e}"))
            }
            _ => Err("does not decode: its stored form is neither JSON nor compact".into()),
        }
    }

    /// Checks the record on its own (not its place in the chain): its content matches its
    /// hash, and the store's searchable columns match its content. A search runs this on
    /// every row it returns, so that it never answers from an edited index.
    pub fn check_alone(&self) -> Result<ChainedEvent, String> {
        if sha256(&self.doc) != self.hash {
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

    /// The export form: the event's fields as JSON with its `hash` beside it, one JSON line
    /// that a SIEM reads as an event and `arca audit verify` reads as a link. A compact
    /// record's line also says `"v":2`: the verifier rebuilds the compact bytes from the
    /// line's fields to check the hash ([`parse_export_line`]).
    pub fn export_line(&self) -> String {
        let mut v: serde_json::Value = if self.is_compact() {
            match decode_compact(&self.doc) {
                Ok(c) => {
                    let mut v = serde_json::to_value(&c).unwrap_or(serde_json::Value::Null);
                    if let serde_json::Value::Object(m) = &mut v {
                        m.insert("v".into(), 2.into());
                    }
                    v
                }
                Err(_) => serde_json::Value::Null,
            }
        } else {
            serde_json::from_slice(&self.doc).unwrap_or(serde_json::Value::Null)
        };
        if let serde_json::Value::Object(m) = &mut v {
            m.insert("hash".into(), hex(&self.hash).into());
        }
        String::from_utf8(canonical(&v)).unwrap_or_default()
    }
}

/// Links the next event into the chain: its stored form (compact) and hash.
pub fn link(seq: u64, prev: &[u8; 32], event: &AuditEvent) -> StoredEvent {
    PreparedEvent::new(event.clone()).link(seq, prev)
}

/// Links an event in the stored form of records written before the compact form: the
/// canonical JSON of the [`ChainedEvent`] (v1). Arca no longer writes it; kept to test
/// and to migrate trails that hold such records.
pub fn link_json(seq: u64, prev: &[u8; 32], event: &AuditEvent) -> StoredEvent {
    let chained = ChainedEvent {
        seq,
        prev: hex(prev),
        event: event.clone(),
    };
    let doc = canonical(&serde_json::to_value(&chained).unwrap_or(serde_json::Value::Null));
    StoredEvent {
        seq,
        hash: sha256(&doc),
        doc,
        columns: None,
    }
}

/// An event already in its stored form but for its place in the chain (`seq` and `prev`),
/// which only the store knows when it appends. Preparing is most of the work of linking
/// (the encoding of every field); doing it where the event is made, on the request's own
/// task, leaves the one writer that appends the chain in turn only the two numbers to
/// splice in and a SHA-256 per event. [`PreparedEvent::link`] gives exactly what
/// [`link`] gives.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedEvent {
    pub event: AuditEvent,
    /// The compact encoding of the event's fields (what follows `seq` and `prev`).
    body: Vec<u8>,
    /// The same without the fields a store keeps in its searchable columns
    /// ([`without_columns`]).
    rest: Vec<u8>,
}

impl From<AuditEvent> for PreparedEvent {
    fn from(event: AuditEvent) -> Self {
        PreparedEvent::new(event)
    }
}

impl PreparedEvent {
    /// Encodes every field of the event (as [`encode_compact`] would, but for `seq` and
    /// `prev`).
    pub fn new(event: AuditEvent) -> Self {
        let mut body = Vec::with_capacity(160);
        encode_body(&event, &mut body);
        let mut rest = Vec::with_capacity(96);
        encode_body(&without_columns(&event), &mut rest);
        PreparedEvent { event, body, rest }
    }

    /// The stored form and hash of this event at `seq`, after the record whose hash is
    /// `prev`.
    pub fn link(&self, seq: u64, prev: &[u8; 32]) -> StoredEvent {
        let doc = splice(seq, prev, &self.body);
        StoredEvent {
            seq,
            hash: sha256(&doc),
            doc,
            columns: None,
        }
    }

    /// What a store keeps of the record at `seq` beside its searchable columns
    /// ([`AuditColumns`]) and the hash of the record before it: the compact form without
    /// the fields the columns hold and without `prev` (the previous record's hash, which the
    /// store holds already), from which [`rebuild_with_columns`] gives back the hashed
    /// bytes.
    pub fn without_columns(&self, seq: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.rest.len() + 12);
        out.push(COMPACT);
        put_varint(&mut out, seq);
        out.extend_from_slice(&self.rest);
        out
    }
}

fn splice(seq: u64, prev: &[u8; 32], body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 44);
    out.push(COMPACT);
    put_varint(&mut out, seq);
    out.extend_from_slice(prev);
    out.extend_from_slice(body);
    out
}

/// The first byte of a record in the compact form (v2). A record in the JSON form (v1)
/// starts with `{`.
pub const COMPACT: u8 = 2;

const F_TENANT: u8 = 1;
const F_PRINCIPAL: u8 = 2;
const F_KEY: u8 = 4;
const F_VERSION: u8 = 8;
const F_CREDENTIAL: u8 = 16;
const F_REQUEST_UUID: u8 = 32;

/// The compact form (v2) of a chained event: the bytes that are hashed. Deterministic, one
/// encoding per event:
///
/// - `0x02`, then `seq` (LEB128 varint), then `prev` (32 raw bytes);
/// - `at`: seconds since the epoch (zigzag varint), then nanoseconds (varint);
/// - a flags byte: `1` tenant, `2` principal id, `4` key id, `8` key version,
///   `16` credential present, `32` request id held as a UUID;
/// - the present UUIDs (16 bytes each: tenant, principal id, key id), then the key version
///   (varint) if present;
/// - the request id: 16 bytes when it is a UUID in its lower-case hyphenated text form,
///   else a string;
/// - strings (varint length, UTF-8): `principal`, `credential` (if present), `source`,
///   `door`, `operation`, `outcome`;
/// - `detail`: its canonical JSON as a string, empty when it has no entry.
pub fn encode_compact(c: &ChainedEvent) -> Result<Vec<u8>, String> {
    let prev = unhex32(&c.prev).ok_or("has no valid \"prev\"")?;
    let mut body = Vec::with_capacity(160);
    encode_body(&c.event, &mut body);
    Ok(splice(c.seq, &prev, &body))
}

/// Decodes a compact record; only its canonical encoding decodes (anything that
/// [`encode_compact`] would not give back byte for byte is refused).
pub fn decode_compact(b: &[u8]) -> Result<ChainedEvent, String> {
    let mut r = Reader(b);
    let decoded = (|| {
        if r.bytes(1)?[0] != COMPACT {
            return Err("it is not in the compact form".to_string());
        }
        let seq = r.varint()?;
        let prev = hex(r.bytes(32)?);
        let event = decode_body(&mut r)?;
        if !r.0.is_empty() {
            return Err("bytes follow its last field".into());
        }
        Ok(ChainedEvent { seq, prev, event })
    })()
    .map_err(|e| format!("does not decode: {e}"))?;
    if encode_compact(&decoded)? != b {
        return Err("it is not in canonical form".into());
    }
    Ok(decoded)
}

/// The event with the fields a store's searchable columns hold left out (blank): tenant,
/// principal id and name, operation, key id, outcome, and `at` but for its fraction of a
/// millisecond (the `at` column holds milliseconds).
fn without_columns(e: &AuditEvent) -> AuditEvent {
    let sub_ms = e.at.timestamp_subsec_nanos() % 1_000_000;
    AuditEvent {
        at: DateTime::from_timestamp(0, sub_ms).unwrap_or_default(),
        tenant_id: None,
        principal_id: None,
        principal: String::new(),
        operation: String::new(),
        key_id: None,
        outcome: String::new(),
        ..e.clone()
    }
}

/// The hashed bytes of a record a store kept as its searchable columns and the rest
/// ([`PreparedEvent::without_columns`]), after the record whose hash is `prev`: the
/// columns are part of the record itself, so an edited column changes these bytes and no
/// longer matches the record's hash.
pub fn rebuild_with_columns(
    rest: &[u8],
    prev: &[u8; 32],
    columns: &AuditColumns,
) -> Result<Vec<u8>, String> {
    // `prev` goes back in after the version byte and `seq`.
    let mut r = Reader(rest);
    r.bytes(1)?;
    r.varint()?;
    let at = rest.len() - r.0.len();
    let mut whole = Vec::with_capacity(rest.len() + 32);
    whole.extend_from_slice(&rest[..at]);
    whole.extend_from_slice(prev);
    whole.extend_from_slice(&rest[at..]);
    let mut c = decode_compact(&whole)?;
    let id = |name: &str, v: &Option<String>| -> Result<Option<Uuid>, String> {
        v.as_deref()
            .map(|s| match Uuid::parse_str(s) {
                Ok(u) if u.to_string() == s => Ok(u),
                _ => Err(format!(
                    "its searchable {name} column is not an id (the index was edited)"
                )),
            })
            .transpose()
    };
    let sub_ms = i64::from(c.event.at.timestamp_subsec_nanos());
    let e = &mut c.event;
    e.at = DateTime::from_timestamp_millis(columns.at_ms)
        .and_then(|t| t.checked_add_signed(chrono::Duration::nanoseconds(sub_ms)))
        .ok_or("its searchable at column is out of range (the index was edited)")?;
    e.tenant_id = id("tenant_id", &columns.tenant_id)?;
    e.principal_id = id("principal_id", &columns.principal_id)?;
    e.key_id = id("key_id", &columns.key_id)?;
    e.principal = columns.principal.clone();
    e.operation = columns.operation.clone();
    e.outcome = columns.outcome.clone();
    encode_compact(&c)
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn encode_body(e: &AuditEvent, out: &mut Vec<u8>) {
    let secs = e.at.timestamp();
    put_varint(out, ((secs << 1) ^ (secs >> 63)) as u64);
    put_varint(out, u64::from(e.at.timestamp_subsec_nanos()));
    let request_uuid = Uuid::parse_str(&e.request_id)
        .ok()
        .filter(|u| u.hyphenated().to_string() == e.request_id);
    let mut flags = 0;
    for (present, flag) in [
        (e.tenant_id.is_some(), F_TENANT),
        (e.principal_id.is_some(), F_PRINCIPAL),
        (e.key_id.is_some(), F_KEY),
        (e.key_version.is_some(), F_VERSION),
        (e.credential.is_some(), F_CREDENTIAL),
        (request_uuid.is_some(), F_REQUEST_UUID),
    ] {
        if present {
            flags |= flag;
        }
    }
    out.push(flags);
    for id in [e.tenant_id, e.principal_id, e.key_id]
        .into_iter()
        .flatten()
    {
        out.extend_from_slice(id.as_bytes());
    }
    if let Some(v) = e.key_version {
        put_varint(out, u64::from(v));
    }
    match request_uuid {
        Some(u) => out.extend_from_slice(u.as_bytes()),
        None => put_str(out, &e.request_id),
    }
    put_str(out, &e.principal);
    if let Some(c) = &e.credential {
        put_str(out, c);
    }
    for s in [&e.source, &e.door, &e.operation, &e.outcome] {
        put_str(out, s);
    }
    if e.detail.is_empty() {
        put_varint(out, 0);
    } else {
        let mut d = Vec::with_capacity(64);
        write_canonical_map(&e.detail, &mut d);
        put_varint(out, d.len() as u64);
        out.extend_from_slice(&d);
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn bytes(&mut self, n: usize) -> Result<&'a [u8], String> {
        if self.0.len() < n {
            return Err("it is cut short".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.bytes(1)?[0];
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("a number is too long".into())
    }

    fn uuid(&mut self) -> Result<Uuid, String> {
        Uuid::from_slice(self.bytes(16)?).map_err(|e| e.to_string())
    }

    fn string(&mut self) -> Result<String, String> {
        let n = usize::try_from(self.varint()?).map_err(|e| e.to_string())?;
        String::from_utf8(self.bytes(n)?.to_vec()).map_err(|_| "a text is not UTF-8".into())
    }
}

fn decode_body(r: &mut Reader) -> Result<AuditEvent, String> {
    let z = r.varint()?;
    let secs = ((z >> 1) as i64) ^ -((z & 1) as i64);
    let nanos = u32::try_from(r.varint()?).map_err(|e| e.to_string())?;
    let at = DateTime::from_timestamp(secs, nanos).ok_or("its time is out of range")?;
    let flags = r.bytes(1)?[0];
    if flags >= 64 {
        return Err("it has unknown flags".into());
    }
    let mut id = |flag: u8| -> Result<Option<Uuid>, String> {
        if flags & flag != 0 {
            r.uuid().map(Some)
        } else {
            Ok(None)
        }
    };
    let (tenant_id, principal_id, key_id) = (id(F_TENANT)?, id(F_PRINCIPAL)?, id(F_KEY)?);
    let key_version = if flags & F_VERSION != 0 {
        Some(u32::try_from(r.varint()?).map_err(|e| e.to_string())?)
    } else {
        None
    };
    let request_id = if flags & F_REQUEST_UUID != 0 {
        r.uuid()?.to_string()
    } else {
        r.string()?
    };
    let principal = r.string()?;
    let credential = if flags & F_CREDENTIAL != 0 {
        Some(r.string()?)
    } else {
        None
    };
    let (source, door, operation, outcome) = (r.string()?, r.string()?, r.string()?, r.string()?);
    let detail = r.string()?;
    let detail = if detail.is_empty() {
        serde_json::Map::new()
    } else {
        serde_json::from_str(&detail)
            .map_err(|e| format!("its detail is not a JSON object: {e}"))?
    };
    Ok(AuditEvent {
        at,
        request_id,
        tenant_id,
        principal_id,
        principal,
        credential,
        source,
        door,
        operation,
        key_id,
        key_version,
        outcome,
        detail,
    })
}

/// Compact JSON with object keys in byte order at every level: the one encoding that is
/// hashed and signed, whatever produced the value.
pub fn canonical(v: &serde_json::Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    write_canonical(v, &mut out);
    out
}

fn write_canonical_map(m: &serde_json::Map<String, serde_json::Value>, out: &mut Vec<u8>) {
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

fn write_canonical(v: &serde_json::Value, out: &mut Vec<u8>) {
    match v {
        serde_json::Value::Object(m) => write_canonical_map(m, out),
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
    /// Records `1..=archived_through` were pruned from the store (they are in the archive
    /// files); the trail verified here starts at the signed checkpoint at that record.
    /// 0 when the trail starts at record 1.
    #[serde(default)]
    pub archived_through: u64,
    /// Archived segment files verified (with `arca audit verify --archive`).
    #[serde(default)]
    pub segments: u64,
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
    /// Whether the trail may start after record 1, at a signed checkpoint (a pruned store).
    allow_anchor: bool,
    /// `detail.through_seq` of the newest successful prune record seen.
    last_prune: Option<u64>,
    /// Whether a successful prune record names the anchor the walk started at.
    anchor_pruned: bool,
    /// Whether a record in the compact form (v2) was seen: no JSON (v1) record may follow.
    compact_seen: bool,
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
            allow_anchor: false,
            last_prune: None,
            anchor_pruned: false,
            compact_seen: false,
        }
    }

    /// Lets the trail start after record 1, where records `1..=n` were pruned: its first
    /// record must follow a signed checkpoint at `n` (the anchor, trusted for its
    /// signature), and the trail must hold the record of the prune through `n`. Without
    /// this, a trail that does not start at record 1 is a break.
    pub fn allow_anchor(mut self) -> Self {
        self.allow_anchor = true;
        self
    }

    /// Continues a walk after a trusted signed checkpoint `anchor` (the end of the segment
    /// before, checked by its signature): the next record must be `anchor.seq + 1` and link
    /// to it.
    pub fn resume(verify_signature: F, anchor: Checkpoint) -> Result<Self, ChainBreak> {
        let mut v = ChainVerifier::new(verify_signature);
        let hash = unhex32(&anchor.hash).ok_or_else(|| ChainBreak {
            seq: anchor.seq,
            problem: "the checkpoint at this record has no valid hash".into(),
        })?;
        let seq = anchor.seq;
        v.checkpoint(anchor)?;
        v.next_seq = seq + 1;
        v.prev = hash;
        v.report.last_checkpoint_seq = seq;
        Ok(v)
    }

    /// The last record checked so far (0 before the first).
    pub fn position(&self) -> u64 {
        self.next_seq - 1
    }

    /// Starts the walk at the signed checkpoint just before `first` (see
    /// [`ChainVerifier::allow_anchor`]).
    fn anchor_at(&mut self, first: u64) -> Result<(), ChainBreak> {
        let at = first - 1;
        let Some(hash) = self.checkpoints.get(&at).and_then(|c| unhex32(&c.hash)) else {
            return Err(ChainBreak {
                seq: 1,
                problem: format!(
                    "missing: the trail starts at record {first}, and no signed checkpoint at record {at} anchors it (records were removed)"
                ),
            });
        };
        self.next_seq = first;
        self.prev = hash;
        self.report.archived_through = at;
        self.report.last_checkpoint_seq = at;
        Ok(())
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
        if let Some(had) = self.checkpoints.get(&c.seq) {
            // The same checkpoint read twice (from an archive file and the store) is one.
            if *had == c {
                return Ok(());
            }
            return Err(ChainBreak {
                seq: c.seq,
                problem: "two checkpoints claim this record".into(),
            });
        }
        self.checkpoints.insert(c.seq, c);
        Ok(())
    }

    /// Checks the next record: its position, its link to the one before, its own hash
    /// and, where a checkpoint covers it, the signed hash.
    pub fn event(&mut self, e: &StoredEvent) -> Result<(), ChainBreak> {
        if self.allow_anchor && self.report.events == 0 && self.next_seq == 1 && e.seq > 1 {
            self.anchor_at(e.seq)?;
        }
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
        let computed = sha256(&e.doc);
        if computed != e.hash {
            // A compact record read from a store takes its `prev` from the row before it:
            // that row edited with its hash recomputed shows here too.
            let why = if e.is_compact() && e.columns.is_some() {
                "the record was edited, or the one before it was with its hash recomputed"
            } else {
                "the record was edited"
            };
            return brk(
                e.seq,
                format!("its content does not match its hash ({why})"),
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
        if e.is_compact() {
            // A compact record decodes only from its canonical encoding (checked above).
            self.compact_seen = true;
        } else {
            if self.compact_seen {
                return brk(
                    e.seq,
                    "it is in the JSON form (v1) after records in the compact form (v2): a trail switches to the compact form once, never back".into(),
                );
            }
            let as_value: serde_json::Value = serde_json::from_slice(&e.doc).unwrap_or_default();
            if canonical(&as_value) != e.doc {
                return brk(e.seq, "it is not in canonical form".into());
            }
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
        if decoded.event.operation == PRUNE_OPERATION && decoded.event.outcome == "ok" {
            self.last_prune = decoded
                .event
                .detail
                .get("through_seq")
                .and_then(|v| v.as_u64());
            let anchor = self.report.archived_through;
            self.anchor_pruned |= anchor > 0 && self.last_prune == Some(anchor);
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
        // A trail that starts after record 1 holds the record of the prune that made it so,
        // naming exactly where it starts (deleting a prefix up to some checkpoint is not a
        // prune). Not only the newest: a sink's file that began on a pruned store starts at
        // the anchor of its time and holds later prunes too.
        let through = self.report.archived_through;
        if through > 0 && !self.anchor_pruned {
            return Err(ChainBreak {
                seq: through + 1,
                problem: format!(
                    "the trail starts after record {through}, but {} (records were removed without a prune)",
                    match self.last_prune {
                        Some(n) => format!("no prune of records through {through} is recorded (the newest removed records through {n})"),
                        None => "no prune is recorded".into(),
                    }
                ),
            });
        }
        self.report.checkpoints = self.checkpoints.len() as u64;
        self.report.last_hash = hex(&self.prev);
        self.report.unsigned_tail = self
            .report
            .last_seq
            .saturating_sub(self.report.last_checkpoint_seq);
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
    let doc = match m.remove("v") {
        None => canonical(&v),
        Some(n) if n == 2 => {
            // A compact record: its bytes are rebuilt from the line's fields, which must be
            // exactly the fields of the record (nothing added, nothing in another form).
            let c: ChainedEvent = serde_json::from_value(v.clone())
                .map_err(|e| format!("is not an audit event: {e}"))?;
            let back = serde_json::to_value(&c).map_err(|e| e.to_string())?;
            if canonical(&back) != canonical(&v) {
                return Err(format!(
                    "(record {seq}) has fields that are not those of a compact record (a field was added or written another way)"
                ));
            }
            encode_compact(&c)?
        }
        Some(other) => return Err(format!("is in an unknown form (\"v\": {other})")),
    };
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

    /// Replaces the first `from` in a stored form by `to` (same length).
    fn edit(doc: &mut [u8], from: &str, to: &str) {
        let at = doc
            .windows(from.len())
            .position(|w| w == from.as_bytes())
            .unwrap();
        doc[at..at + to.len()].copy_from_slice(to.as_bytes());
    }

    /// Events with every unusual value the compact form must carry exactly.
    fn odd_events() -> Vec<AuditEvent> {
        let mut all = Vec::new();
        let mut e = ev(7);
        e.at = DateTime::from_timestamp(1_764_700_000, 123_456_789).unwrap();
        e.tenant_id = Some(Uuid::from_u128(0xabcdef));
        e.principal_id = Some(Uuid::from_u128(u128::MAX));
        e.key_version = Some(u32::MAX);
        e.request_id = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".into();
        e.detail.insert(
            "zeta \"quoted\"".into(),
            serde_json::json!({"b": [1, "x", 2.5, -3, 1e300, true], "a": null, "é": {"": []}}),
        );
        e.detail.insert("alpha".into(), "é\u{1}\n\u{2028}".into());
        e.detail.insert("big".into(), u64::MAX.into());
        all.push(e.clone());
        // Absent optional fields, a request id that is not a UUID's canonical text, an
        // empty principal, a time before 1970 and one at the start of the epoch.
        let mut e = ev(8);
        e.tenant_id = None;
        e.principal_id = None;
        e.key_id = None;
        e.key_version = None;
        e.credential = None;
        e.request_id = "0193A1B2-C3D4-7E5F-8A9B-0C1D2E3F4A5B".into();
        e.principal = String::new();
        e.at = DateTime::from_timestamp(-1, 999_999_999).unwrap();
        all.push(e.clone());
        e.request_id = "{0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b}".into();
        e.at = DateTime::from_timestamp(0, 0).unwrap();
        e.key_version = Some(0);
        e.detail.insert("n".into(), serde_json::json!([]));
        all.push(e.clone());
        e.request_id = String::new();
        e.at = DateTime::from_timestamp(253_402_300_799, 1).unwrap();
        all.push(e);
        all
    }

    #[test]
    fn a_prepared_event_links_to_the_bytes_of_the_compact_form() {
        for e in odd_events() {
            for (seq, prev) in [(1, GENESIS), (300, [0x5a; 32]), (u64::MAX, [0xab; 32])] {
                let chained = ChainedEvent {
                    seq,
                    prev: hex(&prev),
                    event: e.clone(),
                };
                let want = encode_compact(&chained).unwrap();
                assert_eq!(want[0], COMPACT);
                let p = PreparedEvent::new(e.clone());
                let got = p.link(seq, &prev);
                assert_eq!(got.doc, want);
                assert_eq!(got.hash, sha256(&want));
                assert_eq!(got.decode().unwrap(), chained);
                assert_eq!(decode_compact(&want).unwrap(), chained);
                // What a store keeps beside the columns gives back the same bytes.
                let rest = p.without_columns(seq);
                assert!(rest.len() < want.len());
                let rebuilt = rebuild_with_columns(&rest, &prev, &AuditColumns::of(&e)).unwrap();
                assert_eq!(rebuilt, want);
                // The export line carries every field and gives back the record.
                let line = got.export_line();
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                assert_eq!(v["v"], 2);
                assert_eq!(v["request_id"], e.request_id.as_str());
                assert_eq!(v["detail"], serde_json::Value::Object(e.detail.clone()));
                match parse_export_line(&line).unwrap() {
                    ExportLine::Event(back) => assert_eq!(back, got),
                    ExportLine::Checkpoint(_) => panic!("not a checkpoint"),
                }
            }
        }
    }

    #[test]
    fn only_the_canonical_compact_encoding_decodes() {
        let good = link(3, &[1; 32], &odd_events()[0]).doc;
        // Cut short, a byte too many, an unknown flag, a non-minimal varint.
        assert!(decode_compact(&good[..good.len() - 1]).is_err());
        let mut t = good.clone();
        t.push(0);
        assert!(decode_compact(&t).is_err());
        let flags_at = 1 + 1 + 32 + 5 + 4;
        let mut t = good.clone();
        t[flags_at] |= 64;
        assert!(decode_compact(&t).is_err(), "unknown flag");
        let mut t = vec![COMPACT, 0x83, 0x00];
        t.extend_from_slice(&good[2..]);
        assert!(decode_compact(&t)
            .unwrap_err()
            .contains("not in canonical form"));
        // An explicitly empty detail is not how an empty detail is written.
        let e = ev(1);
        let mut t = link(1, &GENESIS, &e).doc;
        assert_eq!(t.pop(), Some(0));
        t.extend_from_slice(b"\x02{}");
        assert!(decode_compact(&t).is_err());
    }

    /// Every byte of a compact record is covered: flipping any one of them is a break at
    /// that record, and so is a column a store keeps beside it.
    #[test]
    fn tampering_with_any_byte_of_a_compact_record_is_found_there() {
        let mut prev = GENESIS;
        let c: Vec<StoredEvent> = (1..=6u32)
            .map(|i| {
                let e = if i == 4 {
                    odd_events()[0].clone()
                } else {
                    ev(i)
                };
                let s = link(i as u64, &prev, &e);
                prev = s.hash;
                s
            })
            .collect();
        let cps = [cp(&c[5])];
        assert!(verify(&c, &cps).is_ok());
        for at in 0..c[3].doc.len() {
            let mut t = c.clone();
            t[3].doc[at] ^= 0x01;
            let b = verify(&t, &cps).unwrap_err();
            assert_eq!(b.seq, 4, "byte {at}: {b}");
        }
        // The record as a store keeps it: columns and the rest.
        let e = odd_events()[0].clone();
        let p = PreparedEvent::new(e.clone());
        let rest = p.without_columns(4);
        for edit in [
            |k: &mut AuditColumns| k.operation = "Describe".into(),
            |k: &mut AuditColumns| k.principal = "mallory".into(),
            |k: &mut AuditColumns| k.outcome = "not_permitted".into(),
            |k: &mut AuditColumns| k.key_id = None,
            |k: &mut AuditColumns| k.tenant_id = Some(Uuid::from_u128(2).to_string()),
            |k: &mut AuditColumns| k.principal_id = None,
            |k: &mut AuditColumns| k.at_ms += 1,
            |k: &mut AuditColumns| k.tenant_id = k.tenant_id.as_ref().map(|t| t.to_uppercase()),
        ] {
            let mut cols = AuditColumns::of(&e);
            edit(&mut cols);
            let mut t = c.clone();
            t[3].doc =
                rebuild_with_columns(&rest, &c[2].hash, &cols).unwrap_or_else(|_| rest.clone());
            t[3].columns = Some(cols);
            let b = verify(&t, &cps).unwrap_err();
            assert_eq!(b.seq, 4, "{b}");
            assert!(t[3].check_alone().is_err());
        }
    }

    /// A trail written before the compact form switches to it once (at the migration), and
    /// verifies across the switch; a switch back is a break.
    #[test]
    fn a_trail_switches_from_json_to_compact_once() {
        let mut prev = GENESIS;
        let mixed: Vec<StoredEvent> = (1..=6u32)
            .map(|i| {
                let s = if i <= 3 {
                    link_json(i as u64, &prev, &ev(i))
                } else {
                    link(i as u64, &prev, &ev(i))
                };
                prev = s.hash;
                s
            })
            .collect();
        assert!(!mixed[2].is_compact() && mixed[3].is_compact());
        assert_eq!(mixed[0].doc[0], b'{');
        assert_eq!(mixed[1].decode().unwrap().event, ev(2));
        let r = verify(&mixed, &[cp(&mixed[5])]).unwrap();
        assert_eq!(r.events, 6);
        // Export lines of both forms verify too.
        let back: Vec<StoredEvent> = mixed
            .iter()
            .map(|e| match parse_export_line(&e.export_line()).unwrap() {
                ExportLine::Event(e) => e,
                ExportLine::Checkpoint(_) => panic!("not a checkpoint"),
            })
            .collect();
        assert_eq!(back, mixed);
        assert!(!mixed[0].export_line().contains("\"v\""));
        // An edit of a JSON record is still found there.
        let mut t = mixed.clone();
        edit(&mut t[1].doc, "Encrypt", "Encrypu");
        assert_eq!(verify(&t, &[cp(&t[5])]).unwrap_err().seq, 2);
        // Back to JSON after a compact record.
        let mut prev = GENESIS;
        let back_and_forth: Vec<StoredEvent> = (1..=4u32)
            .map(|i| {
                let s = if i == 3 {
                    link_json(i as u64, &prev, &ev(i))
                } else {
                    link(i as u64, &prev, &ev(i))
                };
                prev = s.hash;
                s
            })
            .collect();
        let b = verify(&back_and_forth, &[cp(&back_and_forth[3])]).unwrap_err();
        assert_eq!(b.seq, 3);
        assert!(b.problem.contains("never back"), "{b}");
    }

    /// A compact record's export line is checked against the bytes rebuilt from its fields:
    /// an edited field is a break at its record, an added field or another form of a value
    /// is refused.
    #[test]
    fn an_altered_compact_export_line_is_caught() {
        let c = chain(3);
        let line = c[1].export_line();
        let edited = line.replace("\"outcome\":\"ok\"", "\"outcome\":\"not_permitted\"");
        let ExportLine::Event(e) = parse_export_line(&edited).unwrap() else {
            panic!("not an event")
        };
        let mut t = c.clone();
        t[1] = e;
        assert_eq!(verify(&t, &[cp(&c[2])]).unwrap_err().seq, 2);
        for bad in [
            line.replace("\"outcome\"", "\"note\":\"x\",\"outcome\""),
            line.replace("\"key_version\":1", "\"key_version\":1.0"),
            line.replace("\"v\":2", "\"v\":3"),
        ] {
            assert!(parse_export_line(&bad).is_err(), "{bad}");
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
        edit(&mut t[3].doc, "Encrypt", "Encrypu");
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

    /// A chain whose record `prune_at` (if any) says records through `through` were pruned.
    fn chain_with_prune(n: u32, prune_at: u32, through: u64) -> Vec<StoredEvent> {
        let mut prev = GENESIS;
        (1..=n)
            .map(|i| {
                let mut e = ev(i);
                if i == prune_at {
                    e.operation = PRUNE_OPERATION.into();
                    e.detail.insert("through_seq".into(), through.into());
                }
                let s = link(i as u64, &prev, &e);
                prev = s.hash;
                s
            })
            .collect()
    }

    fn sig_ok(c: &Checkpoint) -> bool {
        c.signature == c.hash.chars().rev().collect::<String>()
    }

    fn verify_anchored(
        events: &[StoredEvent],
        cps: &[Checkpoint],
    ) -> Result<VerifyReport, ChainBreak> {
        let mut v = ChainVerifier::new(sig_ok).allow_anchor();
        for c in cps {
            v.checkpoint(c.clone())?;
        }
        for e in events {
            v.event(e)?;
        }
        v.finish()
    }

    /// A pruned store starts after record 1 at its signed anchor, and must hold the record
    /// of the prune that made it so.
    #[test]
    fn a_pruned_trail_starts_at_its_signed_anchor() {
        let c = chain_with_prune(10, 8, 5);
        let r = verify_anchored(&c[5..], &[cp(&c[4]), cp(&c[9])]).unwrap();
        assert_eq!(
            (r.archived_through, r.first_seq, r.last_seq, r.events),
            (5, 6, 10, 5)
        );
        assert_eq!(r.unsigned_tail, 0);
        // Not allowed to start late: record 1 is missing.
        let b = verify(&c[5..], &[cp(&c[4]), cp(&c[9])]).unwrap_err();
        assert_eq!(b.seq, 1);
        // No signed checkpoint just before the first record.
        let b = verify_anchored(&c[5..], &[cp(&c[3]), cp(&c[9])]).unwrap_err();
        assert!(
            b.problem.contains("no signed checkpoint at record 5"),
            "{b}"
        );
        // A forged anchor.
        let mut forged = cp(&c[4]);
        forged.signature = "x".into();
        assert!(verify_anchored(&c[5..], &[forged, cp(&c[9])]).is_err());
        // Records removed up to a checkpoint, without a prune naming it.
        let b = verify_anchored(&c[6..], &[cp(&c[5]), cp(&c[9])]).unwrap_err();
        assert_eq!(b.seq, 7);
        assert!(b.problem.contains("through 6"), "{b}");
        let plain = chain(10);
        let b = verify_anchored(&plain[5..], &[cp(&plain[4]), cp(&plain[9])]).unwrap_err();
        assert!(b.problem.contains("no prune is recorded"), "{b}");
        // An anchored walk still finds a gap and an edit after the anchor.
        let mut t = c[5..].to_vec();
        t.remove(2);
        assert_eq!(
            verify_anchored(&t, &[cp(&c[4]), cp(&c[9])])
                .unwrap_err()
                .seq,
            8
        );
        let mut t = c[5..].to_vec();
        edit(&mut t[0].doc, "Encrypt", "Encrypu");
        assert_eq!(
            verify_anchored(&t, &[cp(&c[4]), cp(&c[9])])
                .unwrap_err()
                .seq,
            6
        );
        // A copy that began at an older anchor and holds a later prune too (a sink's file).
        let mut prev = GENESIS;
        let two: Vec<StoredEvent> = (1..=12u32)
            .map(|i| {
                let mut e = ev(i);
                if i == 7 || i == 11 {
                    e.operation = PRUNE_OPERATION.into();
                    e.detail
                        .insert("through_seq".into(), (if i == 7 { 5 } else { 9 }).into());
                }
                let s = link(i as u64, &prev, &e);
                prev = s.hash;
                s
            })
            .collect();
        let r = verify_anchored(&two[5..], &[cp(&two[4]), cp(&two[8]), cp(&two[11])]).unwrap();
        assert_eq!(r.archived_through, 5);
        let r = verify_anchored(&two[9..], &[cp(&two[8]), cp(&two[11])]).unwrap();
        assert_eq!(r.archived_through, 9);
        // ...but not cut at a checkpoint no prune names.
        let b = verify_anchored(&two[7..], &[cp(&two[6]), cp(&two[11])]).unwrap_err();
        assert!(b.problem.contains("no prune of records through 7"), "{b}");
        // An unpruned trail verifies the same with anchors allowed.
        assert_eq!(
            verify_anchored(&plain, &[cp(&plain[9])])
                .unwrap()
                .archived_through,
            0
        );
    }

    /// Archived segments and the store, walked in order by one verifier: a gap, a wrong
    /// order, or a segment not chained to the next is a break at the right record.
    #[test]
    fn segments_then_store_make_one_chain() {
        let c = chain(10);
        // Segments 1..=4 and 5..=7 (each closed by its checkpoint), then the store 8..=10.
        let parts: [(&[StoredEvent], Vec<Checkpoint>); 3] = [
            (&c[..4], vec![cp(&c[3])]),
            (&c[4..7], vec![cp(&c[6])]),
            (&c[7..], vec![cp(&c[6]), cp(&c[9])]),
        ];
        let walk = |order: &[usize]| -> Result<VerifyReport, ChainBreak> {
            let mut v = ChainVerifier::new(sig_ok);
            for &i in order {
                for k in &parts[i].1 {
                    v.checkpoint(k.clone())?;
                }
                for e in parts[i].0 {
                    v.event(e)?;
                }
            }
            v.finish()
        };
        let r = walk(&[0, 1, 2]).unwrap();
        assert_eq!((r.first_seq, r.last_seq, r.checkpoints), (1, 10, 3));
        assert_eq!(walk(&[0, 2]).unwrap_err().seq, 5, "a missing segment");
        assert_eq!(
            walk(&[1, 2]).unwrap_err().seq,
            1,
            "the first segment missing"
        );
        assert_eq!(walk(&[1, 0, 2]).unwrap_err().seq, 1, "out of order");
        // A segment from another trail does not chain to the one before it.
        let mut prev = c[3].hash;
        prev[0] ^= 1;
        let other: Vec<StoredEvent> = (5..=7u32)
            .map(|i| {
                let s = link(i as u64, &prev, &ev(100 + i));
                prev = s.hash;
                s
            })
            .collect();
        let mut v = ChainVerifier::new(sig_ok);
        v.checkpoint(cp(&c[3])).unwrap();
        for e in &c[..4] {
            v.event(e).unwrap();
        }
        assert_eq!(v.position(), 4);
        let b = v.event(&other[0]).unwrap_err();
        assert_eq!(b.seq, 5);
        assert!(b.problem.contains("link"), "{b}");
        // Two different checkpoints for one record are a break; the same one twice is not.
        let mut v = ChainVerifier::new(sig_ok);
        v.checkpoint(cp(&c[3])).unwrap();
        v.checkpoint(cp(&c[3])).unwrap();
        let mut k = cp(&c[3]);
        k.at = DateTime::from_timestamp(1, 0).unwrap();
        assert!(v.checkpoint(k).is_err());
    }

    /// A walk resumed after a trusted checkpoint (the segment before's end).
    #[test]
    fn a_walk_resumes_after_a_signed_checkpoint() {
        let c = chain(7);
        let mut v = ChainVerifier::resume(sig_ok, cp(&c[3])).unwrap();
        v.checkpoint(cp(&c[6])).unwrap();
        for e in &c[4..] {
            v.event(e).unwrap();
        }
        let r = v.finish().unwrap();
        assert_eq!((r.first_seq, r.last_seq, r.archived_through), (5, 7, 0));
        let mut v = ChainVerifier::resume(sig_ok, cp(&c[3])).unwrap();
        assert_eq!(v.event(&c[5]).unwrap_err().seq, 5);
        let mut bad = cp(&c[3]);
        bad.signature = "x".into();
        assert!(ChainVerifier::resume(sig_ok, bad).is_err());
        let v = ChainVerifier::resume(sig_ok, cp(&c[3])).unwrap();
        assert_eq!(v.finish().unwrap().unsigned_tail, 0);
    }

    /// A report written before retention (no `archived_through`, no `segments`) still reads.
    #[test]
    fn an_older_report_parses() {
        let r: VerifyReport = serde_json::from_str(
            r#"{"events":3,"first_seq":1,"last_seq":3,"last_hash":"ab","checkpoints":1,"last_checkpoint_seq":3,"unsigned_tail":0}"#,
        )
        .unwrap();
        assert_eq!((r.archived_through, r.segments, r.last_seq), (0, 0, 3));
    }

    #[test]
    fn segment_file_names() {
        assert_eq!(segment_file_name(1, 250), "arca-audit-1-250.jsonl");
        assert_eq!(
            parse_segment_file_name("arca-audit-1-250.jsonl"),
            Some((1, 250))
        );
        for bad in [
            "arca-audit-0-5.jsonl",
            "arca-audit-9-5.jsonl",
            "arca-audit-1-5.jsonl.tmp",
            ".arca-audit-1-5.jsonl.tmp",
            "arca-audit-+1-5.jsonl",
            "arca-audit-1-5-6.jsonl",
            "trail.jsonl",
        ] {
            assert_eq!(parse_segment_file_name(bad), None, "{bad}");
        }
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
