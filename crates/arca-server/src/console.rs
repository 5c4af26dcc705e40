//! The web console: static assets embedded in the binary and served from the API's own
//! HTTPS listener under `/ui/`. The console is a client of the public REST API like the
//! CLI: it holds no privilege of its own, so every action it offers is authorized,
//! audited and refused exactly as the same API call would be.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;

use crate::rest::AppState;

/// Every asset, with its content type. Adding a file to `console/` means adding it here.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../console/index.html"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_bytes!("../console/style.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../console/favicon.svg"),
    ),
    (
        "js/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/js/app.js"),
    ),
    (
        "js/api.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/js/api.js"),
    ),
    (
        "js/ui.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/js/ui.js"),
    ),
    (
        "js/keys.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/js/keys.js"),
    ),
    (
        "js/approvals.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/js/approvals.js"),
    ),
    (
        "js/audit.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/js/audit.js"),
    ),
    (
        "js/ops.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../console/js/ops.js"),
    ),
];

/// The console's content security policy: its own scripts and styles only, no inline
/// script, no framing, and API calls to this origin only. A value injected into a page
/// could not run or send anything elsewhere.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// True for the paths the console answers (they are HTML and assets, not JSON, and are
/// served while sealed so that custodians can unseal from the console).
pub fn is_console_path(path: &str) -> bool {
    path == "/" || path == "/ui" || path.starts_with("/ui/")
}

fn asset(name: &str) -> Response {
    let Some((_, _, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return not_found();
    };
    respond(name, body.to_vec())
}

fn not_found() -> Response {
    (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "no such console file",
    )
        .into_response()
}

/// The page, telling the console what this server accepts: `data-client-certificates` on
/// `<body>` is `true` only when the listener asks for client certificates, so the console
/// offers a certificate sign-in only where one can work.
pub fn index_html(client_certificates: bool) -> String {
    let html = std::str::from_utf8(ASSETS[0].2).unwrap_or_default();
    html.replacen(
        "<body>",
        &format!("<body data-client-certificates=\"{client_certificates}\">"),
        1,
    )
}

fn respond(name: &str, body: Vec<u8>) -> Response {
    let Some((_, ctype, _)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return not_found();
    };
    let mut r = (StatusCode::OK, [(header::CONTENT_TYPE, *ctype)], body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(
        "cross-origin-opener-policy",
        HeaderValue::from_static("same-origin"),
    );
    r
}

async fn index(State(app): State<Arc<AppState>>) -> Response {
    respond(
        "index.html",
        index_html(app.client_certificates).into_bytes(),
    )
}

async fn file(State(app): State<Arc<AppState>>, Path(name): Path<String>) -> Response {
    if name == "index.html" {
        return index(State(app)).await;
    }
    asset(&name)
}

/// The console's routes: `/` and `/ui` lead to `/ui/`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(index))
        .route("/ui/{*name}", get(file))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every module the console imports is embedded: a missing one would only show as a
    /// blank page in a browser.
    #[test]
    fn every_imported_module_is_embedded() {
        for (name, _, body) in ASSETS {
            if !name.ends_with(".js") {
                continue;
            }
            let text = std::str::from_utf8(body).unwrap();
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let spec = line.rsplit(" from ").next().unwrap();
                let spec = spec.trim_matches(|c| c == '\'' || c == ';' || c == ' ');
                let target = format!("js/{}", spec.trim_start_matches("./"));
                assert!(
                    ASSETS.iter().any(|(n, _, _)| *n == target),
                    "{name} imports {spec}, which is not embedded"
                );
            }
        }
        assert_eq!(ASSETS[0].0, "index.html");
        let index = std::str::from_utf8(ASSETS[0].2).unwrap();
        assert_eq!(index.matches("<body>").count(), 1, "one <body> to mark");
        assert!(index_html(false).contains("<body data-client-certificates=\"false\">"));
        assert!(index_html(true).contains("<body data-client-certificates=\"true\">"));
        for (name, _, _) in ASSETS.iter().skip(1) {
            if ["style.css", "favicon.svg", "js/app.js"].contains(name) {
                assert!(index.contains(&format!("/ui/{name}")), "{name} not linked");
            }
        }
    }
}
