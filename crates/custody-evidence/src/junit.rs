//! JUnit XML, as written by pytest, Maven Surefire, Gradle, Jest, vitest,
//! cargo-nextest, go-junit-report, Ant and many more.
//!
//! Header attributes (`tests=`, `failures=`...) are never trusted: real
//! files lie, so every count comes from the `<testcase>` elements. Each
//! case's outcome is the worst of what it holds: error, then failure, then
//! skipped, then passed. Retries as Surefire writes them: `<flakyFailure>`/`<flakyError>`
//! without a final `<failure>`/`<error>` passed after retrying (flaky);
//! `<rerunFailure>`/`<rerunError>` next to a `<failure>`/`<error>` failed
//! every attempt. A `<failure>` or `<error>` directly in a `<testsuite>`
//! (setup failure, class not found) is an errored case of its own.

use std::io::BufRead;

use quick_xml::events::{BytesStart, Event};
use serde::{Deserialize, Serialize};

use crate::error::ParseError;
use crate::limits::{Limits, MAX_LISTED, MAX_MESSAGE, MESSAGE_BUDGET, truncate};
use crate::verdict::Verdict;
use crate::xml::{XmlReader, attrs, attrs_into, push_ref};

/// Test counts. `tests` = `passed + failed + errored + skipped`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    pub tests: u64,
    pub passed: u64,
    pub failed: u64,
    pub errored: u64,
    pub skipped: u64,
    /// Passed only after retrying (included in `passed`).
    pub flaky: u64,
    /// Seconds; durations that are missing, negative or not numbers count 0.
    pub duration: f64,
}

impl Counts {
    /// Adds `o`, or None when a count would not fit a u64.
    fn checked_add(&self, o: &Counts) -> Option<Counts> {
        Some(Counts {
            tests: self.tests.checked_add(o.tests)?,
            passed: self.passed.checked_add(o.passed)?,
            failed: self.failed.checked_add(o.failed)?,
            errored: self.errored.checked_add(o.errored)?,
            skipped: self.skipped.checked_add(o.skipped)?,
            flaky: self.flaky.checked_add(o.flaky)?,
            duration: self.duration + o.duration,
        })
    }

    fn saturating_add(&self, o: &Counts) -> Counts {
        Counts {
            tests: self.tests.saturating_add(o.tests),
            passed: self.passed.saturating_add(o.passed),
            failed: self.failed.saturating_add(o.failed),
            errored: self.errored.saturating_add(o.errored),
            skipped: self.skipped.saturating_add(o.skipped),
            flaky: self.flaky.saturating_add(o.flaky),
            duration: self.duration + o.duration,
        }
    }

    /// Whether the parts add up: `tests` = passed + failed + errored +
    /// skipped, and flaky cases are among the passed.
    fn consistent(&self) -> bool {
        [self.failed, self.errored, self.skipped]
            .iter()
            .try_fold(self.passed, |acc, n| acc.checked_add(*n))
            == Some(self.tests)
            && self.flaky <= self.passed
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Suite {
    pub name: String,
    /// The report file it came from, as given to [`JunitParser::add_file`].
    pub file: String,
    /// The `timestamp` attribute as written, and as Unix milliseconds when
    /// it is one of the forms tools write.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<i64>,
    /// Cases directly in this suite (not in suites nested in it).
    #[serde(flatten)]
    pub counts: Counts,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Passed,
    Skipped,
    Failed,
    Errored,
}

/// A case that failed or errored, or passed only after retrying.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub suite: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub classname: String,
    pub name: String,
    pub outcome: Outcome,
    /// How many times it ran, when it was retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The `message` attribute, then the element's text (a stack trace),
    /// each cut to 64 KiB.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileSummary {
    pub path: String,
    pub tests: u64,
}

/// What `attest junit` stores.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JunitSummary {
    pub files: Vec<FileSummary>,
    pub suites: Vec<Suite>,
    pub totals: Counts,
    /// Failed and errored cases, the first [`MAX_LISTED`].
    pub failures: Vec<Case>,
    #[serde(default)]
    pub failures_not_listed: u64,
    /// Cases that passed after retrying, the first [`MAX_LISTED`].
    pub flaky: Vec<Case>,
    #[serde(default)]
    pub flaky_not_listed: u64,
}

impl JunitSummary {
    /// Totals from the suites: what a summary received from elsewhere is
    /// judged by. Refused when a suite's counts do not add up, a sum does
    /// not fit a u64 (it would wrap around to look clean), or the cases
    /// listed disagree with the counts.
    pub fn recount(&mut self) -> Result<(), String> {
        let mut totals = Counts::default();
        for s in &self.suites {
            if !s.counts.consistent() {
                return Err(format!(
                    "junit results: suite '{}' counts {} tests, but {} passed, {} failed, {} errored and {} skipped ({} flaky)",
                    s.name,
                    s.counts.tests,
                    s.counts.passed,
                    s.counts.failed,
                    s.counts.errored,
                    s.counts.skipped,
                    s.counts.flaky
                ));
            }
            totals = totals
                .checked_add(&s.counts)
                .ok_or("junit results: the suites' counts do not fit in 64 bits")?;
        }
        let failing = totals
            .failed
            .checked_add(totals.errored)
            .ok_or("junit results: the suites' counts do not fit in 64 bits")?;
        let listed = self.failures.len() as u64;
        if listed.checked_add(self.failures_not_listed) != Some(failing)
            || self
                .failures
                .iter()
                .any(|c| !matches!(c.outcome, Outcome::Failed | Outcome::Errored))
        {
            return Err(format!(
                "junit results: {listed} failing cases listed and {} not listed, but the suites count {failing} failed or errored",
                self.failures_not_listed
            ));
        }
        let listed = self.flaky.len() as u64;
        if listed.checked_add(self.flaky_not_listed) != Some(totals.flaky) {
            return Err(format!(
                "junit results: {listed} flaky cases listed and {} not listed, but the suites count {}",
                self.flaky_not_listed, totals.flaky
            ));
        }
        self.totals = totals;
        Ok(())
    }

    /// Compliant iff at least one test ran and none failed or errored.
    pub fn verdict(&self) -> Verdict {
        let t = &self.totals;
        let mut reasons = vec![];
        if t.tests == 0 {
            reasons.push("no tests found".to_string());
        } else if t.skipped == t.tests {
            reasons.push(format!("no test ran: all {} were skipped", t.tests));
        }
        if t.failed > 0 || t.errored > 0 {
            let names: Vec<String> = self.failures.iter().take(5).map(display_name).collect();
            let more = (t.failed + t.errored).saturating_sub(names.len() as u64);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            reasons.push(format!(
                "{} of {} tests failed and {} errored: {}{more}",
                t.failed,
                t.tests,
                t.errored,
                names.join(", ")
            ));
        }
        Verdict::from_reasons(reasons)
    }
}

fn display_name(c: &Case) -> String {
    if c.classname.is_empty() {
        c.name.clone()
    } else {
        format!("{}.{}", c.classname, c.name)
    }
}

/// Reads report files one by one into one summary.
#[derive(Debug, Default)]
pub struct JunitParser {
    summary: JunitSummary,
    message_bytes: usize,
    /// Per suite: the declared `time`, and the sum of its cases' times.
    times: Vec<(Option<f64>, f64)>,
    /// The suite of the current file's cases that sit outside any suite.
    implicit: Option<usize>,
    /// Buffers reused from one test case to the next.
    spare: Option<OpenCase>,
    time_buf: String,
    limits: Limits,
}

/// A `<testcase>` being read.
#[derive(Debug, Default)]
struct OpenCase {
    suite: usize,
    classname: String,
    name: String,
    duration: f64,
    failed: Option<Failure>,
    errored: Option<Failure>,
    skipped: bool,
    flaky: u32,
    reruns: u32,
}

#[derive(Debug)]
struct Failure {
    kind: Option<String>,
    message: String,
    detail: String,
}

/// What the element being read is, for what its text means.
enum Frame {
    Suite(usize),
    Case,
    /// `<failure>`/`<error>` of the open case (`true` = error).
    Outcome(bool),
    /// `<failure>`/`<error>` directly in a suite.
    SuiteOutcome,
    Other,
}

impl JunitParser {
    pub fn new(limits: Limits) -> Self {
        JunitParser {
            limits,
            ..JunitParser::default()
        }
    }

    /// Reads one report. On error nothing of this file is kept.
    pub fn add_file(&mut self, path: &str, input: impl BufRead) -> Result<(), ParseError> {
        // A file only appends (its own suites, failures, flaky cases), so
        // undoing it is truncating back: no copy of what came before.
        let mark = (
            self.summary.suites.len(),
            self.summary.failures.len(),
            self.summary.failures_not_listed,
            self.summary.flaky.len(),
            self.summary.flaky_not_listed,
            self.message_bytes,
            self.times.len(),
        );
        let r = self.read(path, input);
        if r.is_err() {
            let s = &mut self.summary;
            s.suites.truncate(mark.0);
            s.failures.truncate(mark.1);
            s.failures_not_listed = mark.2;
            s.flaky.truncate(mark.3);
            s.flaky_not_listed = mark.4;
            self.message_bytes = mark.5;
            self.times.truncate(mark.6);
        }
        r
    }

    pub fn finish(mut self) -> JunitSummary {
        // Counted here, one case at a time: the parts add up by
        // construction, and no file holds 2^64 cases.
        let mut totals = Counts::default();
        for s in &self.summary.suites {
            totals = totals.saturating_add(&s.counts);
        }
        self.summary.totals = totals;
        self.summary
    }

    fn read(&mut self, path: &str, input: impl BufRead) -> Result<(), ParseError> {
        let mut xml = XmlReader::new(input, self.limits)?;
        let mut stack: Vec<Frame> = vec![];
        let mut case: Option<OpenCase> = None;
        let mut suite_failure: Option<(usize, Failure, bool)> = None;
        let mut text = String::new();
        let mut tests_in_file = 0u64;
        let mut root_seen = false;
        let first_suite = self.summary.suites.len();
        self.implicit = None;
        loop {
            let event = xml.next()?;
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let empty = matches!(event, Event::Empty(_));
                    // Read straight from the borrowed event: no copy of
                    // every element.
                    let opened = if root_seen {
                        self.open(path, e, &stack, &mut case, &mut suite_failure, &mut text)
                    } else {
                        root_seen = true;
                        let root = e.local_name();
                        if root.as_ref() != b"testsuites" && root.as_ref() != b"testsuite" {
                            Err(format!(
                                "not a JUnit report: the root element is <{}>, not <testsuites> or <testsuite>",
                                String::from_utf8_lossy(root.as_ref())
                            ))
                        } else {
                            self.open(path, e, &stack, &mut case, &mut suite_failure, &mut text)
                        }
                    };
                    drop(event);
                    let frame = opened.map_err(|m| xml.error(m))?;
                    if empty {
                        self.close(
                            &frame,
                            &mut case,
                            &mut suite_failure,
                            &mut text,
                            &mut tests_in_file,
                        );
                    } else {
                        stack.push(frame);
                    }
                }
                Event::End(_) => {
                    drop(event);
                    if let Some(frame) = stack.pop() {
                        self.close(
                            &frame,
                            &mut case,
                            &mut suite_failure,
                            &mut text,
                            &mut tests_in_file,
                        );
                    }
                }
                Event::Text(ref t) if capturing(&stack) => {
                    let s = t.decode().map_err(|e| ParseError::new(e.to_string()))?;
                    push_capped(&mut text, &s);
                }
                Event::CData(ref t) if capturing(&stack) => {
                    let s = t.decode().map_err(|e| ParseError::new(e.to_string()))?;
                    push_capped(&mut text, &s);
                }
                Event::GeneralRef(ref r) => {
                    let mut s = String::new();
                    let res = push_ref(&mut s, r);
                    let keep = capturing(&stack);
                    drop(event);
                    res.map_err(|m| xml.error(m))?;
                    if keep {
                        push_capped(&mut text, &s);
                    }
                }
                Event::Eof => break,
                _ => {}
            }
        }
        // A declared suite time wins; otherwise the cases' sum is the honest
        // figure.
        for (i, s) in self.summary.suites.iter_mut().enumerate().skip(first_suite) {
            let (declared, sum) = self.times[i];
            s.counts.duration = declared.unwrap_or(sum);
        }
        self.summary.files.push(FileSummary {
            path: path.to_string(),
            tests: tests_in_file,
        });
        Ok(())
    }

    fn open(
        &mut self,
        path: &str,
        e: &BytesStart<'_>,
        stack: &[Frame],
        case: &mut Option<OpenCase>,
        suite_failure: &mut Option<(usize, Failure, bool)>,
        text: &mut String,
    ) -> Result<Frame, String> {
        let parent_suite = stack.iter().rev().find_map(|f| match f {
            Frame::Suite(i) => Some(*i),
            _ => None,
        });
        let in_case = matches!(stack.last(), Some(Frame::Case));
        Ok(match e.local_name().as_ref() {
            b"testsuite" if !in_case => {
                let [name, timestamp, time] = attrs(e, [b"name", b"timestamp", b"time"])?;
                let name = name.unwrap_or_default();
                let timestamp = timestamp.filter(|t| !t.trim().is_empty());
                let started_at = timestamp.as_deref().and_then(parse_timestamp);
                let declared = time.and_then(|t| parse_seconds(&t));
                self.summary.suites.push(Suite {
                    name,
                    file: path.to_string(),
                    timestamp,
                    started_at,
                    counts: Counts::default(),
                });
                self.times.push((declared, 0.0));
                Frame::Suite(self.summary.suites.len() - 1)
            }
            b"testcase" if !in_case => {
                let suite = match parent_suite {
                    Some(i) => i,
                    // A case straight under <testsuites>: give it a suite
                    // named after the file.
                    None => self.implicit_suite(path),
                };
                let mut c = self.spare.take().unwrap_or_default();
                let mut time = std::mem::take(&mut self.time_buf);
                let found = attrs_into(
                    e,
                    [b"classname", b"name", b"time"],
                    [&mut c.classname, &mut c.name, &mut time],
                );
                c.suite = suite;
                c.duration = if found.as_ref().is_ok_and(|f| f[2]) {
                    parse_seconds(&time).unwrap_or(0.0)
                } else {
                    0.0
                };
                self.time_buf = time;
                found?;
                c.failed = None;
                c.errored = None;
                c.skipped = false;
                c.flaky = 0;
                c.reruns = 0;
                *case = Some(c);
                Frame::Case
            }
            name @ (b"failure" | b"error") if in_case => {
                let is_error = name == b"error";
                let [kind, message] = attrs(e, [b"type", b"message"])?;
                let f = Failure {
                    kind,
                    message: truncate(message.unwrap_or_default(), MAX_MESSAGE),
                    detail: String::new(),
                };
                if let Some(c) = case.as_mut() {
                    let slot = if is_error {
                        &mut c.errored
                    } else {
                        &mut c.failed
                    };
                    if slot.is_none() {
                        *slot = Some(f);
                    }
                }
                text.clear();
                Frame::Outcome(is_error)
            }
            name @ (b"failure" | b"error") if matches!(stack.last(), Some(Frame::Suite(_))) => {
                let Some(Frame::Suite(i)) = stack.last() else {
                    return Ok(Frame::Other);
                };
                let [kind, message] = attrs(e, [b"type", b"message"])?;
                let f = Failure {
                    kind,
                    message: truncate(message.unwrap_or_default(), MAX_MESSAGE),
                    detail: String::new(),
                };
                *suite_failure = Some((*i, f, name == b"error"));
                text.clear();
                Frame::SuiteOutcome
            }
            b"skipped" if in_case => {
                if let Some(c) = case.as_mut() {
                    c.skipped = true;
                }
                Frame::Other
            }
            b"flakyFailure" | b"flakyError" if in_case => {
                if let Some(c) = case.as_mut() {
                    c.flaky += 1;
                }
                Frame::Other
            }
            b"rerunFailure" | b"rerunError" if in_case => {
                if let Some(c) = case.as_mut() {
                    c.reruns += 1;
                }
                Frame::Other
            }
            _ => Frame::Other,
        })
    }

    fn close(
        &mut self,
        frame: &Frame,
        case: &mut Option<OpenCase>,
        suite_failure: &mut Option<(usize, Failure, bool)>,
        text: &mut String,
        tests_in_file: &mut u64,
    ) {
        match frame {
            Frame::Outcome(is_error) => {
                let detail = std::mem::take(text);
                if let Some(c) = case.as_mut() {
                    let slot = if *is_error {
                        &mut c.errored
                    } else {
                        &mut c.failed
                    };
                    if let Some(f) = slot.as_mut()
                        && f.detail.is_empty()
                    {
                        f.detail = truncate(detail.trim().to_string(), MAX_MESSAGE);
                    }
                }
            }
            Frame::SuiteOutcome => {
                let detail = std::mem::take(text);
                if let Some((i, mut f, _)) = suite_failure.take() {
                    f.detail = truncate(detail.trim().to_string(), MAX_MESSAGE);
                    let suite_name = self.summary.suites[i].name.clone();
                    let s = &mut self.summary.suites[i].counts;
                    s.tests += 1;
                    s.errored += 1;
                    *tests_in_file += 1;
                    self.list_failure(Case {
                        suite: suite_name,
                        classname: String::new(),
                        name: "(suite)".to_string(),
                        outcome: Outcome::Errored,
                        attempts: None,
                        kind: f.kind,
                        message: f.message,
                        detail: f.detail,
                    });
                }
            }
            Frame::Case => {
                if let Some(mut c) = case.take() {
                    *tests_in_file += 1;
                    self.finish_case(&mut c);
                    // Kept for the next case: its strings' buffers are reused.
                    self.spare = Some(c);
                }
            }
            Frame::Suite(_) | Frame::Other => {}
        }
    }

    fn finish_case(&mut self, c: &mut OpenCase) {
        let outcome = if c.errored.is_some() {
            Outcome::Errored
        } else if c.failed.is_some() {
            Outcome::Failed
        } else if c.skipped {
            Outcome::Skipped
        } else {
            Outcome::Passed
        };
        let suite = &mut self.summary.suites[c.suite];
        let counts = &mut suite.counts;
        counts.tests += 1;
        self.times[c.suite].1 += c.duration;
        match outcome {
            Outcome::Passed => counts.passed += 1,
            Outcome::Skipped => counts.skipped += 1,
            Outcome::Failed => counts.failed += 1,
            Outcome::Errored => counts.errored += 1,
        }
        // Names are copied only for the cases that are listed.
        match outcome {
            Outcome::Failed | Outcome::Errored => {
                let suite_name = suite.name.clone();
                let f = c.errored.take().or(c.failed.take()).unwrap_or(Failure {
                    kind: None,
                    message: String::new(),
                    detail: String::new(),
                });
                self.list_failure(Case {
                    suite: suite_name,
                    classname: c.classname.clone(),
                    name: c.name.clone(),
                    outcome,
                    attempts: (c.reruns > 0).then_some(c.reruns + 1),
                    kind: f.kind,
                    message: f.message,
                    detail: f.detail,
                });
            }
            Outcome::Passed if c.flaky > 0 => {
                counts.flaky += 1;
                let suite_name = suite.name.clone();
                let s = &mut self.summary;
                if s.flaky.len() < MAX_LISTED {
                    s.flaky.push(Case {
                        suite: suite_name,
                        classname: c.classname.clone(),
                        name: c.name.clone(),
                        outcome,
                        attempts: Some(c.flaky + 1),
                        kind: None,
                        message: String::new(),
                        detail: String::new(),
                    });
                } else {
                    s.flaky_not_listed += 1;
                }
            }
            _ => {}
        }
    }

    fn list_failure(&mut self, mut case: Case) {
        if self.summary.failures.len() >= MAX_LISTED {
            self.summary.failures_not_listed += 1;
            return;
        }
        let size = case.message.len() + case.detail.len();
        if self.message_bytes + size > MESSAGE_BUDGET {
            case.message.clear();
            case.detail.clear();
        } else {
            self.message_bytes += size;
        }
        self.summary.failures.push(case);
    }

    fn implicit_suite(&mut self, path: &str) -> usize {
        if let Some(i) = self.implicit {
            return i;
        }
        self.summary.suites.push(Suite {
            name: path.to_string(),
            file: path.to_string(),
            timestamp: None,
            started_at: None,
            counts: Counts::default(),
        });
        self.times.push((None, 0.0));
        self.implicit = Some(self.summary.suites.len() - 1);
        self.summary.suites.len() - 1
    }
}

fn capturing(stack: &[Frame]) -> bool {
    matches!(
        stack.last(),
        Some(Frame::Outcome(_)) | Some(Frame::SuiteOutcome)
    )
}

fn push_capped(out: &mut String, s: &str) {
    if out.len() < MAX_MESSAGE {
        let room = MAX_MESSAGE - out.len();
        out.push_str(&truncate(s.to_string(), room));
    }
}

/// Seconds as tools write them: `1.5`, `1,234.5`, ` 2 `; empty, negative,
/// infinite or NaN durations are no duration.
fn parse_seconds(s: &str) -> Option<f64> {
    let s = s.trim();
    let v = if s.contains(',') {
        s.replace(',', "").parse::<f64>()
    } else {
        s.parse::<f64>()
    };
    v.ok().filter(|v| v.is_finite() && *v >= 0.0)
}

/// The timestamp forms test runners write: RFC 3339 with an offset
/// (minitest, vitest) or a civil time taken as UTC (pytest, Surefire).
fn parse_timestamp(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Some(t.as_millisecond());
    }
    let dt = s.parse::<jiff::civil::DateTime>().ok()?;
    dt.to_zoned(jiff::tz::TimeZone::UTC)
        .ok()
        .map(|z| z.timestamp().as_millisecond())
}
