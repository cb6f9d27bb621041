//! Secrets kept at rest (webhook signing keys) are sealed with
//! AES-256-GCM under a key the database does not hold: a copy of the
//! database, a backup or a replica's dump shows no usable secret.
//!
//! The key is 32 random bytes, hex, in `secret.key` in the data directory
//! (created 0600 at first start) or in the file `--secret-key-file` names
//! (replicas share one). A sealed value is `sealed:v1:` and the base64 of
//! nonce ‖ ciphertext ‖ tag. A value without that prefix was stored before
//! sealing existed and is used as it is.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::Engine;

const PREFIX: &str = "sealed:v1:";

pub struct SecretBox {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox")
    }
}

impl SecretBox {
    /// Reads the key at `path`, or creates it (0600) when `create` and it
    /// does not exist.
    pub fn load(path: &Path, create: bool) -> anyhow::Result<SecretBox> {
        let bytes = load_or_create_key(path, create, "the secret key")?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| anyhow::anyhow!("cannot use the secret key"))?;
        Ok(SecretBox {
            key: LessSafeKey::new(key),
        })
    }

    pub fn seal(&self, plain: &str) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        aws_lc_rs::rand::fill(&mut nonce).map_err(|_| "no randomness for a nonce".to_string())?;
        let mut data = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(PREFIX),
                &mut data,
            )
            .map_err(|_| "cannot seal a secret".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!(
            "{PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    pub fn open(&self, stored: &str) -> Result<String, String> {
        let Some(b64) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_string());
        };
        let raw = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| "a sealed secret is not base64".to_string())?;
        if raw.len() < NONCE_LEN {
            return Err("a sealed secret is too short".into());
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| "a sealed secret has a bad nonce".to_string())?;
        let mut data = rest.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(PREFIX), &mut data)
            .map_err(|_| {
                "a sealed secret does not open with this server's key (--secret-key-file)"
                    .to_string()
            })?;
        String::from_utf8(plain.to_vec()).map_err(|_| "a sealed secret is not text".into())
    }
}

/// Creates a file readable by its owner only, failing if it exists.
pub fn write_new(path: &Path, text: &str) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(f, "{text}")?;
    f.sync_all()
}

/// Reads the 32-byte key in hex at `path`, or, when `create` and there is
/// none, makes a random one and writes it (0600). `what` names the key in
/// messages ("the ledger signing key").
pub fn load_or_create_key(path: &Path, create: bool, what: &str) -> anyhow::Result<[u8; 32]> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t.trim().to_string(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let mut bytes = [0u8; 32];
            aws_lc_rs::rand::fill(&mut bytes)
                .map_err(|_| anyhow::anyhow!("no randomness for {what}"))?;
            let text = hex::encode(bytes);
            write_new(path, &text)
                .with_context(|| format!("cannot create {what} {}", path.display()))?;
            text
        }
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read {what} {}", path.display()));
        }
    };
    hex::decode(&text)
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "{} must hold 64 hex characters ({what}, 32 bytes)",
                path.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_only_with_their_key() {
        let dir = tempfile::tempdir().unwrap();
        let a = SecretBox::load(&dir.path().join("a.key"), true).unwrap();
        let b = SecretBox::load(&dir.path().join("b.key"), true).unwrap();
        let sealed = a.seal("whsec_hunter2").unwrap();
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("hunter2"));
        assert_ne!(sealed, a.seal("whsec_hunter2").unwrap(), "nonces differ");
        assert_eq!(a.open(&sealed).unwrap(), "whsec_hunter2");
        assert!(b.open(&sealed).is_err());
        // Values stored before sealing pass as they are.
        assert_eq!(a.open("legacy").unwrap(), "legacy");
        // The same file gives the same key.
        let again = SecretBox::load(&dir.path().join("a.key"), false).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), "whsec_hunter2");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("a.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join("bad.key"), "nope").unwrap();
        assert!(SecretBox::load(&dir.path().join("bad.key"), false).is_err());
    }
}
