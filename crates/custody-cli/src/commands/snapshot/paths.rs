//! `snapshot paths` and `snapshot path`: files and directories on a host,
//! each fingerprinted with the foundation's algorithms. `--watch` reports
//! again whenever inotify says one of them changed.

use std::path::{Path, PathBuf};

use anyhow::Context;
use custody_api::{Instance, ObservedArtifact};
use custody_fingerprint::DirAlgorithm as Algo;
use custody_runtime::EnvironmentKind;
use custody_runtime::config_files::parse_paths_spec;
use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use super::{Observation, Source};
use crate::cli::DirAlgorithm;

struct Entry {
    name: String,
    path: PathBuf,
    exclude: Vec<String>,
}

pub struct Paths {
    environment: String,
    entries: Vec<Entry>,
    algorithm: Algo,
    watch: Option<Watch>,
}

struct Watch {
    watcher: notify::RecommendedWatcher,
    events: mpsc::UnboundedReceiver<()>,
    watched: Vec<PathBuf>,
}

fn algorithm(a: DirAlgorithm) -> Algo {
    match a {
        DirAlgorithm::Dirhash => Algo::Dirhash,
        DirAlgorithm::Kosli => Algo::Kosli,
    }
}

impl Paths {
    pub fn from_file(
        environment: String,
        file: &Path,
        dir_algorithm: DirAlgorithm,
        watch: bool,
    ) -> anyhow::Result<Paths> {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read paths file {}", file.display()))?;
        let spec = parse_paths_spec(&file.display().to_string(), &text)?;
        let entries = spec
            .artifacts
            .into_iter()
            .map(|(name, a)| Entry {
                name,
                path: PathBuf::from(a.path),
                exclude: a.exclude,
            })
            .collect();
        Paths::new(environment, entries, dir_algorithm, watch)
    }

    pub fn single(
        environment: String,
        name: String,
        path: PathBuf,
        exclude: Vec<String>,
        dir_algorithm: DirAlgorithm,
        watch: bool,
    ) -> anyhow::Result<Paths> {
        Paths::new(
            environment,
            vec![Entry {
                name,
                path,
                exclude,
            }],
            dir_algorithm,
            watch,
        )
    }

    fn new(
        environment: String,
        entries: Vec<Entry>,
        dir_algorithm: DirAlgorithm,
        watch: bool,
    ) -> anyhow::Result<Paths> {
        let watch = if watch {
            let (tx, events) = mpsc::unbounded_channel();
            let watcher = notify::recommended_watcher(move |r: notify::Result<notify::Event>| {
                // Access events are reads, such as our own fingerprinting.
                if let Ok(e) = r
                    && !matches!(e.kind, notify::EventKind::Access(_))
                {
                    let _ = tx.send(());
                }
            })
            .map_err(|e| crate::fail::Environment(format!("cannot watch files: {e}")))?;
            Some(Watch {
                watcher,
                events,
                watched: vec![],
            })
        } else {
            None
        };
        Ok(Paths {
            environment,
            entries,
            algorithm: algorithm(dir_algorithm),
            watch,
        })
    }

    /// Watches every path and its parent (a directory replaced by a deploy
    /// is a new inode: the parent sees it arrive). Re-armed after each look.
    fn rewatch(&mut self) {
        let Some(w) = self.watch.as_mut() else {
            return;
        };
        for p in w.watched.drain(..) {
            let _ = w.watcher.unwatch(&p);
        }
        for e in &self.entries {
            if e.path.is_dir() && w.watcher.watch(&e.path, RecursiveMode::Recursive).is_ok() {
                w.watched.push(e.path.clone());
            }
            let parent = e
                .path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if w.watcher.watch(parent, RecursiveMode::NonRecursive).is_ok() {
                w.watched.push(parent.to_path_buf());
            }
        }
    }
}

/// A path's artifact. A path that does not exist is an error (while
/// watching: absent). One that exists but cannot be read is recorded
/// without a fingerprint (unknown), with a warning saying why: it is there,
/// and nothing vouches for it.
fn fingerprint(e: &Entry, algorithm: Algo) -> anyhow::Result<(ObservedArtifact, Option<String>)> {
    let fail = |why: String| {
        anyhow::anyhow!(
            "failed to calculate fingerprint for artifact [{}]: {why}",
            e.name
        )
    };
    let meta = std::fs::metadata(&e.path)
        .map_err(|x| fail(format!("cannot open {}: {x}", e.path.display())))?;
    let digest = if meta.is_dir() {
        custody_fingerprint::directory(&e.path, algorithm, &e.exclude)
    } else {
        custody_fingerprint::file::hash_file(&e.path)
    };
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| i64::try_from(d.as_millis()).ok());
    let id = std::fs::canonicalize(&e.path)
        .unwrap_or_else(|_| e.path.clone())
        .display()
        .to_string();
    let mut attributes: std::collections::BTreeMap<String, String> =
        [("path".to_string(), id.clone())].into();
    let (fingerprint, warning) = match digest {
        Ok(d) => (Some(d.to_hex()), None),
        Err(x) => {
            attributes.insert("digest_source".to_string(), "none".to_string());
            (
                None,
                Some(format!(
                    "artifact [{}] at {} cannot be read ({x}): recorded without a fingerprint (unknown)",
                    e.name,
                    e.path.display()
                )),
            )
        }
    };
    Ok((
        ObservedArtifact {
            name: e.name.clone(),
            fingerprint,
            instances: vec![Instance {
                id,
                started_at: mtime,
                attributes,
            }],
        },
        warning,
    ))
}

impl Source for Paths {
    fn kind(&self) -> EnvironmentKind {
        EnvironmentKind::Server
    }

    fn environments(&self) -> Vec<String> {
        vec![self.environment.clone()]
    }

    async fn observe(&mut self) -> anyhow::Result<Vec<Observation>> {
        let watching = self.watch.is_some();
        let jobs: Vec<(String, PathBuf, Vec<String>)> = self
            .entries
            .iter()
            .map(|e| (e.name.clone(), e.path.clone(), e.exclude.clone()))
            .collect();
        let algorithm = self.algorithm;
        let results = tokio::task::spawn_blocking(move || {
            jobs.into_iter()
                .map(|(name, path, exclude)| {
                    fingerprint(
                        &Entry {
                            name,
                            path,
                            exclude,
                        },
                        algorithm,
                    )
                })
                .collect::<Vec<_>>()
        })
        .await
        .context("fingerprinting stopped")?;
        let mut artifacts = vec![];
        let mut warnings = vec![];
        for r in results {
            match r {
                Ok((a, warning)) => {
                    artifacts.push(a);
                    warnings.extend(warning);
                }
                // While watching, a path that is gone is no longer there
                // to run: it is reported absent, with why.
                Err(e) if watching => warnings.push(e.to_string()),
                Err(e) => return Err(e),
            }
        }
        self.rewatch();
        Ok(vec![Observation {
            environment: self.environment.clone(),
            artifacts,
            warnings,
            unobserved: vec![],
        }])
    }

    async fn changed(&mut self) {
        match self.watch.as_mut() {
            Some(w) => {
                if w.events.recv().await.is_none() {
                    std::future::pending::<()>().await;
                }
                // Drain the burst.
                while w.events.try_recv().is_ok() {}
            }
            None => std::future::pending::<()>().await,
        }
    }
}
