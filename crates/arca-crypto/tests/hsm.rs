//! The HSM root of trust against a real PKCS#11 module: SoftHSM2 with a throw-away token.
//! The test fails (never skips) when SoftHSM2 is not installed: `scripts/test` installs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use arca_crypto::hsm::{HsmRoot, HsmSettings};
use arca_crypto::RootOfTrust;
use zeroize::Zeroizing;

pub const MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// A throw-away SoftHSM2 token directory and configuration; sets SOFTHSM2_CONF for this
/// process (this test binary holds one test, so nothing else reads it).
fn softhsm(dir: &Path, label: &str) -> PathBuf {
    assert!(
        Path::new(MODULE).exists(),
        "SoftHSM2 is not installed ({MODULE} missing): run scripts/test, which installs it (apt-get install softhsm2)"
    );
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).unwrap();
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
            tokens.display()
        ),
    )
    .unwrap();
    let out = Command::new("softhsm2-util")
        .env("SOFTHSM2_CONF", &conf)
        .args([
            "--init-token",
            "--free",
            "--label",
            label,
            "--pin",
            "1234",
            "--so-pin",
            "5678",
        ])
        .output()
        .expect("softhsm2-util runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    conf
}

fn settings(label: &str) -> HsmSettings {
    HsmSettings {
        module: MODULE.into(),
        token_label: label.into(),
        pin: Zeroizing::new("1234".into()),
        key_label: "arca-root".into(),
    }
}

#[test]
fn hsm_root_key_wraps_inside_the_token_and_never_leaves_it() {
    let tmp = tempfile::tempdir().unwrap();
    let conf = softhsm(tmp.path(), "arca-test");
    std::env::set_var("SOFTHSM2_CONF", &conf);

    // No key yet: opening without create is refused.
    let e = HsmRoot::open(&settings("arca-test"), false)
        .err()
        .expect("no key");
    assert!(e.to_string().contains("no key labelled"), "{e}");
    let root = HsmRoot::open(&settings("arca-test"), true).unwrap();
    let p = root.key_protection().unwrap();
    assert!(
        p.token && p.sensitive && !p.extractable && p.never_extractable && p.always_sensitive,
        "{p:?}"
    );
    let kek = [0x42u8; 32];
    let w = root.wrap(&kek).unwrap();
    assert!(
        !w.windows(32).any(|x| x == kek),
        "the KEK is not in its wrapped form"
    );
    assert_eq!(&root.unwrap(&w).unwrap()[..], &kek[..]);
    let mut bad = w.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert!(root.unwrap(&bad).is_err(), "a flipped bit is refused");
    drop(root);

    // The same token again (a restart): the same key, no new one.
    let again = HsmRoot::open(&settings("arca-test"), true).unwrap();
    assert_eq!(&again.unwrap(&w).unwrap()[..], &kek[..]);
    drop(again);

    // Wrong PIN, wrong token.
    let mut wrong = settings("arca-test");
    wrong.pin = Zeroizing::new("0000".into());
    assert!(HsmRoot::open(&wrong, false).is_err());
    let e = HsmRoot::open(&settings("elsewhere"), false)
        .err()
        .expect("no token");
    assert!(e.to_string().contains("no token labelled"), "{e}");

    // Another machine: a token with the same label but not the key.
    let tmp2 = tempfile::tempdir().unwrap();
    let conf2 = softhsm(tmp2.path(), "arca-test");
    std::env::set_var("SOFTHSM2_CONF", &conf2);
    assert!(HsmRoot::open(&settings("arca-test"), false).is_err());
    let other = HsmRoot::open(&settings("arca-test"), true).unwrap();
    assert!(
        other.unwrap(&w).is_err(),
        "another token's key cannot open the blob"
    );
}
