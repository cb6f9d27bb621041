//! C2SP signed notes (c2sp.org/signed-note), the checkpoints written in
//! them (c2sp.org/tlog-checkpoint) and Ed25519 cosignatures
//! (c2sp.org/tlog-cosignature, `cosignature/v1`).
//!
//! Written here rather than with the `signed_note` crate, which pins an
//! older generation of ed25519-dalek, sha2 and base64 than the rest of the
//! build: the formats are a few lines of text each, and the spec's own
//! example is a test below.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// Signature types of c2sp.org/signed-note.
pub const ED25519: u8 = 0x01;
pub const COSIGNATURE_V1: u8 = 0x04;

/// The em dash and space that start a signature line.
const SIG_PREFIX: &str = "\u{2014} ";

/// More signatures than a note may carry (the spec asks for at least 16).
const MAX_SIGNATURES: usize = 100;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteError {
    #[error("key name '{0}' is empty or contains a space or '+'")]
    KeyName(String),
    #[error("not a key: {0}")]
    Key(String),
    #[error("not a signed note: {0}")]
    Malformed(String),
    #[error("the signature of {name} (key {id}) does not verify")]
    BadSignature { name: String, id: String },
    #[error("no signature by {0} in the note")]
    Unsigned(String),
    #[error("not a checkpoint: {0}")]
    Checkpoint(String),
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

/// `SHA-256(name ‖ 0x0A ‖ type ‖ public key)[:4]`.
pub fn key_id(name: &str, kind: u8, public: &[u8; 32]) -> [u8; 4] {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', kind]);
    h.update(public);
    let d = h.finalize();
    [d[0], d[1], d[2], d[3]]
}

/// A private key that signs notes under a name: the log's, or a witness's.
#[derive(Clone)]
pub struct SignerKey {
    name: String,
    key: SigningKey,
}

impl std::fmt::Debug for SignerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SignerKey({})", self.name)
    }
}

impl SignerKey {
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<SignerKey, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::KeyName(name.to_string()));
        }
        Ok(SignerKey {
            name: name.to_string(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `PRIVATE+KEY+<name>+<hex id>+<base64(0x01 ‖ seed)>`, the form Go's
    /// `note` package reads too.
    pub fn encode(&self) -> String {
        let mut material = vec![ED25519];
        material.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{}+{}",
            self.name,
            hex::encode(key_id(&self.name, ED25519, &self.public())),
            B64.encode(material)
        )
    }

    pub fn parse(text: &str) -> Result<SignerKey, NoteError> {
        let bad = |why: &str| NoteError::Key(why.to_string());
        let rest = text
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| bad("a signing key starts with PRIVATE+KEY+"))?;
        // Names hold no '+'; base64 key material may.
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("a signing key is PRIVATE+KEY+<name>+<id>+<key>"));
        };
        let material = B64
            .decode(material)
            .map_err(|_| bad("the key material is not base64"))?;
        let seed: [u8; 32] = match material.split_first() {
            Some((&ED25519, seed)) => seed
                .try_into()
                .map_err(|_| bad("an Ed25519 signing key has 32 bytes"))?,
            _ => return Err(bad("only Ed25519 signing keys are supported")),
        };
        let key = SignerKey::from_seed(name, seed)?;
        if hex::encode(key_id(name, ED25519, &key.public())) != id {
            return Err(bad("the key id does not match the key"));
        }
        Ok(key)
    }

    pub fn public(&self) -> [u8; 32] {
        self.key.verifying_key().to_bytes()
    }

    /// The verifier key of the note signatures this key makes.
    pub fn verifier(&self) -> VerifierKey {
        VerifierKey::new(&self.name, ED25519, self.public())
    }

    /// The verifier key of the cosignatures this key makes as a witness.
    pub fn cosigner(&self) -> VerifierKey {
        VerifierKey::new(&self.name, COSIGNATURE_V1, self.public())
    }

    /// Signs a note's text (which ends with a newline).
    pub fn sign(&self, text: &str) -> Signature {
        let sig = self.key.sign(text.as_bytes());
        Signature {
            name: self.name.clone(),
            id: key_id(&self.name, ED25519, &self.public()),
            bytes: sig.to_bytes().to_vec(),
        }
    }

    /// A `cosignature/v1` over a checkpoint's text at `timestamp`
    /// (seconds since the epoch).
    pub fn cosign(&self, checkpoint_text: &str, timestamp: u64) -> Signature {
        let sig = self
            .key
            .sign(cosigned_message(checkpoint_text, timestamp).as_bytes());
        let mut bytes = timestamp.to_be_bytes().to_vec();
        bytes.extend_from_slice(&sig.to_bytes());
        Signature {
            name: self.name.clone(),
            id: key_id(&self.name, COSIGNATURE_V1, &self.public()),
            bytes,
        }
    }
}

fn cosigned_message(checkpoint_text: &str, timestamp: u64) -> String {
    format!("cosignature/v1\ntime {timestamp}\n{checkpoint_text}")
}

/// A public key that checks note signatures (`ED25519`) or cosignatures
/// (`COSIGNATURE_V1`): `<name>+<hex id>+<base64(type ‖ key)>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    name: String,
    kind: u8,
    key: [u8; 32],
    id: [u8; 4],
}

impl VerifierKey {
    fn new(name: &str, kind: u8, key: [u8; 32]) -> VerifierKey {
        VerifierKey {
            name: name.to_string(),
            kind,
            id: key_id(name, kind, &key),
            key,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> u8 {
        self.kind
    }

    /// The Ed25519 public key.
    pub fn public(&self) -> [u8; 32] {
        self.key
    }

    pub fn encode(&self) -> String {
        let mut material = vec![self.kind];
        material.extend_from_slice(&self.key);
        format!(
            "{}+{}+{}",
            self.name,
            hex::encode(self.id),
            B64.encode(material)
        )
    }

    pub fn parse(text: &str) -> Result<VerifierKey, NoteError> {
        let text = text.trim();
        let bad = |why: &str| NoteError::Key(format!("'{text}': {why}"));
        // Names hold no '+'; base64 key material may.
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(id), Some(material)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad("a verifier key is <name>+<id>+<key>"));
        };
        if !valid_name(name) {
            return Err(NoteError::KeyName(name.to_string()));
        }
        let material = B64
            .decode(material)
            .map_err(|_| bad("the key material is not base64"))?;
        let (kind, key) = match material.split_first() {
            Some((&k, key)) if k == ED25519 || k == COSIGNATURE_V1 => (k, key),
            _ => {
                return Err(bad(
                    "only Ed25519 keys (type 0x01) and Ed25519 cosigners (type 0x04) are supported",
                ));
            }
        };
        let key: [u8; 32] = key
            .try_into()
            .map_err(|_| bad("an Ed25519 key has 32 bytes"))?;
        VerifyingKey::from_bytes(&key).map_err(|_| bad("not an Ed25519 public key"))?;
        let v = VerifierKey::new(name, kind, key);
        if hex::encode(v.id) != id {
            return Err(bad("the key id does not match the key"));
        }
        Ok(v)
    }

    /// Whether a signature line claims to be by this key.
    pub fn matches(&self, sig: &Signature) -> bool {
        sig.name == self.name && sig.id == self.id
    }

    fn check(&self, text: &str, sig: &Signature) -> Result<Option<u64>, NoteError> {
        let fail = || NoteError::BadSignature {
            name: self.name.clone(),
            id: hex::encode(self.id),
        };
        let key = VerifyingKey::from_bytes(&self.key).map_err(|_| fail())?;
        match self.kind {
            ED25519 => {
                let bytes: [u8; 64] = sig.bytes.as_slice().try_into().map_err(|_| fail())?;
                key.verify_strict(
                    text.as_bytes(),
                    &ed25519_dalek::Signature::from_bytes(&bytes),
                )
                .map_err(|_| fail())?;
                Ok(None)
            }
            COSIGNATURE_V1 => {
                if sig.bytes.len() != 72 {
                    return Err(fail());
                }
                let (ts, s) = sig.bytes.split_at(8);
                let ts = u64::from_be_bytes(ts.try_into().map_err(|_| fail())?);
                let s: [u8; 64] = s.try_into().map_err(|_| fail())?;
                key.verify_strict(
                    cosigned_message(text, ts).as_bytes(),
                    &ed25519_dalek::Signature::from_bytes(&s),
                )
                .map_err(|_| fail())?;
                Ok(Some(ts))
            }
            _ => Err(fail()),
        }
    }
}

/// One signature line of a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub name: String,
    pub id: [u8; 4],
    /// The signature after the key id (for a cosignature: timestamp, then
    /// the Ed25519 signature).
    pub bytes: Vec<u8>,
}

impl Signature {
    pub fn line(&self) -> String {
        let mut raw = self.id.to_vec();
        raw.extend_from_slice(&self.bytes);
        format!("{SIG_PREFIX}{} {}\n", self.name, B64.encode(raw))
    }

    pub fn parse_line(line: &str) -> Result<Signature, NoteError> {
        let bad = |why: &str| NoteError::Malformed(format!("signature line '{line}': {why}"));
        let rest = line
            .strip_prefix(SIG_PREFIX)
            .ok_or_else(|| bad("does not start with '\u{2014} '"))?;
        let (name, b64) = rest
            .split_once(' ')
            .ok_or_else(|| bad("is not '\u{2014} <name> <signature>'"))?;
        if !valid_name(name) {
            return Err(bad("the key name is invalid"));
        }
        let raw = B64
            .decode(b64)
            .map_err(|_| bad("the signature is not base64"))?;
        if raw.len() < 5 {
            return Err(bad("the signature is too short"));
        }
        let (id, bytes) = raw.split_at(4);
        Ok(Signature {
            name: name.to_string(),
            id: [id[0], id[1], id[2], id[3]],
            bytes: bytes.to_vec(),
        })
    }

    /// The cosignature's timestamp, if this is a cosignature line.
    pub fn timestamp(&self) -> Option<u64> {
        (self.bytes.len() == 72).then(|| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&self.bytes[..8]);
            u64::from_be_bytes(b)
        })
    }
}

/// A signed note: text ending in a newline, a blank line, signature lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub text: String,
    pub signatures: Vec<Signature>,
}

/// Who signed a note, among the keys a verifier knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Verifier keys (encoded) whose signature verified.
    pub signers: Vec<String>,
    /// Cosigners' names with their timestamps.
    pub cosigners: Vec<(String, u64)>,
}

impl Note {
    pub fn new(text: &str) -> Result<Note, NoteError> {
        check_text(text)?;
        Ok(Note {
            text: text.to_string(),
            signatures: Vec::new(),
        })
    }

    pub fn encode(&self) -> String {
        let mut s = self.text.clone();
        s.push('\n');
        for sig in &self.signatures {
            s.push_str(&sig.line());
        }
        s
    }

    pub fn parse(note: &str) -> Result<Note, NoteError> {
        let bad = |why: &str| NoteError::Malformed(why.to_string());
        if !note.ends_with('\n') {
            return Err(bad("a note ends with a newline"));
        }
        // The text is separated from the signatures by the last blank line.
        let split = note
            .rfind("\n\n")
            .ok_or_else(|| bad("no blank line before the signatures"))?;
        let text = &note[..split + 1];
        check_text(text)?;
        let sigs = &note[split + 2..];
        let signatures = sigs
            .lines()
            .map(Signature::parse_line)
            .collect::<Result<Vec<_>, _>>()?;
        if signatures.is_empty() {
            return Err(bad("a signed note has at least one signature"));
        }
        if signatures.len() > MAX_SIGNATURES {
            return Err(bad("too many signatures"));
        }
        Ok(Note {
            text: text.to_string(),
            signatures,
        })
    }

    /// Checks every signature by a known key (a known key's failing
    /// signature rejects the note, unknown keys are ignored); `Unsigned`
    /// if none of `required` signed it.
    pub fn verify(
        &self,
        known: &[VerifierKey],
        required: &VerifierKey,
    ) -> Result<Verified, NoteError> {
        let mut v = Verified {
            signers: Vec::new(),
            cosigners: Vec::new(),
        };
        for sig in &self.signatures {
            for key in known.iter().chain(std::iter::once(required)) {
                if key.matches(sig) {
                    let ts = key.check(&self.text, sig)?;
                    let enc = key.encode();
                    if !v.signers.contains(&enc) {
                        v.signers.push(enc);
                        if let Some(ts) = ts {
                            v.cosigners.push((key.name.clone(), ts));
                        }
                    }
                    break;
                }
            }
        }
        if !v.signers.contains(&required.encode()) {
            return Err(NoteError::Unsigned(required.encode()));
        }
        Ok(v)
    }
}

fn check_text(text: &str) -> Result<(), NoteError> {
    let bad = |why: &str| NoteError::Malformed(why.to_string());
    if text.is_empty() || !text.ends_with('\n') {
        return Err(bad("the text must end with a newline"));
    }
    if text.chars().any(|c| c < ' ' && c != '\n') {
        return Err(bad("the text has a control character"));
    }
    Ok(())
}

/// A tree head in the c2sp.org/tlog-checkpoint form: origin, size, root,
/// then extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    pub extensions: Vec<String>,
}

impl Checkpoint {
    pub fn text(&self) -> String {
        let mut s = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        );
        for e in &self.extensions {
            s.push_str(e);
            s.push('\n');
        }
        s
    }

    pub fn parse(text: &str) -> Result<Checkpoint, NoteError> {
        let bad = |why: String| NoteError::Checkpoint(why);
        // Lines end with a newline only, and hold no control character: the
        // rules of a note's text, so a checkpoint reads one way only.
        let Some(body) = text.strip_suffix('\n') else {
            return Err(bad("a checkpoint ends with a newline".into()));
        };
        if body.chars().any(|c| c < ' ' && c != '\n') {
            return Err(bad("a checkpoint has a control character".into()));
        }
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| bad("no origin line".into()))?;
        let size = lines.next().ok_or_else(|| bad("no size line".into()))?;
        // Decimal with no leading zeroes, as the spec requires.
        if size.is_empty()
            || !size.bytes().all(|b| b.is_ascii_digit())
            || (size.len() > 1 && size.starts_with('0'))
        {
            return Err(bad(format!("size '{size}' is not a decimal number")));
        }
        let size: u64 = size
            .parse()
            .map_err(|_| bad(format!("size '{size}' is out of range")))?;
        let root_line = lines
            .next()
            .ok_or_else(|| bad("no root hash line".into()))?;
        let root: Hash = B64
            .decode(root_line)
            .ok()
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| bad(format!("root '{root_line}' is not a base64 SHA-256 hash")))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(|e| e.is_empty()) {
            return Err(bad("an empty extension line".into()));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }
}

/// A signed checkpoint as parsed from a note, verified by the log's key
/// and any cosigners it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub note: Note,
    pub verified: Verified,
}

impl SignedCheckpoint {
    pub fn open(
        note: &str,
        log_key: &VerifierKey,
        witnesses: &[VerifierKey],
    ) -> Result<SignedCheckpoint, NoteError> {
        let note = Note::parse(note)?;
        let verified = note.verify(witnesses, log_key)?;
        let checkpoint = Checkpoint::parse(&note.text)?;
        if checkpoint.origin != log_key.name() {
            return Err(NoteError::Checkpoint(format!(
                "origin '{}' is not the log key's name '{}'",
                checkpoint.origin,
                log_key.name()
            )));
        }
        Ok(SignedCheckpoint {
            checkpoint,
            note,
            verified,
        })
    }
}

/// The body of a c2sp.org/tlog-witness `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old: u64,
    pub proof: Vec<Hash>,
    /// The signed checkpoint note.
    pub checkpoint: String,
}

/// The protocol's limit on proof lines.
pub const MAX_PROOF_LINES: usize = 63;

impl AddCheckpoint {
    pub fn encode(&self) -> String {
        let mut s = format!("old {}\n", self.old);
        for h in &self.proof {
            s.push_str(&B64.encode(h));
            s.push('\n');
        }
        s.push('\n');
        s.push_str(&self.checkpoint);
        s
    }

    pub fn parse(body: &str) -> Result<AddCheckpoint, NoteError> {
        let bad = |why: String| NoteError::Malformed(why);
        let (head, checkpoint) = body
            .split_once("\n\n")
            .ok_or_else(|| bad("no blank line before the checkpoint".into()))?;
        let mut lines = head.lines();
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .ok_or_else(|| bad("the first line is not 'old <size>'".into()))?;
        if old.is_empty()
            || !old.bytes().all(|b| b.is_ascii_digit())
            || (old.len() > 1 && old.starts_with('0'))
        {
            return Err(bad(format!("old size '{old}' is not a decimal number")));
        }
        let old: u64 = old
            .parse()
            .map_err(|_| bad(format!("old size '{old}' is out of range")))?;
        let proof = lines
            .map(|l| {
                B64.decode(l)
                    .ok()
                    .and_then(|h| <Hash>::try_from(h).ok())
                    .ok_or_else(|| bad(format!("proof line '{l}' is not a base64 hash")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > MAX_PROOF_LINES {
            return Err(bad(format!(
                "{} proof lines, more than {MAX_PROOF_LINES}",
                proof.len()
            )));
        }
        Ok(AddCheckpoint {
            old,
            proof,
            checkpoint: checkpoint.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_example_note_verifies() {
        // c2sp.org/signed-note, "Example".
        let vkey = VerifierKey::parse(
            "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k",
        )
        .unwrap();
        let note = "This is an example message.\n\n\u{2014} example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";
        let n = Note::parse(note).unwrap();
        assert_eq!(n.text, "This is an example message.\n");
        n.verify(&[], &vkey).unwrap();
        assert_eq!(n.encode(), note);
        let tampered = note.replace("example message", "exemplary message");
        assert!(matches!(
            Note::parse(&tampered).unwrap().verify(&[], &vkey),
            Err(NoteError::BadSignature { .. })
        ));
    }

    #[test]
    fn keys_with_plus_in_their_base64_parse() {
        // Base64 uses '+'; about one key in six has one in its material.
        let mut with_plus = 0;
        for i in 0..64u8 {
            let k = SignerKey::from_seed("log.example/a", [i; 32]).unwrap();
            with_plus += usize::from(k.verifier().encode().matches('+').count() > 2);
            assert_eq!(
                VerifierKey::parse(&k.verifier().encode()).unwrap(),
                k.verifier()
            );
            assert_eq!(
                VerifierKey::parse(&k.cosigner().encode()).unwrap(),
                k.cosigner()
            );
            assert_eq!(SignerKey::parse(&k.encode()).unwrap().public(), k.public());
        }
        assert!(with_plus > 0);
    }

    #[test]
    fn keys_round_trip_and_sign_checkpoints() {
        let k = SignerKey::from_seed("custody.example/custody/acme", [7u8; 32]).unwrap();
        let again = SignerKey::parse(&k.encode()).unwrap();
        assert_eq!(again.public(), k.public());
        let v = VerifierKey::parse(&k.verifier().encode()).unwrap();
        assert_eq!(v, k.verifier());

        let cp = Checkpoint {
            origin: k.name().to_string(),
            size: 12,
            root: [9u8; 32],
            extensions: vec![],
        };
        let mut note = Note::new(&cp.text()).unwrap();
        note.signatures.push(k.sign(&note.text));
        let w = SignerKey::from_seed("witness.example/w1", [8u8; 32]).unwrap();
        note.signatures.push(w.cosign(&note.text, 1_700_000_000));
        let opened = SignedCheckpoint::open(&note.encode(), &v, &[w.cosigner()]).unwrap();
        assert_eq!(opened.checkpoint, cp);
        assert_eq!(
            opened.verified.cosigners,
            vec![("witness.example/w1".to_string(), 1_700_000_000)]
        );
        // An unknown cosigner is ignored, not an error.
        let other = SignerKey::from_seed("witness.example/w2", [6u8; 32]).unwrap();
        let opened = SignedCheckpoint::open(&note.encode(), &v, &[other.cosigner()]).unwrap();
        assert!(opened.verified.cosigners.is_empty());
        // Another log key: unsigned.
        assert!(matches!(
            SignedCheckpoint::open(&note.encode(), &other.verifier(), &[]),
            Err(NoteError::Unsigned(_))
        ));
    }

    #[test]
    fn malformed_checkpoints_and_requests_are_refused() {
        for bad in [
            "",
            "origin\n",
            "origin\n012\nAAAA\n",
            "origin\n-1\nAAAA\n",
            "origin\n3\nnot base64\n",
            "origin\n3\nAAAA\n",
            // Found by fuzzing: a control character and a carriage return
            // read differently once printed back.
            "custod\u{1}y.example/x\n8\nJK7oZWRpyMLU7LsIYAmIeeXShuhjCHtyKiGN21JbKG4=\n",
            "o\r\n8\nJK7oZWRpyMLU7LsIYAmIeeXShuhjCHtyKiGN21JbKG4=\n",
            "o\n8\nJK7oZWRpyMLU7LsIYAmIeeXShuhjCHtyKiGN21JbKG4=",
        ] {
            assert!(Checkpoint::parse(bad).is_err(), "{bad:?}");
        }
        let req = AddCheckpoint {
            old: 3,
            proof: vec![[1u8; 32], [2u8; 32]],
            checkpoint: "x\n5\nAAAA\n\n\u{2014} x AAAAAAA=\n".into(),
        };
        assert_eq!(AddCheckpoint::parse(&req.encode()).unwrap(), req);
        assert!(AddCheckpoint::parse("old 01\n\nx").is_err());
        assert!(AddCheckpoint::parse("new 1\n\nx").is_err());
        assert!(AddCheckpoint::parse("old 1\nzz\n\nx").is_err());
    }
}
