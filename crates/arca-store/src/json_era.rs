//! Test helpers for issue 20's migration: a trail as Arca wrote it before the compact record
//! (canonical JSON records, ids as text in the columns), and the checks each back-end's
//! migrated store passes (shared by the SQLite and PostgreSQL tests).

use arca_core::audit::{
    hex, link_json, AuditEvent, ChainVerifier, Checkpoint, PreparedEvent, StoredEvent, GENESIS,
};
use uuid::Uuid;

use crate::{AuditQuery, KeyStore};

/// The ids the trail names: a tenant, another tenant, a key.
pub(crate) struct Ids {
    pub tenant: Uuid,
    pub other: Uuid,
    pub key: Uuid,
}

impl Ids {
    pub fn new() -> Ids {
        Ids {
            tenant: Uuid::now_v7(),
            other: Uuid::now_v7(),
            key: Uuid::now_v7(),
        }
    }

    /// Event `i`: record 3 is the other tenant's, even records name the key.
    pub fn event(&self, i: u32) -> AuditEvent {
        let t = if i == 3 { self.other } else { self.tenant };
        AuditEvent {
            at: chrono::Utc::now(),
            request_id: format!("req-{i}"),
            tenant_id: Some(t),
            principal_id: Some(t),
            principal: "alice".into(),
            credential: None,
            source: "127.0.0.1:1".into(),
            door: "rest".into(),
            operation: "Encrypt".into(),
            key_id: i.is_multiple_of(2).then_some(self.key),
            key_version: Some(1),
            outcome: "ok".into(),
            detail: Default::default(),
        }
    }

    /// Records 1 to 4 as the JSON-era Arca linked them, with their events.
    pub fn json_records(&self) -> Vec<(AuditEvent, StoredEvent)> {
        let mut prev = GENESIS;
        (1..=4u32)
            .map(|i| {
                let e = self.event(i);
                let s = link_json(i as u64, &prev, &e);
                prev = s.hash;
                (e, s)
            })
            .collect()
    }

    /// Once migrated: records 5 to 8 go on in the compact form, the whole trail verifies
    /// across the switch, and search and usage find both forms by the numbered ids.
    pub async fn check_migrated(&self, s: &dyn KeyStore) {
        let events: Vec<PreparedEvent> = (5..=8).map(|i| self.event(i).into()).collect();
        s.append_audit(&events).await.unwrap();
        let all = s.read_audit(0, 100).await.unwrap();
        assert_eq!(all.len(), 8);
        assert!(all[..4].iter().all(|e| !e.is_compact()));
        assert!(all[4..].iter().all(|e| e.is_compact()));
        let mut v = ChainVerifier::new(|_: &Checkpoint| true);
        v.checkpoint(Checkpoint {
            seq: 8,
            hash: hex(&all[7].hash),
            at: chrono::Utc::now(),
            signer: "t".into(),
            signature: String::new(),
        })
        .unwrap();
        for e in &all {
            e.check_alone().unwrap();
            v.event(e).unwrap();
        }
        assert_eq!(v.finish().unwrap().events, 8);
        let seqs = |found: Vec<StoredEvent>| found.iter().map(|e| e.seq).collect::<Vec<_>>();
        let found = s
            .search_audit(&AuditQuery {
                tenant: Some(self.tenant),
                key_id: Some(self.key),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(seqs(found), [2, 4, 6, 8]);
        let found = s
            .search_audit(&AuditQuery {
                principal: Some(self.other.to_string()),
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(seqs(found), [3]);
        let usage = s.audit_usage(Some(self.tenant), None, None).await.unwrap();
        assert_eq!(usage.len(), 1);
        assert_eq!((usage[0].key_id, usage[0].count), (self.key, 4));
    }
}
