//! AWS Signature Version 4, the server's half: from an HTTP request to the string the
//! client signed. Sans-IO: headers, path, query and body in; a [`SigV4Proof`] (or the AWS
//! error that refuses the request) out. The signature itself is checked by the service,
//! which alone can open the secret access key.
//!
//! Why not a crate: `aws-sigv4` only signs (it picks the headers to sign itself, where a
//! verifier must follow the client's `SignedHeaders`), and the one verifier crate marks its
//! API unstable and brings `ring` beside aws-lc-rs. The algorithm is short and fully
//! specified; it is checked here against AWS's published example and in the test suite
//! against botocore, the AWS CLI and the aws-sigv4 crate's signer.

use arca_service::aws_auth::{sigv4_hash, SigV4Proof};
use chrono::{DateTime, NaiveDateTime, Utc};

/// The only algorithm SigV4 has (SigV4a, ECDSA-signed, is not supported).
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// How far a request's date may be from the server's clock (AWS's window).
pub const MAX_SKEW_SECS: i64 = 5 * 60;

/// Why a request's signature could not even be checked, as AWS names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `MissingAuthenticationTokenException`, `IncompleteSignatureException`,
    /// `InvalidSignatureException`.
    pub error: &'static str,
    pub message: String,
}

fn refuse(error: &'static str, message: impl Into<String>) -> Refusal {
    Refusal {
        error,
        message: message.into(),
    }
}

/// The parts of a request SigV4 covers.
pub struct SignedRequest<'a> {
    pub method: &'a str,
    /// The path as received (still percent-encoded).
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    /// Every header, names in any case, in the order received.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

/// What the scope must say for this door.
pub struct Expect<'a> {
    /// `kms` or `kms-xks-proxy`.
    pub service: &'a str,
    /// The region the scope must name, or any when `None`.
    pub region: Option<&'a str>,
    pub now: DateTime<Utc>,
}

/// SigV4's URI encoding: everything but the unreserved characters is `%XX`, uppercase.
fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes (and `+` is left as is: SigV4 clients encode spaces as `%20`).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The canonical URI: the path normalized (no empty, `.` or `..` segments) and encoded
/// again, as every service but S3 signs it (the client encodes the wire path once more).
fn canonical_uri(path: &str) -> String {
    let mut segs: Vec<&str> = Vec::new();
    for s in path.split('/') {
        match s {
            "" | "." => {}
            ".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
    }
    let mut p = String::from("/");
    p.push_str(&segs.join("/"));
    if path.ends_with('/') && !segs.is_empty() {
        p.push('/');
    }
    uri_encode(&p, true)
}

/// The canonical query string: parameters sorted by name then value, each re-encoded.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value as signed: trimmed, inner runs of spaces made one.
fn canonical_value(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The parsed `Authorization` header.
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(h: &str) -> Result<Authorization<'_>, Refusal> {
    let rest = h.strip_prefix(ALGORITHM).ok_or_else(|| {
        refuse(
            "IncompleteSignatureException",
            format!("the Authorization header must use {ALGORITHM}"),
        )
    })?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            cred = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            sig = Some(v);
        }
    }
    let missing = |what: &str| {
        refuse(
            "IncompleteSignatureException",
            format!("the Authorization header lacks {what}"),
        )
    };
    let cred = cred.ok_or_else(|| missing("Credential="))?;
    let signed = signed.ok_or_else(|| missing("SignedHeaders="))?;
    let sig = sig.ok_or_else(|| missing("Signature="))?;
    let parts: Vec<&str> = cred.split('/').collect();
    if parts.len() != 5 || parts[4] != "aws4_request" {
        return Err(refuse(
            "IncompleteSignatureException",
            "Credential= must be <access key id>/<date>/<region>/<service>/aws4_request",
        ));
    }
    if sig.len() != 64 || !sig.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(refuse(
            "IncompleteSignatureException",
            "Signature= must be 64 hex digits",
        ));
    }
    Ok(Authorization {
        access_key_id: parts[0],
        date: parts[1],
        region: parts[2],
        service: parts[3],
        signed_headers: signed.split(';').collect(),
        signature: sig,
    })
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Parses the request's SigV4 header signature and builds what the client signed.
pub fn prove(req: &SignedRequest, expect: &Expect) -> Result<SigV4Proof, Refusal> {
    let auth = header(req.headers, "authorization");
    let Some(auth) = auth.first() else {
        return Err(refuse(
            "MissingAuthenticationTokenException",
            "the request is not signed: an Authorization header (AWS Signature Version 4) is required",
        ));
    };
    let a = parse_authorization(auth)?;
    if a.service != expect.service {
        return Err(refuse(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to correct service: '{}'",
                expect.service
            ),
        ));
    }
    if let Some(r) = expect.region {
        if a.region != r {
            return Err(refuse(
                "InvalidSignatureException",
                format!("Credential should be scoped to a valid region: '{r}'"),
            ));
        }
    }
    let amz_date = header(req.headers, "x-amz-date")
        .first()
        .copied()
        .ok_or_else(|| {
            refuse(
                "IncompleteSignatureException",
                "the request lacks an X-Amz-Date header",
            )
        })?;
    let when = NaiveDateTime::parse_from_str(amz_date, "%Y%m%dT%H%M%SZ")
        .map_err(|_| {
            refuse(
                "IncompleteSignatureException",
                "X-Amz-Date must be YYYYMMDDTHHMMSSZ",
            )
        })?
        .and_utc();
    if !amz_date.starts_with(a.date) || a.date.len() != 8 {
        return Err(refuse(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to the date of X-Amz-Date: '{}'",
                &amz_date[..8]
            ),
        ));
    }
    let skew = (expect.now - when).num_seconds();
    if skew > MAX_SKEW_SECS {
        return Err(refuse(
            "InvalidSignatureException",
            format!(
                "Signature expired: {amz_date} is now earlier than {} ({} - 5 min.)",
                (expect.now - chrono::Duration::seconds(MAX_SKEW_SECS)).format("%Y%m%dT%H%M%SZ"),
                expect.now.format("%Y%m%dT%H%M%SZ"),
            ),
        ));
    }
    if -skew > MAX_SKEW_SECS {
        return Err(refuse(
            "InvalidSignatureException",
            format!(
                "Signature not yet current: {amz_date} is still later than {} ({} + 5 min.)",
                (expect.now + chrono::Duration::seconds(MAX_SKEW_SECS)).format("%Y%m%dT%H%M%SZ"),
                expect.now.format("%Y%m%dT%H%M%SZ"),
            ),
        ));
    }
    // The signed header list: lowercase, sorted, and covering host and every x-amz-*.
    let mut sorted = a.signed_headers.clone();
    sorted.sort_unstable();
    if sorted != a.signed_headers
        || a.signed_headers
            .iter()
            .any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(refuse(
            "IncompleteSignatureException",
            "SignedHeaders= must be lowercase header names, sorted, separated by ';'",
        ));
    }
    for needed in ["host", "x-amz-date"] {
        if !a.signed_headers.contains(&needed) {
            return Err(refuse(
                "InvalidSignatureException",
                format!("the '{needed}' header must be signed"),
            ));
        }
    }
    for (n, _) in req.headers {
        let n = n.to_ascii_lowercase();
        if n.starts_with("x-amz-")
            && n != "x-amz-content-sha256"
            && !a.signed_headers.contains(&n.as_str())
        {
            return Err(refuse(
                "InvalidSignatureException",
                format!("the '{n}' header must be signed"),
            ));
        }
    }
    let payload_hash = sigv4_hash(req.body);
    if let Some(claimed) = header(req.headers, "x-amz-content-sha256").first() {
        if !claimed.eq_ignore_ascii_case(&payload_hash) {
            return Err(refuse(
                "InvalidSignatureException",
                "X-Amz-Content-Sha256 does not match the request body",
            ));
        }
    }
    let mut canonical = String::with_capacity(256);
    canonical.push_str(req.method);
    canonical.push('\n');
    canonical.push_str(&canonical_uri(req.path));
    canonical.push('\n');
    canonical.push_str(&canonical_query(req.query));
    canonical.push('\n');
    for h in &a.signed_headers {
        let values = header(req.headers, h);
        if values.is_empty() {
            return Err(refuse(
                "InvalidSignatureException",
                format!("the signed header '{h}' is not in the request"),
            ));
        }
        let v: Vec<String> = values.iter().map(|v| canonical_value(v)).collect();
        canonical.push_str(h);
        canonical.push(':');
        canonical.push_str(&v.join(","));
        canonical.push('\n');
    }
    canonical.push('\n');
    canonical.push_str(&a.signed_headers.join(";"));
    canonical.push('\n');
    canonical.push_str(&payload_hash);
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{}/{}/{}/aws4_request\n{}",
        a.date,
        a.region,
        a.service,
        sigv4_hash(canonical.as_bytes())
    );
    Ok(SigV4Proof {
        access_key_id: a.access_key_id.to_string(),
        date: a.date.to_string(),
        region: a.region.to_string(),
        service: a.service.to_string(),
        string_to_sign,
        signature: a.signature.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arca_service::aws_auth::sigv4_signature;

    const SECRET: &[u8] = b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    fn at(s: &str) -> DateTime<Utc> {
        NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
            .unwrap()
            .and_utc()
    }

    /// AWS's signed GET example ("Create a signed AWS API request", IAM ListUsers): the
    /// canonical request, string to sign and signature as published.
    #[test]
    fn the_published_iam_example_verifies() {
        let headers = vec![
            (
                "Content-Type".to_string(),
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            ),
            ("Host".to_string(), "iam.amazonaws.com".to_string()),
            ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
            (
                "Authorization".to_string(),
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date, \
                 Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
                    .to_string(),
            ),
        ];
        let req = SignedRequest {
            method: "GET",
            path: "/",
            query: "Action=ListUsers&Version=2010-05-08",
            headers: &headers,
            body: b"",
        };
        let p = prove(
            &req,
            &Expect {
                service: "iam",
                region: Some("us-east-1"),
                now: at("20150830T123900Z"),
            },
        )
        .unwrap();
        assert_eq!(
            p.string_to_sign,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n\
             f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        assert_eq!(
            sigv4_signature(SECRET, &p.date, &p.region, &p.service, &p.string_to_sign),
            p.signature
        );
    }

    fn kms_request(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut h = vec![
            ("host".to_string(), "kms.local".to_string()),
            ("x-amz-date".to_string(), "20260101T000000Z".to_string()),
            (
                "authorization".to_string(),
                format!(
                    "AWS4-HMAC-SHA256 Credential=ARCAABCDEFGHIJ234567/20260101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature={}",
                    "0".repeat(64)
                ),
            ),
        ];
        for (k, v) in extra {
            h.push((k.to_string(), v.to_string()));
        }
        h
    }

    fn expect_kms(now: &str) -> Expect<'static> {
        Expect {
            service: "kms",
            region: Some("us-east-1"),
            now: at(now),
        }
    }

    fn refusal(h: &[(String, String)], e: &Expect) -> Refusal {
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: h,
            body: b"{}",
        };
        prove(&req, e).expect_err("refused")
    }

    #[test]
    fn dates_outside_five_minutes_are_refused() {
        let h = kms_request(&[]);
        assert!(refusal(&h, &expect_kms("20260101T000600Z"))
            .message
            .starts_with("Signature expired"));
        assert!(refusal(&h, &expect_kms("20251231T235400Z"))
            .message
            .starts_with("Signature not yet current"));
        let req = SignedRequest {
            method: "POST",
            path: "/",
            query: "",
            headers: &h,
            body: b"{}",
        };
        assert!(prove(&req, &expect_kms("20260101T000459Z")).is_ok());
    }

    #[test]
    fn scope_and_shape_are_checked() {
        let h = kms_request(&[]);
        let mut e = expect_kms("20260101T000000Z");
        e.region = Some("eu-west-1");
        assert_eq!(refusal(&h, &e).error, "InvalidSignatureException");
        e.region = None;
        e.service = "kms-xks-proxy";
        assert!(refusal(&h, &e).message.contains("service"));
        let unsigned = kms_request(&[("x-amz-target", "TrentService.Encrypt")]);
        assert!(refusal(&unsigned, &expect_kms("20260101T000000Z"))
            .message
            .contains("x-amz-target"));
        let none: Vec<(String, String)> = vec![];
        assert_eq!(
            refusal(&none, &expect_kms("20260101T000000Z")).error,
            "MissingAuthenticationTokenException"
        );
        let bad = vec![(
            "authorization".to_string(),
            "AWS4-HMAC-SHA256 Credential=x".to_string(),
        )];
        assert_eq!(
            refusal(&bad, &expect_kms("20260101T000000Z")).error,
            "IncompleteSignatureException"
        );
        let wrong_hash = kms_request(&[("x-amz-content-sha256", &"0".repeat(64))]);
        assert!(refusal(&wrong_hash, &expect_kms("20260101T000000Z"))
            .message
            .contains("body"));
    }

    #[test]
    fn canonical_forms() {
        assert_eq!(canonical_uri("/a/./b/../c//d"), "/a/c/d");
        assert_eq!(canonical_uri("/keys/a%3Ab"), "/keys/a%253Ab");
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(canonical_query("x=a%20b&y"), "x=a%20b&y=");
        assert_eq!(canonical_value("  a   b  "), "a b");
    }

    proptest::proptest! {
        /// Whatever a client sends, the verifier answers (a proof or a refusal), never
        /// panics: the Authorization header, the dates, the path and the query are all
        /// attacker-controlled.
        #[test]
        fn never_panics(
            auth in "\\PC{0,200}",
            date in "[0-9TZ]{0,20}",
            path in "[/a-zA-Z0-9%._~-]{0,60}",
            query in "[a-zA-Z0-9%=&+._~-]{0,60}",
            extra in proptest::collection::vec(("[a-zA-Z-]{1,20}", "\\PC{0,40}"), 0..4),
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let mut headers = vec![
                ("host".to_string(), "h".to_string()),
                ("x-amz-date".to_string(), date),
                ("authorization".to_string(), format!("AWS4-HMAC-SHA256 {auth}")),
            ];
            headers.extend(extra);
            let req = SignedRequest { method: "POST", path: &path, query: &query, headers: &headers, body: &body };
            let _ = prove(&req, &expect_kms("20260101T000000Z"));
        }

        /// The same with a well-formed header around random parts, to reach the canonical
        /// request.
        #[test]
        fn never_panics_deeper(
            cred in "[A-Za-z0-9/]{0,60}",
            signed in "[a-z;-]{0,40}",
            sig in "[0-9a-f]{60,68}",
            path in "[/a-zA-Z0-9%._~-]{0,60}",
            query in "[a-zA-Z0-9%=&+._~-]{0,60}",
        ) {
            let headers = vec![
                ("host".to_string(), "h".to_string()),
                ("x-amz-date".to_string(), "20260101T000000Z".to_string()),
                ("authorization".to_string(), format!(
                    "AWS4-HMAC-SHA256 Credential={cred}/20260101/us-east-1/kms/aws4_request, SignedHeaders={signed}, Signature={sig}"
                )),
            ];
            let req = SignedRequest { method: "POST", path: &path, query: &query, headers: &headers, body: b"" };
            let _ = prove(&req, &expect_kms("20260101T000000Z"));
        }
    }
}
