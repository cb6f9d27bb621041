//! The server side: a pool of worker processes, each started with hard
//! limits, asked one request at a time, killed when it overruns.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use custody_domain::custom_type::{CustomTypeError, Verdict};
use custody_policy::rego::{Decision, RegoError};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use crate::protocol::{Reply, Request};

/// How a pool starts its workers and what it allows them.
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The program to start (the `custody` binary) and its arguments
    /// (`__sandbox`).
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// Address space of one worker, in bytes (`RLIMIT_AS`).
    pub memory_limit: u64,
    /// How long one program may run: one type check or evaluation, one
    /// Rego policy on one input.
    pub time_limit: Duration,
    /// Workers running at once, in all.
    pub workers: usize,
    /// Workers running at once for any one tenant.
    pub per_tenant: usize,
}

impl SandboxConfig {
    pub const DEFAULT_MEMORY: u64 = 512 << 20;
    pub const DEFAULT_TIME: Duration = Duration::from_millis(500);

    pub fn new(program: PathBuf, args: Vec<OsString>) -> Self {
        SandboxConfig {
            program,
            args,
            memory_limit: Self::DEFAULT_MEMORY,
            time_limit: Self::DEFAULT_TIME,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            per_tenant: 1,
        }
    }
}

/// A Rego policy to run: its text, the file name its errors carry, and
/// what is mounted at `data.params`.
#[derive(Debug, Clone, Copy)]
pub struct RegoProgram<'a> {
    pub text: &'a str,
    pub file: &'a str,
    pub params: Option<&'a Value>,
}

/// Why a program gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// The program overran a limit or brought its worker down: an answer
    /// about the program, to be shown to whoever wrote it.
    #[error("{0}")]
    Limit(String),
    /// No worker could be started or spoken to: the server's trouble.
    #[error("the sandbox is not available: {0}")]
    Unavailable(String),
}

/// A worker that gave no answer, and why.
enum Failure {
    TimedOut,
    Died(Death),
    Broken(String),
}

/// How a worker ended without answering.
enum Death {
    Memory,
    Stack,
    /// Its own backstop alarm (see [`crate::worker`]).
    Alarm,
    Other(String),
}

/// Workers a worker is used for before it is replaced, so whatever a long
/// life leaves behind (fragmented heaps, caches) does not accumulate.
const MAX_SERVED: u32 = 10_000;

/// Runs user programs in worker processes. Cheap to clone.
#[derive(Clone)]
pub struct Sandbox {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: SandboxConfig,
    idle: Mutex<Vec<Worker>>,
    slots: Arc<Semaphore>,
    tenants: Mutex<HashMap<i64, Arc<Semaphore>>>,
}

struct Worker {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Option<ChildStderr>,
    served: u32,
    line: String,
}

/// Both permits a request holds while it runs.
struct Slot {
    _tenant: OwnedSemaphorePermit,
    _global: OwnedSemaphorePermit,
}

impl Sandbox {
    /// Starts one worker and checks that it answers, so a server whose
    /// sandbox cannot run refuses to start instead of failing later.
    pub async fn start(cfg: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let sandbox = Sandbox {
            inner: Arc::new(Inner {
                slots: Arc::new(Semaphore::new(cfg.workers.max(1))),
                cfg,
                idle: Mutex::new(Vec::new()),
                tenants: Mutex::new(HashMap::new()),
            }),
        };
        match sandbox.call(0, &Request::Ping).await? {
            Reply::Pong => Ok(sandbox),
            other => Err(SandboxError::Unavailable(format!(
                "the worker answered {other:?} to a ping"
            ))),
        }
    }

    pub fn config(&self) -> &SandboxConfig {
        &self.inner.cfg
    }

    /// Whether a type definition (JSON Schema and jq rules) can be used.
    pub async fn check_type(
        &self,
        tenant: i64,
        schema: &Value,
        rules: &[String],
    ) -> Result<Result<(), CustomTypeError>, SandboxError> {
        let request = Request::CheckType {
            schema: schema.to_string(),
            rules: rules.to_vec(),
        };
        match self.call(tenant, &request).await? {
            Reply::TypeChecked(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    /// The verdict of a custom type on one attestation's data, given as
    /// JSON text (the server never parses it itself).
    pub async fn eval_type(
        &self,
        tenant: i64,
        type_name: &str,
        schema: &Value,
        rules: &[String],
        data: &str,
    ) -> Result<Result<Verdict, CustomTypeError>, SandboxError> {
        let request = Request::EvalType {
            type_name: type_name.to_string(),
            schema: schema.to_string(),
            rules: rules.to_vec(),
            data: data.to_string(),
        };
        match self.call(tenant, &request).await? {
            Reply::TypeVerdict(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    /// Whether a Rego policy compiles and evaluates on an empty input;
    /// errors name it `file`.
    pub async fn check_rego(
        &self,
        tenant: i64,
        file: &str,
        policy: &str,
    ) -> Result<Result<(), RegoError>, SandboxError> {
        let request = Request::CheckRego {
            policy: policy.to_string(),
            file: file.to_string(),
            time_limit_ms: self.time_limit_ms(),
        };
        match self.call(tenant, &request).await? {
            Reply::RegoChecked(r) => Ok(r),
            other => Err(unexpected(&other)),
        }
    }

    /// A Rego policy's decision for each input, in order. An input whose
    /// evaluation overran a limit fails alone (a fresh worker takes the
    /// rest); once `budget` has passed, or the policy has brought down
    /// three workers, the inputs left fail without being tried.
    pub async fn eval_rego(
        &self,
        tenant: i64,
        policy: &RegoProgram<'_>,
        inputs: &[Value],
        budget: Duration,
    ) -> Result<Vec<Result<Decision, String>>, SandboxError> {
        const MAX_FAILURES: usize = 3;
        let _slot = self.slot(tenant).await?;
        let started = Instant::now();
        let mut out: Vec<Result<Decision, String>> = Vec::with_capacity(inputs.len());
        let mut failures = 0;
        while out.len() < inputs.len() {
            if started.elapsed() >= budget {
                let why = format!(
                    "not evaluated: the judgement's budget of {} was used up",
                    human(budget)
                );
                out.resize(inputs.len(), Err(why));
                break;
            }
            if failures >= MAX_FAILURES {
                let why = format!(
                    "not evaluated: the policy failed {MAX_FAILURES} times in this judgement"
                );
                out.resize(inputs.len(), Err(why));
                break;
            }
            let rest = &inputs[out.len()..];
            let mut worker = self.checkout()?;
            let header = Request::EvalRego {
                policy: policy.text.to_string(),
                file: policy.file.to_string(),
                time_limit_ms: self.time_limit_ms(),
                params: policy.params.map(|p| p.to_string()),
                inputs: rest.len(),
            };
            let mut lines = Vec::with_capacity(rest.len() + 1);
            lines.push(to_line(&header)?);
            for input in rest {
                lines.push(to_line(input)?);
            }
            // The inputs are written by a task of their own: a worker reads
            // one input at a time, so writing them all before reading any
            // answer could fill the pipe and stall both sides.
            let Some(stdin) = worker.stdin.take() else {
                return Err(SandboxError::Unavailable("a worker without stdin".into()));
            };
            let writer = tokio::spawn(write_lines(stdin, lines));
            let mut healthy = true;
            for _ in 0..rest.len() {
                let deadline = (Instant::now() + self.deadline()).min(started + budget);
                match worker.recv(deadline).await {
                    Ok(Reply::Decision(r)) => out.push(r.map_err(|e| e.to_string())),
                    Ok(other) => {
                        healthy = false;
                        out.push(Err(unexpected(&other).to_string()));
                        break;
                    }
                    Err(f) => {
                        healthy = false;
                        if !matches!(f, Failure::TimedOut) || Instant::now() < started + budget {
                            failures += 1;
                            out.push(Err(self.describe(f)));
                        }
                        break;
                    }
                }
            }
            if healthy {
                match writer.await {
                    Ok(Ok(stdin)) => {
                        worker.stdin = Some(stdin);
                        self.checkin(worker);
                    }
                    _ => drop(worker),
                }
            } else {
                writer.abort();
                drop(worker);
            }
        }
        Ok(out)
    }

    fn time_limit_ms(&self) -> u64 {
        u64::try_from(self.inner.cfg.time_limit.as_millis()).unwrap_or(u64::MAX)
    }

    /// How long an answer may take: the time limit, plus a grace for the
    /// engines' own timers (Rego's) to answer first with a clean error.
    fn deadline(&self) -> Duration {
        let t = self.inner.cfg.time_limit;
        t + t / 2 + Duration::from_millis(100)
    }

    /// One request, one reply.
    async fn call(&self, tenant: i64, request: &Request) -> Result<Reply, SandboxError> {
        let _slot = self.slot(tenant).await?;
        let line = to_line(request)?;
        let mut worker = self.checkout()?;
        let deadline = Instant::now() + self.deadline();
        let sent = match worker.stdin.as_mut() {
            Some(stdin) => send(stdin, &line).await,
            None => Err(std::io::Error::other("a worker without stdin")),
        };
        if let Err(e) = sent {
            return Err(SandboxError::Unavailable(format!(
                "cannot write to a worker: {e}"
            )));
        }
        match worker.recv(deadline).await {
            Ok(reply) => {
                self.checkin(worker);
                Ok(reply)
            }
            Err(Failure::Broken(e)) => Err(SandboxError::Unavailable(e)),
            Err(f) => Err(SandboxError::Limit(self.describe(f))),
        }
    }

    async fn slot(&self, tenant: i64) -> Result<Slot, SandboxError> {
        let per_tenant = {
            let mut tenants = lock(&self.inner.tenants);
            if tenants.len() > 4096 {
                tenants.retain(|_, s| Arc::strong_count(s) > 1);
            }
            tenants
                .entry(tenant)
                .or_insert_with(|| Arc::new(Semaphore::new(self.inner.cfg.per_tenant.max(1))))
                .clone()
        };
        let closed = |_| SandboxError::Unavailable("the sandbox has shut down".into());
        let t = per_tenant.acquire_owned().await.map_err(closed)?;
        let g = self
            .inner
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(closed)?;
        Ok(Slot {
            _tenant: t,
            _global: g,
        })
    }

    /// An idle worker that is still alive, or a new one.
    fn checkout(&self) -> Result<Worker, SandboxError> {
        while let Some(mut w) = lock(&self.inner.idle).pop() {
            if matches!(w.child.try_wait(), Ok(None)) {
                return Ok(w);
            }
        }
        self.spawn()
    }

    fn checkin(&self, mut w: Worker) {
        w.served += 1;
        if w.served < MAX_SERVED {
            lock(&self.inner.idle).push(w);
        }
    }

    fn spawn(&self) -> Result<Worker, SandboxError> {
        let cfg = &self.inner.cfg;
        let mut cmd = Command::new(&cfg.program);
        cmd.args(&cfg.args)
            // Programs never see the server's environment (Rego's
            // opa.runtime() would show it): no secrets, no credentials.
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let memory = cfg.memory_limit;
        // SAFETY: between fork and exec this only makes system calls
        // (setrlimit, setpriority), which are async-signal-safe; it
        // allocates nothing and takes no lock.
        unsafe {
            cmd.pre_exec(move || limit_self(memory));
        }
        let mut child = cmd.spawn().map_err(|e| {
            SandboxError::Unavailable(format!("cannot start {}: {e}", cfg.program.display()))
        })?;
        let (Some(stdin), Some(stdout), stderr) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(SandboxError::Unavailable(
                "a worker started without its pipes".into(),
            ));
        };
        Ok(Worker {
            child,
            stdin: Some(stdin),
            stdout: BufReader::new(stdout),
            stderr,
            served: 0,
            line: String::new(),
        })
    }

    fn describe(&self, f: Failure) -> String {
        match f {
            Failure::TimedOut => format!(
                "it ran longer than its time limit of {}",
                human(self.inner.cfg.time_limit)
            ),
            Failure::Died(Death::Memory) => format!(
                "it used more memory than its limit of {} MiB",
                self.inner.cfg.memory_limit >> 20
            ),
            Failure::Died(Death::Stack) => "it recursed too deeply (its stack overflowed)".into(),
            Failure::Died(Death::Alarm) => "it ran far longer than its time limit".into(),
            Failure::Died(Death::Other(status)) => {
                format!("the process running it ended unexpectedly ({status})")
            }
            Failure::Broken(why) => why,
        }
    }
}

impl Worker {
    async fn recv(&mut self, deadline: Instant) -> Result<Reply, Failure> {
        self.line.clear();
        match tokio::time::timeout_at(deadline, self.stdout.read_line(&mut self.line)).await {
            Err(_) => Err(Failure::TimedOut),
            Ok(Err(e)) => Err(Failure::Broken(format!("cannot read from a worker: {e}"))),
            Ok(Ok(0)) => Err(Failure::Died(self.how_it_died().await)),
            Ok(Ok(_)) => serde_json::from_str(&self.line)
                .map_err(|e| Failure::Broken(format!("a worker's answer is not readable: {e}"))),
        }
    }

    /// Reads what a dead worker left: its exit status and the last words
    /// the runtime printed (allocation failure, stack overflow).
    async fn how_it_died(&mut self) -> Death {
        let status = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
        let mut said = Vec::new();
        if let Some(stderr) = self.stderr.take() {
            let _ = tokio::time::timeout(
                Duration::from_secs(1),
                stderr.take(64 << 10).read_to_end(&mut said),
            )
            .await;
        }
        let said = String::from_utf8_lossy(&said);
        if said.contains("memory allocation of") || said.contains("capacity overflow") {
            Death::Memory
        } else if said.contains("overflowed its stack") {
            Death::Stack
        } else {
            match status {
                Ok(Ok(s)) if s.signal() == Some(libc::SIGALRM) => Death::Alarm,
                Ok(Ok(s)) => Death::Other(s.to_string()),
                _ => Death::Other("no exit status".into()),
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn to_line(v: &impl serde::Serialize) -> Result<String, SandboxError> {
    serde_json::to_string(v)
        .map_err(|e| SandboxError::Unavailable(format!("cannot encode a request: {e}")))
}

async fn send(stdin: &mut ChildStdin, line: &str) -> std::io::Result<()> {
    stdin.write_all(line.as_bytes()).await?;
    stdin.write_all(b"\n").await?;
    stdin.flush().await
}

async fn write_lines(mut stdin: ChildStdin, lines: Vec<String>) -> std::io::Result<ChildStdin> {
    let mut buf = Vec::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for l in &lines {
        buf.extend_from_slice(l.as_bytes());
        buf.push(b'\n');
    }
    stdin.write_all(&buf).await?;
    stdin.flush().await?;
    Ok(stdin)
}

fn unexpected(r: &Reply) -> SandboxError {
    SandboxError::Unavailable(format!("a worker answered out of turn: {r:?}"))
}

fn human(d: Duration) -> String {
    if d.as_millis() < 1000 || !d.as_millis().is_multiple_of(1000) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{} s", d.as_secs())
    }
}

/// In the worker, before it runs anything: an address-space limit, no core
/// files (a crash would dump a user's data to disk), and a lower priority
/// than the server, so a program at its limit slows itself, not the API.
fn limit_self(memory: u64) -> std::io::Result<()> {
    let space = libc::rlimit {
        rlim_cur: memory as libc::rlim_t,
        rlim_max: memory as libc::rlim_t,
    };
    let none = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain system calls on this process, with valid pointers.
    unsafe {
        if libc::setrlimit(libc::RLIMIT_AS, &space) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        if libc::setrlimit(libc::RLIMIT_CORE, &none) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        // Best effort: a worker that cannot lower its priority still runs.
        libc::setpriority(libc::PRIO_PROCESS, 0, 10);
    }
    Ok(())
}
