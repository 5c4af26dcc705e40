//! AWS key policy documents ⇄ Arca key policy statements.
//!
//! An AWS key policy is IAM JSON (`Version`, `Statement[]` with `Sid`, `Effect`, `Principal`,
//! `Action`, `Resource`, `Condition`). Arca's statements say the same things with its own
//! nouns, so the mapping is one-to-one where both can say it, and a document that says
//! something Arca cannot enforce is refused (`MalformedPolicyDocumentException`) rather than
//! half-applied: a dropped condition would widen access.
//!
//! | AWS | Arca |
//! |---|---|
//! | `"*"`, `{"AWS": "*"}`, `arn:aws:iam::<account>:root` | `*` (everyone of the tenant, as roles allow) |
//! | `arn:aws:iam::<account>:user/<name>` | `principal:<name>` |
//! | `arn:aws:iam::<account>:group/<name>` | `group:<name>` |
//! | `arn:aws:iam::<account>:role/<role>` | `role:<role>` (Arca's built-in roles) |
//! | `kms:<Action>`, `kms:*`, `kms:Generate*` | the action names, `*`, the key actions matching |
//! | `IpAddress` / `aws:SourceIp` | `source_cidrs` |
//! | `StringEquals` / `kms:EncryptionContext:<k>` | `encryption_context` |
//! | `DateGreaterThan` / `DateLessThan` on `aws:CurrentTime` | `not_before` / `not_after` |
//! | `StringEquals` / `arca:Door`, `arca:Certificate:<attr>`; `NumericEquals` / `arca:Weekday`; `arca:HoursUtc` | Arca's own conditions, so every Arca policy reads back and round-trips |
//!
//! `Resource` is always the key itself (`*`); `NotAction`, `NotPrincipal` and other
//! condition keys are refused.

use arca_core::access::{Conditions, Effect, Statement};
use serde_json::{json, Map, Value};

use super::kms::AwsError;

fn malformed(message: impl Into<String>) -> AwsError {
    AwsError::new("MalformedPolicyDocumentException", message)
}

/// One or many strings (IAM allows both).
fn strings(v: &Value, what: &str) -> Result<Vec<String>, AwsError> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(String::from)
                    .ok_or_else(|| malformed(format!("{what} must be strings")))
            })
            .collect(),
        _ => Err(malformed(format!(
            "{what} must be a string or a list of strings"
        ))),
    }
}

fn one_or_many(v: Vec<String>) -> Value {
    if v.len() == 1 {
        json!(v[0])
    } else {
        json!(v)
    }
}

/// The ARN an Arca subject has in AWS documents.
pub fn principal_arn(p: &str, account: &str) -> String {
    match p.split_once(':') {
        Some(("principal", n)) => format!("arn:aws:iam::{account}:user/{n}"),
        Some(("group", n)) => format!("arn:aws:iam::{account}:group/{n}"),
        Some(("role", n)) => format!("arn:aws:iam::{account}:role/{n}"),
        _ => "*".into(),
    }
}

/// Renders Arca statements as an AWS key policy document. Grants are not part of it (as
/// in AWS, ListGrants shows them).
pub fn to_aws(statements: &[Statement], account: &str) -> Value {
    let principal = |p: &str| principal_arn(p, account);
    let list: Vec<Value> = statements
        .iter()
        .filter(|s| s.grant.is_none())
        .map(|s| {
            let mut m = Map::new();
            if let Some(sid) = &s.sid {
                m.insert("Sid".into(), json!(sid));
            }
            m.insert(
                "Effect".into(),
                json!(if s.effect == Effect::Allow {
                    "Allow"
                } else {
                    "Deny"
                }),
            );
            let ps: Vec<String> = s.principals.iter().map(|p| principal(p)).collect();
            m.insert("Principal".into(), json!({"AWS": one_or_many(ps)}));
            let acts: Vec<String> = s
                .actions
                .iter()
                .map(|a| {
                    if a == "*" {
                        "kms:*".into()
                    } else {
                        format!("kms:{a}")
                    }
                })
                .collect();
            m.insert("Action".into(), one_or_many(acts));
            m.insert("Resource".into(), json!("*"));
            let c = conditions_to_aws(&s.conditions);
            if !c.is_empty() {
                m.insert("Condition".into(), Value::Object(c));
            }
            Value::Object(m)
        })
        .collect();
    json!({"Version": "2012-10-17", "Id": "arca-key-policy", "Statement": list})
}

fn conditions_to_aws(c: &Conditions) -> Map<String, Value> {
    let mut out: Map<String, Value> = Map::new();
    let mut add = |op: &str, key: String, v: Value| {
        out.entry(op.to_string())
            .or_insert_with(|| Value::Object(Map::new()))
            .as_object_mut()
            .map(|m| m.insert(key, v));
    };
    if !c.source_cidrs.is_empty() {
        add(
            "IpAddress",
            "aws:SourceIp".into(),
            one_or_many(c.source_cidrs.clone()),
        );
    }
    for (k, v) in &c.encryption_context {
        add(
            "StringEquals",
            format!("kms:EncryptionContext:{k}"),
            json!(v),
        );
    }
    if let Some(t) = c.not_before {
        add(
            "DateGreaterThan",
            "aws:CurrentTime".into(),
            json!(t.to_rfc3339()),
        );
    }
    if let Some(t) = c.not_after {
        add(
            "DateLessThan",
            "aws:CurrentTime".into(),
            json!(t.to_rfc3339()),
        );
    }
    if !c.doors.is_empty() {
        let d = c.doors.iter().map(|d| d.as_str().to_string()).collect();
        add("StringEquals", "arca:Door".into(), one_or_many(d));
    }
    for (k, v) in &c.certificate {
        add("StringEquals", format!("arca:Certificate:{k}"), json!(v));
    }
    if !c.weekdays.is_empty() {
        add("NumericEquals", "arca:Weekday".into(), json!(c.weekdays));
    }
    if let Some(h) = &c.hours_utc {
        add(
            "StringEquals",
            "arca:HoursUtc".into(),
            serde_json::to_value(h).unwrap_or(Value::Null),
        );
    }
    out
}

/// The Arca subject an AWS principal names.
pub fn subject(p: &str, account: &str) -> Result<String, AwsError> {
    if p == "*" {
        return Ok("*".into());
    }
    let prefix = format!("arn:aws:iam::{account}:");
    let Some(rest) = p.strip_prefix(&prefix) else {
        return Err(malformed(format!(
            "principal {p}: only this tenant's account ({account}) has principals here"
        )));
    };
    match rest.split_once('/') {
        None if rest == "root" => Ok("*".into()),
        Some(("user", n)) if !n.is_empty() => Ok(format!("principal:{n}")),
        Some(("group", n)) if !n.is_empty() => Ok(format!("group:{n}")),
        Some(("role", n)) if !n.is_empty() => Ok(format!("role:{n}")),
        _ => Err(malformed(format!(
            "principal {p}: a user/, group/ or role/ ARN, root, or *"
        ))),
    }
}

/// The Arca actions an AWS action (maybe with `*`) names.
fn actions(a: &str) -> Result<Vec<String>, AwsError> {
    let Some(name) = a.strip_prefix("kms:") else {
        return Err(malformed(format!(
            "action {a}: KMS actions are kms:<Action>"
        )));
    };
    if name == "*" {
        return Ok(vec!["*".into()]);
    }
    if let Some(prefix) = name.strip_suffix('*') {
        let matched: Vec<String> = arca_core::Action::ALL
            .iter()
            .filter(|a| a.name().starts_with(prefix) && a.is_key_action())
            .map(|a| a.name().to_string())
            .collect();
        if matched.is_empty() {
            return Err(malformed(format!("action {a} matches no key action")));
        }
        return Ok(matched);
    }
    Ok(vec![name.to_string()])
}

fn conditions_from_aws(v: &Value) -> Result<Conditions, AwsError> {
    let mut c = Conditions::default();
    let Some(ops) = v.as_object() else {
        return Err(malformed("Condition must be an object"));
    };
    for (op, keys) in ops {
        let Some(keys) = keys.as_object() else {
            return Err(malformed(format!("Condition {op} must be an object")));
        };
        for (key, val) in keys {
            let unsupported = || {
                malformed(format!(
                    "condition {op} {key} cannot be enforced by Arca (see docs/aws.md for the conditions it maps)"
                ))
            };
            match (op.as_str(), key.as_str()) {
                ("IpAddress", "aws:SourceIp") => {
                    c.source_cidrs.extend(strings(val, "aws:SourceIp")?)
                }
                ("StringEquals", k) if k.starts_with("kms:EncryptionContext:") => {
                    let name = &k["kms:EncryptionContext:".len()..];
                    let vals = strings(val, k)?;
                    if vals.len() != 1 {
                        return Err(malformed(format!("{k}: one value")));
                    }
                    c.encryption_context
                        .insert(name.to_string(), vals[0].clone());
                }
                ("DateGreaterThan" | "DateLessThan", "aws:CurrentTime") => {
                    let s = val
                        .as_str()
                        .ok_or_else(|| malformed("aws:CurrentTime takes one date"))?;
                    let t = chrono::DateTime::parse_from_rfc3339(s)
                        .map_err(|_| malformed(format!("aws:CurrentTime {s}: an ISO 8601 date")))?
                        .with_timezone(&chrono::Utc);
                    if op == "DateGreaterThan" {
                        c.not_before = Some(t);
                    } else {
                        c.not_after = Some(t);
                    }
                }
                ("StringEquals", "arca:Door") => {
                    for d in strings(val, key)? {
                        c.doors.push(
                            serde_json::from_value(json!(d))
                                .map_err(|_| malformed(format!("arca:Door {d}")))?,
                        );
                    }
                }
                ("StringEquals", k) if k.starts_with("arca:Certificate:") => {
                    let vals = strings(val, k)?;
                    if vals.len() != 1 {
                        return Err(malformed(format!("{k}: one value")));
                    }
                    c.certificate
                        .insert(k["arca:Certificate:".len()..].to_string(), vals[0].clone());
                }
                ("NumericEquals", "arca:Weekday") => {
                    c.weekdays = serde_json::from_value(val.clone())
                        .map_err(|_| malformed("arca:Weekday takes a list of 1..7"))?;
                }
                ("StringEquals", "arca:HoursUtc") => {
                    c.hours_utc = Some(
                        serde_json::from_value(val.clone())
                            .map_err(|_| malformed("arca:HoursUtc as GetKeyPolicy writes it"))?,
                    );
                }
                _ => return Err(unsupported()),
            }
        }
    }
    Ok(c)
}

/// Parses an AWS key policy document into Arca statements (validated by the service).
pub fn from_aws(doc: &str, account: &str) -> Result<Vec<Statement>, AwsError> {
    if doc.len() > 32 * 1024 {
        return Err(malformed("a key policy is at most 32 KiB"));
    }
    let v: Value = serde_json::from_str(doc).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let list = match v.get("Statement") {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => return Err(malformed("the document has no Statement")),
    };
    let mut out = Vec::new();
    for (i, s) in list.iter().enumerate() {
        let Some(obj) = s.as_object() else {
            return Err(malformed(format!("Statement[{i}] must be an object")));
        };
        for k in obj.keys() {
            if !matches!(
                k.as_str(),
                "Sid" | "Effect" | "Principal" | "Action" | "Resource" | "Condition"
            ) {
                return Err(malformed(format!("Statement[{i}].{k} is not supported")));
            }
        }
        let effect = match obj.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => return Err(malformed(format!("Statement[{i}].Effect is Allow or Deny"))),
        };
        let principals = match obj.get("Principal") {
            Some(Value::String(s)) if s == "*" => vec!["*".to_string()],
            Some(Value::Object(m)) => {
                let mut ps = Vec::new();
                for (kind, v) in m {
                    if kind != "AWS" {
                        return Err(malformed(format!(
                            "Statement[{i}].Principal.{kind}: only AWS principals (this tenant's)"
                        )));
                    }
                    for p in strings(v, "Principal.AWS")? {
                        ps.push(subject(&p, account)?);
                    }
                }
                ps
            }
            _ => {
                return Err(malformed(format!(
                    "Statement[{i}].Principal is \"*\" or {{\"AWS\": ...}}"
                )))
            }
        };
        let mut acts = Vec::new();
        for a in strings(
            obj.get("Action")
                .ok_or_else(|| malformed(format!("Statement[{i}].Action is required")))?,
            "Action",
        )? {
            acts.extend(actions(&a)?);
        }
        if let Some(r) = obj.get("Resource") {
            if strings(r, "Resource")?.iter().any(|r| r != "*") {
                return Err(malformed(format!(
                    "Statement[{i}].Resource: a key policy's resource is the key, \"*\""
                )));
            }
        }
        let conditions = match obj.get("Condition") {
            Some(c) => conditions_from_aws(c)?,
            None => Conditions::default(),
        };
        out.push(Statement {
            sid: obj.get("Sid").and_then(Value::as_str).map(String::from),
            effect,
            principals,
            actions: acts,
            conditions,
            grant: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCOUNT: &str = "123456789012";

    #[test]
    fn a_typical_aws_policy_maps_and_round_trips() {
        let doc = r#"{"Version":"2012-10-17","Statement":[
            {"Sid":"admins","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::123456789012:role/tenant-admin"},"Action":"kms:*","Resource":"*"},
            {"Sid":"app","Effect":"Allow","Principal":{"AWS":["arn:aws:iam::123456789012:user/app"]},
             "Action":["kms:Encrypt","kms:Decrypt","kms:GenerateDataKey*"],"Resource":"*",
             "Condition":{"StringEquals":{"kms:EncryptionContext:tenant":"acme"},"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}},
            {"Effect":"Deny","Principal":"*","Action":"kms:ScheduleKeyDeletion","Resource":"*"}]}"#;
        let s = from_aws(doc, ACCOUNT).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].principals, vec!["role:tenant-admin"]);
        assert_eq!(s[0].actions, vec!["*"]);
        assert_eq!(s[1].principals, vec!["principal:app"]);
        assert!(s[1]
            .actions
            .contains(&"GenerateDataKeyWithoutPlaintext".to_string()));
        assert!(s[1].actions.contains(&"GenerateDataKeyPair".to_string()));
        assert_eq!(s[1].conditions.encryption_context["tenant"], "acme");
        assert_eq!(s[1].conditions.source_cidrs, vec!["10.0.0.0/8"]);
        assert_eq!(s[2].effect, Effect::Deny);
        let back = from_aws(&to_aws(&s, ACCOUNT).to_string(), ACCOUNT).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn what_arca_cannot_enforce_is_refused() {
        for doc in [
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::999999999999:root"},"Action":"kms:*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"kms:*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Condition":{"StringEquals":{"kms:ViaService":"s3.us-east-1.amazonaws.com"}}}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","NotAction":"kms:Decrypt"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"arn:aws:kms:us-east-1:1:key/x"}]}"#,
            "not json",
        ] {
            assert_eq!(
                from_aws(doc, ACCOUNT).unwrap_err().error,
                "MalformedPolicyDocumentException",
                "{doc}"
            );
        }
    }
}
