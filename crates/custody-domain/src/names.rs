//! Names of orgs, flows, trails, artifacts in templates, attestations and
//! attestation types. They appear in URL paths and CLI arguments, so they
//! are kept to a safe alphabet.

use std::fmt;

pub const MAX_LEN: usize = 255;

/// A validated name: starts with a letter or digit, then letters, digits,
/// `.`, `_`, `-` or `~`; at most 255 bytes.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Name(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} '{value}' is longer than {MAX_LEN} characters")]
    TooLong { what: &'static str, value: String },
    #[error(
        "{what} '{value}' is invalid: it must start with a letter or digit and contain only letters, digits, '.', '_', '-' or '~'"
    )]
    Invalid { what: &'static str, value: String },
}

impl Name {
    /// Validates `value` as the name of a `what` (used in the error message).
    pub fn parse(what: &'static str, value: &str) -> Result<Self, NameError> {
        validate(what, value)?;
        Ok(Name(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

pub fn validate(what: &'static str, value: &str) -> Result<(), NameError> {
    let bytes = value.as_bytes();
    let Some(first) = bytes.first() else {
        return Err(NameError::Empty { what });
    };
    if bytes.len() > MAX_LEN {
        return Err(NameError::TooLong {
            what,
            value: value.to_string(),
        });
    }
    let ok_rest = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'~');
    if !first.is_ascii_alphanumeric() || !bytes.iter().all(ok_rest) {
        return Err(NameError::Invalid {
            what,
            value: value.to_string(),
        });
    }
    Ok(())
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl AsRef<str> for Name {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_and_rejects() {
        for ok in ["a", "backend", "release-42", "v1.2.3", "A_b~c", "0abc"] {
            assert!(validate("flow name", ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", ".a", "a b", "a/b", "é", "a?"] {
            assert!(validate("flow name", bad).is_err(), "{bad}");
        }
        assert!(validate("flow name", &"a".repeat(256)).is_err());
        let e = validate("trail name", "x/y").unwrap_err().to_string();
        assert!(e.contains("trail name 'x/y'"), "{e}");
    }
}
