//! Choosing an image's fingerprint among the repo digests the Docker Engine
//! reports (`RepoDigests` of `docker image inspect`), as Kosli does.

use crate::{Error, Result};

pub const NO_REPO_DIGEST: &str =
    "repo digest unavailable for the image, has it been pushed to or pulled from a registry?";

/// The 64 hex digits of an image ID (`sha256:<hex>`, the digest of the
/// image's configuration), if `id` is one. An image built here and never
/// pushed or pulled has no repo digest; its ID is all that identifies it,
/// and only on engines that hold that very image.
pub fn image_id_hex(id: &str) -> Option<String> {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hex.to_ascii_lowercase())
}

/// Picks the digest for `image` from `repo_digests` (entries of the form
/// `name@sha256:<hex>`):
/// - exactly one entry: it;
/// - `image` is itself a 64-hex image ID: the first entry;
/// - otherwise the first entry starting with the image name cleaned of a
///   `library/` prefix, a tag and an `@sha256` suffix.
pub fn select_repo_digest(image: &str, repo_digests: &[String]) -> Result<String> {
    let hex_of = |entry: &str| -> Result<String> {
        entry
            .split_once("@sha256:")
            .map(|(_, h)| h.to_string())
            .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| Error::Docker(format!("malformed repo digest '{entry}'")))
    };
    if image.is_empty() || repo_digests.is_empty() {
        return Err(Error::Docker(NO_REPO_DIGEST.to_string()));
    }
    if repo_digests.len() == 1 {
        return hex_of(&repo_digests[0]);
    }
    let bare_id = image.strip_prefix("sha256:").unwrap_or(image);
    if bare_id.len() == 64 && bare_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return hex_of(&repo_digests[0]);
    }
    let mut name = image.strip_prefix("library/").unwrap_or(image);
    if let Some((before, _)) = name.split_once(':') {
        name = before;
    }
    let name = name.strip_suffix("@sha256").unwrap_or(name);
    match repo_digests.iter().find(|d| d.starts_with(name)) {
        Some(d) => hex_of(d),
        None => Err(Error::Docker(NO_REPO_DIGEST.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "e15947432b813e8ffa90165da919953e2ce850bef511a0ad1287d7cb86de84b5";
    const B: &str = "afcc7f1ac1b49db317a7196c902e61c6c3c4607d63599ee1a82d702d249a0ccb";

    fn digests() -> Vec<String> {
        vec![
            format!("alpine@sha256:{A}"),
            format!("localhost:5001/local-registry/alpine@sha256:{B}"),
        ]
    }

    #[test]
    fn selection_rules() {
        assert_eq!(select_repo_digest("alpine", &digests()).unwrap(), A);
        assert_eq!(select_repo_digest("library/alpine", &digests()).unwrap(), A);
        assert_eq!(select_repo_digest("alpine:3.18", &digests()).unwrap(), A);
        assert_eq!(
            select_repo_digest(&format!("alpine@sha256:{A}"), &digests()).unwrap(),
            A
        );
        assert_eq!(select_repo_digest("localhost", &digests()).unwrap(), B);
        assert_eq!(select_repo_digest(&"ab".repeat(32), &digests()).unwrap(), A);
        assert_eq!(select_repo_digest("anything", &digests()[1..]).unwrap(), B);
        assert!(select_repo_digest("nginx", &digests()).is_err());
        assert!(select_repo_digest("alpine", &[]).is_err());
    }
}
