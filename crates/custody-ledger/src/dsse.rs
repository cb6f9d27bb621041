//! DSSE envelopes (github.com/secure-systems-lab/dsse, v1.0.0) signed with
//! Ed25519, for in-toto statements. Small enough to write: the signature is
//! over the pre-authentication encoding
//! `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, the payload is
//! base64 in the envelope.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The payload type of an in-toto statement.
pub const INTOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// The pre-authentication encoding of a payload.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// The key id given to an Ed25519 public key: the hex SHA-256 of its 32
/// bytes (what verifiers are told to expect in `keyid`).
pub fn key_id(public: &[u8; 32]) -> String {
    hex::encode(Sha256::digest(public))
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Base64 of the payload.
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct EnvelopeSignature {
    pub keyid: String,
    /// Base64 of the Ed25519 signature of the PAE.
    pub sig: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DsseError {
    #[error("the payload is not base64")]
    Payload,
    #[error("no signature by key {0}")]
    Unsigned(String),
    #[error("the signature by key {0} does not verify")]
    BadSignature(String),
    #[error("not an Ed25519 public key")]
    Key,
}

impl Envelope {
    /// Signs `payload` with the Ed25519 key of `seed`.
    pub fn sign(payload_type: &str, payload: &[u8], seed: &[u8; 32]) -> Envelope {
        let key = SigningKey::from_bytes(seed);
        let sig = key.sign(&pae(payload_type, payload));
        Envelope {
            payload_type: payload_type.to_string(),
            payload: B64.encode(payload),
            signatures: vec![EnvelopeSignature {
                keyid: key_id(&key.verifying_key().to_bytes()),
                sig: B64.encode(sig.to_bytes()),
            }],
        }
    }

    /// The payload, once a signature by `public` verifies over it.
    pub fn verify(&self, public: &[u8; 32]) -> Result<Vec<u8>, DsseError> {
        let payload = B64.decode(&self.payload).map_err(|_| DsseError::Payload)?;
        let key = VerifyingKey::from_bytes(public).map_err(|_| DsseError::Key)?;
        let id = key_id(public);
        let message = pae(&self.payload_type, &payload);
        // Signatures that name another key id are someone else's; one that
        // names no key id is tried too (DSSE makes keyid optional).
        let mut tried = false;
        for s in &self.signatures {
            if !s.keyid.is_empty() && s.keyid != id {
                continue;
            }
            tried = true;
            let ok = B64
                .decode(&s.sig)
                .ok()
                .and_then(|b| <[u8; 64]>::try_from(b).ok())
                .is_some_and(|b| {
                    key.verify_strict(&message, &Signature::from_bytes(&b))
                        .is_ok()
                });
            if ok {
                return Ok(payload);
            }
        }
        Err(if tried {
            DsseError::BadSignature(id)
        } else {
            DsseError::Unsigned(id)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_specs_encoding() {
        // The DSSE spec's test vector.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn envelopes_verify_with_their_key_only() {
        let seed = [3u8; 32];
        let public = SigningKey::from_bytes(&seed).verifying_key().to_bytes();
        let e = Envelope::sign(INTOTO_PAYLOAD_TYPE, b"{\"a\":1}", &seed);
        assert_eq!(e.verify(&public).unwrap(), b"{\"a\":1}");
        let other = SigningKey::from_bytes(&[4u8; 32])
            .verifying_key()
            .to_bytes();
        assert!(matches!(e.verify(&other), Err(DsseError::Unsigned(_))));
        let mut tampered = e.clone();
        tampered.payload = B64.encode(b"{\"a\":2}");
        assert!(matches!(
            tampered.verify(&public),
            Err(DsseError::BadSignature(_))
        ));
        let mut retyped = e;
        retyped.payload_type = "text/plain".into();
        assert!(retyped.verify(&public).is_err());
    }
}
