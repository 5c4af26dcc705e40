//! Distinguished names in one canonical RFC 4514 form, so that a certificate subject bound
//! by a person and the subject a certificate presents compare equal exactly when they are
//! the same name. A display string that does not escape `,` `+` `=` (as x509-parser's does
//! not) lets `CN=svc, O=Example` mean both a two-RDN name and a one-CN name whose common
//! name is `svc, O=Example`; the canonical form escapes them, so the two never meet.
//!
//! The canonical form: RDNs in RFC 4514 order (the reverse of the DER sequence: the most
//! specific first), separated by `,` with no spaces; the attributes of a multi-valued RDN
//! sorted and joined with `+`; attribute types by their RFC 4514 short name (`CN`, `L`,
//! `ST`, `O`, `OU`, `C`, `STREET`, `DC`, `UID`) or else their dotted OID; string values
//! with `,` `+` `"` `\` `<` `>` `;` `=`, a leading `#` or space and a trailing space
//! escaped by a backslash, and control characters as `\XX`; values that are not strings as
//! `#` and the lower-case hex of their DER. Values compare exactly (case-sensitively):
//! a stricter match than LDAP's, never a looser one.

/// The RFC 4514 short names and their OIDs. Input also accepts the other names below.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("CN", "2.5.4.3"),
    ("L", "2.5.4.7"),
    ("ST", "2.5.4.8"),
    ("O", "2.5.4.10"),
    ("OU", "2.5.4.11"),
    ("C", "2.5.4.6"),
    ("STREET", "2.5.4.9"),
    ("DC", "0.9.2342.19200300.100.1.25"),
    ("UID", "0.9.2342.19200300.100.1.1"),
];

/// Names people write that RFC 4514 does not list: accepted on input, written as OIDs.
const OTHER_NAMES: &[(&str, &str)] = &[
    ("SERIALNUMBER", "2.5.4.5"),
    ("SN", "2.5.4.4"),
    ("GN", "2.5.4.42"),
    ("GIVENNAME", "2.5.4.42"),
    ("TITLE", "2.5.4.12"),
    ("E", "1.2.840.113549.1.9.1"),
    ("EMAILADDRESS", "1.2.840.113549.1.9.1"),
];

/// The value of one attribute.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum AvaValue {
    /// A string value (any of the directory string types), unescaped.
    Text(String),
    /// Any other value: the lower-case hex of its DER encoding.
    Der(String),
}

/// One attribute type and value; `oid` is the dotted attribute type.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Ava {
    pub oid: String,
    pub value: AvaValue,
}

/// A distinguished name, its RDNs in RFC 4514 order (most specific first).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dn(pub Vec<Vec<Ava>>);

impl Dn {
    /// A name from its RDNs in DER order (as a certificate holds them).
    pub fn from_der_order(mut rdns: Vec<Vec<Ava>>) -> Dn {
        rdns.reverse();
        Dn(rdns)
    }

    /// Parses an RFC 4514 string. Spaces around `,`, `+` and `=` are tolerated (many tools
    /// print `CN=a, O=b`); a space that belongs to a value is escaped (`\ `).
    pub fn parse(s: &str) -> Result<Dn, String> {
        let chars: Vec<char> = s.chars().collect();
        let mut i = 0;
        let mut rdns = vec![];
        let mut rdn = vec![];
        if s.trim().is_empty() {
            return Err("an empty name".into());
        }
        loop {
            // attribute type
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            let start = i;
            while i < chars.len() && chars[i] != '=' {
                i += 1;
            }
            if i >= chars.len() {
                return Err(format!(
                    "{:?} has no '=' (write TYPE=value)",
                    chars[start..].iter().collect::<String>()
                ));
            }
            let ty: String = chars[start..i]
                .iter()
                .collect::<String>()
                .trim()
                .to_string();
            let oid = type_oid(&ty)?;
            i += 1;
            while i < chars.len() && chars[i] == ' ' {
                i += 1;
            }
            // value
            let value = if chars.get(i) == Some(&'#') {
                i += 1;
                let st = i;
                while i < chars.len() && chars[i].is_ascii_hexdigit() {
                    i += 1;
                }
                let hex: String = chars[st..i].iter().collect::<String>().to_ascii_lowercase();
                if hex.is_empty() || !hex.len().is_multiple_of(2) {
                    return Err(format!("the value of {ty} is '#' and odd or no hex"));
                }
                while i < chars.len() && chars[i] == ' ' {
                    i += 1;
                }
                AvaValue::Der(hex)
            } else {
                let mut bytes: Vec<u8> = vec![];
                // length of `bytes` up to the last character that was escaped or not a space
                let mut keep = 0;
                while i < chars.len() {
                    let c = chars[i];
                    match c {
                        ',' | '+' => break,
                        '\\' => {
                            let next = chars.get(i + 1).copied();
                            match next {
                                Some(n) if ",+\"\\<>;= #".contains(n) => {
                                    push_char(&mut bytes, n);
                                    i += 2;
                                }
                                Some(h) if h.is_ascii_hexdigit() => {
                                    let l = chars.get(i + 2).copied().filter(|c| c.is_ascii_hexdigit()).ok_or_else(|| {
                                        format!("the value of {ty} has a '\\' followed by one hex digit")
                                    })?;
                                    let b = u8::from_str_radix(&format!("{h}{l}"), 16)
                                        .map_err(|_| format!("bad escape in the value of {ty}"))?;
                                    bytes.push(b);
                                    i += 3;
                                }
                                _ => {
                                    return Err(format!(
                                        "the value of {ty} has a '\\' that escapes nothing"
                                    ))
                                }
                            }
                            keep = bytes.len();
                        }
                        '"' | ';' | '<' | '>' => {
                            return Err(format!(
                                "the value of {ty} has an unescaped {c:?} (write \\{c})"
                            ))
                        }
                        _ => {
                            push_char(&mut bytes, c);
                            if c != ' ' {
                                keep = bytes.len();
                            }
                            i += 1;
                        }
                    }
                }
                bytes.truncate(keep);
                let text = String::from_utf8(bytes)
                    .map_err(|_| format!("the value of {ty} is not UTF-8 once unescaped"))?;
                if text.is_empty() {
                    return Err(format!("the value of {ty} is empty"));
                }
                AvaValue::Text(text)
            };
            rdn.push(Ava { oid, value });
            match chars.get(i) {
                None => {
                    rdns.push(std::mem::take(&mut rdn));
                    break;
                }
                Some('+') => i += 1,
                Some(',') => {
                    rdns.push(std::mem::take(&mut rdn));
                    i += 1;
                }
                Some(c) => return Err(format!("unexpected {c:?} after the value of {ty}")),
            }
        }
        if rdns.len() > 64 {
            return Err("more than 64 RDNs".into());
        }
        Ok(Dn(rdns))
    }

    /// The canonical RFC 4514 string (see the module documentation).
    pub fn canonical(&self) -> String {
        let mut out = String::new();
        for (n, rdn) in self.0.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            let mut avas: Vec<String> = rdn.iter().map(ava_string).collect();
            avas.sort();
            out.push_str(&avas.join("+"));
        }
        out
    }
}

/// The canonical form of an RFC 4514 string, or why it is not one.
pub fn canonical_subject(s: &str) -> Result<String, String> {
    Ok(Dn::parse(s)?.canonical())
}

fn push_char(bytes: &mut Vec<u8>, c: char) {
    let mut buf = [0u8; 4];
    bytes.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
}

fn type_oid(ty: &str) -> Result<String, String> {
    if ty.is_empty() {
        return Err("an attribute type is empty".into());
    }
    let upper = ty.to_ascii_uppercase();
    let upper = upper.strip_prefix("OID.").unwrap_or(&upper);
    if let Some((_, oid)) = SHORT_NAMES
        .iter()
        .chain(OTHER_NAMES)
        .find(|(n, _)| *n == upper)
    {
        return Ok(oid.to_string());
    }
    let arcs: Vec<&str> = upper.split('.').collect();
    if arcs.len() >= 2
        && arcs
            .iter()
            .all(|a| !a.is_empty() && a.len() <= 20 && a.chars().all(|c| c.is_ascii_digit()))
    {
        return Ok(arcs
            .iter()
            .map(|a| a.trim_start_matches('0').to_string())
            .map(|a| if a.is_empty() { "0".to_string() } else { a })
            .collect::<Vec<_>>()
            .join("."));
    }
    Err(format!(
        "{ty:?} is not an attribute type (a short name such as CN, O, OU, or a dotted OID)"
    ))
}

fn type_name(oid: &str) -> String {
    SHORT_NAMES
        .iter()
        .find(|(_, o)| *o == oid)
        .map(|(n, _)| n.to_string())
        .unwrap_or_else(|| oid.to_string())
}

fn ava_string(a: &Ava) -> String {
    let mut s = type_name(&a.oid);
    s.push('=');
    match &a.value {
        AvaValue::Der(hex) => {
            s.push('#');
            s.push_str(hex);
        }
        AvaValue::Text(t) => {
            let n = t.chars().count();
            for (i, c) in t.chars().enumerate() {
                match c {
                    ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=' => {
                        s.push('\\');
                        s.push(c);
                    }
                    '#' | ' ' if i == 0 => {
                        s.push('\\');
                        s.push(c);
                    }
                    ' ' if i + 1 == n => s.push_str("\\ "),
                    c if c.is_control() => {
                        let mut buf = [0u8; 4];
                        for b in c.encode_utf8(&mut buf).bytes() {
                            s.push_str(&format!("\\{b:02X}"));
                        }
                    }
                    c => s.push(c),
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(oid: &str, v: &str) -> Ava {
        Ava {
            oid: oid.into(),
            value: AvaValue::Text(v.into()),
        }
    }

    #[test]
    fn canonical_forms() {
        for (input, want) in [
            ("CN=app,OU=zone-a,O=Example", "CN=app,OU=zone-a,O=Example"),
            (
                "cn=app, ou=zone-a , o=Example",
                "CN=app,OU=zone-a,O=Example",
            ),
            ("2.5.4.3=app", "CN=app"),
            ("OID.2.5.4.3=app", "CN=app"),
            ("CN=a+O=b", "CN=a+O=b"),
            ("O=b+CN=a", "CN=a+O=b"),
            ("CN=svc\\, O\\=Example", "CN=svc\\, O\\=Example"),
            ("CN=svc\\2C O=Example", "CN=svc\\, O\\=Example"),
            ("CN=\\ lead", "CN=\\ lead"),
            ("CN=trail\\ ", "CN=trail\\ "),
            ("CN=\\#hash", "CN=\\#hash"),
            (
                "emailAddress=a@b.example",
                "1.2.840.113549.1.9.1=a@b.example",
            ),
            ("CN=#0C0178", "CN=#0c0178"),
            ("CN=caf\\C3\\A9", "CN=café"),
        ] {
            assert_eq!(canonical_subject(input).as_deref(), Ok(want), "{input}");
        }
        for bad in [
            "", "CN", "=x", "XX=y", "CN=a;b", "CN=a\"", "CN=", "CN=a\\", "CN=a\\x", "CN=#abc",
        ] {
            assert!(canonical_subject(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn an_escaped_comma_is_not_a_separator() {
        // The two names of the review's finding: a one-CN name and a two-RDN name.
        let one = Dn::from_der_order(vec![vec![text("2.5.4.3", "svc, O=Example")]]);
        let two = Dn::from_der_order(vec![
            vec![text("2.5.4.10", "Example")],
            vec![text("2.5.4.3", "svc")],
        ]);
        assert_eq!(two.canonical(), "CN=svc,O=Example");
        assert_eq!(one.canonical(), "CN=svc\\, O\\=Example");
        assert_eq!(
            canonical_subject("CN=svc, O=Example").unwrap(),
            two.canonical()
        );
        assert_ne!(
            canonical_subject("CN=svc, O=Example").unwrap(),
            one.canonical()
        );
        // What the canonical form prints parses back to the same name.
        for dn in [one, two] {
            assert_eq!(Dn::parse(&dn.canonical()).unwrap(), dn);
        }
    }
}
