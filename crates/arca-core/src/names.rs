//! Validation of the names users choose (key names, aliases, tag keys) and of key references.
//!
//! A key is referred to by its id (a UUID), by its name, or by one of its aliases. Names and
//! aliases share one namespace per tenant so that a reference is never ambiguous; the
//! `alias/` prefix that AWS users type is accepted and ignored.

use std::collections::BTreeMap;

use uuid::Uuid;

use crate::error::{Error, Result};

/// Longest key name or alias.
pub const MAX_NAME_LEN: usize = 256;
/// Most tags on one key.
pub const MAX_TAGS: usize = 50;
/// Longest tag key and tag value.
pub const MAX_TAG_KEY_LEN: usize = 128;
pub const MAX_TAG_VALUE_LEN: usize = 256;
/// Longest description.
pub const MAX_DESCRIPTION_LEN: usize = 8192;

/// Checks the name of a tenant, principal or group: like a key name but without `/` and
/// not starting with a dot, since these names appear alone in URL paths
/// (`/v1/tenants/{name}`) and in policy subjects (`principal:{name}`).
pub fn validate_identity_name(field: &str, name: &str) -> Result<()> {
    validate_name(field, name)?;
    if name.contains('/') || name.starts_with('.') {
        return Err(Error::invalid(
            field,
            "use A-Z a-z 0-9 _ - . (no slash, no leading dot)",
        ));
    }
    Ok(())
}

/// Checks a key name or an alias: 1–256 characters of `A-Z a-z 0-9 _ - . /`, not a UUID
/// (a UUID always means an id), not starting with `alias/`.
pub fn validate_name(field: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.len() > MAX_NAME_LEN {
        return Err(Error::invalid(
            field,
            format!("must be 1 to {MAX_NAME_LEN} characters"),
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/')))
    {
        return Err(Error::invalid(
            field,
            format!("character {c:?} is not allowed; use A-Z a-z 0-9 _ - . /"),
        ));
    }
    if Uuid::parse_str(name).is_ok() {
        return Err(Error::invalid(
            field,
            "must not be a UUID (a UUID always refers to a key id)",
        ));
    }
    if name.starts_with("alias/") {
        return Err(Error::invalid(
            field,
            "must not start with \"alias/\" (the prefix is implied)",
        ));
    }
    Ok(())
}

/// Strips the optional `alias/` prefix of an alias as AWS users type it.
pub fn normalize_alias(alias: &str) -> &str {
    alias.strip_prefix("alias/").unwrap_or(alias)
}

/// How a caller referred to a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    Id(Uuid),
    /// A key name or an alias (one namespace).
    Name(String),
}

impl KeyRef {
    /// Parses a reference: a UUID is an id, anything else a name or alias.
    pub fn parse(field: &str, s: &str) -> Result<Self> {
        if let Ok(id) = Uuid::parse_str(s) {
            return Ok(KeyRef::Id(id));
        }
        let n = normalize_alias(s);
        validate_name(field, n)?;
        Ok(KeyRef::Name(n.to_string()))
    }
}

impl std::fmt::Display for KeyRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KeyRef::Id(id) => write!(f, "{id}"),
            KeyRef::Name(n) => f.write_str(n),
        }
    }
}

/// Checks a tag map: count and lengths, printable keys.
pub fn validate_tags(field: &str, tags: &BTreeMap<String, String>) -> Result<()> {
    if tags.len() > MAX_TAGS {
        return Err(Error::invalid(field, format!("at most {MAX_TAGS} tags")));
    }
    for (k, v) in tags {
        if k.is_empty() || k.len() > MAX_TAG_KEY_LEN || k.chars().any(|c| c.is_control()) {
            return Err(Error::invalid(
                format!("{field}.{k}"),
                format!("tag keys are 1 to {MAX_TAG_KEY_LEN} printable characters"),
            ));
        }
        if v.len() > MAX_TAG_VALUE_LEN || v.chars().any(|c| c.is_control()) {
            return Err(Error::invalid(
                format!("{field}.{k}"),
                format!("tag values are at most {MAX_TAG_VALUE_LEN} printable characters"),
            ));
        }
    }
    Ok(())
}

/// Checks a description's length.
pub fn validate_description(field: &str, d: &str) -> Result<()> {
    if d.len() > MAX_DESCRIPTION_LEN {
        return Err(Error::invalid(
            field,
            format!("at most {MAX_DESCRIPTION_LEN} bytes"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("name", "prod/db-key_1.v2").is_ok());
        assert!(validate_name("name", "").is_err());
        assert!(validate_name("name", "a b").is_err());
        assert!(validate_name("name", "alias/x").is_err());
        assert!(validate_name("name", &Uuid::new_v4().to_string()).is_err());
        assert_eq!(
            KeyRef::parse("key", "alias/foo").unwrap(),
            KeyRef::Name("foo".into())
        );
    }
}
