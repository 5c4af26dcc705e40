//! Identity and access end to end, over real HTTPS: every role against every operation,
//! every endpoint against a foreign tenant, key policies with conditions, M-of-N approvals,
//! and rate limits.

mod common;

use common::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The operations of the matrix: name, method, path, body. Paths use the key `k`, which the
/// default tenant's admin creates; state-changing operations come in pairs that undo each
/// other so the order of roles does not matter.
fn operations(ct: &Value) -> Vec<(&'static str, Method, String, Option<Value>)> {
    let p = |s: &str| s.to_string();
    vec![
        ("WhoAmI", Method::GET, p("/v1/whoami"), None),
        (
            "CreateKey",
            Method::POST,
            p("/v1/keys"),
            Some(json!({"name": "NAME"})),
        ),
        ("ListKeys", Method::GET, p("/v1/keys"), None),
        ("DescribeKey", Method::GET, p("/v1/keys/k"), None),
        ("GetKeyHistory", Method::GET, p("/v1/keys/k/history"), None),
        (
            "UpdateKey",
            Method::PATCH,
            p("/v1/keys/k"),
            Some(json!({"description": "x"})),
        ),
        (
            "RotateKey",
            Method::POST,
            p("/v1/keys/k/rotate"),
            Some(json!({})),
        ),
        (
            "SuspendKey",
            Method::POST,
            p("/v1/keys/k/suspend"),
            Some(json!({})),
        ),
        (
            "ScheduleKeyDestruction",
            Method::POST,
            p("/v1/keys/k/schedule-destruction"),
            Some(json!({})),
        ),
        (
            "CancelKeyDestruction",
            Method::POST,
            p("/v1/keys/k/cancel-destruction"),
            Some(json!({})),
        ),
        (
            "ResumeKey",
            Method::POST,
            p("/v1/keys/k/resume"),
            Some(json!({})),
        ),
        ("GetKeyPolicy", Method::GET, p("/v1/keys/k/policy"), None),
        (
            "ListKeyPolicyVersions",
            Method::GET,
            p("/v1/keys/k/policy/versions"),
            None,
        ),
        (
            "PutKeyPolicy",
            Method::PUT,
            p("/v1/keys/k/policy"),
            Some(
                json!({"statements": [{"effect": "allow", "principals": ["role:crypto-user"], "actions": ["*"]}]}),
            ),
        ),
        (
            "Encrypt",
            Method::POST,
            p("/v1/keys/k/encrypt"),
            Some(json!({"plaintext": b64(b"m")})),
        ),
        (
            "Decrypt",
            Method::POST,
            p("/v1/decrypt"),
            Some(json!({"ciphertext": ct})),
        ),
        (
            "GenerateDataKey",
            Method::POST,
            p("/v1/keys/k/generate-data-key"),
            Some(json!({})),
        ),
        (
            "GenerateRandom",
            Method::POST,
            p("/v1/random"),
            Some(json!({"number_of_bytes": 8})),
        ),
        ("ListAliases", Method::GET, p("/v1/aliases"), None),
        ("ListAudit", Method::GET, p("/v1/audit"), None),
        (
            "AuditUsageSeries",
            Method::GET,
            p("/v1/audit/usage/series?key=k"),
            None,
        ),
        // Auditors of the system tenant only: nobody of the matrix (the tenant's auditor is
        // refused for its tenant, the operator for its role).
        ("VerifyAudit", Method::GET, p("/v1/audit/verify"), None),
        ("ListPrincipals", Method::GET, p("/v1/principals"), None),
        (
            "CreatePrincipal",
            Method::POST,
            p("/v1/principals"),
            Some(json!({"name": "NAME", "roles": ["auditor"]})),
        ),
        ("ListApiTokens", Method::GET, p("/v1/tokens"), None),
        (
            "GetTenantSettings",
            Method::GET,
            p("/v1/tenant/settings"),
            None,
        ),
        ("ListApprovals", Method::GET, p("/v1/approvals"), None),
        ("ListTenants", Method::GET, p("/v1/tenants"), None),
        (
            "CreateTenant",
            Method::POST,
            p("/v1/tenants"),
            Some(json!({"name": "NAME"})),
        ),
    ]
}

/// Which roles may do each operation of the matrix (with the default tenant's default key
/// policy, which grants crypto-users the use of new keys).
fn allowed(role: &str, op: &str) -> bool {
    let admin = [
        "CreateKey",
        "ListKeys",
        "DescribeKey",
        "GetKeyHistory",
        "UpdateKey",
        "RotateKey",
        "SuspendKey",
        "ResumeKey",
        "ScheduleKeyDestruction",
        "CancelKeyDestruction",
        "GetKeyPolicy",
        "ListKeyPolicyVersions",
        "PutKeyPolicy",
        "ListAliases",
        "ListPrincipals",
        "CreatePrincipal",
        "ListApiTokens",
        "GetTenantSettings",
        "ListApprovals",
    ];
    let user = [
        "ListKeys",
        "DescribeKey",
        "GetKeyHistory",
        "GetKeyPolicy",
        "ListKeyPolicyVersions",
        "Encrypt",
        "Decrypt",
        "GenerateDataKey",
        "GenerateRandom",
        "ListAliases",
    ];
    let auditor = [
        "ListKeys",
        "DescribeKey",
        "GetKeyHistory",
        "GetKeyPolicy",
        "ListKeyPolicyVersions",
        "ListAliases",
        "ListAudit",
        "AuditUsageSeries",
        "ListApprovals",
    ];
    let approver = ["ListApprovals"];
    let operator = [
        "ListTenants",
        "CreateTenant",
        "ListPrincipals",
        "CreatePrincipal",
        "ListApiTokens",
        "GetTenantSettings",
    ];
    op == "WhoAmI"
        || match role {
            "tenant-admin" => admin.contains(&op),
            "crypto-user" => user.contains(&op),
            "auditor" => auditor.contains(&op),
            "approver" => approver.contains(&op),
            "system-operator" => operator.contains(&op),
            _ => false,
        }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_every_operation() {
    let s = TestServer::start().await;
    s.create(json!({"name": "k"})).await;
    let ct = s.encrypt("k", b"hello").await.1["ciphertext"].clone();
    let mut who = vec![("system-operator", s.operator())];
    for role in ["tenant-admin", "crypto-user", "auditor", "approver"] {
        who.push((role, s.principal(&format!("p-{role}"), &[role], &[]).await));
    }
    let mut n = 0;
    for (role, h) in &who {
        for (op, method, path, body) in operations(&ct) {
            let body = body.map(|b| {
                serde_json::from_str(
                    &b.to_string()
                        .replace("NAME", &format!("{op}-{role}").to_lowercase()),
                )
                .unwrap()
            });
            let (status, v) = h.req(method.clone(), &path, body).await;
            n += 1;
            if allowed(role, op) {
                assert!(
                    status.is_success(),
                    "{role} {op}: expected success, got {status} {v}"
                );
            } else if *role == "system-operator"
                && (path.starts_with("/v1/keys/") || path == "/v1/decrypt")
            {
                // The operator lives in the system tenant: a tenant's key is not even visible.
                assert_error(&(status, v), StatusCode::NOT_FOUND, "not_found", None);
            } else {
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role} {op}: expected 403, got {v}"
                );
                assert_eq!(v["error"]["code"], "not_permitted", "{role} {op}: {v}");
            }
        }
    }
    assert!(n > 120, "{n} checks");
    // Every refusal is in the audit trail, with who was refused.
    s.service().flush_audit().await;
    let (_, audit) = s.get("/v1/audit?limit=1000").await;
    let refused = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["outcome"] == "not_permitted"
                && r["principal"].as_str().unwrap().starts_with("p-auditor")
        })
        .count();
    assert!(refused >= 10, "{refused} refusals of the auditor recorded");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_tenant_sees_nothing_of_ours() {
    let s = TestServer::start().await;
    // Our tenant: a key with an alias, a principal with a token and a binding, an approval.
    let k = s.create(json!({"name": "ours"})).await;
    let kid = k["id"].as_str().unwrap().to_string();
    s.ok("/v1/aliases", json!({"alias": "ours-alias", "key": "ours"}))
        .await;
    let ct = s.encrypt("ours", b"x").await.1["ciphertext"].clone();
    let p = s
        .ok(
            "/v1/principals",
            json!({"name": "svc", "roles": ["crypto-user"]}),
        )
        .await;
    let pid = p["id"].as_str().unwrap().to_string();
    let tok = s.ok("/v1/principals/svc/tokens", json!({})).await;
    let tok_id = tok["id"].as_str().unwrap().to_string();
    let b = s
        .ok(
            "/v1/principals/svc/bindings",
            json!({"kind": "certificate-san", "value": "svc.example"}),
        )
        .await;
    let bid = b["id"].as_str().unwrap().to_string();
    let (st, _) = s
        .req(
            Method::PUT,
            "/v1/tenant/settings",
            Some(json!({"allow_multiple_roles": true, "approval_rules": [{"actions": ["ScheduleKeyDestruction"], "approvals": 1}],
                "default_key_policy": [{"effect": "allow", "principals": ["role:crypto-user"], "actions": ["*"]}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    s.ok("/v1/keys/ours/suspend", json!({})).await;
    let (st, v) = s
        .post("/v1/keys/ours/schedule-destruction", json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let aid = v["error"]["approval_request_id"]
        .as_str()
        .unwrap()
        .to_string();

    // Another tenant, created by the operator, with every role a tenant can have.
    let (st, acme) = s
        .operator()
        .post(
            "/v1/tenants",
            json!({"name": "acme", "settings": {"allow_multiple_roles": true}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{acme}");
    let acme_admin = s.with_token(acme["admin_token"].as_str().unwrap());
    let acme_all = acme_admin
        .principal(
            "everyone",
            &["tenant-admin", "crypto-user", "auditor", "approver"],
            &[],
        )
        .await;

    let enc = |p: &str| {
        p.replace('/', "%2F")
            .replace(':', "%3A")
            .replace('|', "%7C")
    };
    let mut checks = 0;
    for h in [&acme_admin, &acme_all] {
        let key_paths = [kid.as_str(), "ours", "ours-alias"];
        for key in key_paths {
            for (m, path, body) in [
                (Method::GET, format!("/v1/keys/{key}"), None),
                (Method::GET, format!("/v1/keys/{key}/versions"), None),
                (Method::GET, format!("/v1/keys/{key}/history"), None),
                (Method::GET, format!("/v1/keys/{key}/policy"), None),
                (Method::GET, format!("/v1/keys/{key}/policy/versions"), None),
                (Method::GET, format!("/v1/keys/{key}/public-key"), None),
                (
                    Method::PATCH,
                    format!("/v1/keys/{key}"),
                    Some(json!({"description": "x"})),
                ),
                (
                    Method::PUT,
                    format!("/v1/keys/{key}/policy"),
                    Some(json!({"statements": []})),
                ),
                (
                    Method::POST,
                    format!("/v1/keys/{key}/policy/rollback"),
                    Some(json!({"version": 1})),
                ),
                (
                    Method::POST,
                    format!("/v1/keys/{key}/encrypt"),
                    Some(json!({"plaintext": b64(b"x")})),
                ),
                (
                    Method::POST,
                    format!("/v1/keys/{key}/decrypt"),
                    Some(json!({"ciphertext": ct})),
                ),
                (
                    Method::POST,
                    format!("/v1/keys/{key}/generate-data-key"),
                    Some(json!({})),
                ),
                (
                    Method::POST,
                    format!("/v1/keys/{key}/rotate"),
                    Some(json!({})),
                ),
                (
                    Method::POST,
                    format!("/v1/keys/{key}/suspend"),
                    Some(json!({})),
                ),
                (
                    Method::POST,
                    format!("/v1/keys/{key}/schedule-destruction"),
                    Some(json!({})),
                ),
                (
                    Method::POST,
                    format!("/v1/keys/{key}/versions/1/suspend"),
                    Some(json!({})),
                ),
                (
                    Method::POST,
                    format!("/v1/keys/{key}/export"),
                    Some(json!({})),
                ),
                (Method::GET, format!("/v1/aliases?key={key}"), None),
            ] {
                let got = h.req(m, &path, body).await;
                assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
                checks += 1;
            }
        }
        for (m, path, body) in [
            (
                Method::POST,
                "/v1/decrypt".to_string(),
                Some(json!({"ciphertext": ct})),
            ),
            (
                Method::PUT,
                "/v1/aliases/ours-alias".into(),
                Some(json!({"key": "ours"})),
            ),
            (Method::DELETE, "/v1/aliases/ours-alias".into(), None),
            (Method::GET, format!("/v1/principals/{pid}"), None),
            (Method::GET, "/v1/principals/svc".into(), None),
            (
                Method::PATCH,
                "/v1/principals/svc".into(),
                Some(json!({"groups": ["x"]})),
            ),
            (
                Method::POST,
                "/v1/principals/svc/tokens".into(),
                Some(json!({})),
            ),
            (Method::GET, "/v1/principals/svc/tokens".into(), None),
            (
                Method::POST,
                "/v1/principals/svc/bindings".into(),
                Some(json!({"kind": "certificate-san", "value": "y"})),
            ),
            (Method::DELETE, format!("/v1/tokens/{tok_id}"), None),
            (Method::DELETE, format!("/v1/bindings/{}", enc(&bid)), None),
            (Method::GET, format!("/v1/approvals/{aid}"), None),
            (
                Method::POST,
                format!("/v1/approvals/{aid}/approve"),
                Some(json!({})),
            ),
            (
                Method::POST,
                format!("/v1/approvals/{aid}/deny"),
                Some(json!({})),
            ),
            (
                Method::POST,
                format!("/v1/approvals/{aid}/execute"),
                Some(json!({})),
            ),
            (
                Method::POST,
                format!("/v1/approvals/{aid}/cancel"),
                Some(json!({})),
            ),
        ] {
            let got = h.req(m.clone(), &path, body).await;
            assert_error(&got, StatusCode::NOT_FOUND, "not_found", None);
            checks += 1;
        }
        // Listings and searches show none of ours.
        for (path, field) in [
            ("/v1/keys", "keys"),
            ("/v1/keys?name=ours", "keys"),
            ("/v1/keys?alias=ours-alias", "keys"),
            ("/v1/aliases", "aliases"),
            ("/v1/approvals", "approvals"),
            ("/v1/bindings", "bindings"),
            ("/v1/tokens", "tokens"),
            ("/v1/audit?limit=1000", "events"),
        ] {
            let (st, v) = h.get(path).await;
            if st == StatusCode::FORBIDDEN
                && path.starts_with("/v1/audit")
                && h.token == acme_admin.token
            {
                continue; // a tenant-admin is not an auditor; `everyone` checks the audit.
            }
            assert_eq!(st, StatusCode::OK, "{path}: {v}");
            if field == "events" {
                // Our refusals echo what the intruder sent; what matters is whose records.
                for r in v[field].as_array().unwrap() {
                    assert_eq!(r["tenant_id"], acme["tenant"]["id"], "{r}");
                    assert_ne!(r["key_id"].as_str(), Some(kid.as_str()), "{r}");
                }
                checks += 1;
                continue;
            }
            let text = v[field].to_string();
            for ours in [&kid, "ours", &pid, &tok_id, &aid, "svc.example"] {
                assert!(!text.contains(ours), "{path} shows {ours}");
            }
            checks += 1;
        }
        let (_, v) = h.get("/v1/principals").await;
        let text = v["principals"].to_string();
        assert!(!text.contains(&pid) && !text.contains("svc"), "{text}");
    }
    assert!(checks > 100, "{checks}");
    // Nothing of ours changed.
    let (_, k2) = s.get("/v1/keys/ours").await;
    assert_eq!(k2["state"], "SUSPENDED");
    assert!(k2["destroy_after"].is_null());
    assert_eq!(k2["description"], k["description"]);
    let (_, a) = s.get(&format!("/v1/approvals/{aid}")).await;
    assert_eq!(a["status"], "pending");
    assert!(a["votes"].as_array().unwrap().is_empty());
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_policies_conditions_deny_wins_versions_and_rollback() {
    let s = TestServer::start().await;
    // A strict tenant: nobody uses a key until its policy says so.
    let (_, t) = s
        .operator()
        .post("/v1/tenants", json!({"name": "strict"}))
        .await;
    let admin = s.with_token(t["admin_token"].as_str().unwrap());
    let app = admin
        .principal("app", &["crypto-user"], &["payments"])
        .await;
    let k = admin.create(json!({"name": "k"})).await;
    assert_eq!(k["state"], "ACTIVE");
    let (_, p) = admin.get("/v1/keys/k/policy").await;
    assert_eq!(p["version"], 1);
    assert_eq!(p["statements"], json!([]));
    // Default: the admin manages but does not use; the app neither sees nor uses.
    assert_error(
        &admin.encrypt("k", b"x").await,
        StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    assert_error(
        &app.encrypt("k", b"x").await,
        StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    assert_error(
        &app.get("/v1/keys/k").await,
        StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    let (_, list) = app.get("/v1/keys").await;
    assert_eq!(
        list["keys"],
        json!([]),
        "a crypto-user lists only what it may describe"
    );

    let put = |statements: Value| {
        let admin = &admin;
        async move {
            admin
                .req(
                    Method::PUT,
                    "/v1/keys/k/policy",
                    Some(json!({ "statements": statements })),
                )
                .await
        }
    };
    // A grant to the group, limited to a CIDR the test client is not in.
    let (st, v) = put(json!([{"sid": "net", "effect": "allow", "principals": ["group:payments"], "actions": ["Encrypt", "Decrypt", "DescribeKey"],
        "conditions": {"source_cidrs": ["10.0.0.0/8"]}}]))
    .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["version"], 2);
    assert_error(
        &app.encrypt("k", b"x").await,
        StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    // The same grant from loopback works.
    put(json!([{"effect": "allow", "principals": ["group:payments"], "actions": ["Encrypt", "Decrypt", "DescribeKey"],
        "conditions": {"source_cidrs": ["127.0.0.0/8", "::1/128"], "doors": ["rest"]}}]))
    .await;
    let (st, v) = app.encrypt("k", b"x").await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let ct = v["ciphertext"].clone();
    let (_, list) = app.get("/v1/keys").await;
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);
    // Deny beats allow, whoever grants.
    put(json!([
        {"effect": "allow", "principals": ["*"], "actions": ["*"]},
        {"sid": "no-decrypt", "effect": "deny", "principals": ["principal:app"], "actions": ["Decrypt"]}
    ]))
    .await;
    let (st, _) = app.encrypt("k", b"x").await;
    assert_eq!(st, StatusCode::OK);
    let got = app.decrypt(&ct).await;
    assert_error(&got, StatusCode::FORBIDDEN, "not_permitted", None);
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("no-decrypt"),
        "{}",
        got.1
    );
    // An encryption-context condition.
    put(
        json!([{"effect": "allow", "principals": ["principal:app"], "actions": ["Encrypt"],
        "conditions": {"encryption_context": {"tenant": "blue"}}}]),
    )
    .await;
    assert_error(
        &app.encrypt("k", b"x").await,
        StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    let (st, v) = app
        .post(
            "/v1/keys/k/encrypt",
            json!({"plaintext": b64(b"x"), "encryption_context": {"tenant": "blue"}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // Invalid policies are refused with the field, and change nothing.
    let (st, v) =
        put(json!([{"effect": "allow", "principals": ["role:wizard"], "actions": ["Encrypt"]}]))
            .await;
    assert_error(
        &(st, v),
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("statements[0].principals"),
    );
    let (st, v) = put(json!([{"effect": "allow", "principals": ["*"], "actions": ["Encrypt"], "conditions": {"source_cidrs": ["10.0.0.0/99"]}}])).await;
    assert_error(
        &(st, v),
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("statements[0].conditions.source_cidrs"),
    );
    // A policy that would lock its author out is refused.
    let (st, v) =
        put(json!([{"effect": "deny", "principals": ["role:tenant-admin"], "actions": ["*"]}]))
            .await;
    assert_error(
        &(st, v),
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("statements"),
    );
    // Versions with who and when; rollback makes an old version current as a new one.
    let (_, vs) = admin.get("/v1/keys/k/policy/versions").await;
    let vs = vs["versions"].as_array().unwrap().clone();
    assert_eq!(vs.len(), 5, "{vs:?}");
    assert_eq!(vs[0]["version"], 5);
    assert!(vs[0]["updated_by"].as_str().unwrap().starts_with("admin:"));
    assert!(vs[0]["updated_at"].is_string());
    let (st, v) = admin
        .post("/v1/keys/k/policy/rollback", json!({"version": 3}))
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(v["version"], 6);
    let (st, _) = app.encrypt("k", b"x").await;
    assert_eq!(
        st,
        StatusCode::OK,
        "version 3 granted loopback encrypt again"
    );
    // An edit based on a stale read is refused rather than overwriting a newer policy.
    let (st, v) = admin
        .req(
            Method::PUT,
            "/v1/keys/k/policy",
            Some(json!({"statements": [], "expected_version": 5})),
        )
        .await;
    assert_error(&(st, v), StatusCode::CONFLICT, "conflict", None);
    let (_, h) = admin.get("/v1/keys/k/history").await;
    let policy_events = h["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "policy")
        .count();
    assert_eq!(policy_events, 5, "{h}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_approvals() {
    let s = TestServer::start().await;
    for name in ["k1", "k2", "k3"] {
        s.create(json!({"name": name, "extractable": true})).await;
    }
    // Only a key out of use can be scheduled for destruction.
    s.ok("/v1/keys/k1/suspend", json!({})).await;
    s.ok("/v1/keys/k2/suspend", json!({})).await;
    let (st, v) = s
        .req(
            Method::PUT,
            "/v1/tenant/settings",
            Some(json!({
                "allow_multiple_roles": true,
                "default_key_policy": [{"effect": "allow", "principals": ["role:crypto-user"], "actions": ["*"]}],
                "approval_rules": [
                    {"actions": ["ScheduleKeyDestruction"], "approvals": 2},
                    {"actions": ["ExportKey"], "approvals": 1, "group": "security"}
                ]
            })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // The requester is also an approver: it still can never approve its own request.
    let req = s
        .principal("requester", &["tenant-admin", "approver"], &[])
        .await;
    let alice = s.principal("alice", &["approver"], &["security"]).await;
    let bob = s.principal("bob", &["approver"], &[]).await;
    let carol = s.principal("carol", &["crypto-user"], &[]).await;

    let (st, v) = req
        .post(
            "/v1/keys/k1/schedule-destruction",
            json!({"pending_window_days": 7}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    assert_eq!(v["error"]["code"], "needs_approval");
    let id = v["error"]["approval_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, k) = s.get("/v1/keys/k1").await;
    assert!(
        k["destroy_after"].is_null(),
        "nothing happens before approval: {k}"
    );
    // A request that could not apply now is refused at once, not sent to approvers.
    assert_error(
        &req.post("/v1/keys/k3/schedule-destruction", json!({}))
            .await,
        StatusCode::CONFLICT,
        "wrong_state",
        None,
    );

    let vote = |h: &TestServer, what: &str, id: &str| {
        let path = format!("/v1/approvals/{id}/{what}");
        let h = h.with_token(&h.token);
        async move {
            h.post(&path, json!({"comment": "checked the ticket"}))
                .await
        }
    };
    assert_error(
        &vote(&req, "approve", &id).await,
        StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    assert_error(
        &vote(&carol, "approve", &id).await,
        StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    let (st, a) = vote(&alice, "approve", &id).await;
    assert_eq!(st, StatusCode::OK, "{a}");
    assert_eq!(a["status"], "pending", "M-1 approvals are not enough");
    assert_error(
        &vote(&alice, "approve", &id).await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    let (st, v) = req
        .post(&format!("/v1/approvals/{id}/execute"), json!({}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "still waiting: {v}");
    let (_, k) = s.get("/v1/keys/k1").await;
    assert!(k["destroy_after"].is_null());
    let (st, a) = vote(&bob, "approve", &id).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(a["status"], "approved");
    assert_eq!(a["votes"].as_array().unwrap().len(), 2);
    // Only the requester executes, exactly once.
    assert_error(
        &alice
            .post(&format!("/v1/approvals/{id}/execute"), json!({}))
            .await,
        StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    let (st, done) = req
        .post(&format!("/v1/approvals/{id}/execute"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["approval"]["status"], "executed");
    assert!(done["result"]["destroy_after"].is_string(), "{done}");
    let (_, k) = s.get("/v1/keys/k1").await;
    assert!(k["destroy_after"].is_string(), "scheduled: {k}");
    assert_error(
        &req.post(&format!("/v1/approvals/{id}/execute"), json!({}))
            .await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    assert_error(
        &vote(&bob, "approve", &id).await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );

    // Expiry: an open request lapses after 24 hours.
    let (_, v) = req
        .post("/v1/keys/k2/schedule-destruction", json!({}))
        .await;
    let id2 = v["error"]["approval_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    vote(&alice, "approve", &id2).await;
    s.clock.advance(chrono::Duration::hours(25));
    assert_error(
        &vote(&bob, "approve", &id2).await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    assert_error(
        &req.post(&format!("/v1/approvals/{id2}/execute"), json!({}))
            .await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    let (_, l) = s.get("/v1/approvals?status=expired").await;
    assert!(l["approvals"].to_string().contains(&id2), "{l}");
    let (_, k) = s.get("/v1/keys/k2").await;
    assert!(k["destroy_after"].is_null());

    // One deny refuses; a group rule counts only its group.
    let (_, v) = carol.post("/v1/keys/k3/export", json!({})).await;
    assert_eq!(v["error"]["code"], "needs_approval", "{v}");
    let id3 = v["error"]["approval_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_error(
        &vote(&bob, "approve", &id3).await,
        StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    let (_, d) = vote(&alice, "deny", &id3).await;
    assert_eq!(d["status"], "denied");
    assert_error(
        &carol
            .post(&format!("/v1/approvals/{id3}/execute"), json!({}))
            .await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );

    // Every step is in the audit trail.
    s.service().flush_audit().await;
    let (_, audit) = s.get("/v1/audit?limit=1000").await;
    let recs = audit["events"].as_array().unwrap();
    for action in [
        "Approve",
        "Deny",
        "ExecuteApproval",
        "ScheduleKeyDestruction",
    ] {
        assert!(
            recs.iter().any(|r| r["operation"] == action),
            "no {action} record"
        );
    }
    assert!(recs
        .iter()
        .any(|r| r["operation"] == "ScheduleKeyDestruction" && r["outcome"] == "needs_approval"));
    assert!(recs
        .iter()
        .any(|r| r["operation"] == "ScheduleKeyDestruction"
            && r["outcome"] == "ok"
            && r["detail"]["approval_id"] == id.as_str()));

    // When the approved destruction falls due, its signed receipt names the requester and
    // both approvers.
    s.advance(chrono::Duration::days(31)).await;
    let (st, r) = s.get("/v1/keys/k1/receipts").await;
    assert_eq!(st, StatusCode::OK, "{r}");
    let receipts: Vec<arca_core::audit::DestructionReceipt> =
        serde_json::from_value(r.clone()).unwrap();
    assert_eq!(receipts.len(), 1, "{r}");
    let rc = &receipts[0];
    assert_eq!(
        rc.approval_id.map(|a| a.to_string()).as_deref(),
        Some(id.as_str())
    );
    assert!(rc.requested_by.starts_with("requester:"), "{r}");
    let mut approvers = rc.approved_by.clone();
    approvers.sort();
    assert!(
        approvers.len() == 2
            && approvers[0].starts_with("alice:")
            && approvers[1].starts_with("bob:"),
        "{r}"
    );
    let pem = s
        .client
        .get(format!("{}/v1/audit/public-key", s.url))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let pk = arca_service::trail::parse_public_key(pem.as_bytes()).unwrap();
    arca_service::trail::verify_receipt(&pk, rc).unwrap();
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_answer_429_then_recover() {
    let s = TestServer::start_with(|c| {
        c.service.limits.per_principal_rps = 1.0;
        c.service.limits.per_principal_burst = 3.0;
        c.service.limits.auth_failures_free = 2;
    })
    .await;
    for _ in 0..3 {
        assert_eq!(s.get("/v1/whoami").await.0, StatusCode::OK);
    }
    let r = s
        .client
        .get(format!("{}/v1/whoami", s.url))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limited");
    s.clock.advance(chrono::Duration::seconds(retry));
    assert_eq!(
        s.get("/v1/whoami").await.0,
        StatusCode::OK,
        "recovered after Retry-After"
    );

    // Failed authentication: a growing back-off for the address, whatever token comes next.
    let bad = s.with_token("arca_nope_0123456789012345678901234567890123456789012");
    for _ in 0..2 {
        assert_eq!(bad.get("/v1/whoami").await.0, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(
        bad.get("/v1/whoami").await.0,
        StatusCode::UNAUTHORIZED,
        "third failure is counted"
    );
    let (st, v) = s.get("/v1/whoami").await;
    assert_eq!(
        st,
        StatusCode::TOO_MANY_REQUESTS,
        "the address is backing off: {v}"
    );
    s.clock.advance(chrono::Duration::seconds(2));
    assert_eq!(s.get("/v1/whoami").await.0, StatusCode::OK);
    s.service().flush_audit().await;
    let (_, audit) = s.get("/v1/audit?limit=100").await;
    assert!(audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["outcome"] == "rate_limited"));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_lifecycle_and_role_rules() {
    let s = TestServer::start().await;
    let op = s.operator();
    // The operator's first tenant-admin credential is short-lived...
    let (st, g) = op.post("/v1/tenants", json!({"name": "gamma"})).await;
    assert_eq!(st, StatusCode::CREATED, "{g}");
    assert!(g["admin_token_expires_at"].is_string());
    let gamma = s.with_token(g["admin_token"].as_str().unwrap());
    assert_eq!(gamma.get("/v1/whoami").await.0, StatusCode::OK);
    // ...and a token its holder issues itself cannot outlive it (whoever held the first
    // token, the operator included, would otherwise keep a lasting credential)...
    let own = gamma
        .ok("/v1/principals/admin/tokens", json!({"name": "mine"}))
        .await;
    let at = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
            .unwrap()
            .timestamp()
    };
    assert_eq!(
        at(&own["expires_at"]),
        at(&g["admin_token_expires_at"]),
        "{own}"
    );
    let (st, v) = gamma
        .post(
            "/v1/principals/admin/tokens",
            json!({"name": "long", "expires_in_secs": 86400 * 30}),
        )
        .await;
    assert_eq!(st, StatusCode::BAD_REQUEST, "{v}");
    // ...so the tenant's admin makes its lasting administration through identity
    // administration (which an approval rule can put under a quorum).
    gamma
        .ok(
            "/v1/principals",
            json!({"name": "gamma-admin", "roles": ["tenant-admin"]}),
        )
        .await;
    let lasting = gamma
        .ok(
            "/v1/principals/gamma-admin/tokens",
            json!({"name": "lasting"}),
        )
        .await;
    let gamma = s.with_token(lasting["token"].as_str().unwrap());
    s.clock.advance(chrono::Duration::hours(25));
    for t in [&g["admin_token"], &own["token"]] {
        assert_eq!(
            s.with_token(t.as_str().unwrap()).get("/v1/whoami").await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(gamma.get("/v1/whoami").await.0, StatusCode::OK);
    // Or the operator never holds a credential: the admin signs in with a certificate,
    // issued by a CA the new tenant is given (without one, no certificate could be its).
    assert_error(
        &op.post(
            "/v1/tenants",
            json!({"name": "beta", "admin_binding": {"kind": "certificate-san", "value": "admin.beta.example"}}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    let beta_ca = {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.distinguished_name
            .push(rcgen::DnType::CommonName, "Beta clients CA");
        p.self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap()
            .pem()
    };
    let (st, b) = op
        .post(
            "/v1/tenants",
            json!({"name": "beta", "trust": [{"ca_pem": beta_ca}],
                "admin_binding": {"kind": "certificate-san", "value": "admin.beta.example"}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{b}");
    assert!(b.get("admin_token").is_none(), "{b}");
    assert_eq!(b["admin_binding"]["value"], "admin.beta.example");
    assert_error(
        &op.post("/v1/tenants", json!({"name": "beta"})).await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    assert_error(
        &op.post("/v1/tenants", json!({"name": "x/../y"})).await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("name"),
    );
    let (_, l) = op.get("/v1/tenants").await;
    let names: Vec<String> = l["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    for n in ["system", "default", "gamma", "beta"] {
        assert!(names.contains(&n.to_string()), "{names:?}");
    }
    // Disable: the tenant's principals stop at once; enable brings them back.
    let (st, t) = op.post("/v1/tenants/gamma/disable", json!({})).await;
    assert_eq!(st, StatusCode::OK, "{t}");
    assert_eq!(t["disabled"], true);
    assert_error(
        &gamma.get("/v1/whoami").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
        None,
    );
    op.ok("/v1/tenants/gamma/enable", json!({})).await;
    assert_eq!(gamma.get("/v1/whoami").await.0, StatusCode::OK);
    // Delete: only a disabled tenant without live keys.
    gamma.create(json!({"name": "gk"})).await;
    let del = |name: &'static str| {
        let op = &op;
        async move {
            op.req(Method::DELETE, &format!("/v1/tenants/{name}"), None)
                .await
        }
    };
    assert_error(&del("gamma").await, StatusCode::CONFLICT, "conflict", None);
    op.ok("/v1/tenants/gamma/disable", json!({})).await;
    assert_error(&del("gamma").await, StatusCode::CONFLICT, "conflict", None);
    let (st, _) = del("beta").await;
    assert_eq!(st, StatusCode::CONFLICT, "beta is enabled");
    op.ok("/v1/tenants/beta/disable", json!({})).await;
    let (st, d) = del("beta").await;
    assert_eq!(st, StatusCode::OK, "{d}");
    assert_eq!(d["deleted"], true);
    assert_error(
        &op.get("/v1/tenants/beta").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    assert_error(
        &op.post("/v1/tenants", json!({"name": "beta"})).await,
        StatusCode::CONFLICT,
        "conflict",
        None,
    );
    assert_error(
        &op.post("/v1/tenants/system/disable", json!({})).await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        None,
    );
    // Role rules: one role per principal unless the tenant allows more; operators only in
    // the system tenant; the system tenant holds no key roles.
    let (_, st) = op.post("/v1/tenants", json!({"name": "strict"})).await;
    let strict = s.with_token(st["admin_token"].as_str().unwrap());
    for (roles, why) in [
        (
            json!(["tenant-admin", "crypto-user"]),
            "two roles in a strict tenant",
        ),
        (
            json!(["system-operator"]),
            "an operator outside the system tenant",
        ),
        (json!([]), "no role"),
        (json!(["wizard"]), "an unknown role"),
    ] {
        let got = strict
            .post("/v1/principals", json!({"name": "p", "roles": roles}))
            .await;
        assert_eq!(got.0, StatusCode::BAD_REQUEST, "{why}: {}", got.1);
        assert!(
            got.1["error"]["field"]
                .as_str()
                .unwrap()
                .starts_with("roles"),
            "{why}: {}",
            got.1
        );
    }
    let got = op
        .post(
            "/v1/principals",
            json!({"name": "p", "roles": ["crypto-user"]}),
        )
        .await;
    assert_error(
        &got,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("roles"),
    );
    let (st, v) = op
        .post(
            "/v1/principals",
            json!({"name": "op2", "roles": ["system-operator"]}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{v}");
    // Tenant deletion under dual control, in the system tenant.
    let (st, v) = op
        .req(
            Method::PUT,
            "/v1/tenant/settings",
            Some(json!({"approval_rules": [{"actions": ["DeleteTenant"], "approvals": 1}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let sys_approver = op.principal("sec-officer", &["approver"], &[]).await;
    op.ok("/v1/tenants", json!({"name": "zeta"})).await;
    op.ok("/v1/tenants/zeta/disable", json!({})).await;
    let (st, v) = op.req(Method::DELETE, "/v1/tenants/zeta", None).await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let id = v["error"]["approval_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        op.get("/v1/tenants/zeta").await.0,
        StatusCode::OK,
        "still there"
    );
    sys_approver
        .ok(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await;
    let done = op
        .ok(&format!("/v1/approvals/{id}/execute"), json!({}))
        .await;
    assert_eq!(done["result"]["deleted"], true, "{done}");
    assert_eq!(op.get("/v1/tenants/zeta").await.0, StatusCode::NOT_FOUND);
    // Which tenant a CA's certificates land in, under dual control too: the assignment
    // waits for approval, and creating a tenant with `trust` cannot go round the rule.
    let (st, v) = op
        .req(
            Method::PUT,
            "/v1/tenant/settings",
            Some(json!({"approval_rules": [{"actions": ["AssignTrustAnchor", "WithdrawTrustAnchor"], "approvals": 1}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let eta_ca = {
        let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        p.self_signed(&rcgen::KeyPair::generate().unwrap())
            .unwrap()
            .pem()
    };
    assert_error(
        &op.post(
            "/v1/tenants",
            json!({"name": "eta", "trust": [{"ca_pem": eta_ca}]}),
        )
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_input",
        Some("trust"),
    );
    op.ok("/v1/tenants", json!({"name": "eta"})).await;
    let (st, v) = op
        .post("/v1/tenants/eta/trust", json!({"ca_pem": eta_ca}))
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let id = v["error"]["approval_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        op.get("/v1/tenants/eta/trust").await.1["anchors"],
        json!([])
    );
    sys_approver
        .ok(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await;
    let done = op
        .ok(&format!("/v1/approvals/{id}/execute"), json!({}))
        .await;
    assert!(
        done["result"]["id"].as_str().unwrap().starts_with("ca:"),
        "{done}"
    );
    assert_eq!(
        op.get("/v1/tenants/eta/trust").await.1["anchors"][0]["id"],
        done["result"]["id"]
    );
    // The operator can do nothing with a tenant's keys, even by its id.
    let k = s.create(json!({"name": "secret"})).await;
    let kid = k["id"].as_str().unwrap();
    assert_error(
        &op.encrypt(kid, b"x").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    assert_error(
        &op.get("/v1/keys").await,
        StatusCode::FORBIDDEN,
        "not_permitted",
        None,
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_changes_can_require_approval() {
    let s = TestServer::start().await;
    let alice = s.principal("alice", &["approver"], &[]).await;
    let (st, v) = s
        .req(
            Method::PUT,
            "/v1/tenant/settings",
            Some(json!({
                "allow_multiple_roles": true,
                "approval_rules": [{"actions": ["CreatePrincipal", "UpdatePrincipal", "CreateApiToken", "CreateBinding", "UpdateTenantSettings"], "approvals": 1}]
            })),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    // The admin cannot quietly make a puppet approver...
    let (st, v) = s
        .post(
            "/v1/principals",
            json!({"name": "puppet", "roles": ["approver"]}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let id = v["error"]["approval_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_error(
        &s.get("/v1/principals/puppet").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    // ...nor mint a token for an existing approver, nor bind a certificate to one.
    let (st, _) = s.post("/v1/principals/alice/tokens", json!({})).await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _) = s
        .post(
            "/v1/principals/alice/bindings",
            json!({"kind": "certificate-san", "value": "a.example"}),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (st, _) = s
        .req(
            Method::PATCH,
            "/v1/principals/alice",
            Some(json!({"groups": ["x"]})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    // A principal still makes its own tokens.
    let (st, own) = alice.post("/v1/principals/alice/tokens", json!({})).await;
    assert_eq!(st, StatusCode::CREATED, "{own}");
    // With approval, the change happens once.
    let (st, a) = alice
        .post(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{a}");
    let (st, done) = s
        .post(&format!("/v1/approvals/{id}/execute"), json!({}))
        .await;
    assert_eq!(st, StatusCode::OK, "{done}");
    assert_eq!(done["result"]["name"], "puppet");
    assert_eq!(s.get("/v1/principals/puppet").await.0, StatusCode::OK);
    // Loosening the rules is itself under the rules.
    let (st, _) = s
        .req(
            Method::PUT,
            "/v1/tenant/settings",
            Some(json!({"allow_multiple_roles": true})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED);
    let (_, settings) = s.get("/v1/tenant/settings").await;
    assert_eq!(settings["approval_rules"].as_array().unwrap().len(), 1);
    s.shutdown().await;
}

/// One row of a matrix: name, method, path, body, the roles that may do it.
type Op = (
    &'static str,
    Method,
    String,
    Option<Value>,
    &'static [&'static str],
);

/// The rest of the operations, role by role. Here "allowed" means authorization let the
/// request through (the answer may still be a 404 or 409 about the object); "denied" means
/// 403 `not_permitted` (or 404 for the operator, to whom a tenant's keys do not exist).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_role_against_the_other_operations() {
    let s = TestServer::start().await;
    for (name, spec, usage) in [
        ("a", "AES_256", "ENCRYPT_DECRYPT"),
        ("s", "ECC_NIST_P256", "SIGN_VERIFY"),
        ("m", "HMAC_256", "GENERATE_VERIFY_MAC"),
        ("q", "ML_KEM_768", "KEY_ENCAPSULATION"),
    ] {
        s.create(json!({"name": name, "spec": spec, "usage": [usage], "extractable": name == "a"}))
            .await;
    }
    let ct = s.encrypt("a", b"m").await.1["ciphertext"].clone();
    let sig = s.ok("/v1/keys/s/sign", json!({"message": b64(b"m")})).await["signature"].clone();
    let mac = s
        .ok("/v1/keys/m/generate-mac", json!({"message": b64(b"m")}))
        .await["mac"]
        .clone();
    let kem = s.ok("/v1/keys/q/encapsulate", json!({})).await["ciphertext"].clone();
    // A pending approval request, for the approval routes.
    s.req(
        Method::PUT,
        "/v1/tenant/settings",
        Some(json!({"allow_multiple_roles": true,
            "default_key_policy": [{"effect": "allow", "principals": ["role:crypto-user"], "actions": ["*"]}],
            "approval_rules": [{"actions": ["ScheduleKeyDestruction"], "approvals": 5}]})),
    )
    .await;
    s.create(json!({"name": "d", "pre_active": true})).await;
    let (_, v) = s.post("/v1/keys/d/schedule-destruction", json!({})).await;
    let aid = v["error"]["approval_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, b) = s
        .post(
            "/v1/principals/admin/bindings",
            json!({"kind": "certificate-san", "value": "m.example"}),
        )
        .await;
    let bid = b["id"].as_str().unwrap().replace(':', "%3A");
    s.operator()
        .ok("/v1/tenants", json!({"name": "matrix"}))
        .await;

    use Method as M;
    let ops: Vec<Op> = vec![
        (
            "ReEncrypt",
            M::POST,
            "/v1/keys/a/re-encrypt".into(),
            Some(json!({"ciphertext": ct})),
            &["crypto-user"],
        ),
        (
            "GenerateDataKeyWithoutPlaintext",
            M::POST,
            "/v1/keys/a/generate-data-key-without-plaintext".into(),
            Some(json!({})),
            &["crypto-user"],
        ),
        (
            "GenerateDataKeyPair",
            M::POST,
            "/v1/keys/a/generate-data-key-pair".into(),
            Some(json!({"key_pair_spec": "ECC_NIST_P256"})),
            &["crypto-user"],
        ),
        (
            "GenerateDataKeyPairWithoutPlaintext",
            M::POST,
            "/v1/keys/a/generate-data-key-pair-without-plaintext".into(),
            Some(json!({"key_pair_spec": "ECC_NIST_P256"})),
            &["crypto-user"],
        ),
        (
            "Sign",
            M::POST,
            "/v1/keys/s/sign".into(),
            Some(json!({"message": b64(b"m")})),
            &["crypto-user"],
        ),
        (
            "Verify",
            M::POST,
            "/v1/keys/s/verify".into(),
            Some(json!({"message": b64(b"m"), "signature": sig})),
            &["crypto-user"],
        ),
        (
            "GetPublicKey",
            M::GET,
            "/v1/keys/s/public-key".into(),
            None,
            &["crypto-user"],
        ),
        (
            "GenerateMac",
            M::POST,
            "/v1/keys/m/generate-mac".into(),
            Some(json!({"message": b64(b"m")})),
            &["crypto-user"],
        ),
        (
            "VerifyMac",
            M::POST,
            "/v1/keys/m/verify-mac".into(),
            Some(json!({"message": b64(b"m"), "mac": mac})),
            &["crypto-user"],
        ),
        (
            "Encapsulate",
            M::POST,
            "/v1/keys/q/encapsulate".into(),
            Some(json!({})),
            &["crypto-user"],
        ),
        (
            "Decapsulate",
            M::POST,
            "/v1/keys/q/decapsulate".into(),
            Some(json!({"ciphertext": kem})),
            &["crypto-user"],
        ),
        (
            "ExportKey",
            M::POST,
            "/v1/keys/a/export".into(),
            Some(json!({})),
            &["crypto-user"],
        ),
        (
            "ListVersions",
            M::GET,
            "/v1/keys/a/versions".into(),
            None,
            &["tenant-admin", "crypto-user", "auditor"],
        ),
        (
            "CreateAlias",
            M::POST,
            "/v1/aliases".into(),
            Some(json!({"alias": "al-ROLE", "key": "a"})),
            &["tenant-admin"],
        ),
        (
            "UpdateAlias",
            M::PUT,
            "/v1/aliases/al-tenant-admin".into(),
            Some(json!({"key": "s"})),
            &["tenant-admin"],
        ),
        (
            "DeleteAlias",
            M::DELETE,
            "/v1/aliases/al-tenant-admin".into(),
            None,
            &["tenant-admin"],
        ),
        (
            "ArchiveKey",
            M::POST,
            "/v1/keys/m/archive".into(),
            Some(json!({})),
            &["tenant-admin"],
        ),
        (
            "RecoverKey",
            M::POST,
            "/v1/keys/m/recover".into(),
            Some(json!({})),
            &["tenant-admin"],
        ),
        (
            "ActivateKey",
            M::POST,
            "/v1/keys/d/activate".into(),
            Some(json!({})),
            &["tenant-admin"],
        ),
        (
            "DeactivateKey",
            M::POST,
            "/v1/keys/d/deactivate".into(),
            Some(json!({"reason": "SUPERSEDED"})),
            &["tenant-admin"],
        ),
        (
            "ReportKeyCompromise",
            M::POST,
            "/v1/keys/d/report-compromise".into(),
            Some(json!({})),
            &["tenant-admin"],
        ),
        (
            "SuspendVersion",
            M::POST,
            "/v1/keys/s/versions/1/suspend".into(),
            Some(json!({})),
            &["tenant-admin"],
        ),
        (
            "ResumeVersion",
            M::POST,
            "/v1/keys/s/versions/1/resume".into(),
            Some(json!({})),
            &["tenant-admin"],
        ),
        (
            "RollbackKeyPolicy",
            M::POST,
            "/v1/keys/a/policy/rollback".into(),
            Some(json!({"version": 1})),
            &["tenant-admin"],
        ),
        (
            "DescribePrincipal",
            M::GET,
            "/v1/principals/admin".into(),
            None,
            &["tenant-admin"],
        ),
        (
            "UpdatePrincipal",
            M::PATCH,
            "/v1/principals/p-crypto-user".into(),
            Some(json!({"groups": ["g"]})),
            &["tenant-admin"],
        ),
        (
            "CreateApiToken",
            M::POST,
            "/v1/principals/admin/tokens".into(),
            Some(json!({})),
            &["tenant-admin"],
        ),
        (
            "ListBindings",
            M::GET,
            "/v1/bindings".into(),
            None,
            &["tenant-admin", "system-operator"],
        ),
        (
            "CreateBinding",
            M::POST,
            "/v1/principals/admin/bindings".into(),
            Some(json!({"kind": "certificate-san", "value": "ROLE.example"})),
            &["tenant-admin"],
        ),
        (
            "DeleteBinding",
            M::DELETE,
            format!("/v1/bindings/{bid}"),
            None,
            &["tenant-admin"],
        ),
        (
            "UpdateTenantSettings",
            M::PUT,
            "/v1/tenant/settings".into(),
            Some(json!({"allow_multiple_roles": true})),
            &["tenant-admin", "system-operator"],
        ),
        (
            "DescribeApproval",
            M::GET,
            format!("/v1/approvals/{aid}"),
            None,
            &["tenant-admin", "auditor", "approver"],
        ),
        (
            "Approve",
            M::POST,
            format!("/v1/approvals/{aid}/approve"),
            Some(json!({})),
            &["approver"],
        ),
        (
            "Deny",
            M::POST,
            format!("/v1/approvals/{aid}/deny"),
            Some(json!({})),
            &["approver"],
        ),
        (
            "DescribeTenant",
            M::GET,
            "/v1/tenants/matrix".into(),
            None,
            &["system-operator"],
        ),
        (
            "ListTrustAnchors",
            M::GET,
            "/v1/tenants/matrix/trust".into(),
            None,
            &["system-operator"],
        ),
        (
            "DisableTenant",
            M::POST,
            "/v1/tenants/matrix/disable".into(),
            Some(json!({})),
            &["system-operator"],
        ),
        (
            "EnableTenant",
            M::POST,
            "/v1/tenants/matrix/enable".into(),
            Some(json!({})),
            &["system-operator"],
        ),
        (
            "DeleteTenant",
            M::DELETE,
            "/v1/tenants/matrix".into(),
            None,
            &["system-operator"],
        ),
        (
            "CreateSession",
            M::POST,
            "/v1/auth/token".into(),
            Some(json!({})),
            &[
                "system-operator",
                "tenant-admin",
                "crypto-user",
                "auditor",
                "approver",
            ],
        ),
    ];
    let mut who = vec![("system-operator", s.operator())];
    for role in ["tenant-admin", "crypto-user", "auditor", "approver"] {
        who.push((role, s.principal(&format!("p-{role}"), &[role], &[]).await));
    }
    let mut n = 0;
    for (role, h) in &who {
        for (op, m, path, body, allowed) in &ops {
            let body = body
                .as_ref()
                .map(|b| serde_json::from_str(&b.to_string().replace("ROLE", role)).unwrap());
            let (st, v) = h.req(m.clone(), path, body).await;
            n += 1;
            if allowed.contains(role) {
                assert!(
                    st != StatusCode::FORBIDDEN && st != StatusCode::UNAUTHORIZED,
                    "{role} {op}: authorization refused it: {st} {v}"
                );
            } else if *role == "system-operator" && st == StatusCode::NOT_FOUND {
                // The tenant's keys, aliases, principals and approvals do not exist for it.
                assert_eq!(v["error"]["code"], "not_found", "{op}: {v}");
            } else {
                assert_eq!(st, StatusCode::FORBIDDEN, "{role} {op}: {v}");
                assert_eq!(v["error"]["code"], "not_permitted", "{role} {op}: {v}");
            }
        }
    }
    assert!(n >= 5 * 39, "{n}");
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_keys_protections_can_require_approval() {
    let s = TestServer::start().await;
    s.create(json!({"name": "guarded", "rotation_period_days": 90}))
        .await;
    let (st, v) = s
        .req(
            Method::PUT,
            "/v1/tenant/settings",
            Some(json!({"allow_multiple_roles": true,
                "approval_rules": [{"actions": ["DisableKeyProtection"], "approvals": 1}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    let alice = s.principal("alice", &["approver"], &[]).await;
    // A harmless change goes through; turning automatic rotation off waits for approval.
    let (st, _) = s
        .req(
            Method::PATCH,
            "/v1/keys/guarded",
            Some(json!({"description": "x"})),
        )
        .await;
    assert_eq!(st, StatusCode::OK);
    let (st, v) = s
        .req(
            Method::PATCH,
            "/v1/keys/guarded",
            Some(json!({"rotation_period_days": null})),
        )
        .await;
    assert_eq!(st, StatusCode::ACCEPTED, "{v}");
    let id = v["error"]["approval_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, k) = s.get("/v1/keys/guarded").await;
    assert_eq!(k["rotation_period_days"], 90, "{k}");
    alice
        .ok(&format!("/v1/approvals/{id}/approve"), json!({}))
        .await;
    let done = s
        .ok(&format!("/v1/approvals/{id}/execute"), json!({}))
        .await;
    assert!(done["result"]["rotation_period_days"].is_null(), "{done}");
    let (_, k) = s.get("/v1/keys/guarded").await;
    assert!(k["rotation_period_days"].is_null(), "{k}");
    s.shutdown().await;
}

/// How the access matrix reaches an action.
enum Reach {
    /// A REST request: method, path (`SELF` is the caller's own name), body; and whether the
    /// path names one of our tenant's objects (which another tenant, and the operator of the
    /// system tenant, must not find).
    Rest(Method, String, Option<Value>, bool),
    /// Not on the REST door: the door that exposes it and the test that holds it there.
    Elsewhere(&'static str),
    /// Recorded by the audit trail, never granted to a caller.
    Recorded,
}

/// What the matrix expects of one role and one action.
#[derive(Debug, PartialEq)]
enum Expect {
    /// Authorization lets it through (it may still fail for another reason: a conflict).
    Allowed,
    /// Refused: 403 `not_permitted` (or 404 where the caller cannot see the object).
    Refused,
    /// Decided by something other than the role table; the reason is written at its case.
    Other,
}

/// Issue 17's matrix: every action of [`arca_core::Action`] × each role (and a principal of
/// another tenant holding every tenant role) through the REST door, each call allowed or
/// refused as the role table and the key policy say, and each one in the audit trail.
/// The `match` in `reach` has no wildcard: an action added to the enum does not compile
/// here until it is placed in the matrix. Actions that only the KMIP or AWS door exposes
/// name the test that holds them there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_access_matrix_covers_every_action() {
    use arca_core::access::{role_allows, Category, Role};
    use arca_core::Action;
    let s = TestServer::start().await;
    for (name, spec, usage) in [
        ("mx-aes", "AES_256", "ENCRYPT_DECRYPT"),
        ("mx-sig", "ECC_NIST_P256", "SIGN_VERIFY"),
        ("mx-mac", "HMAC_256", "GENERATE_VERIFY_MAC"),
        ("mx-kem", "ML_KEM_768", "KEY_ENCAPSULATION"),
        ("mx-wrap", "RSA_2048", "WRAP_UNWRAP"),
    ] {
        s.create(json!({"name": name, "spec": spec, "usage": [usage], "extractable": true}))
            .await;
    }
    let ct = s.encrypt("mx-aes", b"m").await.1["ciphertext"].clone();
    let sig = s
        .ok("/v1/keys/mx-sig/sign", json!({"message": b64(b"m")}))
        .await["signature"]
        .clone();
    let mac = s
        .ok(
            "/v1/keys/mx-mac/generate-mac",
            json!({"message": b64(b"m")}),
        )
        .await["mac"]
        .clone();
    let kem = s.ok("/v1/keys/mx-kem/encapsulate", json!({})).await["ciphertext"].clone();
    s.create(json!({"name": "mx-imp", "pending_import": true}))
        .await;
    let (st, v) = s
        .req(
            Method::PUT,
            "/v1/tenant/settings",
            Some(json!({"allow_multiple_roles": true,
                "default_key_policy": [{"effect": "allow", "principals": ["role:crypto-user"], "actions": ["*"]}],
                "approval_rules": [{"actions": ["ScheduleKeyDestruction"], "approvals": 5}]})),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
    s.create(json!({"name": "mx-pre", "pre_active": true}))
        .await;
    let (_, v) = s
        .post("/v1/keys/mx-pre/schedule-destruction", json!({}))
        .await;
    let aid = v["error"]["approval_request_id"]
        .as_str()
        .unwrap()
        .to_string();
    let tok = s
        .ok("/v1/principals/admin/tokens", json!({"name": "mx"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let awsk = s
        .ok("/v1/principals/admin/aws-credentials", json!({}))
        .await["access_key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, b) = s
        .post(
            "/v1/principals/admin/bindings",
            json!({"kind": "certificate-san", "value": "mx.example"}),
        )
        .await;
    let bid = b["id"]
        .as_str()
        .unwrap()
        .replace(':', "%3A")
        .replace('|', "%7C");
    s.operator()
        .ok("/v1/tenants", json!({"name": "mx-t"}))
        .await;
    s.ok(
        "/v1/principals",
        json!({"name": "mx-target", "roles": ["auditor"]}),
    )
    .await;

    let rest = |m: Method, p: &str, body: Option<Value>, ours: bool| {
        Reach::Rest(m, p.to_string(), body, ours)
    };
    use Method as M;
    let reach = |a: Action| -> Reach {
        use Action::*;
        match a {
            Encrypt => rest(M::POST, "/v1/keys/mx-aes/encrypt", Some(json!({"plaintext": b64(b"m")})), true),
            Decrypt => rest(M::POST, "/v1/decrypt", Some(json!({"ciphertext": ct})), true),
            ReEncryptFrom | ReEncryptTo => rest(M::POST, "/v1/keys/mx-aes/re-encrypt", Some(json!({"ciphertext": ct})), true),
            ReEncrypt => Reach::Recorded,
            GenerateDataKey => rest(M::POST, "/v1/keys/mx-aes/generate-data-key", Some(json!({})), true),
            GenerateDataKeyWithoutPlaintext => rest(M::POST, "/v1/keys/mx-aes/generate-data-key-without-plaintext", Some(json!({})), true),
            GenerateDataKeyPair => rest(M::POST, "/v1/keys/mx-aes/generate-data-key-pair", Some(json!({"key_pair_spec": "ECC_NIST_P256"})), true),
            GenerateDataKeyPairWithoutPlaintext => rest(M::POST, "/v1/keys/mx-aes/generate-data-key-pair-without-plaintext", Some(json!({"key_pair_spec": "ECC_NIST_P256"})), true),
            Sign => rest(M::POST, "/v1/keys/mx-sig/sign", Some(json!({"message": b64(b"m")})), true),
            Verify => rest(M::POST, "/v1/keys/mx-sig/verify", Some(json!({"message": b64(b"m"), "signature": sig})), true),
            GenerateMac => rest(M::POST, "/v1/keys/mx-mac/generate-mac", Some(json!({"message": b64(b"m")})), true),
            VerifyMac => rest(M::POST, "/v1/keys/mx-mac/verify-mac", Some(json!({"message": b64(b"m"), "mac": mac})), true),
            Encapsulate => rest(M::POST, "/v1/keys/mx-kem/encapsulate", Some(json!({})), true),
            Decapsulate => rest(M::POST, "/v1/keys/mx-kem/decapsulate", Some(json!({"ciphertext": kem})), true),
            GetPublicKey => rest(M::GET, "/v1/keys/mx-sig/public-key", None, true),
            ExportKey => rest(M::POST, "/v1/keys/mx-aes/export", Some(json!({})), true),
            GenerateRandom => rest(M::POST, "/v1/random", Some(json!({"number_of_bytes": 8})), false),
            DescribeKey => rest(M::GET, "/v1/keys/mx-aes", None, true),
            ListKeys => rest(M::GET, "/v1/keys", None, false),
            GetKeyHistory => rest(M::GET, "/v1/keys/mx-aes/history", None, true),
            ListAliases => rest(M::GET, "/v1/aliases", None, false),
            GetKeyPolicy => rest(M::GET, "/v1/keys/mx-aes/policy", None, true),
            ListKeyPolicyVersions => rest(M::GET, "/v1/keys/mx-aes/policy/versions", None, true),
            ListGrants | CreateGrant | RevokeGrant | RetireGrant => {
                Reach::Elsewhere("AWS door: aws_clients::every_role_against_the_aws_operations and key_policies_and_grants_map_onto_arca_policies")
            }
            CreateKey => rest(M::POST, "/v1/keys", Some(json!({"name": "mx-new-SELF"})), false),
            UpdateKey => rest(M::PATCH, "/v1/keys/mx-aes", Some(json!({"description": "d"})), true),
            DisableKeyProtection => rest(M::PATCH, "/v1/keys/mx-aes", Some(json!({"rotation_period_days": null})), true),
            CreateAlias => rest(M::POST, "/v1/aliases", Some(json!({"alias": "mx-al-SELF", "key": "mx-aes"})), true),
            UpdateAlias => rest(M::PUT, "/v1/aliases/mx-al-p-tenant-admin", Some(json!({"key": "mx-sig"})), true),
            DeleteAlias => rest(M::DELETE, "/v1/aliases/mx-al-p-tenant-admin", None, true),
            RotateKey => rest(M::POST, "/v1/keys/mx-mac/rotate", Some(json!({})), true),
            ActivateKey => rest(M::POST, "/v1/keys/mx-pre/activate", Some(json!({})), true),
            SuspendKey => rest(M::POST, "/v1/keys/mx-sig/suspend", Some(json!({})), true),
            ResumeKey => rest(M::POST, "/v1/keys/mx-sig/resume", Some(json!({})), true),
            DeactivateKey => rest(M::POST, "/v1/keys/mx-pre/deactivate", Some(json!({"reason": "SUPERSEDED"})), true),
            ReportKeyCompromise => rest(M::POST, "/v1/keys/mx-pre/report-compromise", Some(json!({})), true),
            ArchiveKey => rest(M::POST, "/v1/keys/mx-mac/archive", Some(json!({})), true),
            RecoverKey => rest(M::POST, "/v1/keys/mx-mac/recover", Some(json!({})), true),
            ScheduleKeyDestruction => rest(M::POST, "/v1/keys/mx-pre/schedule-destruction", Some(json!({})), true),
            CancelKeyDestruction => rest(M::POST, "/v1/keys/mx-pre/cancel-destruction", Some(json!({})), true),
            PutKeyPolicy => rest(M::PUT, "/v1/keys/mx-aes/policy", Some(json!({"statements": [{"effect": "allow", "principals": ["role:crypto-user"], "actions": ["*"]}]})), true),
            GetParametersForImport => rest(M::POST, "/v1/keys/mx-imp/import-parameters", Some(json!({"wrapping_algorithm": "RSAES_OAEP_SHA_256", "wrapping_key_spec": "RSA_2048"})), true),
            ImportKeyMaterial => rest(M::POST, "/v1/keys/mx-imp/import", Some(json!({"import_token": b64(b"t"), "encrypted_key_material": b64(b"m")})), true),
            DeleteImportedKeyMaterial => rest(M::POST, "/v1/keys/mx-imp/delete-imported-material", Some(json!({})), true),
            Lifecycle => Reach::Recorded,
            CreatePrincipal => rest(M::POST, "/v1/principals", Some(json!({"name": "mx-made-by-SELF", "roles": ["auditor"]})), false),
            ListPrincipals => rest(M::GET, "/v1/principals", None, false),
            DescribePrincipal => rest(M::GET, "/v1/principals/mx-target", None, true),
            UpdatePrincipal => rest(M::PATCH, "/v1/principals/mx-target", Some(json!({"groups": ["g"]})), true),
            CreateApiToken => rest(M::POST, "/v1/principals/mx-target/tokens", Some(json!({})), true),
            ListApiTokens => rest(M::GET, "/v1/tokens", None, false),
            RevokeApiToken => rest(M::DELETE, &format!("/v1/tokens/{tok}"), None, true),
            // Authorised as CreateApiToken / CreateOwnCredential, ListApiTokens and
            // RevokeApiToken: the credentials' second kind, recorded under its own name.
            CreateAwsCredential => rest(M::POST, "/v1/principals/mx-target/aws-credentials", Some(json!({})), true),
            ListAwsCredentials => rest(M::GET, "/v1/aws-credentials", None, false),
            RevokeAwsCredential => rest(M::DELETE, &format!("/v1/aws-credentials/{awsk}"), None, true),
            CreateBinding => rest(M::POST, "/v1/principals/mx-target/bindings", Some(json!({"kind": "certificate-san", "value": "SELF.mx.example"})), true),
            ListBindings => rest(M::GET, "/v1/bindings", None, false),
            DeleteBinding => rest(M::DELETE, &format!("/v1/bindings/{bid}"), None, true),
            GetTenantSettings => rest(M::GET, "/v1/tenant/settings", None, false),
            UpdateTenantSettings => rest(M::PUT, "/v1/tenant/settings", Some(json!({"allow_multiple_roles": true,
                "default_key_policy": [{"effect": "allow", "principals": ["role:crypto-user"], "actions": ["*"]}],
                "approval_rules": [{"actions": ["ScheduleKeyDestruction"], "approvals": 5}]})), false),
            ListAudit => rest(M::GET, "/v1/audit", None, false),
            ExportAudit => rest(M::GET, "/v1/audit/export", None, false),
            AuditUsageReport => rest(M::GET, "/v1/audit/usage", None, false),
            AuditUsageSeries => rest(M::GET, "/v1/audit/usage/series?key=mx-aes", None, true),
            CheckpointAudit => rest(M::POST, "/v1/audit/checkpoint", Some(json!({})), false),
            ArchiveAudit => rest(M::POST, "/v1/audit/archive", Some(json!({})), false),
            ListAuditSegments => rest(M::GET, "/v1/audit/segments", None, false),
            PruneAudit => rest(M::POST, "/v1/audit/prune", Some(json!({})), false),
            VerifyAudit => rest(M::GET, "/v1/audit/verify", None, false),
            GetDestructionReceipt => rest(M::GET, "/v1/keys/mx-aes/receipts", None, true),
            ListApprovals => rest(M::GET, "/v1/approvals", None, false),
            DescribeApproval => rest(M::GET, &format!("/v1/approvals/{aid}"), None, true),
            Approve => rest(M::POST, &format!("/v1/approvals/{aid}/approve"), Some(json!({})), true),
            Deny => rest(M::POST, &format!("/v1/approvals/{aid}/deny"), Some(json!({})), true),
            RequestApproval => Reach::Recorded,
            CreateTenant => rest(M::POST, "/v1/tenants", Some(json!({"name": "mx-by-SELF"})), false),
            ListTenants => rest(M::GET, "/v1/tenants", None, false),
            DescribeTenant => rest(M::GET, "/v1/tenants/mx-t", None, false),
            DisableTenant => rest(M::POST, "/v1/tenants/mx-t/disable", Some(json!({})), false),
            EnableTenant => rest(M::POST, "/v1/tenants/mx-t/enable", Some(json!({})), false),
            DeleteTenant => rest(M::DELETE, "/v1/tenants/mx-by-operator", None, false),
            ReadMetrics => rest(M::GET, "/metrics", None, false),
            Backup => rest(M::POST, "/v1/sys/backup", None, false),
            Seal => rest(M::POST, "/v1/sys/seal", Some(json!({})), false),
            StartRootRekey => rest(M::POST, "/v1/sys/rekey", Some(json!({"threshold": 2, "custodians": []})), false),
            CancelRootRekey => rest(M::DELETE, "/v1/sys/rekey", None, false),
            AssignTrustAnchor => rest(M::POST, "/v1/tenants/mx-t/trust", Some(json!({"jwt_issuer": "https://idp.mx.example"})), false),
            ListTrustAnchors => rest(M::GET, "/v1/tenants/mx-t/trust", None, false),
            WithdrawTrustAnchor => rest(M::DELETE, "/v1/tenants/mx-t/trust/jwt%3Ahttps%3A%2F%2Fidp.mx.example", None, false),
            WhoAmI => rest(M::GET, "/v1/whoami", None, false),
            QueryServer | DiscoverVersions | LogMessage | Interop | Hash | ObtainLease => {
                Reach::Elsewhere("KMIP door: e2e_kmip::every_role_against_the_kmip_operations (Query also XKS health and AWS DescribeCustomKeyStores: aws_clients)")
            }
            CreateSession => rest(M::POST, "/v1/auth/token", Some(json!({})), false),
            RefreshSession => Reach::Elsewhere(
                "REST without a credential (the refresh token is one): e2e_credentials::sessions_expire_refresh_rotate_and_log_out",
            ),
            Logout => rest(M::POST, "/v1/auth/logout", Some(json!({})), false),
            ExecuteApproval => rest(M::POST, &format!("/v1/approvals/{aid}/execute"), Some(json!({})), true),
            CancelApproval => rest(M::POST, &format!("/v1/approvals/{aid}/cancel"), Some(json!({})), true),
            CreateOwnCredential => rest(M::POST, "/v1/principals/SELF/tokens", Some(json!({})), false),
            Unseal | SubmitRootRekeyShare | ReshareRootKey | RotateRootKey | InitRootKey
            | RestoreBackup | StartServer | StopServer | ResumeAudit | Authenticate | RevokeSession
            | LifecycleTask | MigrateBinding | SignAuditCheckpoint | HttpRequest | KmipRequest
            | AwsRequest | XksRequest => Reach::Recorded,
        }
    };
    let expect = |roles: &[Role], a: Action| -> Expect {
        use Action::*;
        // What authorizes the action when it is not its own name.
        let as_action = match a {
            CreateAwsCredential => CreateApiToken,
            ListAwsCredentials => ListApiTokens,
            RevokeAwsCredential => RevokeApiToken,
            other => other,
        };
        match a {
            // Whoever asked may execute or withdraw; others are refused by the request,
            // not by the role table.
            ExecuteApproval | CancelApproval => return Expect::Other,
            // Auditors of the system tenant only: no principal of the matrix is one.
            ExportAudit | VerifyAudit | ArchiveAudit | ListAuditSegments => return Expect::Refused,
            _ => {}
        }
        if !role_allows(roles, as_action) {
            return Expect::Refused;
        }
        // The key policy (the tenant default) grants use to crypto-users only.
        if as_action.category() == Category::KeyUse && !roles.contains(&Role::CryptoUser) {
            return Expect::Refused;
        }
        Expect::Allowed
    };

    let mut who: Vec<(String, Vec<Role>, TestServer, bool)> = vec![(
        "operator".into(),
        vec![Role::SystemOperator],
        s.operator(),
        false,
    )];
    for role in ["tenant-admin", "crypto-user", "auditor", "approver"] {
        who.push((
            format!("p-{role}"),
            vec![Role::parse("role", role).unwrap()],
            s.principal(&format!("p-{role}"), &[role], &[]).await,
            false,
        ));
    }
    let (st, acme) = s
        .operator()
        .post(
            "/v1/tenants",
            json!({"name": "mx-foreign", "settings": {"allow_multiple_roles": true}}),
        )
        .await;
    assert_eq!(st, StatusCode::CREATED, "{acme}");
    let every = [
        Role::TenantAdmin,
        Role::CryptoUser,
        Role::Auditor,
        Role::Approver,
    ];
    let foreign = s
        .with_token(acme["admin_token"].as_str().unwrap())
        .principal(
            "mx-everyone",
            &["tenant-admin", "crypto-user", "auditor", "approver"],
            &[],
        )
        .await;
    who.push(("mx-everyone".into(), every.to_vec(), foreign, true));

    let mut sent = Vec::new();
    let mut elsewhere = 0;
    for (name, roles, h, is_foreign) in &who {
        for a in arca_core::Action::ALL {
            let (m, path, body, ours) = match reach(*a) {
                Reach::Rest(m, p, b, ours) => (m, p, b, ours),
                Reach::Elsewhere(held_by) => {
                    assert!(
                        held_by.contains("::") || held_by.contains("e2e_"),
                        "{a}: {held_by}"
                    );
                    elsewhere += 1;
                    continue;
                }
                Reach::Recorded => {
                    assert_eq!(
                        a.category(),
                        Category::Recorded,
                        "{a} is grantable but unreachable"
                    );
                    continue;
                }
            };
            assert_ne!(
                a.category(),
                Category::Recorded,
                "{a}: no caller can be granted it"
            );
            let path = path.replace("SELF", name);
            let body = body.map(|b| {
                serde_json::from_str::<Value>(&b.to_string().replace("SELF", name)).unwrap()
            });
            let rid = format!("mx-{}", sent.len());
            let mut rb = h
                .client
                .request(m.clone(), format!("{}{path}", h.url))
                .bearer_auth(&h.token)
                .header("x-request-id", &rid);
            if let Some(b) = &body {
                rb = rb.json(b);
            }
            let r = rb.send().await.unwrap();
            let st = r.status();
            let text = r.text().await.unwrap();
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            sent.push((rid, name.clone(), *a));
            let code = v["error"]["code"].as_str().unwrap_or("");
            let refused = st == StatusCode::FORBIDDEN && code == "not_permitted";
            let hidden = st == StatusCode::NOT_FOUND;
            if *is_foreign && ours {
                // Another tenant never reaches our objects, whatever its roles.
                assert!(refused || hidden, "{name} {a} {path}: {st} {v}");
                continue;
            }
            match expect(roles, *a) {
                Expect::Allowed => {
                    let operator_outside = roles.contains(&Role::SystemOperator) && ours && hidden;
                    assert!(
                        operator_outside
                            || (st != StatusCode::FORBIDDEN && st != StatusCode::UNAUTHORIZED),
                        "{name} {a} {path}: authorization refused it: {st} {v}"
                    );
                }
                Expect::Refused => assert!(
                    refused || (hidden && roles.contains(&Role::SystemOperator) && ours),
                    "{name} {a} {path}: expected 403 not_permitted, got {st} {v}"
                ),
                Expect::Other => assert!(st != StatusCode::UNAUTHORIZED, "{name} {a}: {st} {v}"),
            }
        }
    }
    assert!(elsewhere > 0);
    // Every request of the matrix, allowed or refused, is in the audit trail.
    s.service().flush_audit().await;
    let trail = arca_service::trail::read_all(s.service().store().as_ref())
        .await
        .unwrap();
    let recorded: std::collections::HashSet<&str> =
        trail.iter().map(|e| e.request_id.as_str()).collect();
    for (rid, name, a) in &sent {
        assert!(
            recorded.contains(rid.as_str()),
            "no audit record of {name} {a} ({rid})"
        );
    }
    assert!(sent.len() > 6 * 80, "{} requests", sent.len());
    s.shutdown().await;
}
