//! A throw-away PostgreSQL server for tests: `initdb` and `pg_ctl` from the machine's
//! PostgreSQL (15 under `/usr/lib/postgresql`, or `ARCA_PG_BIN`), on a free loopback port in a
//! temporary directory, stopped and removed on drop. Run as root (as CI does), the server
//! runs as the `postgres` user, since PostgreSQL refuses root.
//!
//! There is no fallback: if PostgreSQL is missing, [`TestPostgres::start`] panics with what
//! to install, so a test that needs it fails loudly instead of skipping.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A running test server. Its superuser `arca` connects without a password over loopback.
pub struct TestPostgres {
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    as_postgres: bool,
    tls: bool,
}

fn pg_bin() -> PathBuf {
    if let Ok(b) = std::env::var("ARCA_PG_BIN") {
        return PathBuf::from(b);
    }
    for v in ["17", "16", "15", "14", "13"] {
        let p = PathBuf::from(format!("/usr/lib/postgresql/{v}/bin"));
        if p.join("pg_ctl").exists() {
            return p;
        }
    }
    panic!(
        "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin (install Debian's \
         postgresql package, or set ARCA_PG_BIN); the PostgreSQL tests do not skip"
    );
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl TestPostgres {
    /// Starts a new cluster (about 2 s).
    pub fn start() -> TestPostgres {
        Self::start_with(false)
    }

    /// Starts a new cluster that accepts TLS (a self-signed certificate for 127.0.0.1, made
    /// with the `openssl` tool); [`TestPostgres::tls_url`] connects with full verification.
    pub fn start_tls() -> TestPostgres {
        Self::start_with(true)
    }

    fn start_with(tls: bool) -> TestPostgres {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let bin = pg_bin();
        let dir = std::env::temp_dir().join(format!(
            "arca-pg-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let me = TestPostgres {
            dir,
            bin,
            port: free_port(),
            as_postgres: is_root(),
            tls,
        };
        if me.as_postgres {
            me.run(
                "chown",
                &["-R", "postgres:postgres", me.dir.to_str().unwrap()],
                false,
            );
        }
        let data = me.data_dir();
        me.run(
            me.bin.join("initdb").to_str().unwrap(),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "arca",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            true,
        );
        if tls {
            me.make_certificate();
        }
        me.pg_ctl_start();
        me
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs a command (as `postgres` when `as_pg` and we are root); panics with its output
    /// if it fails.
    fn run(&self, prog: &str, args: &[&str], as_pg: bool) -> String {
        let mut cmd = if as_pg && self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", prog]);
            c
        } else {
            Command::new(prog)
        };
        cmd.args(args);
        let out = cmd
            .output()
            .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
        if !out.status.success() {
            panic!(
                "{prog} {args:?} failed: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A test CA and a server certificate for 127.0.0.1 it signed (webpki refuses a CA
    /// certificate as the server's own).
    fn make_certificate(&self) {
        let d = |f: &str| self.dir.join(f).to_str().unwrap().to_string();
        let data = self.data_dir();
        let (crt, key) = (data.join("server.crt"), data.join("server.key"));
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
        ];
        let mut ca = vec!["req", "-x509"];
        ca.extend(ec);
        ca.extend(["-days", "2", "-subj", "/CN=arca-test-ca", "-keyout"]);
        let (ca_key, ca_crt, csr, ext) =
            (d("ca.key"), d("ca.crt"), d("server.csr"), d("server.ext"));
        ca.extend([ca_key.as_str(), "-out", ca_crt.as_str()]);
        self.run("openssl", &ca, false);
        let mut req = vec!["req"];
        req.extend(ec);
        req.extend([
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            key.to_str().unwrap(),
            "-out",
            csr.as_str(),
        ]);
        self.run("openssl", &req, false);
        std::fs::write(
            &ext,
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write the extensions file");
        self.run(
            "openssl",
            &[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                &ca_crt,
                "-CAkey",
                &ca_key,
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                &ext,
                "-out",
                crt.to_str().unwrap(),
            ],
            false,
        );
        if self.as_postgres {
            self.run(
                "chown",
                &[
                    "postgres:postgres",
                    crt.to_str().unwrap(),
                    key.to_str().unwrap(),
                ],
                false,
            );
        }
        self.run("chmod", &["600", key.to_str().unwrap()], false);
    }

    fn pg_ctl_start(&self) {
        let data = self.data_dir();
        let log = self.dir.join("postgres.log");
        let mut opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c max_connections=200",
            self.port,
            self.dir.display()
        );
        if self.tls {
            opts.push_str(" -c ssl=on -c ssl_cert_file=server.crt -c ssl_key_file=server.key");
        }
        self.run(
            self.bin.join("pg_ctl").to_str().unwrap(),
            &[
                "-D",
                data.to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "30",
                "start",
            ],
            true,
        );
    }

    /// The URL of the `postgres` database (plain TCP).
    pub fn url(&self) -> String {
        format!("postgres://arca@127.0.0.1:{}/postgres", self.port)
    }

    /// The URL of a database over TLS, verifying the server's certificate and name.
    pub fn tls_url(&self, database: &str) -> String {
        assert!(self.tls, "started without TLS");
        format!(
            "postgres://arca@127.0.0.1:{}/{database}?sslmode=verify-full&sslrootcert={}",
            self.port,
            self.dir.join("ca.crt").display()
        )
    }

    /// Creates an empty database and returns its URL (one per test keeps tests apart).
    pub async fn database(&self, name: &str) -> String {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect(&self.url())
            .await
            .expect("connect to the test server");
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
            .execute(&mut c)
            .await
            .expect("create a test database");
        format!("postgres://arca@127.0.0.1:{}/{name}", self.port)
    }

    /// Restarts the server (a fast shutdown: open sessions are cut, as in a failover).
    pub fn restart(&self) {
        self.stop();
        self.pg_ctl_start();
    }

    /// Starts the server again after [`TestPostgres::stop`] (an outage's end).
    pub fn start_again(&self) {
        self.pg_ctl_start();
    }

    /// Stops the server (fast shutdown).
    pub fn stop(&self) {
        let data = self.data_dir();
        self.run(
            self.bin.join("pg_ctl").to_str().unwrap(),
            &["-D", data.to_str().unwrap(), "-m", "fast", "-w", "stop"],
            true,
        );
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("postgres.log")).unwrap_or_default()
    }

    /// The cluster's directory (its data files, to look for secrets in them).
    pub fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let data = self.data_dir();
        let pg_ctl = self.bin.join("pg_ctl");
        let mut cmd = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&pg_ctl);
            c
        } else {
            Command::new(&pg_ctl)
        };
        let _ = cmd
            .args([
                "-D",
                data.to_str().unwrap_or(""),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
