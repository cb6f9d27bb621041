//! `snapshot docker`: the running containers of a Docker Engine (or any
//! daemon speaking its API), each fingerprinted by its image's repo digest,
//! or, for an image built here and never pushed, by its image ID.
//!
//! One-shot reports list containers. `--watch` keeps a store of running
//! containers fed by the engine's event stream and reports from it, so a
//! container that lives for a moment is still recorded: a stop is never
//! applied before the start it undoes has been reported. When nothing is
//! waiting to be reported, a look re-lists the engine (reconciliation).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use bollard::query_parameters::{EventsOptions, ListContainersOptions};
use custody_api::{Instance, ObservedArtifact};
use custody_runtime::EnvironmentKind;
use futures::{Stream, StreamExt};

use super::{Observation, Source};
use crate::fail::Environment;

type Events = std::pin::Pin<
    Box<dyn Stream<Item = Result<bollard::models::EventMessage, bollard::errors::Error>> + Send>,
>;

pub struct Docker {
    environment: String,
    docker: bollard::Docker,
    host: String,
    /// Image ID → its repo digests, or why there are none.
    digests: HashMap<String, Result<Vec<String>, String>>,
    watch: Option<WatchState>,
}

struct WatchState {
    events: Option<Events>,
    /// Container ID → what it runs; `None` for an event that named no
    /// container.
    containers: HashMap<String, Option<ObservedArtifact>>,
    warnings: Vec<String>,
    unreported: HashSet<String>,
    held: Option<bollard::models::EventMessage>,
    synced: bool,
}

/// The name recorded for a container whose image the engine does not name.
const NO_IMAGE: &str = "(no image)";

fn host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
}

/// What a container reports: its image as started, fingerprinted by the
/// repo digest.
struct Seen<'a> {
    id: &'a str,
    name: &'a str,
    image: &'a str,
    image_id: &'a str,
    started_s: Option<i64>,
}

impl Docker {
    pub async fn connect(environment: String, watch: bool) -> anyhow::Result<Docker> {
        let host = host();
        let docker = bollard::Docker::connect_with_defaults().map_err(|e| {
            Environment(format!(
                "cannot connect to the Docker daemon at {host}: {e}"
            ))
        })?;
        Ok(Docker {
            environment,
            docker,
            host,
            digests: HashMap::new(),
            watch: watch.then(|| WatchState {
                events: None,
                containers: HashMap::new(),
                warnings: vec![],
                unreported: HashSet::new(),
                held: None,
                synced: false,
            }),
        })
    }

    fn unreachable(&self, e: bollard::errors::Error) -> anyhow::Error {
        Environment(format!(
            "cannot reach the Docker daemon at {}: {e}",
            self.host
        ))
        .into()
    }

    fn events(&self) -> Events {
        let filters: HashMap<String, Vec<String>> = [
            ("type".to_string(), vec!["container".to_string()]),
            (
                "event".to_string(),
                ["start", "die", "destroy"].map(String::from).to_vec(),
            ),
        ]
        .into();
        Box::pin(self.docker.events(Some(EventsOptions {
            filters: Some(filters),
            ..Default::default()
        })))
    }

    /// The artifact a container runs, and a warning when it could not be
    /// identified by a registry digest. Nothing is left out: an image
    /// built here and never pushed is recorded by its image ID
    /// (`digest_source: image-id`), an image removed since by the ID the
    /// container keeps, and a container whose image cannot be named at all
    /// without a fingerprint, which no provenance can match.
    async fn artifact(
        &mut self,
        c: Seen<'_>,
    ) -> anyhow::Result<(ObservedArtifact, Option<String>)> {
        if !self.digests.contains_key(c.image_id) {
            let found = match self.docker.inspect_image(c.image_id).await {
                Ok(i) => Ok(i.repo_digests.unwrap_or_default()),
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 404, ..
                }) => Err("was removed".to_string()),
                Err(e) => return Err(self.unreachable(e)),
            };
            self.digests.insert(c.image_id.to_string(), found);
        }
        let by_digest = match &self.digests[c.image_id] {
            Ok(d) => custody_fingerprint::docker::select_repo_digest(c.image, d)
                .map_err(|_| "has no repo digest (built here, never pushed or pulled)".to_string()),
            Err(why) => Err(why.clone()),
        };
        let mut attributes = BTreeMap::new();
        attributes.insert("container_id".to_string(), c.id.chars().take(12).collect());
        attributes.insert("image_id".to_string(), c.image_id.to_string());
        let (fingerprint, warning) = match by_digest {
            Ok(fp) => (Some(fp), None),
            Err(why) => match custody_fingerprint::docker::image_id_hex(c.image_id) {
                Some(id) => {
                    attributes.insert("digest_source".to_string(), "image-id".to_string());
                    (
                        Some(id),
                        Some(format!(
                            "container {} runs image {}, which {why}: recorded by its local image ID",
                            c.name, c.image
                        )),
                    )
                }
                None => {
                    attributes.insert("digest_source".to_string(), "none".to_string());
                    (
                        None,
                        Some(format!(
                            "container {} runs image {}, which {why} and has no image ID here: recorded without a fingerprint (unknown)",
                            c.name, c.image
                        )),
                    )
                }
            },
        };
        Ok((
            ObservedArtifact {
                name: c.image.to_string(),
                fingerprint,
                instances: vec![Instance {
                    id: c.name.to_string(),
                    started_at: c.started_s.map(|s| s * 1000),
                    attributes,
                }],
            },
            warning,
        ))
    }

    /// Every running container, by ID.
    async fn list(
        &mut self,
    ) -> anyhow::Result<(HashMap<String, Option<ObservedArtifact>>, Vec<String>)> {
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: false,
                ..Default::default()
            }))
            .await
            .map_err(|e| self.unreachable(e))?;
        let mut out = HashMap::new();
        let mut warnings = vec![];
        for c in containers {
            let id = c.id.clone().unwrap_or_default();
            let name = c
                .names
                .as_ref()
                .and_then(|n| n.first())
                .map(|n| n.trim_start_matches('/').to_string())
                .unwrap_or_else(|| id.clone());
            let seen = Seen {
                id: &id,
                name: &name,
                image: c.image.as_deref().unwrap_or(NO_IMAGE),
                image_id: c.image_id.as_deref().unwrap_or(""),
                started_s: c.created,
            };
            let (artifact, warning) = self.artifact(seen).await?;
            warnings.extend(warning);
            out.insert(id, Some(artifact));
        }
        Ok((out, warnings))
    }

    /// A container the event stream says started: looked up, while it
    /// still exists, to learn its image ID.
    async fn started(
        &mut self,
        e: &bollard::models::EventMessage,
    ) -> anyhow::Result<Result<(ObservedArtifact, Option<String>), String>> {
        let Some(actor) = e.actor.as_ref() else {
            return Ok(Err("a container event without a container; ignored".into()));
        };
        let id = actor.id.clone().unwrap_or_default();
        let attrs = actor.attributes.clone().unwrap_or_default();
        let name = attrs.get("name").cloned().unwrap_or_else(|| id.clone());
        let inspected = self.docker.inspect_container(&id, None).await.ok();
        let image = inspected
            .as_ref()
            .and_then(|i| i.config.as_ref())
            .and_then(|c| c.image.clone())
            .or_else(|| attrs.get("image").cloned());
        // Already gone (`--rm` and done): the image reference is all there
        // is, and it names the image that ran unless its tag moved since.
        let image_id = inspected
            .as_ref()
            .and_then(|i| i.image.clone())
            .or_else(|| image.clone());
        let seen = Seen {
            id: &id,
            name: &name,
            image: image.as_deref().unwrap_or(NO_IMAGE),
            image_id: image_id.as_deref().unwrap_or(""),
            started_s: e.time,
        };
        let (artifact, warning) = self.artifact(seen).await?;
        Ok(Ok((artifact, warning)))
    }
}

impl Source for Docker {
    fn kind(&self) -> EnvironmentKind {
        EnvironmentKind::Docker
    }

    fn environments(&self) -> Vec<String> {
        vec![self.environment.clone()]
    }

    async fn observe(&mut self) -> anyhow::Result<Vec<Observation>> {
        let Some(mut w) = self.watch.take() else {
            let (containers, warnings) = self.list().await?;
            return Ok(vec![Observation {
                environment: self.environment.clone(),
                artifacts: containers.into_values().flatten().collect(),
                warnings,
                unobserved: vec![],
            }]);
        };
        // Subscribe before listing: a container that starts in between is
        // then seen by one or the other.
        if w.events.is_none() {
            w.events = Some(self.events());
        }
        if w.unreported.is_empty() {
            match self.list().await {
                Ok((containers, warnings)) => {
                    w.containers = containers;
                    w.warnings.extend(warnings);
                    w.synced = true;
                }
                Err(e) => {
                    self.watch = Some(w);
                    return Err(e);
                }
            }
        }
        let observation = Observation {
            environment: self.environment.clone(),
            artifacts: w.containers.values().flatten().cloned().collect(),
            warnings: std::mem::take(&mut w.warnings),
            unobserved: vec![],
        };
        self.watch = Some(w);
        Ok(vec![observation])
    }

    fn reported(&mut self) {
        if let Some(w) = self.watch.as_mut() {
            w.unreported.clear();
        }
    }

    async fn changed(&mut self) {
        let Some(mut w) = self.watch.take() else {
            return std::future::pending().await;
        };
        if !w.synced {
            self.watch = Some(w);
            return std::future::pending().await;
        }
        if w.events.is_none() {
            // The stream broke: look again soon, which subscribes anew.
            self.watch = Some(w);
            tokio::time::sleep(Duration::from_secs(1)).await;
            return;
        }
        let mut changed = false;
        loop {
            // A stop held back waits until the start it undoes is reported
            // (the loop retries the report on its own schedule).
            let held_undoes = w.held.as_ref().is_some_and(|e| {
                let id = e.actor.as_ref().and_then(|a| a.id.as_deref()).unwrap_or("");
                w.unreported.contains(id)
            });
            if held_undoes {
                self.watch = Some(w);
                if changed {
                    return;
                }
                return std::future::pending().await;
            }
            let next = match w.held.take() {
                Some(e) => Some(Ok(e)),
                None => {
                    let Some(events) = w.events.as_mut() else {
                        break;
                    };
                    if changed {
                        // Take what else is ready; report once it settles.
                        match tokio::time::timeout(Duration::from_millis(100), events.next()).await
                        {
                            Ok(n) => n,
                            Err(_) => break,
                        }
                    } else {
                        events.next().await
                    }
                }
            };
            match next {
                Some(Ok(e)) => {
                    let id = e
                        .actor
                        .as_ref()
                        .and_then(|a| a.id.clone())
                        .unwrap_or_default();
                    match e.action.as_deref() {
                        Some("start") => {
                            // `w` stays taken: looking the container up
                            // needs the client, not the store.
                            match self.started(&e).await {
                                Ok(Ok((a, warning))) => {
                                    changed = true;
                                    w.warnings.extend(warning);
                                    w.unreported.insert(id.clone());
                                    w.containers.insert(id, Some(a));
                                }
                                Ok(Err(warning)) => {
                                    w.warnings.push(warning);
                                    w.containers.insert(id, None);
                                }
                                // The engine went away: look again, which
                                // reports the trouble.
                                Err(_) => break,
                            }
                        }
                        _ => {
                            if w.unreported.contains(&id) {
                                w.held = Some(e);
                                continue;
                            }
                            if let Some(Some(_)) = w.containers.remove(&id) {
                                changed = true;
                            }
                            w.unreported.remove(&id);
                        }
                    }
                }
                // The stream broke (daemon restart, network): subscribe
                // again at the next look, which re-lists.
                Some(Err(_)) | None => {
                    w.events = None;
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    break;
                }
            }
        }
        self.watch = Some(w);
    }
}
