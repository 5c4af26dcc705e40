//! Several nodes on one PostgreSQL store (started by the test, never mocked): what one node
//! changes, the other honours within a second; background work happens once; the audit
//! chain stays one.

mod common;

use std::time::{Duration, Instant};

use arca_store::testing::TestPostgres;
use common::TestServer;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// The documented coherence bound (docs/ha.md).
const BOUND: Duration = Duration::from_secs(1);

/// Polls `check` until it holds; the time it took, or a panic past the bound.
async fn within_bound<F, Fut>(what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = Instant::now();
    loop {
        if check().await {
            let took = t0.elapsed();
            assert!(
                took <= BOUND,
                "{what}: took {took:?}, over the {BOUND:?} bound"
            );
            return took;
        }
        assert!(
            t0.elapsed() <= BOUND,
            "{what}: not honoured within {BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn two_nodes(pg: &TestPostgres, db: &str) -> (TestServer, TestServer) {
    let url = pg.database(db).await;
    let u = url.clone();
    let a = TestServer::start_with(move |c| c.store.url = Some(u.clone())).await;
    let u = url.clone();
    let b = a.second_node(move |c| c.store.url = Some(u.clone())).await;
    (a, b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_is_honoured_by_the_other_within_a_second() {
    let pg = TestPostgres::start();
    let (a, b) = two_nodes(&pg, "coherence").await;

    // Suspend: B has the key cached (it just used it), A suspends it.
    a.create(json!({"name": "k"})).await;
    for _ in 0..3 {
        assert_eq!(b.encrypt("k", b"x").await.0, StatusCode::OK);
    }
    a.ok("/v1/keys/k/suspend", json!({"reason": "test"})).await;
    let took = within_bound("suspend", || async {
        b.encrypt("k", b"x").await.0 != StatusCode::OK
    })
    .await;
    eprintln!("suspend honoured by the other node after {took:?}");
    assert_eq!(b.encrypt("k", b"x").await.0, StatusCode::CONFLICT);

    // A token revoked on A stops working on B, which had it cached.
    let (s, t) = a
        .post("/v1/principals/admin/tokens", json!({"name": "short"}))
        .await;
    assert!(s.is_success(), "{t}");
    let other = b.with_token(t["token"].as_str().unwrap());
    for _ in 0..3 {
        assert_eq!(other.get("/v1/keys").await.0, StatusCode::OK);
    }
    let (s, v) = a
        .req(
            Method::DELETE,
            &format!("/v1/tokens/{}", t["id"].as_str().unwrap()),
            None,
        )
        .await;
    assert!(s.is_success(), "{v}");
    let took = within_bound("token revocation", || async {
        other.get("/v1/keys").await.0 == StatusCode::UNAUTHORIZED
    })
    .await;
    eprintln!("token revocation honoured after {took:?}");

    // A principal disabled on A is refused on B, which had its token cached.
    let app = a.principal("app", &["crypto-user"], &[]).await;
    let app_on_b = b.with_token(&app.token);
    for _ in 0..3 {
        assert_eq!(app_on_b.get("/v1/whoami").await.0, StatusCode::OK);
    }
    let (s, v) = a
        .req(
            Method::PATCH,
            "/v1/principals/app",
            Some(json!({"disabled": true})),
        )
        .await;
    assert!(s.is_success(), "{v}");
    let took = within_bound("principal disabled", || async {
        app_on_b.get("/v1/whoami").await.0 != StatusCode::OK
    })
    .await;
    eprintln!("principal disabling honoured after {took:?}");

    // A key policy that stops granting use.
    a.create(json!({"name": "p"})).await;
    for _ in 0..3 {
        assert_eq!(b.encrypt("p", b"x").await.0, StatusCode::OK);
    }
    let (s, v) = a
        .req(
            Method::PUT,
            "/v1/keys/p/policy",
            Some(json!({"statements": []})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let took = within_bound("policy change", || async {
        b.encrypt("p", b"x").await.0 == StatusCode::FORBIDDEN
    })
    .await;
    eprintln!("policy change honoured after {took:?}");

    // A destruction carried out by A's lifecycle task shows on B, which had the key cached.
    a.create(json!({"name": "d"})).await;
    assert_eq!(b.encrypt("d", b"x").await.0, StatusCode::OK);
    a.ok("/v1/keys/d/suspend", json!({})).await;
    a.ok(
        "/v1/keys/d/schedule-destruction",
        json!({"pending_window_days": 1}),
    )
    .await;
    a.clock.advance(chrono::Duration::days(2));
    assert!(a.service().run_due().await.unwrap() >= 1);
    let took = within_bound("destruction", || async {
        b.get("/v1/keys/d").await.1["state"] == "DESTROYED"
    })
    .await;
    eprintln!("destruction honoured after {took:?}");

    // An alias moved on A resolves to the new key on B.
    a.create(json!({"name": "q"})).await;
    let (st, v) = a
        .post("/v1/aliases", json!({"alias": "app", "key": "q"}))
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    a.create(json!({"name": "r"})).await;
    let (_, ct) = b.encrypt("app", b"x").await;
    assert_eq!(ct["key_id"], a.get("/v1/keys/q").await.1["id"], "{ct}");
    let (s, v) = a
        .req(Method::PUT, "/v1/aliases/app", Some(json!({"key": "r"})))
        .await;
    assert!(s.is_success(), "{v}");
    let r_id = a.get("/v1/keys/r").await.1["id"].clone();
    within_bound("alias move", || async {
        b.encrypt("app", b"x").await.1["key_id"] == r_id
    })
    .await;

    b.shutdown().await;
    a.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_work_happens_once_across_nodes() {
    let pg = TestPostgres::start();
    let (a, b) = two_nodes(&pg, "once").await;
    let n = 12;
    for i in 0..n {
        a.create(json!({"name": format!("rot-{i}"), "rotation_period_days": 30}))
            .await;
    }
    // Both nodes' clocks pass the rotation date; both run their lifecycle task at once,
    // several times over.
    a.clock.advance(chrono::Duration::days(31));
    b.clock.advance(chrono::Duration::days(31));
    let mut changed = 0;
    for _ in 0..3 {
        let (x, y) = tokio::join!(a.service().run_due(), b.service().run_due());
        changed += x.unwrap() + y.unwrap();
    }
    assert_eq!(changed, n, "each due key handled by exactly one node, once");
    for i in 0..n {
        let (_, v) = b.get(&format!("/v1/keys/rot-{i}/versions")).await;
        assert_eq!(
            v.as_array().map(|a| a.len()),
            Some(2),
            "rot-{i} rotated once: {v}"
        );
    }
    // One chain, written by both nodes.
    a.service().checkpoint_audit().await.unwrap();
    let store = b.service().store().clone();
    let pk = store
        .get_meta(arca_service::trail::AUDIT_PUBLIC_KEY_META)
        .await
        .unwrap()
        .expect("audit public key");
    let report = arca_service::trail::verify_store(&*store, &pk)
        .await
        .unwrap()
        .unwrap_or_else(|b| panic!("the shared chain breaks: {b}"));
    assert!(
        report.checkpoints >= 1 && report.events > 2 * n as u64,
        "{report:?}"
    );
    b.shutdown().await;
    a.shutdown().await;
}

/// Known key material, imported and used through a node, is in no file of the PostgreSQL
/// cluster (tables, WAL), in no form: only sealed material reaches the shared store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn known_key_bytes_are_in_no_postgres_file() {
    use base64::Engine;
    let pg = TestPostgres::start();
    let (a, b) = two_nodes(&pg, "secrets").await;
    let aes: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(53).wrapping_add(7))
        .collect();
    let b64 = |x: &[u8]| base64::engine::general_purpose::STANDARD.encode(x);
    a.create(json!({"name": "known", "material": b64(&aes), "extractable": true}))
        .await;
    let (_, ct) = a.encrypt("known", b"payload").await;
    let (s, pt) = b.decrypt(&ct["ciphertext"]).await;
    assert_eq!(
        (s, pt["plaintext"].as_str()),
        (StatusCode::OK, Some(b64(b"payload").as_str()))
    );
    let aes2: Vec<u8> = aes.iter().map(|x| x ^ 0x5a).collect();
    a.ok("/v1/keys/known/rotate", json!({"material": b64(&aes2)}))
        .await;
    a.service().flush_audit().await;
    b.service().flush_audit().await;
    // Everything written reaches the data files, not only the WAL.
    {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&pg.url()).await.unwrap();
        sqlx::query("CHECKPOINT").execute(&mut c).await.unwrap();
    }
    fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                files(&e.path(), out);
            } else if t.is_file() {
                out.push(e.path());
            }
        }
    }
    let mut all = Vec::new();
    files(pg.path(), &mut all);
    assert!(all.iter().any(|p| p.to_string_lossy().contains("pg_wal")));
    let hex: String = aes.iter().map(|x| format!("{x:02x}")).collect();
    let mut scanned = 0;
    for f in &all {
        let bytes = std::fs::read(f).unwrap();
        scanned += bytes.len();
        for form in [
            aes.clone(),
            aes2.clone(),
            b64(&aes).into_bytes(),
            hex.clone().into_bytes(),
        ] {
            assert!(
                !bytes.windows(form.len()).any(|w| w == form.as_slice()),
                "the known key is in {}",
                f.display()
            );
        }
    }
    assert!(
        scanned > 1_000_000,
        "the cluster's files were read ({scanned} bytes)"
    );
    b.shutdown().await;
    a.shutdown().await;
}

/// Retention on two nodes sharing PostgreSQL and one archive directory (issue 20): segments
/// archived by either node continue each other, archive requests racing on both nodes never
/// leave overlapping files (one node at a time: the other is told to try again), the node
/// that prunes finds the other's files, and the whole trail verifies from the archive and the
/// shared store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_nodes_archive_and_prune_one_trail() {
    let pg = TestPostgres::start();
    let url = pg.database("retention").await;
    let shared = tempfile::tempdir().unwrap();
    let archive = shared.path().join("archive");
    let (u, d) = (url.clone(), archive.clone());
    let a = TestServer::start_with(move |c| {
        c.store.url = Some(u.clone());
        c.audit.archive_dir = Some(d.clone());
    })
    .await;
    let (u, d) = (url.clone(), archive.clone());
    let b = a
        .second_node(move |c| {
            c.store.url = Some(u.clone());
            c.audit.archive_dir = Some(d.clone());
        })
        .await;
    let op_a = a.operator();
    let (st, v) = op_a
        .post(
            "/v1/principals",
            json!({"name": "sys-auditor", "roles": ["auditor"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    let t = op_a
        .ok("/v1/principals/sys-auditor/tokens", json!({}))
        .await;
    let token = t["token"].as_str().unwrap().to_string();
    let (aud_a, aud_b) = (a.with_token(&token), b.with_token(&token));
    a.create(json!({"name": "k"})).await;

    for round in 0..3 {
        for n in [&a, &b] {
            assert_eq!(n.encrypt("k", b"x").await.0, StatusCode::OK);
        }
        // Both nodes asked at once: each archives (one after the other) or is told that
        // the other is at it.
        let (ra, rb) = tokio::join!(
            aud_a.post("/v1/audit/archive", json!({})),
            aud_b.post("/v1/audit/archive", json!({}))
        );
        let mut archived = 0;
        for (st, v) in [ra, rb] {
            match st {
                StatusCode::OK => archived += usize::from(!v.is_null()),
                StatusCode::CONFLICT => assert!(
                    v["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("another node"),
                    "{v}"
                ),
                other => panic!("round {round}: {other} {v}"),
            }
        }
        assert!(archived >= 1, "round {round}");
    }
    let (_, segs) = aud_a.get("/v1/audit/segments").await;
    let segs = segs.as_array().unwrap().clone();
    for w in segs.windows(2) {
        assert_eq!(
            w[1]["first_seq"].as_u64().unwrap(),
            w[0]["last_seq"].as_u64().unwrap() + 1,
            "{segs:?}"
        );
    }
    let files = arca_service::trail::archive_files(&archive).unwrap();
    assert_eq!(files.len(), segs.len(), "one file per recorded segment");

    // Node B prunes everything archived (node A wrote some of the files).
    let (st, r) = b.operator().post("/v1/audit/prune", json!({})).await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let last = segs.last().unwrap()["last_seq"].as_u64().unwrap();
    assert_eq!(r["through_seq"], last, "{r}");
    for aud in [&aud_a, &aud_b] {
        let (_, v) = aud.get("/v1/audit/verify").await;
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["archived_through"], last, "{v}");
    }
    let pk = arca_service::trail::parse_public_key(&a.service().audit_public_key().await.unwrap())
        .unwrap();
    let whole = arca_service::trail::verify_archive(
        &archive,
        &pk,
        arca_service::trail::ArchiveTail::Store(a.service().store().as_ref()),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!((whole.first_seq, whole.segments), (1, segs.len() as u64));
}
