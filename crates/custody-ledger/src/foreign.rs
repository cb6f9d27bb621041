//! Signed statements made by other tools: their public keys in the forms
//! those tools print, and in-toto statements in DSSE envelopes, for
//! `custody attest intoto`.
//!
//! Keys: PEM `SubjectPublicKeyInfo` (Ed25519 or ECDSA P-256, what
//! OpenSSL, cosign and securesystemslib write), securesystemslib's key
//! JSON (`{"keytype", "scheme", "keyval": {"public"}}`), 64 hex digits (a
//! raw Ed25519 key), or a signed-note verifier key. Both SPKI layouts are
//! fixed byte prefixes, so no ASN.1 reader is needed; ECDSA signatures are
//! DER, as DSSE signers write them, checked with the TLS stack's
//! aws-lc-rs.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signature, VerifyingKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::dsse::{DsseError, Envelope, pae};

const ED25519_SPKI: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
const P256_SPKI: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    Ed25519([u8; 32]),
    /// The uncompressed point (65 bytes, 0x04 first).
    EcdsaP256(Vec<u8>),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

fn bad(why: impl Into<String>) -> KeyError {
    KeyError(why.into())
}

impl PublicKey {
    pub fn parse(text: &str) -> Result<PublicKey, KeyError> {
        let t = text.trim();
        if t.starts_with("-----BEGIN") {
            return Self::pem(t);
        }
        if t.starts_with('{') {
            let v: Value = serde_json::from_str(t).map_err(|e| bad(format!("key JSON: {e}")))?;
            let public = v["keyval"]["public"]
                .as_str()
                .ok_or_else(|| bad("key JSON without keyval.public"))?;
            return Self::parse(public);
        }
        if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            let raw: [u8; 32] = hex::decode(t)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("not hex"))?;
            return Self::ed25519(raw);
        }
        if t.contains('+') {
            let k = crate::note::VerifierKey::parse(t).map_err(|e| bad(e.to_string()))?;
            return Self::ed25519(k.public());
        }
        Err(bad(
            "not a public key: give a PEM file, a securesystemslib key, 64 hex digits (Ed25519) or a verifier key",
        ))
    }

    fn ed25519(raw: [u8; 32]) -> Result<PublicKey, KeyError> {
        VerifyingKey::from_bytes(&raw).map_err(|_| bad("not an Ed25519 public key"))?;
        Ok(PublicKey::Ed25519(raw))
    }

    fn pem(t: &str) -> Result<PublicKey, KeyError> {
        let body: String = t
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "-----BEGIN PUBLIC KEY-----")
            .skip(1)
            .take_while(|l| !l.starts_with("-----END"))
            .collect();
        if body.is_empty() {
            return Err(bad(
                "a PEM public key is between -----BEGIN PUBLIC KEY----- and -----END PUBLIC KEY-----",
            ));
        }
        let der = B64
            .decode(body)
            .map_err(|_| bad("the PEM body is not base64"))?;
        if let Some(raw) = der.strip_prefix(&ED25519_SPKI[..]) {
            let raw: [u8; 32] = raw
                .try_into()
                .map_err(|_| bad("an Ed25519 key has 32 bytes"))?;
            return Self::ed25519(raw);
        }
        if let Some(point) = der.strip_prefix(&P256_SPKI[..]) {
            if point.len() != 65 || point[0] != 0x04 {
                return Err(bad(
                    "an ECDSA P-256 key is an uncompressed point of 65 bytes",
                ));
            }
            return Ok(PublicKey::EcdsaP256(point.to_vec()));
        }
        Err(bad(
            "only Ed25519 and ECDSA P-256 public keys are supported",
        ))
    }

    pub fn algorithm(&self) -> &'static str {
        match self {
            PublicKey::Ed25519(_) => "ed25519",
            PublicKey::EcdsaP256(_) => "ecdsa-p256-sha256",
        }
    }

    /// SHA-256 of the key's SubjectPublicKeyInfo: names the key whatever
    /// form it was given in.
    pub fn fingerprint(&self) -> String {
        let mut der = Vec::new();
        match self {
            PublicKey::Ed25519(k) => {
                der.extend_from_slice(&ED25519_SPKI);
                der.extend_from_slice(k);
            }
            PublicKey::EcdsaP256(p) => {
                der.extend_from_slice(&P256_SPKI);
                der.extend_from_slice(p);
            }
        }
        hex::encode(Sha256::digest(der))
    }

    fn check(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            PublicKey::Ed25519(k) => {
                let (Ok(key), Ok(sig)) = (VerifyingKey::from_bytes(k), <[u8; 64]>::try_from(sig))
                else {
                    return false;
                };
                key.verify_strict(message, &Signature::from_bytes(&sig))
                    .is_ok()
            }
            PublicKey::EcdsaP256(point) => {
                use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, point)
                    .verify(message, sig)
                    .is_ok()
            }
        }
    }

    /// The envelope's payload, once one of its signatures verifies with
    /// this key. Key ids are not compared: every tool derives its own.
    pub fn verify(&self, e: &Envelope) -> Result<Vec<u8>, DsseError> {
        let payload = B64.decode(&e.payload).map_err(|_| DsseError::Payload)?;
        let message = pae(&e.payload_type, &payload);
        if e.signatures.is_empty() {
            return Err(DsseError::Unsigned(self.fingerprint()));
        }
        let ok = e.signatures.iter().any(|s| {
            B64.decode(&s.sig)
                .is_ok_and(|sig| self.check(&message, &sig))
        });
        if ok {
            Ok(payload)
        } else {
            Err(DsseError::BadSignature(self.fingerprint()))
        }
    }
}

/// An in-toto Statement (v1, or v0.1 which has the same shape).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub statement_type: String,
    pub predicate_type: String,
    /// Subjects with a SHA-256 digest: name and lowercase hex.
    pub subjects: Vec<(String, String)>,
    pub value: Value,
}

pub const STATEMENT_TYPES: [&str; 2] = [
    "https://in-toto.io/Statement/v1",
    "https://in-toto.io/Statement/v0.1",
];

impl Statement {
    pub fn parse(payload: &[u8]) -> Result<Statement, KeyError> {
        let v: Value = serde_json::from_slice(payload)
            .map_err(|e| bad(format!("the payload is not JSON: {e}")))?;
        let t = v["_type"].as_str().unwrap_or_default();
        if !STATEMENT_TYPES.contains(&t) {
            return Err(bad(format!(
                "the payload's _type is '{t}', not an in-toto statement ({})",
                STATEMENT_TYPES.join(" or ")
            )));
        }
        let predicate_type = v["predicateType"]
            .as_str()
            .filter(|p| !p.is_empty())
            .ok_or_else(|| bad("the statement has no predicateType"))?
            .to_string();
        let list = v["subject"]
            .as_array()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("the statement has no subject"))?;
        let mut subjects = Vec::new();
        for (i, s) in list.iter().enumerate() {
            let name = s["name"].as_str().unwrap_or_default().to_string();
            if let Some(d) = s["digest"]["sha256"].as_str() {
                let d = d.to_ascii_lowercase();
                if d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad(format!(
                        "subject {i} ('{name}'): sha256 '{d}' is not 64 hex digits"
                    )));
                }
                subjects.push((name, d));
            }
        }
        if subjects.is_empty() {
            return Err(bad(
                "no subject has a sha256 digest, so none can be an artifact",
            ));
        }
        Ok(Statement {
            statement_type: t.to_string(),
            predicate_type,
            subjects,
            value: v,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    #[test]
    fn keys_are_read_in_every_form_and_name_themselves_alike() {
        let sk = SigningKey::from_bytes(&[9; 32]);
        let raw = sk.verifying_key().to_bytes();
        let mut der = ED25519_SPKI.to_vec();
        der.extend_from_slice(&raw);
        let pem = format!(
            "-----BEGIN PUBLIC KEY-----\n{}\n-----END PUBLIC KEY-----\n",
            B64.encode(&der)
        );
        let json = format!(
            r#"{{"keytype":"ed25519","scheme":"ed25519","keyval":{{"public":"{}"}}}}"#,
            hex::encode(raw)
        );
        let a = PublicKey::parse(&pem).unwrap();
        assert_eq!(a, PublicKey::parse(&hex::encode(raw)).unwrap());
        assert_eq!(a, PublicKey::parse(&json).unwrap());
        assert_eq!(a.fingerprint(), hex::encode(Sha256::digest(&der)));
        assert!(
            PublicKey::parse("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----").is_err()
        );
        assert!(PublicKey::parse("hello").is_err());
    }

    #[test]
    fn an_envelope_verifies_with_its_signers_key_only() {
        let sk = SigningKey::from_bytes(&[9; 32]);
        let payload = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"app","digest":{"sha256":"aa"}}],"predicateType":"x"}"#;
        let sig = sk.sign(&pae(crate::dsse::INTOTO_PAYLOAD_TYPE, payload));
        let e = Envelope {
            payload_type: crate::dsse::INTOTO_PAYLOAD_TYPE.into(),
            payload: B64.encode(payload),
            signatures: vec![crate::dsse::EnvelopeSignature {
                keyid: "whatever-their-tool-says".into(),
                sig: B64.encode(sig.to_bytes()),
            }],
        };
        let key = PublicKey::Ed25519(sk.verifying_key().to_bytes());
        assert_eq!(key.verify(&e).unwrap(), payload.to_vec());
        let other = PublicKey::Ed25519(SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes());
        assert!(matches!(other.verify(&e), Err(DsseError::BadSignature(_))));
        // The statement's one subject has a short digest: refused.
        assert!(
            Statement::parse(payload)
                .unwrap_err()
                .to_string()
                .contains("not 64 hex digits")
        );
    }
}
