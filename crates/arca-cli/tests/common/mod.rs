//! What the end-to-end tests of the `arca` binary share: a real `arca serve` on a free port
//! in a temporary directory, and the client commands run against it through the profile
//! it writes.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_arca");

/// A running server; killed when dropped, whatever happened in the test.
pub struct Server {
    pub child: Child,
    pub dir: tempfile::TempDir,
    pub profile: PathBuf,
    /// The admin's token (profile `default`).
    pub token: String,
    /// Every token the first start wrote (admin and operator): none may ever be printed.
    pub secrets: Vec<String>,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A command with none of the caller's `ARCA_*` variables, so a developer's own settings
/// never leak into a test.
/// Waits for `arca serve`'s first line ("Arca is serving on URL") and returns the URL. Its
/// stdout is drained from then on, so the server never blocks on a full pipe; if nothing
/// comes within 60 s the panic shows the server's log.
pub fn served_url(child: &mut Child, log: &Path) -> String {
    let stdout = child.stdout.take().expect("stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            panic!(
                "arca serve printed nothing within 60 s; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )
        });
    first
        .strip_prefix("Arca is serving on ")
        .unwrap_or_else(|| panic!("unexpected first line: {first:?}"))
        .to_string()
}

/// `arca tenant settings require-approval`: `action` needs `approvals` votes from now on.
pub fn require_approval(s: &Server, action: &str, approvals: u32) -> String {
    s.ok(&[
        "tenant",
        "settings",
        "require-approval",
        "--action",
        action,
        "--approvals",
        &approvals.to_string(),
    ])
}

pub fn clean_command(profile: &Path, cwd: &Path) -> Command {
    let mut c = Command::new(BIN);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ARCA_") {
            c.env_remove(k);
        }
    }
    c.env("ARCA_PROFILE_FILE", profile).current_dir(cwd);
    c
}

impl Server {
    pub fn start() -> Server {
        Server::start_in(tempfile::tempdir().unwrap())
    }

    /// Starts `arca serve` on `<dir>/data` with the profile file `<dir>/profile.toml` (which
    /// `arca init` may already have written).
    pub fn start_in(dir: tempfile::TempDir) -> Server {
        Server::start_with_env(dir, &[])
    }

    /// [`Server::start_in`] with `ARCA_*` settings for the server (`env`).
    pub fn start_with_env(dir: tempfile::TempDir, env: &[(&str, &str)]) -> Server {
        let profile = dir.path().join("profile.toml");
        let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
        let child = clean_command(&profile, dir.path())
            .envs(env.iter().copied())
            .arg("serve")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args(["--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("cannot start arca serve");
        let mut server = Server {
            child,
            dir,
            profile,
            token: String::new(),
            secrets: Vec::new(),
        };
        let url = served_url(&mut server.child, &server.dir.path().join("serve.log"));
        let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
        assert_ne!(port, 0);
        // The profile is written before the first line: it is complete now.
        let text = std::fs::read_to_string(&server.profile).expect("no profile written");
        assert!(text.contains(&url), "profile does not name {url}: {text}");
        let tokens: Vec<String> = text
            .lines()
            .filter(|l| l.trim_start().starts_with("token"))
            .map(|l| {
                l.split('"')
                    .nth(1)
                    .expect("token is not a string")
                    .to_string()
            })
            .collect();
        // Two profiles: `default` (the admin) and `operator`, in that (sorted) order.
        assert_eq!(
            tokens.len(),
            2,
            "expected the admin and operator profiles: {text}"
        );
        assert!(text.contains("[profiles.operator]"), "{text}");
        server.token = tokens[0].clone();
        server.secrets = tokens;
        server
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = clean_command(&self.profile, self.dir.path());
        c.args(args);
        c
    }

    /// Runs `arca ARGS` with no stdin.
    pub fn run(&self, args: &[&str]) -> Output {
        let out = self
            .command(args)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run arca");
        self.check_no_token(&out);
        out
    }

    /// Runs `arca ARGS` with `input` on stdin.
    pub fn run_stdin(&self, args: &[&str], input: &[u8]) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Feed stdin from another thread: the child may fill stdout before reading it all.
        let mut stdin = child.stdin.take().unwrap();
        let input = input.to_vec();
        let feeder = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().unwrap();
        feeder.join().unwrap();
        self.check_no_token(&out);
        out
    }

    /// Runs and insists on success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "arca {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs with `--output json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--output", "json"];
        a.extend_from_slice(args);
        let s = self.ok(&a);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
    }

    pub fn check_no_token(&self, out: &Output) {
        for stream in [&out.stdout, &out.stderr] {
            let text = String::from_utf8_lossy(stream);
            for t in &self.secrets {
                assert!(!text.contains(t.as_str()), "a token was printed");
            }
        }
    }

    /// Runs `arca ARGS` with `ARCA_TOKEN` set to `token`.
    pub fn run_with_token(&self, token: &str, args: &[&str]) -> Output {
        let out = self
            .command(args)
            .env("ARCA_TOKEN", token)
            .stdin(Stdio::null())
            .output()
            .expect("cannot run arca");
        self.check_no_token(&out);
        out
    }

    /// Runs as profile `profile` and insists on success; returns stdout.
    pub fn ok_as(&self, profile: &str, args: &[&str]) -> String {
        let mut a = vec!["--profile", profile];
        a.extend_from_slice(args);
        self.ok(&a)
    }

    /// Runs as profile `profile` with `--output json` and parses stdout.
    pub fn json_as(&self, profile: &str, args: &[&str]) -> serde_json::Value {
        let mut a = vec!["--profile", profile];
        a.extend_from_slice(args);
        self.json(&a)
    }
}

/// `arca init` with Shamir custody, 2 of `custodians`, in `dir`: the data in `<dir>/<data>`,
/// the share files in `<dir>/<out_dir>`.
pub fn run_init(dir: &Path, data: &str, out_dir: &str, custodians: &[String]) -> Output {
    let mut c = clean_command(&dir.join("profile.toml"), dir);
    c.args([
        "init",
        "--data-dir",
        data,
        "--threshold",
        "2",
        "--out-dir",
        out_dir,
    ]);
    for cu in custodians {
        c.args(["--custodian", cu]);
    }
    c.stdin(Stdio::null())
        .output()
        .expect("cannot run arca init")
}
