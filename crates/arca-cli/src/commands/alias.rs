//! `arca alias ...`: names that point at keys and can be moved.

use anyhow::Result;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::Ctx;
use crate::output::{self, get, outln, print_json};

/// `arca alias` subcommands.
#[derive(Debug, Subcommand)]
pub enum AliasCommand {
    /// Create an alias pointing at a key.
    Create(AliasKeyArgs),
    /// Point an existing alias at another key.
    Move(AliasKeyArgs),
    /// Delete an alias (the key stays).
    Delete(AliasArg),
    /// List aliases (all, or one key's with --key).
    List(ListArgs),
}

/// `ALIAS KEY`.
#[derive(Debug, Args)]
pub struct AliasKeyArgs {
    /// The alias (an `alias/` prefix is accepted and ignored).
    pub alias: String,
    /// Target key: id, name or alias.
    #[arg(value_name = "KEY")]
    pub key: String,
}

/// `ALIAS`.
#[derive(Debug, Args)]
pub struct AliasArg {
    /// The alias.
    pub alias: String,
}

/// Options of `arca alias list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only the aliases of this key (id, name or alias).
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,
}

fn print_alias(ctx: &Ctx, v: &Value, verb: &str) {
    if ctx.json() {
        print_json(v);
    } else {
        outln!(
            "{verb} alias {} -> key {}",
            get(v, "alias"),
            get(v, "key_id")
        );
    }
}

/// Runs an `arca alias` subcommand.
pub async fn run(ctx: &Ctx, cmd: AliasCommand) -> Result<()> {
    let c = ctx.client()?;
    match cmd {
        AliasCommand::Create(a) => {
            let v = c
                .post(&["v1", "aliases"], &json!({"alias": a.alias, "key": a.key}))
                .await?
                .value()?;
            print_alias(ctx, &v, "created");
        }
        AliasCommand::Move(a) => {
            let v = c
                .put(&["v1", "aliases", &a.alias], &json!({"key": a.key}))
                .await?
                .value()?;
            print_alias(ctx, &v, "moved");
        }
        AliasCommand::Delete(a) => {
            c.delete(&["v1", "aliases", &a.alias]).await?;
            if ctx.json() {
                print_json(&json!({"deleted": a.alias}));
            } else {
                outln!("deleted alias {}", a.alias);
            }
        }
        AliasCommand::List(a) => {
            let q: Vec<(&str, String)> = a.key.map(|k| vec![("key", k)]).unwrap_or_default();
            let v = c.get(&["v1", "aliases"], &q).await?.value()?;
            if ctx.json() {
                print_json(&v);
            } else {
                let list = v
                    .get("aliases")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                if list.is_empty() {
                    outln!("no aliases");
                } else {
                    let mut t = output::table(["ALIAS", "KEY ID"]);
                    for x in &list {
                        t.add_row(vec![get(x, "alias"), get(x, "key_id")]);
                    }
                    output::show(&t);
                }
            }
        }
    }
    Ok(())
}
