//! The storage contract, one suite run against both back-ends: the SQLite file and a real
//! PostgreSQL server the test starts (`arca_store::testing`). Whatever the service relies on
//! is checked here: conflicts, optimistic revisions, filters and paging, erasure, the audit
//! chain, snapshot and restore, and, for PostgreSQL, what several nodes add (one chain with
//! concurrent writers, leases, the change feed, TLS).

use std::collections::BTreeMap;
use std::sync::Arc;

use arca_core::audit::{AuditEvent, ChainVerifier, Checkpoint};
use arca_core::model::{Key, KeyEvent, KeyState, KeyVersion, Principal, Tenant};
use arca_core::Error;
use arca_store::testing::TestPostgres;
use arca_store::{
    ApiToken, AuditQuery, AuditSegment, Change, KeyFilter, KeyStore, KeyWrite, MaterialChange,
    PgStore, Record, SqliteStore, VersionWrite,
};
use chrono::{Duration, Utc};
use serde_json::json;
use uuid::Uuid;

fn tenant(name: &str) -> Tenant {
    serde_json::from_value(json!({
        "id": Uuid::now_v7(), "name": name, "created_at": Utc::now(), "disabled": false
    }))
    .unwrap()
}

fn principal(t: Uuid, name: &str) -> Principal {
    serde_json::from_value(json!({
        "id": Uuid::now_v7(), "tenant_id": t, "name": name, "roles": ["tenant-admin"],
        "created_at": Utc::now()
    }))
    .unwrap()
}

fn key(t: Uuid, name: &str) -> Key {
    serde_json::from_value(json!({
        "id": Uuid::now_v7(), "tenant_id": t, "name": name, "description": "",
        "spec": "AES_256", "usage": ["ENCRYPT_DECRYPT"], "origin": "GENERATED",
        "extractable": false, "tags": {}, "meta": null, "state": "ACTIVE",
        "deactivation_reason": null, "archived": false, "created_at": Utc::now(),
        "updated_at": Utc::now(), "activation_date": null, "protect_stop_date": null,
        "deactivation_date": null, "compromise_date": null, "destroy_after": null,
        "destroyed_at": null, "rotation_period_days": null, "next_rotation_at": null,
        "last_rotated_at": null, "primary_version": 1, "revision": 1
    }))
    .unwrap()
}

fn version(k: Uuid, n: u32) -> KeyVersion {
    serde_json::from_value(json!({
        "key_id": k, "version": n, "state": "ACTIVE", "deactivation_reason": null,
        "archived": false, "created_at": Utc::now(), "destroy_after": null,
        "destroyed_at": null, "public_key": null, "public_only": false
    }))
    .unwrap()
}

fn event(tenant: Option<Uuid>, op: &str, key: Option<Uuid>, outcome: &str) -> AuditEvent {
    AuditEvent {
        at: Utc::now(),
        request_id: Uuid::now_v7().to_string(),
        tenant_id: tenant,
        principal_id: None,
        principal: "alice".into(),
        credential: None,
        source: "127.0.0.1".into(),
        door: "rest".into(),
        operation: op.into(),
        key_id: key,
        key_version: None,
        outcome: outcome.into(),
        detail: Default::default(),
    }
}

fn new_key_write(k: &Key, material: &[u8], audit: Vec<AuditEvent>) -> KeyWrite {
    KeyWrite {
        key: k.clone(),
        expected_revision: None,
        versions: vec![VersionWrite {
            version: version(k.id, 1),
            material: MaterialChange::Set(material.to_vec()),
        }],
        events: vec![KeyEvent {
            key_id: k.id,
            version: Some(1),
            at: Utc::now(),
            actor: "alice".into(),
            action: "create".into(),
            from_state: None,
            to_state: Some(KeyState::Active),
            reason: None,
        }],
        next_due_at: None,
        records: vec![],
        audit,
    }
}

fn is_conflict<T: std::fmt::Debug>(r: arca_core::Result<T>) -> bool {
    matches!(r, Err(Error::Conflict { .. }))
}

/// Checks the whole trail links up, from record 1 to the head, with no gap.
async fn verify_chain(s: &dyn KeyStore) -> u64 {
    let mut v = ChainVerifier::new(|_: &Checkpoint| true);
    // The store's head, vouched for as a signed checkpoint would (a trail with no
    // checkpoint does not verify): the walk must end exactly at it.
    if let Some((seq, hash)) = s.audit_head().await.unwrap() {
        v.checkpoint(Checkpoint {
            seq,
            hash: arca_core::audit::hex(&hash),
            at: chrono::Utc::now(),
            signer: "contract".into(),
            signature: String::new(),
        })
        .unwrap();
    }
    let mut after = 0;
    loop {
        let batch = s.read_audit(after, 500).await.unwrap();
        if batch.is_empty() {
            break;
        }
        for e in &batch {
            v.event(e).unwrap_or_else(|b| panic!("chain breaks: {b:?}"));
            after = e.seq;
        }
    }
    let report = v.finish().unwrap();
    assert_eq!(
        Some(report.last_seq),
        s.audit_head().await.unwrap().map(|h| h.0)
    );
    report.events
}

/// The contract: `fresh` makes another empty store of the same kind (for restore).
async fn contract(s: Arc<dyn KeyStore>, fresh: Arc<dyn KeyStore>) {
    s.ping().await.unwrap();

    // Server-wide values.
    assert!(s.put_meta_if_absent("root", b"v1").await.unwrap());
    assert!(!s.put_meta_if_absent("root", b"v2").await.unwrap());
    assert_eq!(s.get_meta("root").await.unwrap(), Some(b"v1".to_vec()));
    s.set_meta("cursor", b"7").await.unwrap();
    s.set_meta("cursor", b"8").await.unwrap();
    assert_eq!(s.get_meta("cursor").await.unwrap(), Some(b"8".to_vec()));

    // Tenants.
    let t = tenant("acme");
    s.create_tenant(
        &t,
        b"wrapped-kek",
        &[event(Some(t.id), "CreateTenant", None, "ok")],
    )
    .await
    .unwrap();
    assert!(is_conflict(
        s.create_tenant(&tenant("acme"), b"x", &[]).await
    ));
    let (got, kek) = s.get_tenant(t.id).await.unwrap().unwrap();
    assert_eq!(
        (got.name.as_str(), kek.as_slice()),
        ("acme", &b"wrapped-kek"[..])
    );
    assert_eq!(
        s.find_tenant_by_name("acme").await.unwrap().unwrap().id,
        t.id
    );
    let mut t2 = t.clone();
    t2.disabled = true;
    s.update_tenant(&t2, &[]).await.unwrap();
    assert!(s.get_tenant(t.id).await.unwrap().unwrap().0.disabled);
    assert!(s.update_tenant(&tenant("ghost"), &[]).await.is_err());
    assert_eq!(s.list_tenants().await.unwrap().len(), 1);
    // Root material: replaced only while the expected custody holds.
    s.replace_root_material(
        &[(t.id, b"kek2".to_vec())],
        &[("root".into(), b"v3".to_vec())],
        ("root", b"v1"),
        &[],
    )
    .await
    .unwrap();
    assert!(is_conflict(
        s.replace_root_material(&[(t.id, b"kek3".to_vec())], &[], ("root", b"v1"), &[])
            .await
    ));
    assert_eq!(
        s.tenant_keks().await.unwrap(),
        vec![(t.id, b"kek2".to_vec())]
    );

    // Principals and tokens.
    let p = principal(t.id, "alice");
    s.create_principal(&p, &[]).await.unwrap();
    assert!(is_conflict(
        s.create_principal(&principal(t.id, "alice"), &[]).await
    ));
    assert_eq!(
        s.find_principal(t.id, "alice").await.unwrap().unwrap().id,
        p.id
    );
    let mut p2 = p.clone();
    p2.disabled = true;
    s.update_principal(&p2, &[]).await.unwrap();
    assert!(s.get_principal(p.id).await.unwrap().unwrap().disabled);
    assert_eq!(s.list_principals(t.id).await.unwrap().len(), 1);
    let tok = ApiToken {
        id: "tok_1".into(),
        principal_id: p.id,
        tenant_id: t.id,
        name: "ci".into(),
        hash: vec![1; 32],
        created_at: Utc::now(),
        expires_at: None,
        revoked_at: None,
        last_used_at: None,
    };
    s.create_token(&tok, &[]).await.unwrap();
    assert!(is_conflict(s.create_token(&tok, &[]).await));
    s.touch_token("tok_1", Utc::now()).await.unwrap();
    assert!(s
        .get_token("tok_1")
        .await
        .unwrap()
        .unwrap()
        .last_used_at
        .is_some());
    assert_eq!(s.list_tokens(t.id, Some(p.id)).await.unwrap().len(), 1);
    assert_eq!(s.list_tokens(t.id, None).await.unwrap().len(), 1);
    assert!(s
        .revoke_token(t.id, "tok_1", Utc::now(), &[])
        .await
        .unwrap());
    assert!(!s
        .revoke_token(t.id, "tok_nope", Utc::now(), &[])
        .await
        .unwrap());
    assert!(s
        .get_token("tok_1")
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_some());

    // Records: insert, conflicting insert, revisions, prefix listing, delete.
    let mut r = Record {
        kind: "session".into(),
        id: "a_1".into(),
        tenant_id: Some(t.id),
        revision: 1,
        doc: json!({"n": 1}),
        updated_at: Utc::now(),
    };
    s.put_record(&r, None, &[]).await.unwrap();
    assert!(is_conflict(s.put_record(&r, None, &[]).await));
    r.revision = 2;
    r.doc = json!({"n": 2});
    s.put_record(&r, Some(1), &[]).await.unwrap();
    assert!(
        is_conflict(s.put_record(&r, Some(1), &[]).await),
        "stale revision"
    );
    for id in ["a_2", "a%3", "b_1"] {
        let mut x = r.clone();
        x.id = id.into();
        s.put_record(&x, None, &[]).await.unwrap();
    }
    let ids = |v: Vec<Record>| v.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(s
            .list_records("session", Some(t.id), "a_", None, 10)
            .await
            .unwrap()),
        vec!["a_1", "a_2"],
        "a prefix is literal (no LIKE wildcards)"
    );
    assert_eq!(
        ids(s
            .list_records("session", None, "", Some("a_2"), 10)
            .await
            .unwrap()),
        vec!["b_1"]
    );
    assert_eq!(
        s.get_record("session", "a_1").await.unwrap().unwrap().doc,
        json!({"n": 2})
    );
    s.delete_record("session", "a_1", &[]).await.unwrap();
    assert!(s.get_record("session", "a_1").await.unwrap().is_none());

    // Keys: insert, name conflicts, revisions, tags, filters, paging, versions, erasure.
    let mut k = key(t.id, "payments");
    k.tags = BTreeMap::from([("team".to_string(), "billing".to_string())]);
    s.write_key(&new_key_write(
        &k,
        b"sealed-material-1",
        vec![event(Some(t.id), "CreateKey", Some(k.id), "ok")],
    ))
    .await
    .unwrap();
    assert!(is_conflict(
        s.write_key(&new_key_write(&key(t.id, "payments"), b"x", vec![]))
            .await
    ));
    let other = key(t.id, "other");
    s.write_key(&new_key_write(&other, b"sealed-material-2", vec![]))
        .await
        .unwrap();
    assert_eq!(
        s.get_key(t.id, k.id).await.unwrap().unwrap().name,
        "payments"
    );
    assert!(
        s.get_key(Uuid::now_v7(), k.id).await.unwrap().is_none(),
        "tenant-scoped"
    );
    assert_eq!(
        s.find_key(t.id, "payments").await.unwrap().unwrap().id,
        k.id
    );
    let mut k2 = k.clone();
    k2.revision = 2;
    k2.state = KeyState::Suspended;
    k2.tags = BTreeMap::from([("team".to_string(), "risk".to_string())]);
    let update = KeyWrite {
        key: k2.clone(),
        expected_revision: Some(1),
        versions: vec![VersionWrite {
            version: version(k.id, 2),
            material: MaterialChange::Set(b"sealed-material-3".to_vec()),
        }],
        events: vec![],
        next_due_at: Some(Utc::now() - Duration::seconds(1)),
        records: vec![],
        audit: vec![],
    };
    s.write_key(&update).await.unwrap();
    assert!(is_conflict(s.write_key(&update).await), "stale revision");
    let by_tag = |v: &str| KeyFilter {
        tags: BTreeMap::from([("team".to_string(), v.to_string())]),
        ..Default::default()
    };
    assert_eq!(
        s.list_keys(t.id, &by_tag("risk"), None, 10)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        s.list_keys(t.id, &by_tag("billing"), None, 10)
            .await
            .unwrap()
            .len(),
        0
    );
    let suspended = KeyFilter {
        state: Some(KeyState::Suspended),
        ..Default::default()
    };
    assert_eq!(
        s.list_keys(t.id, &suspended, None, 10).await.unwrap()[0].id,
        k.id
    );
    let named = KeyFilter {
        name: Some("ymen".into()),
        ..Default::default()
    };
    assert_eq!(s.list_keys(t.id, &named, None, 10).await.unwrap().len(), 1);
    let page1 = s
        .list_keys(t.id, &KeyFilter::default(), None, 1)
        .await
        .unwrap();
    let page2 = s
        .list_keys(t.id, &KeyFilter::default(), Some(page1[0].id), 10)
        .await
        .unwrap();
    assert_eq!(page1.len() + page2.len(), 2);
    assert_ne!(page1[0].id, page2[0].id);
    assert_eq!(s.get_versions(k.id).await.unwrap().len(), 2);
    assert_eq!(
        s.get_material(k.id, 2).await.unwrap(),
        Some(b"sealed-material-3".to_vec())
    );
    assert_eq!(s.history(k.id).await.unwrap().len(), 1);
    let due = s.keys_due(Utc::now(), 10).await.unwrap();
    assert_eq!(due.iter().map(|k| k.id).collect::<Vec<_>>(), vec![k.id]);
    let states = s.count_keys_by_state().await.unwrap();
    assert!(states.contains(&("SUSPENDED".to_string(), 1)), "{states:?}");
    let mut k3 = k2.clone();
    k3.revision = 3;
    let erase = KeyWrite {
        key: k3,
        expected_revision: Some(2),
        versions: vec![VersionWrite {
            version: version(k.id, 1),
            material: MaterialChange::Erase,
        }],
        events: vec![],
        next_due_at: None,
        records: vec![],
        audit: vec![],
    };
    s.write_key(&erase).await.unwrap();
    assert_eq!(s.get_material(k.id, 1).await.unwrap(), None, "erased");
    assert!(s.keys_due(Utc::now(), 10).await.unwrap().is_empty());

    // Aliases: no alias may take a key's name, nor a key an alias's.
    s.create_alias(t.id, "alias/pay", k.id, &[]).await.unwrap();
    assert!(is_conflict(
        s.create_alias(t.id, "alias/pay", other.id, &[]).await
    ));
    assert!(is_conflict(s.create_alias(t.id, "other", k.id, &[]).await));
    assert!(is_conflict(
        s.write_key(&new_key_write(&key(t.id, "alias/pay"), b"x", vec![]))
            .await
    ));
    assert_eq!(
        s.find_key(t.id, "alias/pay").await.unwrap().unwrap().id,
        k.id
    );
    s.move_alias(t.id, "alias/pay", other.id, &[])
        .await
        .unwrap();
    assert_eq!(s.list_aliases(t.id, Some(other.id)).await.unwrap().len(), 1);
    assert!(s.move_alias(t.id, "alias/none", k.id, &[]).await.is_err());
    s.delete_alias(t.id, "alias/pay", &[]).await.unwrap();
    assert!(s.list_aliases(t.id, None).await.unwrap().is_empty());

    // The audit trail: appends, search, usage, checkpoints.
    s.append_audit(&prepared([
        event(Some(t.id), "Encrypt", Some(k.id), "ok"),
        event(Some(t.id), "Encrypt", Some(k.id), "ok"),
        event(Some(t.id), "Decrypt", Some(k.id), "PERMISSION_DENIED"),
    ]))
    .await
    .unwrap();
    let n = verify_chain(&*s).await;
    assert_eq!(n, 5, "create tenant, create key, three uses");
    let search = |outcome: &str| AuditQuery {
        tenant: Some(t.id),
        outcome: Some(outcome.into()),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(s.search_audit(&search("ok")).await.unwrap().len(), 4);
    assert_eq!(s.search_audit(&search("refused")).await.unwrap().len(), 1);
    assert_eq!(
        s.search_audit(&search("PERMISSION_DENIED"))
            .await
            .unwrap()
            .len(),
        1
    );
    let newest = s
        .search_audit(&AuditQuery {
            key_id: Some(k.id),
            operation: Some("Encrypt".into()),
            newest_first: true,
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(newest[0].seq, 4);
    let usage = s.audit_usage(Some(t.id), Some(k.id), None).await.unwrap();
    assert_eq!(usage.iter().map(|u| u.count).sum::<u64>(), 3, "{usage:?}");
    let cp = Checkpoint {
        seq: 5,
        hash: "00".into(),
        at: Utc::now(),
        signer: "test".into(),
        signature: "00".into(),
    };
    s.put_checkpoint(&cp).await.unwrap();
    assert!(is_conflict(s.put_checkpoint(&cp).await));
    assert_eq!(s.last_checkpoint().await.unwrap().unwrap().seq, 5);
    assert_eq!(s.list_checkpoints(0, 10).await.unwrap().len(), 1);

    // Concurrent writers still make one chain.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..10 {
                let k = key(t.id, &format!("c-{i}-{j}"));
                s.write_key(&new_key_write(
                    &k,
                    b"m",
                    vec![event(Some(t.id), "CreateKey", Some(k.id), "ok")],
                ))
                .await
                .unwrap();
                s.append_audit(&prepared([event(Some(t.id), "Encrypt", Some(k.id), "ok")]))
                    .await
                    .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(verify_chain(&*s).await, 5 + 160);

    // Writes committed together (group commit): one that fails leaves the others whole.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = s.clone();
        let name = if i % 2 == 0 {
            "dup".to_string()
        } else {
            format!("u-{i}")
        };
        tasks.push(tokio::spawn(async move {
            let k = key(t.id, &name);
            s.write_key(&new_key_write(
                &k,
                b"m",
                vec![event(Some(t.id), "CreateKey", Some(k.id), "ok")],
            ))
            .await
            .is_ok()
        }));
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap() as usize;
    }
    assert_eq!(ok, 11, "ten distinct keys and one of the ten named alike");
    assert_eq!(
        verify_chain(&*s).await,
        5 + 160 + 11,
        "only the committed writes' events"
    );

    // Snapshot and restore into an empty store of the same kind.
    let mut rows = Vec::new();
    s.snapshot(&mut |r| {
        rows.push(r);
        Ok(())
    })
    .await
    .unwrap();
    assert!(rows.iter().any(|r| r.table == "audit_events"));
    fresh
        .append_audit(&prepared([event(None, "Start", None, "ok")]))
        .await
        .unwrap();
    // A row naming no known table is refused, and the abandoned restore changes nothing.
    let mut tx = fresh.begin_restore().await.unwrap();
    let bad = arca_store::SnapshotRow {
        table: "keys; DROP TABLE keys".into(),
        row: rows[0].row.clone(),
    };
    assert!(tx.add(&bad).await.is_err());
    drop(tx);
    assert_eq!(verify_chain(&*fresh).await, 1);
    let mut tx = fresh.begin_restore().await.unwrap();
    for r in &rows {
        tx.add(r).await.unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(
        verify_chain(&*fresh).await,
        5 + 160 + 11 + 1,
        "restored trail, then the new one"
    );
    assert_eq!(
        fresh.get_key(t.id, k.id).await.unwrap().unwrap().revision,
        3
    );
    assert_eq!(
        fresh.get_material(k.id, 2).await.unwrap(),
        Some(b"sealed-material-3".to_vec())
    );
    // New history rows continue after the restored ones.
    let more = key(t.id, "after-restore");
    fresh
        .write_key(&new_key_write(&more, b"m", vec![]))
        .await
        .unwrap();
    assert_eq!(fresh.history(more.id).await.unwrap().len(), 1);
    assert!(
        is_conflict(fresh.begin_restore().await.map(|_| ())),
        "not into a store with tenants"
    );

    // The usage series: one key's successful uses in one tenant, per operation, in buckets
    // counted from `from`; nothing before `from` or at or after `to`.
    let day0 = chrono::DateTime::parse_from_rfc3339("2020-03-01T00:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let (hour, min) = (Duration::hours(1), Duration::minutes(1));
    let used = Uuid::now_v7();
    let elsewhere = Uuid::now_v7();
    let at = |tenant: Uuid, op: &str, key: Uuid, outcome: &str, at| AuditEvent {
        at,
        ..event(Some(tenant), op, Some(key), outcome)
    };
    s.append_audit(&prepared([
        at(t.id, "Encrypt", used, "ok", day0 - min),
        at(t.id, "Encrypt", used, "ok", day0),
        at(t.id, "Decrypt", used, "ok", day0 + min * 30),
        at(t.id, "Decrypt", used, "not_permitted", day0 + min * 31),
        at(t.id, "Encrypt", used, "ok", day0 + min * 59),
        at(t.id, "Sign", used, "ok", day0 + hour * 3),
        at(t.id, "Encrypt", k.id, "ok", day0 + hour),
        at(elsewhere, "Encrypt", used, "ok", day0 + hour),
        at(t.id, "Encrypt", used, "ok", day0 + hour * 4),
    ]))
    .await
    .unwrap();
    let ms = |d: chrono::DateTime<Utc>| d.timestamp_millis();
    let series = |tenant, from, to, bucket: Duration| {
        let s = s.clone();
        async move {
            s.audit_usage_series(tenant, used, from, to, bucket.num_milliseconds())
                .await
                .unwrap()
        }
    };
    assert_eq!(
        series(t.id, day0, day0 + hour * 4, hour).await,
        vec![
            (ms(day0), "Decrypt".to_string(), 1),
            (ms(day0), "Encrypt".to_string(), 2),
            (ms(day0 + hour * 3), "Sign".to_string(), 1),
        ]
    );
    // Buckets start at `from`, wherever it is.
    let half = day0 + min * 30;
    assert_eq!(
        series(t.id, half, day0 + hour * 4, hour).await,
        vec![
            (ms(half), "Decrypt".to_string(), 1),
            (ms(half), "Encrypt".to_string(), 1),
            (ms(half + hour * 2), "Sign".to_string(), 1),
        ]
    );
    assert_eq!(
        series(t.id, day0 - hour, day0 + hour * 5, Duration::days(1)).await,
        vec![
            (ms(day0 - hour), "Decrypt".to_string(), 1),
            (ms(day0 - hour), "Encrypt".to_string(), 4),
            (ms(day0 - hour), "Sign".to_string(), 1),
        ]
    );
    // Another tenant's uses of the same key id are its own.
    assert_eq!(
        series(elsewhere, day0, day0 + Duration::days(1), Duration::days(1)).await,
        vec![(ms(day0), "Encrypt".to_string(), 1)]
    );
    assert!(series(t.id, day0 + hour * 5, day0 + hour * 6, hour)
        .await
        .is_empty());
}

/// Retention: archived segments are recorded in chain order, each closed by a stored
/// checkpoint; a prune removes the records of whole segments and the checkpoints inside
/// them, keeps the closing checkpoint as the stored trail's signed start, and the chain goes
/// on from its head.
async fn retention(s: Arc<dyn KeyStore>, fresh: Arc<dyn KeyStore>) {
    let op = |name: &str| event(None, name, None, "ok");
    s.append_audit(&(0..10).map(|_| op("Encrypt").into()).collect::<Vec<_>>())
        .await
        .unwrap();
    let events = s.read_audit(0, 100).await.unwrap();
    let cp = |seq: u64| {
        let e = &events[seq as usize - 1];
        Checkpoint {
            seq,
            hash: arca_core::audit::hex(&e.hash),
            at: Utc::now(),
            signer: "contract".into(),
            signature: String::new(),
        }
    };
    for seq in [4, 8] {
        s.put_checkpoint(&cp(seq)).await.unwrap();
    }
    let seg = |first: u64, last: u64| AuditSegment {
        first_seq: first,
        last_seq: last,
        last_hash: cp(last).hash,
        last_at: Utc::now(),
        file: arca_core::audit::segment_file_name(first, last),
        sha256: "ab".repeat(32),
        archived_at: Utc::now(),
        pruned_at: None,
    };
    assert!(s.list_audit_segments().await.unwrap().is_empty());
    // Not the first segment; not closed by a stored checkpoint.
    assert!(is_conflict(s.add_audit_segment(&seg(5, 8), &[]).await));
    assert!(is_conflict(s.add_audit_segment(&seg(1, 3), &[]).await));
    s.add_audit_segment(&seg(1, 4), &[op("ArchiveAudit")])
        .await
        .unwrap();
    assert!(is_conflict(s.add_audit_segment(&seg(1, 4), &[]).await));
    assert!(is_conflict(s.add_audit_segment(&seg(6, 8), &[]).await));
    s.add_audit_segment(&seg(5, 8), &[op("ArchiveAudit")])
        .await
        .unwrap();
    let segs = s.list_audit_segments().await.unwrap();
    assert_eq!(
        segs,
        vec![seg(1, 4), seg(5, 8)]
            .into_iter()
            .zip(&segs)
            .map(|(mut want, got)| {
                want.last_at = got.last_at;
                want.archived_at = got.archived_at;
                want
            })
            .collect::<Vec<_>>()
    );
    assert_eq!(s.audit_head().await.unwrap().unwrap().0, 12);

    let prune = |through: u64| {
        let mut e = op("PruneAudit");
        e.detail.insert("through_seq".into(), through.into());
        e
    };
    // A record that ends no segment: refused, nothing changes (not even the record).
    assert!(matches!(
        s.prune_audit(6, Utc::now(), &[prune(6)]).await,
        Err(Error::InvalidInput { .. })
    ));
    assert_eq!(s.audit_head().await.unwrap().unwrap().0, 12);
    assert_eq!(s.prune_audit(4, Utc::now(), &[prune(4)]).await.unwrap(), 4);
    assert_eq!(s.read_audit(0, 1).await.unwrap()[0].seq, 5);
    let cps: Vec<u64> = s
        .list_checkpoints(0, 10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.seq)
        .collect();
    assert_eq!(cps, vec![4, 8]);
    let segs = s.list_audit_segments().await.unwrap();
    assert!(segs[0].pruned_at.is_some() && segs[1].pruned_at.is_none());
    assert_eq!(verify_anchored(&*s).await, (4, 13));

    s.append_audit(&prepared([op("Encrypt")])).await.unwrap();
    assert_eq!(s.prune_audit(8, Utc::now(), &[prune(8)]).await.unwrap(), 4);
    assert_eq!(s.read_audit(0, 1).await.unwrap()[0].seq, 9);
    assert_eq!(
        s.list_checkpoints(0, 10).await.unwrap().len(),
        1,
        "the anchor"
    );
    assert_eq!(verify_anchored(&*s).await, (8, 15));
    // The segments and the anchor travel with a snapshot: the restored store starts where
    // the pruned one did, and goes on from its head.
    let mut rows = Vec::new();
    s.snapshot(&mut |r| {
        rows.push(r);
        Ok(())
    })
    .await
    .unwrap();
    assert_eq!(
        rows.iter().filter(|r| r.table == "audit_segments").count(),
        2
    );
    let mut tx = fresh.begin_restore().await.unwrap();
    for r in &rows {
        tx.add(r).await.unwrap();
    }
    tx.commit().await.unwrap();
    assert_eq!(
        fresh.list_audit_segments().await.unwrap(),
        s.list_audit_segments().await.unwrap()
    );
    assert_eq!(verify_anchored(&*fresh).await, (8, 15));
    fresh
        .append_audit(&prepared([op("Encrypt")]))
        .await
        .unwrap();
    assert_eq!(verify_anchored(&*fresh).await, (8, 16));
}

/// Verifies a pruned store's trail from its anchor to its head (checkpoint signatures
/// accepted, the head vouched for): (records archived, last record).
async fn verify_anchored(s: &dyn KeyStore) -> (u64, u64) {
    let mut v = ChainVerifier::new(|_: &Checkpoint| true).allow_anchor();
    for c in s.list_checkpoints(0, 1000).await.unwrap() {
        v.checkpoint(c).unwrap();
    }
    let (seq, hash) = s.audit_head().await.unwrap().unwrap();
    v.checkpoint(Checkpoint {
        seq,
        hash: arca_core::audit::hex(&hash),
        at: Utc::now(),
        signer: "contract".into(),
        signature: String::new(),
    })
    .unwrap();
    for e in s.read_audit(0, 1000).await.unwrap() {
        v.event(&e)
            .unwrap_or_else(|b| panic!("chain breaks: {b:?}"));
    }
    let r = v.finish().unwrap_or_else(|b| panic!("chain breaks: {b:?}"));
    (r.archived_through, r.last_seq)
}

#[tokio::test]
async fn sqlite_store_contract() {
    let dir = tempfile::tempdir().unwrap();
    let s: Arc<dyn KeyStore> = Arc::new(SqliteStore::open(&dir.path().join("a.db")).await.unwrap());
    let f: Arc<dyn KeyStore> = Arc::new(SqliteStore::open(&dir.path().join("b.db")).await.unwrap());
    assert!(s.changes().is_none(), "one process: nothing to announce");
    contract(s, f).await;
    retention(
        Arc::new(SqliteStore::open(&dir.path().join("r.db")).await.unwrap()),
        Arc::new(SqliteStore::open(&dir.path().join("r2.db")).await.unwrap()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_contract() {
    let pg = TestPostgres::start();
    let s: Arc<dyn KeyStore> = Arc::new(PgStore::connect(&pg.database("a").await).await.unwrap());
    let f: Arc<dyn KeyStore> = Arc::new(PgStore::connect(&pg.database("b").await).await.unwrap());
    contract(s, f).await;
    retention(
        Arc::new(PgStore::connect(&pg.database("r").await).await.unwrap()),
        Arc::new(PgStore::connect(&pg.database("r2").await).await.unwrap()),
    )
    .await;
}

/// Two nodes on one database: one chain from both, leases exclusive, changes announced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_two_nodes() {
    let pg = TestPostgres::start();
    let url = pg.database("ha").await;
    let a: Arc<dyn KeyStore> = Arc::new(PgStore::connect(&url).await.unwrap());
    let b: Arc<dyn KeyStore> = Arc::new(PgStore::connect(&url).await.unwrap());
    let mut feed_b = b.changes().expect("PostgreSQL announces changes");

    let t = tenant("shared");
    a.create_tenant(&t, b"kek", &[]).await.unwrap();
    assert_eq!(b.get_tenant(t.id).await.unwrap().unwrap().0.name, "shared");

    // A change committed on one node reaches the other's feed.
    let k = key(t.id, "k");
    a.write_key(&new_key_write(&k, b"m", vec![])).await.unwrap();
    let mut k2 = k.clone();
    k2.revision = 2;
    a.write_key(&KeyWrite {
        key: k2,
        expected_revision: Some(1),
        versions: vec![],
        events: vec![],
        next_due_at: None,
        records: vec![],
        audit: vec![],
    })
    .await
    .unwrap();
    // A generous bound: the point is that node b hears of the change at all (the feed's
    // speed is measured in docs/ha.md, not asserted here, where a loaded CI machine would
    // make it flaky).
    let got = tokio::time::timeout(std::time::Duration::from_secs(15), async {
        loop {
            match feed_b.recv().await.unwrap() {
                Change::Key(id) if id == k.id => return,
                _ => continue,
            }
        }
    })
    .await;
    assert!(got.is_ok(), "node b heard of the key change");

    // Both nodes append concurrently; the chain is one.
    let mut tasks = Vec::new();
    for s in [a.clone(), b.clone(), a.clone(), b.clone()] {
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                s.append_audit(&prepared([
                    event(Some(t.id), "Encrypt", None, "ok"),
                    event(Some(t.id), "Decrypt", None, "ok"),
                ]))
                .await
                .unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(verify_chain(&*a).await, 200);

    // A lease is held by one node at a time, and comes back when released or dropped.
    let lease = a.try_lease("lifecycle").await.unwrap().expect("free");
    assert!(
        b.try_lease("lifecycle").await.unwrap().is_none(),
        "held by a"
    );
    assert!(
        b.try_lease("checkpoint").await.unwrap().is_some(),
        "another job's lease is separate"
    );
    lease.release().await.unwrap();
    let lease = b
        .try_lease("lifecycle")
        .await
        .unwrap()
        .expect("released by a");
    drop(lease);
    // A dropped lease (a crashed holder) is freed when its session closes.
    let mut freed = false;
    for _ in 0..50 {
        if let Some(l) = a.try_lease("lifecycle").await.unwrap() {
            l.release().await.unwrap();
            freed = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(freed, "a dropped lease came back");

    // Two nodes racing to update the same key: exactly one wins.
    let base = b.get_key(t.id, k.id).await.unwrap().unwrap();
    let race = |s: Arc<dyn KeyStore>, mut k: Key| async move {
        let expected = k.revision;
        k.revision += 1;
        s.write_key(&KeyWrite {
            key: k,
            expected_revision: Some(expected),
            versions: vec![],
            events: vec![],
            next_due_at: None,
            records: vec![],
            audit: vec![],
        })
        .await
    };
    let (ra, rb) = tokio::join!(race(a.clone(), base.clone()), race(b.clone(), base.clone()));
    assert_eq!(ra.is_ok() as u8 + rb.is_ok() as u8, 1, "{ra:?} {rb:?}");
}

/// The store reaches PostgreSQL over TLS, verifying the server's certificate.
#[tokio::test]
async fn postgres_over_tls() {
    let pg = TestPostgres::start_tls();
    pg.database("tls").await;
    let url = pg.tls_url("tls");
    let s = PgStore::connect(&url).await.unwrap();
    s.ping().await.unwrap();
    assert!(s.using_tls().await.unwrap(), "the session is encrypted");
    // A certificate the client does not trust is refused.
    let wrong = url.replace("ca.crt", "no-such-ca.crt");
    assert!(PgStore::connect(&wrong).await.is_err());
}

/// Events as the audit writer hands them to the store.
fn prepared<const N: usize>(events: [arca_store::AuditEvent; N]) -> Vec<arca_store::PreparedEvent> {
    events.into_iter().map(Into::into).collect()
}
