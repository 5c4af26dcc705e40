//! End-to-end tests of the `arca` binary: a real `arca serve` on a free port in a temporary
//! directory, and the client commands run against it through the profile it writes.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod common;

use common::{clean_command, require_approval, run_init, Server, BIN};

fn code(out: &Output) -> i32 {
    out.status.code().expect("killed by a signal")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Deterministic, incompressible-looking test data.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn keys_aliases_lifecycle_json_and_bad_input() {
    let s = Server::start();
    let out = s.ok(&["key", "create", "k1", "--tag", "team=payments"]);
    assert!(out.contains("created key k1"), "{out}");

    // --output json parses, and carries the server's fields.
    let k1 = s.json(&["key", "describe", "k1"]);
    assert_eq!(k1["name"], "k1");
    assert_eq!(k1["state"], "ACTIVE");
    assert_eq!(k1["tags"]["team"], "payments");
    let list = s.json(&["key", "list", "--tag", "team=payments"]);
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);
    assert!(s.ok(&["key", "list"]).contains("k1"));

    // An alias works wherever a KEY goes.
    s.ok(&["alias", "create", "payments", "k1"]);
    let via_alias = s.json(&["key", "describe", "payments"]);
    assert_eq!(via_alias["id"], k1["id"]);
    let aliases = s.json(&["alias", "list", "--key", "k1"]);
    assert_eq!(aliases["aliases"][0]["alias"], "payments");
    let ct = s.run_stdin(&["encrypt", "payments"], b"via alias");
    assert!(ct.status.success(), "{}", stderr(&ct));
    let pt = s.run_stdin(&["decrypt", "--key", "payments"], &ct.stdout);
    assert!(pt.status.success(), "{}", stderr(&pt));
    assert_eq!(pt.stdout, b"via alias");

    // One direction of a pair: an encrypt-only key encrypts and refuses to decrypt, and
    // describe says so; the refusal names the usage.
    s.ok(&["key", "create", "producer", "--usage", "ENCRYPT"]);
    let p = s.json(&["key", "describe", "producer"]);
    assert_eq!(p["usage"], serde_json::json!(["ENCRYPT"]));
    assert!(s
        .ok(&["key", "describe", "producer"])
        .contains("protect and process"));
    let ct = s.run_stdin(&["encrypt", "producer"], b"write only");
    assert!(ct.status.success(), "{}", stderr(&ct));
    let back = s.run_stdin(&["decrypt", "--key", "producer"], &ct.stdout);
    assert!(!back.status.success());
    assert!(stderr(&back).contains("usage"), "{}", stderr(&back));

    // A name with a slash travels percent-encoded in the URL path.
    s.ok(&["key", "create", "team/app"]);
    let slashed = s.json(&["key", "describe", "team/app"]);
    assert_eq!(slashed["name"], "team/app");

    // Schedule destruction (after deactivation), then cancel it.
    s.ok(&["key", "create", "old"]);
    s.ok(&["key", "deactivate", "old", "--reason", "superseded"]);
    let scheduled = s.json(&[
        "key",
        "schedule-destruction",
        "old",
        "--days",
        "7",
        "--reason",
        "test",
    ]);
    assert!(!scheduled["destroy_after"].is_null(), "{scheduled}");
    let cancelled = s.json(&["key", "cancel-destruction", "old"]);
    assert!(cancelled["destroy_after"].is_null(), "{cancelled}");
    assert_eq!(cancelled["state"], "DEACTIVATED");
    let history = s.ok(&["key", "history", "old"]);
    assert!(history.contains("cancel-destruction"), "{history}");

    // Bad input: non-zero exit, the field named on stderr, nothing on stdout.
    let bad = s.run(&["key", "create", "bad name!"]);
    assert_eq!(code(&bad), 1);
    let err = stderr(&bad);
    assert!(err.starts_with("error: "), "{err}");
    assert!(err.contains("(field: name)"), "{err}");
    assert!(bad.stdout.is_empty());
    let missing = s.run(&["key", "describe", "no-such-key"]);
    assert_eq!(code(&missing), 1);
}

#[test]
fn encrypt_decrypt_files_and_rotation() {
    let s = Server::start();
    s.ok(&["key", "create", "data"]);
    let plaintext = b"attack at dawn\n".repeat(100);
    std::fs::write(s.path("pt"), &plaintext).unwrap();
    s.ok(&[
        "encrypt",
        "data",
        "--in",
        "pt",
        "--out",
        "ct",
        "--context",
        "app=test",
    ]);
    let ct = std::fs::read(s.path("ct")).unwrap();
    assert!(!ct.windows(6).any(|w| w == b"attack"));
    s.ok(&[
        "decrypt",
        "--in",
        "ct",
        "--out",
        "pt2",
        "--context",
        "app=test",
    ]);
    assert_eq!(std::fs::read(s.path("pt2")).unwrap(), plaintext);

    // The wrong context fails, and writes no output file.
    let wrong = s.run(&[
        "decrypt",
        "--in",
        "ct",
        "--out",
        "pt3",
        "--context",
        "app=other",
    ]);
    assert_eq!(code(&wrong), 1);
    assert!(stderr(&wrong).contains("error: "));
    assert!(!s.path("pt3").exists());

    // Rotate: new data uses version 2, the old file still decrypts (with version 1).
    let rotated = s.json(&["key", "rotate", "data"]);
    assert_eq!(rotated["primary_version"], 2);
    let old = s.json(&[
        "decrypt",
        "--in",
        "ct",
        "--out",
        "pt4",
        "--context",
        "app=test",
    ]);
    assert_eq!(old["key_version"], 1);
    assert!(old.get("plaintext").is_none(), "plaintext leaked into JSON");
    assert_eq!(std::fs::read(s.path("pt4")).unwrap(), plaintext);
    let new = s.json(&["encrypt", "data", "--in", "pt", "--out", "ct2"]);
    assert_eq!(new["key_version"], 2);
    assert!(new.get("ciphertext").is_none());
    let versions = s.json(&["key", "versions", "data"]);
    assert_eq!(versions.as_array().unwrap().len(), 2);

    // A key with a usage limit protects that much and no more; it still decrypts.
    s.ok(&["key", "create", "budget", "--usage-limit-bytes", "2000"]);
    s.ok(&["encrypt", "budget", "--in", "pt", "--out", "ct5"]);
    let shown = s.ok(&["key", "describe", "budget"]);
    assert!(shown.contains("500 of 2000 bytes left"), "{shown}");
    let refused = s.run(&["encrypt", "budget", "--in", "pt", "--out", "ct6"]);
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("usage limit"),
        "{}",
        stderr(&refused)
    );
    assert!(!s.path("ct6").exists());
    s.ok(&["decrypt", "--in", "ct5", "--out", "pt5"]);
    assert_eq!(std::fs::read(s.path("pt5")).unwrap(), plaintext);
}

#[test]
fn envelope_round_trip_tampering_and_rotation() {
    let s = Server::start();
    s.ok(&["key", "create", "env"]);
    let data = pseudo_random(300 * 1024 + 123, 42);
    std::fs::write(s.path("big"), &data).unwrap();
    s.ok(&[
        "envelope",
        "encrypt",
        "env",
        "--in",
        "big",
        "--out",
        "big.arca",
        "--context",
        "f=big",
    ]);
    let sealed = std::fs::read(s.path("big.arca")).unwrap();
    assert!(sealed.starts_with(b"ARCAENV1"));
    assert!(sealed.len() > data.len());
    s.ok(&[
        "envelope",
        "decrypt",
        "--in",
        "big.arca",
        "--out",
        "big.out",
        "--context",
        "f=big",
    ]);
    assert_eq!(std::fs::read(s.path("big.out")).unwrap(), data);

    let leftovers = |s: &Server| {
        std::fs::read_dir(s.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| {
                e.file_name()
                    .to_string_lossy()
                    .starts_with(".arca-envelope-")
            })
            .count()
    };

    // One byte changed in the middle: fails, and leaves neither output nor temporary file.
    let mut tampered = sealed.clone();
    let mid = tampered.len() / 2;
    tampered[mid] ^= 0x40;
    std::fs::write(s.path("tampered.arca"), &tampered).unwrap();
    let out = s.run(&[
        "envelope",
        "decrypt",
        "--in",
        "tampered.arca",
        "--out",
        "tampered.out",
        "--context",
        "f=big",
    ]);
    assert_eq!(code(&out), 1);
    assert!(stderr(&out).contains("modified"), "{}", stderr(&out));
    assert!(!s.path("tampered.out").exists());
    assert_eq!(leftovers(&s), 0);

    // Truncated: at a chunk boundary (the last chunk dropped), by a tag, mid-chunk.
    let key_len = u32::from_be_bytes(sealed[8..12].try_into().unwrap()) as usize;
    let header_len = 8 + 4 + key_len + 4 + 8;
    let boundary = header_len + 4 * (64 * 1024 + 16);
    assert!(boundary < sealed.len());
    for (name, len) in [
        ("cut0.arca", boundary),
        ("cut1.arca", sealed.len() - 16),
        ("cut2.arca", sealed.len() / 3),
    ] {
        std::fs::write(s.path(name), &sealed[..len]).unwrap();
        let out = s.run(&[
            "envelope",
            "decrypt",
            "--in",
            name,
            "--out",
            "cut.out",
            "--context",
            "f=big",
        ]);
        assert_eq!(code(&out), 1, "{name}");
        assert!(!s.path("cut.out").exists(), "{name}");
    }
    assert_eq!(leftovers(&s), 0);

    // The wrong context cannot unwrap the data key.
    let out = s.run(&[
        "envelope",
        "decrypt",
        "--in",
        "big.arca",
        "--out",
        "ctx.out",
        "--context",
        "f=other",
    ]);
    assert_eq!(code(&out), 1);
    assert!(!s.path("ctx.out").exists());

    // After a rotation, the old file still decrypts; stdin to stdout works too.
    s.ok(&["key", "rotate", "env"]);
    let out = s.run_stdin(
        &[
            "envelope",
            "decrypt",
            "--in",
            "-",
            "--out",
            "-",
            "--context",
            "f=big",
        ],
        &sealed,
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, data);
}

#[test]
fn sign_and_verify_with_ecc() {
    let s = Server::start();
    s.ok(&["key", "create", "signer", "--spec", "ECC_NIST_P256"]);
    std::fs::write(s.path("msg"), b"pay 10 EUR to Alice").unwrap();
    s.ok(&["sign", "signer", "--in", "msg", "--out", "sig"]);
    assert!(!std::fs::read(s.path("sig")).unwrap().is_empty());

    let out = s.ok(&["verify", "signer", "--signature", "sig", "--in", "msg"]);
    assert!(out.contains("signature is valid"), "{out}");

    std::fs::write(s.path("msg2"), b"pay 1000 EUR to Mallory").unwrap();
    let bad = s.run(&["verify", "signer", "--signature", "sig", "--in", "msg2"]);
    assert_eq!(code(&bad), 2);
    assert!(stderr(&bad).contains("signature is NOT valid"));

    // JSON mode says so too, with the same exit status.
    let bad = s.run(&[
        "--output",
        "json",
        "verify",
        "signer",
        "--signature",
        "sig",
        "--in",
        "msg2",
    ]);
    assert_eq!(code(&bad), 2);
    let v: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(v["valid"], false);

    let pem = s.ok(&["key", "public-key", "signer"]);
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
}

#[test]
fn health_random_data_keys_and_missing_profile() {
    let s = Server::start();
    let out = s.ok(&["health"]);
    assert!(out.contains("ready"), "{out}");
    assert!(out.contains("root dev, crypto software"), "{out}");
    s.ok(&["random", "32", "--out", "r"]);
    assert_eq!(std::fs::read(s.path("r")).unwrap().len(), 32);

    s.ok(&["key", "create", "wrap"]);
    let dk = s.json(&["data-key", "generate", "wrap", "--plaintext-out", "dk"]);
    assert!(dk.get("plaintext").is_none());
    assert_eq!(std::fs::read(s.path("dk")).unwrap().len(), 32);
    let table = s.ok(&["data-key", "generate", "wrap"]);
    assert!(table.contains("not shown"), "{table}");

    assert!(s.ok(&["completions", "bash"]).contains("arca"));

    // No profile: a clear message that says what to do.
    let out = clean_command(&s.path("missing.toml"), s.dir.path())
        .args(["key", "list"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 1);
    let err = stderr(&out);
    assert!(err.contains("arca serve"), "{err}");
    assert!(err.contains("--server"), "{err}");
}

/// The README's five-minute tour, run literally (every `sh` block of that section, in order)
/// against a real server, so the tour can never drift from what the binary does.
#[test]
fn readme_tour_works_as_written() {
    let s = Server::start();
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find("## A five-minute tour").expect("tour section");
    let rest = &readme[start + 3..];
    let tour = &rest[..rest.find("\n## ").unwrap_or(rest.len())];
    let mut script = String::from("set -euo pipefail\n");
    let bin_dir = Path::new(BIN).parent().unwrap().display().to_string();
    let mut blocks = 0;
    for (i, part) in tour.split("```").enumerate() {
        if i % 2 == 1 {
            let body = part.strip_prefix("sh\n").expect("tour code blocks are sh");
            blocks += 1;
            for line in body.lines() {
                if line.starts_with("export PATH=") {
                    script.push_str(&format!("export PATH=\"{bin_dir}:$PATH\"\n"));
                } else {
                    script.push_str(line);
                    script.push('\n');
                }
            }
        }
    }
    assert!(blocks >= 4, "found {blocks} blocks");
    // The tour names the default data directory; this server's is `data`.
    std::os::unix::fs::symlink("data", s.path("arca-data")).unwrap();
    let mut c = Command::new("bash");
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ARCA_") {
            c.env_remove(k);
        }
    }
    let out = c
        .arg("-c")
        .arg(&script)
        .env("ARCA_PROFILE_FILE", &s.profile)
        .current_dir(s.dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "tour failed\n--- script\n{script}\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("same bytes"), "{stdout}");
    assert!(stdout.contains("SUSPENDED"), "{stdout}");
    // The quorum part: the operator sees the tenants; the destruction waited for two
    // approvals and then ran.
    assert!(stdout.contains("system"), "{stdout}");
    assert!(stdout.contains("ScheduleKeyDestruction"), "{stdout}");
    assert!(stdout.contains("approved, 2/2 approvals"), "{stdout}");
    assert!(stdout.contains("executed approval request"), "{stdout}");
    assert!(
        stdout.contains("retired-key") && stdout.contains("destruction scheduled after"),
        "{stdout}"
    );
    assert!(stderr.contains("approval needed"), "{stderr}");
    assert!(stdout.contains("is intact"), "{stdout}");
    assert!(stdout.contains("Encrypt="), "{stdout}");
    assert!(
        !stdout.contains(&s.token) && !stderr.contains(&s.token),
        "the token was printed"
    );
    assert_eq!(
        std::fs::read(s.path("small.bin")).unwrap(),
        std::fs::read(s.path("small.pt")).unwrap()
    );
}

/// The profile holds a token: mode 0600. Binary output never goes to a terminal unless asked
/// (a real pseudo-terminal from `script`), and `--base64` is the way to ask.
#[test]
fn profile_mode_and_no_binary_on_a_terminal() {
    use std::os::unix::fs::PermissionsExt;
    let s = Server::start();
    let mode = std::fs::metadata(&s.profile).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "profile mode {mode:o}");
    let run_on_tty = |args: &str| -> (bool, String) {
        let mut c = Command::new("script");
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("ARCA_") {
                c.env_remove(k);
            }
        }
        let out = c
            .args(["-qec", &format!("{BIN} {args}"), "/dev/null"])
            .env("ARCA_PROFILE_FILE", &s.profile)
            .current_dir(s.dir.path())
            .stdin(Stdio::null())
            .output()
            .expect("script (util-linux) runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (ok, text) = run_on_tty("random 16");
    assert!(!ok, "binary written to a terminal: {text}");
    assert!(text.contains("terminal"), "{text}");
    let (ok, text) = run_on_tty("random 16 --base64");
    assert!(ok, "{text}");
    let line = text.trim();
    assert_eq!(line.len(), 24, "16 bytes in base64: {line:?}");
}

/// The first line of stdout, which must be the only one.
fn one_line(out: &Output) -> String {
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line on stdout: {text:?}");
    lines[0].to_string()
}

/// Tenants belong to the system operator (the `operator` profile that `arca serve` writes);
/// a tenant's admin cannot even list them. A disabled tenant's credentials stop working.
#[test]
fn tenants_as_the_operator() {
    let s = Server::start();
    let list = s.json_as("operator", &["tenant", "list"]);
    let names: Vec<&str> = list["tenants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"default") && names.contains(&"system"),
        "{names:?}"
    );
    let refused = s.run(&["tenant", "list"]);
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("ListTenants"),
        "{}",
        stderr(&refused)
    );

    // A new tenant, its admin's token saved straight into a profile (never printed).
    let out = s.ok_as(
        "operator",
        &["tenant", "create", "acme", "--save-profile", "acme"],
    );
    assert!(out.contains("created tenant acme"), "{out}");
    assert!(out.contains("profile \"acme\""), "{out}");
    let me = s.json_as("acme", &["whoami"]);
    assert_eq!(me["roles"], serde_json::json!(["tenant-admin"]));
    assert_ne!(me["tenant_id"], s.json(&["whoami"])["tenant_id"]);
    // The new tenant starts strict: one role per principal.
    let settings = s.json_as("acme", &["tenant", "settings", "show"]);
    assert_eq!(settings["allow_multiple_roles"], false);
    // Trust anchors: the operator assigns acme a client CA (here the dev CA's certificate,
    // any CA certificate will do); it belongs to acme alone; acme's admin cannot assign.
    let ca = s.dir.path().join("data/tls/ca.pem");
    let ca = ca.to_str().unwrap();
    let out = s.ok_as(
        "operator",
        &["tenant", "trust", "add", "acme", "--ca-file", ca],
    );
    assert!(out.contains("assigned ca:"), "{out}");
    let anchors = s.json_as("operator", &["tenant", "trust", "list", "acme"]);
    let anchor = anchors["anchors"][0]["id"].as_str().unwrap().to_string();
    // RFC 4514 order: the reverse of the certificate's (which holds CN, then O).
    assert_eq!(
        anchors["anchors"][0]["ca_subject"],
        "O=Arca (development only),CN=Arca dev CA"
    );
    let twice = s.run(&[
        "--profile",
        "operator",
        "tenant",
        "trust",
        "add",
        "default",
        "--ca-file",
        ca,
    ]);
    assert_eq!(code(&twice), 1);
    assert!(
        stderr(&twice).contains("another tenant"),
        "{}",
        stderr(&twice)
    );
    assert_eq!(
        code(&s.run(&[
            "--profile",
            "acme",
            "tenant",
            "trust",
            "add",
            "acme",
            "--ca-file",
            ca
        ])),
        1
    );
    let out = s.ok_as("operator", &["tenant", "trust", "remove", "acme", &anchor]);
    assert!(
        out.contains("withdrew") && out.contains("withdrawn"),
        "{out}"
    );
    assert!(s
        .ok_as("operator", &["tenant", "trust", "list", "acme"])
        .contains("no trust anchors"));
    // The same profile name again is refused before anything is created.
    let again = s.run(&[
        "--profile",
        "operator",
        "tenant",
        "create",
        "acme2",
        "--save-profile",
        "acme",
    ]);
    assert_eq!(code(&again), 1);
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert!(s
        .run(&["--profile", "operator", "tenant", "show", "acme2"])
        .status
        .code()
        .is_some_and(|c| c == 1));

    // Without --save-profile the admin's token is the only line on stdout.
    let beta = s.run(&["--profile", "operator", "tenant", "create", "beta"]);
    assert!(beta.status.success(), "{}", stderr(&beta));
    let beta_token = one_line(&beta);
    assert!(stderr(&beta).contains("shown once"), "{}", stderr(&beta));
    assert!(s.run_with_token(&beta_token, &["whoami"]).status.success());

    s.ok_as("operator", &["tenant", "disable", "beta"]);
    let shown = s.json_as("operator", &["tenant", "show", "beta"]);
    assert_eq!(shown["disabled"], true);
    assert_eq!(code(&s.run_with_token(&beta_token, &["whoami"])), 1);
    s.ok_as("operator", &["tenant", "enable", "beta"]);
    assert!(s.run_with_token(&beta_token, &["whoami"]).status.success());
    s.ok_as("operator", &["tenant", "disable", "beta"]);
    let out = s.ok_as("operator", &["tenant", "delete", "beta"]);
    assert!(out.contains("deleted tenant beta"), "{out}");
}

/// Principals, their tokens (created, listed, revoked: a revoked token fails at once),
/// profiles written by --save-profile, disabling, and certificate bindings.
#[test]
fn principals_tokens_and_bindings() {
    let s = Server::start();
    let out = s.ok(&[
        "principal",
        "create",
        "app",
        "--role",
        "crypto-user",
        "--group",
        "payments",
        "--kind",
        "service",
    ]);
    assert!(out.contains("created principal app"), "{out}");
    let app = s.json(&["principal", "show", "app"]);
    assert_eq!(app["roles"], serde_json::json!(["crypto-user"]));
    assert_eq!(app["groups"], serde_json::json!(["payments"]));
    assert_eq!(app["kind"], "service");
    assert!(s.ok(&["principal", "list"]).contains("app"));
    // A role the server does not know is refused by the CLI already.
    let bad = s.run(&["principal", "create", "x", "--role", "superuser"]);
    assert_eq!(code(&bad), 1);

    // A token, printed once and alone on stdout, works at once.
    let created = s.run(&[
        "token",
        "create",
        "app",
        "--name",
        "ci",
        "--expires-in",
        "3600",
    ]);
    assert!(created.status.success(), "{}", stderr(&created));
    let token = one_line(&created);
    assert!(stderr(&created).contains("expires"), "{}", stderr(&created));
    let me = s.run_with_token(&token, &["--output", "json", "whoami"]);
    assert!(me.status.success(), "{}", stderr(&me));
    let me: serde_json::Value = serde_json::from_slice(&me.stdout).unwrap();
    assert_eq!(me["principal"], "app");

    // Listed (metadata only), then revoked: it stops working.
    let tokens = s.json(&["token", "list", "--principal", "app"]);
    let list = tokens["tokens"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{tokens}");
    assert_eq!(list[0]["name"], "ci");
    assert!(
        !tokens.to_string().contains(&token),
        "a token's secret was listed"
    );
    let id = list[0]["id"].as_str().unwrap().to_string();
    let table = s.ok(&["token", "list"]);
    assert!(table.contains(&id) && table.contains("app"), "{table}");
    let out = s.ok(&["token", "revoke", &id]);
    assert!(
        out.contains("revoked token") && out.contains("app"),
        "{out}"
    );
    let refused = s.run_with_token(&token, &["whoami"]);
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("not valid"),
        "{}",
        stderr(&refused)
    );
    let tokens = s.json(&["token", "list", "--principal", "app"]);
    assert!(!tokens["tokens"][0]["revoked_at"].is_null(), "{tokens}");

    // --save-profile: the token goes to a profile and never to the terminal.
    let out = s.ok(&["token", "create", "app", "--save-profile", "app"]);
    assert!(out.contains("profile \"app\""), "{out}");
    assert_eq!(s.json_as("app", &["whoami"])["principal"], "app");
    let text = std::fs::read_to_string(&s.profile).unwrap();
    assert!(text.contains("[profiles.app]"), "{text}");
    // An existing profile is not replaced without --force, and no token is issued for it.
    let again = s.run(&["token", "create", "app", "--save-profile", "app"]);
    assert_eq!(code(&again), 1);
    let tokens = s.json(&["token", "list", "--principal", "app"]);
    assert_eq!(tokens["tokens"].as_array().unwrap().len(), 2, "{tokens}");

    // A disabled principal cannot authenticate; enabled again, it can.
    let out = s.ok(&["principal", "update", "app", "--disable"]);
    assert!(out.contains("DISABLED"), "{out}");
    assert_eq!(code(&s.run(&["--profile", "app", "whoami"])), 1);
    s.ok(&["principal", "update", "app", "--enable", "--no-groups"]);
    let me = s.json_as("app", &["whoami"]);
    assert_eq!(me["groups"], serde_json::json!([]));
    // Nothing to change is a usage error.
    assert_eq!(code(&s.run(&["principal", "update", "app"])), 1);

    // A certificate binding: created, listed, deleted.
    let fp = "ab".repeat(32);
    let b = s.json(&[
        "binding",
        "create",
        "app",
        "--kind",
        "certificate-fingerprint",
        "--value",
        &fp,
    ]);
    let bid = b["id"].as_str().unwrap().to_string();
    assert_eq!(b["kind"], "certificate-fingerprint");
    let listed = s.ok(&["binding", "list"]);
    assert!(listed.contains(&fp) && listed.contains("app"), "{listed}");
    s.ok(&["binding", "delete", &bid]);
    assert!(s.ok(&["binding", "list"]).contains("no bindings"));
}

/// Key policies: replace, grant, remove, versions and rollback, each checked by what the
/// granted principal can actually do.
#[test]
fn policies_grant_show_versions_rollback() {
    let s = Server::start();
    // A principal whose role is on no key policy but the default one.
    s.ok(&["principal", "create", "app", "--role", "crypto-user"]);
    s.ok(&["token", "create", "app", "--save-profile", "app"]);
    s.ok(&["key", "create", "k"]);
    std::fs::write(s.path("pt"), b"policy test").unwrap();
    let encrypt_as_app = |s: &Server| {
        s.run(&[
            "--profile",
            "app",
            "encrypt",
            "k",
            "--in",
            "pt",
            "--out",
            "ct",
        ])
    };
    // Version 1 is the tenant's default policy: crypto-users use new keys.
    let p1 = s.json(&["policy", "show", "k"]);
    assert_eq!(p1["version"], 1);
    assert!(encrypt_as_app(&s).status.success());

    // Version 2: no statements; app can no longer use the key.
    std::fs::write(s.path("empty.json"), br#"{"statements": []}"#).unwrap();
    let out = s.ok(&["policy", "set", "k", "--file", "empty.json"]);
    assert!(out.contains("policy version 2"), "{out}");
    let refused = encrypt_as_app(&s);
    assert_eq!(code(&refused), 1);
    assert!(stderr(&refused).contains("Encrypt"), "{}", stderr(&refused));

    // Version 3: grant app Encrypt only.
    let out = s.ok(&[
        "policy",
        "grant",
        "k",
        "--to",
        "principal:app",
        "--action",
        "Encrypt",
        "--sid",
        "app-encrypts",
    ]);
    assert!(out.contains("policy version 3"), "{out}");
    assert!(encrypt_as_app(&s).status.success());
    let decrypt = s.run(&["--profile", "app", "decrypt", "--in", "ct", "--out", "pt2"]);
    assert_eq!(code(&decrypt), 1);
    let shown = s.ok(&["policy", "show", "k"]);
    assert!(
        shown.contains("principal:app") && shown.contains("app-encrypts"),
        "{shown}"
    );

    // Version 4: a deny wins over the allow.
    s.ok(&[
        "policy",
        "grant",
        "k",
        "--to",
        "group:none",
        "--to",
        "principal:app",
        "--action",
        "Encrypt",
        "--deny",
        "--sid",
        "no",
    ]);
    assert_eq!(code(&encrypt_as_app(&s)), 1);
    // Version 5: that deny removed again by its sid.
    s.ok(&["policy", "remove", "k", "--sid", "no"]);
    assert!(encrypt_as_app(&s).status.success());
    assert_eq!(code(&s.run(&["policy", "remove", "k", "--sid", "no"])), 1);

    let versions = s.json(&["policy", "versions", "k"]);
    let vs = versions["versions"].as_array().unwrap();
    assert_eq!(vs.len(), 5, "{versions}");
    assert_eq!(vs[0]["version"], 5, "newest first");
    assert!(s.ok(&["policy", "versions", "k"]).contains("SET BY"));

    // Roll back to version 2 (no statements), as a new version 6.
    let out = s.ok(&["policy", "rollback", "k", "2"]);
    assert!(out.contains("policy version 6"), "{out}");
    let p6 = s.json(&["policy", "show", "k"]);
    assert_eq!(p6["statements"], serde_json::json!([]));
    assert_eq!(code(&encrypt_as_app(&s)), 1);

    // What `policy show --output json` prints can be given back to `policy set`.
    std::fs::write(s.path("p1.json"), p1.to_string()).unwrap();
    s.ok(&["policy", "set", "k", "--file", "p1.json"]);
    assert!(encrypt_as_app(&s).status.success());
}

/// M-of-N approval end to end: an operation that needs approval exits 3 with the request id
/// on stdout; approvers vote; only the requester executes, once; deny and cancel end a
/// request; clearing the rule lets the operation through again.
#[test]
fn approvals_end_to_end() {
    let s = Server::start();
    let out = require_approval(&s, "ScheduleKeyDestruction", 2);
    assert!(
        out.contains("ScheduleKeyDestruction now needs 2 approvals"),
        "{out}"
    );
    let settings = s.json(&["tenant", "settings"]);
    assert_eq!(settings["approval_rules"][0]["approvals"], 2);
    // The same rule again replaces it rather than stacking a second one.
    require_approval(&s, "ScheduleKeyDestruction", 2);
    let settings = s.json(&["tenant", "settings", "show"]);
    assert_eq!(settings["approval_rules"].as_array().unwrap().len(), 1);

    for who in ["alice", "bob"] {
        s.ok(&["principal", "create", who, "--role", "approver"]);
        s.ok(&["token", "create", who, "--save-profile", who]);
    }
    s.ok(&["key", "create", "old"]);
    s.ok(&["key", "suspend", "old"]);

    // The request: exit 3, the id alone on stdout, the next steps on stderr.
    let asked = s.run(&["key", "schedule-destruction", "old", "--days", "7"]);
    assert_eq!(code(&asked), 3, "{}", stderr(&asked));
    let id = one_line(&asked);
    assert_eq!(id.len(), 36, "a UUID: {id:?}");
    let err = stderr(&asked);
    assert!(err.contains("approval needed"), "{err}");
    assert!(
        err.contains(&format!("arca approval execute {id}")),
        "{err}"
    );
    let described = s.json(&["key", "describe", "old"]);
    assert!(described["destroy_after"].is_null(), "nothing done yet");

    let pending = s.json(&["approval", "list", "--status", "pending"]);
    assert_eq!(pending["approvals"][0]["id"], id.as_str());
    assert!(s.ok(&["approval", "list"]).contains("0/2"));

    // The requester cannot vote; a missing vote keeps execute waiting (exit 3 again).
    assert_eq!(code(&s.run(&["approval", "approve", &id])), 1);
    let out = s.ok_as(
        "alice",
        &["approval", "approve", &id, "--comment", "OPS-42"],
    );
    assert!(out.contains("1/2"), "{out}");
    assert_eq!(code(&s.run_with_token("x", &["approval", "show", &id])), 1);
    let early = s.run(&["approval", "execute", &id]);
    assert_eq!(code(&early), 3, "{}", stderr(&early));
    assert_eq!(one_line(&early), id);
    // Nobody votes twice.
    assert_eq!(
        code(&s.run(&["--profile", "alice", "approval", "approve", &id])),
        1
    );
    let out = s.ok_as("bob", &["approval", "approve", &id]);
    assert!(
        out.contains("approved, 2/2") && out.contains("execute"),
        "{out}"
    );
    let shown = s.json(&["approval", "show", &id]);
    assert_eq!(shown["status"], "approved");
    assert_eq!(shown["votes"].as_array().unwrap().len(), 2);
    assert_eq!(shown["votes"][0]["comment"], "OPS-42");

    // Only the requester executes, and only once.
    assert_eq!(
        code(&s.run(&["--profile", "alice", "approval", "execute", &id])),
        1
    );
    let out = s.ok(&["approval", "execute", &id]);
    assert!(out.contains("destruction scheduled after"), "{out}");
    let described = s.json(&["key", "describe", "old"]);
    assert!(!described["destroy_after"].is_null(), "{described}");
    let twice = s.run(&["approval", "execute", &id]);
    assert_eq!(code(&twice), 1);
    assert!(stderr(&twice).contains("once"), "{}", stderr(&twice));
    s.ok(&["key", "cancel-destruction", "old"]);

    // JSON mode: the id in an object, same exit status. One deny refuses the request.
    let asked = s.run(&["--output", "json", "key", "schedule-destruction", "old"]);
    assert_eq!(code(&asked), 3);
    let v: serde_json::Value = serde_json::from_slice(&asked.stdout).unwrap();
    assert_eq!(v["code"], "needs_approval");
    let denied_id = v["approval_request_id"].as_str().unwrap().to_string();
    s.ok_as(
        "bob",
        &["approval", "deny", &denied_id, "--comment", "not yet"],
    );
    assert_eq!(
        s.json(&["approval", "show", &denied_id])["status"],
        "denied"
    );
    assert_eq!(code(&s.run(&["approval", "execute", &denied_id])), 1);

    // The requester can withdraw a pending request.
    let asked = s.run(&["key", "schedule-destruction", "old"]);
    let cancel_id = one_line(&asked);
    let out = s.ok(&["approval", "cancel", &cancel_id]);
    assert!(out.contains("cancelled"), "{out}");
    let cancelled = s.json(&["approval", "list", "--status", "cancelled"]);
    assert_eq!(cancelled["approvals"].as_array().unwrap().len(), 1);

    // Without the rule, the operation runs at once.
    s.ok(&[
        "tenant",
        "settings",
        "clear-approval",
        "--action",
        "ScheduleKeyDestruction",
    ]);
    let direct = s.json(&["key", "schedule-destruction", "old"]);
    assert!(!direct["destroy_after"].is_null(), "{direct}");
}

/// Sessions: `arca login --save-profile` writes an access and a refresh token, `--refresh`
/// continues the session, `arca logout` ends it and clears the profile's tokens.
#[test]
fn login_refresh_and_logout() {
    let s = Server::start();
    let out = s.ok(&["login", "--save-profile", "session"]);
    assert!(out.contains("profile \"session\""), "{out}");
    let me = s.json_as("session", &["whoami"]);
    assert_eq!(me["principal"], "admin");
    assert_eq!(me["credential"], "session");
    let text = std::fs::read_to_string(&s.profile).unwrap();
    assert!(text.contains("refresh_token"), "{text}");
    s.ok_as("session", &["login", "--refresh"]);
    assert_eq!(s.json_as("session", &["whoami"])["credential"], "session");
    let out = s.ok_as("session", &["logout"]);
    assert!(out.contains("logged out"), "{out}");
    assert_eq!(code(&s.run(&["--profile", "session", "whoami"])), 1);
    // Logging out with an API token is refused: there is no session to end.
    assert_eq!(code(&s.run(&["logout"])), 1);
}

/// Approved operations that answer with a secret: an export writes its material only to
/// `--out` (asked for before the approval is spent), and an approved API token is saved to
/// a profile with `--save-profile`.
#[test]
fn approved_export_and_token_are_handed_over_once() {
    let s = Server::start();
    for who in ["alice", "bob"] {
        s.ok(&["principal", "create", who, "--role", "approver"]);
        s.ok(&["token", "create", who, "--save-profile", who]);
    }
    s.ok(&[
        "tenant",
        "settings",
        "require-approval",
        "--action",
        "ExportKey",
        "--action",
        "CreateApiToken",
        "--approvals",
        "1",
    ]);
    let rules = s.json(&["tenant", "settings"]);
    assert_eq!(
        rules["approval_rules"][0]["actions"],
        serde_json::json!(["ExportKey", "CreateApiToken"])
    );

    s.ok(&["key", "create", "exp", "--extractable"]);
    let asked = s.run(&["key", "export", "exp", "--out", "never.bin"]);
    assert_eq!(code(&asked), 3, "{}", stderr(&asked));
    assert!(!s.path("never.bin").exists());
    let id = one_line(&asked);
    s.ok_as("alice", &["approval", "approve", &id]);
    // No --out: refused before the approval is spent.
    let refused = s.run(&["approval", "execute", &id]);
    assert_eq!(code(&refused), 1);
    assert!(stderr(&refused).contains("--out"), "{}", stderr(&refused));
    assert_eq!(s.json(&["approval", "show", &id])["status"], "approved");
    let out = s.json(&["approval", "execute", &id, "--out", "key.bin"]);
    assert!(out.get("material").is_none(), "material in the JSON: {out}");
    assert_eq!(std::fs::read(s.path("key.bin")).unwrap().len(), 32);

    // An approved token: saved to a profile on execute, never printed.
    s.ok(&["principal", "create", "app", "--role", "crypto-user"]);
    let asked = s.run(&["token", "create", "app"]);
    assert_eq!(code(&asked), 3, "{}", stderr(&asked));
    let id = one_line(&asked);
    s.ok_as("bob", &["approval", "approve", &id]);
    let wrong = s.run(&["approval", "execute", &id, "--out", "x"]);
    assert_eq!(code(&wrong), 1);
    let out = s.ok(&["approval", "execute", &id, "--save-profile", "app"]);
    assert!(out.contains("profile \"app\""), "{out}");
    assert_eq!(s.json_as("app", &["whoami"])["principal"], "app");
}

/// Runs `arca init` in `dir` (data dir `<dir>/<data>`, profile file `<dir>/profile.toml`).
/// An RSA key pair for a custodian: `<dir>/<name>.key.pem` (private) and
/// `<dir>/<name>.pub.pem` (SPKI "PUBLIC KEY"), made with openssl when it is installed,
/// else with aws-lc-rs (then the private key file holds PKCS#8 DER).
fn custodian_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let key = dir.join(format!("{name}.key.pem"));
    let public = dir.join(format!("{name}.pub.pem"));
    if have_openssl() {
        let st = Command::new("openssl")
            .args([
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
            ])
            .arg(&key)
            .output()
            .unwrap();
        assert!(st.status.success(), "{}", stderr(&st));
        let st = Command::new("openssl")
            .args(["pkey", "-pubout", "-in"])
            .arg(&key)
            .arg("-out")
            .arg(&public)
            .output()
            .unwrap();
        assert!(st.status.success(), "{}", stderr(&st));
    } else {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
        let k = aws_lc_rs::rsa::PrivateDecryptingKey::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .unwrap();
        let der: PublicKeyX509Der = k.public_key().as_der().unwrap();
        let pem = pem::encode(&pem::Pem::new("PUBLIC KEY", der.as_ref().to_vec()));
        std::fs::write(&public, pem).unwrap();
        let p8: Pkcs8V1Der = k.as_der().unwrap();
        std::fs::write(&key, p8.as_ref()).unwrap();
    }
    (key, public)
}

fn have_openssl() -> bool {
    Command::new("openssl")
        .arg("version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Decrypts a `.share.enc` file as a custodian would (openssl pkeyutl, RSA-OAEP-SHA-256).
fn decrypt_share(enc: &Path, key: &Path, work: &Path) -> Vec<u8> {
    use base64::Engine;
    let text = std::fs::read_to_string(enc).unwrap();
    let ct = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .expect("an encrypted share is base64");
    if have_openssl() {
        let ct_file = work.join("share.ct");
        std::fs::write(&ct_file, &ct).unwrap();
        let out = Command::new("openssl")
            .args(["pkeyutl", "-decrypt", "-inkey"])
            .arg(key)
            .args([
                "-pkeyopt",
                "rsa_padding_mode:oaep",
                "-pkeyopt",
                "rsa_oaep_md:sha256",
                "-pkeyopt",
                "rsa_mgf1_md:sha256",
                "-in",
            ])
            .arg(&ct_file)
            .output()
            .unwrap();
        assert!(out.status.success(), "openssl: {}", stderr(&out));
        out.stdout
    } else {
        use aws_lc_rs::rsa::{
            OaepPrivateDecryptingKey, PrivateDecryptingKey, OAEP_SHA256_MGF1SHA256,
        };
        let k = PrivateDecryptingKey::from_pkcs8(&std::fs::read(key).unwrap()).unwrap();
        let k = OaepPrivateDecryptingKey::new(k).unwrap();
        let mut buf = vec![0u8; ct.len()];
        k.decrypt(&OAEP_SHA256_MGF1SHA256, &ct, &mut buf, None)
            .unwrap()
            .to_vec()
    }
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn shamir_init_unseal_seal_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let (carol_key, carol_pub) = custodian_key(dir.path(), "carol");
    let custodians = vec![
        "alice".to_string(),
        "bob".to_string(),
        format!("carol={}", carol_pub.display()),
    ];
    let out = run_init(dir.path(), "data", "shares", &custodians);
    assert!(out.status.success(), "arca init failed: {}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("2-of-3"), "{text}");
    assert!(text.contains("SEALED"), "{text}");
    assert!(text.contains("WARNING: a PLAINTEXT share file"), "{text}");
    for f in ["alice.share", "bob.share", "carol.share.enc"] {
        assert!(text.contains(f), "{f} not named: {text}");
    }
    let shares = dir.path().join("shares");
    let alice = std::fs::read_to_string(shares.join("alice.share")).unwrap();
    let bob = std::fs::read_to_string(shares.join("bob.share")).unwrap();
    assert!(alice.starts_with("arca-share-v1:"), "{alice}");
    assert!(!shares.join("carol.share").exists());
    let carol_enc = std::fs::read_to_string(shares.join("carol.share.enc")).unwrap();
    assert!(!carol_enc.starts_with("arca-share-v1:"));
    // Share text never on stdout.
    assert!(!text.contains(alice.trim()) && !text.contains(bob.trim()));
    #[cfg(unix)]
    for f in ["alice.share", "bob.share", "carol.share.enc"] {
        assert_eq!(mode(&shares.join(f)), 0o600, "{f}");
    }
    // The profiles exist, and their CA file too (init made the dev TLS files).
    let profile = std::fs::read_to_string(dir.path().join("profile.toml")).unwrap();
    assert!(profile.contains("[profiles.default]") && profile.contains("[profiles.operator]"));
    assert!(profile.contains("https://127.0.0.1:8443"), "{profile}");
    assert!(dir.path().join("data/tls/ca.pem").exists());

    // A share file is never overwritten: refused before a root key is made.
    let again = run_init(dir.path(), "data2", "shares", &custodians);
    assert_eq!(code(&again), 1);
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        std::fs::read_to_string(shares.join("alice.share")).unwrap(),
        alice
    );

    // The server starts sealed; serve points both profiles at its address.
    let s = Server::start_in(dir);
    let st = s.json(&["status"]);
    assert_eq!(st["sealed"], true, "{st}");
    assert_eq!(st["mode"], "shamir");
    assert_eq!(st["threshold"], 2);
    assert_eq!(st["shares"], 3);
    assert_eq!(st["progress"], 0);
    let table = s.ok(&["status"]);
    assert!(table.contains("shamir"), "{table}");
    let refused = s.run(&["key", "list"]);
    assert_eq!(code(&refused), 1);
    assert!(stderr(&refused).contains("sealed"), "{}", stderr(&refused));

    // One share: still sealed. The share is never printed.
    let out = s.ok(&["unseal", "--share-file", "shares/alice.share"]);
    assert!(
        out.contains("1 of 2 shares; still sealed; submitted by alice"),
        "{out}"
    );
    assert!(!out.contains(alice.trim()));
    // The same share twice: refused.
    let dup = s.run(&["unseal", "--share-file", "shares/alice.share"]);
    assert_eq!(code(&dup), 1);
    assert!(!stderr(&dup).contains(alice.trim()));
    // The encrypted file as such: a clear message, nothing sent.
    let enc = s.run(&["unseal", "--share-file", "shares/carol.share.enc"]);
    assert_eq!(code(&enc), 1);
    assert!(stderr(&enc).contains("decrypt"), "{}", stderr(&enc));
    assert_eq!(s.json(&["status"])["progress"], 1);

    // Carol decrypts her share and pipes it in.
    let carol = decrypt_share(&s.path("shares/carol.share.enc"), &carol_key, s.dir.path());
    assert!(carol.starts_with(b"arca-share-v1:"));
    let out = s.run_stdin(&["unseal"], &carol);
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert_eq!(printed.trim(), "unsealed");
    assert!(!printed.contains(std::str::from_utf8(&carol).unwrap().trim()));
    assert_eq!(s.json(&["status"])["sealed"], false);
    // Unsealed: the client commands work.
    s.ok(&["key", "create", "k1"]);
    assert_eq!(s.json(&["key", "describe", "k1"])["name"], "k1");
    // Already unsealed: another share is refused.
    let late = s.run_stdin(&["unseal", "--share-stdin"], bob.as_bytes());
    assert_eq!(code(&late), 1);
    assert!(!stderr(&late).contains(bob.trim()));

    // Rekey: an operator alone cannot re-share the root key. A tenant admin cannot even
    // start; a threshold of 1 and a custodian without a public key are refused.
    let (zed_key, zed_pub) = custodian_key(s.dir.path(), "zed");
    let (yan_key, yan_pub) = custodian_key(s.dir.path(), "yan");
    let zed_arg = format!("zed={}", zed_pub.display());
    let yan_arg = format!("yan={}", yan_pub.display());
    let start = [
        "rekey",
        "start",
        "--threshold",
        "2",
        "--custodian",
        &zed_arg,
        "--custodian",
        &yan_arg,
    ];
    let denied = s.run(&start);
    assert_eq!(code(&denied), 1, "a tenant admin started a rekey");
    let one = s.run(&[
        "--profile",
        "operator",
        "rekey",
        "start",
        "--threshold",
        "1",
        "--custodian",
        &zed_arg,
    ]);
    assert_eq!(code(&one), 1, "threshold 1 accepted");
    assert!(stderr(&one).contains("threshold"), "{}", stderr(&one));
    let nokey = s.run(&[
        "--profile",
        "operator",
        "rekey",
        "start",
        "--threshold",
        "2",
        "--custodian",
        "zed",
        "--custodian",
        &yan_arg,
    ]);
    assert_eq!(code(&nokey), 1);
    assert!(stderr(&nokey).contains("PUBKEY"), "{}", stderr(&nokey));
    let started = s.json_as("operator", &start);
    let nonce = started["attempt"]["nonce"].as_str().unwrap().to_string();
    assert_eq!(started["attempt"]["required"], 2);
    // The plan, for the custodians to check (no token needed); nothing changed yet.
    let plan = s.ok(&["rekey", "status"]);
    assert!(
        plan.contains(&nonce) && plan.contains("zed") && plan.contains("yan"),
        "{plan}"
    );
    assert!(plan.contains("0 of 2 current shares"), "{plan}");
    // A custodian who was given another nonce approves nothing.
    let other = s.run(&[
        "rekey",
        "share",
        "--nonce",
        "0000",
        "--share-file",
        "shares/alice.share",
    ]);
    assert_eq!(code(&other), 1);
    assert!(stderr(&other).contains("nonce"), "{}", stderr(&other));
    let out = s.ok(&[
        "rekey",
        "share",
        "--nonce",
        &nonce,
        "--share-file",
        "shares/alice.share",
    ]);
    assert!(
        out.contains("1 of 2 current shares presented (by alice)"),
        "{out}"
    );
    assert!(!out.contains(alice.trim()));
    let out = s.run_stdin(
        &[
            "rekey",
            "share",
            "--nonce",
            &nonce,
            "--share-stdin",
            "--out-dir",
            "shares-new",
        ],
        bob.as_bytes(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = String::from_utf8(out.stdout).unwrap();
    assert!(printed.contains("rekey complete"), "{printed}");
    assert!(printed.contains("2-of-2"), "{printed}");
    assert!(!printed.contains(bob.trim()));
    for f in ["zed.share.enc", "yan.share.enc"] {
        let p = s.path(&format!("shares-new/{f}"));
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(!text.starts_with("arca-share-v1:"), "{f} in clear");
        #[cfg(unix)]
        assert_eq!(mode(&p), 0o600, "{f}");
    }
    assert!(!s.path("shares-new/zed.share").exists());
    // The encrypted shares can be fetched again; files are never overwritten.
    s.ok(&["rekey", "status", "--out-dir", "shares-again"]);
    assert!(s.path("shares-again/yan.share.enc").exists());
    let again = s.run(&["rekey", "status", "--out-dir", "shares-again"]);
    assert_eq!(code(&again), 1);

    // Seal: only the operator.
    let denied = s.run(&["seal"]);
    assert_eq!(code(&denied), 1, "a tenant admin sealed the server");
    let out = s.ok(&["seal", "--profile", "operator"]);
    assert!(out.contains("sealed"), "{out}");
    assert_eq!(s.json(&["status"])["sealed"], true);
    assert_eq!(s.json(&["status"])["progress"], 0);
    // The old share is refused; zed and yan (decrypting theirs) unseal now.
    let old_share = s.run(&["unseal", "--share-file", "shares/alice.share"]);
    assert_eq!(code(&old_share), 1);
    let zed = decrypt_share(&s.path("shares-new/zed.share.enc"), &zed_key, s.dir.path());
    let yan = decrypt_share(&s.path("shares-new/yan.share.enc"), &yan_key, s.dir.path());
    s.run_stdin(&["unseal"], &zed);
    let out = s.run_stdin(&["unseal"], &yan);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "unsealed");
    assert_eq!(s.json(&["key", "describe", "k1"])["name"], "k1");

    // Init again on the same data dir: refused, clearly.
    let mut s = s;
    let _ = s.child.kill();
    let _ = s.child.wait();
    let again = run_init(s.dir.path(), "data", "shares-2", &custodians);
    assert_eq!(code(&again), 1);
    assert!(
        stderr(&again).contains("already has a root key"),
        "{}",
        stderr(&again)
    );
    assert!(!s.path("shares-2/alice.share").exists());
}

/// `arca init --threshold 1` makes one person the holder of the root key: refused, unless
/// the explicitly named dev flag says the server is a throwaway one.
#[test]
fn init_threshold_one_needs_the_dev_flag() {
    let dir = tempfile::tempdir().unwrap();
    let init = |data: &str, extra: &[&str]| {
        let mut c = clean_command(&dir.path().join("profile.toml"), dir.path());
        c.args([
            "init",
            "--data-dir",
            data,
            "--threshold",
            "1",
            "--custodian",
            "solo",
            "--out-dir",
            data,
            "--no-profile",
        ]);
        c.args(extra);
        c.stdin(Stdio::null()).output().unwrap()
    };
    let refused = init("data", &[]);
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("--dev-single-custodian"),
        "{}",
        stderr(&refused)
    );
    assert!(!dir.path().join("data/arca.db").exists(), "nothing made");
    assert!(!dir.path().join("data/solo.share").exists());
    let ok = init("dev", &["--dev-single-custodian"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(stderr(&ok).contains("WARNING"), "{}", stderr(&ok));
    assert!(dir.path().join("dev/solo.share").exists());
}

/// Runs SQL against a copy of a data directory's store (the tampering an attacker with
/// file access could do).
fn tamper(db: &Path, sql: &str) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        use sqlx::ConnectOptions;
        let mut c = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db)
            .connect()
            .await
            .unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
            .execute(&mut c)
            .await
            .unwrap();
    });
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn audit_verify_survives_a_kill_and_names_each_tampered_record() {
    let s = Server::start();
    s.ok(&["key", "create", "audited"]);
    std::fs::write(s.path("pt"), b"hello").unwrap();
    for _ in 0..3 {
        s.ok(&["encrypt", "audited", "--in", "pt", "--out", "ct"]);
    }
    let pem = s.ok(&["audit", "public-key"]);
    assert!(pem.starts_with("-----BEGIN PUBLIC KEY-----"), "{pem}");
    std::fs::write(s.path("audit.pem"), &pem).unwrap();
    let data = s.path("data");
    let data_s = data.to_str().unwrap().to_string();

    // Kill the server while requests are in flight, restart it: the trail still verifies.
    let pid = s.child.id().to_string();
    std::thread::scope(|sc| {
        for t in 0..3 {
            let s = &s;
            sc.spawn(move || {
                for _ in 0..15 {
                    let _ = s.run(&[
                        "encrypt",
                        "audited",
                        "--in",
                        "pt",
                        "--out",
                        &format!("ct{t}"),
                    ]);
                }
            });
        }
        std::thread::sleep(Duration::from_millis(800));
        let k = Command::new("kill").args(["-9", &pid]).status().unwrap();
        assert!(k.success());
    });
    let mut s = s;
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    drop(s);
    let mut s = Server::start_in(dir);
    let out = s.ok(&[
        "audit",
        "verify",
        "--data-dir",
        &data_s,
        "--public-key",
        "audit.pem",
    ]);
    assert!(out.contains("is intact"), "{out}");
    // The CLI reads the tenant's view: search and report work on the restarted server.
    let found = s.json(&[
        "audit",
        "search",
        "--operation",
        "Encrypt",
        "--outcome",
        "ok",
    ]);
    assert!(found.as_array().unwrap().len() >= 3, "{found}");
    let report = s.ok(&["audit", "report", "--key", "audited"]);
    assert!(report.contains("Encrypt="), "{report}");
    let cp = s.ok(&["audit", "checkpoint"]);
    assert!(
        cp.contains("signed checkpoint") || cp.contains("already signed"),
        "{cp}"
    );
    let head: u64 = {
        let v = s.json(&[
            "audit",
            "verify",
            "--data-dir",
            &data_s,
            "--public-key",
            "audit.pem",
        ]);
        // Only the checkpoint request's own event comes after the signed head.
        assert!(v["unsigned_tail"].as_u64().unwrap() <= 1, "{v}");
        v["last_checkpoint_seq"].as_u64().unwrap()
    };
    assert!(head > 20);

    // An export verifies as a file too (by an auditor of the system tenant).
    s.ok_as(
        "operator",
        &["principal", "create", "sys-auditor", "--role", "auditor"],
    );
    s.ok_as(
        "operator",
        &["token", "create", "sys-auditor", "--save-profile", "sysaud"],
    );
    s.ok_as("sysaud", &["audit", "export", "--out", "trail.jsonl"]);
    let out = s.ok(&[
        "audit",
        "verify",
        "--file",
        "trail.jsonl",
        "--public-key",
        "audit.pem",
    ]);
    assert!(out.contains("is intact"), "{out}");
    let text = std::fs::read_to_string(s.path("trail.jsonl")).unwrap();
    let flipped = text.replacen("\"Encrypt\"", "\"Encrypu\"", 1);
    let first_encrypt = text
        .lines()
        .find(|l| l.contains("\"Encrypt\""))
        .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .and_then(|v| v["seq"].as_u64())
        .unwrap();
    std::fs::write(s.path("bad.jsonl"), flipped).unwrap();
    let bad = s.run(&[
        "audit",
        "verify",
        "--file",
        "bad.jsonl",
        "--public-key",
        "audit.pem",
    ]);
    assert_eq!(code(&bad), 2, "{}", stderr(&bad));
    assert!(
        stderr(&bad).contains(&format!("record {first_encrypt}:")),
        "{}",
        stderr(&bad)
    );
    // Stop the server but keep its directory.
    let _keep = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    drop(s);

    // Each kind of tampering fails at the record it touched.
    let cases: Vec<(String, u64)> = vec![
        // an edited field (the outcome column is part of the compact record)
        (
            "UPDATE audit_events SET outcome = 'x' || outcome WHERE seq = 12".into(),
            12,
        ),
        // a deleted record
        ("DELETE FROM audit_events WHERE seq = 9".into(), 9),
        // an inserted record (a copy of record 3 pushed in at 15)
        (
            "UPDATE audit_events SET seq = seq + 1000000 WHERE seq >= 15; \
             UPDATE audit_events SET seq = seq - 1000000 + 1 WHERE seq >= 1000000; \
             INSERT INTO audit_events SELECT 15, at, tenant_id, principal_id, principal, operation, key_id, outcome, hash, doc FROM audit_events WHERE seq = 3"
                .into(),
            15,
        ),
        // two records swapped
        (
            "UPDATE audit_events SET seq = -1 WHERE seq = 17; \
             UPDATE audit_events SET seq = 17 WHERE seq = 18; \
             UPDATE audit_events SET seq = 18 WHERE seq = -1"
                .into(),
            17,
        ),
        // the tail cut off
        (format!("DELETE FROM audit_events WHERE seq > {}", head - 4), head - 3),
    ];
    for (i, (sql, at)) in cases.iter().enumerate() {
        let copy = tempfile::tempdir().unwrap();
        copy_dir(&data, copy.path());
        tamper(&copy.path().join("arca.db"), sql);
        let out = Command::new(BIN)
            .args(["audit", "verify", "--data-dir"])
            .arg(copy.path())
            .arg("--public-key")
            .arg(data.parent().unwrap().join("audit.pem"))
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "case {i}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("record {at}:")),
            "case {i} ({sql}): {}",
            stderr(&out)
        );
    }
    // An untouched copy still passes.
    let copy = tempfile::tempdir().unwrap();
    copy_dir(&data, copy.path());
    let out = Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(copy.path())
        .arg("--public-key")
        .arg(data.parent().unwrap().join("audit.pem"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn backup_and_restore_with_the_cli() {
    let s = Server::start();
    s.ok(&["key", "create", "kept"]);
    std::fs::write(s.path("pt"), b"keep me").unwrap();
    s.ok(&[
        "encrypt",
        "kept",
        "--in",
        "pt",
        "--out",
        "ct",
        "--context",
        "a=b",
    ]);
    // Only a system operator takes a backup.
    let denied = s.run(&["backup", "--out", "denied.arca"]);
    assert_eq!(code(&denied), 1, "{}", stderr(&denied));
    assert!(!s.path("denied.arca").exists(), "nothing left behind");
    let out = s.ok_as("operator", &["backup", "--out", "b.arca"]);
    assert!(out.contains("wrote backup"), "{out}");
    assert_eq!(mode(&s.path("b.arca")) & 0o777, 0o600);

    // A damaged file is refused with a clear message, and nothing is staged.
    let mut bytes = std::fs::read(s.path("b.arca")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x10;
    std::fs::write(s.path("bad.arca"), &bytes).unwrap();
    let bad = s.run(&[
        "restore",
        "--in",
        "bad.arca",
        "--data-dir",
        "bad-dir",
        "--unseal-key",
        "data/unseal.key",
    ]);
    assert_eq!(code(&bad), 1);
    assert!(
        stderr(&bad).contains("checksum does not match"),
        "{}",
        stderr(&bad)
    );
    assert!(!s.path("bad-dir").join("arca.db").exists());
    let whole = std::fs::read(s.path("b.arca")).unwrap();
    std::fs::write(s.path("cut.arca"), &whole[..whole.len() - 100]).unwrap();
    let cut = s.run(&[
        "restore",
        "--in",
        "cut.arca",
        "--data-dir",
        "cut-dir",
        "--unseal-key",
        "data/unseal.key",
    ]);
    assert_eq!(code(&cut), 1);
    assert!(stderr(&cut).contains("truncated"), "{}", stderr(&cut));
    // Dev custody needs its unseal-key file.
    let nokey = s.run(&["restore", "--in", "b.arca", "--data-dir", "nokey"]);
    assert!(
        stderr(&nokey).contains("--unseal-key"),
        "{}",
        stderr(&nokey)
    );

    // Staged into a new data directory, applied when a server starts on it: the old
    // ciphertext decrypts with the old token.
    let out = s.ok(&[
        "restore",
        "--in",
        "b.arca",
        "--data-dir",
        "data2",
        "--unseal-key",
        "data/unseal.key",
    ]);
    assert!(out.contains("staged"), "{out}");
    let again = s.run(&[
        "restore",
        "--in",
        "b.arca",
        "--data-dir",
        "data2",
        "--unseal-key",
        "data/unseal.key",
    ]);
    assert!(
        stderr(&again).contains("already holds a store"),
        "{}",
        stderr(&again)
    );
    std::fs::write(s.path("admin.token"), &s.token).unwrap();
    let mut s = s;
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    drop(s);
    // The new server runs on data2 (the profile file names the old server's port; the
    // restored profile tokens are the same).
    std::fs::remove_dir_all(dir.path().join("data")).unwrap();
    std::fs::rename(dir.path().join("data2"), dir.path().join("data")).unwrap();
    std::fs::remove_file(dir.path().join("profile.toml")).unwrap();
    let log = std::fs::File::create(dir.path().join("serve2.log")).unwrap();
    let mut child = Command::new(BIN)
        .env("ARCA_PROFILE_FILE", dir.path().join("profile.toml"))
        .current_dir(dir.path())
        .args(["serve", "--data-dir", "data", "--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    // Read the first line, then keep draining stdout: a closed pipe would fail the
    // server's next write.
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(60)).unwrap_or_default();
    let url = first
        .trim()
        .strip_prefix("Arca is serving on ")
        .unwrap_or_else(|| {
            let _ = child.kill();
            panic!(
                "restored server did not start: {first:?} {}",
                std::fs::read_to_string(dir.path().join("serve2.log")).unwrap_or_default()
            )
        });
    let out = Command::new(BIN)
        .env("ARCA_SERVER", url)
        .env("ARCA_CA_CERT", dir.path().join("data/tls/ca.pem"))
        .env("ARCA_TOKEN", token_of(&dir))
        .env("ARCA_PROFILE_FILE", dir.path().join("none.toml"))
        .current_dir(dir.path())
        .args(["decrypt", "--in", "ct", "--out", "pt2", "--context", "a=b"])
        .output()
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read(dir.path().join("pt2")).unwrap(), b"keep me");
}

/// The admin token of the first server (kept by the test in `admin.token`).
fn token_of(dir: &tempfile::TempDir) -> String {
    std::fs::read_to_string(dir.path().join("admin.token")).unwrap()
}

#[test]
fn bring_your_own_key_import_and_wrapped_export() {
    let s = Server::start();
    // A key waiting for material, and wrapping parameters for it.
    s.ok(&["key", "create", "byok", "--pending-import", "--extractable"]);
    let d = s.json(&["key", "describe", "byok"]);
    assert_eq!(d["pending_import"], true, "{d}");
    s.ok(&[
        "key",
        "import-params",
        "byok",
        "--wrapping-algorithm",
        "RSA_AES_KEY_WRAP_SHA_256",
        "--wrapping-key-spec",
        "RSA_2048",
        "--public-key-out",
        "wrap.pem",
        "--token-out",
        "token.bin",
    ]);
    // The material is wrapped here, on the client, under the public key.
    let material = pseudo_random(32, 77);
    let pem = std::fs::read_to_string(s.path("wrap.pem")).unwrap();
    let spki = pem::parse(pem).unwrap().contents().to_vec();
    let wrapped = arca_crypto::wrap::wrap_to_public(
        "wrap.pem",
        &spki,
        arca_crypto::wrap::RsaWrap::RsaAesKeyWrap(arca_crypto::provider::OaepHash::Sha256),
        &material,
    )
    .unwrap();
    std::fs::write(s.path("wrapped.bin"), &wrapped).unwrap();
    let out = s.ok(&[
        "key",
        "import",
        "byok",
        "--import-token",
        "token.bin",
        "--wrapped",
        "wrapped.bin",
    ]);
    assert!(out.contains("imported material into key byok"), "{out}");
    assert_eq!(s.json(&["key", "describe", "byok"])["state"], "ACTIVE");
    // Out again, wrapped under another Arca key whose material the test knows.
    let kek = pseudo_random(32, 78);
    std::fs::write(s.path("kek.bin"), &kek).unwrap();
    s.ok(&["key", "create", "kek", "--import", "kek.bin"]);
    s.ok(&[
        "key",
        "export-wrapped",
        "byok",
        "--target",
        "arca",
        "--wrapping-key",
        "kek",
        "--out",
        "out.bin",
    ]);
    let back = arca_crypto::raw::key_unwrap(&kek, true, &std::fs::read(s.path("out.bin")).unwrap())
        .unwrap();
    assert_eq!(&back[..], &material[..]);
    // And as an Azure .byok blob.
    s.ok(&[
        "key",
        "export-wrapped",
        "byok",
        "--target",
        "azure",
        "--wrapping-public-key",
        "wrap.pem",
        "--kid",
        "https://v.vault.azure.net/keys/kek/1",
        "--out",
        "key.byok",
    ]);
    let byok: serde_json::Value =
        serde_json::from_slice(&std::fs::read(s.path("key.byok")).unwrap()).unwrap();
    assert_eq!(byok["header"]["enc"], "CKM_RSA_AES_KEY_WRAP", "{byok}");
    // Deleting the material leaves the key waiting for it.
    let out = s.ok(&["key", "delete-imported-material", "byok"]);
    assert!(out.contains("waiting for an import"), "{out}");
}

#[test]
fn aws_access_key_pairs() {
    let s = Server::start();
    let out = s.ok(&["credentials", "create", "--aws", "--name", "laptop"]);
    let mut lines = out.lines();
    let id = lines
        .next()
        .and_then(|l| l.strip_prefix("aws_access_key_id = "))
        .expect("an access key id line")
        .to_string();
    let secret = lines
        .next()
        .and_then(|l| l.strip_prefix("aws_secret_access_key = "))
        .expect("a secret line");
    assert!(id.starts_with("ARCA") && id.len() == 20, "{id}");
    assert_eq!(secret.len(), 44, "256 bits, base64");
    let list = s.json(&["credentials", "list"]);
    let listed = &list["credentials"][0];
    assert_eq!(listed["access_key_id"], id.as_str());
    assert_eq!(listed["name"], "laptop");
    assert!(!list.to_string().contains(secret), "never the secret again");
    let out = s.ok(&["credentials", "revoke", &id]);
    assert!(out.contains(&id), "{out}");
    assert!(s.json(&["credentials", "list"])["credentials"][0]["revoked_at"].is_string());
}

/// An Ed25519 public key (PEM, SPKI) that no server signs with.
fn stranger_audit_key() -> String {
    use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    let mut spki = vec![
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    spki.extend_from_slice(pair.public_key().as_ref());
    pem::encode(&pem::Pem::new("PUBLIC KEY", spki))
}

/// The small gaps of issue 19, each as a user meets it: deactivation reasons in either case;
/// the tenant's shortest destruction window shown, set by a flag, and 0 destroying at once;
/// `random --output json` is JSON; the server's log file holds no colour codes; the server
/// verifies its own trail against a pinned key; one key's usage per hour; and a
/// `--source-cidr` grant that would restrict nothing is refused until the broader statement
/// is replaced, after which it does restrict.
#[test]
fn deactivation_reasons_destruction_window_random_json_audit_and_cidr_grants() {
    let s = Server::start();

    // Deactivation reasons: as the API writes them (upper case) and in lower case.
    for (key, reason) in [("d1", "EXPIRED"), ("d2", "revoked"), ("d3", "Superseded")] {
        s.ok(&["key", "create", key]);
        let v = s.json(&["key", "deactivate", key, "--reason", reason]);
        assert_eq!(v["state"], "DEACTIVATED", "{v}");
        assert_eq!(v["deactivation_reason"], reason.to_ascii_uppercase(), "{v}");
    }

    // The destruction window: 1 day by default, shown; `--days 0` refused there.
    let shown = s.ok(&["tenant", "settings", "show"]);
    assert!(
        shown.contains("Min destruction window") && shown.contains("1 day"),
        "{shown}"
    );
    let refused = s.run(&["key", "schedule-destruction", "d1", "--days", "0"]);
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("at least 1 day"),
        "{}",
        stderr(&refused)
    );
    let bad = s.run(&[
        "tenant",
        "settings",
        "set",
        "--min-destruction-window-days",
        "366",
    ]);
    assert_eq!(code(&bad), 1);
    s.ok(&[
        "tenant",
        "settings",
        "set",
        "--min-destruction-window-days",
        "0",
    ]);
    let settings = s.json(&["tenant", "settings", "show"]);
    assert_eq!(settings["min_destruction_window_days"], 0, "{settings}");
    assert!(s
        .ok(&["tenant", "settings"])
        .contains("0 days (a destruction may take effect at once)"));
    let gone = s.json(&["key", "schedule-destruction", "d1", "--days", "0"]);
    assert_eq!(gone["state"], "DESTROYED", "{gone}");

    // `random --output json`: JSON with the bytes in base64; with --out, the bytes go to
    // the file and the JSON leaves them out.
    let r = s.json(&["random", "24"]);
    let b = base64::Engine::decode(
        &base64::engine::general_purpose::STANDARD,
        r["random"].as_str().unwrap(),
    )
    .unwrap();
    assert_eq!(b.len(), 24);
    let r = s.json(&["random", "16", "--out", "r.bin"]);
    assert!(r.get("random").is_none(), "{r}");
    assert_eq!(std::fs::read(s.path("r.bin")).unwrap().len(), 16);

    // The server's log went to a file: plain text.
    let log = std::fs::read_to_string(s.path("serve.log")).unwrap();
    assert!(log.contains("INFO"), "{log}");
    assert!(
        !log.contains('\u{1b}'),
        "colour codes in the log file: {log:?}"
    );

    // One key's uses per hour (`report --series`, also `usage --series`).
    s.ok(&["key", "create", "used"]);
    std::fs::write(s.path("pt"), b"x").unwrap();
    for _ in 0..3 {
        s.ok(&["encrypt", "used", "--in", "pt", "--out", "ct"]);
    }
    let series = s.json(&["audit", "report", "--key", "used", "--series", "hour"]);
    let buckets = series["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 24, "{series}");
    let encrypts: u64 = buckets
        .iter()
        .filter_map(|b| b["by_operation"]["Encrypt"].as_u64())
        .sum();
    assert_eq!(encrypts, 3, "{series}");
    let table = s.ok(&["audit", "usage", "--key", "used", "--series", "day"]);
    assert!(
        table.contains("START") && table.contains("Encrypt="),
        "{table}"
    );
    let no_key = s.run(&["audit", "report", "--series", "hour"]);
    assert_eq!(code(&no_key), 1);
    let no_series = s.run(&[
        "audit",
        "report",
        "--key",
        "used",
        "--to",
        "2030-01-01T00:00:00Z",
    ]);
    assert_eq!(code(&no_series), 1);

    // The server verifies its own trail (auditors of the system tenant), against the
    // pinned key; another key is a failed verification (exit 2).
    std::fs::write(s.path("audit.pem"), s.ok(&["audit", "public-key"])).unwrap();
    std::fs::write(s.path("other.pem"), stranger_audit_key()).unwrap();
    s.ok_as(
        "operator",
        &["principal", "create", "sysaud", "--role", "auditor"],
    );
    s.ok_as(
        "operator",
        &["token", "create", "sysaud", "--save-profile", "sysaud"],
    );
    let out = s.ok_as(
        "sysaud",
        &[
            "audit",
            "verify",
            "--on-server",
            "--public-key",
            "audit.pem",
        ],
    );
    assert!(
        out.contains("on the server is intact") && out.contains("pinned audit key"),
        "{out}"
    );
    let v = s.json_as("sysaud", &["audit", "verify", "--on-server"]);
    assert_eq!(v["ok"], true, "{v}");
    let wrong = s.run(&[
        "--profile",
        "sysaud",
        "audit",
        "verify",
        "--on-server",
        "--public-key",
        "other.pem",
    ]);
    assert_eq!(code(&wrong), 2, "{}", stderr(&wrong));
    assert!(
        stderr(&wrong).contains("not the pinned key"),
        "{}",
        stderr(&wrong)
    );
    // A tenant's auditor cannot: the chain covers every tenant.
    let tenant = s.run(&["audit", "verify", "--on-server"]);
    assert_eq!(code(&tenant), 1);

    // A grant with --source-cidr beside the default allow-all would restrict nothing:
    // refused, naming the statement; with --replace it is the only grant, and it holds.
    s.ok(&["principal", "create", "app", "--role", "crypto-user"]);
    s.ok(&["token", "create", "app", "--save-profile", "app"]);
    s.ok(&["key", "create", "net"]);
    let encrypt_as_app = |s: &Server| {
        s.run(&[
            "--profile",
            "app",
            "encrypt",
            "net",
            "--in",
            "pt",
            "--out",
            "ct2",
        ])
    };
    assert!(encrypt_as_app(&s).status.success());
    let grant = |extra: &[&str]| {
        let mut a = vec![
            "policy",
            "grant",
            "net",
            "--to",
            "role:crypto-user",
            "--action",
            "Encrypt",
        ];
        a.extend_from_slice(extra);
        s.run(&a)
    };
    let moot = grant(&["--source-cidr", "10.0.0.0/8"]);
    assert_eq!(code(&moot), 1);
    let err = stderr(&moot);
    assert!(
        err.contains("restrict nothing")
            && err.contains("crypto-users-use-new-keys")
            && err.contains("--replace"),
        "{err}"
    );
    assert_eq!(s.json(&["policy", "show", "net"])["version"], 1);
    let unknown = grant(&["--source-cidr", "10.0.0.0/8", "--replace", "nope"]);
    assert_eq!(code(&unknown), 1);
    let replaced = grant(&[
        "--source-cidr",
        "10.0.0.0/8",
        "--replace",
        "crypto-users-use-new-keys",
    ]);
    assert!(replaced.status.success(), "{}", stderr(&replaced));
    // The client is 127.0.0.1: outside 10.0.0.0/8.
    let refused = encrypt_as_app(&s);
    assert_eq!(code(&refused), 1, "the CIDR restricted nothing");
    let policy = s.json(&["policy", "show", "net"]);
    assert_eq!(
        policy["statements"].as_array().unwrap().len(),
        1,
        "{policy}"
    );
    // From the loopback network, it works.
    s.ok(&[
        "policy",
        "grant",
        "net",
        "--to",
        "role:crypto-user",
        "--action",
        "Encrypt",
        "--source-cidr",
        "127.0.0.0/8",
    ]);
    assert!(encrypt_as_app(&s).status.success());
}
