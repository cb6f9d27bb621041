//! `snapshot k8s`: the pods of a Kubernetes cluster, one environment per
//! namespace filter (`--namespaces...`, or Kosli's multi-environment
//! `--environments-file`). Every container of a running pod (init and
//! ephemeral ones too) is an artifact fingerprinted by its `imageID`.
//!
//! One-shot reports list pods. `--watch` keeps a store of pods fed by a
//! Kubernetes watch (resourceVersion, bookmarks, relists after a lost
//! watch) and reports from it, so a pod that starts and dies between two
//! polls is still recorded: a change is never folded into a later one
//! that would undo it before it was reported.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use anyhow::Context;
use custody_api::{Instance, ObservedArtifact};
use custody_runtime::config_files::parse_k8s_environments;
use custody_runtime::{EnvironmentKind, FilterLabels, NameFilter, Unobserved};
use futures::{Stream, StreamExt};
use k8s_openapi::api::core::v1::{ContainerStatus, Namespace, Pod};
use kube::api::{Api, ListParams};
use kube::runtime::watcher;

use super::{Observation, Source};
use crate::cli::K8sArgs;
use crate::fail::Environment;

const FLAG_LABELS: FilterLabels = FilterLabels {
    include: "--namespaces",
    include_regex: "--namespaces-regex",
    exclude: "--exclude-namespaces",
    exclude_regex: "--exclude-namespaces-regex",
};

struct Env {
    name: String,
    namespaces: NameFilter,
}

type Events =
    std::pin::Pin<Box<dyn Stream<Item = Result<watcher::Event<Pod>, watcher::Error>> + Send>>;

pub struct K8s {
    client: kube::Client,
    endpoint: String,
    envs: Vec<Env>,
    watch: Option<WatchState>,
}

/// What `--watch` keeps: every pod the watch has shown, by UID.
/// How long a failing watch must stay quiet to count as resumed.
const RECOVERED_AFTER: std::time::Duration = std::time::Duration::from_secs(3);

struct WatchState {
    events: Events,
    pods: HashMap<String, Pod>,
    /// Pods listed since the watch (re)started, until the list is complete.
    relist: Option<HashMap<String, Pod>>,
    /// Pods whose current running state has not been reported yet.
    unreported: HashSet<String>,
    /// An event held back because it would undo an unreported change.
    held: Option<watcher::Event<Pod>>,
    synced: bool,
    /// Why the watch is failing, while it is: what the reporter holds may
    /// be stale, so its reports say the pods were not observed.
    failing: Option<String>,
}

/// Checks the namespace flags or the environments file before anything
/// connects.
fn environments(a: &K8sArgs) -> anyhow::Result<Vec<Env>> {
    if let Some(file) = &a.environments_file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read environments file {}", file.display()))?;
        let envs = parse_k8s_environments(&file.display().to_string(), &text)?;
        return Ok(envs
            .into_iter()
            .map(|e| Env {
                name: e.name,
                namespaces: e.namespaces,
            })
            .collect());
    }
    let Some(name) = a.environment.clone() else {
        anyhow::bail!("name the environment, or give --environments-file");
    };
    let namespaces = NameFilter::new(
        FLAG_LABELS,
        a.namespaces.clone(),
        a.namespaces_regex.clone(),
        a.exclude_namespaces.clone(),
        a.exclude_namespaces_regex.clone(),
    )?;
    Ok(vec![Env { name, namespaces }])
}

async fn client(kubeconfig: Option<&Path>) -> anyhow::Result<(kube::Client, String)> {
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("invalid kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .with_context(|| format!("invalid kubeconfig {}", path.display()))?
        }
        None => kube::Config::infer().await.map_err(|e| {
            Environment(format!(
                "no Kubernetes cluster: no --kubeconfig, no $KUBECONFIG or ~/.kube/config, and not in a cluster ({e})"
            ))
        })?,
    };
    let endpoint = config.cluster_url.to_string();
    let client = kube::Client::try_from(config).map_err(|e| {
        Environment(format!(
            "cannot connect to the Kubernetes API at {endpoint}: {e}"
        ))
    })?;
    Ok((client, endpoint))
}

impl K8s {
    pub async fn connect(a: &K8sArgs) -> anyhow::Result<K8s> {
        let envs = environments(a)?;
        let (client, endpoint) = client(a.kubeconfig.as_deref()).await?;
        let watch = a.reporter.watch.then(|| {
            // Only exact namespaces: watch just those, as a Role allows;
            // otherwise the whole cluster, filtered here.
            let exact: Option<Vec<String>> = envs
                .iter()
                .map(|e| e.namespaces.exact_names_only().map(<[String]>::to_vec))
                .collect::<Option<Vec<_>>>()
                .map(|v| v.concat());
            let config = watcher::Config::default();
            let events: Events = match exact {
                Some(namespaces) => {
                    let streams = namespaces.into_iter().map(|ns| {
                        watcher(Api::<Pod>::namespaced(client.clone(), &ns), config.clone()).boxed()
                    });
                    futures::stream::select_all(streams).boxed()
                }
                None => watcher(Api::<Pod>::all(client.clone()), config).boxed(),
            };
            WatchState {
                events,
                pods: HashMap::new(),
                relist: None,
                unreported: HashSet::new(),
                held: None,
                synced: false,
                failing: None,
            }
        });
        Ok(K8s {
            client,
            endpoint,
            envs,
            watch,
        })
    }

    fn unreachable(&self, what: &str, e: kube::Error) -> anyhow::Error {
        match e {
            kube::Error::Api(status) if status.code == 403 || status.code == 401 => {
                Environment(format!(
                    "the Kubernetes API at {} refused to {what}: {}",
                    self.endpoint, status.message
                ))
                .into()
            }
            other => Environment(format!(
                "cannot {what} from the Kubernetes API at {}: {other}",
                self.endpoint
            ))
            .into(),
        }
    }

    /// Lists the pods one environment covers. A namespace whose pods cannot
    /// be listed is not observed: the report says so, and is partial.
    async fn list(
        &self,
        env: &Env,
        warnings: &mut Vec<String>,
        unobserved: &mut Vec<Unobserved>,
    ) -> anyhow::Result<Vec<Pod>> {
        let lp = ListParams::default();
        if env.namespaces.is_everything() {
            let pods = Api::<Pod>::all(self.client.clone())
                .list(&lp)
                .await
                .map_err(|e| self.unreachable("list pods", e))?;
            return Ok(pods.items);
        }
        let namespaces: Vec<String> = match env.namespaces.exact_names_only() {
            Some(names) => names.to_vec(),
            None => Api::<Namespace>::all(self.client.clone())
                .list(&lp)
                .await
                .map_err(|e| self.unreachable("list namespaces", e))?
                .items
                .into_iter()
                .filter_map(|n| n.metadata.name)
                .filter(|n| env.namespaces.matches(n))
                .collect(),
        };
        let lists = futures::stream::iter(namespaces.into_iter().map(|ns| {
            let api = Api::<Pod>::namespaced(self.client.clone(), &ns);
            async move { (ns, api.list(&ListParams::default()).await) }
        }))
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
        let mut pods = vec![];
        for (ns, r) in lists {
            match r {
                Ok(l) => pods.extend(l.items),
                Err(kube::Error::Api(s)) if s.code == 404 => {
                    warnings.push(format!("namespace {ns} does not exist"));
                }
                Err(kube::Error::Api(s)) => {
                    unobserved.push(Unobserved {
                        scope: format!("namespace {ns}"),
                        reason: format!("cannot list pods: {}", s.message),
                    });
                }
                Err(e) => return Err(self.unreachable(&format!("list pods in {ns}"), e)),
            }
        }
        Ok(pods)
    }
}

fn uid(p: &Pod) -> String {
    p.metadata.uid.clone().unwrap_or_else(|| {
        format!(
            "{}/{}",
            p.metadata.namespace.as_deref().unwrap_or(""),
            p.metadata.name.as_deref().unwrap_or("")
        )
    })
}

/// Kosli counts pods in phase Running or Failed: a failed pod did run.
fn counts(p: &Pod) -> bool {
    matches!(
        p.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Running" | "Failed")
    )
}

/// The artifacts a pod runs: one per container, by image ID.
pub fn pod_artifacts(p: &Pod, warnings: &mut Vec<String>) -> Vec<ObservedArtifact> {
    if !counts(p) {
        return vec![];
    }
    let name = p.metadata.name.clone().unwrap_or_default();
    let namespace = p.metadata.namespace.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let phase = status.phase.clone().unwrap_or_default();
    let started = p
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|t| t.0.as_millisecond());
    let owner = p
        .metadata
        .owner_references
        .as_ref()
        .and_then(|o| o.iter().find(|r| r.controller == Some(true)).or(o.first()))
        .map(|r| format!("{}/{}", r.kind, r.name));
    let node = p.spec.as_ref().and_then(|s| s.node_name.clone());
    let all: Vec<(&str, &ContainerStatus)> = [
        ("init", &status.init_container_statuses),
        ("app", &status.container_statuses),
        ("ephemeral", &status.ephemeral_container_statuses),
    ]
    .into_iter()
    .flat_map(|(role, list)| list.iter().flatten().map(move |c| (role, c)))
    .collect();
    let mut out = vec![];
    for (role, c) in all {
        // The digest is the last 64 hex of the image ID, whatever the
        // runtime's prefix (docker-pullable://, docker.io/...@sha256:).
        let id = c.image_id.trim();
        let hex = id.rsplit(':').next().unwrap_or("");
        let valid = hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit());
        let mut attributes = BTreeMap::new();
        if !valid {
            // In a running pod, a container the runtime gives no image ID
            // may still run: it is recorded, without a fingerprint, so no
            // provenance can vouch for it (UNKNOWN). A pod that ended is
            // history: such a container never started.
            if phase != "Running" {
                warnings.push(format!(
                    "pod {namespace}/{name}: container {} never started (no image ID; image {})",
                    c.name, c.image
                ));
                continue;
            }
            warnings.push(format!(
                "pod {namespace}/{name}: container {} has no image ID (image {}): recorded without a fingerprint (unknown)",
                c.name, c.image
            ));
            attributes.insert("digest_source".to_string(), "none".to_string());
        }
        attributes.insert("namespace".to_string(), namespace.clone());
        attributes.insert("container".to_string(), c.name.clone());
        if role != "app" {
            attributes.insert("container_role".to_string(), role.to_string());
        }
        if phase != "Running" {
            attributes.insert("phase".to_string(), phase.clone());
        }
        if let Some(o) = &owner {
            attributes.insert("owner".to_string(), o.clone());
        }
        if let Some(n) = &node {
            attributes.insert("node".to_string(), n.clone());
        }
        out.push(ObservedArtifact {
            name: c.image.clone(),
            fingerprint: valid.then(|| hex.to_ascii_lowercase()),
            instances: vec![Instance {
                id: name.clone(),
                started_at: started,
                attributes,
            }],
        });
    }
    out
}

/// What one environment's namespaces run, of these pods.
fn observation<'a>(
    env: &Env,
    pods: impl Iterator<Item = &'a Pod>,
    mut warnings: Vec<String>,
    unobserved: Vec<Unobserved>,
) -> Observation {
    let mut artifacts = vec![];
    for p in pods {
        let ns = p.metadata.namespace.as_deref().unwrap_or("");
        if env.namespaces.matches(ns) {
            artifacts.extend(pod_artifacts(p, &mut warnings));
        }
    }
    Observation {
        environment: env.name.clone(),
        artifacts,
        warnings,
        unobserved,
    }
}

/// What a pod contributes to the running set, to tell whether an event
/// changes it.
fn signature(p: &Pod) -> Vec<(String, String)> {
    let mut sink = vec![];
    let mut s: Vec<(String, String)> = pod_artifacts(p, &mut sink)
        .into_iter()
        .map(|a| (a.name, a.fingerprint.unwrap_or_default()))
        .collect();
    s.sort();
    s
}

impl Source for K8s {
    fn kind(&self) -> EnvironmentKind {
        EnvironmentKind::K8s
    }

    fn environments(&self) -> Vec<String> {
        self.envs.iter().map(|e| e.name.clone()).collect()
    }

    async fn observe(&mut self) -> anyhow::Result<Vec<Observation>> {
        if let Some(w) = self.watch.as_mut() {
            // Until the watch has listed everything once, wait for it.
            while !w.synced {
                match w.events.next().await {
                    Some(Ok(e)) => {
                        apply(w, e);
                    }
                    Some(Err(e)) => {
                        return Err(Environment(format!(
                            "cannot watch pods at the Kubernetes API at {}: {e}",
                            self.endpoint
                        ))
                        .into());
                    }
                    None => anyhow::bail!("the pod watch ended"),
                }
            }
            let unobserved = || {
                w.failing
                    .iter()
                    .map(|why| Unobserved {
                        scope: "pods (the watch)".into(),
                        reason: format!("the pod watch is failing: {why}"),
                    })
                    .collect::<Vec<_>>()
            };
            return Ok(self
                .envs
                .iter()
                .map(|env| observation(env, w.pods.values(), vec![], unobserved()))
                .collect());
        }
        let mut out = vec![];
        for env in &self.envs {
            let (mut warnings, mut unobserved) = (vec![], vec![]);
            let pods = self.list(env, &mut warnings, &mut unobserved).await?;
            out.push(observation(env, pods.iter(), warnings, unobserved));
        }
        Ok(out)
    }

    fn reported(&mut self) {
        if let Some(w) = self.watch.as_mut() {
            w.unreported.clear();
        }
    }

    async fn changed(&mut self) {
        let Some(w) = self.watch.as_mut() else {
            return std::future::pending().await;
        };
        let mut changed = false;
        loop {
            // An event held back waits until what it would undo is
            // reported (the loop retries the report on its own schedule).
            if w.held.as_ref().is_some_and(|e| undoes_unreported(w, e)) {
                if changed {
                    return;
                }
                return std::future::pending().await;
            }
            let next = match w.held.take() {
                Some(e) => Some(Ok(e)),
                None if changed => {
                    // Take what else is ready; report once things settle.
                    match tokio::time::timeout(
                        std::time::Duration::from_millis(100),
                        w.events.next(),
                    )
                    .await
                    {
                        Ok(n) => n,
                        Err(_) => return,
                    }
                }
                // While the watch fails, its errors come about a second
                // apart (it retries at once, and we pause after each); a
                // watch that resumed is silent until something changes, so
                // a quiet spell is how recovery shows.
                None if w.failing.is_some() => {
                    match tokio::time::timeout(RECOVERED_AFTER, w.events.next()).await {
                        Ok(n) => n,
                        Err(_) => {
                            w.failing = None;
                            return;
                        }
                    }
                }
                None => w.events.next().await,
            };
            match next {
                Some(Ok(e)) => {
                    // Back: what it holds is current again, and the next
                    // report says so.
                    changed |= w.failing.take().is_some();
                    if undoes_unreported(w, &e) {
                        w.held = Some(e);
                        continue;
                    }
                    changed |= apply(w, e);
                }
                // The watcher retries by itself. The first error is
                // reported at once (what runs is no longer observed); the
                // rest wait for it to recover.
                Some(Err(e)) => {
                    let first = w.failing.is_none();
                    w.failing = Some(e.to_string());
                    if first || changed {
                        return;
                    }
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
                None => return std::future::pending().await,
            }
        }
    }
}

/// Whether applying `e` would take away a change not yet reported.
fn undoes_unreported(w: &WatchState, e: &watcher::Event<Pod>) -> bool {
    match e {
        watcher::Event::Apply(p) | watcher::Event::Delete(p) => w.unreported.contains(&uid(p)),
        watcher::Event::InitDone => !w.unreported.is_empty(),
        _ => false,
    }
}

/// Applies one watch event to the store; says whether what runs changed.
fn apply(w: &mut WatchState, e: watcher::Event<Pod>) -> bool {
    match e {
        watcher::Event::Apply(p) => {
            let id = uid(&p);
            let before = w.pods.get(&id).map(signature).unwrap_or_default();
            let after = signature(&p);
            w.pods.insert(id.clone(), p);
            if before != after {
                w.unreported.insert(id);
                true
            } else {
                false
            }
        }
        watcher::Event::Delete(p) => {
            let id = uid(&p);
            let before = w
                .pods
                .remove(&id)
                .map(|p| signature(&p))
                .unwrap_or_default();
            w.unreported.remove(&id);
            !before.is_empty()
        }
        watcher::Event::Init => {
            w.relist = Some(HashMap::new());
            false
        }
        watcher::Event::InitApply(p) => {
            let id = uid(&p);
            w.relist.get_or_insert_with(HashMap::new).insert(id, p);
            false
        }
        watcher::Event::InitDone => {
            // A relist replaces the store: pods deleted while the watch was
            // down are gone.
            let fresh = w.relist.take().unwrap_or_default();
            // What the relist shows that was not reported before.
            let news: Vec<String> = fresh
                .iter()
                .filter(|(id, p)| {
                    let sig = signature(p);
                    !sig.is_empty() && w.pods.get(*id).map(signature) != Some(sig)
                })
                .map(|(id, _)| id.clone())
                .collect();
            let gone = w
                .pods
                .iter()
                .any(|(id, p)| !fresh.contains_key(id) && !signature(p).is_empty());
            let changed = !news.is_empty() || gone || !w.synced;
            w.pods = fresh;
            w.unreported.extend(news);
            w.synced = true;
            changed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(json: serde_json::Value) -> Pod {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn containers_are_fingerprinted_by_image_id() {
        let p = pod(serde_json::json!({
            "metadata": {"name": "web-7d9f", "namespace": "prod", "uid": "u1",
                "creationTimestamp": "2026-03-01T03:12:00Z",
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d", "uid": "r1", "controller": true}]},
            "spec": {"nodeName": "node-1", "containers": [{"name": "web", "image": "nginx:1.25"}]},
            "status": {"phase": "Running",
                "initContainerStatuses": [{"name": "init", "image": "busybox:1", "imageID": format!("docker.io/library/busybox@sha256:{}", "b".repeat(64)), "ready": true, "restartCount": 0}],
                "containerStatuses": [
                    {"name": "web", "image": "nginx:1.25", "imageID": format!("docker-pullable://nginx@sha256:{}", "a".repeat(64)), "ready": true, "restartCount": 0},
                    {"name": "sidecar", "image": "envoy:1", "imageID": "", "ready": false, "restartCount": 0}]}
        }));
        let mut warnings = vec![];
        let a = pod_artifacts(&p, &mut warnings);
        assert_eq!(a.len(), 3);
        // Not skipped: recorded by its image reference, with no fingerprint.
        assert_eq!(a[2].name, "envoy:1");
        assert_eq!(a[2].fingerprint, None);
        assert_eq!(a[2].instances[0].attributes["digest_source"], "none");
        assert_eq!(a[0].name, "busybox:1");
        assert_eq!(a[0].instances[0].attributes["container_role"], "init");
        assert_eq!(a[1].fingerprint.as_deref(), Some("a".repeat(64).as_str()));
        assert_eq!(a[1].instances[0].id, "web-7d9f");
        assert_eq!(a[1].instances[0].attributes["owner"], "ReplicaSet/web-7d");
        assert_eq!(a[1].instances[0].started_at, Some(1_772_334_720_000));
        assert_eq!(warnings.len(), 1);
        assert!(warnings[0].contains("sidecar"), "{warnings:?}");

        let pending =
            pod(serde_json::json!({"metadata": {"name": "p"}, "status": {"phase": "Pending"}}));
        assert!(pod_artifacts(&pending, &mut warnings).is_empty());
    }
}
