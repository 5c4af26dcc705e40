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
    /// `field` names the request field for REST clients; `fault` says which of these it is,
    /// so that each door names it in its own protocol without reading field names or text.
    #[error("{message}")]
    Unprocessable {
        field: Option<String>,
        message: String,
        fault: Fault,
    },

    /// The key (or version) is in a state that does not allow the operation. `detail`
    /// says more when the state alone does not explain it (the doors that tell the cases
    /// apart match on it).
    #[error("{operation} is not allowed while {target} is {state}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    WrongState {
        operation: String,
        target: String,
        state: KeyState,
        detail: Option<StateDetail>,
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

/// Why a well-formed request cannot apply ([`Error::Unprocessable`]). The protocols tell
/// these cases apart (AWS's `InvalidCiphertextException` against `InvalidKeyUsageException`,
/// KMIP's Incompatible Cryptographic Usage Mask against Invalid Field), so the service says
/// which it is and each door maps it with one exhaustive `match`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The key named cannot do this: its spec, its kind (public only, made for raw cipher
    /// modes) or its origin does not allow the operation. Its usage is [`Fault::Usage`].
    UnsuitableKey,
    /// The key's usage does not allow the operation, or a usage asked for does not fit the
    /// key's spec.
    Usage,
    /// The crypto provider cannot do this with a key of this spec (at its protection level).
    /// No request field is at fault.
    Unsupported,
    /// The data to decrypt, unwrap or verify does not parse, decrypt or authenticate:
    /// altered, made under another key, or with another context, AAD, IV or tag.
    Ciphertext,
    /// An encryption context or AAD was given to an algorithm that binds none.
    EncryptionContext,
    /// The ciphertext was made under another key than the one named (the key is wrong, not
    /// the ciphertext).
    IncorrectKey,
    /// Imported key material does not fit the key: not of its spec, a public key only, or
    /// not the material the key had.
    IncorrectKeyMaterial,
    /// The import token is not one, or not this key's.
    InvalidImportToken,
    /// The import token was this key's but has expired.
    ExpiredImportToken,
    /// Key material is not in the form the request names (not a PKCS#1 RSAPrivateKey), or
    /// the key does not convert to the form asked for (PKCS#1 of a key that is not RSA);
    /// the field names which (`material_encoding`, `encoding`).
    Encoding,
    /// Any other parameter that does not fit the key or the server (an algorithm, a mode,
    /// a protection level); the field names it.
    Parameter,
}

/// What more there is to say about an [`Error::WrongState`] than the state. Displayed in
/// parentheses after the state; the text of each case is part of the REST API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateDetail {
    /// The key or version waits out its destruction period (AWS's PendingDeletion, which
    /// AWS refuses as an invalid state rather than a disabled key; KMIP's Destroyed).
    PendingDestruction,
    /// The key's (or version's) imported material is not in Arca (AWS's PendingImport).
    PendingImport,
    /// The version's material has been destroyed.
    MaterialDestroyed,
    /// Anything no door tells apart: the text is shown as it is.
    Other(String),
}

impl StateDetail {
    /// Shorthand for [`StateDetail::Other`].
    pub fn other(text: impl Into<String>) -> Self {
        StateDetail::Other(text.into())
    }
}

impl std::fmt::Display for StateDetail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            StateDetail::PendingDestruction => "its destruction is scheduled",
            StateDetail::PendingImport => "its imported key material is not in Arca; import it",
            StateDetail::MaterialDestroyed => "its material has been destroyed",
            StateDetail::Other(text) => text,
        })
    }
}

/// The message of an import token that has expired ([`Error::expired_import_token`]).
pub const IMPORT_TOKEN_EXPIRED: &str = "the import token has expired: get new import parameters";

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// An [`Error::Unprocessable`] of any fault, about `field` (`None` when no field is).
    fn unprocessable_as(fault: Fault, field: Option<&str>, message: impl Into<String>) -> Self {
        Error::Unprocessable {
            field: field.map(str::to_string),
            message: message.into(),
            fault,
        }
    }

    /// A parameter that does not fit the key or the server ([`Fault::Parameter`]). The
    /// cases a door names apart have their own shorthands below.
    pub fn unprocessable(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Unprocessable {
            field: Some(field.into()),
            message: message.into(),
            fault: Fault::Parameter,
        }
    }

    /// The key cannot do this ([`Fault::UnsuitableKey`], field `key`).
    pub fn unsuitable_key(message: impl Into<String>) -> Self {
        Self::unprocessable_as(Fault::UnsuitableKey, Some("key"), message)
    }

    /// The key's usage does not allow this ([`Fault::Usage`], field `usage`).
    pub fn wrong_usage(message: impl Into<String>) -> Self {
        Self::unprocessable_as(Fault::Usage, Some("usage"), message)
    }

    /// The crypto provider cannot do this ([`Fault::Unsupported`], no field).
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::unprocessable_as(Fault::Unsupported, None, message)
    }

    /// The data in `field` does not decrypt or authenticate ([`Fault::Ciphertext`]).
    pub fn bad_ciphertext(field: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Unprocessable {
            field: Some(field.into()),
            message: message.into(),
            fault: Fault::Ciphertext,
        }
    }

    /// An encryption context the algorithm cannot bind ([`Fault::EncryptionContext`], field
    /// `encryption_context`).
    pub fn unbindable_context(message: impl Into<String>) -> Self {
        Self::unprocessable_as(
            Fault::EncryptionContext,
            Some("encryption_context"),
            message,
        )
    }

    /// The ciphertext belongs to another key ([`Fault::IncorrectKey`], field `key_id`).
    pub fn incorrect_key(message: impl Into<String>) -> Self {
        Self::unprocessable_as(Fault::IncorrectKey, Some("key_id"), message)
    }

    /// Imported material that does not fit the key ([`Fault::IncorrectKeyMaterial`], field
    /// `key_material`).
    pub fn incorrect_key_material(message: impl Into<String>) -> Self {
        Self::unprocessable_as(Fault::IncorrectKeyMaterial, Some("key_material"), message)
    }

    /// Key material not in the form named, or a key that does not convert to the form asked
    /// for ([`Fault::Encoding`]); `field` names which.
    pub fn encoding(field: &str, message: impl Into<String>) -> Self {
        Self::unprocessable_as(Fault::Encoding, Some(field), message)
    }

    /// An import token that is not this key's ([`Fault::InvalidImportToken`], field
    /// `import_token`).
    pub fn invalid_import_token(message: impl Into<String>) -> Self {
        Self::unprocessable_as(Fault::InvalidImportToken, Some("import_token"), message)
    }

    /// This key's import token, expired ([`Fault::ExpiredImportToken`], field
    /// `import_token`, message [`IMPORT_TOKEN_EXPIRED`]).
    pub fn expired_import_token() -> Self {
        Self::unprocessable_as(
            Fault::ExpiredImportToken,
            Some("import_token"),
            IMPORT_TOKEN_EXPIRED,
        )
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The texts are part of the REST API (and of clients that compare them): the typed
    /// details must say exactly what the strings they replaced said.
    #[test]
    fn state_details_keep_their_text() {
        let cases = [
            (
                StateDetail::PendingDestruction,
                "its destruction is scheduled",
            ),
            (
                StateDetail::PendingImport,
                "its imported key material is not in Arca; import it",
            ),
            (
                StateDetail::MaterialDestroyed,
                "its material has been destroyed",
            ),
            (StateDetail::other("archived"), "archived"),
        ];
        for (d, text) in cases {
            assert_eq!(d.to_string(), text);
        }
        let e = Error::WrongState {
            operation: "encrypt".into(),
            target: "key k".into(),
            state: KeyState::Active,
            detail: Some(StateDetail::PendingDestruction),
        };
        assert_eq!(
            e.to_string(),
            "encrypt is not allowed while key k is ACTIVE (its destruction is scheduled)"
        );
    }

    /// Each shorthand names the field REST clients have always seen, and its fault.
    #[test]
    fn shorthands_name_field_and_fault() {
        let cases = [
            (
                Error::unprocessable("spec", "m"),
                Some("spec"),
                Fault::Parameter,
            ),
            (
                Error::unsuitable_key("m"),
                Some("key"),
                Fault::UnsuitableKey,
            ),
            (Error::wrong_usage("m"), Some("usage"), Fault::Usage),
            (Error::unsupported("m"), None, Fault::Unsupported),
            (
                Error::bad_ciphertext("tag", "m"),
                Some("tag"),
                Fault::Ciphertext,
            ),
            (
                Error::unbindable_context("m"),
                Some("encryption_context"),
                Fault::EncryptionContext,
            ),
            (
                Error::incorrect_key("m"),
                Some("key_id"),
                Fault::IncorrectKey,
            ),
            (
                Error::incorrect_key_material("m"),
                Some("key_material"),
                Fault::IncorrectKeyMaterial,
            ),
            (
                Error::invalid_import_token("m"),
                Some("import_token"),
                Fault::InvalidImportToken,
            ),
        ];
        for (e, field, fault) in cases {
            assert_eq!(e.field(), field, "{e:?}");
            assert_eq!(e.code(), "unprocessable");
            assert_eq!(e.to_string(), "m");
            assert!(matches!(e, Error::Unprocessable { fault: f, .. } if f == fault));
        }
        let e = Error::expired_import_token();
        assert_eq!(e.field(), Some("import_token"));
        assert_eq!(e.to_string(), IMPORT_TOKEN_EXPIRED);
        assert!(matches!(
            e,
            Error::Unprocessable {
                fault: Fault::ExpiredImportToken,
                ..
            }
        ));
    }
}
