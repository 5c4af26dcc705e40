//! The HTTP client of the Arca REST API: where the server is, which CA to trust, the API
//! token, and the error body the server answers with.
//!
//! Each setting comes from its flag or environment variable first, then from the named
//! profile of the profile file. The token only ever travels in the `Authorization` header
//! and is never printed.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::profile::{self, ProfileFile};

/// An API token. Its `Debug` form is redacted, and it is zeroized when dropped.
#[derive(Clone)]
pub struct Token(Zeroizing<String>);

impl Token {
    /// The token text, for the `Authorization` header (or a refresh grant's body) only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

impl FromStr for Token {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() {
            return Err("the token is empty".into());
        }
        Ok(Token(Zeroizing::new(t.to_string())))
    }
}

/// How to reach the server, as given on the command line and in the environment.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// `--server` / `ARCA_SERVER`.
    pub server: Option<String>,
    /// `--ca-cert` / `ARCA_CA_CERT`.
    pub ca_cert: Option<PathBuf>,
    /// `--token` / `ARCA_TOKEN`.
    pub token: Option<Token>,
    /// `--profile` / `ARCA_PROFILE`.
    pub profile: String,
    /// `--profile-file` / `ARCA_PROFILE_FILE`.
    pub profile_file: Option<PathBuf>,
}

/// The settings once flags, environment and profile have been merged.
#[derive(Debug)]
struct Resolved {
    server: Url,
    ca_cert: Option<PathBuf>,
    token: Option<Token>,
}

impl Settings {
    fn resolve(&self, need_token: bool) -> Result<Resolved> {
        let mut server = self.server.clone();
        let mut ca_cert = self.ca_cert.clone();
        let mut token = self.token.clone();
        let path = self
            .profile_file
            .clone()
            .unwrap_or_else(profile::default_path);
        let mut hint = format!("no profile {:?} in {}", self.profile, path.display());
        if server.is_none() || ca_cert.is_none() || (need_token && token.is_none()) {
            let pf = ProfileFile::load(&path)?;
            if let Some(p) = pf.profiles.get(&self.profile) {
                hint = format!(
                    "profile {:?} in {} does not set it",
                    self.profile,
                    path.display()
                );
                // The profile's token and CA belong to the profile's server: they are never
                // used for another server given with --server / ARCA_SERVER.
                let same_server = match (&server, &p.server) {
                    (None, _) => true,
                    (Some(given), Some(own)) => same_url(given, own),
                    (Some(_), None) => false,
                };
                server = server.or_else(|| p.server.clone());
                if same_server {
                    if ca_cert.is_none() {
                        // A relative CA path in a profile is relative to the profile file.
                        ca_cert = p.ca_cert.as_ref().map(|c| match path.parent() {
                            Some(dir) if c.is_relative() => dir.join(c),
                            _ => c.clone(),
                        });
                    }
                    if token.is_none() {
                        token = p.token.as_deref().and_then(|t| t.parse().ok());
                    }
                } else {
                    hint = format!(
                        "profile {:?} is for {}, so its token and CA are not used for another server",
                        self.profile,
                        p.server.as_deref().unwrap_or("no server")
                    );
                }
            }
        }
        let Some(server) = server else {
            bail!(
                "no server address ({hint}); run `arca serve` first (it writes a profile), \
                 or pass --server URL and --token TOKEN (or set ARCA_SERVER and ARCA_TOKEN)"
            );
        };
        if need_token && token.is_none() {
            bail!(
                "no API token ({hint}); run `arca serve` first (it writes a profile), \
                 or pass --token TOKEN (or set ARCA_TOKEN)"
            );
        }
        let mut url = Url::parse(server.trim())
            .with_context(|| format!("the server address {server:?} is not a valid URL"))?;
        if url.scheme() != "https" {
            bail!(
                "the server address {server:?} must start with https:// (the token is never sent in clear)"
            );
        }
        if url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            bail!("the server address {server:?} must be a plain https://host:port URL");
        }
        // Keep a path prefix (for a server behind a proxy) but no trailing slash.
        let trimmed = url.path().trim_end_matches('/').to_string();
        url.set_path(&trimmed);
        Ok(Resolved {
            server: url,
            ca_cert,
            token,
        })
    }
}

impl Settings {
    /// The profile file these settings read (`--profile-file`, `ARCA_PROFILE_FILE`, or the
    /// default path).
    pub fn profile_path(&self) -> PathBuf {
        self.profile_file
            .clone()
            .unwrap_or_else(profile::default_path)
    }

    /// The server and CA certificate these settings point at, for writing another profile
    /// that reaches the same server (`--save-profile`). The CA path is made absolute so the
    /// new profile works from any directory.
    pub fn location(&self) -> Result<(String, Option<PathBuf>)> {
        let r = self.resolve(false)?;
        let server = r.server.as_str().trim_end_matches('/').to_string();
        let ca = r.ca_cert.map(|c| std::fs::canonicalize(&c).unwrap_or(c));
        Ok((server, ca))
    }

    /// The refresh token stored in the selected profile by `arca login`, if any.
    pub fn profile_refresh_token(&self) -> Result<Option<Token>> {
        let pf = ProfileFile::load(&self.profile_path())?;
        Ok(pf
            .profiles
            .get(&self.profile)
            .and_then(|p| p.refresh_token.as_deref())
            .and_then(|t| t.parse().ok()))
    }
}

/// Whether two server URLs name the same server (ignoring a trailing `/` and case).
fn same_url(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim().trim_end_matches('/').to_ascii_lowercase();
    norm(a) == norm(b)
}

/// An error answered by the server: `{"error": {"code", "message", "field",
/// "approval_request_id"}}`.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ServerError {
    /// The HTTP status.
    #[serde(skip)]
    pub status: u16,
    /// Stable machine-readable code.
    pub code: String,
    /// What happened, for people.
    pub message: String,
    /// The request field at fault, when there is one.
    #[serde(default)]
    pub field: Option<String>,
    /// With `needs_approval` (HTTP 202): the approval request the server created or that
    /// the operation still waits on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_request_id: Option<String>,
}

impl ServerError {
    /// The approval request an operation waits on, when the answer was `needs_approval`.
    pub fn approval_request(&self) -> Option<&str> {
        if self.code == "needs_approval" {
            self.approval_request_id.as_deref()
        } else {
            None
        }
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if let Some(field) = &self.field {
            write!(f, " (field: {field})")?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

#[derive(Deserialize)]
struct ErrorBody {
    error: ServerError,
}

/// A response body, zeroized when dropped (it may carry plaintext or key material).
pub struct Body(Zeroizing<Vec<u8>>);

impl Body {
    /// Parses the body as `T`.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.0).context("the server's answer is not the expected JSON")
    }

    /// The body as text (JSON lines, PEM).
    pub fn text(&self) -> Result<String> {
        String::from_utf8(self.0.to_vec()).context("the server's answer is not UTF-8")
    }

    /// Parses the body as any JSON value (an empty body is `null`).
    pub fn value(&self) -> Result<serde_json::Value> {
        if self.0.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        self.parse()
    }
}

/// A client of one Arca server.
pub struct ApiClient {
    http: reqwest::Client,
    base: Url,
    token: Option<Token>,
}

impl std::fmt::Debug for ApiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiClient")
            .field("base", &self.base.as_str())
            .finish_non_exhaustive()
    }
}

fn load_ca(path: &Path) -> Result<Vec<reqwest::Certificate>> {
    let pem = std::fs::read(path)
        .with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .with_context(|| format!("{} is not a PEM certificate", path.display()))?;
    if certs.is_empty() {
        bail!("{} holds no PEM certificate", path.display());
    }
    Ok(certs)
}

impl ApiClient {
    /// Builds a client from the settings. `need_token`: the calls will need a token (every
    /// `/v1` call does; the health probes do not).
    pub fn connect(settings: &Settings, need_token: bool) -> Result<Self> {
        let r = settings.resolve(need_token)?;
        let mut b = reqwest::Client::builder()
            .https_only(true)
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("arca-cli/", env!("CARGO_PKG_VERSION")));
        if let Some(ca) = &r.ca_cert {
            // Trust this CA only: the built-in roots are left out.
            b = b.tls_certs_only(load_ca(ca)?);
        }
        let http = b.build().context("cannot set up the HTTPS client")?;
        Ok(ApiClient {
            http,
            base: r.server,
            // Calls that need no token do not send one.
            token: if need_token { r.token } else { None },
        })
    }

    /// The URL of a path made of `segments`, each percent-encoded (a key name may hold `/`).
    pub fn url(&self, segments: &[&str]) -> Url {
        let mut u = self.base.clone();
        if let Ok(mut p) = u.path_segments_mut() {
            p.pop_if_empty();
            p.extend(segments);
        }
        u
    }

    /// `GET` with query pairs.
    pub async fn get(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Body> {
        let mut url = self.url(segments);
        if !query.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in query {
                q.append_pair(k, v);
            }
        }
        self.send(Method::GET, url, None).await
    }

    /// `POST` with a JSON body.
    pub async fn post<T: Serialize>(&self, segments: &[&str], body: &T) -> Result<Body> {
        self.send_json(Method::POST, segments, body).await
    }

    /// `PATCH` with a JSON body.
    pub async fn patch<T: Serialize>(&self, segments: &[&str], body: &T) -> Result<Body> {
        self.send_json(Method::PATCH, segments, body).await
    }

    /// `PUT` with a JSON body.
    pub async fn put<T: Serialize>(&self, segments: &[&str], body: &T) -> Result<Body> {
        self.send_json(Method::PUT, segments, body).await
    }

    /// `POST` with an empty JSON body, streaming a large binary answer into `out`;
    /// `progress(received, total)` follows it. Returns the bytes received.
    pub async fn download(
        &self,
        segments: &[&str],
        out: &mut dyn std::io::Write,
        progress: &mut dyn FnMut(u64, Option<u64>),
    ) -> Result<u64> {
        let url = self.url(segments);
        let mut req = self
            .http
            .post(url)
            .header(
                ACCEPT,
                HeaderValue::from_static("application/octet-stream, application/json"),
            )
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body("{}");
        if let Some(t) = &self.token {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", t.expose()))
                .map_err(|_| anyhow!("the API token holds characters a header cannot carry"))?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        let mut resp = req.send().await.map_err(|e| {
            anyhow!(
                "cannot reach the server at {}: {}",
                self.base,
                error_chain(&e)
            )
        })?;
        let status = resp.status();
        if !status.is_success() {
            let body = resp.bytes().await.unwrap_or_default();
            return Err(error_of(status, &body).into());
        }
        let total = resp.content_length();
        let mut got = 0u64;
        while let Some(chunk) = resp.chunk().await.context("the download was cut off")? {
            out.write_all(&chunk).context("cannot write the file")?;
            got += chunk.len() as u64;
            progress(got, total);
        }
        if total.is_some_and(|t| t != got) {
            bail!(
                "the download was cut off ({got} of {} bytes)",
                total.unwrap_or(0)
            );
        }
        Ok(got)
    }

    /// `DELETE`.
    pub async fn delete(&self, segments: &[&str]) -> Result<Body> {
        self.send(Method::DELETE, self.url(segments), None).await
    }

    async fn send_json<T: Serialize>(
        &self,
        method: Method,
        segments: &[&str],
        body: &T,
    ) -> Result<Body> {
        let mut bytes = Zeroizing::new(Vec::with_capacity(256));
        serde_json::to_writer(&mut *bytes, body).context("cannot encode the request")?;
        self.send(method, self.url(segments), Some(bytes)).await
    }

    async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Body> {
        let shown = format!("{} {}", method, url.path());
        let change = method != Method::GET;
        let mut req = self
            .http
            .request(method, url)
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        if let Some(t) = &self.token {
            let mut v = HeaderValue::from_str(&format!("Bearer {}", t.expose()))
                .map_err(|_| anyhow!("the API token holds characters a header cannot carry"))?;
            v.set_sensitive(true);
            req = req.header(AUTHORIZATION, v);
        }
        // Every change is sent as JSON, even with no body: a server refuses a change that a
        // client certificate alone authenticates unless it is (its cross-site guard).
        if change {
            req = req.header(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        }
        if let Some(mut b) = body {
            req = req.body(std::mem::take(&mut *b));
        }
        let resp = req.send().await.map_err(|e| {
            let mut msg = format!("cannot reach the server at {}", self.base);
            let chain = error_chain(&e);
            if chain.contains("certificate") || chain.contains("Certificate") {
                msg.push_str(
                    " (TLS certificate not trusted: check --ca-cert or the profile's ca_cert)",
                );
            }
            anyhow!("{msg}: {chain}")
        })?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .with_context(|| format!("{shown}: the answer could not be read"))?;
        let body = Body(Zeroizing::new(bytes.to_vec()));
        if let Some(e) = needs_approval(status, &body.0) {
            return Err(e.into());
        }
        if status.is_success() {
            return Ok(body);
        }
        Err(error_of(status, &body.0).into())
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        cur = c.source();
    }
    s
}

/// 202 with `needs_approval` is a success for HTTP but not for the caller: nothing was done
/// yet, and the command must say so (exit status 3).
fn needs_approval(status: StatusCode, body: &[u8]) -> Option<ServerError> {
    if status != StatusCode::ACCEPTED {
        return None;
    }
    let mut b = serde_json::from_slice::<ErrorBody>(body).ok()?;
    b.error.approval_request()?;
    b.error.status = status.as_u16();
    Some(b.error)
}

fn error_of(status: StatusCode, body: &[u8]) -> ServerError {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(mut b) => {
            b.error.status = status.as_u16();
            b.error
        }
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let snippet: String = text.chars().take(200).collect();
            ServerError {
                status: status.as_u16(),
                code: "http_error".into(),
                message: if snippet.trim().is_empty() {
                    format!("the server answered HTTP {status}")
                } else {
                    format!("the server answered HTTP {status}: {}", snippet.trim())
                },
                field: None,
                approval_request_id: None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_debug_is_redacted() {
        let t: Token = "secret-token".parse().unwrap();
        assert!(!format!("{t:?}").contains("secret"));
        let s = Settings {
            token: Some(t),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("secret-token"));
    }

    #[test]
    fn error_body_is_parsed() {
        let e = error_of(
            StatusCode::BAD_REQUEST,
            br#"{"error":{"code":"invalid_input","message":"bad name","field":"name"}}"#,
        );
        assert_eq!(e.to_string(), "bad name (field: name)");
        assert_eq!(e.status, 400);
        let e = error_of(StatusCode::BAD_GATEWAY, b"<html>oops</html>");
        assert!(e.to_string().contains("502"));
    }

    #[test]
    fn accepted_for_approval_is_not_success() {
        let body = br#"{"error":{"code":"needs_approval","message":"needs 2","field":null,"approval_request_id":"r1"}}"#;
        let e = needs_approval(StatusCode::ACCEPTED, body).unwrap();
        assert_eq!(e.approval_request(), Some("r1"));
        assert_eq!(e.status, 202);
        assert!(needs_approval(StatusCode::OK, body).is_none());
        assert!(needs_approval(StatusCode::ACCEPTED, b"{}").is_none());
        let other = br#"{"error":{"code":"conflict","message":"x","approval_request_id":"r1"}}"#;
        assert!(needs_approval(StatusCode::ACCEPTED, other).is_none());
    }

    #[test]
    fn missing_server_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let s = Settings {
            profile: "default".into(),
            profile_file: Some(dir.path().join("none.toml")),
            ..Default::default()
        };
        let e = s.resolve(true).unwrap_err().to_string();
        assert!(e.contains("arca serve"), "{e}");
        assert!(e.contains("--server"), "{e}");
    }

    #[test]
    fn profile_token_is_only_sent_to_the_profile_server() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "[profiles.default]\nserver = \"https://127.0.0.1:8443\"\ntoken = \"tok\"\nca_cert = \"ca.pem\"\n",
        )
        .unwrap();
        let s = Settings {
            profile: "default".into(),
            profile_file: Some(path.clone()),
            ..Default::default()
        };
        let r = s.resolve(true).unwrap();
        assert_eq!(r.ca_cert.unwrap(), dir.path().join("ca.pem"));
        assert!(r.token.is_some());
        let same = Settings {
            server: Some("https://127.0.0.1:8443/".into()),
            ..s.clone()
        };
        assert!(same.resolve(true).unwrap().token.is_some());
        let other = Settings {
            server: Some("https://elsewhere:8443".into()),
            ..s
        };
        let e = other.resolve(true).unwrap_err().to_string();
        assert!(e.contains("not used for another server"), "{e}");
    }

    #[test]
    fn http_is_refused_and_segments_are_encoded() {
        let s = Settings {
            server: Some("http://127.0.0.1:1".into()),
            token: Some("t".parse().unwrap()),
            ca_cert: Some("/nonexistent".into()),
            profile: "default".into(),
            ..Default::default()
        };
        assert!(s.resolve(true).is_err());
        let s = Settings {
            server: Some("https://127.0.0.1:1/".into()),
            ..s
        };
        let c = ApiClient {
            http: reqwest::Client::new(),
            base: s.resolve(true).unwrap().server,
            token: None,
        };
        assert_eq!(
            c.url(&["v1", "keys", "a/b c"]).as_str(),
            "https://127.0.0.1:1/v1/keys/a%2Fb%20c"
        );
    }
}
