//! REST routes of the audit trail: search, verifiable export, the usage report and series,
//! verification, the signing public key, checkpoints and destruction receipts. Thin:
//! decode, call one service method, encode.

use arca_core::Action;
use std::sync::Arc;

use arca_core::audit::{AuditSegment, Checkpoint, DestructionReceipt};
use arca_core::Error;
use arca_service::retention::{PruneRequest, PruneResult};
use arca_service::trail::{
    AuditPage, AuditSearch, AuditVerification, UsageReport, UsageSeries, UsageSeriesQuery,
};
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use crate::rest::{ApiError, AppState, Authed, ErrorBody, JsonBody};
use crate::rest_identity::query;

type App = Arc<AppState>;

/// Audits a query parameter's refusal against the caller and turns it into the response.
async fn refuse(
    app: &AppState,
    caller: &arca_service::Caller,
    action: arca_core::Action,
    e: Error,
) -> Response {
    ApiError(
        app.svc
            .audit_refusal(&caller.meta, Some(&caller.principal), action, e)
            .await,
    )
    .into_response()
}

fn parse<T: std::str::FromStr>(field: &str, v: &str, what: &str) -> Result<T, Error> {
    v.parse()
        .map_err(|_| Error::invalid(field, format!("{v:?} is not {what}")))
}

fn time(field: &str, v: &str) -> Result<chrono::DateTime<chrono::Utc>, Error> {
    chrono::DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|_| {
            Error::invalid(
                field,
                format!("{v:?} is not an RFC 3339 time (2026-11-26T10:00:00Z)"),
            )
        })
}

/// Searches the trail, newest first unless `order=asc` or `after` is given. Auditors see
/// their tenant; auditors of the system tenant see every tenant (`tenant=` narrows).
#[utoipa::path(get, path = "/v1/audit", tag = "audit", params(AuditSearch),
    responses((status = 200, body = AuditPage), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn search(
    State(app): State<App>,
    Authed(caller): Authed,
    RawQuery(q): RawQuery,
) -> Result<Json<AuditPage>, Response> {
    let known = [
        "from",
        "to",
        "key",
        "principal",
        "operation",
        "outcome",
        "after",
        "before",
        "order",
        "limit",
        "tenant",
    ];
    let pairs = query(&app, &caller, Action::ListAudit, q, &known).await?;
    let mut s = AuditSearch::default();
    let decoded = (|| -> Result<(), Error> {
        for (k, v) in &pairs {
            match k.as_str() {
                "from" => s.from = Some(time(k, v)?),
                "to" => s.to = Some(time(k, v)?),
                "key" => s.key = Some(parse(k, v, "a key id")?),
                "principal" => s.principal = Some(v.clone()),
                "operation" => s.operation = Some(v.clone()),
                "outcome" => s.outcome = Some(v.clone()),
                "after" => s.after = Some(parse(k, v, "a sequence number")?),
                "before" => s.before = Some(parse(k, v, "a sequence number")?),
                "order" => s.order = Some(v.clone()),
                "limit" => s.limit = Some(parse(k, v, "a number")?),
                _ => s.tenant = Some(parse(k, v, "a tenant id")?),
            }
        }
        Ok(())
    })();
    if let Err(e) = decoded {
        return Err(refuse(&app, &caller, Action::ListAudit, e).await);
    }
    Ok(Json(
        app.svc
            .search_audit(&caller, s)
            .await
            .map_err(|e| ApiError(e).into_response())?,
    ))
}

/// A page of the verifiable export (JSON lines: each event with its `hash`, each
/// checkpoint as `{"checkpoint": ...}` after the event it covers). Page with `after=` the
/// last `seq` received. Auditors of the system tenant only.
#[utoipa::path(get, path = "/v1/audit/export", tag = "audit", operation_id = "export_audit",
    params(("after" = Option<u64>, Query, description = "last seq already received (default 0)"), ("limit" = Option<u32>, Query, description = "1-10000, default 5000")),
    responses((status = 200, content_type = "application/x-ndjson", body = String), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn export(
    State(app): State<App>,
    Authed(caller): Authed,
    RawQuery(q): RawQuery,
) -> Result<Response, Response> {
    let pairs = query(&app, &caller, Action::ExportAudit, q, &["after", "limit"]).await?;
    let mut after = 0u64;
    let mut limit = 5000u32;
    for (k, v) in &pairs {
        let r = match k.as_str() {
            "after" => parse(k, v, "a sequence number").map(|x| after = x),
            _ => parse(k, v, "a number").map(|x| limit = x),
        };
        if let Err(e) = r {
            return Err(refuse(&app, &caller, Action::ExportAudit, e).await);
        }
    }
    let lines = app
        .svc
        .export_audit(&caller, after, limit)
        .await
        .map_err(|e| ApiError(e).into_response())?;
    let mut body = lines.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], body).into_response())
}

/// Per key: last use and counts by operation and by principal (successful uses only).
#[utoipa::path(get, path = "/v1/audit/usage", tag = "audit",
    params(("key" = Option<String>, Query, description = "one key (id, name or alias)"), ("from" = Option<String>, Query, description = "RFC 3339: uses at or after")),
    responses((status = 200, body = UsageReport), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn usage(
    State(app): State<App>,
    Authed(caller): Authed,
    RawQuery(q): RawQuery,
) -> Result<Json<UsageReport>, Response> {
    let pairs = query(&app, &caller, Action::AuditUsageReport, q, &["key", "from"]).await?;
    let mut key = None;
    let mut from = None;
    for (k, v) in &pairs {
        if k == "key" {
            key = Some(v.clone());
        } else {
            match time(k, v) {
                Ok(t) => from = Some(t),
                Err(e) => return Err(refuse(&app, &caller, Action::AuditUsageReport, e).await),
            }
        }
    }
    Ok(Json(
        app.svc
            .audit_usage(&caller, key.as_deref(), from)
            .await
            .map_err(|e| ApiError(e).into_response())?,
    ))
}

/// One key's successful uses over time: counts per operation in every UTC hour or day from
/// `from` to `to` (widened to the interval's boundaries), oldest first, empty buckets too.
#[utoipa::path(get, path = "/v1/audit/usage/series", tag = "audit", params(UsageSeriesQuery),
    responses((status = 200, body = UsageSeries), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn usage_series(
    State(app): State<App>,
    Authed(caller): Authed,
    RawQuery(q): RawQuery,
) -> Result<Json<UsageSeries>, Response> {
    let known = ["key", "from", "to", "interval"];
    let pairs = query(&app, &caller, Action::AuditUsageSeries, q, &known).await?;
    let mut s = UsageSeriesQuery::default();
    let decoded = (|| -> Result<(), Error> {
        for (k, v) in &pairs {
            match k.as_str() {
                "key" => s.key = Some(v.clone()),
                "from" => s.from = Some(time(k, v)?),
                "to" => s.to = Some(time(k, v)?),
                _ => s.interval = Some(v.clone()),
            }
        }
        Ok(())
    })();
    if let Err(e) = decoded {
        return Err(refuse(&app, &caller, Action::AuditUsageSeries, e).await);
    }
    Ok(Json(
        app.svc
            .audit_usage_series(&caller, s)
            .await
            .map_err(|e| ApiError(e).into_response())?,
    ))
}

/// Verifies the stored trail (every link, every checkpoint signature) against the server's
/// audit signing key. A break answers 200 with `ok: false` and the record. Auditors of the
/// system tenant only.
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerification), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn verify_trail(
    State(app): State<App>,
    Authed(caller): Authed,
    RawQuery(q): RawQuery,
) -> Result<Json<AuditVerification>, Response> {
    query(&app, &caller, Action::VerifyAudit, q, &[]).await?;
    Ok(Json(
        app.svc
            .verify_audit(&caller)
            .await
            .map_err(|e| ApiError(e).into_response())?,
    ))
}

/// The audit signing public key (PEM, Ed25519 SPKI) that verifies checkpoints and
/// receipts. Pin it once; pass it to `arca audit verify --public-key`.
#[utoipa::path(get, path = "/v1/audit/public-key", tag = "audit", operation_id = "audit_public_key",
    responses((status = 200, content_type = "application/x-pem-file", body = String), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn public_key(
    State(app): State<App>,
    Authed(_caller): Authed,
) -> Result<Response, ApiError> {
    let raw = app.svc.audit_public_key().await?;
    Ok((
        [(header::CONTENT_TYPE, "application/x-pem-file")],
        arca_service::trail::public_key_pem(&raw),
    )
        .into_response())
}

/// Signs a checkpoint at the head of the trail now (also done on a timer and at
/// shutdown). Returns it, or `null` when the head is already signed.
#[utoipa::path(post, path = "/v1/audit/checkpoint", tag = "audit",
    responses((status = 200, body = Option<Checkpoint>), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn checkpoint(
    State(app): State<App>,
    Authed(caller): Authed,
) -> Result<Json<Option<Checkpoint>>, ApiError> {
    Ok(Json(app.svc.request_checkpoint(&caller).await?))
}

/// Seals the trail at a checkpoint signed now and archives the next segment (the records
/// since the last archived one) to a file of the server's archive directory. Returns the
/// segment, or `null` when there is nothing new. Auditors of the system tenant.
#[utoipa::path(post, path = "/v1/audit/archive", tag = "audit",
    responses((status = 200, body = Option<AuditSegment>), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn archive(
    State(app): State<App>,
    Authed(caller): Authed,
) -> Result<Json<Option<AuditSegment>>, ApiError> {
    Ok(Json(app.svc.archive_audit(&caller).await?))
}

/// The archived segments of the trail, oldest first, with their files' SHA-256 and whether
/// their records were pruned from the store. Auditors of the system tenant.
#[utoipa::path(get, path = "/v1/audit/segments", tag = "audit",
    responses((status = 200, body = Vec<AuditSegment>), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn segments(
    State(app): State<App>,
    Authed(caller): Authed,
) -> Result<Json<Vec<AuditSegment>>, ApiError> {
    Ok(Json(app.svc.list_audit_segments(&caller).await?))
}

/// Deletes archived segments' records from the store (`through_seq`: up to the end of that
/// segment; `older_than`: the segments whose last record is older; neither: every archived
/// segment), once each segment's file is found with its recorded SHA-256. System operators
/// of the system tenant; a quorum rule on `PruneAudit` applies.
#[utoipa::path(post, path = "/v1/audit/prune", tag = "audit", request_body = PruneRequest,
    responses((status = 200, body = PruneResult), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn prune(
    State(app): State<App>,
    Authed(caller): Authed,
    body: JsonBody,
) -> Result<Json<PruneResult>, Response> {
    let r: PruneRequest = body.parse(&app, &caller, Action::PruneAudit).await?;
    app.svc
        .prune_audit(&caller, r)
        .await
        .map(Json)
        .map_err(|e| ApiError(e).into_response())
}

/// The signed destruction receipts of a key's destroyed versions.
#[utoipa::path(get, path = "/v1/keys/{key}/receipts", tag = "audit", params(("key" = String, Path, description = "key id, name or alias")),
    responses((status = 200, body = Vec<DestructionReceipt>), (status = "4XX", body = ErrorBody)), security(("bearer" = [])))]
pub async fn receipts(
    State(app): State<App>,
    Authed(caller): Authed,
    Path(key): Path<String>,
) -> Result<Json<Vec<DestructionReceipt>>, ApiError> {
    Ok(Json(app.svc.destruction_receipts(&caller, &key).await?))
}

/// The audit routes.
pub fn routes() -> Router<App> {
    Router::new()
        .route("/v1/audit", get(search))
        .route("/v1/audit/export", get(export))
        .route("/v1/audit/usage", get(usage))
        .route("/v1/audit/usage/series", get(usage_series))
        .route("/v1/audit/verify", get(verify_trail))
        .route("/v1/audit/public-key", get(public_key))
        .route("/v1/audit/checkpoint", post(checkpoint))
        .route("/v1/audit/archive", post(archive))
        .route("/v1/audit/segments", get(segments))
        .route("/v1/audit/prune", post(prune))
        .route("/v1/keys/{key}/receipts", get(receipts))
}
