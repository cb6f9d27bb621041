//! moto's server on loopback: the AWS APIs (S3, Lambda, ECS, IAM, EC2) for
//! real AWS clients, with resources created through those APIs (boto3).

use std::process::{Child, Command, Stdio};

pub struct Moto {
    pub endpoint: String,
    child: Child,
    proxy: Option<(String, tokio::runtime::Runtime)>,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    pub fn start() -> Moto {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server is installed by the test command (pip install 'moto[server]')");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                std::time::Instant::now() < deadline,
                "moto_server did not start"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        Moto {
            endpoint,
            child,
            proxy: None,
        }
    }

    /// Keeps ECS tasks RUNNING (moto otherwise moves a task one state on at
    /// every DescribeTasks) and puts in front of moto a proxy that fixes
    /// its one deviation from the ECS wire format the reporter meets:
    /// moto writes a task container's `cpu` and `memory` as numbers, the
    /// real API (and so the AWS SDK for Rust) as strings. The reporter's
    /// traffic then is what ECS itself would send.
    pub fn ecs(&mut self) -> String {
        if let Some((url, _)) = &self.proxy {
            return url.clone();
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let status = rt.block_on(async {
            reqwest::Client::new()
                .post(format!("{}/moto-api/state-manager/set-transition", self.endpoint))
                .body(r#"{"model_name": "ecs::task", "transition": {"progression": "manual", "times": 1000000000}}"#)
                .send()
                .await
                .unwrap()
                .status()
        });
        assert!(status.is_success(), "moto state manager: {status}");
        let upstream = self.endpoint.clone();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        rt.spawn(async move {
            let client = reqwest::Client::new();
            let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
                let (client, upstream) = (client.clone(), upstream.clone());
                async move { forward(client, &upstream, req).await }
            });
            let _ = axum::serve(listener, app).await;
        });
        self.proxy = Some((url.clone(), rt));
        url
    }

    /// The variables an AWS client needs to talk to this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Runs a Python script with `aws(service)` returning a boto3 client
    /// for this server; returns what it prints.
    #[track_caller]
    pub fn python(&self, script: &str) -> String {
        let prelude = format!(
            "import boto3, io, json, zipfile\n\
             def aws(service):\n    return boto3.client(service, endpoint_url='{}', region_name='us-east-1', aws_access_key_id='test', aws_secret_access_key='test')\n",
            self.endpoint
        );
        let out = Command::new("python3")
            .arg("-c")
            .arg(format!("{prelude}{script}"))
            .output()
            .expect("python3");
        assert!(
            out.status.success(),
            "boto3 setup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

async fn forward(
    client: reqwest::Client,
    upstream: &str,
    req: axum::extract::Request,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let (parts, body) = req.into_parts();
    let body = axum::body::to_bytes(body, 64 << 20)
        .await
        .unwrap_or_default();
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let url = format!(
        "{upstream}{}",
        parts.uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let mut out = client.request(parts.method.clone(), url).body(body);
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            out = out.header(k, v);
        }
    }
    let Ok(resp) = out.send().await else {
        return axum::http::StatusCode::BAD_GATEWAY.into_response();
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let mut bytes = resp.bytes().await.unwrap_or_default().to_vec();
    if target.ends_with(".DescribeTasks")
        && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(&bytes)
    {
        for task in v["tasks"].as_array_mut().into_iter().flatten() {
            for c in task["containers"].as_array_mut().into_iter().flatten() {
                for k in ["cpu", "memory", "memoryReservation"] {
                    if let Some(n) = c.get(k).and_then(|n| n.as_i64()) {
                        c[k] = serde_json::Value::String(n.to_string());
                    }
                }
            }
        }
        bytes = serde_json::to_vec(&v).unwrap();
    }
    let mut r = axum::response::Response::new(axum::body::Body::from(bytes));
    *r.status_mut() = status;
    for (k, v) in &headers {
        if k != "content-length" && k != "transfer-encoding" {
            r.headers_mut().insert(k, v.clone());
        }
    }
    r
}
