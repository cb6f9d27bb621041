//! The delivery worker: sends what the outbox holds, to webhooks (JSON,
//! signed with HMAC-SHA256 when the action has a secret) and Slack
//! (blocks), retrying with exponential backoff and jitter until a delivery
//! succeeds or its maximum age passes.
//!
//! It wakes on every commit (the store's signal) and otherwise when the
//! next retry is due, so an event goes out as soon as its transaction is
//! durable. Rows are claimed with a lease: a crash leaves them pending and
//! they are sent again, by this replica or another, once it expires.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use custody_api::{DeliveryAttempt, Event, TargetKind, Trigger};
use custody_store::{DueDelivery, Outcome, Store};
use hmac::{KeyInit, Mac};
use serde_json::{Value, json};
use tokio::task::JoinSet;

#[derive(Debug, Clone)]
pub struct DeliveryConfig {
    /// Where links in messages point (the server as users reach it).
    pub public_url: String,
    /// The first retry's delay; each next one doubles, up to an hour.
    pub retry_base: Duration,
    /// How long a delivery is retried before it is given up.
    pub max_age: Duration,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// Attempts in flight at once.
    pub concurrency: usize,
    /// Attempts in flight at once for one organisation.
    pub per_org: usize,
    /// Where deliveries may go.
    pub egress: crate::egress::EgressPolicy,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            public_url: "http://127.0.0.1:8080".into(),
            retry_base: Duration::from_secs(1),
            max_age: Duration::from_secs(24 * 3600),
            timeout: Duration::from_secs(10),
            concurrency: 16,
            per_org: 4,
            egress: Default::default(),
        }
    }
}

const MAX_DELAY: Duration = Duration::from_secs(3600);
/// How often reporters are checked for silence.
const SILENCE_CHECK: Duration = Duration::from_secs(1);

fn now_ms() -> i64 {
    custody_store::clock::now_ms()
}

/// The delay before attempt `attempt + 1`: exponential, capped, with
/// jitter in [d/2, d] so that receivers coming back are not stampeded.
pub fn backoff(base: Duration, attempt: u32) -> Duration {
    let d = base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(20))
        .min(MAX_DELAY);
    let ms = d.as_millis().max(1) as u64;
    Duration::from_millis(rand::random_range(ms / 2..=ms))
}

/// `sha256=<hex>` of HMAC-SHA256(secret, "<timestamp>.<body>").
pub fn signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

fn snapshot_url(base: &str, e: &Event, n: u64) -> String {
    format!(
        "{base}/api/v1/orgs/{}/environments/{}/snapshot?at=%23{n}",
        e.org, e.environment
    )
}

/// The webhook body: the event with links back to the server.
pub fn webhook_body(base: &str, e: &Event) -> Value {
    let artifacts: Vec<Value> = e
        .artifacts
        .iter()
        .map(|a| {
            json!({
                "name": a.name,
                "fingerprint": a.fingerprint,
                "instances": {"was": a.was, "now": a.now},
                "provenance": a.provenance.iter().map(|p| json!({
                    "flow": p.flow,
                    "trail": p.trail,
                    "compliant": p.compliant,
                    "url": format!("{base}/api/v1/orgs/{}/flows/{}/trails/{}", e.org, p.flow, p.trail),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "version": "1",
        "id": e.id,
        "trigger": e.trigger,
        "org": e.org,
        "environment": e.environment,
        "timestamp": e.timestamp,
        "description": e.description,
        "snapshot": e.snapshot.map(|n| json!({"index": n, "url": snapshot_url(base, e, n)})),
        "artifacts": artifacts,
        "compliance": e.compliance,
    })
}

fn headline(t: Trigger) -> &'static str {
    match t {
        Trigger::NonCompliant => ":red_circle: Environment non-compliant",
        Trigger::CompliantAgain => ":large_green_circle: Environment compliant again",
        Trigger::UnknownArtifact => ":warning: Unknown artifact running",
        Trigger::ArtifactStarted => ":arrow_forward: Artifact started",
        Trigger::ArtifactStopped => ":black_square_for_stop: Artifact stopped",
        Trigger::ReporterSilent => ":mute: Reporter silent",
    }
}

/// Slack's escaping for text in mrkdwn.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A Slack message in blocks, linking back to the server.
pub fn slack_body(base: &str, e: &Event) -> Value {
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": headline(e.trigger), "emoji": true}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("*{}*: {}", esc(&e.environment), esc(&e.description))}}),
    ];
    let lines: Vec<String> = e
        .artifacts
        .iter()
        .take(20)
        .map(|a| {
            let fp = a
                .fingerprint
                .as_deref()
                .map_or("no digest".to_string(), |f| {
                    format!("`{}`", &f[..12.min(f.len())])
                });
            let origin = match a.provenance.first() {
                None => "*no provenance*".to_string(),
                Some(p) => format!(
                    "<{base}/api/v1/orgs/{}/flows/{}/trails/{}|{}/{}>{}",
                    e.org,
                    p.flow,
                    p.trail,
                    esc(&p.flow),
                    esc(&p.trail),
                    if p.compliant { "" } else { " (non-compliant)" }
                ),
            };
            format!("• *{}* {fp} {origin}", esc(&a.name))
        })
        .collect();
    if !lines.is_empty() {
        let more = e.artifacts.len().saturating_sub(lines.len());
        let mut text = lines.join("\n");
        if more > 0 {
            text.push_str(&format!("\n…and {more} more"));
        }
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": text}}));
    }
    if let Some(c) = &e.compliance
        && !c.reasons.is_empty()
    {
        let reasons: Vec<String> = c
            .reasons
            .iter()
            .take(10)
            .map(|r| format!("• {}", esc(r)))
            .collect();
        blocks.push(
            json!({"type": "section", "text": {"type": "mrkdwn", "text": reasons.join("\n")}}),
        );
    }
    if let Some(n) = e.snapshot {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn",
            "text": format!("<{}|{} snapshot #{n}> · {}", snapshot_url(base, e, n), esc(&e.environment), esc(&e.org))}]}));
    }
    json!({
        "text": format!("{}: {}", e.environment, e.description),
        "blocks": blocks,
    })
}

/// One attempt: what the receiver said, or why there was no answer.
async fn attempt(
    http: &reqwest::Client,
    cfg: &DeliveryConfig,
    d: &DueDelivery,
) -> (Option<u16>, Option<String>) {
    let base = cfg.public_url.trim_end_matches('/');
    let body = match d.target.kind {
        TargetKind::Webhook => webhook_body(base, &d.event),
        TargetKind::Slack => slack_body(base, &d.event),
    };
    let bytes = match serde_json::to_vec(&body) {
        Ok(b) => b,
        Err(e) => return (None, Some(format!("cannot encode the message: {e}"))),
    };
    let timestamp = (now_ms() / 1000).to_string();
    let mut req = http
        .post(&d.target.url)
        .timeout(cfg.timeout)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(
            reqwest::header::USER_AGENT,
            concat!("custody/", env!("CARGO_PKG_VERSION")),
        );
    if d.target.kind == TargetKind::Webhook {
        req = req
            .header("X-Custody-Event", d.event.trigger.as_str())
            .header("X-Custody-Delivery", &d.event.id)
            .header("Idempotency-Key", &d.event.id)
            .header("X-Custody-Timestamp", &timestamp);
        if let Some(secret) = &d.secret {
            req = req.header("X-Custody-Signature", signature(secret, &timestamp, &bytes));
        }
    }
    // An address written in the URL is not resolved, so it is checked
    // here; names are checked by the client's resolver at every send.
    if let Err(e) = cfg.egress.check_url(&d.target.url) {
        return (None, Some(e.0));
    }
    // Only the status is kept: what a receiver answers is not shown to
    // readers (an internal service's error page could hold secrets), and
    // is never read, so a receiver cannot make the server buffer a body.
    match req.body(bytes).send().await {
        Ok(r) => {
            let status = r.status();
            if status.is_success() {
                (Some(status.as_u16()), None)
            } else if status.is_redirection() {
                (
                    Some(status.as_u16()),
                    Some(format!(
                        "HTTP {}: redirects are not followed",
                        status.as_u16()
                    )),
                )
            } else {
                (
                    Some(status.as_u16()),
                    Some(format!("HTTP {}", status.as_u16())),
                )
            }
        }
        Err(e) if e.is_timeout() => (
            None,
            Some(format!("timed out after {} ms", cfg.timeout.as_millis())),
        ),
        Err(e) => {
            let reason = failure_reason(&e);
            tracing::info!(event = %d.event.id, action = %d.action, error = ?e, "{reason}");
            (None, Some(reason))
        }
    }
}

/// A failed send in a few words that say what kind of failure it was and
/// nothing about the network behind it; the details go to the log.
fn failure_reason(e: &reqwest::Error) -> String {
    let mut src: Option<&dyn std::error::Error> = Some(e);
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<crate::egress::Refused>() {
            return r.0.clone();
        }
        src = s.source();
    }
    if e.is_connect() {
        "could not connect to the receiver".into()
    } else if e.is_request() {
        "the request could not be sent".into()
    } else {
        "the receiver did not answer properly".into()
    }
}

async fn deliver(
    store: Store,
    http: reqwest::Client,
    cfg: Arc<DeliveryConfig>,
    secrets: Arc<crate::secrets::SecretBox>,
    mut d: DueDelivery,
) -> i64 {
    let org_id = d.org_id;
    let started = Instant::now();
    let at = now_ms();
    let opened = d.secret.as_deref().map(|s| secrets.open(s)).transpose();
    let (status, error) = match opened {
        Ok(secret) => {
            d.secret = secret;
            attempt(&http, &cfg, &d).await
        }
        Err(e) => {
            tracing::error!(action = %d.action, "cannot open the action's secret: {e}");
            (
                None,
                Some("the action's secret cannot be read by this server".into()),
            )
        }
    };
    let n = d.attempts + 1;
    let outcome = if error.is_none() {
        Outcome::Delivered
    } else {
        let next = now_ms() + backoff(cfg.retry_base, n).as_millis() as i64;
        if next - d.created_at > cfg.max_age.as_millis() as i64 {
            Outcome::Failed
        } else {
            Outcome::Retry(next)
        }
    };
    let result = match outcome {
        Outcome::Delivered => "delivered",
        Outcome::Retry(_) => "retry",
        Outcome::Failed => "failed",
    };
    metrics::counter!("custody_delivery_attempts_total", "result" => result).increment(1);
    metrics::histogram!("custody_delivery_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    let record = DeliveryAttempt {
        attempt: n,
        at,
        duration_ms: started.elapsed().as_millis() as i64,
        status_code: status,
        error,
    };
    if let Err(e) = store.record_delivery(d.outbox_id, record, outcome).await {
        // Unrecorded, the row stays pending and is sent again after its
        // lease: at least once.
        tracing::warn!(event = %d.event.id, "cannot record a delivery attempt: {e}");
    }
    org_id
}

/// Runs until the task is dropped.
/// Delivers until `stop` says so; then claims nothing more and lets the
/// attempts under way finish (each is bounded by the receiver's timeout),
/// so a stop does not leave a receiver with a notification whose attempt
/// is not recorded.
pub async fn run(
    store: Store,
    cfg: DeliveryConfig,
    secrets: Arc<crate::secrets::SecretBox>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let cfg = Arc::new(cfg);
    let http = match crate::egress::client(cfg.egress) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("notifications are off: cannot build an HTTP client: {e}");
            return;
        }
    };
    let signal = store.outbox_signal();
    // A claim outlives any attempt it covers.
    let lease = (cfg.timeout * 2 + Duration::from_secs(5)).as_millis() as i64;
    let mut in_flight: JoinSet<i64> = JoinSet::new();
    let mut by_org: HashMap<i64, usize> = HashMap::new();
    let done = |by_org: &mut HashMap<i64, usize>, r: Result<i64, tokio::task::JoinError>| {
        if let Ok(org) = r
            && let Some(n) = by_org.get_mut(&org)
        {
            *n -= 1;
            if *n == 0 {
                by_org.remove(&org);
            }
        }
    };
    let mut last_silence_check = Instant::now() - SILENCE_CHECK;
    while !*stop.borrow() {
        while let Some(r) = in_flight.try_join_next() {
            done(&mut by_org, r);
        }
        if last_silence_check.elapsed() >= SILENCE_CHECK {
            last_silence_check = Instant::now();
            if let Err(e) = store.find_silent_reporters(now_ms()).await {
                tracing::warn!("cannot check for silent reporters: {e}");
            }
        }
        let now = now_ms();
        let wait = match store.next_delivery_due().await {
            Ok(Some(due)) if due <= now => {
                let room = cfg.concurrency.saturating_sub(in_flight.len());
                if room == 0 {
                    if let Some(r) = in_flight.join_next().await {
                        done(&mut by_org, r);
                    }
                    continue;
                }
                let per_org = cfg.per_org.max(1);
                let full: Vec<i64> = by_org
                    .iter()
                    .filter(|(_, n)| **n >= per_org)
                    .map(|(o, _)| *o)
                    .collect();
                let room_of =
                    |org: i64| per_org.saturating_sub(by_org.get(&org).copied().unwrap_or(0));
                match store
                    .claim_deliveries(now, lease, room as u32, &room_of, &full)
                    .await
                {
                    Ok(claimed) if !claimed.is_empty() => {
                        for d in claimed {
                            *by_org.entry(d.org_id).or_default() += 1;
                            in_flight.spawn(deliver(
                                store.clone(),
                                http.clone(),
                                cfg.clone(),
                                secrets.clone(),
                                d,
                            ));
                        }
                        continue;
                    }
                    Ok(_) => Duration::from_millis(50),
                    Err(e) => {
                        tracing::warn!("cannot claim deliveries: {e}");
                        Duration::from_secs(1)
                    }
                }
            }
            Ok(Some(due)) => Duration::from_millis((due - now) as u64).min(SILENCE_CHECK),
            Ok(None) => SILENCE_CHECK,
            Err(e) => {
                tracing::warn!("cannot read the outbox: {e}");
                Duration::from_secs(1)
            }
        };
        tokio::select! {
            _ = signal.notified() => {}
            _ = tokio::time::sleep(wait) => {}
            _ = stop.changed() => {}
            Some(r) = in_flight.join_next(), if !in_flight.is_empty() => done(&mut by_org, r),
        }
    }
    if !in_flight.is_empty() {
        tracing::info!(
            attempts = in_flight.len(),
            "stopping: letting notification attempts under way finish"
        );
        let drained = tokio::time::timeout(cfg.timeout + Duration::from_secs(1), async {
            while in_flight.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            // Their rows stay claimed until the lease ends, then go out again.
            tracing::warn!("stopping with notification attempts unfinished");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let base = Duration::from_secs(1);
        for attempt in 1..8u32 {
            let d = backoff(base, attempt);
            let full = base * (1 << (attempt - 1));
            assert!(d >= full / 2 && d <= full, "{attempt}: {d:?}");
        }
        assert!(backoff(base, 40) <= MAX_DELAY);
    }

    /// HMAC-SHA256 written out from RFC 2104, to check the signature
    /// against something that is not the `hmac` crate.
    fn hmac_by_hand(key: &[u8], msg: &[u8]) -> String {
        use sha2::{Digest, Sha256};
        let mut k = [0u8; 64];
        k[..key.len()].copy_from_slice(key);
        let pad = |b: u8| k.iter().map(move |x| x ^ b).collect::<Vec<u8>>();
        let inner = Sha256::new()
            .chain_update(pad(0x36))
            .chain_update(msg)
            .finalize();
        hex::encode(
            Sha256::new()
                .chain_update(pad(0x5c))
                .chain_update(inner)
                .finalize(),
        )
    }

    #[test]
    fn signatures_are_hmac_sha256_of_timestamp_dot_body() {
        // RFC 4231, test case 2: the hand-written HMAC is right.
        assert_eq!(
            hmac_by_hand(b"Jefe", b"what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        let body = br#"{"id":"e1","trigger":"non-compliant"}"#;
        let mut signed = b"1764633600.".to_vec();
        signed.extend_from_slice(body);
        assert_eq!(
            signature("s3cret", "1764633600", body),
            format!("sha256={}", hmac_by_hand(b"s3cret", &signed))
        );
    }
}
