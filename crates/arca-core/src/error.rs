//! The one error type of the service.
//!
//! Every protocol door (REST, KMIP, the AWS-compatible API) maps this type once, in one
//! place, to its own vocabulary: an HTTP status, a KMIP result reason, an AWS `__type`. The
//! variants therefore speak the domain's words, not HTTP's, and never carry key material.

use crate::model::KeyState;

/// What went wrong, in the domain's words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The thing does not exist, or belongs to another tenant (the two are never told apart).
    #[error("{kind} {id} not found")]
    NotFound { kind: &'static str, id: String },

    /// A request field is malformed or out of range. `field` names it, as the client spelt it.
    #[error("invalid {field}: {message}")]
    InvalidInput { field: String, message: String },

    /// The request is well-formed but cannot apply to this key: wrong usage, wrong spec,
    /// a ciphertext that does not authenticate, an encryption context that does not match.
    #[error("{message}")]
    Unprocessable {
        field: Option<String>,
        message: String,
    },

    /// The key (or version) is in a state that does not allow the operation.
    #[error("{operation} is not allowed while {target} is {state}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    WrongState {
        operation: String,
        target: String,
        state: KeyState,
        detail: Option<String>,
    },

    /// A uniqueness or concurrency conflict: the name is taken, the alias exists.
    #[error("{message}")]
    Conflict { message: String },

    /// No credential, or one that is not valid.
    #[error("{message}")]
    Unauthenticated { message: String },

    /// The caller is known but may not do this.
    #[error("{message}")]
    NotPermitted { message: String },

    /// The operation needs an M-of-N approval first.
    #[error("{message}")]
    NeedsApproval { message: String, request_id: String },

    /// The caller sends too much, too fast.
    #[error("rate limit exceeded; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },

    /// The server has no root key in memory: only health and unseal are served.
    #[error("the server is sealed")]
    Sealed,

    /// The server cannot serve right now (store unreachable, shutting down).
    #[error("{message}")]
    Unavailable { message: String },

    /// A fault of ours. The message is for logs; doors show a generic text.
    #[error("internal error: {message}")]
    Internal { message: String },
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Unprocessable`] that names a field.
    pub fn unprocessable(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Unprocessable {
            field: Some(field.into()),
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::NotFound`].
    pub fn not_found(kind: &'static str, id: impl Into<String>) -> Self {
        Error::NotFound {
            kind,
            id: id.into(),
        }
    }

    /// Shorthand for [`Error::Internal`].
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
        }
    }

    /// Shorthand for [`Error::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::Conflict {
            message: message.into(),
        }
    }

    /// The request field this error is about, when there is one.
    pub fn field(&self) -> Option<&str> {
        match self {
            Error::InvalidInput { field, .. } => Some(field),
            Error::Unprocessable { field, .. } => field.as_deref(),
            _ => None,
        }
    }

    /// A stable, machine-readable code, shared by every door that shows one.
    pub fn code(&self) -> &'static str {
        match self {
            Error::NotFound { .. } => "not_found",
            Error::InvalidInput { .. } => "invalid_input",
            Error::Unprocessable { .. } => "unprocessable",
            Error::WrongState { .. } => "wrong_state",
            Error::Conflict { .. } => "conflict",
            Error::Unauthenticated { .. } => "unauthenticated",
            Error::NotPermitted { .. } => "not_permitted",
            Error::NeedsApproval { .. } => "needs_approval",
            Error::RateLimited { .. } => "rate_limited",
            Error::Sealed => "sealed",
            Error::Unavailable { .. } => "unavailable",
            Error::Internal { .. } => "internal",
        }
    }
}

/// The result type of the domain and the service.
pub type Result<T, E = Error> = std::result::Result<T, E>;
