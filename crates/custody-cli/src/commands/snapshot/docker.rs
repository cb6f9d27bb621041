//! `snapshot docker`: the running containers of a Docker Engine (or any
//! daemon speaking its API), each fingerprinted by its image's repo digest.
//! `--watch` follows the engine's event stream, so a container that lives
//! for seconds is still seen start and stop.

use std::collections::HashMap;
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
    events: Option<Events>,
    watch: bool,
}

fn host() -> String {
    std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into())
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
            events: None,
            watch,
        })
    }

    fn unreachable(&self, e: bollard::errors::Error) -> anyhow::Error {
        Environment(format!(
            "cannot reach the Docker daemon at {}: {e}",
            self.host
        ))
        .into()
    }

    fn subscribe(&mut self) {
        let filters: HashMap<String, Vec<String>> = [
            ("type".to_string(), vec!["container".to_string()]),
            (
                "event".to_string(),
                [
                    "start", "die", "stop", "kill", "destroy", "pause", "unpause",
                ]
                .map(String::from)
                .to_vec(),
            ),
        ]
        .into();
        self.events = Some(Box::pin(self.docker.events(Some(EventsOptions {
            filters: Some(filters),
            ..Default::default()
        }))));
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
        // Subscribe before listing: a container that starts in between is
        // then seen by one or the other.
        if self.watch && self.events.is_none() {
            self.subscribe();
        }
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: false,
                ..Default::default()
            }))
            .await
            .map_err(|e| self.unreachable(e))?;
        let mut digests: HashMap<String, Result<Vec<String>, String>> = HashMap::new();
        let mut artifacts = vec![];
        let mut warnings = vec![];
        for c in containers {
            let name = c
                .names
                .as_ref()
                .and_then(|n| n.first())
                .map(|n| n.trim_start_matches('/').to_string())
                .or_else(|| c.id.clone())
                .unwrap_or_default();
            let (Some(image), Some(image_id)) = (c.image.clone(), c.image_id.clone()) else {
                warnings.push(format!("container {name} has no image; skipped"));
                continue;
            };
            if !digests.contains_key(&image_id) {
                let found = match self.docker.inspect_image(&image_id).await {
                    Ok(i) => Ok(i.repo_digests.unwrap_or_default()),
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        ..
                    }) => Err(format!(
                        "the image of container {name} ({image}) was removed; skipped"
                    )),
                    Err(e) => return Err(self.unreachable(e)),
                };
                digests.insert(image_id.clone(), found);
            }
            let repo_digests = match &digests[&image_id] {
                Ok(d) => d,
                Err(w) => {
                    warnings.push(w.clone());
                    continue;
                }
            };
            let fingerprint = match custody_fingerprint::docker::select_repo_digest(
                &image,
                repo_digests,
            ) {
                Ok(f) => f,
                Err(_) => {
                    // An image built locally and never pushed has no
                    // registry identity; Kosli skips it too.
                    warnings.push(format!(
                        "container {name} runs image {image}, which has no repo digest (never pushed or pulled); skipped"
                    ));
                    continue;
                }
            };
            let id = c.id.clone().unwrap_or_default();
            let mut attributes = std::collections::BTreeMap::new();
            attributes.insert("container_id".to_string(), id.chars().take(12).collect());
            attributes.insert("image_id".to_string(), image_id.clone());
            artifacts.push(ObservedArtifact {
                name: image,
                fingerprint: Some(fingerprint),
                instances: vec![Instance {
                    id: name,
                    started_at: c.created.map(|s| s * 1000),
                    attributes,
                }],
            });
        }
        Ok(vec![Observation {
            environment: self.environment.clone(),
            artifacts,
            warnings,
        }])
    }

    async fn changed(&mut self) {
        let Some(events) = self.events.as_mut() else {
            return std::future::pending().await;
        };
        match events.next().await {
            Some(Ok(_)) => {}
            // The stream broke (daemon restart, network): subscribe again
            // after a pause, and look again meanwhile.
            Some(Err(_)) | None => {
                self.events = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}
