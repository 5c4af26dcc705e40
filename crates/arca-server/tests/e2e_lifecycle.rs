//! End to end through real HTTPS: every cell of the lifecycle table in DESIGN.md, archive
//! and recover, per-version states, scheduled destruction, and the dates that move keys.

mod common;

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use common::*;
use reqwest::StatusCode;
use serde_json::{json, Value};

const STATES: [&str; 7] = [
    "PRE_ACTIVE",
    "ACTIVE",
    "SUSPENDED",
    "DEACTIVATED",
    "COMPROMISED",
    "DESTROYED",
    "DESTROYED_COMPROMISED",
];

/// An Arca ciphertext made outside Arca from known material: proves the format is what the
/// docs say, and lets us test decryption under keys that could never encrypt (PRE_ACTIVE).
fn offline_ciphertext(key_id: &str, version: u32, material: &[u8], pt: &[u8]) -> String {
    let id = uuid::Uuid::parse_str(key_id).unwrap();
    let mut header = vec![1u8, 1u8];
    header.extend_from_slice(id.as_bytes());
    header.extend_from_slice(&version.to_be_bytes());
    let mut aad = header.clone();
    aad.extend_from_slice(&0u32.to_be_bytes());
    aad.extend_from_slice(&0u32.to_be_bytes());
    let nonce = [9u8; 12];
    let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, material).unwrap());
    let mut buf = pt.to_vec();
    k.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad),
        &mut buf,
    )
    .unwrap();
    let mut out = header;
    out.extend_from_slice(&nonce);
    out.extend_from_slice(&buf);
    b64(&out)
}

const MATERIAL: [u8; 32] = [0x5a; 32];

/// Creates an imported AES key and drives it into `state`. Keys meant for a destroyed
/// state are only scheduled here; [`finish_destroyed`] completes them after time moves.
async fn setup(s: &TestServer, name: &str, state: &str) -> String {
    let pre = state == "PRE_ACTIVE";
    let k = s
        .create(json!({"name": name, "material": b64(&MATERIAL), "pre_active": pre}))
        .await;
    let id = k["id"].as_str().unwrap().to_string();
    let path = format!("/v1/keys/{id}");
    match state {
        "PRE_ACTIVE" | "ACTIVE" => {}
        "SUSPENDED" => {
            s.ok(&format!("{path}/suspend"), json!({"reason": "test"}))
                .await;
        }
        "DEACTIVATED" => {
            s.ok(
                &format!("{path}/deactivate"),
                json!({"reason": "REVOKED", "comment": "test"}),
            )
            .await;
        }
        "COMPROMISED" => {
            s.ok(&format!("{path}/report-compromise"), json!({})).await;
        }
        "DESTROYED" | "DESTROYED_COMPROMISED" => {
            s.ok(&format!("{path}/suspend"), json!({})).await;
            s.ok(
                &format!("{path}/schedule-destruction"),
                json!({"pending_window_days": 1}),
            )
            .await;
        }
        other => panic!("{other}"),
    }
    id
}

async fn finish_destroyed(s: &TestServer, id: &str, state: &str) {
    if state == "DESTROYED_COMPROMISED" {
        s.ok(&format!("/v1/keys/{id}/report-compromise"), json!({}))
            .await;
    }
    let k = s.get(&format!("/v1/keys/{id}")).await.1;
    assert_eq!(k["state"], state, "{k}");
}

async fn state_of(s: &TestServer, id: &str) -> Value {
    s.get(&format!("/v1/keys/{id}")).await.1["state"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cell_of_the_lifecycle_table() {
    let s = TestServer::start().await;
    // Protect/process columns, and one key per (state, move) for the "can move to" column.
    let moves = [
        "activate",
        "suspend",
        "resume",
        "deactivate",
        "report-compromise",
        "schedule-destruction",
    ];
    let mut use_keys = Vec::new();
    let mut move_keys = Vec::new();
    for st in STATES {
        use_keys.push((st, setup(&s, &format!("use-{st}"), st).await));
        for m in moves {
            move_keys.push((st, m, setup(&s, &format!("mv-{st}-{m}"), st).await));
        }
    }
    s.advance(chrono::Duration::hours(25)).await;
    for (st, id) in &use_keys {
        if st.starts_with("DESTROYED") {
            finish_destroyed(&s, id, st).await;
        }
    }
    for (st, _, id) in &move_keys {
        if st.starts_with("DESTROYED") {
            finish_destroyed(&s, id, st).await;
        }
    }

    // Protect and process columns.
    for (st, id) in &use_keys {
        let protect = matches!(*st, "ACTIVE");
        // Suspension is the kill switch: a suspended key processes nothing either.
        let process = matches!(*st, "ACTIVE" | "DEACTIVATED" | "COMPROMISED");
        let e = s.encrypt(id, b"p").await;
        if protect {
            assert_eq!(e.0, StatusCode::OK, "{st} encrypt: {}", e.1);
        } else {
            assert_error(&e, StatusCode::CONFLICT, "wrong_state", None);
            let m = e.1["error"]["message"].as_str().unwrap();
            assert!(m.contains(st) && m.contains("encrypt"), "{m}");
        }
        let ct = offline_ciphertext(id, 1, &MATERIAL, b"secret");
        let d = s.post("/v1/decrypt", json!({"ciphertext": ct})).await;
        if process {
            assert_eq!(d.0, StatusCode::OK, "{st} decrypt: {}", d.1);
            assert_eq!(unb64(&d.1["plaintext"]), b"secret");
            assert_eq!(d.1["key_compromised"], *st == "COMPROMISED", "{st}");
        } else {
            assert_error(&d, StatusCode::CONFLICT, "wrong_state", None);
        }
    }

    // The "can move to" column.
    let expect = |st: &str, m: &str| -> Option<&'static str> {
        match (st, m) {
            ("PRE_ACTIVE", "activate") => Some("ACTIVE"),
            ("ACTIVE", "suspend") => Some("SUSPENDED"),
            ("SUSPENDED", "resume") => Some("ACTIVE"),
            ("ACTIVE" | "SUSPENDED", "deactivate") => Some("DEACTIVATED"),
            ("PRE_ACTIVE" | "ACTIVE" | "SUSPENDED" | "DEACTIVATED", "report-compromise") => {
                Some("COMPROMISED")
            }
            ("DESTROYED", "report-compromise") => Some("DESTROYED_COMPROMISED"),
            ("PRE_ACTIVE" | "SUSPENDED" | "DEACTIVATED", "schedule-destruction") => {
                Some("DESTROYED")
            }
            ("COMPROMISED", "schedule-destruction") => Some("DESTROYED_COMPROMISED"),
            _ => None,
        }
    };
    let mut scheduled = Vec::new();
    for (st, m, id) in &move_keys {
        let body = match *m {
            "deactivate" => json!({"reason": "SUPERSEDED"}),
            "schedule-destruction" => json!({"pending_window_days": 1, "reason": "matrix"}),
            _ => json!({"reason": "matrix"}),
        };
        let r = s.post(&format!("/v1/keys/{id}/{m}"), body).await;
        match expect(st, m) {
            Some(to) if *m == "schedule-destruction" => {
                assert_eq!(r.0, StatusCode::OK, "{st} --{m}--> {}", r.1);
                assert!(r.1["destroy_after"].is_string());
                scheduled.push((id.clone(), to));
            }
            Some(to) => {
                assert_eq!(r.0, StatusCode::OK, "{st} --{m}--> {}", r.1);
                assert_eq!(r.1["state"], to, "{st} --{m}-->");
            }
            None => {
                assert_error(&r, StatusCode::CONFLICT, "wrong_state", None);
                assert_eq!(
                    state_of(&s, id).await,
                    *st,
                    "a refused move changes nothing"
                );
            }
        }
    }
    // Scheduled destructions fall due and are carried out; metadata and history stay.
    s.advance(chrono::Duration::hours(25)).await;
    for (id, to) in scheduled {
        assert_eq!(state_of(&s, &id).await, to);
        let h = s.get(&format!("/v1/keys/{id}/history")).await.1;
        let last = h["events"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["action"], "destroy");
        assert_eq!(last["actor"], "system");
        let v = s.get(&format!("/v1/keys/{id}/versions")).await.1;
        assert!(v[0]["destroyed_at"].is_string());
        let kid = uuid::Uuid::parse_str(&id).unwrap();
        assert_eq!(
            s.service().store().get_material(kid, 1).await.unwrap(),
            None,
            "material erased"
        );
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_cancel_versions_and_dates() {
    let s = TestServer::start().await;
    // Archive: nothing at all until recovered, then back to the state it had.
    let id = setup(&s, "arch", "SUSPENDED").await;
    let ct = offline_ciphertext(&id, 1, &MATERIAL, b"a");
    s.ok(&format!("/v1/keys/{id}/archive"), json!({})).await;
    assert_error(
        &s.post("/v1/decrypt", json!({"ciphertext": ct})).await,
        StatusCode::CONFLICT,
        "wrong_state",
        None,
    );
    assert_error(
        &s.post(&format!("/v1/keys/{id}/resume"), json!({})).await,
        StatusCode::CONFLICT,
        "wrong_state",
        None,
    );
    let r = s.ok(&format!("/v1/keys/{id}/recover"), json!({})).await;
    assert_eq!(r["state"], "SUSPENDED");
    assert_eq!(r["archived"], false);
    // Recovered into its state: suspended, so still no use until it is resumed.
    assert_eq!(
        s.post("/v1/decrypt", json!({"ciphertext": ct})).await.0,
        StatusCode::CONFLICT
    );
    s.ok(&format!("/v1/keys/{id}/resume"), json!({})).await;
    assert_eq!(
        s.post("/v1/decrypt", json!({"ciphertext": ct})).await.0,
        StatusCode::OK
    );
    s.ok(&format!("/v1/keys/{id}/suspend"), json!({})).await;

    // Scheduled destruction blocks resume until cancelled; bounds on the waiting period.
    assert_error(
        &s.post(
            &format!("/v1/keys/{id}/schedule-destruction"),
            json!({"pending_window_days": 0}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("pending_window_days"),
    );
    assert_error(
        &s.post(
            &format!("/v1/keys/{id}/schedule-destruction"),
            json!({"pending_window_days": 366}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("pending_window_days"),
    );
    let r = s
        .ok(&format!("/v1/keys/{id}/schedule-destruction"), json!({}))
        .await;
    let due = chrono::DateTime::parse_from_rfc3339(r["destroy_after"].as_str().unwrap()).unwrap();
    let days = (due.with_timezone(&chrono::Utc) - s.clock_now()).num_days();
    assert!(
        (29..=30).contains(&days),
        "default waiting period is 30 days, got {days}"
    );
    assert_error(
        &s.post(&format!("/v1/keys/{id}/resume"), json!({})).await,
        StatusCode::CONFLICT,
        "wrong_state",
        None,
    );
    assert_error(
        &s.post(&format!("/v1/keys/{id}/schedule-destruction"), json!({}))
            .await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    let r = s
        .ok(&format!("/v1/keys/{id}/cancel-destruction"), json!({}))
        .await;
    assert!(r["destroy_after"].is_null());
    assert_eq!(
        s.ok(&format!("/v1/keys/{id}/resume"), json!({})).await["state"],
        "ACTIVE"
    );
    assert_error(
        &s.post(&format!("/v1/keys/{id}/cancel-destruction"), json!({}))
            .await,
        StatusCode::CONFLICT,
        "wrong_state",
        None,
    );
    // Active keys cannot be scheduled for destruction (the table has no ACTIVE -> DESTROYED).
    assert_error(
        &s.post(&format!("/v1/keys/{id}/schedule-destruction"), json!({}))
            .await,
        StatusCode::CONFLICT,
        "wrong_state",
        None,
    );

    // Per-version state: v1 deactivated still decrypts, archived does not, destroyed is gone.
    s.create(json!({"name": "ver"})).await;
    let c1 = s.encrypt("ver", b"one").await.1["ciphertext"].clone();
    s.ok("/v1/keys/ver/rotate", json!({})).await;
    let c2 = s.encrypt("ver", b"two").await.1["ciphertext"].clone();
    assert_error(
        &s.post("/v1/keys/ver/versions/2/schedule-destruction", json!({}))
            .await,
        StatusCode::CONFLICT,
        "wrong_state",
        None,
    );
    let r = s
        .ok(
            "/v1/keys/ver/versions/1/deactivate",
            json!({"reason": "SUPERSEDED"}),
        )
        .await;
    assert_eq!(r["versions"][0]["state"], "DEACTIVATED");
    assert_eq!(r["state"], "ACTIVE");
    assert_eq!(s.decrypt(&c1).await.0, StatusCode::OK);
    s.ok("/v1/keys/ver/versions/1/archive", json!({})).await;
    assert_error(
        &s.decrypt(&c1).await,
        StatusCode::CONFLICT,
        "wrong_state",
        None,
    );
    s.ok("/v1/keys/ver/versions/1/recover", json!({})).await;
    assert_eq!(s.decrypt(&c1).await.0, StatusCode::OK);
    s.ok(
        "/v1/keys/ver/versions/1/schedule-destruction",
        json!({"pending_window_days": 1}),
    )
    .await;
    s.advance(chrono::Duration::hours(25)).await;
    let d = s.decrypt(&c1).await;
    assert_error(&d, StatusCode::CONFLICT, "wrong_state", None);
    assert!(
        d.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("DESTROYED"),
        "{}",
        d.1
    );
    assert_eq!(s.decrypt(&c2).await.0, StatusCode::OK);
    assert_error(
        &s.post("/v1/keys/ver/versions/9/suspend", json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    assert_error(
        &s.post("/v1/keys/ver/versions/x/suspend", json!({})).await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("version"),
    );

    // Dates: activation, protect-stop, deactivation take effect by themselves.
    let now = s.clock_now();
    let later = |h: i64| (now + chrono::Duration::hours(h)).to_rfc3339();
    let k = s.create(json!({"name": "dated", "activation_date": later(1), "protect_stop_date": later(3), "deactivation_date": later(5)})).await;
    assert_eq!(k["state"], "PRE_ACTIVE");
    assert_error(
        &s.encrypt("dated", b"x").await,
        StatusCode::CONFLICT,
        "wrong_state",
        None,
    );
    s.advance(chrono::Duration::hours(2)).await;
    assert_eq!(state_of(&s, "dated").await, "ACTIVE");
    let c = s.encrypt("dated", b"x").await;
    assert_eq!(c.0, StatusCode::OK, "{}", c.1);
    s.advance(chrono::Duration::hours(2)).await;
    let e = s.encrypt("dated", b"x").await;
    assert_error(&e, StatusCode::CONFLICT, "wrong_state", None);
    assert!(
        e.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("protect-stop"),
        "{}",
        e.1
    );
    assert_eq!(s.decrypt(&c.1["ciphertext"]).await.0, StatusCode::OK);
    s.advance(chrono::Duration::hours(2)).await;
    let k = s.get("/v1/keys/dated").await.1;
    assert_eq!(k["state"], "DEACTIVATED");
    assert_eq!(k["deactivation_reason"], "EXPIRED");
    assert_eq!(s.decrypt(&c.1["ciphertext"]).await.0, StatusCode::OK);
    let h = s.get("/v1/keys/dated/history").await.1;
    let acts: Vec<_> = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["actor"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(acts[1], ("activate".to_string(), "system".to_string()));
    assert_eq!(acts[2], ("deactivate".to_string(), "system".to_string()));

    // A transition records actor, reason and time.
    s.create(json!({"name": "why"})).await;
    s.ok(
        "/v1/keys/why/suspend",
        json!({"reason": "investigating ticket 42"}),
    )
    .await;
    let h = s.get("/v1/keys/why/history").await.1;
    let ev = &h["events"][1];
    assert_eq!(ev["action"], "suspend");
    assert_eq!(ev["from_state"], "ACTIVE");
    assert_eq!(ev["to_state"], "SUSPENDED");
    assert_eq!(ev["reason"], "investigating ticket 42");
    assert!(ev["at"].is_string() && ev["actor"].as_str().unwrap().starts_with("admin:"));
    s.shutdown().await;
}
