//! Bounded JSON reading. serde_json never fetches anything and limits
//! nesting to 128 levels by itself; the size bound is ours.

use serde::de::{DeserializeOwned, DeserializeSeed};

use crate::error::ParseError;
use crate::limits::Limits;

pub(crate) fn from_slice<T: DeserializeOwned>(
    bytes: &[u8],
    limits: Limits,
) -> Result<T, ParseError> {
    Ok(serde_json::from_slice(checked(bytes, limits)?)?)
}

/// Reads the document with `seed`, for a caller that handles parts of it
/// as they stream by.
pub(crate) fn seed_from_slice<'de, S: DeserializeSeed<'de>>(
    bytes: &'de [u8],
    limits: Limits,
    seed: S,
) -> Result<S::Value, ParseError> {
    let mut de = serde_json::Deserializer::from_slice(checked(bytes, limits)?);
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// The bytes to parse: within the size bound, without a BOM, not blank.
fn checked(bytes: &[u8], limits: Limits) -> Result<&[u8], ParseError> {
    if bytes.len() as u64 > limits.max_bytes {
        return Err(ParseError::new(format!(
            "document larger than {} bytes",
            limits.max_bytes
        )));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ParseError::new("empty document"));
    }
    Ok(bytes)
}

/// The first non-blank byte, to tell JSON from XML or tag-value text.
pub(crate) fn first_byte(bytes: &[u8]) -> Option<u8> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    bytes.iter().copied().find(|b| !b.is_ascii_whitespace())
}
