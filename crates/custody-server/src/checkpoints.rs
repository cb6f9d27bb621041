//! Publishing the ledger: signed checkpoints of every organisation's tree,
//! issued when it grew and at most every `--checkpoint-interval`, each sent
//! to the configured witnesses (c2sp.org/tlog-witness) whose cosignatures
//! are kept with it.
//!
//! One Ed25519 key signs for every organisation; each organisation's log
//! has its own origin, `<host>/custody/<org>`, which is also the key's name
//! in its verifier key, so a checkpoint of one organisation never verifies
//! as another's. The key is 32 random bytes, hex, in `ledger-signing.key`
//! in the data directory (created at first start) or the file
//! `--signing-key` names (replicas share one).

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use custody_ledger::merkle::Hash;
use custody_ledger::note::{AddCheckpoint, Checkpoint, Note, SignerKey, VerifierKey};
use custody_store::{Store, TreeHead, Unpublished};

/// The file the signing key is created in, in the data directory.
pub const SIGNING_KEY_FILE: &str = "ledger-signing.key";

/// Signs every organisation's checkpoints.
#[derive(Clone)]
pub struct LogSigner {
    seed: [u8; 32],
    /// `host[:port]` of the public URL: the origins' prefix.
    host: String,
}

impl std::fmt::Debug for LogSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LogSigner({})", self.host)
    }
}

impl LogSigner {
    /// Reads the key at `path`, or creates it (0600) when `create` and it
    /// does not exist.
    pub fn load(path: &Path, create: bool, public_url: &str) -> anyhow::Result<LogSigner> {
        Ok(LogSigner {
            seed: crate::secrets::load_or_create_key(path, create, "the ledger signing key")?,
            host: origin_host(public_url)?,
        })
    }

    pub fn origin(&self, org: &str) -> String {
        format!("{}/custody/{org}", self.host)
    }

    fn key(&self, org: &str) -> anyhow::Result<SignerKey> {
        SignerKey::from_seed(&self.origin(org), self.seed)
            .map_err(|e| anyhow::anyhow!("cannot sign for org '{org}': {e}"))
    }

    pub fn verifier(&self, org: &str) -> anyhow::Result<VerifierKey> {
        Ok(self.key(org)?.verifier())
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        ed25519_dalek::SigningKey::from_bytes(&self.seed)
            .verifying_key()
            .to_bytes()
    }

    /// A DSSE envelope of `payload`, signed with the same key.
    pub fn envelope(&self, payload_type: &str, payload: &[u8]) -> custody_ledger::dsse::Envelope {
        custody_ledger::dsse::Envelope::sign(payload_type, payload, &self.seed)
    }

    /// The signed note of a checkpoint of `org`'s tree.
    pub fn sign(&self, org: &str, head: &TreeHead) -> anyhow::Result<String> {
        let key = self.key(org)?;
        let cp = Checkpoint {
            origin: key.name().to_string(),
            size: head.size,
            root: head.root,
            extensions: Vec::new(),
        };
        let mut note = Note::new(&cp.text())?;
        note.signatures.push(key.sign(&note.text));
        Ok(note.encode())
    }
}

/// The host (and port) of the public URL, which names the logs.
fn origin_host(public_url: &str) -> anyhow::Result<String> {
    let url = reqwest::Url::parse(public_url)
        .with_context(|| format!("the public URL '{public_url}' is not a URL"))?;
    let host = url
        .host_str()
        .with_context(|| format!("the public URL '{public_url}' has no host"))?;
    Ok(match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    })
}

/// A witness the server asks to cosign: where, and the key its
/// cosignatures must verify with (`--witness URL=VKEY`).
#[derive(Debug, Clone)]
pub struct Witness {
    pub url: String,
    pub key: VerifierKey,
}

impl Witness {
    pub fn parse(spec: &str) -> Result<Witness, String> {
        let (url, key) = spec
            .split_once('=')
            .ok_or_else(|| format!("'{spec}' is not URL=VERIFIER_KEY"))?;
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| format!("witness URL '{url}' is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("witness URL '{url}' is not http(s)"));
        }
        let key = VerifierKey::parse(key).map_err(|e| format!("witness key: {e}"))?;
        if key.kind() != custody_ledger::note::COSIGNATURE_V1 {
            return Err(format!(
                "witness key '{}' is not a cosignature key (type 0x04)",
                key.encode()
            ));
        }
        Ok(Witness {
            url: url.trim_end_matches('/').to_string(),
            key,
        })
    }
}

#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    pub interval: Duration,
    pub witnesses: Vec<Witness>,
}

/// Issues checkpoints until the task is dropped.
pub async fn run(store: Store, signer: LogSigner, cfg: CheckpointConfig) {
    // Without its client (TLS could not be set up), checkpoints are still
    // issued and kept, and only the witnessing is missed: said once, here.
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .inspect_err(|e| {
            tracing::error!(error = %e, "cannot build the witness client; checkpoints are not witnessed")
        })
        .ok();
    let mut tick = tokio::time::interval(cfg.interval.max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match store.unpublished_trees().await {
            Ok(grown) => {
                for u in grown {
                    if let Err(e) =
                        publish(&store, &signer, client.as_ref(), &cfg.witnesses, &u).await
                    {
                        tracing::warn!(org = %u.org, error = %e, "cannot issue a checkpoint");
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the ledgers' heads"),
        }
    }
}

async fn publish(
    store: &Store,
    signer: &LogSigner,
    client: Option<&reqwest::Client>,
    witnesses: &[Witness],
    u: &Unpublished,
) -> anyhow::Result<()> {
    let note = signer.sign(&u.org, &u.head)?;
    if !store.save_checkpoint(u.org_id, &u.head, &note).await? {
        return Ok(());
    }
    let Some(client) = client else {
        return Ok(());
    };
    for w in witnesses {
        match cosign(store, client, w, u, &note).await {
            Ok(line) => {
                store
                    .add_cosignature(u.org_id, u.head.size, w.key.name(), &line)
                    .await?;
            }
            Err(e) => tracing::warn!(
                org = %u.org, witness = %w.url, size = u.head.size, error = %e,
                "the witness did not cosign"
            ),
        }
    }
    Ok(())
}

/// Asks one witness to cosign: from the size it last cosigned (per our
/// records), or, when it says otherwise (409), from the size it names.
async fn cosign(
    store: &Store,
    client: &reqwest::Client,
    w: &Witness,
    u: &Unpublished,
    note: &str,
) -> anyhow::Result<String> {
    let mut old = store
        .last_cosigned(u.org_id, w.key.name())
        .await?
        .unwrap_or(0);
    for _ in 0..2 {
        let old_size = old.min(u.head.size);
        let proof: Vec<Hash> = if old_size == 0 {
            Vec::new()
        } else {
            store
                .consistency_proof(&u.org, old_size, Some(u.head.size))
                .await?
                .1
        };
        let body = AddCheckpoint {
            old: old_size,
            proof,
            checkpoint: note.to_string(),
        }
        .encode();
        let resp = client
            .post(format!("{}/add-checkpoint", w.url))
            .body(body)
            .send()
            .await
            .with_context(|| format!("cannot reach {}", w.url))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        if status == reqwest::StatusCode::CONFLICT {
            old = text
                .trim()
                .parse()
                .with_context(|| format!("409 without a size: '{}'", text.trim()))?;
            continue;
        }
        if !status.is_success() {
            bail!("HTTP {status}: {}", text.trim());
        }
        // The cosignature must verify with the configured key; other
        // lines (the log's own signature, other witnesses') are ignored.
        let mut signed = note.to_string();
        signed.push_str(&text);
        Note::parse(&signed)?.verify(&[], &w.key)?;
        let line = text
            .lines()
            .find(|l| {
                custody_ledger::note::Signature::parse_line(l).is_ok_and(|s| s.name == w.key.name())
            })
            .map(|l| format!("{l}\n"))
            .with_context(|| "no cosignature line")?;
        return Ok(line);
    }
    bail!("the witness keeps answering 409")
}
