//! Webhook receivers on loopback: real HTTP/1.1 servers (keep-alive,
//! Content-Length bodies) that record every request and answer as told.

use std::collections::BTreeMap;
use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub enum Behaviour {
    Ok,
    /// 500 for the first N requests, then 200.
    FailFirst(usize),
    /// Never answers within the client's patience.
    Hang(Duration),
    /// 500, forever.
    Always500,
    /// 200 after a pause (a slow but healthy receiver).
    Slow(Duration),
    /// 302 to this URL.
    Redirect(&'static str),
}

#[derive(Clone, Debug)]
pub struct Request {
    pub path: String,
    /// Lower-cased names.
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
    }
}

pub struct Receiver {
    pub url: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl Receiver {
    pub fn start(behaviour: Behaviour) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let requests: Arc<Mutex<Vec<Request>>> = Arc::default();
        let seen = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let seen = seen.clone();
                std::thread::spawn(move || serve(conn, behaviour, seen));
            }
        });
        Receiver { url, requests }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(conn: TcpStream, behaviour: Behaviour, seen: Arc<Mutex<Vec<Request>>>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let mut out = conn;
    while let Some(r) = super::provider::read_request(&mut reader) {
        let (path, headers, body) = (r.target, r.headers, r.body);
        let n = {
            let mut s = seen.lock().unwrap();
            s.push(Request {
                path,
                headers,
                body,
            });
            s.len()
        };
        let status = match behaviour {
            Behaviour::Ok => 200,
            Behaviour::FailFirst(k) if n <= k => 500,
            Behaviour::FailFirst(_) => 200,
            Behaviour::Always500 => 500,
            Behaviour::Hang(d) => {
                std::thread::sleep(d);
                200
            }
            Behaviour::Slow(d) => {
                std::thread::sleep(d);
                200
            }
            Behaviour::Redirect(to) => {
                let resp =
                    format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n");
                if out.write_all(resp.as_bytes()).is_err() {
                    return;
                }
                continue;
            }
        };
        let reason = if status == 200 {
            "OK"
        } else {
            "Internal Server Error"
        };
        let body = if status == 200 {
            ""
        } else {
            "receiver is down"
        };
        let resp = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n\r\n{body}",
            body.len()
        );
        if out.write_all(resp.as_bytes()).is_err() {
            return;
        }
    }
}
