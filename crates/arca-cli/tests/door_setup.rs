//! `arca cse setup` and `arca dke setup` against a real `arca serve`: the keys, principals
//! and grants they make are there (read back through the CLI), the configuration they print
//! is what the server's loader accepts, a second start with it serves both doors (the KACLS
//! `status` and the DKE public keys answer, and the status call is in the audit trail), a
//! second run changes nothing and says so, and bad flags are refused by name, changing
//! nothing.

use std::process::Output;

use serde_json::{json, Value};

mod common;

use common::Server;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

const CSE_FLAGS: &[&str] = &[
    "cse",
    "setup",
    "--kacls-url",
    "https://kacls.contoso.test/cse",
    "--idp-issuer",
    "https://idp.contoso.test",
    "--idp-audience",
    "kacls-client",
    "--idp-jwks-file",
    "idp-jwks.json",
    "--idp-algorithm",
    "EdDSA",
    "--allowed-domain",
    "contoso.test",
    "--google-app",
    "drive",
    "--google-app",
    "gmail",
    "--delegate-key",
    "cse-delegate",
    "--privileged-principal",
    "cse-admin",
    "--privileged-email",
    "admin@contoso.test",
];

const DKE_FLAGS: &[&str] = &[
    "dke",
    "setup",
    "--key-name",
    "confidential",
    "--key-name",
    "secret=label-secret",
    "--service-url",
    "https://dke.contoso.test",
    "--issuer",
    "https://sts.windows.net/0000-tenant/",
    "--allowed-domain",
    "contoso.test",
    "--allowed-group",
    "9a8b-group",
];

fn statement<'a>(policy: &'a Value, sid: &str) -> &'a Value {
    policy["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["sid"] == sid)
        .unwrap_or_else(|| panic!("no statement {sid}: {policy}"))
}

/// The wrapping key's statements `cse setup` writes: the door's principal and the
/// privileged one, each to encrypt and decrypt through the CSE door.
const CSE_KEK_GRANTS: &[(&str, &str, &[&str], &str)] = &[
    (
        "cse-door-cse-service",
        "cse-service",
        &["Encrypt", "Decrypt"],
        "cse",
    ),
    (
        "cse-door-cse-admin",
        "cse-admin",
        &["Encrypt", "Decrypt"],
        "cse",
    ),
];

/// The key's policy holds exactly the door statements named, each for one principal,
/// through one door, with the actions given.
fn assert_policy(s: &Server, key: &str, want: &[(&str, &str, &[&str], &str)]) {
    let p = s.json(&["policy", "show", key]);
    assert_eq!(
        p["statements"].as_array().unwrap().len(),
        want.len(),
        "only the door's statements (no default crypto-user grant): {p}"
    );
    for (sid, principal, actions, door) in want {
        let st = statement(&p, sid);
        assert_eq!(st["effect"], "allow", "{st}");
        assert_eq!(st["principals"], json!([format!("principal:{principal}")]));
        assert_eq!(st["actions"], json!(actions), "{st}");
        assert_eq!(st["conditions"], json!({"doors": [door]}), "{st}");
    }
}

fn step<'a>(v: &'a Value, object: &str, name: &str) -> Vec<&'a Value> {
    v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["object"] == object && s["name"] == name)
        .collect()
}

#[test]
fn cse_and_dke_setup_make_what_the_doors_need_and_print_a_configuration_that_serves() {
    let s = Server::start();
    // The IdP's JWKS is a file on the server; its keys do not matter to the setup.
    std::fs::write(s.path("idp-jwks.json"), r#"{"keys": []}"#).unwrap();

    // Bad flags are refused by name, before anything changes.
    let mut no_users: Vec<&str> = CSE_FLAGS
        .iter()
        .copied()
        .filter(|f| *f != "--allowed-domain" && *f != "contoso.test")
        .collect();
    no_users.extend(["--key", "never-made"]);
    let out = s.run(&no_users);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("--allowed-email"), "{}", stderr(&out));
    let mut http: Vec<&str> = CSE_FLAGS.to_vec();
    http[3] = "http://kacls.contoso.test/cse";
    let out = s.run(&http);
    assert!(stderr(&out).contains("--kacls-url"), "{}", stderr(&out));
    let mut bad_alg: Vec<&str> = CSE_FLAGS.to_vec();
    bad_alg[11] = "HS256";
    let out = s.run(&bad_alg);
    assert!(stderr(&out).contains("--idp-algorithm"), "{}", stderr(&out));
    let mut bad_name: Vec<&str> = CSE_FLAGS.to_vec();
    bad_name.extend(["--principal", "bad name"]);
    let out = s.run(&bad_name);
    assert!(
        stderr(&out).contains("--principal \"bad name\""),
        "{}",
        stderr(&out)
    );
    // A key of another spec under the name is not taken over.
    s.ok(&["key", "create", "taken", "--spec", "RSA_2048"]);
    let mut taken: Vec<&str> = CSE_FLAGS.to_vec();
    taken.extend(["--key", "taken", "--principal", "not-made"]);
    let out = s.run(&taken);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("--key taken") && stderr(&out).contains("AES_256"),
        "{}",
        stderr(&out)
    );
    assert!(s.run(&["principal", "show", "not-made"]).status.code() == Some(1));
    assert!(s.run(&["key", "describe", "never-made"]).status.code() == Some(1));

    // CSE: the first run makes everything.
    let first = s.json(CSE_FLAGS);
    assert_eq!(first["changed"], true, "{first}");
    assert_eq!(first["tenant"], "default");
    for (object, name) in [
        ("principal", "cse-service"),
        ("principal", "cse-admin"),
        ("key", "cse-kek"),
        ("key", "cse-delegate"),
    ] {
        assert_eq!(
            step(&first, object, name)[0]["result"],
            "created",
            "{first}"
        );
    }
    assert_eq!(
        first["google_admin_console"]["kacls_url"],
        "https://kacls.contoso.test/cse"
    );
    let kek = s.json(&["key", "describe", "cse-kek"]);
    assert_eq!(kek["spec"], "AES_256");
    assert_eq!(kek["usage"], json!(["ENCRYPT_DECRYPT"]));
    let del = s.json(&["key", "describe", "cse-delegate"]);
    assert_eq!(del["spec"], "ED25519");
    assert_eq!(del["usage"], json!(["SIGN"]));
    for p in ["cse-service", "cse-admin"] {
        let v = s.json(&["principal", "show", p]);
        assert_eq!(v["roles"], json!(["crypto-user"]), "{v}");
        assert_eq!(v["kind"], "service", "{v}");
    }
    assert_policy(&s, "cse-kek", CSE_KEK_GRANTS);
    assert_policy(
        &s,
        "cse-delegate",
        &[(
            "cse-door-cse-service",
            "cse-service",
            &["Sign", "GetPublicKey"],
            "cse",
        )],
    );
    let cse_config = first["config"].as_str().unwrap().to_string();
    let parsed: arca_server::config::Config = toml::from_str(&cse_config).unwrap();
    parsed.validate_delegated_doors().unwrap();
    let access = parsed.cse.access.as_ref().unwrap();
    assert_eq!(
        (access.tenant.as_str(), access.principal.as_str()),
        ("default", "cse-service")
    );
    assert_eq!(parsed.cse.delegate_key.as_deref(), Some("cse-delegate"));
    assert_eq!(
        parsed.cse.privileged.as_ref().unwrap().allowed_emails,
        ["admin@contoso.test"]
    );
    assert_eq!(
        parsed.cse.authorization_issuers,
        [
            "gsuitecse-tokenissuer-drive@system.gserviceaccount.com",
            "gsuitecse-tokenissuer-gmail@system.gserviceaccount.com"
        ]
    );
    assert_eq!(parsed.service.jwt_issuers.len(), 4, "{cse_config}");

    // A second run changes nothing and says so, with the same configuration.
    let versions = s.json(&["policy", "versions", "cse-kek"]);
    let again = s.json(CSE_FLAGS);
    assert_eq!(again["changed"], false, "{again}");
    assert!(
        again["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|st| st["result"] == "unchanged"),
        "{again}"
    );
    assert_eq!(again["config"], first["config"]);
    assert_eq!(s.json(&["policy", "versions", "cse-kek"]), versions);
    let text = s.ok(CSE_FLAGS);
    assert!(text.contains("nothing changed"), "{text}");
    assert!(text.contains("[cse.access]"), "{text}");
    assert!(text.contains("https://kacls.contoso.test/cse"), "{text}");

    // A grant taken away is put back, and only it.
    s.ok(&["policy", "remove", "cse-kek", "--sid", "cse-door-cse-admin"]);
    let repaired = s.json(CSE_FLAGS);
    assert_eq!(repaired["changed"], true);
    let grants = step(&repaired, "grant", "cse-kek");
    assert!(
        grants.iter().any(
            |g| g["result"] == "created" && g["detail"].as_str().unwrap().contains("cse-admin")
        ),
        "{repaired}"
    );
    assert_policy(&s, "cse-kek", CSE_KEK_GRANTS);

    // DKE: an RSA-2048 decrypt key per name (one made, one that exists with the tenant's
    // default policy), the door principal, its grants.
    s.ok(&[
        "key",
        "create",
        "label-secret",
        "--spec",
        "RSA_2048",
        "--usage",
        "DECRYPT",
    ]);
    let dke = s.json(DKE_FLAGS);
    assert_eq!(dke["changed"], true, "{dke}");
    assert_eq!(step(&dke, "key", "label-secret")[0]["result"], "unchanged");
    assert_eq!(step(&dke, "grant", "label-secret")[0]["result"], "created");
    assert!(
        dke["warnings"].as_array().unwrap().iter().any(|w| {
            let w = w.as_str().unwrap();
            w.contains("label-secret") && w.contains("crypto-users-use-new-keys")
        }),
        "the default statement that lets every crypto-user use the key is pointed out: {dke}"
    );
    let p = s.json(&["policy", "show", "label-secret"]);
    let st = statement(&p, "dke-door-dke-service");
    assert_eq!(st["actions"], json!(["Decrypt", "GetPublicKey"]));
    assert_eq!(st["conditions"], json!({"doors": ["dke"]}));
    s.ok(&[
        "policy",
        "remove",
        "label-secret",
        "--sid",
        "crypto-users-use-new-keys",
    ]);
    for key in ["dke-confidential", "label-secret"] {
        let k = s.json(&["key", "describe", key]);
        assert_eq!(k["spec"], "RSA_2048", "{k}");
        assert_eq!(k["usage"], json!(["DECRYPT"]), "{k}");
        assert_policy(
            &s,
            key,
            &[(
                "dke-door-dke-service",
                "dke-service",
                &["Decrypt", "GetPublicKey"],
                "dke",
            )],
        );
    }
    assert_eq!(
        dke["purview"]["key_urls"],
        json!([
            {"name": "confidential", "url": "https://dke.contoso.test/dke/confidential"},
            {"name": "secret", "url": "https://dke.contoso.test/dke/secret"}
        ])
    );
    let dke_config = dke["config"].as_str().unwrap().to_string();
    let parsed: arca_server::config::Config = toml::from_str(&dke_config).unwrap();
    parsed.validate_delegated_doors().unwrap();
    assert_eq!(parsed.dke.keys.len(), 2);
    assert_eq!(
        parsed.service.jwt_issuers[0].jwks_url.as_deref(),
        Some("https://login.microsoftonline.com/0000-tenant/discovery/keys")
    );
    assert_eq!(
        parsed.service.jwt_issuers[0].audience,
        "https://dke.contoso.test"
    );
    let dke_again = s.json(DKE_FLAGS);
    assert_eq!(dke_again["changed"], false, "{dke_again}");
    assert!(s.ok(DKE_FLAGS).contains("nothing changed"));

    // Both printed sections pasted into one file: a second start serves both doors.
    let file = format!("{cse_config}\n{dke_config}");
    std::fs::write(s.path("arca.toml"), &file).unwrap();
    let both: arca_server::config::Config = toml::from_str(&file).unwrap();
    both.validate_delegated_doors().unwrap();
    let mut s = s;
    let dir = std::mem::replace(&mut s.dir, tempfile::tempdir().unwrap());
    drop(s);
    let config = dir.path().join("arca.toml");
    let s = Server::start_with_env(dir, &[("ARCA_CONFIG", config.to_str().unwrap())]);
    let profile: toml::Table =
        toml::from_str(&std::fs::read_to_string(&s.profile).unwrap()).unwrap();
    let default = &profile["profiles"]["default"];
    let url = default["server"].as_str().unwrap().to_string();
    let ca = std::fs::read(default["ca_cert"].as_str().unwrap()).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (status, key) = rt.block_on(async {
        let http = reqwest::Client::builder()
            .tls_certs_only(reqwest::Certificate::from_pem_bundle(&ca).unwrap())
            .build()
            .unwrap();
        let get = |path: String| {
            let http = http.clone();
            async move {
                let r = http.get(path).send().await.unwrap();
                assert!(r.status().is_success(), "{}", r.status());
                r.json::<Value>().await.unwrap()
            }
        };
        (
            get(format!("{url}/cse/status")).await,
            get(format!("{url}/dke/confidential")).await,
        )
    });
    assert_eq!(status["server_type"], "KACLS", "{status}");
    let ops = status["operations_supported"].as_array().unwrap();
    for m in ["wrap", "delegate", "privilegedunwrap"] {
        assert!(ops.iter().any(|o| o == m), "{status}");
    }
    assert_eq!(key["key"]["kty"], "RSA", "{key}");
    assert!(
        key["key"]["kid"]
            .as_str()
            .unwrap()
            .ends_with("/dke/confidential/1"),
        "{key}"
    );
    // The status call is in the trail, as the door principal's QueryServer.
    let found = s.json(&[
        "audit",
        "search",
        "--operation",
        "QueryServer",
        "--principal",
        "cse-service",
    ]);
    assert!(
        found
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["door"] == "cse" && e["outcome"] == "ok" && e["credential"] == "none"),
        "{found}"
    );
}
