//! A real third-party KMIP client: PyKMIP 0.11's `ProxyKmipClient`, in KMIP 1.2 and 2.0,
//! against a real server over mutual TLS.
//!
//! The Python with PyKMIP comes from `ARCA_PYTHON` (the test command makes a venv and sets
//! it); without it the test fails, never skips.

mod common;

use common::kmip::KmipServer;

fn python() -> String {
    std::env::var("ARCA_PYTHON").unwrap_or_else(|_| {
        panic!("ARCA_PYTHON is not set: run scripts/test, which makes the venv with PyKMIP")
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pykmip_proxy_client_1_2_and_2_0() {
    let k = KmipServer::start().await;
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/pykmip_client.py");
    for version in ["1.2", "2.0"] {
        let mut cmd = std::process::Command::new(python());
        cmd.arg(&script)
            .env("KMIP_HOST", "127.0.0.1")
            .env("KMIP_PORT", k.kmip_port.to_string())
            .env("KMIP_CERT", &k.client_cert)
            .env("KMIP_KEY", &k.client_key)
            .env("KMIP_CA", &k.server_ca)
            .env("KMIP_VERSION", version);
        // The server runs on this runtime, so the client waits on a blocking thread.
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .unwrap()
            .expect("python runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!("PyKMIP {version}:\n{stdout}");
        assert!(
            out.status.success() && stdout.contains("OK"),
            "PyKMIP {version} failed:\n{stdout}\n{stderr}"
        );
    }
    k.s.shutdown().await;
}
