//! The worker side: reads requests from stdin, runs them, writes replies
//! to stdout. It runs inside the limits the pool set before it started;
//! whatever a program does to it — loop, recurse, allocate — ends at most
//! this process.

use std::io::{self, BufRead, BufWriter, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use custody_domain::custom_type::{self, CustomTypeError};
use custody_policy::rego::{RegoError, RegoPolicy};
use serde_json::Value;

use crate::protocol::{Reply, Request};

/// The stack programs run on: deep enough for any legitimate recursion in
/// jq, JSON Schema or Rego, small enough that runaway recursion overflows
/// it long before the address-space limit.
pub const STACK_SIZE: usize = 64 << 20;

/// The first argument that makes the `custody` binary a worker.
pub const ARG: &str = "__sandbox";

/// Serves requests until stdin closes, then exits the process.
pub fn main() -> ! {
    let served = std::thread::Builder::new()
        .name("sandbox".into())
        .stack_size(STACK_SIZE)
        .spawn(|| serve(io::stdin().lock(), io::stdout().lock(), Backstop::Alarm));
    let code = match served.map(|h| h.join()) {
        Ok(Ok(Ok(()))) => 0,
        _ => 70,
    };
    std::process::exit(code)
}

/// How long one request may run before the worker ends itself. The
/// server kills a worker long before this; the alarm is for a worker whose
/// server died while it ran a program that never ends.
const BACKSTOP_SECONDS: u32 = 60;

/// Whether the worker arms its own alarm around each program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backstop {
    Alarm,
    /// For tests that run the loop inside their own process.
    None,
}

impl Backstop {
    fn arm(self, on: bool) {
        if self == Backstop::Alarm {
            // SAFETY: alarm(2) has no memory effects; SIGALRM's default
            // action ends the process, which is the point.
            unsafe {
                libc::alarm(if on { BACKSTOP_SECONDS } else { 0 });
            }
        }
    }
}

/// The request loop, on any reader and writer (tests drive it in memory).
pub fn serve(mut input: impl BufRead, output: impl Write, backstop: Backstop) -> io::Result<()> {
    let mut out = BufWriter::new(output);
    // The policy of the last Rego request, compiled: an environment's
    // judgement sends the same policy for every batch.
    let mut cached: Option<(String, u64, Result<RegoPolicy, RegoError>)> = None;
    let mut line = String::new();
    loop {
        // Idle between requests: no alarm while waiting for the next one.
        backstop.arm(false);
        line.clear();
        if input.read_line(&mut line)? == 0 {
            return Ok(());
        }
        backstop.arm(true);
        let request: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                reply(&mut out, &Reply::Malformed(e.to_string()))?;
                continue;
            }
        };
        match request {
            Request::Ping => reply(&mut out, &Reply::Pong)?,
            Request::CheckType { schema, rules } => {
                let result = guarded(|| {
                    let schema = parse_json("schema", &schema)?;
                    custom_type::validate_definition(&schema, &rules)
                })
                .unwrap_or_else(|p| Err(CustomTypeError::Schema(p)));
                reply(&mut out, &Reply::TypeChecked(result))?;
            }
            Request::EvalType {
                type_name,
                schema,
                rules,
                data,
            } => {
                let result = guarded(|| {
                    let schema = parse_json("schema", &schema)?;
                    let data = parse_json("attestation data", &data)?;
                    custom_type::evaluate(&type_name, &schema, &rules, &data)
                })
                .unwrap_or_else(|p| Err(CustomTypeError::Schema(p)));
                reply(&mut out, &Reply::TypeVerdict(result))?;
            }
            Request::CheckRego {
                policy,
                file,
                time_limit_ms,
            } => {
                let result = guarded(|| {
                    RegoPolicy::compile_limited(
                        &policy,
                        &file,
                        Duration::from_millis(time_limit_ms),
                    )
                    .map(|_| ())
                })
                .unwrap_or_else(|p| Err(RegoError::Compile(p)));
                reply(&mut out, &Reply::RegoChecked(result))?;
            }
            Request::EvalRego {
                policy,
                file,
                time_limit_ms,
                params,
                inputs,
            } => {
                let params = match params.as_deref().map(serde_json::from_str::<Value>) {
                    None => Ok(None),
                    Some(Ok(v)) => Ok(Some(v)),
                    Some(Err(e)) => {
                        Err(RegoError::Params(format!("failed to parse --params: {e}")))
                    }
                };
                let compiled = match &mut cached {
                    Some((p, t, c)) if *p == policy && *t == time_limit_ms => &*c,
                    slot => {
                        let c = guarded(|| {
                            RegoPolicy::compile_limited(
                                &policy,
                                &file,
                                Duration::from_millis(time_limit_ms),
                            )
                        })
                        .unwrap_or_else(|p| Err(RegoError::Compile(p)));
                        &slot.insert((policy, time_limit_ms, c)).2
                    }
                };
                for _ in 0..inputs {
                    backstop.arm(true);
                    line.clear();
                    if input.read_line(&mut line)? == 0 {
                        return Ok(());
                    }
                    let result = match (compiled, &params) {
                        (Err(e), _) | (_, Err(e)) => Err(e.clone()),
                        (Ok(p), Ok(params)) => match serde_json::from_str::<Value>(&line) {
                            Err(e) => Err(RegoError::Eval(format!("invalid input: {e}"))),
                            Ok(doc) => guarded(|| p.evaluate(doc, params.clone()))
                                .unwrap_or_else(|p| Err(RegoError::Eval(p))),
                        },
                    };
                    reply(&mut out, &Reply::Decision(result))?;
                }
            }
        }
    }
}

fn parse_json(what: &str, text: &str) -> Result<Value, CustomTypeError> {
    serde_json::from_str(text).map_err(|e| CustomTypeError::Schema(format!("{what}: {e}")))
}

/// Runs `f`, turning a panic in a library into an answer: a bug in an
/// engine fails the one program that hit it, not the worker.
fn guarded<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    catch_unwind(AssertUnwindSafe(f)).map_err(|p| {
        let what = p
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        format!("the evaluator failed: {what}")
    })
}

/// Writes one reply. The backstop alarm covers a request from when it is
/// read until its answer is out; a batch re-arms it for every input.
fn reply(out: &mut impl Write, r: &Reply) -> io::Result<()> {
    serde_json::to_writer(&mut *out, r)?;
    out.write_all(b"\n")?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(lines: &[String]) -> Vec<Reply> {
        let input = lines.join("\n") + "\n";
        let mut out = Vec::new();
        serve(input.as_bytes(), &mut out, Backstop::None).unwrap();
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn req(r: &Request) -> String {
        serde_json::to_string(r).unwrap()
    }

    #[test]
    fn types_and_policies_are_answered_in_order() {
        let replies = run(&[
            req(&Request::Ping),
            req(&Request::CheckType {
                schema: "{\"type\":\"object\"}".into(),
                rules: vec![".a >".into()],
            }),
            req(&Request::EvalType {
                type_name: "t".into(),
                schema: "{}".into(),
                rules: vec![".a > 1".into()],
                data: "{\"a\": 2}".into(),
            }),
            req(&Request::EvalRego {
                policy: "package policy\n\nallow := input.ok\n".into(),
                file: "p.rego".into(),
                time_limit_ms: 250,
                params: None,
                inputs: 2,
            }),
            "{\"ok\": true}".into(),
            "{\"ok\": false}".into(),
            "not json".into(),
        ]);
        assert!(matches!(replies[0], Reply::Pong));
        assert!(matches!(
            replies[1],
            Reply::TypeChecked(Err(CustomTypeError::Rule { .. }))
        ));
        assert!(matches!(&replies[2], Reply::TypeVerdict(Ok(v)) if v.compliant));
        assert!(matches!(&replies[3], Reply::Decision(Ok(d)) if d.allow));
        assert!(matches!(&replies[4], Reply::Decision(Ok(d)) if !d.allow));
        assert!(matches!(&replies[5], Reply::Malformed(_)));
    }

    #[test]
    fn a_policy_that_does_not_compile_answers_every_input() {
        let replies = run(&[
            req(&Request::EvalRego {
                policy: "package nope\n".into(),
                file: "p.rego".into(),
                time_limit_ms: 250,
                params: None,
                inputs: 2,
            }),
            "{}".into(),
            "{}".into(),
            req(&Request::Ping),
        ]);
        assert_eq!(replies.len(), 3);
        assert!(matches!(
            &replies[0],
            Reply::Decision(Err(RegoError::Package(_)))
        ));
        assert!(matches!(replies[2], Reply::Pong));
    }
}
