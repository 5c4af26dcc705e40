//! M-of-N quorum approvals (dual control).
//!
//! A tenant's settings name the actions that need approval. When a caller asks for one, the
//! service stores the operation as asked and answers "needs approval" with the request's id.
//! Approvers (principals with the approver role, in the rule's group if it names one, never
//! the requester) vote; one "deny" refuses the request, M "approve" votes approve it. Then the
//! requester, and only the requester, executes it: once, before it expires, through the same
//! code path as the original call, so that authorization and lifecycle are checked again at
//! execution time. The request is marked executed before the operation runs (a
//! compare-and-set on its revision), so a replay or a race never runs it twice; if the
//! operation then fails, the approval is spent and a new request is needed.

use arca_core::access::{ApprovalRequest, ApprovalStatus, Role, Statement, TenantSettings, Vote};
use arca_core::model::Key;
use arca_core::Action;
use arca_core::{Error, Result};
use arca_store::Record;
use uuid::Uuid;

use crate::api::*;
use crate::{Caller, LifecycleAction, Note, Service};

pub(crate) const APPROVAL: &str = "approval";

/// An operation waiting for approval, with what is needed to run it again.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub(crate) enum Pending {
    Lifecycle {
        key: Uuid,
        version: Option<u32>,
        action: LifecycleAction,
        reason: Option<String>,
        /// What the move adds to the key's meta ([`Service::lifecycle_annotated`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        annotation: Option<serde_json::Value>,
    },
    Export {
        key: Uuid,
        req: ExportRequest,
    },
    PutKeyPolicy {
        key: Uuid,
        statements: Vec<Statement>,
    },
    UpdateKey {
        key: Uuid,
        req: serde_json::Value,
    },
    UpdateTenantSettings {
        settings: TenantSettings,
    },
    SetTenantDisabled {
        tenant: Uuid,
        disabled: bool,
    },
    DeleteTenant {
        tenant: Uuid,
    },
    AssignTrustAnchor {
        tenant: Uuid,
        req: TrustAnchorRequest,
    },
    WithdrawTrustAnchor {
        tenant: Uuid,
        anchor: String,
    },
    CreatePrincipal {
        req: CreatePrincipalRequest,
    },
    UpdatePrincipal {
        principal: Uuid,
        req: UpdatePrincipalRequest,
    },
    CreateApiToken {
        principal: Uuid,
        req: CreateTokenRequest,
    },
    CreateBinding {
        principal: Uuid,
        req: CreateBindingRequest,
    },
    CreateAwsCredential {
        principal: Uuid,
        req: CreateTokenRequest,
    },
    Transfer {
        key: Uuid,
        req: crate::byok::TransferRequest,
    },
    CreateGrant {
        key: Uuid,
        req: crate::grants::CreateGrantRequest,
    },
    RemoveGrant {
        key: Uuid,
        grant_id: String,
        retire: bool,
    },
    /// The range is fixed when the request is made: approvers approve these records.
    PruneAudit {
        through_seq: u64,
    },
}

fn to_record(
    r: &ApprovalRequest,
    revision: i64,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Record> {
    Ok(Record {
        kind: APPROVAL.into(),
        id: r.id.to_string(),
        tenant_id: Some(r.tenant_id),
        revision,
        doc: serde_json::to_value(r).map_err(|e| Error::internal(e.to_string()))?,
        updated_at: at,
    })
}

fn from_record(r: Record) -> Result<(ApprovalRequest, i64)> {
    let a = serde_json::from_value(r.doc).map_err(|e| Error::internal(e.to_string()))?;
    Ok((a, r.revision))
}

impl Service {
    /// The quorum gate: passes when no rule of the caller's tenant covers `action`, or when
    /// the service is executing an approved request. Otherwise it stores a new approval
    /// request and refuses with [`Error::NeedsApproval`].
    pub(crate) async fn gate(
        &self,
        caller: &Caller,
        action: Action,
        key: Option<&Key>,
        pending: impl FnOnce() -> Pending,
    ) -> Result<()> {
        if caller.approval.is_some() {
            return Ok(());
        }
        let t = self.tenant(caller.tenant()).await?;
        let Some(rule) = t.settings.rule_for(action) else {
            return Ok(());
        };
        let now = self.now();
        let op = serde_json::to_value(pending()).map_err(|e| Error::internal(e.to_string()))?;
        let req = ApprovalRequest {
            id: Uuid::now_v7(),
            tenant_id: t.id,
            action: action.to_string(),
            key_id: key.map(|k| k.id),
            operation: op,
            requester_id: caller.principal.id,
            requester: caller.principal.name.clone(),
            required: rule.approvals,
            group: rule.group.clone(),
            status: ApprovalStatus::Pending,
            votes: vec![],
            created_at: now,
            expires_at: now + chrono::Duration::seconds(t.settings.approval_ttl_secs as i64),
            executed_at: None,
        };
        let mut n = Note {
            key_id: req.key_id,
            ..Default::default()
        };
        n.set("approval_id", req.id.to_string());
        n.set("for_action", action.name());
        let audit = self.change_event(caller, Action::RequestApproval, &mut n);
        self.store
            .put_record(&to_record(&req, 1, now)?, None, &audit)
            .await?;
        Err(Error::NeedsApproval {
            message: format!(
                "{action} needs {} approval(s){}; approval request {} was created and expires at {}",
                rule.approvals,
                rule.group
                    .as_ref()
                    .map(|g| format!(" from group {g}"))
                    .unwrap_or_default(),
                req.id,
                req.expires_at.to_rfc3339()
            ),
            request_id: req.id.to_string(),
        })
    }

    async fn approval(&self, caller: &Caller, id: &str) -> Result<(ApprovalRequest, i64)> {
        let rec = match Uuid::parse_str(id) {
            Ok(u) => self.store.get_record(APPROVAL, &u.to_string()).await?,
            Err(_) => None,
        };
        let rec = rec
            .filter(|r| r.tenant_id == Some(caller.tenant()))
            .ok_or_else(|| Error::not_found("approval request", id))?;
        let (mut a, rev) = from_record(rec)?;
        a.status = a.status_at(self.now());
        Ok((a, rev))
    }

    /// Who may see a request: approvers, tenant-admins and auditors, and its requester.
    fn may_read(&self, caller: &Caller, a: &ApprovalRequest) -> Result<()> {
        if a.requester_id == caller.principal.id {
            return Ok(());
        }
        self.authorize(caller, Action::DescribeApproval, None)
    }

    /// Approval requests of the caller's tenant, oldest first, optionally by status.
    pub async fn list_approvals(
        &self,
        caller: &Caller,
        q: ListApprovalsQuery,
    ) -> Result<ApprovalList> {
        self.audited(caller, Action::ListApprovals, async |_: &mut Note| {
            self.authorize(caller, Action::ListApprovals, None)?;
            let limit = q.limit.unwrap_or(100);
            if !(1..=1000).contains(&limit) {
                return Err(Error::invalid("limit", "must be 1 to 1000"));
            }
            let now = self.now();
            let mut out = Vec::new();
            let mut after = q.cursor.clone();
            let mut next_cursor = None;
            // Filtering by status happens after reading (status depends on the clock), so
            // read pages until this one is full or the store has no more.
            'pages: loop {
                let recs = self
                    .store
                    .list_records(APPROVAL, Some(caller.tenant()), "", after.as_deref(), 500)
                    .await?;
                let n = recs.len();
                for rec in recs {
                    let id = rec.id.clone();
                    let (mut a, _) = from_record(rec)?;
                    a.status = a.status_at(now);
                    if q.status.is_none_or(|s| s == a.status) {
                        out.push(a);
                        if out.len() == limit as usize {
                            next_cursor = Some(id);
                            break 'pages;
                        }
                    }
                    after = Some(id);
                }
                if n < 500 {
                    break;
                }
            }
            Ok(ApprovalList {
                approvals: out,
                next_cursor,
            })
        })
        .await
    }

    /// One approval request.
    pub async fn describe_approval(&self, caller: &Caller, id: &str) -> Result<ApprovalRequest> {
        self.audited(caller, Action::DescribeApproval, async |note: &mut Note| {
            note.set("approval_id", id);
            let (a, _) = self.approval(caller, id).await?;
            self.may_read(caller, &a)?;
            Ok(a)
        })
        .await
    }

    /// Votes on a request.
    pub async fn vote(
        &self,
        caller: &Caller,
        id: &str,
        approve: bool,
        req: VoteRequest,
    ) -> Result<ApprovalRequest> {
        let action = if approve {
            Action::Approve
        } else {
            Action::Deny
        };
        self.audited(caller, action, async |note: &mut Note| {
            note.set("approval_id", id);
            if let Some(c) = &req.comment {
                if c.len() > 1024 {
                    return Err(Error::invalid("comment", "at most 1024 bytes"));
                }
            }
            let (mut a, rev) = self.approval(caller, id).await?;
            if let Some(k) = a.key_id {
                note.key(k);
            }
            note.set("approved_action", a.action.clone());
            self.authorize(caller, action, None)?;
            let p = &caller.principal;
            let eligible = p.roles.contains(&Role::Approver)
                && a.group.as_ref().is_none_or(|g| p.groups.contains(g));
            let now = self.now();
            a.vote(
                Vote {
                    principal_id: p.id,
                    principal: p.name.clone(),
                    approve,
                    at: now,
                    comment: req.comment,
                },
                eligible,
                now,
            )?;
            note.set("status", serde_json::to_value(a.status).unwrap_or_default());
            let audit = self.change_event(caller, action, note);
            self.store
                .put_record(&to_record(&a, rev + 1, now)?, Some(rev), &audit)
                .await?;
            Ok(a)
        })
        .await
    }

    /// Withdraws a pending request (its requester only).
    pub async fn cancel_approval(&self, caller: &Caller, id: &str) -> Result<ApprovalRequest> {
        self.audited(caller, Action::CancelApproval, async |note: &mut Note| {
            note.set("approval_id", id);
            let (mut a, rev) = self.approval(caller, id).await?;
            if a.requester_id != caller.principal.id {
                self.may_read(caller, &a)?;
                return Err(Error::NotPermitted {
                    message: "only the requester cancels an approval request".into(),
                });
            }
            if !matches!(a.status, ApprovalStatus::Pending | ApprovalStatus::Approved) {
                return Err(Error::conflict(format!(
                    "approval request {} is no longer open",
                    a.id
                )));
            }
            a.status = ApprovalStatus::Cancelled;
            let now = self.now();
            let audit = self.change_event(caller, Action::CancelApproval, note);
            self.store
                .put_record(&to_record(&a, rev + 1, now)?, Some(rev), &audit)
                .await?;
            Ok(a)
        })
        .await
    }

    /// Executes an approved request, once, as its requester.
    pub async fn execute_approval(&self, caller: &Caller, id: &str) -> Result<ExecutedApproval> {
        self.audited(caller, Action::ExecuteApproval, async |note: &mut Note| {
            note.set("approval_id", id);
            let (mut a, rev) = self.approval(caller, id).await?;
            if let Some(k) = a.key_id {
                note.key(k);
            }
            note.set("approved_action", a.action.clone());
            if a.requester_id != caller.principal.id {
                self.may_read(caller, &a)?;
                return Err(Error::NotPermitted {
                    message: "only the requester executes an approved request".into(),
                });
            }
            match a.status {
                ApprovalStatus::Approved => {}
                ApprovalStatus::Executed => {
                    return Err(Error::conflict(format!(
                        "approval request {} was already executed; an approval runs once",
                        a.id
                    )))
                }
                ApprovalStatus::Pending => {
                    let got = a.votes.iter().filter(|v| v.approve).count();
                    return Err(Error::NeedsApproval {
                        message: format!(
                            "approval request {} has {got} of {} approvals",
                            a.id, a.required
                        ),
                        request_id: a.id.to_string(),
                    });
                }
                s => {
                    return Err(Error::conflict(format!(
                        "approval request {} is {}",
                        a.id,
                        serde_json::to_value(s)
                            .ok()
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_default()
                    )))
                }
            }
            let now = self.now();
            a.status = ApprovalStatus::Executed;
            a.executed_at = Some(now);
            // Spend the approval first: whoever wins this compare-and-set runs it.
            let audit = self.change_event(caller, Action::ExecuteApproval, note);
            self.store
                .put_record(&to_record(&a, rev + 1, now)?, Some(rev), &audit)
                .await
                .map_err(|e| match e {
                    Error::Conflict { .. } => Error::conflict(format!(
                        "approval request {} was already executed; an approval runs once",
                        a.id
                    )),
                    other => other,
                })?;
            let pending: Pending = serde_json::from_value(a.operation.clone())
                .map_err(|e| Error::internal(format!("stored operation: {e}")))?;
            let mut as_requester = caller.clone();
            as_requester.approval = Some(a.id);
            let result = self.run_pending(&as_requester, pending).await?;
            Ok(ExecutedApproval {
                approval: a,
                result,
            })
        })
        .await
    }

    async fn run_pending(&self, caller: &Caller, p: Pending) -> Result<ApprovalResult> {
        Ok(match p {
            Pending::Lifecycle {
                key,
                version,
                action,
                reason,
                annotation,
            } => ApprovalResult::Key(Box::new(
                self.lifecycle_annotated(
                    caller,
                    &key.to_string(),
                    version,
                    action,
                    reason,
                    annotation,
                )
                .await?,
            )),

            Pending::Export { key, req } => {
                ApprovalResult::Export(self.export_key(caller, &key.to_string(), req).await?)
            }
            Pending::PutKeyPolicy { key, statements } => ApprovalResult::Policy(
                self.put_key_policy(caller, &key.to_string(), statements, None)
                    .await?,
            ),
            Pending::UpdateKey { key, req } => {
                let req: UpdateKeyRequest = serde_json::from_value(req)
                    .map_err(|e| Error::internal(format!("stored operation: {e}")))?;
                ApprovalResult::Key(Box::new(
                    self.update_key(caller, &key.to_string(), req).await?,
                ))
            }
            Pending::UpdateTenantSettings { settings } => {
                ApprovalResult::Settings(self.update_tenant_settings(caller, settings).await?)
            }
            Pending::SetTenantDisabled { tenant, disabled } => ApprovalResult::Tenant(
                self.set_tenant_disabled(caller, &tenant.to_string(), disabled)
                    .await?,
            ),
            Pending::DeleteTenant { tenant } => {
                ApprovalResult::Tenant(self.delete_tenant(caller, &tenant.to_string()).await?)
            }
            Pending::AssignTrustAnchor { tenant, req } => ApprovalResult::TrustAnchor(
                self.assign_trust_anchor(caller, &tenant.to_string(), req)
                    .await?,
            ),
            Pending::WithdrawTrustAnchor { tenant, anchor } => ApprovalResult::TrustAnchor(
                self.withdraw_trust_anchor(caller, &tenant.to_string(), &anchor)
                    .await?,
            ),
            Pending::CreatePrincipal { req } => {
                ApprovalResult::Principal(self.create_principal(caller, req).await?)
            }
            Pending::UpdatePrincipal { principal, req } => ApprovalResult::Principal(
                self.update_principal(caller, &principal.to_string(), req)
                    .await?,
            ),
            Pending::CreateApiToken { principal, req } => ApprovalResult::Token(
                self.create_api_token(caller, &principal.to_string(), req)
                    .await?,
            ),
            Pending::CreateBinding { principal, req } => ApprovalResult::Binding(
                self.create_binding(caller, &principal.to_string(), req)
                    .await?,
            ),
            Pending::Transfer { key, req } => ApprovalResult::Transfer(Box::new(
                self.export_for_transfer(caller, &key.to_string(), req)
                    .await?,
            )),
            Pending::CreateGrant { key, req } => {
                ApprovalResult::Grant(self.create_grant(caller, &key.to_string(), req).await?)
            }
            Pending::RemoveGrant {
                key,
                grant_id,
                retire,
            } => ApprovalResult::Grant(
                self.remove_grant(caller, &key.to_string(), &grant_id, retire)
                    .await?,
            ),
            Pending::PruneAudit { through_seq } => ApprovalResult::AuditPrune(
                self.prune_audit(
                    caller,
                    crate::retention::PruneRequest {
                        through_seq: Some(through_seq),
                        older_than: None,
                    },
                )
                .await?,
            ),
            Pending::CreateAwsCredential { principal, req } => ApprovalResult::AwsCredential(
                self.create_aws_credential(caller, &principal.to_string(), req)
                    .await?,
            ),
        })
    }
}
