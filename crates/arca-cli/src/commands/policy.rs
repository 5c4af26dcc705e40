//! `arca policy ...`: a key's policy, the statements that say who may do what with it.
//! Every change makes a new numbered version, so a mistake can be rolled back.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::{Ctx, KeyArg};
use crate::output::{self, cell, get, items, outln, print_json};

/// `arca policy` subcommands.
#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Show a key's current policy.
    Show(KeyArg),
    /// Replace a key's policy with the statements of a JSON file (may need approval).
    Set(SetArgs),
    /// Add one statement to a key's policy: allow (or deny) actions to principals, groups
    /// or roles (may need approval).
    Grant(GrantArgs),
    /// Remove the statements with a given sid from a key's policy (may need approval).
    Remove(RemoveArgs),
    /// List every version of a key's policy, newest first, with who set it and when.
    Versions(KeyArg),
    /// Make an earlier version current again, as a new version (may need approval).
    Rollback(RollbackArgs),
}

/// Options of `arca policy set`.
#[derive(Debug, Args)]
pub struct SetArgs {
    /// Key id, name or alias.
    #[arg(value_name = "KEY")]
    pub key: String,
    /// `{"statements": [...]}` (what `arca policy show --output json` prints) or a bare
    /// array of statements; `-` reads stdin.
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
}

/// Options of `arca policy grant`.
#[derive(Debug, Args)]
pub struct GrantArgs {
    /// Key id, name or alias.
    #[arg(value_name = "KEY")]
    pub key: String,
    /// Who (repeatable): role:ROLE, principal:NAME-OR-ID, group:NAME, or * (everyone in
    /// the tenant).
    #[arg(long = "to", value_name = "WHO", required = true)]
    pub to: Vec<String>,
    /// What (repeatable): an action on a key (Encrypt, Decrypt, Sign, ...) or *.
    #[arg(long = "action", value_name = "ACTION", required = true)]
    pub actions: Vec<String>,
    /// Make it a deny statement: a deny wins over every allow.
    #[arg(long)]
    pub deny: bool,
    /// A label for the statement (lets `arca policy remove --sid` take it out again).
    #[arg(long, value_name = "SID")]
    pub sid: Option<String>,
    /// Only from these source addresses (CIDR, repeatable). A condition narrows this
    /// statement only: an allow that another statement already grants without it is
    /// refused, since it would restrict nothing; name that statement with --replace.
    #[arg(long = "source-cidr", value_name = "CIDR")]
    pub source_cidrs: Vec<String>,
    /// Take the statements with this sid out in the same change (repeatable), e.g. the
    /// default `crypto-users-use-new-keys`, so that the new statement is the only one that
    /// grants what it names.
    #[arg(long = "replace", value_name = "SID")]
    pub replace: Vec<String>,
}

/// Options of `arca policy remove`.
#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// Key id, name or alias.
    #[arg(value_name = "KEY")]
    pub key: String,
    /// The sid of the statements to remove.
    #[arg(long, value_name = "SID")]
    pub sid: String,
}

/// Options of `arca policy rollback`.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// Key id, name or alias.
    #[arg(value_name = "KEY")]
    pub key: String,
    /// The version whose statements become current again.
    #[arg(value_name = "VERSION")]
    pub version: u32,
}

/// A statement's conditions in one cell: `source_cidrs=10.0.0.0/8; hours_utc=9-17`.
fn conditions_cell(c: &Value) -> String {
    let Some(o) = c.as_object().filter(|o| !o.is_empty()) else {
        return "-".into();
    };
    o.iter()
        .map(|(k, v)| {
            let shown = match (k.as_str(), v) {
                ("hours_utc", _) => format!("{}-{}", get(v, "start_hour"), get(v, "end_hour")),
                (_, Value::Object(_)) => output::tags(v),
                ("not_before" | "not_after", Value::String(s)) => output::short_time(s),
                _ => cell(v),
            };
            format!("{k}={shown}")
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Policy statements as a table.
pub fn statements_table(statements: &[Value]) -> comfy_table::Table {
    let mut t = output::table(["SID", "EFFECT", "WHO", "ACTIONS", "CONDITIONS"]);
    for s in statements {
        t.add_row(vec![
            get(s, "sid"),
            get(s, "effect"),
            get(s, "principals"),
            get(s, "actions"),
            conditions_cell(s.get("conditions").unwrap_or(&Value::Null)),
        ]);
    }
    t
}

fn policy_header(p: &Value) -> String {
    let mut s = format!("policy version {}", get(p, "version"));
    if p.get("updated_by").is_some_and(|u| !u.is_null()) {
        s.push_str(&format!(
            ", set by {} at {}",
            get(p, "updated_by"),
            get(p, "updated_at")
        ));
    }
    s
}

/// A policy as text: its version line and its statements.
pub fn policy_text(p: &Value) -> String {
    let st = items(p, "statements");
    let body = if st.is_empty() {
        "no statements: only the roles' own rights apply (nobody uses the key)".to_string()
    } else {
        output::render(&statements_table(st))
    };
    format!("{}\n{body}", policy_header(p))
}

fn print_policy(ctx: &Ctx, p: &Value, what: &str) {
    if ctx.json() {
        print_json(p);
    } else {
        outln!("{what}: {}", policy_header(p));
    }
}

/// The statements of a policy document: `{"statements": [...]}` or `[...]`.
fn statements_of(doc: Value) -> Result<Value> {
    match doc {
        Value::Array(_) => Ok(doc),
        Value::Object(mut o) => match o.remove("statements") {
            Some(s @ Value::Array(_)) => Ok(s),
            _ => bail!("the policy file has no \"statements\" array"),
        },
        _ => bail!("the policy file must hold {{\"statements\": [...]}} or an array"),
    }
}

/// True if a statement list names `item` (itself or `*`).
fn names(list: &Value, item: &str) -> bool {
    list.as_array()
        .is_some_and(|l| l.iter().any(|x| x == "*" || x == item))
}

/// True if a statement has no condition.
fn unconditional(s: &Value) -> bool {
    match s.get("conditions") {
        None | Some(Value::Null) => true,
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

/// The sid (or position) of an allow statement without conditions that already grants
/// every subject and every action of `new`, which has a condition: adding `new` beside it
/// would restrict nothing, since any allow that matches permits.
fn already_granted(statements: &[Value], new: &Value) -> Option<String> {
    if new["effect"] != "allow" || unconditional(new) {
        return None;
    }
    statements.iter().enumerate().find_map(|(i, s)| {
        let covers = s["effect"] == "allow"
            && unconditional(s)
            && items(new, "principals")
                .iter()
                .filter_map(Value::as_str)
                .all(|p| names(&s["principals"], p))
            && items(new, "actions")
                .iter()
                .filter_map(Value::as_str)
                .all(|a| names(&s["actions"], a));
        covers.then(|| match s.get("sid").and_then(Value::as_str) {
            Some(sid) => sid.to_string(),
            None => format!("#{} (no sid)", i + 1),
        })
    })
}

/// The statement `policy grant` adds.
fn grant_statement(a: &GrantArgs) -> Value {
    let mut s = json!({
        "effect": if a.deny { "deny" } else { "allow" },
        "principals": a.to,
        "actions": a.actions,
    });
    if let Some(sid) = &a.sid {
        s["sid"] = json!(sid);
    }
    if !a.source_cidrs.is_empty() {
        s["conditions"] = json!({ "source_cidrs": a.source_cidrs });
    }
    s
}

/// Runs an `arca policy` subcommand.
pub async fn run(ctx: &Ctx, cmd: PolicyCommand) -> Result<()> {
    let c = ctx.client()?;
    match cmd {
        PolicyCommand::Show(a) => {
            let v = c
                .get(&["v1", "keys", &a.key, "policy"], &[])
                .await?
                .value()?;
            if ctx.json() {
                print_json(&v);
            } else {
                outln!("{}", policy_text(&v));
            }
        }
        PolicyCommand::Set(a) => {
            let statements = statements_of(super::read_json_file(&a.file)?)?;
            let v = c
                .put(
                    &["v1", "keys", &a.key, "policy"],
                    &json!({ "statements": statements }),
                )
                .await?
                .value()?;
            print_policy(ctx, &v, &format!("replaced the policy of key {}", a.key));
        }
        PolicyCommand::Grant(a) => {
            let path = ["v1", "keys", a.key.as_str(), "policy"];
            let current = c.get(&path, &[]).await?.value()?;
            let mut statements = items(&current, "statements").to_vec();
            for sid in &a.replace {
                let before = statements.len();
                statements.retain(|s| s.get("sid").and_then(Value::as_str) != Some(sid.as_str()));
                if statements.len() == before {
                    bail!(
                        "no statement of the policy of key {} has sid {sid:?} (see `arca policy show {}`)",
                        a.key,
                        a.key
                    );
                }
            }
            let new = grant_statement(&a);
            if let Some(by) = already_granted(&statements, &new) {
                bail!(
                    "this allow would restrict nothing: statement {by} of key {}'s policy already \
                     grants {} {} without conditions, and any matching allow permits. To allow \
                     it only under the condition, replace that statement in the same change \
                     (--replace SID; see `arca policy show {}`)",
                    a.key,
                    a.to.join(", "),
                    a.actions.join(", "),
                    a.key
                );
            }
            statements.push(new);
            let v = c
                .put(
                    &path,
                    &json!({ "statements": statements, "expected_version": current.get("version") }),
                )
                .await?
                .value()?;
            print_policy(ctx, &v, &format!("updated the policy of key {}", a.key));
        }
        PolicyCommand::Remove(a) => {
            let path = ["v1", "keys", a.key.as_str(), "policy"];
            let current = c.get(&path, &[]).await?.value()?;
            let mut statements = items(&current, "statements").to_vec();
            let before = statements.len();
            statements.retain(|s| s.get("sid").and_then(Value::as_str) != Some(a.sid.as_str()));
            if statements.len() == before {
                bail!(
                    "no statement of the policy of key {} has sid {:?} (see `arca policy show {}`)",
                    a.key,
                    a.sid,
                    a.key
                );
            }
            let v = c
                .put(
                    &path,
                    &json!({ "statements": statements, "expected_version": current.get("version") }),
                )
                .await?
                .value()?;
            print_policy(ctx, &v, &format!("updated the policy of key {}", a.key));
        }
        PolicyCommand::Versions(a) => {
            let v = c
                .get(&["v1", "keys", &a.key, "policy", "versions"], &[])
                .await?
                .value()?;
            if ctx.json() {
                print_json(&v);
            } else {
                let mut t = output::table(["VERSION", "STATEMENTS", "SET BY", "SET AT"]);
                for p in items(&v, "versions") {
                    t.add_row(vec![
                        get(p, "version"),
                        items(p, "statements").len().to_string(),
                        get(p, "updated_by"),
                        get(p, "updated_at"),
                    ]);
                }
                output::show(&t);
            }
        }
        PolicyCommand::Rollback(a) => {
            let v = c
                .post(
                    &["v1", "keys", &a.key, "policy", "rollback"],
                    &json!({ "version": a.version }),
                )
                .await?
                .value()?;
            print_policy(
                ctx,
                &v,
                &format!(
                    "rolled the policy of key {} back to version {}",
                    a.key, a.version
                ),
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_files_in_both_shapes() {
        let s = json!([{"effect": "allow", "principals": ["*"], "actions": ["*"]}]);
        assert_eq!(statements_of(s.clone()).unwrap(), s);
        let doc = json!({"version": 3, "statements": s, "updated_by": "admin"});
        assert_eq!(statements_of(doc).unwrap(), s);
        assert!(statements_of(json!({"x": 1})).is_err());
        assert!(statements_of(json!("no")).is_err());
    }

    #[test]
    fn a_conditional_allow_beside_a_broader_one_is_noticed() {
        let default = json!({"sid": "crypto-users-use-new-keys", "effect": "allow",
            "principals": ["role:crypto-user"], "actions": ["*"]});
        let narrow = json!({"effect": "allow", "principals": ["role:crypto-user"],
            "actions": ["Encrypt"], "conditions": {"source_cidrs": ["10.0.0.0/8"]}});
        assert_eq!(
            already_granted(std::slice::from_ref(&default), &narrow).as_deref(),
            Some("crypto-users-use-new-keys")
        );
        // Another subject, a deny, a statement that is itself conditional, or no
        // condition on the new one: nothing to say.
        let other = json!({"effect": "allow", "principals": ["principal:app"],
            "actions": ["Encrypt"], "conditions": {"source_cidrs": ["10.0.0.0/8"]}});
        assert_eq!(
            already_granted(std::slice::from_ref(&default), &other),
            None
        );
        let mut deny = narrow.clone();
        deny["effect"] = json!("deny");
        assert_eq!(already_granted(std::slice::from_ref(&default), &deny), None);
        let mut cond = default.clone();
        cond["conditions"] = json!({"doors": ["rest"]});
        assert_eq!(already_granted(&[cond], &narrow), None);
        let mut plain = narrow.clone();
        plain.as_object_mut().unwrap().remove("conditions");
        assert_eq!(already_granted(&[default], &plain), None);
        // `*` covers everyone; a statement without a sid is named by its position.
        let everyone = json!({"effect": "allow", "principals": ["*"], "actions": ["Encrypt"]});
        assert_eq!(
            already_granted(&[everyone], &narrow).as_deref(),
            Some("#1 (no sid)")
        );
    }

    #[test]
    fn conditions_in_one_cell() {
        let c = json!({
            "source_cidrs": ["10.0.0.0/8", "192.168.0.0/16"],
            "hours_utc": {"start_hour": 9, "end_hour": 17},
            "certificate": {"ou": "payments"}
        });
        assert_eq!(
            conditions_cell(&c),
            "certificate=ou=payments; hours_utc=9-17; source_cidrs=10.0.0.0/8, 192.168.0.0/16"
        );
        assert_eq!(conditions_cell(&json!(null)), "-");
    }
}
