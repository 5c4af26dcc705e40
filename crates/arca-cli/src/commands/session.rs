//! `arca login` and `arca logout`: trade a long-lived credential for a short-lived session
//! (an access token that expires soon, and a refresh token that continues it), so that the
//! long-lived one can stay out of everyday use.

use anyhow::{bail, Result};
use clap::Args;
use serde_json::{json, Value};

use super::{save_profile, Ctx, SaveProfileArgs};
use crate::client::ApiClient;
use crate::output::{self, get, outln, print_json};
use crate::profile::ProfileFile;

/// Options of `arca login`.
#[derive(Debug, Args)]
pub struct LoginArgs {
    /// Continue the session saved in the profile in use (its refresh token) instead of
    /// starting a new one; the profile gets the new tokens.
    #[arg(long)]
    pub refresh: bool,
    /// Where the session's tokens go.
    #[command(flatten)]
    pub save: SaveProfileArgs,
}

/// `arca login`.
pub async fn login(ctx: &Ctx, a: LoginArgs) -> Result<()> {
    a.save.precheck(&ctx.settings)?;
    let (v, target, replace) = if a.refresh {
        let Some(refresh) = ctx.settings.profile_refresh_token()? else {
            bail!(
                "profile {:?} holds no refresh token; start a session with `arca login --save-profile NAME`",
                ctx.settings.profile
            );
        };
        // A refresh grant carries no other credential: the refresh token is the proof.
        let c = ApiClient::connect(&ctx.settings, false)?;
        #[derive(serde::Serialize)]
        struct RefreshGrant<'a> {
            grant_type: &'static str,
            refresh_token: &'a str,
        }
        let body = RefreshGrant {
            grant_type: "refresh_token",
            refresh_token: refresh.expose(),
        };
        let v = c.post(&["v1", "auth", "token"], &body).await?.value()?;
        let target = a
            .save
            .save_profile
            .clone()
            .unwrap_or_else(|| ctx.settings.profile.clone());
        let replace = a.save.force || a.save.save_profile.is_none();
        (v, Some(target), replace)
    } else {
        let v = ctx
            .client()?
            .post(
                &["v1", "auth", "token"],
                &json!({ "grant_type": "credential" }),
            )
            .await?
            .value()?;
        (v, a.save.save_profile.clone(), a.save.force)
    };
    let access = v
        .get("access_token")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let refresh = v.get("refresh_token").and_then(Value::as_str);
    if access.is_empty() {
        bail!("the server's answer holds no access token");
    }
    let what = format!(
        "session {}: the access token is valid for {} s, the refresh token for {} s",
        get(&v, "session_id"),
        get(&v, "expires_in"),
        get(&v, "refresh_expires_in")
    );
    match target {
        Some(name) => {
            let path = save_profile(&ctx.settings, &name, access, refresh, replace)?;
            if ctx.json() {
                let mut shown = output::without(&v, &["access_token", "refresh_token"]);
                shown["profile"] = json!(name);
                print_json(&shown);
            } else {
                outln!(
                    "{what}; saved both to profile {name:?} in {} (use --profile {name}; \
                     `arca login --refresh --profile {name}` continues it)",
                    path.display()
                );
            }
        }
        None if ctx.json() => print_json(&v),
        None => output::secret_once(
            &format!(
                "{what}. Only the access token is printed; --save-profile NAME keeps the refresh token too. The access token:"
            ),
            access,
        ),
    }
    Ok(())
}

/// `arca logout`: ends the session whose access token is in use. When that token came
/// from the profile, the profile's session tokens are removed (they no longer work).
pub async fn logout(ctx: &Ctx) -> Result<()> {
    ctx.client()?
        .post(&["v1", "auth", "logout"], &json!({}))
        .await?;
    let mut cleared = false;
    if ctx.settings.token.is_none() {
        let path = ctx.settings.profile_path();
        let mut pf = ProfileFile::load(&path)?;
        if let Some(p) = pf.profiles.get_mut(&ctx.settings.profile) {
            if p.refresh_token.is_some() {
                p.token = None;
                p.refresh_token = None;
                pf.save(&path)?;
                cleared = true;
            }
        }
    }
    if ctx.json() {
        print_json(&json!({ "logged_out": true, "profile_cleared": cleared }));
    } else if cleared {
        outln!(
            "logged out; removed the session's tokens from profile {:?}",
            ctx.settings.profile
        );
    } else {
        outln!("logged out");
    }
    Ok(())
}
