//! A local server speaking the Kubernetes API for the calls the K8s
//! reporter makes: list namespaces, list pods (cluster-wide and per
//! namespace) and watch pods, with resource versions, bookmarks, watches
//! that end (the reporter must reconnect) and expired resource versions
//! (410 Gone: it must list again). It serves pod objects in the shape a
//! real API server returns them.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State as Ext};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::{broadcast, watch};
use tower::ServiceExt;

#[derive(Default)]
struct Store {
    rv: u64,
    namespaces: Vec<String>,
    /// "namespace/name" → pod.
    pods: BTreeMap<String, Value>,
    /// Every change, for watches that resume from a resource version.
    log: Vec<(u64, &'static str, Value)>,
    forbidden: HashSet<String>,
    /// Watches from before this resource version get 410 Gone.
    compacted: u64,
    watches: u64,
    /// The bearer tokens requests came with.
    tokens: HashSet<String>,
}

#[derive(Clone)]
struct Shared {
    store: Arc<Mutex<Store>>,
    events: broadcast::Sender<(u64, &'static str, Value)>,
    /// Bumped to end every open watch.
    cut: watch::Sender<u64>,
}

pub struct FakeKube {
    pub url: String,
    shared: Shared,
    _runtime: tokio::runtime::Runtime,
}

#[derive(Deserialize)]
struct Params {
    #[serde(default)]
    watch: Option<String>,
    #[serde(rename = "resourceVersion", default)]
    resource_version: Option<String>,
    #[serde(rename = "timeoutSeconds", default)]
    timeout_seconds: Option<u64>,
}

fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn in_namespace(pod: &Value, ns: Option<&str>) -> bool {
    ns.is_none_or(|ns| pod["metadata"]["namespace"] == ns)
}

async fn pods(shared: Shared, ns: Option<String>, p: Params) -> Response {
    let forbidden = {
        let s = shared.store.lock().unwrap();
        // "*" forbids every pod request, the cluster-wide ones too (a
        // role taken away).
        s.forbidden.contains("*") || ns.as_ref().is_some_and(|n| s.forbidden.contains(n))
    };
    if forbidden {
        let n = ns.as_deref().unwrap_or("(all)");
        let msg = format!(
            "pods is forbidden: User \"system:serviceaccount:custody:reporter\" cannot list resource \"pods\" in API group \"\" in the namespace \"{n}\""
        );
        return (
            StatusCode::FORBIDDEN,
            axum::Json(status(403, "Forbidden", &msg)),
        )
            .into_response();
    }
    if p.watch.as_deref() == Some("true") || p.watch.as_deref() == Some("1") {
        return watch_pods(shared, ns, p);
    }
    let s = shared.store.lock().unwrap();
    let items: Vec<Value> = s
        .pods
        .values()
        .filter(|pod| in_namespace(pod, ns.as_deref()))
        .cloned()
        .collect();
    axum::Json(json!({"kind": "PodList", "apiVersion": "v1",
        "metadata": {"resourceVersion": s.rv.to_string()}, "items": items}))
    .into_response()
}

fn watch_pods(shared: Shared, ns: Option<String>, p: Params) -> Response {
    let from: u64 = p
        .resource_version
        .as_deref()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut live = shared.events.subscribe();
    let mut cut = shared.cut.subscribe();
    let (backlog, expired, now) = {
        let mut s = shared.store.lock().unwrap();
        s.watches += 1;
        let backlog: Vec<_> = s
            .log
            .iter()
            .filter(|(rv, _, pod)| *rv > from && in_namespace(pod, ns.as_deref()))
            .cloned()
            .collect();
        (backlog, from < s.compacted, s.rv)
    };
    let line = |v: Value| {
        let mut b = serde_json::to_vec(&v).unwrap();
        b.push(b'\n');
        Ok::<_, std::convert::Infallible>(bytes::Bytes::from(b))
    };
    if expired {
        // As a real API server answers a watch from a compacted version.
        let e = json!({"type": "ERROR", "object": status(410, "Expired",
            &format!("too old resource version: {from} ({now})"))});
        return Body::from_stream(futures::stream::iter([line(e)])).into_response();
    }
    let timeout = Duration::from_secs(p.timeout_seconds.unwrap_or(300).min(300));
    let stream = async_stream(backlog, ns, move |tx| async move {
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut bookmark = tokio::time::interval(Duration::from_millis(500));
        let mut last = now;
        loop {
            tokio::select! {
                _ = &mut deadline => return,
                _ = cut.changed() => return,
                _ = bookmark.tick() => {
                    let b = json!({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                        "metadata": {"resourceVersion": last.to_string()}}});
                    if tx.send(b).await.is_err() { return; }
                }
                e = live.recv() => match e {
                    Ok((rv, kind, pod)) => {
                        last = rv;
                        if tx.send(json!({"type": kind, "object": pod})).await.is_err() { return; }
                    }
                    Err(_) => return,
                },
            }
        }
    });
    Body::from_stream(stream.map(line)).into_response()
}

/// Backlog first, then whatever `follow` sends, filtered by namespace.
fn async_stream<F, Fut>(
    backlog: Vec<(u64, &'static str, Value)>,
    ns: Option<String>,
    follow: F,
) -> impl futures::Stream<Item = Value>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Value>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Value>(64);
    tokio::spawn(follow(tx));
    let backlog = futures::stream::iter(
        backlog
            .into_iter()
            .map(|(_, kind, pod)| json!({"type": kind, "object": pod})),
    );
    let live = tokio_stream_from(rx).filter(move |v| {
        let keep = v["type"] == "BOOKMARK" || in_namespace(&v["object"], ns.as_deref());
        async move { keep }
    });
    backlog.chain(live)
}

fn tokio_stream_from(
    mut rx: tokio::sync::mpsc::Receiver<Value>,
) -> impl futures::Stream<Item = Value> {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

async fn all_pods(Ext(s): Ext<Shared>, Query(p): Query<Params>) -> Response {
    pods(s, None, p).await
}

async fn namespaced_pods(
    Ext(s): Ext<Shared>,
    UrlPath(ns): UrlPath<String>,
    Query(p): Query<Params>,
) -> Response {
    pods(s, Some(ns), p).await
}

async fn namespaces(Ext(s): Ext<Shared>) -> Response {
    let s = s.store.lock().unwrap();
    let items: Vec<Value> = s
        .namespaces
        .iter()
        .map(|n| {
            json!({"metadata": {"name": n, "uid": format!("ns-{n}"), "resourceVersion": "1"},
                        "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}})
        })
        .collect();
    axum::Json(json!({"kind": "NamespaceList", "apiVersion": "v1",
        "metadata": {"resourceVersion": s.rv.to_string()}, "items": items}))
    .into_response()
}

impl FakeKube {
    pub fn start() -> FakeKube {
        Self::serve(None)
    }

    /// Over HTTPS with this certificate and key (PEM), as a cluster's API
    /// server is reached from inside it.
    pub fn start_tls(cert_pem: &str, key_pem: &str) -> FakeKube {
        Self::serve(Some((cert_pem.to_string(), key_pem.to_string())))
    }

    fn serve(tls: Option<(String, String)>) -> FakeKube {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let (events, _) = broadcast::channel(1024);
        let (cut, _) = watch::channel(0);
        let shared = Shared {
            store: Arc::new(Mutex::new(Store {
                rv: 100,
                ..Store::default()
            })),
            events,
            cut,
        };
        let seen = shared.clone();
        let app = Router::new()
            .route("/api/v1/namespaces", get(namespaces))
            .route("/api/v1/pods", get(all_pods))
            .route("/api/v1/namespaces/{ns}/pods", get(namespaced_pods))
            .layer(axum::middleware::from_fn(
                move |req: axum::extract::Request, next: axum::middleware::Next| {
                    let seen = seen.clone();
                    async move {
                        if let Some(t) = req
                            .headers()
                            .get("authorization")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.strip_prefix("Bearer "))
                        {
                            seen.store.lock().unwrap().tokens.insert(t.to_string());
                        }
                        next.run(req).await
                    }
                },
            ))
            .with_state(shared.clone());
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let url = match tls {
            None => {
                runtime.spawn(async move {
                    let _ = axum::serve(listener, app).await;
                });
                format!("http://{addr}")
            }
            Some((cert, key)) => {
                use rustls_pki_types::pem::PemObject;
                let certs = rustls_pki_types::CertificateDer::pem_slice_iter(cert.as_bytes())
                    .collect::<Result<Vec<_>, _>>()
                    .unwrap();
                let key = rustls_pki_types::PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
                let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
                    rustls::crypto::aws_lc_rs::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(certs, key)
                .unwrap();
                config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
                let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
                runtime.spawn(async move {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let (acceptor, app) = (acceptor.clone(), app.clone());
                        tokio::spawn(async move {
                            let Ok(stream) = acceptor.accept(stream).await else {
                                return;
                            };
                            let service = hyper_util::service::TowerToHyperService::new(
                                app.map_request(|r: axum::http::Request<hyper::body::Incoming>| {
                                    r.map(Body::new)
                                }),
                            );
                            let _ = hyper_util::server::conn::auto::Builder::new(
                                hyper_util::rt::TokioExecutor::new(),
                            )
                            .serve_connection_with_upgrades(
                                hyper_util::rt::TokioIo::new(stream),
                                service,
                            )
                            .await;
                        });
                    }
                });
                format!("https://{addr}")
            }
        };
        FakeKube {
            url,
            shared,
            _runtime: runtime,
        }
    }

    /// The bearer tokens requests have come with.
    pub fn tokens(&self) -> Vec<String> {
        self.shared
            .store
            .lock()
            .unwrap()
            .tokens
            .iter()
            .cloned()
            .collect()
    }

    pub fn kubeconfig(&self, dir: &Path) -> PathBuf {
        let path = dir.join("kubeconfig");
        std::fs::write(
            &path,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: {}\nusers:\n- name: reporter\n  user:\n    token: test-token\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: reporter\ncurrent-context: fake\n",
                self.url
            ),
        )
        .unwrap();
        path
    }

    pub fn namespace(&self, ns: &str) {
        self.shared.store.lock().unwrap().namespaces.push(ns.into());
    }

    pub fn forbid(&self, ns: &str) {
        self.shared
            .store
            .lock()
            .unwrap()
            .forbidden
            .insert(ns.into());
    }

    pub fn allow(&self, ns: &str) {
        self.shared.store.lock().unwrap().forbidden.remove(ns);
    }

    fn record(&self, kind: &'static str, mut pod: Value) {
        let mut s = self.shared.store.lock().unwrap();
        s.rv += 1;
        let rv = s.rv;
        pod["metadata"]["resourceVersion"] = json!(rv.to_string());
        let key = format!(
            "{}/{}",
            pod["metadata"]["namespace"].as_str().unwrap(),
            pod["metadata"]["name"].as_str().unwrap()
        );
        if kind == "DELETED" {
            s.pods.remove(&key);
        } else {
            s.pods.insert(key, pod.clone());
        }
        s.log.push((rv, kind, pod.clone()));
        let _ = self.shared.events.send((rv, kind, pod));
    }

    /// Adds or replaces a pod, as the API server would after a change.
    pub fn put(&self, pod: Value) {
        let key = (
            pod["metadata"]["namespace"].as_str().unwrap().to_string(),
            pod["metadata"]["name"].as_str().unwrap().to_string(),
        );
        let exists = self
            .shared
            .store
            .lock()
            .unwrap()
            .pods
            .contains_key(&format!("{}/{}", key.0, key.1));
        self.record(if exists { "MODIFIED" } else { "ADDED" }, pod);
    }

    pub fn delete(&self, ns: &str, name: &str) {
        let pod = self
            .shared
            .store
            .lock()
            .unwrap()
            .pods
            .get(&format!("{ns}/{name}"))
            .cloned()
            .expect("no such pod");
        self.record("DELETED", pod);
    }

    /// Ends every open watch, as a load balancer or an API server restart
    /// would.
    pub fn cut_watches(&self) {
        self.shared.cut.send_modify(|n| *n += 1);
    }

    /// Forgets history: a watch resuming from an older version gets 410.
    pub fn compact(&self) {
        let mut s = self.shared.store.lock().unwrap();
        s.compacted = s.rv + 1;
        s.log.clear();
    }

    pub fn watches(&self) -> u64 {
        self.shared.store.lock().unwrap().watches
    }
}

/// A pod as the API server returns it. `containers` are (name, image,
/// image ID); an empty image ID is a container not started yet.
pub fn pod(ns: &str, name: &str, phase: &str, containers: &[(&str, &str, &str)]) -> Value {
    let uid = format!(
        "{:08x}-7cee-42cd-a6c3-{:012x}",
        name.len() as u32 * 7919,
        hash(name)
    );
    let statuses: Vec<Value> = containers
        .iter()
        .map(|(cname, image, id)| {
            let running = !id.is_empty() && phase == "Running";
            json!({
                "name": cname, "image": image, "imageID": id,
                "containerID": if id.is_empty() { Value::Null } else { json!(format!("containerd://{:064x}", hash(cname))) },
                "ready": running, "restartCount": 0, "started": running,
                "state": if running { json!({"running": {"startedAt": "2026-11-30T10:00:05Z"}}) }
                         else { json!({"waiting": {"reason": "ContainerCreating"}}) },
                "lastState": {}
            })
        })
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {
            "name": name, "namespace": ns, "uid": uid, "generateName": format!("{}-", name.rsplit_once('-').map_or(name, |(a, _)| a)),
            "creationTimestamp": "2026-11-30T10:00:00Z",
            "labels": {"app": name.split('-').next().unwrap_or(name), "pod-template-hash": "77b4fdf86c"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": format!("{}-77b4fdf86c", name.split('-').next().unwrap_or(name)),
                "uid": "22a5a8be-7cee-42cd-a6c3-02b620f4ce88", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "containers": containers.iter().map(|(n, i, _)| json!({"name": n, "image": i, "imagePullPolicy": "IfNotPresent",
                "resources": {}, "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File"})).collect::<Vec<_>>(),
            "dnsPolicy": "ClusterFirst", "enableServiceLinks": true, "nodeName": "node-a",
            "restartPolicy": "Always", "schedulerName": "default-scheduler", "serviceAccountName": "default",
            "terminationGracePeriodSeconds": 30
        },
        "status": {
            "phase": phase, "hostIP": "10.0.0.4", "podIP": "10.244.0.17", "qosClass": "BestEffort",
            "startTime": "2026-11-30T10:00:00Z",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-11-30T10:00:00Z"}],
            "containerStatuses": statuses
        }
    })
}

fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    }) & 0xffff_ffff_ffff
}

/// An image ID as containerd reports it.
pub fn image_id(repo: &str, hex: &str) -> String {
    format!("{repo}@sha256:{hex}")
}
