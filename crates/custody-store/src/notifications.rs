//! Notification actions and the transactional outbox.
//!
//! An event is enqueued inside the write that caused it (a snapshot, an
//! evaluation that changed an environment's compliance), so it exists if
//! and only if its cause was committed. A worker (in the server) claims due
//! rows by pushing their `next_attempt_at` forward by a lease, delivers
//! them, and records each attempt; a crash leaves a row pending, and it is
//! sent again once its lease runs out: at least once, never lost.

use std::collections::HashMap;

use custody_api::{
    Action, Delivery, DeliveryAttempt, DeliveryState, Event, EventArtifact, EventCompliance,
    EventProvenance, PutActionRequest, Saved, Target, TargetKind, Trigger,
};
use custody_ledger::EntryKind;
use custody_runtime::{ArtifactKey, Change};
use sqlx::{AnyConnection, Row};

use crate::ledger::LedgerWriter;
use crate::util::{from_json, now_ms, to_json};
use crate::{Principal, Store, StoreError, StoreResult};

/// A claimed delivery, with all the worker needs to send it.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub outbox_id: i64,
    pub org_id: i64,
    pub action: String,
    pub attempts: u32,
    pub created_at: i64,
    pub event: Event,
    pub target: Target,
    pub secret: Option<String>,
}

/// What became of an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Delivered,
    /// Try again at this time (ms).
    Retry(i64),
    /// Give up: retries ran out.
    Failed,
}

const DEFAULT_SILENT_INTERVALS: u32 = 3;

/// Actions on `env_id` that fire on `trigger`.
async fn subscribed(c: &mut AnyConnection, env_id: i64, trigger: Trigger) -> StoreResult<Vec<i64>> {
    let rows = sqlx::query(
        "SELECT a.id FROM actions a JOIN action_environments ae ON ae.action_id = a.id \
         WHERE ae.env_id = $1 AND a.triggers LIKE $2 ORDER BY a.id",
    )
    .bind(env_id)
    .bind(format!("%,{},%", trigger.as_str()))
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(Into::into))
        .collect()
}

/// Whether any action on the environment fires on any of `triggers`:
/// events are only built when someone will receive them.
pub(crate) async fn wanted(
    c: &mut AnyConnection,
    env_id: i64,
    triggers: &[Trigger],
) -> StoreResult<Vec<Trigger>> {
    // One read on every snapshot, whatever the number of triggers asked.
    let rows = sqlx::query(
        "SELECT a.triggers FROM actions a JOIN action_environments ae ON ae.action_id = a.id WHERE ae.env_id = $1",
    )
    .bind(env_id)
    .fetch_all(&mut *c)
    .await?;
    let mut on = Vec::with_capacity(rows.len());
    for r in &rows {
        on.push(r.try_get::<String, _>(0)?);
    }
    Ok(triggers
        .iter()
        .copied()
        .filter(|t| {
            let needle = format!(",{},", t.as_str());
            on.iter().any(|list| list.contains(&needle))
        })
        .collect())
}

/// Writes one outbox row per action on `env_id` that fires on the event's
/// trigger, inside the caller's transaction.
pub(crate) async fn enqueue(
    c: &mut AnyConnection,
    org_id: i64,
    env_id: i64,
    mut event: Event,
) -> StoreResult<usize> {
    let actions = subscribed(c, env_id, event.trigger).await?;
    for action in &actions {
        event.id = uuid::Uuid::now_v7().to_string();
        insert(c, org_id, *action, env_id, &event).await?;
    }
    Ok(actions.len())
}

async fn insert(
    c: &mut AnyConnection,
    org_id: i64,
    action: i64,
    env_id: i64,
    event: &Event,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO outbox (org_id, action_id, event_id, trig, env_id, environment, event, created_at, next_attempt_at, state) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, 'pending')",
    )
    .bind(org_id)
    .bind(action)
    .bind(&event.id)
    .bind(event.trigger.as_str())
    .bind(env_id)
    .bind(&event.environment)
    .bind(to_json(event)?)
    .bind(event.timestamp)
    .execute(&mut *c)
    .await?;
    Ok(())
}

fn plural(n: usize, one: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {one}s")
    }
}

/// Events for a new snapshot: what started (and what of it is unknown) and
/// what stopped.
/// Where and when a snapshot was taken, for its events.
pub(crate) struct SnapshotTaken<'a> {
    pub org_id: i64,
    pub org: &'a str,
    pub env_id: i64,
    pub env: &'a str,
    pub snapshot: i64,
    pub at: i64,
}

pub(crate) async fn snapshot_events(
    c: &mut AnyConnection,
    taken: &SnapshotTaken<'_>,
    changes: &[Change],
) -> StoreResult<()> {
    let SnapshotTaken {
        org_id,
        org,
        env_id,
        env,
        snapshot,
        at,
    } = *taken;
    let wanted = wanted(
        c,
        env_id,
        &[
            Trigger::ArtifactStarted,
            Trigger::ArtifactStopped,
            Trigger::UnknownArtifact,
        ],
    )
    .await?;
    if wanted.is_empty() {
        return Ok(());
    }
    let started: Vec<&Change> = changes
        .iter()
        .filter(|ch| ch.was == 0 && ch.now > 0)
        .collect();
    let stopped: Vec<&Change> = changes.iter().filter(|ch| ch.now == 0).collect();
    let keys: Vec<ArtifactKey> = started.iter().map(|ch| ch.key.clone()).collect();
    let facts = crate::facts::gather(c, org_id, &keys, &Default::default()).await?;
    let artifact = |ch: &Change, provenance: Vec<EventProvenance>| EventArtifact {
        name: ch.key.name.clone(),
        fingerprint: (!ch.key.fingerprint.is_empty()).then(|| ch.key.fingerprint.clone()),
        was: ch.was,
        now: ch.now,
        provenance,
    };
    let started_artifacts: Vec<EventArtifact> = started
        .iter()
        .zip(&facts)
        .map(|(ch, f)| {
            artifact(
                ch,
                f.trails
                    .iter()
                    .map(|t| EventProvenance {
                        flow: t.flow.clone(),
                        trail: t.trail.clone(),
                        compliant: t.trail_compliant,
                    })
                    .collect(),
            )
        })
        .collect();
    let event = |trigger, description: String, artifacts: Vec<EventArtifact>| Event {
        id: String::new(),
        trigger,
        org: org.to_string(),
        environment: env.to_string(),
        snapshot: Some(snapshot.max(0) as u64),
        timestamp: at,
        description,
        artifacts,
        compliance: None,
    };
    if wanted.contains(&Trigger::ArtifactStarted) && !started_artifacts.is_empty() {
        let d = format!(
            "{} started running in {env}",
            plural(started_artifacts.len(), "artifact")
        );
        enqueue(
            c,
            org_id,
            env_id,
            event(Trigger::ArtifactStarted, d, started_artifacts.clone()),
        )
        .await?;
    }
    let unknown: Vec<EventArtifact> = started_artifacts
        .into_iter()
        .filter(|a| a.provenance.is_empty())
        .collect();
    if wanted.contains(&Trigger::UnknownArtifact) && !unknown.is_empty() {
        let d = format!(
            "{} without provenance started running in {env}",
            plural(unknown.len(), "artifact")
        );
        enqueue(
            c,
            org_id,
            env_id,
            event(Trigger::UnknownArtifact, d, unknown),
        )
        .await?;
    }
    if wanted.contains(&Trigger::ArtifactStopped) && !stopped.is_empty() {
        let arts: Vec<EventArtifact> = stopped.iter().map(|ch| artifact(ch, vec![])).collect();
        let d = format!(
            "{} stopped running in {env}",
            plural(arts.len(), "artifact")
        );
        enqueue(c, org_id, env_id, event(Trigger::ArtifactStopped, d, arts)).await?;
    }
    Ok(())
}

/// An event for a compliance change, when the change is one actions fire
/// on: into NON-COMPLIANT, or from NON-COMPLIANT back to COMPLIANT.
pub(crate) async fn compliance_event(
    c: &mut AnyConnection,
    org_id: i64,
    org: &str,
    env_id: i64,
    e: &crate::evaluation::Evaluated,
) -> StoreResult<()> {
    use custody_api::ComplianceStatus::*;
    let trigger = match (e.previous, e.now.status) {
        (Compliant | Unknown, NonCompliant) => Trigger::NonCompliant,
        (NonCompliant, Compliant) => Trigger::CompliantAgain,
        _ => return Ok(()),
    };
    // The counts of the snapshot judged: how many run now, and how many ran
    // before it for those it changed.
    let now: HashMap<ArtifactKey, u32> = crate::runtime::open_intervals(c, env_id)
        .await?
        .into_iter()
        .map(|o| (o.key, o.instances))
        .collect();
    let was: HashMap<ArtifactKey, u32> =
        crate::runtime::changes_at(c, env_id, e.now.snapshot as i64)
            .await?
            .into_iter()
            .map(|(ch, _)| (ch.key, ch.was))
            .collect();
    let mut artifacts = Vec::new();
    let mut reasons = Vec::new();
    for p in &e.now.policies {
        for a in p.artifacts.iter().filter(|a| !a.compliant) {
            for r in a.reasons() {
                reasons.push(format!("{} ({}): {r}", a.name, p.policy));
            }
            if !artifacts.iter().any(|x: &EventArtifact| {
                x.name == a.name && x.fingerprint.as_deref() == Some(a.fingerprint.as_str())
            }) {
                let key = ArtifactKey {
                    name: a.name.clone(),
                    fingerprint: a.fingerprint.clone(),
                };
                let n = now.get(&key).copied().unwrap_or(0);
                artifacts.push(EventArtifact {
                    name: a.name.clone(),
                    fingerprint: (!a.fingerprint.is_empty()).then(|| a.fingerprint.clone()),
                    was: was.get(&key).copied().unwrap_or(n),
                    now: n,
                    provenance: vec![],
                });
            }
        }
    }
    let env = &e.now.environment;
    let description = match trigger {
        Trigger::NonCompliant => format!(
            "{env} became non-compliant: {} failing ({})",
            plural(artifacts.len(), "artifact"),
            e.now.cause
        ),
        _ => format!("{env} is compliant again ({})", e.now.cause),
    };
    enqueue(
        c,
        org_id,
        env_id,
        Event {
            id: String::new(),
            trigger,
            org: org.to_string(),
            environment: env.clone(),
            snapshot: Some(e.now.snapshot),
            timestamp: e.now.evaluated_at,
            description,
            artifacts,
            compliance: Some(EventCompliance {
                status: e.now.status,
                reasons,
            }),
        },
    )
    .await?;
    Ok(())
}

fn action_from(doc: &str) -> StoreResult<Action> {
    from_json("action", doc)
}

impl Store {
    /// Creates or replaces an action.
    pub async fn put_action(
        &self,
        p: &Principal,
        name: &str,
        req: PutActionRequest,
    ) -> StoreResult<Saved<Action>> {
        crate::policies::check_name("action name", name)?;
        if req.environments.is_empty() {
            return Err(StoreError::Unprocessable(
                "an action needs at least one environment".into(),
            ));
        }
        if req.triggers.is_empty() {
            return Err(StoreError::Unprocessable(format!(
                "an action needs at least one trigger: {}",
                Trigger::ALL.map(|t| t.as_str()).join(", ")
            )));
        }
        let url = url_ok(&req.target.url)?;
        if req.target.kind == TargetKind::Slack && req.secret.is_some() {
            return Err(StoreError::Unprocessable(
                "a Slack target is not signed: --secret goes with --webhook".into(),
            ));
        }
        let (org_id, org, name) = (p.org_id, p.org.clone(), name.to_string());
        let actor = p.actor();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let mut ledger = LedgerWriter::lock(c, org_id, &org, &actor).await?;
                    let mut env_ids = Vec::new();
                    for e in &req.environments {
                        let row = crate::policies::physical_env(c, org_id, e, "name")
                            .await
                            .map_err(|err| match err {
                                StoreError::NotFound { .. } => {
                                    StoreError::Unprocessable(format!("environment '{e}' does not exist"))
                                }
                                other => other,
                            })?;
                        env_ids.push(row.id);
                    }
                    let mut triggers = req.triggers.clone();
                    triggers.sort();
                    triggers.dedup();
                    let mut envs = req.environments.clone();
                    envs.sort();
                    envs.dedup();
                    let now = now_ms();
                    let existing = sqlx::query("SELECT id, created_at FROM actions WHERE org_id = $1 AND name = $2")
                        .bind(org_id)
                        .bind(&name)
                        .fetch_optional(&mut *c)
                        .await?;
                    let created_at = match &existing {
                        Some(r) => r.try_get(1)?,
                        None => now,
                    };
                    let action = Action {
                        name: name.clone(),
                        environments: envs,
                        triggers: triggers.clone(),
                        target: Target { kind: req.target.kind, url: url.clone() },
                        signed: req.secret.is_some(),
                        silent_intervals: req.silent_intervals.unwrap_or(DEFAULT_SILENT_INTERVALS).max(1),
                        created_at,
                        updated_at: now,
                    };
                    let silent = i64::from(action.silent_intervals);
                    let trig = format!(",{},", triggers.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(","));
                    let id: i64 = match existing {
                        Some(r) => {
                            let id: i64 = r.try_get(0)?;
                            sqlx::query("UPDATE actions SET doc = $2, triggers = $3, secret = $4, updated_at = $5, silent_intervals = $6 WHERE id = $1")
                                .bind(id)
                                .bind(to_json(&action)?)
                                .bind(&trig)
                                .bind(req.secret.clone())
                                .bind(now)
                                .bind(silent)
                                .execute(&mut *c)
                                .await?;
                            sqlx::query("DELETE FROM action_environments WHERE action_id = $1")
                                .bind(id)
                                .execute(&mut *c)
                                .await?;
                            id
                        }
                        None => sqlx::query(
                            "INSERT INTO actions (org_id, name, doc, triggers, secret, created_at, updated_at, silent_intervals) \
                             VALUES ($1, $2, $3, $4, $5, $6, $6, $7) RETURNING id",
                        )
                        .bind(org_id)
                        .bind(&name)
                        .bind(to_json(&action)?)
                        .bind(&trig)
                        .bind(req.secret.clone())
                        .bind(now)
                        .bind(silent)
                        .fetch_one(&mut *c)
                        .await?
                        .try_get(0)?,
                    };
                    env_ids.sort_unstable();
                    env_ids.dedup();
                    for env in env_ids {
                        sqlx::query("INSERT INTO action_environments (action_id, env_id) VALUES ($1, $2)")
                            .bind(id)
                            .bind(env)
                            .execute(&mut *c)
                            .await?;
                    }
                    // The secret stays out of the ledger; that one was set does not.
                    ledger.append(c, EntryKind::Action, &action).await?;
                    Ok(Saved { created: created_at == now, value: action })
                })
            })
            .await
    }

    pub async fn list_actions(&self, org_id: i64) -> StoreResult<Vec<Action>> {
        let mut c = self.db.read.acquire().await?;
        let rows = sqlx::query("SELECT doc FROM actions WHERE org_id = $1 ORDER BY name")
            .bind(org_id)
            .fetch_all(&mut *c)
            .await?;
        rows.iter()
            .map(|r| action_from(&r.try_get::<String, _>(0)?))
            .collect()
    }

    /// The newest deliveries first, each with its attempts.
    pub async fn list_deliveries(
        &self,
        org_id: i64,
        action: Option<&str>,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let mut c = self.db.read.acquire().await?;
        let filter = if action.is_some() {
            " AND a.name = $3"
        } else {
            ""
        };
        let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT o.id, o.event_id, a.name, o.trig, o.environment, o.state, o.created_at, o.next_attempt_at, o.delivered_at \
             FROM outbox o JOIN actions a ON a.id = o.action_id WHERE o.org_id = $1{filter} ORDER BY o.id DESC LIMIT $2"
        )))
        .bind(org_id)
        .bind(i64::from(limit.clamp(1, 1000)));
        if let Some(a) = action {
            q = q.bind(a);
        }
        let rows = q.fetch_all(&mut *c).await?;
        // Every listed delivery's attempts in one read.
        let ids: Vec<i64> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?;
        let mut attempts: HashMap<i64, Vec<DeliveryAttempt>> = HashMap::new();
        if !ids.is_empty() {
            let mut b = crate::util::Binds::new(&c);
            let list: Vec<String> = ids.iter().map(|_| b.next()).collect();
            let mut q = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT outbox_id, attempt, at, duration_ms, status_code, error FROM delivery_attempts \
                 WHERE outbox_id IN ({}) ORDER BY outbox_id, attempt",
                list.join(",")
            )));
            for id in &ids {
                q = q.bind(*id);
            }
            for a in q.fetch_all(&mut *c).await? {
                attempts
                    .entry(a.try_get(0)?)
                    .or_default()
                    .push(DeliveryAttempt {
                        attempt: a.try_get::<i64, _>(1)?.max(0) as u32,
                        at: a.try_get(2)?,
                        duration_ms: a.try_get(3)?,
                        status_code: a
                            .try_get::<Option<i64>, _>(4)?
                            .and_then(|s| u16::try_from(s).ok()),
                        error: a.try_get(5)?,
                    });
            }
        }
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            let trig: String = r.try_get(3)?;
            let state: String = r.try_get(5)?;
            let state = DeliveryState::parse(&state)
                .ok_or_else(|| StoreError::Corrupt(format!("delivery state '{state}'")))?;
            out.push(Delivery {
                event_id: r.try_get(1)?,
                action: r.try_get(2)?,
                trigger: Trigger::parse(&trig)
                    .ok_or_else(|| StoreError::Corrupt(format!("trigger '{trig}'")))?,
                environment: r.try_get(4)?,
                next_attempt_at: (state == DeliveryState::Pending)
                    .then(|| r.try_get(7))
                    .transpose()?,
                state,
                created_at: r.try_get(6)?,
                delivered_at: r.try_get(8)?,
                attempts: attempts.remove(&id).unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// When the earliest pending delivery is due, if any: a read, so an
    /// idle worker costs no writes.
    pub async fn next_delivery_due(&self) -> StoreResult<Option<i64>> {
        let mut c = self.db.read.acquire().await?;
        let r = sqlx::query("SELECT MIN(next_attempt_at) FROM outbox WHERE state = 'pending'")
            .fetch_one(&mut *c)
            .await?;
        Ok(r.try_get(0)?)
    }

    /// Claims up to `limit` due deliveries for `lease_ms`: until then no
    /// other worker takes them; after it, an unrecorded one is due again.
    pub async fn claim_deliveries(
        &self,
        now: i64,
        lease_ms: i64,
        limit: u32,
        room: &(dyn Fn(i64) -> usize + Sync),
        full: &[i64],
    ) -> StoreResult<Vec<DueDelivery>> {
        // Organisations with no room are left out of the read; among the
        // rest, at most `room(org)` rows each are claimed, so one
        // organisation's backlog (dead endpoints, each attempt waiting out
        // its timeout) cannot take every slot.
        let exclude = if full.is_empty() {
            String::new()
        } else {
            format!(
                " AND o.org_id NOT IN ({})",
                full.iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let rooms: std::collections::HashMap<i64, usize> = {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT DISTINCT o.org_id FROM outbox o WHERE o.state = 'pending' AND o.next_attempt_at <= $1{exclude}"
            )))
            .bind(now)
            .fetch_all(&self.db.read)
            .await?;
            rows.iter()
                .map(|r| r.try_get::<i64, _>(0).map(|id| (id, room(id))))
                .collect::<Result<_, _>>()?
        };
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT o.id, o.next_attempt_at, o.attempts, o.created_at, o.event, a.name, a.doc, a.secret, o.org_id \
                         FROM outbox o JOIN actions a ON a.id = o.action_id \
                         WHERE o.state = 'pending' AND o.next_attempt_at <= $1{exclude} ORDER BY o.next_attempt_at, o.id LIMIT $2"
                    )))
                    .bind(now)
                    .bind(i64::from(limit) * 4)
                    .fetch_all(&mut *c)
                    .await?;
                    let mut rooms = rooms;
                    let mut out = Vec::with_capacity(rows.len());
                    for r in &rows {
                        if out.len() >= limit as usize {
                            break;
                        }
                        let org_id: i64 = r.try_get(8)?;
                        match rooms.get_mut(&org_id) {
                            Some(n) if *n > 0 => *n -= 1,
                            _ => continue,
                        }
                        let id: i64 = r.try_get(0)?;
                        let due: i64 = r.try_get(1)?;
                        // Another replica may have claimed it since the read.
                        let claimed = sqlx::query("UPDATE outbox SET next_attempt_at = $3 WHERE id = $1 AND next_attempt_at = $2 AND state = 'pending'")
                            .bind(id)
                            .bind(due)
                            .bind(now + lease_ms)
                            .execute(&mut *c)
                            .await?;
                        if claimed.rows_affected() != 1 {
                            continue;
                        }
                        let action = action_from(&r.try_get::<String, _>(6)?)?;
                        out.push(DueDelivery {
                            outbox_id: id,
                            org_id,
                            attempts: r.try_get::<i64, _>(2)?.max(0) as u32,
                            created_at: r.try_get(3)?,
                            event: from_json("outbox event", &r.try_get::<String, _>(4)?)?,
                            action: r.try_get(5)?,
                            target: action.target,
                            secret: r.try_get(7)?,
                        });
                    }
                    Ok(out)
                })
            })
            .await
    }

    /// Records an attempt and what follows from it.
    pub async fn record_delivery(
        &self,
        outbox_id: i64,
        attempt: DeliveryAttempt,
        outcome: Outcome,
    ) -> StoreResult<()> {
        self.db
            .write(move |c| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO delivery_attempts (outbox_id, attempt, at, duration_ms, status_code, error) VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(outbox_id)
                    .bind(i64::from(attempt.attempt))
                    .bind(attempt.at)
                    .bind(attempt.duration_ms)
                    .bind(attempt.status_code.map(i64::from))
                    .bind(attempt.error.clone())
                    .execute(&mut *c)
                    .await?;
                    let (state, next, delivered) = match outcome {
                        Outcome::Delivered => ("delivered", attempt.at, Some(attempt.at + attempt.duration_ms)),
                        Outcome::Retry(at) => ("pending", at, None),
                        Outcome::Failed => ("failed", attempt.at, None),
                    };
                    sqlx::query(
                        "UPDATE outbox SET attempts = $2, state = $3, next_attempt_at = $4, delivered_at = $5, last_status = $6, last_error = $7 WHERE id = $1",
                    )
                    .bind(outbox_id)
                    .bind(i64::from(attempt.attempt))
                    .bind(state)
                    .bind(next)
                    .bind(delivered)
                    .bind(attempt.status_code.map(i64::from))
                    .bind(attempt.error)
                    .execute(&mut *c)
                    .await?;
                    Ok(())
                })
            })
            .await
    }

    /// Finds reporters that missed their action's number of intervals and
    /// enqueues one `reporter-silent` event per action and silence: an
    /// action is told once, until a report comes and the reporter falls
    /// silent again. Returns how many events were enqueued.
    pub async fn find_silent_reporters(&self, now: i64) -> StoreResult<usize> {
        // A read first, so that an idle server writes nothing.
        const SILENT: &str = "FROM environments e \
             JOIN action_environments ae ON ae.env_id = e.id JOIN actions a ON a.id = ae.action_id \
             JOIN orgs o ON o.id = e.org_id \
             WHERE a.triggers LIKE '%,reporter-silent,%' AND e.archived_at IS NULL \
             AND e.observed_interval_ms > 0 AND e.observed_to IS NOT NULL \
             AND e.observed_to + e.observed_interval_ms * a.silent_intervals < $1 \
             AND NOT EXISTS (SELECT 1 FROM outbox x WHERE x.action_id = a.id AND x.env_id = e.id \
                 AND x.trig = 'reporter-silent' AND x.created_at > e.observed_to)";
        let found = {
            let mut c = self.db.read.acquire().await?;
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) {SILENT}")))
                .bind(now)
                .fetch_one(&mut *c)
                .await?
                .try_get::<i64, _>(0)?
        };
        if found == 0 {
            return Ok(0);
        }
        let n = self
            .db
            .write(move |c| {
                Box::pin(async move {
                    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "SELECT e.org_id, o.name, e.id, e.name, e.observed_to, e.observed_interval_ms, e.latest_index, a.id {SILENT}"
                    )))
                    .bind(now)
                    .fetch_all(&mut *c)
                    .await?;
                    for r in &rows {
                        let (org_id, org, env_id, name): (i64, String, i64, String) =
                            (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?);
                        let (last, interval, latest, action): (i64, i64, i64, i64) =
                            (r.try_get(4)?, r.try_get(5)?, r.try_get(6)?, r.try_get(7)?);
                        let quiet = (now - last) / 1000;
                        let event = Event {
                            id: uuid::Uuid::now_v7().to_string(),
                            trigger: Trigger::ReporterSilent,
                            org,
                            environment: name.clone(),
                            snapshot: (latest > 0).then_some(latest as u64),
                            timestamp: now,
                            description: format!(
                                "no report from {name} for {quiet} s (it reports every {} s)",
                                interval / 1000
                            ),
                            artifacts: vec![],
                            compliance: None,
                        };
                        insert(c, org_id, action, env_id, &event).await?;
                    }
                    Ok(rows.len())
                })
            })
            .await?;
        // The commit has woken the delivery worker already.
        Ok(n)
    }

    /// Woken after a write that may have enqueued deliveries.
    pub fn outbox_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.outbox.clone()
    }
}

fn url_ok(u: &str) -> StoreResult<String> {
    let ok = (u.starts_with("https://") || u.starts_with("http://")) && u.len() > "http://".len();
    if !ok {
        return Err(StoreError::Unprocessable(format!(
            "target URL '{u}' is not an http(s) URL"
        )));
    }
    Ok(u.to_string())
}
