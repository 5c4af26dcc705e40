//! KMIP operations mapped onto the service's operations.
//!
//! Each operation reads its payload, calls the same service function the REST door calls
//! (so roles, key policies, tenants, lifecycle rules, approvals and audit all apply), and
//! writes the KMIP response payload. No rule about who may do what lives here; what lives
//! here is translation: attribute names to fields, KMIP states to Arca's, errors to Result
//! Reasons.
//!
//! This module reads the message, dispatches its batch items and holds what every
//! operation shares (the caller, the target, the error mapping). The operations live by
//! kind: Create and Register in `create`, Get in `get` (its key wrapping in `wrapping`),
//! Locate in `locate`, the attribute operations in `attribute_ops`, the lifecycle moves in
//! `lifecycle`, Query, Discover Versions and RNG Retrieve in `query`, the cryptographic
//! operations in `crypto`, key pairs and ReKey in `pairs`.

use arca_core::Error;
use arca_kmip::enums::{
    batch_error_continuation_option as continuation, object_type, operation as op,
    result_reason as reason,
};
use arca_kmip::message::{
    error_response, parse_request, response, Outcome, ProtocolVersion, RequestBatchItem,
    ResponseBatchItem,
};
use arca_kmip::{tags, Failure, Item};
use arca_service::api::KeyInfo;
use arca_service::LifecycleAction;
use arca_service::{Caller, RequestMeta, Service};

use std::sync::atomic::Ordering;

use super::attribute_ops::Edit;
use super::query::discover_versions;
use super::Peer;

/// The versions Arca speaks, in order of preference (Discover Versions answers in it).
pub const VERSIONS: [ProtocolVersion; 7] = [
    ProtocolVersion::new(2, 1),
    ProtocolVersion::new(2, 0),
    ProtocolVersion::new(1, 4),
    ProtocolVersion::new(1, 3),
    ProtocolVersion::new(1, 2),
    ProtocolVersion::new(1, 1),
    ProtocolVersion::new(1, 0),
];

/// The operations this door performs: Query answers with them, and `dispatch` performs no
/// other.
pub const OPERATIONS: &[u32] = &[
    op::DISCOVER_VERSIONS,
    op::QUERY,
    op::CREATE,
    op::REGISTER,
    op::GET,
    op::GET_ATTRIBUTES,
    op::GET_ATTRIBUTE_LIST,
    op::LOCATE,
    op::ACTIVATE,
    op::REVOKE,
    op::DESTROY,
    op::ARCHIVE,
    op::RECOVER,
    op::CHECK,
    op::ADD_ATTRIBUTE,
    op::MODIFY_ATTRIBUTE,
    op::DELETE_ATTRIBUTE,
    op::SET_ATTRIBUTE,
    op::RNG_RETRIEVE,
    op::ENCRYPT,
    op::DECRYPT,
    op::SIGN,
    op::SIGNATURE_VERIFY,
    op::MAC,
    op::MAC_VERIFY,
    op::HASH,
    op::CREATE_KEY_PAIR,
    op::REKEY,
    op::REKEY_KEY_PAIR,
    op::OBTAIN_LEASE,
    op::INTEROP,
    op::LOG,
];

/// The object types this door manages.
pub const OBJECT_TYPES: &[u32] = &[
    object_type::SYMMETRIC_KEY,
    object_type::PRIVATE_KEY,
    object_type::PUBLIC_KEY,
    object_type::SECRET_DATA,
    object_type::OPAQUE_DATA,
    object_type::CERTIFICATE,
];

/// Handles one decoded request message and returns the response message. Every failure
/// that no service operation recorded (a message that is no request, a protocol version
/// Arca does not speak, a batch item the door refused itself) is recorded here, naming the
/// principal of the client's certificate when it is bound to one.
pub async fn handle(svc: &Service, meta: RequestMeta, peer: &Peer, msg: &Item) -> Item {
    let now = svc.now().timestamp();
    let req = match parse_request(msg) {
        Ok(r) => r,
        Err(e) => {
            let principal = peer.principal(svc, &meta).await;
            super::audit_refusal(
                svc,
                &meta,
                principal.as_deref(),
                None,
                Some(e.version),
                &e.failure,
            )
            .await;
            return error_response(now, &e);
        }
    };
    let version = req.header.version;
    let only_discovery = req
        .items
        .iter()
        .all(|i| i.operation == op::DISCOVER_VERSIONS);
    // Discover Versions is how a client finds a version to speak: it is answered whatever
    // version it was sent in.
    if !VERSIONS.contains(&version) && !only_discovery {
        let e = arca_kmip::message::RequestError {
            version: VERSIONS[0],
            failure: Failure::new(
                reason::UNSUPPORTED_PROTOCOL_VERSION,
                format!("protocol version {version} is not supported; Arca speaks KMIP 1.0-1.4, 2.0 and 2.1"),
            ),
        };
        let principal = peer.principal(svc, &meta).await;
        super::audit_refusal(
            svc,
            &meta,
            principal.as_deref(),
            req.items.first().map(|i| i.operation),
            Some(version),
            &e.failure,
        )
        .await;
        return error_response(now, &e);
    }
    // The same flag as the caller's meta: it tells, item by item, whether the service
    // recorded the item.
    let audited = meta.audited.clone();
    let caller = match svc.authenticate_certificate(meta).await {
        Ok(c) => c,
        Err(e) => {
            // The service recorded the failed authentication.
            let items = req
                .items
                .iter()
                .map(|i| ResponseBatchItem {
                    operation: Some(i.operation),
                    id: i.id.clone(),
                    outcome: Outcome::Failed(Failure::new(
                        reason::AUTHENTICATION_NOT_SUCCESSFUL,
                        e.to_string(),
                    )),
                })
                .collect();
            return response(version, now, items);
        }
    };
    peer.remember(&caller.principal);
    let mut ctx = Ctx {
        svc,
        caller: Some(caller),
        version,
        placeholder: None,
    };
    let keep_going = req.header.batch_error_continuation == Some(continuation::CONTINUE);
    let undo = req.header.batch_error_continuation == Some(continuation::UNDO);
    // Undo: a failure undoes every item before it. Arca's operations each commit on their
    // own, and undoing a committed change (an activation, a destruction) afterwards would
    // be a second change, neither atomic nor true to the key's history. So the items before
    // a failure are Operation Undone when none of them changed anything Arca keeps; when one
    // did, they all stay answered as done (as under Stop), and the failure says so: the
    // client learns exactly what happened, and nothing is half undone.
    let mut out = Vec::with_capacity(req.items.len());
    let mut any_recorded = false;
    for item in &req.items {
        audited.store(false, Ordering::Relaxed);
        let r = ctx.dispatch(item).await;
        let recorded = audited.load(Ordering::Relaxed);
        any_recorded |= recorded;
        if let (Err(f), false) = (&r, recorded) {
            if let Some(c) = &ctx.caller {
                super::audit_refusal(
                    svc,
                    &c.meta,
                    Some(&c.principal),
                    Some(item.operation),
                    Some(version),
                    f,
                )
                .await;
                any_recorded = true;
            }
        }
        let failed = r.is_err();
        out.push(ResponseBatchItem {
            operation: Some(item.operation),
            id: item.id.clone(),
            outcome: match r {
                Ok(p) => Outcome::Success(Some(p)),
                Err(f) => Outcome::Failed(f),
            },
        });
        if failed && !keep_going {
            // Stop (the default) and Undo: the items after a failure are not performed.
            if undo {
                let last = out.len() - 1;
                let (before, failed) = out.split_at_mut(last);
                if before
                    .iter()
                    .all(|d| d.operation.is_none_or(changes_nothing))
                {
                    for done in before {
                        if let Outcome::Success(p) = &mut done.outcome {
                            done.outcome = Outcome::Undone(p.take());
                        }
                    }
                } else if let Outcome::Failed(f) = &mut failed[0].outcome {
                    f.message.push_str(
                        " (Batch Error Continuation Undo: the items before this one changed objects and stay done; Arca cannot undo a committed change)",
                    );
                }
            }
            break;
        }
    }
    audited.store(any_recorded, Ordering::Relaxed);
    response(version, now, out)
}

/// Whether an operation changes nothing that Arca keeps (beyond its audit record), so that
/// Batch Error Continuation Undo can be honoured for it: undoing it is answering Operation
/// Undone.
fn changes_nothing(operation: u32) -> bool {
    matches!(
        operation,
        op::DISCOVER_VERSIONS
            | op::QUERY
            | op::GET_ATTRIBUTES
            | op::GET_ATTRIBUTE_LIST
            | op::LOCATE
            | op::CHECK
            | op::ENCRYPT
            | op::DECRYPT
            | op::SIGN
            | op::SIGNATURE_VERIFY
            | op::MAC
            | op::MAC_VERIFY
            | op::RNG_RETRIEVE
    )
}

/// Maps a service error to a KMIP Result Reason, keeping its message.
pub fn failure(e: Error) -> Failure {
    use arca_core::{Fault, StateDetail};
    let r = match &e {
        // 2.x names it Object Not Found; 1.x clients get Item Not Found.
        Error::NotFound { .. } => reason::OBJECT_NOT_FOUND,
        Error::InvalidInput { .. } => reason::INVALID_FIELD,
        Error::Unprocessable { fault, .. } => match fault {
            Fault::Usage => reason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK,
            Fault::Encoding => reason::KEY_FORMAT_TYPE_NOT_SUPPORTED,
            Fault::UnsuitableKey
            | Fault::Unsupported
            | Fault::Ciphertext
            | Fault::EncryptionContext
            | Fault::IncorrectKey
            | Fault::IncorrectKeyMaterial
            | Fault::InvalidImportToken
            | Fault::ExpiredImportToken
            | Fault::Parameter => reason::INVALID_FIELD,
        },
        Error::WrongState { state, .. } if state.is_destroyed() => reason::OBJECT_DESTROYED,
        // KMIP's Destroy is immediate: an object waiting out Arca's destruction period is
        // Destroyed to a KMIP client.
        Error::WrongState { detail, .. } => match detail {
            Some(StateDetail::PendingDestruction) => reason::OBJECT_DESTROYED,
            Some(
                StateDetail::PendingImport | StateDetail::MaterialDestroyed | StateDetail::Other(_),
            )
            | None => reason::WRONG_KEY_LIFECYCLE_STATE,
        },
        Error::Conflict { .. } => reason::GENERAL_FAILURE,
        Error::Unauthenticated { .. } => reason::AUTHENTICATION_NOT_SUCCESSFUL,
        Error::NotPermitted { .. } | Error::NeedsApproval { .. } => reason::PERMISSION_DENIED,
        Error::RateLimited { .. } => reason::SERVER_LIMIT_EXCEEDED,
        Error::Sealed | Error::Unavailable { .. } | Error::Internal { .. } => {
            reason::GENERAL_FAILURE
        }
    };
    Failure::new(r, e.to_string())
}

/// Runs a request builder that speaks KMIP's failures inside a service call that speaks
/// Arca's errors: the failure is kept aside (so the client gets its exact result reason)
/// and the service refuses, and audits, the operation as invalid input.
pub(super) struct Kept(pub(super) Option<Failure>);

impl Kept {
    pub(super) fn wrap<T>(&mut self, r: Result<T, Failure>) -> arca_core::Result<T> {
        r.map_err(|f| {
            let e = Error::invalid("cryptographic_parameters", f.message.clone());
            self.0 = Some(f);
            e
        })
    }

    /// The kept failure if there is one, else the service's error mapped by `map`.
    pub(super) fn or(self, e: Error, map: impl FnOnce(Error) -> Failure) -> Failure {
        self.0.unwrap_or_else(|| map(e))
    }
}

/// One message's state while its batch items are performed: the service, the caller its
/// certificate authenticated, the protocol version (which shapes the answers) and the ID
/// Placeholder.
pub(super) struct Ctx<'a> {
    pub(super) svc: &'a Service,
    pub(super) caller: Option<Caller>,
    pub(super) version: ProtocolVersion,
    /// The ID Placeholder: the object the previous item of the batch made or found, used
    /// by items that name none.
    pub(super) placeholder: Option<String>,
}

/// An operation's Response Payload, or the failure its batch item answers with.
pub(super) type OpResult = Result<Item, Failure>;

/// A Response Payload of `items`.
pub(super) fn payload(items: Vec<Item>) -> Item {
    Item::structure(tags::RESPONSE_PAYLOAD, items)
}

/// A Unique Identifier: most operations answer with the id of the object they acted on.
pub(super) fn uid_item(id: &str) -> Item {
    Item::text_item(tags::UNIQUE_IDENTIFIER, id)
}

impl Ctx<'_> {
    /// The authenticated caller every operation acts as.
    pub(super) fn caller(&self) -> Result<&Caller, Failure> {
        self.caller.as_ref().ok_or_else(|| {
            Failure::new(
                reason::AUTHENTICATION_NOT_SUCCESSFUL,
                "no authenticated principal",
            )
        })
    }

    async fn dispatch(&mut self, item: &RequestBatchItem) -> OpResult {
        let p = &item.payload;
        // OPERATIONS is the door's one account of what it performs: Query answers with it,
        // and an operation missing from it is not performed, whatever arm below would take
        // it. The access matrix (tests/e2e_kmip.rs) asks Query and fails on any operation
        // it has no row for.
        if !OPERATIONS.contains(&item.operation) {
            return Err(not_supported(item.operation));
        }
        match item.operation {
            op::DISCOVER_VERSIONS => {
                self.svc
                    .discover_versions(self.caller()?)
                    .await
                    .map_err(failure)?;
                Ok(discover_versions(p))
            }
            op::QUERY => self.query(p).await,
            op::CREATE => self.create(p).await,
            op::REGISTER => self.register(p).await,
            op::GET => self.get(p).await,
            op::GET_ATTRIBUTES => self.get_attributes(p).await,
            op::GET_ATTRIBUTE_LIST => self.get_attribute_list(p).await,
            op::LOCATE => self.locate(p).await,
            op::ACTIVATE => self.activate(p).await,
            op::REVOKE => self.revoke(p).await,
            op::DESTROY => self.simple_move(p, LifecycleAction::Destroy).await,
            op::ARCHIVE => self.simple_move(p, LifecycleAction::Archive).await,
            op::RECOVER => self.simple_move(p, LifecycleAction::Recover).await,
            op::CHECK => self.check(p).await,
            op::ADD_ATTRIBUTE => self.edit_attribute(p, Edit::Add).await,
            op::MODIFY_ATTRIBUTE => self.edit_attribute(p, Edit::Modify).await,
            op::SET_ATTRIBUTE => self.edit_attribute(p, Edit::Set).await,
            op::DELETE_ATTRIBUTE => self.edit_attribute(p, Edit::Delete).await,
            op::RNG_RETRIEVE => self.rng_retrieve(p).await,
            op::CREATE_KEY_PAIR => self.create_key_pair(p).await,
            op::REKEY => self.rekey(p).await,
            op::REKEY_KEY_PAIR => self.rekey_key_pair(p).await,
            op::ENCRYPT => self.encrypt(p).await,
            op::DECRYPT => self.decrypt(p).await,
            op::SIGN => self.sign(p).await,
            op::SIGNATURE_VERIFY => self.signature_verify(p).await,
            op::MAC => self.mac(p).await,
            op::MAC_VERIFY => self.mac_verify(p).await,
            op::HASH => self.hash(p).await,
            op::OBTAIN_LEASE => self.obtain_lease(p).await,
            op::INTEROP => {
                // The conformance harness brackets each test case with Interop Begin/End;
                // there is no server state to reset between them.
                let f = p.req(tags::INTEROP_FUNCTION)?.enumeration()?;
                self.svc
                    .interop(self.caller()?, f as i64)
                    .await
                    .map_err(failure)?;
                Ok(payload(vec![]))
            }
            op::LOG => {
                let m = p.req(tags::LOG_MESSAGE)?.text()?;
                self.svc
                    .client_log(self.caller()?, m)
                    .await
                    .map_err(failure)?;
                Ok(payload(vec![]))
            }
            other => Err(not_supported(other)),
        }
    }

    /// The Unique Identifier the payload names, or the ID Placeholder.
    pub(super) fn target(&self, p: &Item) -> Result<String, Failure> {
        match p.child(tags::UNIQUE_IDENTIFIER) {
            Some(i) => Ok(i.text()?.to_owned()),
            None => self.placeholder.clone().ok_or_else(|| {
                Failure::invalid_message(
                    "UniqueIdentifier is missing and no earlier batch item set the ID Placeholder",
                )
            }),
        }
    }

    /// The key `id` names, as the service describes it to the caller (authorized and
    /// audited as DescribeKey).
    pub(super) async fn describe(&self, id: &str) -> Result<KeyInfo, Failure> {
        self.svc
            .describe_key(self.caller()?, id)
            .await
            .map_err(failure)
    }

    /// [`Ctx::describe`] from the key cache, before a use of the key (the use itself reads
    /// the same cache).
    pub(super) async fn describe_for_use(&self, id: &str) -> Result<KeyInfo, Failure> {
        self.svc
            .describe_key_cached(self.caller()?, id)
            .await
            .map_err(failure)
    }
}

/// The answer to an operation the door does not perform.
fn not_supported(operation: u32) -> Failure {
    let name =
        arca_kmip::enum_name(arca_kmip::enums::operation::ALL, operation).unwrap_or("(unknown)");
    Failure::not_supported(format!(
        "operation {name} (0x{operation:08X}) is not supported by Arca's KMIP door"
    ))
}

/// A Create or Register failure: a name that is taken is Non Unique Name Attribute.
pub(super) fn creation_failure(e: Error) -> Failure {
    match e {
        Error::Conflict { message } => Failure::new(reason::NON_UNIQUE_NAME_ATTRIBUTE, message),
        e => failure(e),
    }
}
