//! The web console end to end: a real `arca serve`, the console it embeds, driven in
//! headless Chromium by Playwright (`console/console.spec.mjs`). The story is the issue's:
//! sign in, create a key, rotate it, ask for a destruction that needs two approvals,
//! approve it as two other users, execute it, and find every step in the audit view;
//! a principal whose role forbids an action tries it through the console and is refused
//! by the API. Screenshots of each main page go to `target/tmp/console-screenshots/`.
//!
//! Needs Node.js, `npm ci` in `tests/console/` and Debian's `chromium` (scripts/test
//! installs them). It fails, never skips, when one is missing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{require_approval, run_init, Server};

fn here() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console")
}

fn chromium() -> String {
    let path = std::env::var("ARCA_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&path).exists(),
        "Chromium is missing at {path}: install Debian's `chromium` (scripts/test does) or set ARCA_CHROMIUM"
    );
    path
}

/// Creates `name` with `role` in the admin's tenant (or the system tenant, as the
/// operator) and returns a fresh API token for it.
fn principal(s: &Server, profile: &str, name: &str, role: &str) -> String {
    s.ok_as(profile, &["principal", "create", name, "--role", role]);
    let t = s.json_as(profile, &["token", "create", name]);
    t["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token in {t}"))
        .to_string()
}

/// Where the screenshots go.
fn shots() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

/// Runs one browser scenario against `s` with `vars`, and insists that it passes.
fn run_node(s: &Server, script: &str, vars: &[(&str, &str)]) {
    let dir = here();
    assert!(
        dir.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci` in {} (scripts/test does)",
        dir.display()
    );
    let url = std::fs::read_to_string(&s.profile)
        .unwrap()
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("server = ")
                .map(|u| u.trim_matches('"').to_string())
        })
        .expect("the profile names the server");
    std::fs::create_dir_all(shots()).unwrap();
    let out = Command::new("node")
        .arg(dir.join(script))
        .current_dir(&dir)
        .env("ARCA_URL", &url)
        .env("ARCA_CHROMIUM", chromium())
        .env("ARCA_SCREENSHOTS", shots())
        .envs(vars.iter().copied())
        .output()
        .expect("cannot run node: install Node.js (scripts/test does)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "{script} failed:\n{stdout}\n{stderr}\nserver log:\n{}",
        std::fs::read_to_string(s.path("serve.log")).unwrap_or_default()
    );
}

#[test]
fn console_in_a_real_browser() {
    let s = Server::start();
    require_approval(&s, "ScheduleKeyDestruction", 2);
    let alice = principal(&s, "default", "alice", "approver");
    let bob = principal(&s, "default", "bob", "approver");
    let carol = principal(&s, "default", "carol", "auditor");
    let sysaudit = principal(&s, "operator", "chain-auditor", "auditor");
    run_node(
        &s,
        "console.spec.mjs",
        &[
            ("ARCA_ADMIN_TOKEN", s.token.as_str()),
            ("ARCA_OPERATOR_TOKEN", s.secrets[1].as_str()),
            ("ARCA_ALICE_TOKEN", alice.as_str()),
            ("ARCA_BOB_TOKEN", bob.as_str()),
            ("ARCA_CAROL_TOKEN", carol.as_str()),
            ("ARCA_SYSAUDIT_TOKEN", sysaudit.as_str()),
        ],
    );

    // What the browser did, seen through the CLI: the destruction is scheduled, by the
    // approved request, and the forbidden creation changed nothing.
    let key = s.json(&["key", "describe", "payments-2026"]);
    assert_eq!(key["state"], "SUSPENDED");
    assert_eq!(key["primary_version"], 2);
    assert_eq!(key["tags"]["team"], "payments");
    assert_eq!(key["rotation_period_days"], 90);
    assert_eq!(key["aliases"][0], "payments");
    assert!(key["destroy_after"].is_string(), "{key}");
    let scratch = s.json(&["key", "describe", "scratch-2026"]);
    assert_eq!(scratch["state"], "DEACTIVATED");
    let list = s.json(&["key", "list"]);
    assert!(
        !list.to_string().contains("carol-was-here"),
        "a refused creation left a key: {list}"
    );
    let executed = s.json(&["approval", "list", "--status", "executed"]);
    let a = &executed["approvals"][0];
    assert_eq!(a["action"], "ScheduleKeyDestruction");
    let voters: Vec<&str> = a["votes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["principal"].as_str().unwrap())
        .collect();
    assert_eq!(voters, ["alice", "bob"]);
    for page in [
        "signin",
        "keys",
        "create-key",
        "key",
        "destroy-warning",
        "approvals",
        "approval",
        "audit",
        "audit-verify",
        "operations",
        "tenants",
        "principals",
        "keys-phone",
        "key-phone",
        "refused",
    ] {
        let f = shots().join(format!("{page}.png"));
        let len = std::fs::metadata(&f)
            .unwrap_or_else(|_| panic!("no screenshot {}", f.display()))
            .len();
        assert!(len > 5_000, "{} is only {len} bytes", f.display());
    }
    // The browser's session never put a credential in a log line.
    let log = std::fs::read_to_string(s.path("serve.log")).unwrap();
    for t in [&s.token, &alice, &bob, &carol, &sysaudit] {
        assert!(!log.contains(t.as_str()), "a token is in the server log");
    }
}

/// Custodians unseal a Shamir-sealed server through the console, share by share, and an
/// operator seals it again; no share reaches the server's log.
#[test]
fn custodians_unseal_and_the_operator_seals_through_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_init(
        dir.path(),
        "data",
        "shares",
        &["alice".to_string(), "bob".to_string()],
    );
    assert!(
        out.status.success(),
        "arca init: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let share = |who: &str| {
        std::fs::read_to_string(dir.path().join(format!("shares/{who}.share")))
            .unwrap()
            .trim()
            .to_string()
    };
    let (alice, bob) = (share("alice"), share("bob"));
    let s = Server::start_in(dir);
    assert_eq!(s.json(&["status"])["sealed"], true);
    run_node(
        &s,
        "unseal.spec.mjs",
        &[
            ("ARCA_ADMIN_TOKEN", s.token.as_str()),
            ("ARCA_OPERATOR_TOKEN", s.secrets[1].as_str()),
            ("ARCA_SHARE_ALICE", alice.as_str()),
            ("ARCA_SHARE_BOB", bob.as_str()),
        ],
    );
    assert_eq!(s.json(&["status"])["sealed"], true, "sealed again");
    // Sealed, the CLI cannot read keys: unseal once more to see the cancelled destruction.
    for share in [&alice, &bob] {
        s.run_stdin(&["unseal"], share.as_bytes());
    }
    let old = s.json(&["key", "describe", "old-key"]);
    assert_eq!(old["state"], "PRE_ACTIVE");
    assert!(old["destroy_after"].is_null(), "{old}");
    let log = std::fs::read_to_string(s.path("serve.log")).unwrap();
    for secret in [&alice, &bob] {
        let body = secret.trim_start_matches("arca-share-v1:");
        assert!(!log.contains(body), "a share is in the server log");
    }
    let f = shots().join("unseal.png");
    assert!(std::fs::metadata(&f)
        .map(|m| m.len() > 5_000)
        .unwrap_or(false));
}
