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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_is_answered_before_its_audit_event_is_stored() {
    let mut s = Server::start();
    let url = server_url(&s);
    let ca = std::fs::read(s.path("data/tls/ca.pem")).unwrap();
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca).unwrap()])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let token = s.token.clone();
    let r = http
        .post(format!("{url}/v1/keys"))
        .bearer_auth(&token)
        .json(&json!({"name": "durable"}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());

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
