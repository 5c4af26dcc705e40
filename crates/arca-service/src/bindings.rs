//! Credential bindings and trust anchors: which certificate or JWT identity means which
//! principal, and which CA or JWT issuer a tenant trusts. A mapping is unique server-wide,
//! so one identity never means two principals, and no tenant takes another's.

use arca_core::Action;
use std::sync::Arc;

use arca_core::model::{Principal, Tenant};
use arca_core::{Error, Result};
use arca_store::Record;
use uuid::Uuid;

use crate::api::*;
use crate::approvals::Pending;
use crate::{Actor, Caller, Note, Service};

/// The record kind of credential bindings.
pub(crate) const BINDING: &str = "binding";

impl Service {
    /// Maps a certificate or JWT identity to a principal of the caller's tenant. The
    /// mapping is unique server-wide: one certificate never means two principals.
    pub async fn create_binding(
        &self,
        caller: &Caller,
        principal: &str,
        req: CreateBindingRequest,
    ) -> Result<BindingInfo> {
        self.audited(caller, Action::CreateBinding, async |note: &mut Note| {
            self.authorize(caller, Action::CreateBinding, None)?;
            let p = self.principal_by_ref(caller, principal).await?;
            let prepared = self
                .prepare_binding(Some(p.tenant_id), Some(p.id), &[], &req)
                .await?;
            self.gate(caller, Action::CreateBinding, None, || {
                Pending::CreateBinding {
                    principal: p.id,
                    req: CreateBindingRequest {
                        kind: req.kind,
                        value: prepared.value.clone(),
                        issuer: prepared.issuer.clone(),
                        certificate: req.certificate.clone(),
                    },
                }
            })
            .await?;
            note.committed = true;
            self.write_binding(&p, req.kind, prepared, &Actor::Caller(caller))
                .await
        })
        .await
    }

    /// Checks a binding request: its value's shape, its issuer, and that the identity can
    /// only come from a trust anchor of the tenant (`tenant`; `None` for a tenant being
    /// created, whose anchors are `planned`): a tenant never binds an identity issued under
    /// another tenant's CA or JWT issuer. Returns the normalized value, the issuer and the
    /// record id, which is unique per tenant, so no tenant can squat another's values.
    pub(crate) async fn prepare_binding(
        &self,
        tenant: Option<Uuid>,
        principal: Option<Uuid>,
        planned: &[String],
        req: &CreateBindingRequest,
    ) -> Result<Prepared> {
        let value = normalize_binding(req.kind, &req.value)?;
        let cert = match &req.certificate {
            None => None,
            Some(_) if req.kind == BindingKind::Jwt => {
                return Err(Error::invalid(
                    "certificate",
                    "only certificate bindings take a certificate",
                ))
            }
            Some(pem) => Some(certificate_names(pem)?),
        };
        if let Some(c) = &cert {
            let named = match req.kind {
                BindingKind::CertificateFingerprint => c.fingerprint == value,
                BindingKind::CertificateSubject => c.subject == value,
                _ => c.sans.contains(&value),
            };
            if !named {
                return Err(Error::invalid(
                    "value",
                    format!("not the {} of the given certificate", req.kind.as_str()),
                ));
            }
        }
        let issuer = match (req.kind, req.issuer.clone()) {
            (BindingKind::Jwt, Some(i)) => {
                if !self.config.jwt_issuers.iter().any(|x| x.issuer == i) {
                    return Err(Error::invalid(
                        "issuer",
                        format!("{i:?} is not a configured JWT issuer"),
                    ));
                }
                Some(i)
            }
            (BindingKind::Jwt, None) => {
                return Err(Error::invalid("issuer", "a jwt binding names its issuer"))
            }
            (_, Some(_)) => {
                return Err(Error::invalid("issuer", "only jwt bindings have an issuer"))
            }
            (_, None) => None,
        };
        match &issuer {
            Some(i) => {
                let anchor = format!("jwt:{i}");
                let own = match tenant {
                    Some(t) => self.anchor_owner(&anchor).await? == Some(t),
                    None => false,
                };
                if !own && !planned.contains(&anchor) {
                    return Err(Error::NotPermitted {
                        message: format!(
                            "issuer: the JWT issuer {i:?} is not assigned to this tenant, so its tokens cannot authenticate here (the system operator assigns issuers: arca tenant trust add)"
                        ),
                    });
                }
            }
            None => {
                let own = match tenant {
                    Some(t) => self.owns_a_ca(t).await?,
                    None => false,
                };
                if !own && !planned.iter().any(|a| a.starts_with("ca:")) {
                    return Err(Error::NotPermitted {
                        message: "kind: no client CA is assigned to this tenant, so no certificate can authenticate here (the system operator assigns the CA that issues your certificates: arca tenant trust add)".into(),
                    });
                }
            }
        }
        let id = match tenant {
            Some(t) => {
                let id = binding_id(req.kind, t, issuer.as_deref(), &value);
                if self.store.get_record(BINDING, &id).await?.is_some() {
                    return Err(Error::conflict(
                        "this identity is already bound to a principal of this tenant",
                    ));
                }
                self.refuse_ambiguity(t, principal, req.kind, &value, cert.as_ref())
                    .await?;
                id
            }
            None => String::new(),
        };
        Ok(Prepared {
            value,
            issuer,
            id,
            cert,
        })
    }

    /// Refuses a certificate binding that would make a certificate known to this tenant
    /// (given now, or with an earlier fingerprint binding) match a second principal.
    /// Certificates never shown are checked when they are presented: a certificate that
    /// matches two principals authenticates no one.
    async fn refuse_ambiguity(
        &self,
        tenant: Uuid,
        principal: Option<Uuid>,
        kind: BindingKind,
        value: &str,
        cert: Option<&CertificateNames>,
    ) -> Result<()> {
        if kind == BindingKind::Jwt {
            return Ok(());
        }
        let other = |b: &BindingInfo| Some(b.principal_id) != principal;
        if let Some(c) = cert {
            let mut ids = vec![
                binding_id(
                    BindingKind::CertificateFingerprint,
                    tenant,
                    None,
                    &c.fingerprint,
                ),
                binding_id(BindingKind::CertificateSubject, tenant, None, &c.subject),
            ];
            for s in &c.sans {
                ids.push(binding_id(BindingKind::CertificateSan, tenant, None, s));
            }
            for id in ids {
                if let Some(rec) = self.store.get_record(BINDING, &id).await? {
                    let b: BindingInfo = serde_json::from_value(rec.doc)
                        .map_err(|e| Error::internal(e.to_string()))?;
                    if other(&b) {
                        return Err(Error::conflict(format!(
                            "certificate: its {} {:?} is bound to another principal ({}); a certificate maps to one principal",
                            b.kind.as_str(),
                            b.value,
                            b.principal_id
                        )));
                    }
                }
            }
        }
        if kind != BindingKind::CertificateFingerprint {
            let prefix = format!("{}:{tenant}|", BindingKind::CertificateFingerprint.as_str());
            for rec in self
                .store
                .list_records(BINDING, Some(tenant), &prefix, None, 100_000)
                .await?
            {
                let b: BindingInfo =
                    serde_json::from_value(rec.doc).map_err(|e| Error::internal(e.to_string()))?;
                let Some(c) = &b.certificate else { continue };
                let named = match kind {
                    BindingKind::CertificateSubject => c.subject == value,
                    _ => c.sans.iter().any(|s| s == value),
                };
                if named && other(&b) {
                    return Err(Error::conflict(format!(
                        "value: the certificate {} has this {} and is bound to another principal ({}); a certificate maps to one principal",
                        c.fingerprint,
                        kind.as_str(),
                        b.principal_id
                    )));
                }
            }
        }
        Ok(())
    }

    /// Stores a binding (already validated and, where needed, approved).
    pub(crate) async fn write_binding(
        &self,
        p: &Principal,
        kind: BindingKind,
        prepared: Prepared,
        by: &Actor<'_>,
    ) -> Result<BindingInfo> {
        let Prepared {
            value,
            issuer,
            id,
            cert,
        } = prepared;
        {
            let n = Note::with("binding_id", id.clone()).and("principal", p.name.clone());
            let audit = self.event_by(by, Action::CreateBinding, &n);
            let b = BindingInfo {
                id: id.clone(),
                tenant_id: p.tenant_id,
                principal_id: p.id,
                kind,
                value,
                issuer,
                certificate: cert,
                created_at: self.now(),
            };
            self.store
                .put_record(
                    &Record {
                        kind: BINDING.into(),
                        id,
                        tenant_id: Some(p.tenant_id),
                        revision: 1,
                        doc: serde_json::to_value(&b)
                            .map_err(|e| Error::internal(e.to_string()))?,
                        updated_at: b.created_at,
                    },
                    None,
                    &audit,
                )
                .await
                .map_err(|e| match e {
                    Error::Conflict { .. } => Error::conflict(
                        "this identity is already bound to a principal of this tenant",
                    ),
                    other => other,
                })?;
            // A certificate resolved before may now match this binding first.
            self.cache.bindings.clear();
            Ok(b)
        }
    }

    /// The tenant a trust anchor (`ca:…` or `jwt:…`) authenticates into: the tenant it is
    /// assigned to; none once withdrawn; the `default` tenant if it was never assigned (so
    /// a single-tenant or development server needs no assignment). Cached.
    pub(crate) async fn anchor_owner(&self, anchor: &str) -> Result<Option<Uuid>> {
        let key = anchor.to_string();
        if let Some(t) = self.cache.anchors.get(&key) {
            return Ok(t);
        }
        let owner = match self.store.get_record(TRUST, anchor).await? {
            Some(rec) => {
                serde_json::from_value::<TrustAnchorInfo>(rec.doc)
                    .map_err(|e| Error::internal(e.to_string()))?
                    .tenant_id
            }
            None => self
                .store
                .find_tenant_by_name(crate::bootstrap::DEFAULT_TENANT)
                .await?
                .filter(|t| !t.deleted)
                .map(|t| t.id),
        };
        self.cache.anchors.insert(key, owner);
        Ok(owner)
    }

    /// Whether some client CA can authenticate into `tenant`: one is assigned to it, or it
    /// is the `default` tenant (which owns the CAs never assigned).
    async fn owns_a_ca(&self, tenant: Uuid) -> Result<bool> {
        if self.tenant(tenant).await?.name == crate::bootstrap::DEFAULT_TENANT {
            return Ok(true);
        }
        Ok(!self.tenant_anchors(tenant, "ca:").await?.is_empty())
    }

    async fn tenant_anchors(&self, tenant: Uuid, prefix: &str) -> Result<Vec<TrustAnchorInfo>> {
        Ok(self
            .store
            .list_records(TRUST, Some(tenant), prefix, None, 10_000)
            .await?
            .into_iter()
            .filter_map(|r| serde_json::from_value::<TrustAnchorInfo>(r.doc).ok())
            .filter(|a| a.tenant_id == Some(tenant))
            .collect())
    }

    /// The anchor id of a request (and, for a CA, its subject): `ca:<SPKI SHA-256>` of a
    /// CA certificate, or `jwt:<issuer>` of a configured issuer.
    pub(crate) fn trust_anchor_id(
        &self,
        req: &TrustAnchorRequest,
    ) -> Result<(String, Option<String>)> {
        match (&req.ca_pem, &req.jwt_issuer) {
            (Some(pem), None) => {
                let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
                    .map_err(|_| Error::invalid("ca_pem", "not a PEM certificate"))?;
                let cert = pem.parse_x509().map_err(|_| {
                    Error::invalid("ca_pem", "the PEM block is not an X.509 certificate")
                })?;
                if !cert.is_ca() {
                    return Err(Error::invalid(
                        "ca_pem",
                        "not a CA certificate (basic constraints do not say CA)",
                    ));
                }
                Ok((
                    format!("ca:{}", crate::certs::spki_anchor(&cert)),
                    Some(crate::certs::canonical_name(cert.subject())),
                ))
            }
            (None, Some(i)) => {
                if !self.config.jwt_issuers.iter().any(|x| &x.issuer == i) {
                    return Err(Error::invalid(
                        "jwt_issuer",
                        format!("{i:?} is not a configured JWT issuer"),
                    ));
                }
                Ok((format!("jwt:{i}"), None))
            }
            _ => Err(Error::invalid(
                "ca_pem",
                "give exactly one of ca_pem and jwt_issuer",
            )),
        }
    }

    /// Records that an anchor belongs to a tenant (the one write of an assignment).
    pub(crate) async fn write_trust_anchor(
        &self,
        t: &Tenant,
        id: String,
        ca_subject: Option<String>,
        by: &Actor<'_>,
    ) -> Result<TrustAnchorInfo> {
        let existing = self.store.get_record(TRUST, &id).await?;
        if let Some(rec) = &existing {
            let doc: TrustAnchorInfo = serde_json::from_value(rec.doc.clone())
                .map_err(|e| Error::internal(e.to_string()))?;
            match doc.tenant_id {
                Some(o) if o == t.id => {
                    return Err(Error::conflict(format!("{id} is already assigned to this tenant")))
                }
                // A deleted tenant's anchors are free again (its record stays as a tombstone).
                Some(o) if !self.tenant(o).await.map(|t| t.deleted).unwrap_or(true) => {
                    return Err(Error::conflict(format!(
                        "{id} is assigned to another tenant: an anchor belongs to one tenant at most (withdraw it there first)"
                    )))
                }
                _ => {}
            }
        }
        let info = TrustAnchorInfo {
            id: id.clone(),
            tenant_id: Some(t.id),
            ca_subject,
            assigned_at: self.now(),
        };
        let mut n = Note {
            tenant_id: Some(t.id),
            ..Default::default()
        };
        n.set("trust_anchor", id.clone());
        n.set("tenant", t.name.clone());
        let audit = self.event_by(by, Action::AssignTrustAnchor, &n);
        self.store
            .put_record(
                &Record {
                    kind: TRUST.into(),
                    id,
                    tenant_id: Some(t.id),
                    revision: existing.as_ref().map_or(1, |r| r.revision + 1),
                    doc: serde_json::to_value(&info).map_err(|e| Error::internal(e.to_string()))?,
                    updated_at: info.assigned_at,
                },
                existing.map(|r| r.revision),
                &audit,
            )
            .await?;
        self.cache.anchors.clear();
        self.cache.bindings.clear();
        Ok(info)
    }

    /// Assigns a client CA or a JWT issuer to a tenant (system operators): from then on the
    /// certificates that CA signs, or the tokens of that issuer, authenticate into that
    /// tenant only, and only that tenant can bind identities issued under it.
    pub async fn assign_trust_anchor(
        &self,
        caller: &Caller,
        reference: &str,
        req: TrustAnchorRequest,
    ) -> Result<TrustAnchorInfo> {
        self.audited(
            caller,
            Action::AssignTrustAnchor,
            async |note: &mut Note| {
                self.authorize(caller, Action::AssignTrustAnchor, None)?;
                let t = self.tenant_by_ref(reference).await?;
                note.set("tenant_id", t.id.to_string());
                // The system tenant may hold anchors too: its approvers can sign in with an
                // IdP's JWT or a certificate.
                let (id, subject) = self.trust_anchor_id(&req)?;
                note.set("trust_anchor", id.clone());
                self.gate(caller, Action::AssignTrustAnchor, None, || {
                    Pending::AssignTrustAnchor {
                        tenant: t.id,
                        req: req.clone(),
                    }
                })
                .await?;
                self.write_trust_anchor(&t, id, subject, &Actor::Caller(caller))
                    .await
            },
        )
        .await
    }

    /// The trust anchors of a tenant (system operators).
    pub async fn list_trust_anchors(
        &self,
        caller: &Caller,
        reference: &str,
    ) -> Result<TrustAnchorList> {
        self.audited(caller, Action::ListTrustAnchors, async |_: &mut Note| {
            self.authorize(caller, Action::ListTrustAnchors, None)?;
            let t = self.tenant_by_ref(reference).await?;
            Ok(TrustAnchorList {
                anchors: self.tenant_anchors(t.id, "").await?,
                owns_unassigned: t.name == crate::bootstrap::DEFAULT_TENANT,
            })
        })
        .await
    }

    /// Withdraws an anchor from a tenant (system operators). It then authenticates no one
    /// (it does not fall back to the `default` tenant) until it is assigned again; the
    /// tenant's bindings stay and match again if it is.
    pub async fn withdraw_trust_anchor(
        &self,
        caller: &Caller,
        reference: &str,
        id: &str,
    ) -> Result<TrustAnchorInfo> {
        self.audited(
            caller,
            Action::WithdrawTrustAnchor,
            async |note: &mut Note| {
                note.set("trust_anchor", id);
                self.authorize(caller, Action::WithdrawTrustAnchor, None)?;
                let t = self.tenant_by_ref(reference).await?;
                note.set("tenant_id", t.id.to_string());
                let rec = self
                    .store
                    .get_record(TRUST, id)
                    .await?
                    .ok_or_else(|| Error::not_found("trust anchor", id))?;
                let mut doc: TrustAnchorInfo =
                    serde_json::from_value(rec.doc).map_err(|e| Error::internal(e.to_string()))?;
                if doc.tenant_id != Some(t.id) {
                    return Err(Error::not_found("trust anchor", id));
                }
                self.gate(caller, Action::WithdrawTrustAnchor, None, || {
                    Pending::WithdrawTrustAnchor {
                        tenant: t.id,
                        anchor: id.to_string(),
                    }
                })
                .await?;
                doc.tenant_id = None;
                doc.assigned_at = self.now();
                let audit = self.change_event(caller, Action::WithdrawTrustAnchor, note);
                self.store
                    .put_record(
                        &Record {
                            kind: TRUST.into(),
                            id: id.to_string(),
                            tenant_id: None,
                            revision: rec.revision + 1,
                            doc: serde_json::to_value(&doc)
                                .map_err(|e| Error::internal(e.to_string()))?,
                            updated_at: doc.assigned_at,
                        },
                        Some(rec.revision),
                        &audit,
                    )
                    .await?;
                self.cache.anchors.clear();
                self.cache.bindings.clear();
                Ok(doc)
            },
        )
        .await
    }

    /// Upgrade: bindings written before they were scoped by tenant get their tenant-scoped
    /// id, and subjects their canonical RFC 4514 form (the old display string listed the
    /// RDNs in DER order, unescaped: it is read as such, so a subject whose value held a
    /// `,` now means the multi-RDN name, the one that could be written). A binding whose
    /// subject does not parse, or whose new id is taken, is left as it was: it matches
    /// nothing, and is logged. Runs at every start; does nothing once done.
    pub(crate) async fn migrate_bindings(&self) -> Result<()> {
        let recs = self
            .store
            .list_records(BINDING, None, "", None, 100_000)
            .await?;
        let meta = crate::bootstrap::first_start_meta();
        for rec in recs {
            let Some(tenant) = rec.tenant_id else {
                continue;
            };
            let Ok(mut b) = serde_json::from_value::<BindingInfo>(rec.doc.clone()) else {
                continue;
            };
            if rec
                .id
                .starts_with(&format!("{}:{tenant}|", b.kind.as_str()))
            {
                continue;
            }
            if b.kind == BindingKind::CertificateSubject {
                match arca_core::dn::Dn::parse(&b.value) {
                    Ok(dn) => b.value = arca_core::dn::Dn::from_der_order(dn.0).canonical(),
                    Err(e) => {
                        tracing::warn!(binding = %rec.id, error = %e, "an old subject binding does not parse; recreate it");
                        continue;
                    }
                }
            }
            let id = binding_id(b.kind, tenant, b.issuer.as_deref(), &b.value);
            if let Some(new) = self.store.get_record(BINDING, &id).await? {
                let same = serde_json::from_value::<BindingInfo>(new.doc)
                    .is_ok_and(|n| n.principal_id == b.principal_id);
                if same {
                    // Moved already (a start that stopped half-way, or another node).
                    let _ = self.store.delete_record(BINDING, &rec.id, &[]).await;
                } else {
                    tracing::warn!(binding = %rec.id, "an old binding's new id is taken; it matches nothing");
                }
                continue;
            }
            let old = rec.id.clone();
            b.id = id.clone();
            let mut n = Note {
                tenant_id: Some(tenant),
                ..Default::default()
            };
            n.set("binding_id", id.clone());
            n.set("migrated_from", old.clone());
            let audit = self.event_by(&Actor::Server(&meta), Action::MigrateBinding, &n);
            let r = self
                .store
                .put_record(
                    &Record {
                        kind: BINDING.into(),
                        id,
                        tenant_id: Some(tenant),
                        revision: 1,
                        doc: serde_json::to_value(&b)
                            .map_err(|e| Error::internal(e.to_string()))?,
                        updated_at: b.created_at,
                    },
                    None,
                    &audit,
                )
                .await;
            match r {
                Ok(()) => {}
                // Another node of the cluster moved it at the same time.
                Err(Error::Conflict { .. }) => continue,
                Err(e) => return Err(e),
            }
            if let Err(e) = self.store.delete_record(BINDING, &old, &[]).await {
                tracing::warn!(binding = %old, error = %e, "could not remove an old binding after moving it");
            }
        }
        self.cache.bindings.clear();
        Ok(())
    }

    /// Bindings of the caller's tenant.
    pub async fn list_bindings(&self, caller: &Caller) -> Result<BindingList> {
        self.audited(caller, Action::ListBindings, async |_: &mut Note| {
            self.authorize(caller, Action::ListBindings, None)?;
            let recs = self
                .store
                .list_records(BINDING, Some(caller.tenant()), "", None, 10_000)
                .await?;
            let bindings = recs
                .into_iter()
                .map(|r| serde_json::from_value(r.doc).map_err(|e| Error::internal(e.to_string())))
                .collect::<Result<Vec<BindingInfo>>>()?;
            Ok(BindingList { bindings })
        })
        .await
    }

    /// Removes a binding of the caller's tenant.
    pub async fn delete_binding(&self, caller: &Caller, id: &str) -> Result<()> {
        self.audited(caller, Action::DeleteBinding, async |note: &mut Note| {
            self.authorize(caller, Action::DeleteBinding, None)?;
            let rec = self
                .store
                .get_record(BINDING, id)
                .await?
                .filter(|r| r.tenant_id == Some(caller.tenant()))
                .ok_or_else(|| Error::not_found("binding", id))?;
            let audit = self.change_event(caller, Action::DeleteBinding, note);
            self.store.delete_record(BINDING, &rec.id, &audit).await?;
            self.cache.bindings.clear();
            Ok(())
        })
        .await
    }

    /// The principal a binding id maps to (through the cache), if any, and if enabled.
    pub(crate) async fn bound_principal(&self, id: &str) -> Result<Option<Arc<Principal>>> {
        if let Some(p) = self.cache.bindings.get(&id.to_string()) {
            return Ok(Some(p));
        }
        let Some(rec) = self.store.get_record(BINDING, id).await? else {
            return Ok(None);
        };
        let b: BindingInfo =
            serde_json::from_value(rec.doc).map_err(|e| Error::internal(e.to_string()))?;
        let Some(p) = self.store.get_principal(b.principal_id).await? else {
            return Ok(None);
        };
        let p = Arc::new(p);
        self.cache.bindings.insert(id.to_string(), p.clone());
        Ok(Some(p))
    }
}

/// A checked binding request: the normalized value, the issuer, the record id and the
/// names of the certificate it came with.
pub(crate) struct Prepared {
    pub(crate) value: String,
    pub(crate) issuer: Option<String>,
    pub(crate) id: String,
    pub(crate) cert: Option<CertificateNames>,
}

/// The names of a certificate given in PEM with a binding request.
fn certificate_names(pem: &str) -> Result<CertificateNames> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
        .map_err(|_| Error::invalid("certificate", "not a PEM certificate"))?;
    let cert = pem
        .parse_x509()
        .map_err(|_| Error::invalid("certificate", "the PEM block is not an X.509 certificate"))?;
    let info = crate::certs::describe(&pem.contents, &cert);
    Ok(CertificateNames {
        fingerprint: info.fingerprint,
        subject: info.subject,
        sans: info
            .san_dns
            .into_iter()
            .chain(info.san_uri)
            .chain(info.san_email)
            .chain(info.san_ip)
            .collect(),
    })
}

/// The record kind of trust anchor assignments: id `ca:<spki sha-256>` or `jwt:<issuer>`,
/// unique server-wide, so an anchor belongs to one tenant at most.
pub(crate) const TRUST: &str = "trust-anchor";

/// The record id of a binding: scoped by tenant, so that a value is unique within its
/// tenant (the tenant the identity's trust anchor belongs to) and no tenant can take it
/// from another. The issuer is length-prefixed: no `|` in it can make two ids meet.
pub(crate) fn binding_id(
    kind: BindingKind,
    tenant: Uuid,
    issuer: Option<&str>,
    value: &str,
) -> String {
    match issuer {
        Some(i) => format!("{}:{tenant}|{}:{i}|{value}", kind.as_str(), i.len()),
        None => format!("{}:{tenant}|{value}", kind.as_str()),
    }
}

fn normalize_binding(kind: BindingKind, value: &str) -> Result<String> {
    if value.is_empty() || value.len() > 1024 || value.chars().any(|c| c.is_control()) {
        return Err(Error::invalid("value", "1 to 1024 printable characters"));
    }
    Ok(match kind {
        BindingKind::CertificateFingerprint => {
            let hex: String = value
                .chars()
                .filter(|c| *c != ':')
                .collect::<String>()
                .to_ascii_lowercase();
            if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                return Err(Error::invalid(
                    "value",
                    "a certificate fingerprint is 64 hex digits (SHA-256 of the DER certificate)",
                ));
            }
            hex
        }
        BindingKind::CertificateSubject => arca_core::dn::canonical_subject(value).map_err(|e| {
            Error::invalid(
                "value",
                format!("not an RFC 4514 distinguished name ({e}); escape , + = inside a value with \\"),
            )
        })?,
        _ => value.to_string(),
    })
}
