//! A stand-in for a provider's REST API (GitHub, GitLab, Bitbucket, Azure
//! DevOps, Jira, Sonar) on loopback: real HTTP/1.1, answers from the
//! fixtures in tests/fixtures/providers, in the order a route was given
//! them (the last one repeats), and every request recorded.

use std::collections::{BTreeMap, VecDeque};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    /// 200 with a fixture's JSON.
    pub fn fixture(name: &str) -> Reply {
        Reply::status(200, name)
    }

    /// `status` with a fixture's JSON.
    pub fn status(status: u16, name: &str) -> Reply {
        Reply {
            status,
            headers: vec![],
            body: fixture(name),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn replace(mut self, from: &str, to: &str) -> Reply {
        self.body = self.body.replace(from, to);
        self
    }
}

pub fn fixture(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/providers")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    /// Path and query, as sent.
    pub target: String,
    /// Lower-cased names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

/// Per route: the replies not served yet, and whether the one left (which
/// repeats) has been served.
type Routes = Arc<Mutex<BTreeMap<(String, String), (VecDeque<Reply>, bool)>>>;

pub struct FakeProvider {
    /// `http://127.0.0.1:PORT`
    pub url: String,
    routes: Routes,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl FakeProvider {
    pub fn start() -> FakeProvider {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let routes: Routes = Arc::default();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let (r, s) = (routes.clone(), seen.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let (r, s) = (r.clone(), s.clone());
                std::thread::spawn(move || serve(conn, r, s));
            }
        });
        FakeProvider { url, routes, seen }
    }

    /// Answers `METHOD target` (path and query, exactly) with `reply`,
    /// after the replies given before and not served yet.
    pub fn on(&self, method: &str, target: &str, reply: Reply) -> &Self {
        let mut routes = self.routes.lock().unwrap();
        let (queue, served) = routes
            .entry((method.to_string(), target.to_string()))
            .or_default();
        if *served {
            queue.clear();
            *served = false;
        }
        queue.push_back(reply);
        self
    }

    /// `on("GET", target, reply)`.
    pub fn get(&self, target: &str, reply: Reply) -> &Self {
        self.on("GET", target, reply)
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// One request off a keep-alive connection: method, target, headers (names
/// lower-cased) and a Content-Length body; `None` when the peer is done.
pub fn read_request(reader: &mut impl BufRead) -> Option<Seen> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let target = parts.next().unwrap_or("").to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
        }
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        target,
        headers,
        body,
    })
}

fn serve(conn: TcpStream, routes: Routes, seen: Arc<Mutex<Vec<Seen>>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    while let Some(request) = read_request(&mut reader) {
        let (method, target) = (request.method.clone(), request.target.clone());
        seen.lock().unwrap().push(request);
        let reply = {
            let mut r = routes.lock().unwrap();
            match r.get_mut(&(method.clone(), target.clone())) {
                Some((q, _)) if q.len() > 1 => q.pop_front(),
                Some((q, served)) => {
                    *served = true;
                    q.front().cloned()
                }
                None => None,
            }
        };
        let reply = reply.unwrap_or_else(|| Reply {
            status: 404,
            headers: vec![],
            body: format!(r#"{{"message":"the test server has no route for {method} {target}"}}"#),
        });
        let mut head = format!(
            "HTTP/1.1 {} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        if out.write_all(head.as_bytes()).is_err() || out.write_all(reply.body.as_bytes()).is_err()
        {
            return;
        }
    }
}
