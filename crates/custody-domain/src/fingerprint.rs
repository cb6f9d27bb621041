use std::fmt;

/// An artifact's identity: 64 lower-case hex characters of SHA-256.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct Fingerprint(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "'{0}' is not a valid fingerprint: it must be 64 lower-case hex characters (a SHA-256 digest)"
)]
pub struct FingerprintError(pub String);

impl Fingerprint {
    pub fn parse(value: &str) -> Result<Self, FingerprintError> {
        if value.len() == 64
            && value
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            Ok(Fingerprint(value.to_string()))
        } else {
            Err(FingerprintError(value.to_string()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({})", self.0)
    }
}

/// Whether `value` looks like a (possibly partial) SHA-1 or SHA-256 that
/// `custody search` can look up: 4 to 64 hex characters.
pub fn is_search_prefix(value: &str) -> bool {
    (4..=64).contains(&value.len()) && value.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation() {
        assert!(Fingerprint::parse(&"a".repeat(64)).is_ok());
        assert!(Fingerprint::parse(&"A".repeat(64)).is_err());
        assert!(Fingerprint::parse(&format!("xyz{}", "0".repeat(61))).is_err());
        assert!(Fingerprint::parse(&"0".repeat(44)).is_err());
        assert!(Fingerprint::parse(&"0".repeat(68)).is_err());
    }
}
