//! REST routes of identity and access: sessions, tenants, settings, principals, tokens,
//! credential bindings, key policies and approvals. Thin like the rest of the door: decode,
//! call one service method, encode.

use std::sync::Arc;

use arca_core::access::{ApprovalRequest, KeyPolicy, TenantSettings};
use arca_core::model::Principal;
use arca_core::Error;
use arca_service::api::*;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::rest::{meta_of, ApiError, AppState, Authed, ErrorBody, JsonBody};

type App = Arc<AppState>;

fn err(e: Error) -> Response {
    ApiError(e).into_response()
}

/// Parses `a=b&c=d` into known keys, refusing unknown ones.
pub(crate) async fn query(
    app: &AppState,
    caller: &arca_service::Caller,
    action: &str,
    q: Option<String>,
    known: &[&str],
) -> Result<Vec<(String, String)>, Response> {
    let mut out = Vec::new();
    for (k, v) in form_urlencoded::parse(q.as_deref().unwrap_or("").as_bytes()) {
        if !known.contains(&k.as_ref()) {
            let e = Error::invalid(
                k.as_ref(),
                if known.is_empty() {
                    "unknown query parameter; this route takes none".to_string()
                } else {
                    format!("unknown query parameter; known: {}", known.join(", "))
                },
            );
            return Err(err(app
                .svc
                .audit_refusal(&caller.meta, Some(&caller.principal), action, e)
                .await));
        }
        out.push((k.into_owned(), v.into_owned()));
    }
    Ok(out)
}

/// Trades a credential for a session (`grant_type=credential`, authenticated by the
/// request's bearer token or client certificate), or continues one
/// (`grant_type=refresh_token`, no other credential needed).
#[utoipa::path(post, path = "/v1/auth/token", tag = "auth", request_body = SessionRequest,
    responses((status = 200, body = SessionTokens), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn token(
    State(app): State<App>,
    req: axum::extract::Request,
) -> Result<Json<SessionTokens>, Response> {
    let (mut parts, body) = req.into_parts();
    let meta = meta_of(&parts);
    let has_credential =
        parts.headers.contains_key(header::AUTHORIZATION) || meta.client_cert.is_some();
    let body = <JsonBody as axum::extract::FromRequest<App>>::from_request(
        axum::extract::Request::from_parts(parts.clone(), body),
        &app,
    )
    .await?;
    let r: SessionRequest = body.parse_anon(&app, &meta, "CreateSession").await?;
    let caller = if has_credential && r.grant_type.as_deref() != Some("refresh_token") {
        Some(
            Authed::from_request_parts(&mut parts, &app)
                .await
                .map_err(IntoResponse::into_response)?
                .0,
        )
    } else {
        None
    };
    app.svc
        .token_grant(caller.as_ref(), meta, r)
        .await
        .map(Json)
        .map_err(err)
}

/// Ends the caller's session: its access and refresh tokens stop working.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn logout(
    State(app): State<App>,
    Authed(caller): Authed,
) -> Result<StatusCode, ApiError> {
    app.svc.logout(&caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates a tenant and its first tenant-admin (system operators).
#[utoipa::path(post, path = "/v1/tenants", tag = "tenants", request_body = CreateTenantRequest,
    responses((status = 201, body = TenantCreated), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_tenant(
    State(app): State<App>,
    Authed(caller): Authed,
    body: JsonBody,
) -> Result<(StatusCode, Json<TenantCreated>), Response> {
    let r: CreateTenantRequest = body.parse(&app, &caller, "CreateTenant").await?;
    app.svc
        .create_tenant(&caller, r)
        .await
        .map(|t| (StatusCode::CREATED, Json(t)))
        .map_err(err)
}

/// Lists tenants (system operators).
#[utoipa::path(get, path = "/v1/tenants", tag = "tenants",
    responses((status = 200, body = TenantList), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_tenants(
    State(app): State<App>,
    Authed(caller): Authed,
) -> Result<Json<TenantList>, ApiError> {
    Ok(Json(app.svc.list_tenants(&caller).await?))
}

/// Describes a tenant by id or name (system operators).
#[utoipa::path(get, path = "/v1/tenants/{tenant}", tag = "tenants", params(("tenant" = String, Path)),
    responses((status = 200, body = TenantInfo), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn describe_tenant(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(t): Path<String>,
) -> Result<Json<TenantInfo>, ApiError> {
    Ok(Json(app.svc.describe_tenant(&caller, &t).await?))
}

/// Deletes a disabled tenant with no live keys (system operators; approval if required).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}", tag = "tenants", params(("tenant" = String, Path)),
    responses((status = 200, body = TenantInfo), (status = 202, body = ErrorBody), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_tenant(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(t): Path<String>,
) -> Result<Json<TenantInfo>, ApiError> {
    Ok(Json(app.svc.delete_tenant(&caller, &t).await?))
}

/// The trust anchors (client CAs, JWT issuers) of a tenant (system operators).
#[utoipa::path(get, path = "/v1/tenants/{tenant}/trust", tag = "tenants", params(("tenant" = String, Path)),
    responses((status = 200, body = TrustAnchorList), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_trust(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(t): Path<String>,
) -> Result<Json<TrustAnchorList>, ApiError> {
    Ok(Json(app.svc.list_trust_anchors(&caller, &t).await?))
}

/// Assigns a client CA or a JWT issuer to a tenant (system operators): identities issued
/// under it authenticate into that tenant only.
#[utoipa::path(post, path = "/v1/tenants/{tenant}/trust", tag = "tenants", params(("tenant" = String, Path)),
    request_body = TrustAnchorRequest,
    responses((status = 201, body = TrustAnchorInfo), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn add_trust(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(t): Path<String>,
    body: JsonBody,
) -> Result<(StatusCode, Json<TrustAnchorInfo>), Response> {
    let r: TrustAnchorRequest = body.parse(&app, &caller, "AssignTrustAnchor").await?;
    app.svc
        .assign_trust_anchor(&caller, &t, r)
        .await
        .map(|a| (StatusCode::CREATED, Json(a)))
        .map_err(err)
}

/// Withdraws a trust anchor (its id, percent-encoded) from a tenant (system operators).
#[utoipa::path(delete, path = "/v1/tenants/{tenant}/trust/{id}", tag = "tenants",
    params(("tenant" = String, Path), ("id" = String, Path)),
    responses((status = 200, body = TrustAnchorInfo), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn withdraw_trust(
    State(app): State<App>,
    Authed(caller): Authed,
    Path((t, id)): Path<(String, String)>,
) -> Result<Json<TrustAnchorInfo>, ApiError> {
    Ok(Json(app.svc.withdraw_trust_anchor(&caller, &t, &id).await?))
}

/// `disable` or `enable` a tenant (system operators).
#[utoipa::path(post, path = "/v1/tenants/{tenant}/{action}", tag = "tenants",
    params(("tenant" = String, Path), ("action" = String, Path, description = "disable | enable")),
    responses((status = 200, body = TenantInfo), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn tenant_state(
    State(app): State<App>,
    Authed(caller): Authed,
    Path((t, action)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Json<TenantInfo>, Response> {
    let _: crate::rest::EmptyRequest = body.parse(&app, &caller, "DisableTenant").await?;
    let disabled = match action.as_str() {
        "disable" => true,
        "enable" => false,
        other => return Err(err(Error::not_found("operation", other))),
    };
    app.svc
        .set_tenant_disabled(&caller, &t, disabled)
        .await
        .map(Json)
        .map_err(err)
}

/// The caller's tenant settings: role combinations, default key policy, quorum rules.
#[utoipa::path(get, path = "/v1/tenant/settings", tag = "tenants",
    responses((status = 200, body = TenantSettings), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn get_settings(
    State(app): State<App>,
    Authed(caller): Authed,
) -> Result<Json<TenantSettings>, ApiError> {
    Ok(Json(app.svc.get_tenant_settings(&caller).await?))
}

/// Replaces the caller's tenant settings (tenant-admins; approval if required).
#[utoipa::path(put, path = "/v1/tenant/settings", tag = "tenants", request_body = TenantSettings,
    responses((status = 200, body = TenantSettings), (status = 202, body = ErrorBody), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn put_settings(
    State(app): State<App>,
    Authed(caller): Authed,
    body: JsonBody,
) -> Result<Json<TenantSettings>, Response> {
    let r: TenantSettings = body.parse(&app, &caller, "UpdateTenantSettings").await?;
    app.svc
        .update_tenant_settings(&caller, r)
        .await
        .map(Json)
        .map_err(err)
}

/// Creates a principal in the caller's tenant.
#[utoipa::path(post, path = "/v1/principals", tag = "principals", request_body = CreatePrincipalRequest,
    responses((status = 201, body = Principal), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_principal(
    State(app): State<App>,
    Authed(caller): Authed,
    body: JsonBody,
) -> Result<(StatusCode, Json<Principal>), Response> {
    let r: CreatePrincipalRequest = body.parse(&app, &caller, "CreatePrincipal").await?;
    app.svc
        .create_principal(&caller, r)
        .await
        .map(|p| (StatusCode::CREATED, Json(p)))
        .map_err(err)
}

/// Principals of the caller's tenant.
#[utoipa::path(get, path = "/v1/principals", tag = "principals",
    responses((status = 200, body = PrincipalList), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_principals(
    State(app): State<App>,
    Authed(caller): Authed,
) -> Result<Json<PrincipalList>, ApiError> {
    Ok(Json(app.svc.list_principals(&caller).await?))
}

/// One principal, by id or name.
#[utoipa::path(get, path = "/v1/principals/{principal}", tag = "principals", params(("principal" = String, Path)),
    responses((status = 200, body = Principal), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn describe_principal(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(p): Path<String>,
) -> Result<Json<Principal>, ApiError> {
    Ok(Json(app.svc.describe_principal(&caller, &p).await?))
}

/// Changes a principal's roles, groups or disabled flag.
#[utoipa::path(patch, path = "/v1/principals/{principal}", tag = "principals", params(("principal" = String, Path)),
    request_body = UpdatePrincipalRequest,
    responses((status = 200, body = Principal), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn update_principal(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(p): Path<String>,
    body: JsonBody,
) -> Result<Json<Principal>, Response> {
    let r: UpdatePrincipalRequest = body.parse(&app, &caller, "UpdatePrincipal").await?;
    app.svc
        .update_principal(&caller, &p, r)
        .await
        .map(Json)
        .map_err(err)
}

/// Issues an API token for a principal (the secret is in this response only).
#[utoipa::path(post, path = "/v1/principals/{principal}/tokens", tag = "principals", params(("principal" = String, Path)),
    request_body = CreateTokenRequest,
    responses((status = 201, body = TokenCreated), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_token(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(p): Path<String>,
    body: JsonBody,
) -> Result<(StatusCode, Json<TokenCreated>), Response> {
    let r: CreateTokenRequest = body.parse(&app, &caller, "CreateApiToken").await?;
    app.svc
        .create_api_token(&caller, &p, r)
        .await
        .map(|t| (StatusCode::CREATED, Json(t)))
        .map_err(err)
}

/// A principal's tokens (metadata only).
#[utoipa::path(get, path = "/v1/principals/{principal}/tokens", tag = "principals", params(("principal" = String, Path)),
    responses((status = 200, body = TokenList), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_principal_tokens(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(p): Path<String>,
) -> Result<Json<TokenList>, ApiError> {
    Ok(Json(app.svc.list_api_tokens(&caller, Some(&p)).await?))
}

/// Every token of the caller's tenant (metadata only).
#[utoipa::path(get, path = "/v1/tokens", tag = "principals",
    responses((status = 200, body = TokenList), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_tokens(
    State(app): State<App>,
    Authed(caller): Authed,
) -> Result<Json<TokenList>, ApiError> {
    Ok(Json(app.svc.list_api_tokens(&caller, None).await?))
}

/// Revokes a token by its id (tenant-admins any; everyone their own).
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "principals", params(("id" = String, Path)),
    responses((status = 200, body = TokenInfo), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn revoke_token(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<TokenInfo>, ApiError> {
    Ok(Json(app.svc.revoke_api_token(&caller, &id).await?))
}

/// Issues an AWS access key pair for a principal, for the AWS-compatible door (the secret
/// access key is in this response only).
#[utoipa::path(post, path = "/v1/principals/{principal}/aws-credentials", tag = "principals", params(("principal" = String, Path)),
    request_body = CreateTokenRequest,
    responses((status = 201, body = AwsCredentialCreated), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_aws_credential(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(p): Path<String>,
    body: JsonBody,
) -> Result<(StatusCode, Json<AwsCredentialCreated>), Response> {
    let r: CreateTokenRequest = body.parse(&app, &caller, "CreateAwsCredential").await?;
    app.svc
        .create_aws_credential(&caller, &p, r)
        .await
        .map(|t| (StatusCode::CREATED, Json(t)))
        .map_err(err)
}

/// A principal's AWS access key pairs (metadata only).
#[utoipa::path(get, path = "/v1/principals/{principal}/aws-credentials", tag = "principals", params(("principal" = String, Path)),
    responses((status = 200, body = AwsCredentialList), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_principal_aws_credentials(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(p): Path<String>,
) -> Result<Json<AwsCredentialList>, ApiError> {
    Ok(Json(app.svc.list_aws_credentials(&caller, Some(&p)).await?))
}

/// Every AWS access key pair of the caller's tenant (metadata only).
#[utoipa::path(get, path = "/v1/aws-credentials", tag = "principals",
    responses((status = 200, body = AwsCredentialList), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_aws_credentials(
    State(app): State<App>,
    Authed(caller): Authed,
) -> Result<Json<AwsCredentialList>, ApiError> {
    Ok(Json(app.svc.list_aws_credentials(&caller, None).await?))
}

/// Revokes an AWS access key pair by its access key id.
#[utoipa::path(delete, path = "/v1/aws-credentials/{id}", tag = "principals", params(("id" = String, Path)),
    responses((status = 200, body = AwsCredentialInfo), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn revoke_aws_credential(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<AwsCredentialInfo>, ApiError> {
    Ok(Json(app.svc.revoke_aws_credential(&caller, &id).await?))
}

/// Binds a client certificate (fingerprint, subject or SAN) or a JWT identity to a
/// principal.
#[utoipa::path(post, path = "/v1/principals/{principal}/bindings", tag = "principals", params(("principal" = String, Path)),
    request_body = CreateBindingRequest,
    responses((status = 201, body = BindingInfo), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn create_binding(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(p): Path<String>,
    body: JsonBody,
) -> Result<(StatusCode, Json<BindingInfo>), Response> {
    let r: CreateBindingRequest = body.parse(&app, &caller, "CreateBinding").await?;
    app.svc
        .create_binding(&caller, &p, r)
        .await
        .map(|b| (StatusCode::CREATED, Json(b)))
        .map_err(err)
}

/// Credential bindings of the caller's tenant.
#[utoipa::path(get, path = "/v1/bindings", tag = "principals",
    responses((status = 200, body = BindingList), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_bindings(
    State(app): State<App>,
    Authed(caller): Authed,
) -> Result<Json<BindingList>, ApiError> {
    Ok(Json(app.svc.list_bindings(&caller).await?))
}

/// Removes a binding (its id, percent-encoded).
#[utoipa::path(delete, path = "/v1/bindings/{id}", tag = "principals", params(("id" = String, Path)),
    responses((status = 204), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn delete_binding(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.svc.delete_binding(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A key's current policy.
#[utoipa::path(get, path = "/v1/keys/{key}/policy", tag = "policies", params(("key" = String, Path)),
    responses((status = 200, body = KeyPolicy), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn get_policy(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(k): Path<String>,
) -> Result<Json<KeyPolicy>, ApiError> {
    Ok(Json(app.svc.get_key_policy(&caller, &k).await?))
}

/// Replaces a key's policy (a new version; approval if required).
#[utoipa::path(put, path = "/v1/keys/{key}/policy", tag = "policies", params(("key" = String, Path)),
    request_body = PutPolicyRequest,
    responses((status = 200, body = KeyPolicy), (status = 202, body = ErrorBody), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn put_policy(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(k): Path<String>,
    body: JsonBody,
) -> Result<Json<KeyPolicy>, Response> {
    let r: PutPolicyRequest = body.parse(&app, &caller, "PutKeyPolicy").await?;
    app.svc
        .put_key_policy(&caller, &k, r.statements, r.expected_version)
        .await
        .map(Json)
        .map_err(err)
}

/// Every version of a key's policy, newest first, with who set it and when.
#[utoipa::path(get, path = "/v1/keys/{key}/policy/versions", tag = "policies", params(("key" = String, Path)),
    responses((status = 200, body = PolicyVersions), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn policy_versions(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(k): Path<String>,
) -> Result<Json<PolicyVersions>, ApiError> {
    Ok(Json(app.svc.list_key_policy_versions(&caller, &k).await?))
}

/// Makes an earlier policy version current again (as a new version).
#[utoipa::path(post, path = "/v1/keys/{key}/policy/rollback", tag = "policies", params(("key" = String, Path)),
    request_body = RollbackPolicyRequest,
    responses((status = 200, body = KeyPolicy), (status = 202, body = ErrorBody), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn rollback_policy(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(k): Path<String>,
    body: JsonBody,
) -> Result<Json<KeyPolicy>, Response> {
    let r: RollbackPolicyRequest = body.parse(&app, &caller, "PutKeyPolicy").await?;
    app.svc
        .rollback_key_policy(&caller, &k, r.version)
        .await
        .map(Json)
        .map_err(err)
}

/// Approval requests of the caller's tenant (`?status=pending|approved|...`).
#[utoipa::path(get, path = "/v1/approvals", tag = "approvals", params(ListApprovalsQuery),
    responses((status = 200, body = ApprovalList), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn list_approvals(
    State(app): State<App>,
    Authed(caller): Authed,
    RawQuery(q): RawQuery,
) -> Result<Json<ApprovalList>, Response> {
    let mut lq = ListApprovalsQuery::default();
    for (k, v) in query(
        &app,
        &caller,
        "ListApprovals",
        q,
        &["status", "limit", "cursor"],
    )
    .await?
    {
        let bad = |f: &str, m: &str| err(Error::invalid(f, m));
        match k.as_str() {
            "status" => {
                lq.status = Some(
                    serde_json::from_value(serde_json::Value::String(v)).map_err(|_| {
                        bad(
                            "status",
                            "one of pending, approved, denied, expired, executed, cancelled",
                        )
                    })?,
                )
            }
            "limit" => lq.limit = Some(v.parse().map_err(|_| bad("limit", "must be 1 to 1000"))?),
            _ => lq.cursor = Some(v),
        }
    }
    app.svc
        .list_approvals(&caller, lq)
        .await
        .map(Json)
        .map_err(err)
}

/// One approval request, with its votes.
#[utoipa::path(get, path = "/v1/approvals/{id}", tag = "approvals", params(("id" = String, Path)),
    responses((status = 200, body = ApprovalRequest), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn describe_approval(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(id): Path<String>,
) -> Result<Json<ApprovalRequest>, ApiError> {
    Ok(Json(app.svc.describe_approval(&caller, &id).await?))
}

/// `approve` or `deny` (approvers, never the requester; `{"comment": "..."}`), `cancel`
/// (the requester), or `execute` (the requester, once, after enough approvals: the answer
/// is the operation's own).
#[utoipa::path(post, path = "/v1/approvals/{id}/{action}", tag = "approvals",
    params(("id" = String, Path), ("action" = String, Path, description = "approve | deny | cancel | execute")),
    request_body = VoteRequest,
    responses((status = 200, body = Object), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn approval_action(
    State(app): State<App>,
    Authed(caller): Authed,
    Path((id, action)): Path<(String, String)>,
    body: JsonBody,
) -> Result<Response, Response> {
    let svc = &app.svc;
    match action.as_str() {
        "approve" | "deny" => {
            let name = if action == "approve" {
                "Approve"
            } else {
                "Deny"
            };
            let r: VoteRequest = body.parse(&app, &caller, name).await?;
            svc.vote(&caller, &id, action == "approve", r)
                .await
                .map(|a| Json(a).into_response())
                .map_err(err)
        }
        "cancel" => {
            let _: crate::rest::EmptyRequest = body.parse(&app, &caller, "CancelApproval").await?;
            svc.cancel_approval(&caller, &id)
                .await
                .map(|a| Json(a).into_response())
                .map_err(err)
        }
        "execute" => {
            let _: crate::rest::EmptyRequest = body.parse(&app, &caller, "ExecuteApproval").await?;
            svc.execute_approval(&caller, &id)
                .await
                .map(|a| Json(a).into_response())
                .map_err(err)
        }
        other => Err(err(Error::not_found("operation", other))),
    }
}

/// The routes of this module.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/auth/token", post(token))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/tenants", post(create_tenant).get(list_tenants))
        .route(
            "/v1/tenants/{tenant}",
            get(describe_tenant).delete(delete_tenant),
        )
        .route("/v1/tenants/{tenant}/{action}", post(tenant_state))
        .route(
            "/v1/tenants/{tenant}/trust",
            get(list_trust).post(add_trust),
        )
        .route(
            "/v1/tenants/{tenant}/trust/{id}",
            axum::routing::delete(withdraw_trust),
        )
        .route("/v1/tenant/settings", get(get_settings).put(put_settings))
        .route(
            "/v1/principals",
            post(create_principal).get(list_principals),
        )
        .route(
            "/v1/principals/{principal}",
            get(describe_principal).patch(update_principal),
        )
        .route(
            "/v1/principals/{principal}/tokens",
            post(create_token).get(list_principal_tokens),
        )
        .route("/v1/principals/{principal}/bindings", post(create_binding))
        .route("/v1/tokens", get(list_tokens))
        .route(
            "/v1/principals/{principal}/aws-credentials",
            post(create_aws_credential).get(list_principal_aws_credentials),
        )
        .route("/v1/aws-credentials", get(list_aws_credentials))
        .route(
            "/v1/aws-credentials/{id}",
            axum::routing::delete(revoke_aws_credential),
        )
        .route("/v1/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/v1/bindings", get(list_bindings))
        .route("/v1/bindings/{id}", axum::routing::delete(delete_binding))
        .route("/v1/keys/{key}/policy", get(get_policy).put(put_policy))
        .route("/v1/keys/{key}/policy/versions", get(policy_versions))
        .route("/v1/keys/{key}/policy/rollback", post(rollback_policy))
        .route("/v1/approvals", get(list_approvals))
        .route("/v1/approvals/{id}", get(describe_approval))
        .route("/v1/approvals/{id}/{action}", post(approval_action))
}
