//! `arca approval ...`: M-of-N approval (dual control) of sensitive operations.
//!
//! When a tenant's settings say an action needs approval, asking for it creates an approval
//! request instead (the command exits with status 3 and prints the request's id). Approvers
//! vote with `approve` or `deny`; once enough have approved, the requester, and only the
//! requester, runs `arca approval execute ID`, which performs the operation as it was asked.

use anyhow::{bail, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Value};

use super::Ctx;
use crate::data::{self, OutArgs};
use crate::output::{self, get, items, outln, print_json};

/// `arca approval` subcommands.
#[derive(Debug, Subcommand)]
pub enum ApprovalCommand {
    /// List the approval requests of your tenant, oldest first.
    List(ListArgs),
    /// Show one approval request with its votes.
    Show(IdArg),
    /// Approve a request (approvers; never the requester).
    Approve(VoteArgs),
    /// Deny a request: one deny refuses it for good (approvers; never the requester).
    Deny(VoteArgs),
    /// Run an approved request, once (its requester only). The answer is the operation's.
    Execute(ExecuteArgs),
    /// Withdraw your own pending request.
    Cancel(IdArg),
}

/// Where an approval request stands.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Status {
    /// Waiting for votes.
    Pending,
    /// Enough approvals: the requester can execute it.
    Approved,
    /// An approver said no.
    Denied,
    /// Not executed in time.
    Expired,
    /// Done.
    Executed,
    /// Withdrawn by the requester.
    Cancelled,
}

impl Status {
    fn wire(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
            Status::Executed => "executed",
            Status::Cancelled => "cancelled",
        }
    }
}

/// Options of `arca approval list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only requests in this state.
    #[arg(long, value_enum)]
    pub status: Option<Status>,
    /// Page size (1-1000).
    #[arg(long)]
    pub limit: Option<u32>,
    /// Start at this cursor (the `next_cursor` of the previous page).
    #[arg(long)]
    pub cursor: Option<String>,
}

/// `ID`.
#[derive(Debug, Args)]
pub struct IdArg {
    /// The approval request's id.
    #[arg(value_name = "ID")]
    pub id: String,
}

/// Options of `arca approval approve` and `deny`.
#[derive(Debug, Args)]
pub struct VoteArgs {
    /// The approval request's id.
    #[arg(value_name = "ID")]
    pub id: String,
    /// Why, kept with the vote (a ticket number, say).
    #[arg(long)]
    pub comment: Option<String>,
}

/// Options of `arca approval execute`.
#[derive(Debug, Args)]
pub struct ExecuteArgs {
    /// The approval request's id.
    #[arg(value_name = "ID")]
    pub id: String,
    /// For an approved key export: where to write the material (`-` for stdout); written
    /// with mode 0600.
    #[arg(long, value_name = "FILE")]
    pub out: Option<std::path::PathBuf>,
    /// For an approved key export: write base64 text instead of raw bytes.
    #[arg(long, requires = "out")]
    pub base64: bool,
    /// For an approved API token: where the token goes.
    #[command(flatten)]
    pub save: super::SaveProfileArgs,
}

/// `approved of required` for a request.
fn tally(a: &Value) -> String {
    let yes = items(a, "votes")
        .iter()
        .filter(|v| v.get("approve").and_then(Value::as_bool) == Some(true))
        .count();
    format!("{yes}/{}", get(a, "required"))
}

fn request_line(a: &Value) -> String {
    let mut s = format!(
        "approval request {} ({} by {}): {}, {} approvals",
        get(a, "id"),
        get(a, "action"),
        get(a, "requester"),
        get(a, "status"),
        tally(a)
    );
    if a.get("status").and_then(Value::as_str) == Some("approved") {
        s.push_str(&format!(
            "; {} can now run `arca approval execute {}`",
            get(a, "requester"),
            get(a, "id")
        ));
    }
    s
}

fn show_text(a: &Value) -> String {
    let rows = [
        ("Id", get(a, "id")),
        ("Action", get(a, "action")),
        ("Key id", get(a, "key_id")),
        ("Operation", get(a, "operation")),
        ("Requester", get(a, "requester")),
        ("Status", get(a, "status")),
        ("Approvals", format!("{} needed", tally(a))),
        ("From group", get(a, "group")),
        ("Created", get(a, "created_at")),
        ("Expires", get(a, "expires_at")),
        ("Executed", get(a, "executed_at")),
    ];
    let mut text = output::render(&output::fields_table(&rows));
    let votes = items(a, "votes");
    text.push_str("\n\nVotes:\n");
    if votes.is_empty() {
        text.push_str("none yet");
    } else {
        let mut t = output::table(["PRINCIPAL", "VOTE", "AT", "COMMENT"]);
        for v in votes {
            let vote = if v.get("approve").and_then(Value::as_bool) == Some(true) {
                "approve"
            } else {
                "deny"
            };
            t.add_row(vec![
                get(v, "principal"),
                vote.to_string(),
                get(v, "at"),
                get(v, "comment"),
            ]);
        }
        text.push_str(&output::render(&t));
    }
    text
}

/// One line about what an executed request did, from the shape of its result.
fn result_line(action: &str, r: &Value) -> String {
    if r.get("spec").is_some() && r.get("state").is_some() {
        super::key::key_line(r)
    } else if r.get("statements").is_some() {
        format!("policy version {} is current", get(r, "version"))
    } else if r.get("approval_rules").is_some() {
        "the tenant settings are updated".into()
    } else if r.get("roles").is_some() {
        super::identity::principal_line(r)
    } else if r.get("kind").is_some() && r.get("value").is_some() {
        format!(
            "binding {} -> principal {}",
            get(r, "id"),
            get(r, "principal_id")
        )
    } else if r.get("system").is_some() {
        let state = if r.get("deleted").and_then(Value::as_bool) == Some(true) {
            "deleted"
        } else if r.get("disabled").and_then(Value::as_bool) == Some(true) {
            "disabled"
        } else {
            "enabled"
        };
        format!("tenant {} ({}): {state}", get(r, "name"), get(r, "id"))
    } else {
        format!("{action} done")
    }
}

/// Runs an `arca approval` subcommand.
pub async fn run(ctx: &Ctx, cmd: ApprovalCommand) -> Result<()> {
    let c = ctx.client()?;
    match cmd {
        ApprovalCommand::List(a) => {
            let mut q: Vec<(&str, String)> = Vec::new();
            if let Some(s) = a.status {
                q.push(("status", s.wire().to_string()));
            }
            if let Some(l) = a.limit {
                q.push(("limit", l.to_string()));
            }
            if let Some(cur) = a.cursor {
                q.push(("cursor", cur));
            }
            let v = c.get(&["v1", "approvals"], &q).await?.value()?;
            if ctx.json() {
                print_json(&v);
                return Ok(());
            }
            let list = items(&v, "approvals");
            if list.is_empty() {
                outln!("no approval requests");
            } else {
                let mut t = output::table([
                    "ID",
                    "ACTION",
                    "KEY ID",
                    "REQUESTER",
                    "APPROVALS",
                    "STATUS",
                    "EXPIRES",
                ]);
                for x in list {
                    t.add_row(vec![
                        get(x, "id"),
                        get(x, "action"),
                        get(x, "key_id"),
                        get(x, "requester"),
                        tally(x),
                        get(x, "status"),
                        get(x, "expires_at"),
                    ]);
                }
                output::show(&t);
            }
            if let Some(n) = v.get("next_cursor").and_then(Value::as_str) {
                eprintln!("more approval requests: use --cursor {n}");
            }
        }
        ApprovalCommand::Show(a) => {
            let v = c.get(&["v1", "approvals", &a.id], &[]).await?.value()?;
            if ctx.json() {
                print_json(&v);
            } else {
                outln!("{}", show_text(&v));
            }
        }
        ApprovalCommand::Approve(a) => vote(ctx, a, "approve").await?,
        ApprovalCommand::Deny(a) => vote(ctx, a, "deny").await?,
        ApprovalCommand::Cancel(a) => {
            let v = c
                .post(&["v1", "approvals", &a.id, "cancel"], &json!({}))
                .await?
                .value()?;
            if ctx.json() {
                print_json(&v);
            } else {
                outln!("{}", request_line(&v));
            }
        }
        ApprovalCommand::Execute(a) => execute(ctx, a).await?,
    }
    Ok(())
}

async fn vote(ctx: &Ctx, a: VoteArgs, action: &str) -> Result<()> {
    let mut body = json!({});
    if let Some(comment) = &a.comment {
        body["comment"] = json!(comment);
    }
    let v = ctx
        .client()?
        .post(&["v1", "approvals", &a.id, action], &body)
        .await?
        .value()?;
    if ctx.json() {
        print_json(&v);
    } else {
        let verb = if action == "approve" {
            "approved"
        } else {
            "denied"
        };
        outln!("{verb}: {}", request_line(&v));
    }
    Ok(())
}

async fn execute(ctx: &Ctx, a: ExecuteArgs) -> Result<()> {
    let c = ctx.client()?;
    // An approved export answers with key material: know where it goes before spending
    // the approval, which runs only once.
    let request = c.get(&["v1", "approvals", &a.id], &[]).await?.value()?;
    let action = get(&request, "action");
    let out = OutArgs {
        out: a.out.clone(),
        base64: a.base64,
    };
    if action == "ExportKey" {
        if a.out.is_none() {
            bail!(
                "approval request {} exports key material: give --out FILE (or --out - into a pipe)",
                a.id
            );
        }
        data::check_out(&out)?;
    } else if a.out.is_some() {
        bail!("--out is for an approved ExportKey; this request is {action}");
    }
    if a.save.save_profile.is_some() && action != "CreateApiToken" {
        bail!("--save-profile is for an approved CreateApiToken; this request is {action}");
    }
    a.save.precheck(&ctx.settings)?;
    let body = c
        .post(&["v1", "approvals", &a.id, "execute"], &json!({}))
        .await?;
    let v = body.value()?;
    let result = v.get("result").cloned().unwrap_or(Value::Null);
    if action == "ExportKey" {
        #[derive(serde::Deserialize)]
        struct Executed {
            result: Material,
        }
        #[derive(serde::Deserialize)]
        struct Material {
            #[serde(deserialize_with = "data::de_secret")]
            material: zeroize::Zeroizing<Vec<u8>>,
        }
        let m: Executed = body.parse()?;
        let wrote = data::write_binary(&out, &m.result.material, true)?;
        super::key::report_file(ctx, &result, &["material"], wrote, "key material");
        return Ok(());
    }
    if let Some(secret) = result.get("token").and_then(Value::as_str) {
        // An approved CreateApiToken: the new token is shown this once.
        let pid = get(&result, "principal_id");
        let who = super::identity::principal_names(&c)
            .await
            .remove(&pid)
            .unwrap_or(pid);
        let what = format!(
            "executed approval request {} ({action}): created {}",
            a.id,
            super::identity::token_created_line(&result, &who)
        );
        let mut redacted = v.clone();
        if let Some(r) = redacted.get_mut("result").and_then(Value::as_object_mut) {
            r.remove("token");
        }
        return super::deliver_secret(ctx, &a.save, &v, redacted, secret, &what);
    }
    if ctx.json() {
        print_json(&v);
    } else {
        outln!(
            "executed approval request {} ({action}): {}",
            a.id,
            result_line(&action, &result)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_say_where_a_request_stands() {
        let a = json!({
            "id": "r1", "action": "ScheduleKeyDestruction", "requester": "admin",
            "status": "approved", "required": 2,
            "votes": [{"approve": true}, {"approve": true}]
        });
        let l = request_line(&a);
        assert!(l.contains("approved, 2/2 approvals"), "{l}");
        assert!(l.contains("arca approval execute r1"), "{l}");
        assert_eq!(
            result_line("X", &json!({"statements": [], "version": 3})),
            "policy version 3 is current"
        );
        assert!(result_line(
            "X",
            &json!({"name": "t", "id": "i", "system": false, "disabled": true})
        )
        .ends_with("disabled"));
    }
}
