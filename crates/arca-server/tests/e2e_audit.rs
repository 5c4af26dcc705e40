//! The audit trail through the real server: events atomic with changes, search and
//! paging, the usage report and series, signed checkpoints, export and server-side
//! verification, destruction receipts, and the syslog (UDP and TCP) and file sinks against
//! real listeners.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use arca_core::audit::{key_fingerprint, DestructionReceipt};
use arca_server::sinks::SinkConfig;
use arca_service::trail;
use chrono::{DateTime, SecondsFormat, Utc};
use common::{assert_error, TestServer};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn events(v: &Value) -> Vec<Value> {
    v["events"].as_array().cloned().unwrap_or_default()
}

/// A new auditor of the system tenant (made by the operator), the one who sees every
/// tenant's events and verifies the chain.
async fn system_auditor(s: &TestServer) -> TestServer {
    let op = s.operator();
    let (st, p) = op
        .post(
            "/v1/principals",
            json!({"name": "sys-auditor", "roles": ["auditor"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{p}");
    let t = op.ok("/v1/principals/sys-auditor/tokens", json!({})).await;
    s.with_token(t["token"].as_str().unwrap())
}

async fn public_key(s: &TestServer) -> Vec<u8> {
    let r = s
        .client
        .get(format!("{}/v1/audit/public-key", s.url))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let pem = r.text().await.unwrap();
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    trail::parse_public_key(pem.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_leave_an_event_and_no_change_changes_leave_both() {
    let s = TestServer::start().await;
    let store = s.service().store().clone();
    let count = |op, outcome| count(&s, op, outcome);
    // Accepted: the key and its event, with who, how and from where.
    let k = s.create(json!({"name": "a"})).await;
    let id = k["id"].as_str().unwrap();
    let all = trail::read_all(store.as_ref()).await.unwrap();
    let ev = all
        .iter()
        .find(|e| e.operation == "CreateKey" && e.outcome == "ok")
        .expect("CreateKey event");
    assert_eq!(ev.key_id.unwrap().to_string(), id);
    assert_eq!(ev.key_version, Some(1));
    assert_eq!(ev.principal, "admin");
    assert_eq!(ev.credential.as_deref(), Some("api_token"));
    assert_eq!(ev.door, "rest");
    assert!(ev.source.starts_with("127.0.0.1"), "{}", ev.source);
    assert!(!ev.request_id.is_empty());
    // The start, with the configuration in force, is an event of the server itself.
    let start = all
        .iter()
        .find(|e| e.operation == "StartServer")
        .expect("StartServer event");
    assert_eq!(start.principal, "system");
    assert_eq!(start.door, "system");
    assert_eq!(start.detail["config"]["listen"], "127.0.0.1:0");

    // Refused before any change: an event, no key.
    let (st, _) = s.post("/v1/keys", json!({"name": "bad name!"})).await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    assert_eq!(count("CreateKey", "invalid_input").await, 1);
    // Refused by the store (the transaction rolled back): a conflict event and no "ok".
    let (st, _) = s.post("/v1/keys", json!({"name": "a"})).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(count("CreateKey", "conflict").await, 1);
    assert_eq!(count("CreateKey", "ok").await, 1);
    let (st, _) = s
        .post("/v1/aliases", json!({"alias": "a", "key": "a"}))
        .await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert_eq!(count("CreateAlias", "ok").await, 0);
    assert_eq!(count("CreateAlias", "conflict").await, 1);
    let (_, list) = s.get("/v1/keys").await;
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);

    // Uses carry the version they used; never the plaintext.
    s.encrypt("a", b"secret-plaintext-123").await;
    s.service().flush_audit().await;
    let all = trail::read_all(store.as_ref()).await.unwrap();
    let enc = all.iter().rev().find(|e| e.operation == "Encrypt").unwrap();
    assert_eq!(enc.key_version, Some(1));
    let raw = std::fs::read(s.data_dir.join("arca.db")).unwrap();
    let text = String::from_utf8_lossy(&raw);
    assert!(!text.contains("secret-plaintext-123"));
    assert!(!text.contains(&s.token));
    s.shutdown().await;
}

/// How many stored events have this operation and outcome (after the queue is written).
async fn count(s: &TestServer, op: &str, outcome: &str) -> usize {
    s.service().flush_audit().await;
    trail::read_all(s.service().store().as_ref())
        .await
        .unwrap()
        .iter()
        .filter(|e| e.operation == op && e.outcome == outcome)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_paging_usage_report_and_export_verification() {
    let s = TestServer::start().await;
    s.create(json!({"name": "k1"})).await;
    s.create(json!({"name": "k2"})).await;
    let mut cts = vec![];
    for i in 0..5 {
        cts.push(s.encrypt("k1", format!("m{i}").as_bytes()).await.1["ciphertext"].clone());
    }
    for ct in cts.iter().take(2) {
        assert_eq!(s.decrypt(ct).await.0, StatusCode::OK);
    }
    s.encrypt("k2", b"x").await;
    assert_eq!(s.encrypt("missing", b"x").await.0, StatusCode::NOT_FOUND);

    // Filters.
    let (st, v) = s.get("/v1/audit?operation=Encrypt&outcome=ok").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(events(&v).len(), 6);
    let (_, v) = s.get("/v1/audit?outcome=refused").await;
    assert!(events(&v).iter().all(|e| e["outcome"] != "ok"));
    assert!(events(&v).iter().any(|e| e["outcome"] == "not_found"));
    let (_, k1) = s.get("/v1/keys/k1").await;
    let k1_id = k1["id"].as_str().unwrap().to_string();
    let (_, v) = s.get(&format!("/v1/audit?key={k1_id}")).await;
    assert!(events(&v).iter().all(|e| e["key_id"] == k1_id.as_str()));
    // create, five encrypts, two decrypts, and the describe just above.
    assert_eq!(events(&v).len(), 1 + 5 + 2 + 1);
    let (_, v) = s.get("/v1/audit?principal=admin&operation=Decrypt").await;
    assert_eq!(events(&v).len(), 2);
    let (_, v) = s
        .get("/v1/audit?from=2000-01-01T00:00:00Z&to=2000-01-02T00:00:00Z")
        .await;
    assert!(events(&v).is_empty());

    // Paging, newest first, and oldest first.
    let (_, p1) = s.get("/v1/audit?limit=3").await;
    let seqs: Vec<u64> = events(&p1)
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] > w[1]), "{seqs:?}");
    let next = p1["next"].as_u64().unwrap();
    let (_, p2) = s.get(&format!("/v1/audit?limit=3&before={next}")).await;
    assert!(events(&p2)
        .iter()
        .all(|e| e["seq"].as_u64().unwrap() < next));
    let (_, asc) = s.get("/v1/audit?after=0&limit=2").await;
    let asc: Vec<u64> = events(&asc)
        .iter()
        .map(|e| e["seq"].as_u64().unwrap())
        .collect();
    // The first records are the system tenant's (first start): not this tenant's view.
    assert!(asc.len() == 2 && asc[0] < asc[1] && asc[0] > 1, "{asc:?}");

    // Bad filters are refused by name.
    for (q, field) in [
        ("limit=0", "limit"),
        ("from=yesterday", "from"),
        ("key=nope", "key"),
        ("order=up", "order"),
        ("colour=red", "colour"),
    ] {
        let (st, v) = s.get(&format!("/v1/audit?{q}")).await;
        assert_eq!(st, StatusCode::BAD_REQUEST, "{q}: {v}");
        assert_eq!(v["error"]["field"], field, "{q}: {v}");
    }
    // A tenant auditor cannot reach into other tenants or the verifiable export.
    let (st, _) = s
        .get(&format!("/v1/audit?tenant={}", uuid::Uuid::nil()))
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST);
    let (st, _) = s.get("/v1/audit/export").await;
    assert_eq!(st, StatusCode::FORBIDDEN);

    // Usage report.
    let (st, r) = s.get("/v1/audit/usage").await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let k1r = r["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["key_id"] == k1_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(k1r["by_operation"]["Encrypt"], 5);
    assert_eq!(k1r["by_operation"]["Decrypt"], 2);
    // Every successful operation on the key counts: create, describe and the uses.
    assert_eq!(k1r["by_principal"]["admin"], 5 + 2 + 1 + 1);
    assert!(k1r["last_used_at"].is_string());
    let (_, r) = s.get("/v1/audit/usage?key=k2").await;
    assert_eq!(r["keys"].as_array().unwrap().len(), 1);
    assert_eq!(r["keys"][0]["by_operation"]["Encrypt"], 1);

    // A signed checkpoint, then the export (by an auditor of the system tenant) verifies
    // against the pinned public key, and a flipped byte does not.
    let pk = public_key(&s).await;
    let (st, cp) = s.post("/v1/audit/checkpoint", json!({})).await;
    assert_eq!(st, StatusCode::OK, "{cp}");
    assert!(cp["seq"].as_u64().unwrap() > 10);
    let auditor = system_auditor(&s).await;
    let mut lines = Vec::new();
    let mut after = 0;
    loop {
        let r = auditor
            .client
            .get(format!("{}/v1/audit/export?after={after}&limit=7", s.url))
            .bearer_auth(&auditor.token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let body = r.text().await.unwrap();
        let page: Vec<String> = body.lines().map(str::to_string).collect();
        let seqs: Vec<u64> = page
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter_map(|v| v["seq"].as_u64())
            .collect();
        lines.extend(page);
        // A short page is the tail (each export request adds its own event after it).
        match seqs.last() {
            Some(l) if seqs.len() == 7 => after = *l,
            _ => break,
        }
    }
    assert!(lines.iter().any(|l| l.starts_with("{\"checkpoint\"")));
    let report = trail::verify_export(lines.iter().cloned().map(Ok), &pk).unwrap();
    assert!(
        report.checkpoints >= 1
            && report.events as usize + report.checkpoints as usize == lines.len()
    );
    // The other tenants' events are in it (the system tenant's own, at least).
    let mut bad = lines.clone();
    bad[4] = bad[4].replacen("\"ok\"", "\"ko\"", 1);
    let brk = trail::verify_export(bad.into_iter().map(Ok), &pk).unwrap_err();
    assert_eq!(brk.seq, 5, "{brk}");
    // Another key's signature is refused.
    let other = [7u8; 32];
    assert!(trail::verify_export(lines.iter().cloned().map(Ok), &other).is_err());
    s.shutdown().await;
}

fn time(v: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("not a time: {v}")))
        .unwrap()
        .with_timezone(&Utc)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// `t` rounded down to a multiple of `step` since the epoch (a UTC hour or day).
fn floor(t: DateTime<Utc>, step: chrono::Duration) -> DateTime<Utc> {
    let (m, s) = (t.timestamp_millis(), step.num_milliseconds());
    DateTime::from_timestamp_millis(m - m.rem_euclid(s)).unwrap()
}

/// A series' buckets as (start, by_operation), after checking that they follow each other
/// from `from` to `to` with totals that add up.
fn buckets(v: &Value, step: chrono::Duration) -> Vec<(DateTime<Utc>, BTreeMap<String, u64>)> {
    let list = v["buckets"].as_array().unwrap_or_else(|| panic!("{v}"));
    let from = time(&v["from"]);
    assert_eq!(from, floor(from, step), "aligned: {v}");
    assert_eq!(time(&v["to"]), from + step * list.len() as i32, "{v}");
    list.iter()
        .enumerate()
        .map(|(i, b)| {
            assert_eq!(time(&b["start"]), from + step * i as i32, "bucket {i}: {v}");
            let ops: BTreeMap<String, u64> = serde_json::from_value(b["by_operation"].clone())
                .unwrap_or_else(|e| panic!("bucket {i}: {e}: {v}"));
            assert_eq!(
                b["total"].as_u64(),
                Some(ops.values().sum()),
                "bucket {i}: {v}"
            );
            (time(&b["start"]), ops)
        })
        .collect()
}

fn ops(list: &[(&str, u64)]) -> BTreeMap<String, u64> {
    list.iter().map(|(o, n)| (o.to_string(), *n)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_series_counts_uses_per_hour_and_day() {
    let s = TestServer::start().await;
    let hour = chrono::Duration::hours(1);
    let day = chrono::Duration::days(1);
    let k = s.create(json!({"name": "series"})).await;
    let id = k["id"].as_str().unwrap().to_string();
    let t0 = s.clock_now();
    let mut cts = vec![];
    for i in 0..3 {
        cts.push(s.encrypt("series", format!("m{i}").as_bytes()).await.1["ciphertext"].clone());
    }
    assert_eq!(s.decrypt(&cts[0]).await.0, StatusCode::OK);
    // A refused use is in the trail against the key, and not counted.
    let approver = s.principal("appr", &["approver"], &[]).await;
    assert_eq!(
        approver.encrypt("series", b"no").await.0,
        StatusCode::FORBIDDEN
    );
    let (_, refused) = s.get(&format!("/v1/audit?key={id}&outcome=refused")).await;
    assert_eq!(events(&refused).len(), 1, "{refused}");
    // Two hours later, two more.
    s.clock.advance(hour * 2);
    let t2 = s.clock_now();
    for _ in 0..2 {
        assert_eq!(s.encrypt("series", b"later").await.0, StatusCode::OK);
    }

    // Defaults: by the hour, the 24 hours up to the one in progress.
    let (st, v) = s.get("/v1/audit/usage/series?key=series").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["key_id"], id.as_str());
    assert_eq!(v["interval"], "hour");
    let b = buckets(&v, hour);
    assert_eq!(b.len(), 24);
    assert_eq!(b[23].0, floor(t2, hour));
    assert_eq!(time(&v["to"]), floor(t2, hour) + hour);
    assert_eq!(b[23].1, ops(&[("Encrypt", 2)]));
    assert_eq!(b[22].1, ops(&[]));
    assert_eq!(
        b[21].1,
        ops(&[("CreateKey", 1), ("Decrypt", 1), ("Encrypt", 3)])
    );
    assert!(b[..21].iter().all(|(_, o)| o.is_empty()), "{v}");
    assert_eq!(v["buckets"][22]["total"], 0);
    assert_eq!(v["buckets"][21]["total"], 5);

    // By the day, by key id, over explicit times: the day of the first uses and the day
    // of the later ones (maybe the same), with the series request just made.
    let from = t0 - day;
    let (st, v) = s
        .get(&format!(
            "/v1/audit/usage/series?key={id}&interval=day&from={}&to={}",
            rfc3339(from),
            rfc3339(t2)
        ))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["interval"], "day");
    let mut want: BTreeMap<DateTime<Utc>, BTreeMap<String, u64>> = BTreeMap::new();
    for (at, op, n) in [
        (t0, "CreateKey", 1),
        (t0, "Encrypt", 3),
        (t0, "Decrypt", 1),
        (t2, "Encrypt", 2),
        (t2, "AuditUsageSeries", 1),
    ] {
        *want
            .entry(floor(at, day))
            .or_default()
            .entry(op.to_string())
            .or_default() += n;
    }
    let b = buckets(&v, day);
    assert_eq!(b[0].0, floor(from, day));
    assert_eq!(
        b.len() as i64,
        2 + (floor(t2, day) - floor(t0, day)).num_days(),
        "the day before, and up to the day of the later uses: {v}"
    );
    for (start, o) in &b {
        assert_eq!(
            o,
            &want.get(start).cloned().unwrap_or_default(),
            "{start}: {v}"
        );
    }
    assert_eq!(
        b.iter().map(|(_, o)| o.values().sum::<u64>()).sum::<u64>(),
        8
    );

    // The bucket limit: 1000 hours pass, 1001 do not.
    let (st, v) = s
        .get("/v1/audit/usage/series?key=series&from=2026-01-01T00:00:00Z&to=2026-02-11T16:00:00Z")
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(buckets(&v, hour).len(), 1000);
    let too_many = s
        .get("/v1/audit/usage/series?key=series&from=2026-01-01T00:00:00Z&to=2026-02-11T17:00:00Z")
        .await;
    assert_error(
        &too_many,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("from"),
    );
    assert!(
        too_many.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1000"),
        "{}",
        too_many.1
    );

    // Bad parameters are refused by name, and each refusal is in the trail.
    let before = count(&s, "AuditUsageSeries", "invalid_input").await;
    assert_eq!(before, 1, "the limit's refusal");
    let bad = [
        ("interval=hour", "key"),
        ("key=series&interval=week", "interval"),
        ("key=series&from=yesterday", "from"),
        ("key=series&to=2026-13-01T00:00:00Z", "to"),
        (
            "key=series&from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from",
        ),
        (
            "key=series&from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
            "from",
        ),
        ("key=series&colour=red", "colour"),
    ];
    for (q, field) in bad {
        let got = s.get(&format!("/v1/audit/usage/series?{q}")).await;
        assert_error(&got, StatusCode::BAD_REQUEST, "invalid_input", Some(field));
    }
    assert_eq!(
        count(&s, "AuditUsageSeries", "invalid_input").await,
        before + bad.len()
    );
    let got = s.get("/v1/audit/usage/series?key=nope").await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);

    // A crypto-user may use the key but not read its usage.
    let user = s.principal("cu", &["crypto-user"], &[]).await;
    assert_eq!(user.encrypt("series", b"ok").await.0, StatusCode::OK);
    let got = user.get("/v1/audit/usage/series?key=series").await;
    assert_error(&got, StatusCode::FORBIDDEN, "not_permitted", None);
    assert_eq!(count(&s, "AuditUsageSeries", "not_permitted").await, 1);

    // Another tenant's key is not found, by id or name, and its auditor sees only its own.
    let (st, acme) = s
        .operator()
        .post("/v1/tenants", json!({"name": "acme"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{acme}");
    let acme_admin = s.with_token(acme["admin_token"].as_str().unwrap());
    let theirs = acme_admin.create(json!({"name": "theirs"})).await;
    let theirs_id = theirs["id"].as_str().unwrap();
    for q in [theirs_id, "theirs"] {
        let got = s.get(&format!("/v1/audit/usage/series?key={q}")).await;
        assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    }
    let acme_auditor = acme_admin.principal("acme-aud", &["auditor"], &[]).await;
    let got = acme_auditor
        .get(&format!("/v1/audit/usage/series?key={id}"))
        .await;
    assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
    let (st, v) = acme_auditor.get("/v1/audit/usage/series?key=theirs").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let b = buckets(&v, hour);
    assert_eq!(b[23].1, ops(&[("CreateKey", 1)]));
    assert!(b[..23].iter().all(|(_, o)| o.is_empty()), "{v}");
    s.shutdown().await;
}

/// The stored events (seq, operation, outcome, detail), oldest first.
async fn stored(s: &TestServer) -> Vec<(u64, String, String, Value)> {
    s.service().flush_audit().await;
    let page = s.service().store().read_audit(0, 100_000).await.unwrap();
    page.iter()
        .map(|e| {
            let d = e.decode().unwrap().event;
            (
                e.seq,
                d.operation,
                d.outcome,
                serde_json::to_value(&d.detail).unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_verification_reports_the_first_break() {
    let s = TestServer::start().await;
    s.create(json!({"name": "v"})).await;
    assert_eq!(s.encrypt("v", b"x").await.0, StatusCode::OK);
    let (st, cp) = s.post("/v1/audit/checkpoint", json!({})).await;
    assert_eq!(st, StatusCode::OK, "{cp}");
    let auditor = system_auditor(&s).await;
    let store = s.service().store().clone();

    // An intact trail: what was covered, against the server's own key.
    let (st, v) = auditor.get("/v1/audit/verify").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["ok"], true, "{v}");
    assert!(v.get("break").is_none(), "{v}");
    let pk = public_key(&s).await;
    assert_eq!(v["public_key_fingerprint"], key_fingerprint(&pk).as_str());
    assert_eq!(time(&v["verified_at"]), s.clock_now());
    let last = store.last_checkpoint().await.unwrap().unwrap();
    let n_cps = store.list_checkpoints(0, 1000).await.unwrap().len() as u64;
    assert!(last.seq >= cp["seq"].as_u64().unwrap());
    assert_eq!(v["checkpoints"].as_u64(), Some(n_cps));
    assert_eq!(v["last_checkpoint_seq"].as_u64(), Some(last.seq));
    let last_seq = v["last_seq"].as_u64().unwrap();
    assert_eq!(v["first_seq"], 1);
    assert_eq!(v["events"].as_u64(), Some(last_seq));
    assert_eq!(v["unsigned_tail"].as_u64(), Some(last_seq - last.seq));
    let all = stored(&s).await;
    let (seq, _, outcome, detail) = all
        .iter()
        .find(|e| e.1 == "VerifyAudit")
        .expect("the verification is audited");
    assert_eq!(
        *seq,
        last_seq + 1,
        "the queue was written first, and the request's own event after"
    );
    assert_eq!(outcome, "ok");
    assert_eq!(detail["intact"], true);
    assert_eq!(
        v["last_hash"].as_str().unwrap().len(),
        64,
        "hex SHA-256: {v}"
    );
    let typed: trail::AuditVerification = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(typed.report.unwrap().last_seq, last_seq);

    // Only auditors of the system tenant: the chain covers every tenant.
    let got = s.get("/v1/audit/verify").await;
    assert_error(&got, StatusCode::FORBIDDEN, "not_permitted", None);
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("system tenant"),
        "{}",
        got.1
    );
    let user = s.principal("cu", &["crypto-user"], &[]).await;
    let got = user.get("/v1/audit/verify").await;
    assert_error(&got, StatusCode::FORBIDDEN, "not_permitted", None);
    let got = auditor.get("/v1/audit/verify?after=3").await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("after"),
    );
    assert_eq!(count(&s, "VerifyAudit", "not_permitted").await, 2);
    assert_eq!(count(&s, "VerifyAudit", "invalid_input").await, 1);

    // Someone with the database file hides the use of the key: a break at that record.
    let enc = all
        .iter()
        .find(|e| e.1 == "Encrypt" && e.2 == "ok")
        .unwrap()
        .0;
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        s.data_dir.join("arca.db").display()
    ))
    .await
    .unwrap();
    // (The outcome column is part of the compact record: the hashed bytes are rebuilt from it.)
    let done = sqlx::query("UPDATE audit_events SET outcome = 'not_permitted' WHERE seq = ?")
        .bind(enc as i64)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
    pool.close().await;
    let (st, v) = auditor.get("/v1/audit/verify").await;
    assert_eq!(st, StatusCode::OK, "the verification ran: {v}");
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["break"]["seq"].as_u64(), Some(enc), "{v}");
    assert!(
        v["break"]["problem"]
            .as_str()
            .unwrap()
            .contains("does not match its hash"),
        "{v}"
    );
    assert!(
        v.get("events").is_none() && v.get("last_seq").is_none(),
        "{v}"
    );
    assert_eq!(v["public_key_fingerprint"], key_fingerprint(&pk).as_str());
    let typed: trail::AuditVerification = serde_json::from_value(v.clone()).unwrap();
    assert!(typed.report.is_none() && !typed.ok);
    assert_eq!(typed.chain_break.unwrap().seq, enc);
    let (_, _, outcome, detail) = stored(&s)
        .await
        .into_iter()
        .rfind(|e| e.1 == "VerifyAudit" && e.2 == "ok")
        .unwrap();
    assert_eq!(outcome, "ok");
    assert_eq!(detail["intact"], false);
    assert_eq!(detail["break_seq"].as_u64(), Some(enc));

    // Both routes are in the OpenAPI document.
    let doc: Value = s
        .client
        .get(format!("{}/v1/openapi.json", s.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let series = &doc["paths"]["/v1/audit/usage/series"]["get"];
    let params: Vec<(&str, bool)> = series["parameters"]
        .as_array()
        .unwrap_or_else(|| panic!("{series}"))
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["required"] == true))
        .collect();
    assert_eq!(
        params,
        [
            ("key", true),
            ("from", false),
            ("to", false),
            ("interval", false)
        ]
    );
    assert!(doc["paths"]["/v1/audit/verify"]["get"].is_object());
    assert!(doc["components"]["schemas"]["AuditVerification"].is_object());
    s.shutdown().await;
}

/// Issue 17: the searchable columns were not covered by the chain (editing them left
/// `verify` intact and made search lie), and a trail whose checkpoints were all deleted
/// verified. Both now fail, through the real server and the real SQLite file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_search_columns_and_removed_checkpoints_are_caught() {
    let s = TestServer::start().await;
    s.create(json!({"name": "hidden-use"})).await;
    assert_eq!(s.encrypt("hidden-use", b"x").await.0, StatusCode::OK);
    let (st, _) = s.post("/v1/audit/checkpoint", json!({})).await;
    assert_eq!(st, StatusCode::OK);
    let auditor = system_auditor(&s).await;
    let (_, v) = auditor.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    let enc = stored(&s)
        .await
        .iter()
        .find(|e| e.1 == "Encrypt" && e.2 == "ok")
        .unwrap()
        .0;
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        s.data_dir.join("arca.db").display()
    ))
    .await
    .unwrap();
    // Someone with the database file makes the use look like a metadata read.
    let done = sqlx::query("UPDATE audit_events SET operation = 'DescribeKey' WHERE seq = ?")
        .bind(enc as i64)
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(done.rows_affected(), 1);
    // Search refuses to answer from the edited index, naming the record...
    let (st, v) = s.get("/v1/audit?limit=1000").await;
    assert_eq!(st, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&format!("audit record {enc}")),
        "{v}"
    );
    // ...and verification breaks there.
    let (_, v) = auditor.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], false, "{v}");
    assert_eq!(v["break"]["seq"].as_u64(), Some(enc), "{v}");
    // (The searchable columns are part of the compact record: its hashed bytes, rebuilt
    // from them, no longer match its hash.)
    assert!(
        v["break"]["problem"]
            .as_str()
            .unwrap()
            .contains("does not match its hash"),
        "{v}"
    );
    sqlx::query("UPDATE audit_events SET operation = 'Encrypt' WHERE seq = ?")
        .bind(enc as i64)
        .execute(&pool)
        .await
        .unwrap();
    let (_, v) = auditor.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    // Deleting every signed checkpoint no longer leaves a trail that verifies: the chain
    // itself records where the server signed.
    sqlx::query("DELETE FROM audit_checkpoints")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let (_, v) = auditor.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], false, "{v}");
    assert!(
        v["break"]["problem"]
            .as_str()
            .unwrap()
            .contains("checkpoint"),
        "{v}"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destruction_receipts_are_signed_and_checked() {
    let s = TestServer::start().await;
    s.create(json!({"name": "gone"})).await;
    s.ok("/v1/keys/gone/rotate", json!({})).await;
    s.ok(
        "/v1/keys/gone/versions/1/deactivate",
        json!({"reason": "SUPERSEDED"}),
    )
    .await;
    s.ok(
        "/v1/keys/gone/versions/1/schedule-destruction",
        json!({"pending_window_days": 7}),
    )
    .await;
    let (_, r) = s.get("/v1/keys/gone/receipts").await;
    assert_eq!(r, json!([]));
    s.advance(chrono::Duration::days(8)).await;
    let (st, r) = s.get("/v1/keys/gone/receipts").await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let receipts: Vec<DestructionReceipt> = serde_json::from_value(r).unwrap();
    assert_eq!(receipts.len(), 1);
    let rc = &receipts[0];
    assert_eq!(rc.version, 1);
    assert_eq!(rc.key_name, "gone");
    assert!(rc.requested_by.starts_with("admin:"), "{}", rc.requested_by);
    let pk = public_key(&s).await;
    trail::verify_receipt(&pk, rc).unwrap();
    let mut forged = rc.clone();
    forged.version = 2;
    assert!(trail::verify_receipt(&pk, &forged).is_err());
    let mut forged = rc.clone();
    forged.requested_by = "someone-else".into();
    assert!(trail::verify_receipt(&pk, &forged).is_err());
    // The destruction itself is in the trail, as the server's own event.
    let all = trail::read_all(s.service().store().as_ref()).await.unwrap();
    assert!(all.iter().any(|e| e.operation == "LifecycleTask"
        && e.principal == "system"
        && e.key_version == Some(1)
        && e.detail.get("transition").and_then(|t| t.as_str()) == Some("destroy")));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_and_file_sinks_ship_every_event() {
    let udp = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let udp_addr = udp.local_addr().unwrap();
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("trail.jsonl");
    let cef = dir.path().join("trail.cef");
    let (file2, cef2) = (file.clone(), cef.clone());
    let s = TestServer::start_with(move |c| {
        c.audit.sinks = vec![
            SinkConfig {
                name: "udp".into(),
                kind: "syslog".into(),
                path: None,
                address: Some(udp_addr.to_string()),
                transport: None,
                format: None,
            },
            SinkConfig {
                name: "tcp".into(),
                kind: "syslog".into(),
                path: None,
                address: Some(tcp_addr.to_string()),
                transport: Some("tcp".into()),
                format: Some("cef".into()),
            },
            SinkConfig {
                name: "file".into(),
                kind: "file".into(),
                path: Some(file2.clone()),
                address: None,
                transport: None,
                format: None,
            },
            SinkConfig {
                name: "cef".into(),
                kind: "file".into(),
                path: Some(cef2.clone()),
                address: None,
                transport: None,
                format: Some("cef".into()),
            },
        ]
    })
    .await;
    s.create(json!({"name": "shipped"})).await;
    s.encrypt("shipped", b"x").await;
    assert_eq!(s.encrypt("nope", b"x").await.0, StatusCode::NOT_FOUND);
    s.service().flush_audit().await;
    let head = s.service().store().audit_head().await.unwrap().unwrap().0;

    // UDP: one RFC 5424 message per datagram, in chain order.
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    while got.len() < head as usize {
        let n = tokio::time::timeout(Duration::from_secs(20), udp.recv(&mut buf))
            .await
            .expect("syslog datagrams within 20 s")
            .unwrap();
        got.push(String::from_utf8(buf[..n].to_vec()).unwrap());
    }
    let first = &got[0];
    assert!(
        first.starts_with("<110>1 ") || first.starts_with("<108>1 "),
        "{first}"
    );
    assert!(first.contains("[arca@32473 seq=\"1\""), "{first}");
    assert!(got
        .iter()
        .any(|m| m.contains(" CreateKey [arca@32473") && m.contains("outcome=\"ok\"")));
    let refused = got
        .iter()
        .find(|m| m.contains("outcome=\"not_found\""))
        .expect("the refusal is shipped");
    assert!(
        refused.starts_with("<108>1 "),
        "warning severity: {refused}"
    );

    // TCP: octet-counted frames carrying CEF.
    let (mut conn, _) = tokio::time::timeout(Duration::from_secs(20), tcp.accept())
        .await
        .expect("the TCP sink connects")
        .unwrap();
    let mut data = Vec::new();
    let mut frames = Vec::new();
    while frames.len() < head as usize {
        let mut chunk = vec![0u8; 65536];
        let n = tokio::time::timeout(
            Duration::from_secs(20),
            tokio::io::AsyncReadExt::read(&mut conn, &mut chunk),
        )
        .await
        .expect("frames within 20 s")
        .unwrap();
        assert!(n > 0, "the sink closed the connection");
        data.extend_from_slice(&chunk[..n]);
        // Parse complete "LEN SP MSG" frames.
        while let Some(sp) = data.iter().position(|b| *b == b' ') {
            let len: usize = std::str::from_utf8(&data[..sp]).unwrap().parse().unwrap();
            if data.len() < sp + 1 + len {
                break;
            }
            frames.push(String::from_utf8(data[sp + 1..sp + 1 + len].to_vec()).unwrap());
            data.drain(..sp + 1 + len);
        }
    }
    assert!(frames[0].contains("CEF:0|Arca|Arca KMS|"), "{}", frames[0]);
    assert!(frames.iter().any(|f| f.contains("|Encrypt|Encrypt|")));

    // The JSON file sink is the chain itself, with its signed checkpoints: it verifies on
    // its own (once a checkpoint has been shipped; the server signs one at every start).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let pk = public_key(&s).await;
    loop {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        if let Ok(r) = trail::verify_export(text.lines().map(|l| Ok(l.to_string())), &pk) {
            if r.events >= head {
                assert!(r.checkpoints >= 1, "{r:?}");
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "file sink is behind"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let text = std::fs::read_to_string(&cef).unwrap_or_default();
    assert!(text.lines().all(|l| l.starts_with("CEF:0|")));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_for_operators() {
    let s = TestServer::start().await;
    s.create(json!({"name": "m"})).await;
    for _ in 0..3 {
        s.encrypt("m", b"x").await;
    }
    assert_eq!(s.encrypt("nope", b"x").await.0, StatusCode::NOT_FOUND);
    let scrape = |token: Option<String>| {
        let c = s.client.clone();
        let url = format!("{}/metrics", s.url);
        async move {
            let mut r = c.get(url).header("accept", "application/openmetrics-text");
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            let r = r.send().await.unwrap();
            (r.status(), r.text().await.unwrap())
        }
    };
    assert_eq!(scrape(None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(scrape(Some(s.token.clone())).await.0, StatusCode::FORBIDDEN);
    let (st, text) = scrape(Some(s.operator_token.clone())).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    for want in [
        "arca_requests_total{door=\"rest\",operation=\"Encrypt\",outcome=\"ok\"} 3",
        "arca_requests_total{door=\"rest\",operation=\"Encrypt\",outcome=\"not_found\"} 1",
        "arca_request_duration_seconds_bucket{le=",
        "arca_keys{state=\"ACTIVE\"} 1",
        "arca_sealed 0",
        "arca_cache_hits_total{cache=\"keys\"}",
        "arca_cache_misses_total{cache=\"keys\"}",
        "arca_audit_backlog ",
        "arca_audit_unsigned_events ",
        "arca_store_unreachable 0",
        "arca_audit_events_not_stored 0",
    ] {
        assert!(text.contains(want), "no {want:?} in\n{text}");
    }
    s.shutdown().await;

    // Published to a trusted scraper without a credential when configured so.
    let s = TestServer::start_with(|c| c.metrics.unauthenticated = true).await;
    let r = s
        .client
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("arca_sealed 0"));
    s.shutdown().await;
}

/// Retention through the REST door (issue 20): an auditor of the system tenant archives a
/// segment (its file and its event name the same SHA-256); a prune under the system
/// tenant's quorum rule waits for approval and then removes exactly the approved range; the
/// retention task archives what is new and prunes what is older than `prune_after_secs`;
/// the server's own verification starts at the signed anchor, before and after a restart,
/// and the archive with the store verifies from record 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_prune_under_quorum_and_the_retention_task() {
    let mut s = TestServer::start_with(|c| {
        c.audit.archive_interval_secs = 3600;
        c.audit.prune_after_secs = 60;
    })
    .await;
    s.create(json!({"name": "r"})).await;
    for _ in 0..3 {
        assert_eq!(s.encrypt("r", b"x").await.0, StatusCode::OK);
    }
    let auditor = system_auditor(&s).await;
    let op = s.operator();
    let archive = s.data_dir.join("audit-archive");

    // Auditors of the system tenant archive; a tenant's admin does not.
    let got = s.post("/v1/audit/archive", json!({})).await;
    assert_error(&got, StatusCode::FORBIDDEN, "not_permitted", None);
    // A file left by an attempt that never committed (a crash between the file and the
    // store) is set aside, not overlapped.
    // (The retention task archived once at start; its next run is an hour away.)
    let mut listed = json!([]);
    for _ in 0..100 {
        listed = auditor.get("/v1/audit/segments").await.1;
        if !listed.as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let next = listed
        .as_array()
        .unwrap()
        .last()
        .map_or(1, |g| g["last_seq"].as_u64().unwrap() + 1);
    let stray = archive.join(format!("arca-audit-{next}-{}.jsonl", next + 2));
    std::fs::create_dir_all(&archive).unwrap();
    std::fs::write(&stray, "{}\n").unwrap();
    let (st, seg) = auditor.post("/v1/audit/archive", json!({})).await;
    assert_eq!(st, StatusCode::OK, "{seg}");
    assert!(!stray.exists());
    assert!(stray.with_extension("jsonl.unrecorded").exists());
    let file = seg["file"].as_str().unwrap().to_string();
    assert_eq!(
        arca_service::retention::file_sha256(&archive.join(&file)).unwrap(),
        seg["sha256"].as_str().unwrap()
    );
    let last = seg["last_seq"].as_u64().unwrap();
    let all = stored(&s).await;
    let (at, _, outcome, detail) = all
        .iter()
        .find(|e| e.1 == "ArchiveAudit" && e.3["file"] == file.as_str())
        .expect("the archive is audited");
    assert!(
        *at > last && outcome == "ok",
        "after the segment it archived"
    );
    assert_eq!(detail["sha256"], seg["sha256"]);
    assert_eq!(detail["last_seq"], last);

    // Pruning under the system tenant's quorum rule: the range is fixed when asked.
    let (st, v) = op
        .req(
            reqwest::Method::PUT,
            "/v1/tenant/settings",
            Some(json!({"approval_rules": [{"actions": ["PruneAudit"], "approvals": 1}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let approver = op.principal("retention-officer", &["approver"], &[]).await;
    let (st, v) = op
        .post("/v1/audit/prune", json!({"through_seq": last}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let id = v["error"]["approval_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, v) = auditor.get("/v1/audit/verify").await;
    assert_eq!(
        (v["ok"].clone(), v["archived_through"].clone()),
        (json!(true), json!(0))
    );
    approver
        .ok(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await;
    let done = op
        .ok(&format!("/v1/approvals/{id}/execute"), json!({}))
        .await;
    assert_eq!(done["result"]["through_seq"], last, "{done}");
    assert_eq!(done["result"]["events_pruned"], last, "{done}");
    let (_, v) = auditor.get("/v1/audit/verify").await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["archived_through"], last, "{v}");
    assert_eq!(v["first_seq"], last + 1, "{v}");
    let all = stored(&s).await;
    let (_, _, outcome, detail) = all
        .iter()
        .find(|e| e.1 == "PruneAudit" && e.2 == "ok")
        .expect("the prune is audited");
    assert_eq!(outcome, "ok");
    assert_eq!(detail["through_seq"], last);
    // Every segment up to the range (the retention task archived one at start), by file
    // and SHA-256.
    assert!(
        detail["files"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["file"] == file.as_str() && f["sha256"] == seg["sha256"]),
        "{detail}"
    );
    // Requests that name no archived range, or both bounds, or an unknown field.
    for body in [
        json!({"through_seq": last}),
        json!({"through_seq": 1, "older_than": "2026-01-01T00:00:00Z"}),
        json!({"through": 5}),
    ] {
        let got = op.post("/v1/audit/prune", body.clone()).await;
        assert_eq!(got.0, StatusCode::BAD_REQUEST, "{body}: {}", got.1);
    }

    // The retention task: what is new is archived, what is older than a minute pruned (by
    // configuration: no approval).
    for _ in 0..2 {
        assert_eq!(s.encrypt("r", b"y").await.0, StatusCode::OK);
        s.advance(chrono::Duration::minutes(2)).await;
        s.service().run_retention().await.unwrap();
    }
    let (_, segs) = auditor.get("/v1/audit/segments").await;
    let segs = segs.as_array().unwrap().clone();
    assert!(segs.len() >= 3, "{segs:?}");
    let (newest, older) = segs.split_last().unwrap();
    assert!(newest["pruned_at"].is_null(), "{newest}");
    assert!(older.iter().all(|g| !g["pruned_at"].is_null()), "{segs:?}");
    let anchor = older.last().unwrap()["last_seq"].clone();
    let (_, v) = auditor.get("/v1/audit/verify").await;
    assert_eq!(
        (v["ok"].clone(), v["archived_through"].clone()),
        (json!(true), anchor.clone()),
        "{v}"
    );

    // After a restart, the same; offline, the archive and the store make one chain.
    s.restart().await;
    let auditor = s.with_token(&auditor.token);
    let (_, v) = auditor.get("/v1/audit/verify").await;
    assert_eq!(
        (v["ok"].clone(), v["archived_through"].clone()),
        (json!(true), anchor),
        "{v}"
    );
    let pk = public_key(&s).await;
    let whole = trail::verify_archive(
        &archive,
        &pk,
        trail::ArchiveTail::Store(s.service().store().as_ref()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((whole.first_seq, whole.segments), (1, segs.len() as u64));

    // A record archived but still in the store, edited there (its hash recomputed, so only
    // the chain can tell): the store's copy is checked too, not only the archive's.
    let seq = newest["first_seq"].as_u64().unwrap() as i64;
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        s.data_dir.join("arca.db").display()
    ))
    .await
    .unwrap();
    let record = s
        .service()
        .store()
        .read_audit(seq as u64 - 1, 1)
        .await
        .unwrap()
        .remove(0)
        .decode()
        .unwrap();
    // (Its door, which no searchable column holds: only the link to it can tell.)
    assert_eq!(record.event.door, "system");
    let mut forged = record.event.clone();
    forged.door = "rest".into();
    let prev = arca_core::audit::unhex32(&record.prev).unwrap();
    let forged = arca_core::audit::PreparedEvent::new(forged);
    sqlx::query("UPDATE audit_events SET doc = ?, hash = ? WHERE seq = ?")
        .bind(forged.without_columns(seq as u64))
        .bind(forged.link(seq as u64, &prev).hash.to_vec())
        .bind(seq)
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let brk = trail::verify_archive(
        &archive,
        &pk,
        trail::ArchiveTail::Store(s.service().store().as_ref()),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(brk.seq, seq as u64 + 1, "the next record's link: {brk}");
}

/// A prune goes no further than every `[[audit.sinks]]` has delivered (issue 20): a SIEM
/// that is down holds the records it has not received in the store, and once it is back and
/// has them, they are pruned.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pruning_waits_for_the_audit_sinks() {
    // A port nobody listens on yet: the SIEM is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let s = TestServer::start_with(move |c| {
        c.audit.sinks = vec![SinkConfig {
            name: "siem".into(),
            kind: "syslog".into(),
            path: None,
            address: Some(format!("127.0.0.1:{port}")),
            transport: Some("tcp".into()),
            format: None,
        }]
    })
    .await;
    s.create(json!({"name": "held"})).await;
    assert_eq!(s.encrypt("held", b"x").await.0, StatusCode::OK);
    let auditor = system_auditor(&s).await;
    let op = s.operator();
    let (st, seg) = auditor.post("/v1/audit/archive", json!({})).await;
    assert_eq!(st, StatusCode::OK, "{seg}");
    let last = seg["last_seq"].as_u64().unwrap();

    let got = op
        .post("/v1/audit/prune", json!({"through_seq": last}))
        .await;
    assert_error(&got, StatusCode::CONFLICT, "conflict", None);
    assert!(
        got.1["error"]["message"].as_str().unwrap().contains("siem"),
        "{}",
        got.1
    );
    let (st, r) = op.post("/v1/audit/prune", json!({})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    assert_eq!(r["through_seq"], 0, "{r}");

    // The SIEM is back: once it has the records, they are pruned.
    let siem = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = siem.accept().await {
            tokio::spawn(async move {
                let _ = tokio::io::copy(&mut c, &mut tokio::io::sink()).await;
            });
        }
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (st, r) = op
            .post("/v1/audit/prune", json!({"through_seq": last}))
            .await;
        if st == StatusCode::OK {
            assert_eq!(r["through_seq"], last, "{r}");
            break;
        }
        assert_eq!(st, StatusCode::CONFLICT, "{r}");
        assert!(
            std::time::Instant::now() < deadline,
            "the sink never delivered"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (_, v) = auditor.get("/v1/audit/verify").await;
    assert_eq!(v["archived_through"], last, "{v}");
}
