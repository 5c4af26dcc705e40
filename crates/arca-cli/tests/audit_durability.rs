//! Durable before acknowledged (issue 20), with a real process: `arca serve` on its
//! embedded SQLite store under a mixed load of uses, reads, changes and refusals from 16
//! connections, killed with SIGKILL mid-load. Every request that got an answer (any status
//! below 500) must have its audit event in the store the killed process left behind, found
//! by the request id the client sent, and the trail must still verify.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::json;

mod common;

use common::Server;

/// The server's URL, from the profile its first start wrote.
fn server_url(s: &Server) -> String {
    let text = std::fs::read_to_string(&s.profile).unwrap();
    text.lines()
        .find(|l| l.trim_start().starts_with("server"))
        .and_then(|l| l.split('"').nth(1))
        .expect("the profile names the server")
        .to_string()
}

/// A client of the server that trusts its CA (requests time out after `timeout`), with a
/// key named `key` made.
async fn client_with_key(s: &Server, key: &str, timeout: Duration) -> (reqwest::Client, String) {
    let url = server_url(s);
    let ca = std::fs::read(s.path("data/tls/ca.pem")).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .timeout(timeout)
        .build()
        .unwrap();
    let r = http
        .post(format!("{url}/v1/keys"))
        .bearer_auth(&s.token)
        .json(&json!({"name": key}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    (http, url)
}

/// Every event in the server's store (read beside the server, or after it).
async fn stored_events(s: &Server) -> Vec<arca_core::audit::AuditEvent> {
    let store = arca_store::open(None, &s.path("data/arca.db"))
        .await
        .unwrap();
    let events = arca_service::trail::read_all(store.as_ref()).await.unwrap();
    store.close().await;
    events
}

/// `arca audit verify --data-dir` passes on the server's store.
fn verifies_offline(s: &Server) {
    let out = common::clean_command(&s.profile, s.dir.path())
        .args(["audit", "verify", "--data-dir"])
        .arg(s.path("data"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_is_answered_before_its_audit_event_is_stored() {
    let mut s = Server::start();
    let (http, url) = client_with_key(&s, "durable", Duration::from_secs(10)).await;
    let token = s.token.clone();

    let answered = Arc::new(Mutex::new(BTreeSet::<String>::new()));
    let stop_at = Instant::now() + Duration::from_millis(2500);
    let mut tasks = Vec::new();
    for t in 0..16 {
        let (http, url, token, answered) =
            (http.clone(), url.clone(), token.clone(), answered.clone());
        tasks.push(tokio::spawn(async move {
            let pt = base64::engine::general_purpose::STANDARD.encode([7u8; 1024]);
            let mut n = 0u64;
            // Runs until the server is gone (a request fails to get any answer).
            loop {
                n += 1;
                let id = format!("durability-{t}-{n}");
                // A use, a read, a change and a refusal, in turn.
                let rb = match n % 4 {
                    0 => http
                        .post(format!("{url}/v1/keys/durable/encrypt"))
                        .json(&json!({"plaintext": pt})),
                    1 => http.get(format!("{url}/v1/keys/durable")),
                    2 => http
                        .post(format!("{url}/v1/keys"))
                        .json(&json!({"name": format!("k-{t}-{n}")})),
                    _ => http
                        .post(format!("{url}/v1/decrypt"))
                        .json(&json!({"ciphertext": "AAAA"})),
                };
                match rb
                    .bearer_auth(&token)
                    .header("x-request-id", &id)
                    .send()
                    .await
                {
                    Ok(r) if r.status().as_u16() < 500 => {
                        // The answer's status line is out: it was acknowledged.
                        answered.lock().unwrap().insert(id);
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
                if Instant::now() > stop_at + Duration::from_secs(30) {
                    break;
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    s.child.kill().expect("SIGKILL");
    s.child.wait().unwrap();
    // The trail is the record of requests: at the default level the log (a file, not a
    // terminal) has no line per request and no colour codes.
    let log = std::fs::read_to_string(s.path("serve.log")).unwrap();
    assert!(!log.contains('\u{1b}'), "ANSI codes in a log file");
    assert!(
        !log.contains("durability-"),
        "a request was logged at the default level: {log}"
    );
    for t in tasks {
        t.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();
    assert!(
        answered.len() > 200,
        "the load was too light to tell anything: {} answers",
        answered.len()
    );

    // What the killed process left in its store.
    let store = arca_store::open(None, &s.path("data/arca.db"))
        .await
        .unwrap();
    let events = arca_service::trail::read_all(store.as_ref()).await.unwrap();
    let stored: BTreeSet<String> = events
        .iter()
        .map(|e| e.request_id.clone())
        .filter(|r| r.starts_with("durability-"))
        .collect();
    store.close().await;
    let missing: Vec<&String> = answered.difference(&stored).collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered requests have no audit event, e.g. {:?}",
        missing.len(),
        answered.len(),
        &missing[..missing.len().min(5)]
    );

    // The trail the killed process left still verifies, offline.
    verifies_offline(&s);
}

/// A store that refuses writes (here: another process holds SQLite's write lock, as a
/// stuck backup or a full disk would make it refuse) makes requests fail with 503 within
/// `[audit] write_timeout_secs`, none answered without its event; once the store takes
/// writes again the server serves by itself, and the trail verifies.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_are_refused_while_the_store_refuses_writes() {
    use sqlx::Connection;

    let s = Server::start_with_env(
        tempfile::tempdir().unwrap(),
        &[
            ("ARCA_AUDIT__WRITE_TIMEOUT_SECS", "1"),
            ("ARCA_METRICS__UNAUTHENTICATED", "true"),
        ],
    );
    let (http, url) = client_with_key(&s, "locked", Duration::from_secs(30)).await;
    let token = s.token.clone();
    let pt = base64::engine::general_purpose::STANDARD.encode([7u8; 64]);
    let call = |id: String| {
        let (http, url, token, pt) = (http.clone(), url.clone(), token.clone(), pt.clone());
        async move {
            let r = http
                .post(format!("{url}/v1/keys/locked/encrypt"))
                .bearer_auth(&token)
                .header("x-request-id", &id)
                .json(&json!({"plaintext": pt}))
                .send()
                .await
                .expect("the server answers");
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            (id, status, body)
        }
    };

    // Another process takes the store's write lock and keeps it.
    let mut holder =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", s.path("data/arca.db").display()))
            .await
            .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|i| tokio::spawn(call(format!("locked-{i}"))))
        .collect();
    let mut during = Vec::new();
    for t in tasks {
        during.push(t.await.unwrap());
    }
    let waited = started.elapsed();
    // The writer found the store refusing writes: the node says it is not ready, and
    // refuses at once, queueing nothing.
    let readyz = |http: reqwest::Client, url: String| async move {
        http.get(format!("{url}/readyz"))
            .send()
            .await
            .expect("the server answers")
            .status()
            .as_u16()
    };
    assert_eq!(readyz(http.clone(), url.clone()).await, 503);
    let t = Instant::now();
    let (id, status, body) = call("locked-late".into()).await;
    assert_eq!(status, 503, "{id}: {body}");
    assert!(
        t.elapsed() < Duration::from_millis(900),
        "not refused at once: {:?}",
        t.elapsed()
    );
    // A scraper sees it too, at once, without the store.
    let metrics = http
        .get(format!("{url}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("arca_store_unreachable 1"), "{metrics}");
    let not_stored: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("arca_audit_events_not_stored "))
        .expect("the gauge")
        .parse()
        .unwrap();
    assert!(not_stored >= 1, "{metrics}");
    for (id, status, body) in &during {
        assert_eq!(
            *status, 503,
            "{id} was answered while its event could not be stored: {body}"
        );
        assert_eq!(body["error"]["code"], "unavailable", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("audit trail"),
            "{body}"
        );
    }
    // Refused within the bound (1 s), not after SQLite's own 10 s busy wait times retries.
    assert!(waited < Duration::from_secs(4), "refusals took {waited:?}");
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();

    // The store takes writes again: within a few seconds (the store probe's next trial
    // write) the server is ready and serves, without a restart.
    let t = Instant::now();
    while readyz(http.clone(), url.clone()).await != 200 {
        assert!(t.elapsed() < Duration::from_secs(5), "still not ready");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, status, body) = call("after-1".into()).await;
    assert_eq!(status, 200, "{body}");
    let log = std::fs::read_to_string(s.path("serve.log")).unwrap();
    assert!(
        log.contains("audit records could not be stored"),
        "the refusal is not in the log: {log}"
    );

    // The answered request has its event; the trail verifies.
    let events = stored_events(&s).await;
    assert!(events.iter().any(|e| e.request_id == "after-1"));
    // The trail says the outage ended, and how many events it cost (those of the refused
    // requests, at least the one refused at once).
    let resumed = events
        .iter()
        .find(|e| e.operation == "ResumeAudit")
        .expect("a ResumeAudit event");
    assert!(
        resumed.detail["events_not_stored"].as_u64().unwrap() >= 1,
        "{:?}",
        resumed.detail
    );
    verifies_offline(&s);
}

/// Sends SIGTERM to `arca serve` and waits (up to 20 s) for it to exit; its status, how
/// long it took and its log.
fn terminate(s: &mut Server) -> (std::process::ExitStatus, Duration, String) {
    let sent = Instant::now();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &s.child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let status = loop {
        if let Some(st) = s.child.try_wait().unwrap() {
            break st;
        }
        assert!(
            sent.elapsed() < Duration::from_secs(20),
            "arca serve still runs 20 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = std::fs::read_to_string(s.path("serve.log")).unwrap();
    (status, sent.elapsed(), log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_with_the_store_taking_writes_is_complete() {
    let mut s = Server::start_with_env(tempfile::tempdir().unwrap(), &[]);
    let (http, url) = client_with_key(&s, "k", Duration::from_secs(30)).await;
    let r = http
        .post(format!("{url}/v1/keys/k/encrypt"))
        .bearer_auth(&s.token)
        .json(&json!({"plaintext": "aGVsbG8="}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (status, took, log) = terminate(&mut s);
    eprintln!("stopped in {took:?}");
    assert!(status.success(), "{status:?}\n{log}");
    assert!(!log.contains("shutdown incomplete"), "{log}");
    assert!(log.contains("stopped"), "{log}");
    // The trail ends on the StopServer event, under the closing checkpoint.
    let events = stored_events(&s).await;
    let last_stop = events
        .iter()
        .rposition(|e| e.operation == "StopServer")
        .expect("a StopServer event");
    assert!(
        events[last_stop + 1..]
            .iter()
            .all(|e| e.operation == "SignAuditCheckpoint"),
        "{:?}",
        &events[last_stop..]
    );
    let store = arca_store::open(None, &s.path("data/arca.db"))
        .await
        .unwrap();
    let head = store.audit_head().await.unwrap().unwrap().0;
    let signed = store.last_checkpoint().await.unwrap().unwrap().seq;
    store.close().await;
    assert_eq!(
        signed, head,
        "the closing checkpoint covers the whole trail"
    );
    verifies_offline(&s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_while_the_store_refuses_writes_is_bounded_and_says_what_was_lost() {
    use sqlx::Connection;

    let mut s = Server::start_with_env(
        tempfile::tempdir().unwrap(),
        &[
            ("ARCA_AUDIT__WRITE_TIMEOUT_SECS", "1"),
            ("ARCA_SERVER__SHUTDOWN_GRACE_SECS", "2"),
            ("ARCA_SERVER__SHUTDOWN_FLUSH_SECS", "2"),
        ],
    );
    let _ = client_with_key(&s, "k", Duration::from_secs(30)).await;
    // Another process holds the write lock until after the server has exited.
    let mut holder =
        sqlx::SqliteConnection::connect(&format!("sqlite://{}", s.path("data/arca.db").display()))
            .await
            .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let (status, took, log) = terminate(&mut s);
    eprintln!("stopped in {took:?}");
    assert!(s.path("data/last-shutdown-incomplete.json").exists());
    // Bounds 2 s + 2 s, and at most a second to close the store.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_eq!(status.code(), Some(4), "{log}");
    let line = log
        .lines()
        .find(|l| l.contains("ERROR") && l.contains("shutdown incomplete"))
        .unwrap_or_else(|| panic!("no line says what was not saved:\n{log}"));
    assert!(
        line.contains("audit events were not stored")
            && line.contains("no closing checkpoint was signed"),
        "{line}"
    );
    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    holder.close().await.unwrap();

    // The next start records what the last shutdown did not do; the trail verifies.
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    drop(s);
    let s = Server::start_with_env(dir, &[]);
    let events = stored_events(&s).await;
    let start = events
        .iter()
        .rev()
        .find(|e| e.operation == "StartServer")
        .unwrap();
    let report = &start.detail["last_shutdown_incomplete"];
    assert!(
        report["events_not_stored"].as_u64().unwrap() >= 1,
        "{report}"
    );
    assert_eq!(report["no_closing_checkpoint"], true, "{report}");
    assert!(
        !s.path("data/last-shutdown-incomplete.json").exists(),
        "the report is in the trail now; the file goes"
    );
    verifies_offline(&s);
}
