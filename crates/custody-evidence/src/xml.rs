//! A safe, streaming XML event reader shared by the XML parsers.
//!
//! quick-xml reads UTF-8; this module puts in front of it what real files
//! need and hostile ones must not get:
//! - the encoding the BOM or the XML declaration names is decoded strictly
//!   (`encoding_rs`, no replacement characters): bytes that do not belong to
//!   that encoding are rejected with their line and column;
//! - DOCTYPEs with an external identifier or an internal subset are refused,
//!   so nothing is ever fetched and no entity is ever declared, let alone
//!   expanded (the five predefined entities and character references are
//!   all that resolve);
//! - nesting depth and document size are bounded;
//! - every error carries a line and column.

use std::collections::VecDeque;
use std::io::{self, BufRead, Read};

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};
use quick_xml::events::attributes::Attribute;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::QName;

use crate::error::{ParseError, Position};
use crate::limits::Limits;

/// How much of the head of a document is read to find its encoding.
const SNIFF: usize = 1024;

/// The byte layers under quick-xml: the sniffed head put back in front of
/// the rest, decoded to UTF-8, counted.
type Source<R> = Tracked<Transcode<io::Chain<io::Cursor<Vec<u8>>, R>>>;

pub(crate) struct XmlReader<R: BufRead> {
    reader: quick_xml::Reader<Source<R>>,
    buf: Vec<u8>,
    depth: usize,
    seen_root: bool,
    limits: Limits,
}

impl<R: BufRead> XmlReader<R> {
    pub fn new(mut input: R, limits: Limits) -> Result<Self, ParseError> {
        let mut head = Vec::with_capacity(SNIFF);
        (&mut input)
            .take(SNIFF as u64)
            .read_to_end(&mut head)
            .map_err(|e| ParseError::new(format!("unreadable: {e}")))?;
        let (encoding, bom) = detect_encoding(&head)?;
        head.drain(..bom);
        let source = Transcode::new(io::Cursor::new(head).chain(input), encoding);
        let tracked = Tracked::new(source, limits.max_bytes);
        let mut reader = quick_xml::Reader::from_reader(tracked);
        let config = reader.config_mut();
        config.check_end_names = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        Ok(XmlReader {
            reader,
            buf: Vec::with_capacity(16 << 10),
            depth: 0,
            seen_root: false,
            limits,
        })
    }

    /// The next event, checked. `Event::Eof` only after a complete document.
    pub fn next(&mut self) -> Result<Event<'_>, ParseError> {
        self.buf.clear();
        self.reader.get_mut().mark();
        let start = self.reader.buffer_position();
        let event = match self.reader.read_event_into(&mut self.buf) {
            Ok(e) => e,
            Err(e) => {
                let offset = self.reader.error_position();
                let tracked = self.reader.get_ref();
                return Err(match tracked.take_failure() {
                    Some(f) => f,
                    None => ParseError::at(tracked.position_of(offset), describe(&e)),
                });
            }
        };
        match &event {
            Event::Start(_) => {
                self.depth += 1;
                self.seen_root = true;
                if self.depth > self.limits.max_depth {
                    let pos = self.reader.get_ref().position();
                    return Err(ParseError::at(
                        pos,
                        format!("elements nested deeper than {}", self.limits.max_depth),
                    ));
                }
            }
            Event::Empty(_) => self.seen_root = true,
            Event::End(_) => self.depth = self.depth.saturating_sub(1),
            Event::DocType(d) if doctype_is_unsafe(d.as_ref()) => {
                let pos = self.reader.get_ref().position_of(start);
                return Err(ParseError::at(
                    pos,
                    "DOCTYPE with an external identifier or internal subset refused: \
                     entities are never declared, expanded or fetched",
                ));
            }
            Event::Eof => {
                let pos = self.reader.get_ref().position();
                if self.depth > 0 {
                    return Err(ParseError::at(
                        pos,
                        "truncated document: elements are still open at the end",
                    ));
                }
                if !self.seen_root {
                    return Err(ParseError::at(pos, "empty document: no root element"));
                }
            }
            _ => {}
        }
        Ok(event)
    }

    /// Where the last event ended.
    pub fn position(&self) -> Position {
        self.reader.get_ref().position()
    }

    pub fn error(&self, message: impl Into<String>) -> ParseError {
        ParseError::at(self.position(), message)
    }
}

/// The value of attribute `name`, entity references resolved.
pub(crate) fn attr(e: &BytesStart<'_>, name: &[u8]) -> Result<Option<String>, String> {
    let [v] = attrs(e, [name])?;
    Ok(v)
}

/// The values of several attributes in one pass over the element (the
/// hot path: one pass per element, not one per attribute wanted).
pub(crate) fn attrs<const N: usize>(
    e: &BytesStart<'_>,
    names: [&[u8]; N],
) -> Result<[Option<String>; N], String> {
    let mut out: [Option<String>; N] = std::array::from_fn(|_| None);
    each_attr(e, names, |i, v| {
        out[i] = Some(v.to_owned());
    })?;
    Ok(out)
}

/// Like [`attrs`], into reused buffers (cleared first); says which were
/// present.
pub(crate) fn attrs_into<const N: usize>(
    e: &BytesStart<'_>,
    names: [&[u8]; N],
    out: [&mut String; N],
) -> Result<[bool; N], String> {
    let mut out = out;
    for o in out.iter_mut() {
        o.clear();
    }
    each_attr(e, names, |i, v| out[i].push_str(v))
}

/// Calls `found(i, value)` for each attribute named `names[i]`, its value
/// normalised as XML 1.0 §3.3.3 says (references resolved, tabs and line
/// breaks as spaces).
fn each_attr<const N: usize>(
    e: &BytesStart<'_>,
    names: [&[u8]; N],
    mut found: impl FnMut(usize, &str),
) -> Result<[bool; N], String> {
    let mut seen = [false; N];
    let mut raw = RawAttributes(e.attributes_raw());
    while let Some(a) = raw.next_attribute()? {
        let (key, value) = (a.key, a.value);
        let local = key.rsplit(|b| *b == b':').next().unwrap_or(key);
        let Some(i) = names.iter().position(|n| *n == local) else {
            continue;
        };
        let name = || String::from_utf8_lossy(names[i]);
        // Only the attributes read can change a result, so they are the
        // ones checked for duplicates.
        if seen[i] {
            return Err(format!("duplicate attribute {}", name()));
        }
        seen[i] = true;
        if a.plain {
            let v = a
                .value_str()
                .map_err(|e| format!("attribute {}: {e}", name()))?;
            found(i, v);
        } else {
            let a = Attribute {
                key: QName(key),
                value: value.into(),
            };
            let v = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| format!("attribute {}: {e}", name()))?;
            found(i, &v);
        }
    }
    Ok(seen)
}

/// The attributes of a start tag, split by hand: quick-xml's iterator was
/// a quarter of the time spent on large JUnit reports, and the grammar
/// (XML 1.0 §3.1: `S Name S? '=' S? AttValue`, repeated) is small.
struct RawAttributes<'a>(&'a [u8]);

const NEEDS_NORMALISING: u8 = 1;
const FORBIDDEN: u8 = 2;
const NON_ASCII: u8 = 4;

/// What each byte of an attribute value asks for. A table lookup per byte
/// is several times cheaper than comparing each byte with five values,
/// and this loop sees almost every byte of a large JUnit report.
static VALUE_CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'&' as usize] = NEEDS_NORMALISING;
    t[b'\t' as usize] = NEEDS_NORMALISING;
    t[b'\n' as usize] = NEEDS_NORMALISING;
    t[b'\r' as usize] = NEEDS_NORMALISING;
    t[b'<' as usize] = FORBIDDEN;
    let mut b = 0x80;
    while b < 256 {
        t[b] = NON_ASCII;
        b += 1;
    }
    t
};

struct RawAttribute<'a> {
    key: &'a [u8],
    value: &'a [u8],
    /// No reference, tab or line break: the value is its own normal form.
    plain: bool,
    ascii: bool,
}

impl<'a> RawAttribute<'a> {
    fn value_str(&self) -> Result<&'a str, std::str::Utf8Error> {
        if self.ascii {
            // SAFETY: every byte is below 0x80 (checked while the value was
            // scanned), and ASCII is UTF-8. This skips a second pass over
            // most of a large report's bytes.
            Ok(unsafe { std::str::from_utf8_unchecked(self.value) })
        } else {
            std::str::from_utf8(self.value)
        }
    }
}

impl<'a> RawAttributes<'a> {
    fn next_attribute(&mut self) -> Result<Option<RawAttribute<'a>>, String> {
        let is_space = |b: &u8| matches!(b, b' ' | b'\t' | b'\r' | b'\n');
        let bytes = self.0;
        let Some(start) = bytes.iter().position(|b| !is_space(b)) else {
            self.0 = &[];
            return Ok(None);
        };
        if start == 0 {
            return Err(format!(
                "malformed attribute: expected white space before \"{}\"",
                String::from_utf8_lossy(&bytes[..bytes.len().min(32)])
            ));
        }
        let rest = &bytes[start..];
        let name_len = rest
            .iter()
            .position(|b| is_space(b) || *b == b'=')
            .unwrap_or(rest.len());
        let key = &rest[..name_len];
        let named = || String::from_utf8_lossy(key);
        if key.is_empty()
            || key
                .iter()
                .any(|b| matches!(b, b'"' | b'\'' | b'<' | b'>' | b'&'))
        {
            return Err(format!("malformed attribute name \"{}\"", named()));
        }
        let after = &rest[name_len..];
        let eq = after.iter().position(|b| !is_space(b));
        let Some(eq) = eq.filter(|i| after[*i] == b'=') else {
            return Err(format!("malformed attribute: {} has no value", named()));
        };
        let after = &after[eq + 1..];
        let q = after.iter().position(|b| !is_space(b));
        let Some(q) = q.filter(|i| matches!(after[*i], b'"' | b'\'')) else {
            return Err(format!(
                "malformed attribute: the value of {} is not quoted",
                named()
            ));
        };
        let quote = after[q];
        let value_and_rest = &after[q + 1..];
        let Some(close) = memchr::memchr(quote, value_and_rest) else {
            return Err(format!(
                "malformed attribute: the value of {} is not closed",
                named()
            ));
        };
        let value = &value_and_rest[..close];
        let class = value
            .iter()
            .fold(0u8, |acc, &b| acc | VALUE_CLASS[b as usize]);
        if class & FORBIDDEN != 0 {
            return Err(format!(
                "malformed attribute: '<' in the value of {}",
                named()
            ));
        }
        let plain = class & NEEDS_NORMALISING == 0;
        let ascii = class & NON_ASCII == 0;
        self.0 = &value_and_rest[close + 1..];
        Ok(Some(RawAttribute {
            key,
            value,
            plain,
            ascii,
        }))
    }
}

/// Appends the text of an entity or character reference; only the five
/// predefined entities exist, as no DOCTYPE may declare more.
pub(crate) fn push_ref(out: &mut String, r: &BytesRef<'_>) -> Result<(), String> {
    if let Some(c) = r
        .resolve_char_ref()
        .map_err(|e| format!("bad character reference: {e}"))?
    {
        out.push(c);
        return Ok(());
    }
    let c = match r.as_ref() {
        b"lt" => '<',
        b"gt" => '>',
        b"amp" => '&',
        b"apos" => '\'',
        b"quot" => '"',
        other => {
            return Err(format!(
                "undefined entity &{};",
                String::from_utf8_lossy(other)
            ));
        }
    };
    out.push(c);
    Ok(())
}

fn describe(e: &quick_xml::Error) -> String {
    match e {
        quick_xml::Error::Io(io) => io.to_string(),
        quick_xml::Error::Syntax(s) => format!("malformed XML: {s}"),
        quick_xml::Error::IllFormed(s) => format!("malformed XML: {s}"),
        other => format!("malformed XML: {other}"),
    }
}

/// `<!DOCTYPE root>` is harmless; `SYSTEM`, `PUBLIC` or `[...]` is how
/// external entities and entity bombs get in.
fn doctype_is_unsafe(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    let upper = text.to_ascii_uppercase();
    upper.contains('[') || upper.contains("SYSTEM") || upper.contains("PUBLIC")
}

/// The document's encoding and the length of its byte order mark.
fn detect_encoding(head: &[u8]) -> Result<(&'static Encoding, usize), ParseError> {
    if let Some((enc, bom)) = Encoding::for_bom(head) {
        if enc == UTF_8
            && let Some(label) = declared_encoding(&head[bom..])
        {
            let declared = Encoding::for_label(label.as_bytes());
            if declared != Some(UTF_8) {
                return Err(ParseError::at(
                    Position { line: 1, column: 1 },
                    format!(
                        "the document starts with a UTF-8 byte order mark but declares encoding \"{label}\""
                    ),
                ));
            }
        }
        return Ok((enc, bom));
    }
    // UTF-16 without a byte order mark, recognised by "<?" (XML 1.0 F.1).
    if head.starts_with(&[0x3C, 0x00, 0x3F, 0x00]) {
        return Ok((UTF_16LE, 0));
    }
    if head.starts_with(&[0x00, 0x3C, 0x00, 0x3F]) {
        return Ok((UTF_16BE, 0));
    }
    let Some(label) = declared_encoding(head) else {
        return Ok((UTF_8, 0));
    };
    match Encoding::for_label(label.as_bytes()) {
        Some(enc) if enc == UTF_16LE || enc == UTF_16BE => Err(ParseError::at(
            Position { line: 1, column: 1 },
            format!("the document declares encoding \"{label}\" but its bytes are not UTF-16"),
        )),
        Some(enc) => Ok((enc, 0)),
        None => Err(ParseError::at(
            Position { line: 1, column: 1 },
            format!("unsupported encoding \"{label}\""),
        )),
    }
}

/// The `encoding` of an ASCII-compatible XML declaration, if any.
fn declared_encoding(head: &[u8]) -> Option<String> {
    let rest = head.strip_prefix(b"<?xml")?;
    let end = memchr::memmem::find(rest, b"?>")?;
    let decl = std::str::from_utf8(&rest[..end]).ok()?;
    let at = decl.find("encoding")?;
    let after = decl[at + "encoding".len()..].trim_start();
    let after = after.strip_prefix('=')?.trim_start();
    let quote = after.chars().next().filter(|c| *c == '"' || *c == '\'')?;
    let value = &after[1..];
    let close = value.find(quote)?;
    Some(value[..close].to_string())
}

/// Decodes a byte stream from `encoding` to UTF-8, refusing malformed
/// input. UTF-8 input goes through it too: that is the validation.
struct Transcode<R> {
    inner: R,
    decoder: encoding_rs::Decoder,
    encoding: &'static Encoding,
    out: Vec<u8>,
    pos: usize,
    done: bool,
    /// UTF-8 only: how many bytes at the front of `inner`'s buffer are
    /// checked and not yet consumed. UTF-8 passes through without a copy;
    /// `out` then only holds a character cut by the end of a chunk.
    passed: usize,
    /// Bad bytes follow what `out` holds: refuse them once it is consumed.
    malformed_next: bool,
    /// Newlines decoded so far and the offset just after the last one, for
    /// the position of an encoding error.
    lines: u64,
    produced: u64,
    line_start: u64,
}

impl<R: BufRead> Transcode<R> {
    fn new(inner: R, encoding: &'static Encoding) -> Self {
        Transcode {
            inner,
            decoder: encoding.new_decoder_without_bom_handling(),
            encoding,
            out: Vec::new(),
            pos: 0,
            done: false,
            passed: 0,
            malformed_next: false,
            lines: 0,
            produced: 0,
            line_start: 0,
        }
    }

    fn count_lines(&mut self, chunk_start: usize, chunk_end: usize) {
        for i in memchr::memchr_iter(b'\n', &self.out[chunk_start..chunk_end]) {
            self.lines += 1;
            self.line_start = self.produced + (i as u64) + 1;
        }
        self.produced += (chunk_end - chunk_start) as u64;
    }

    fn refill(&mut self) -> io::Result<()> {
        self.out.clear();
        self.pos = 0;
        if self.malformed_next {
            return Err(self.malformed());
        }
        while self.out.is_empty() && !self.done {
            let src = self.inner.fill_buf()?;
            let last = src.is_empty();
            let room = self
                .decoder
                .max_utf8_buffer_length_without_replacement(src.len())
                .unwrap_or(src.len() * 3 + 16)
                .max(16);
            self.out.resize(room, 0);
            let (result, read, written) =
                self.decoder
                    .decode_to_utf8_without_replacement(src, &mut self.out, last);
            self.inner.consume(read);
            self.count_lines(0, written);
            self.out.truncate(written);
            match result {
                encoding_rs::DecoderResult::InputEmpty => {
                    if last {
                        self.done = true;
                    }
                }
                encoding_rs::DecoderResult::OutputFull => {}
                // What was decoded before the bad bytes is passed on first,
                // so that an earlier error in the document is the one
                // reported, however the input happens to be chunked.
                encoding_rs::DecoderResult::Malformed(..) if written > 0 => {
                    self.malformed_next = true;
                }
                encoding_rs::DecoderResult::Malformed(..) => return Err(self.malformed()),
            }
        }
        Ok(())
    }
}

impl<R: BufRead> Transcode<R> {
    /// UTF-8 needs no decoding, only checking, so it is checked where it
    /// lies in `inner`'s buffer and passed on without a copy. A chunk is
    /// checked only once everything before it was consumed, so an error
    /// lies exactly at the consumer's position, which [`Tracked`] fills in.
    fn fill_utf8(&mut self) -> io::Result<&[u8]> {
        if self.pos < self.out.len() {
            return Ok(&self.out[self.pos..]);
        }
        if self.passed == 0 {
            let src = self.inner.fill_buf()?;
            if src.is_empty() {
                return Ok(&[]);
            }
            let valid = match std::str::from_utf8(src) {
                Ok(_) => src.len(),
                Err(e) => e.valid_up_to(),
            };
            let cut =
                valid == 0 && std::str::from_utf8(src).is_err_and(|e| e.error_len().is_none());
            if valid == 0 && !cut {
                return Err(malformed_at_consumer(self.encoding));
            }
            if cut {
                return self.join_cut_character();
            }
            self.passed = valid;
        }
        let passed = self.passed;
        Ok(&self.inner.fill_buf()?[..passed])
    }

    /// A character begun at the very end of `inner`'s buffer: its bytes are
    /// moved to `out` and completed from what follows.
    fn join_cut_character(&mut self) -> io::Result<&[u8]> {
        self.out.clear();
        self.pos = 0;
        let src = self.inner.fill_buf()?;
        self.out.extend_from_slice(src);
        let n = src.len();
        self.inner.consume(n);
        loop {
            match std::str::from_utf8(&self.out) {
                Ok(_) => break,
                Err(e) if e.error_len().is_none() => {}
                Err(_) => return Err(malformed_at_consumer(self.encoding)),
            }
            let more = self.inner.fill_buf()?;
            let Some(&b) = more.first() else {
                return Err(malformed_at_consumer(self.encoding));
            };
            self.out.push(b);
            self.inner.consume(1);
        }
        Ok(&self.out[..])
    }

    fn malformed(&self) -> io::Error {
        let pos = Position {
            line: self.lines + 1,
            column: self.produced - self.line_start + 1,
        };
        let mut e = malformed_at_consumer(self.encoding);
        if let Some(f) = e.get_mut().and_then(|f| f.downcast_mut::<Failure>()) {
            f.0.position = Some(pos);
        }
        e
    }
}

/// Bad bytes right after everything passed on so far: the layer above,
/// which has consumed all of that, knows the position.
fn malformed_at_consumer(encoding: &'static Encoding) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        Failure(ParseError::new(format!(
            "bytes that are not valid {} (the document's declared or detected encoding)",
            encoding.name()
        ))),
    )
}

impl<R: BufRead> Read for Transcode<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Transcode<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.encoding == UTF_8 {
            return self.fill_utf8();
        }
        if self.pos >= self.out.len() && !self.done {
            self.refill()?;
        }
        Ok(&self.out[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        if self.pos < self.out.len() {
            self.pos = (self.pos + amt).min(self.out.len());
        } else if self.encoding == UTF_8 {
            let amt = amt.min(self.passed);
            self.passed -= amt;
            self.inner.consume(amt);
        }
    }
}

/// A parse failure smuggled through `io::Error` from the byte layers.
#[derive(Debug)]
struct Failure(ParseError);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.message.fmt(f)
    }
}

impl std::error::Error for Failure {}

/// Counts what quick-xml consumes, to turn byte offsets into lines and
/// columns without keeping the document, and enforces the size bound.
///
/// Newlines are found once per buffer that `inner` hands out (one
/// vectorised pass over 64 KiB), not once per `consume`: quick-xml consumes
/// a few dozen bytes at a time, and searching each of those slices was a
/// tenth of the time spent on a large JUnit report.
struct Tracked<R> {
    inner: R,
    consumed: u64,
    max_bytes: u64,
    /// Newlines before `window`'s first entry, and the offset just after
    /// the last of them.
    lines_before: u64,
    line_start_before: u64,
    /// Offsets of the newlines seen from the start of the current event up
    /// to `scanned` (which may run ahead of `consumed`).
    window: VecDeque<u64>,
    scanned: u64,
    failure: std::cell::RefCell<Option<ParseError>>,
}

const WINDOW_CAP: usize = 1 << 16;

impl<R: BufRead> Tracked<R> {
    fn new(inner: R, max_bytes: u64) -> Self {
        Tracked {
            inner,
            consumed: 0,
            max_bytes,
            lines_before: 0,
            line_start_before: 0,
            window: VecDeque::new(),
            scanned: 0,
            failure: std::cell::RefCell::new(None),
        }
    }

    /// Forgets the newlines before the current position: an error is only
    /// ever placed at or after the start of the event being read.
    fn mark(&mut self) {
        while let Some(&nl) = self.window.front() {
            if nl >= self.consumed {
                break;
            }
            self.window.pop_front();
            self.lines_before += 1;
            self.line_start_before = nl + 1;
        }
    }

    fn position(&self) -> Position {
        self.position_of(self.consumed)
    }

    /// The position of `offset`, which lies in the current event.
    fn position_of(&self, offset: u64) -> Position {
        let offset = offset.min(self.consumed);
        let before = self.window.partition_point(|nl| *nl < offset);
        let line_start = match before {
            0 => self.line_start_before,
            n => self.window[n - 1] + 1,
        };
        Position {
            line: self.lines_before + before as u64 + 1,
            column: offset.saturating_sub(line_start) + 1,
        }
    }

    /// The parse failure behind an I/O error, if a byte layer raised one.
    fn take_failure(&self) -> Option<ParseError> {
        self.failure.borrow_mut().take()
    }
}

impl<R: BufRead> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

impl<R: BufRead> BufRead for Tracked<R> {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.consumed > self.max_bytes {
            let e = ParseError::at(
                self.position(),
                format!("document larger than {} bytes", self.max_bytes),
            );
            *self.failure.borrow_mut() = Some(e.clone());
            return Err(io::Error::new(io::ErrorKind::InvalidData, Failure(e)));
        }
        let here = self.position();
        match self.inner.fill_buf() {
            Ok(b) => {
                let end = self.consumed + b.len() as u64;
                if end > self.scanned {
                    let from = (self.scanned.saturating_sub(self.consumed) as usize).min(b.len());
                    self.scanned = self.scanned.max(self.consumed);
                    for i in memchr::memchr_iter(b'\n', &b[from..]) {
                        if self.window.len() == WINDOW_CAP {
                            // A huge text node: forget the oldest half;
                            // errors are reported near the end of an event.
                            for nl in self.window.drain(..WINDOW_CAP / 2) {
                                self.lines_before += 1;
                                self.line_start_before = nl + 1;
                            }
                        }
                        self.window.push_back(self.scanned + i as u64);
                    }
                    self.scanned = end;
                }
                Ok(b)
            }
            Err(e) => {
                let mut failure = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<Failure>())
                    .map(|f| f.0.clone())
                    .unwrap_or_else(|| ParseError::new(format!("unreadable: {e}")));
                if failure.position.is_none() {
                    failure.position = Some(here);
                }
                *self.failure.borrow_mut() = Some(failure);
                Err(e)
            }
        }
    }

    fn consume(&mut self, amt: usize) {
        self.consumed += amt as u64;
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads events until the first error; a document without one fails.
    fn first_error<R: BufRead>(r: &mut XmlReader<R>) -> ParseError {
        loop {
            match r.next() {
                Ok(Event::Eof) => panic!("no error"),
                Ok(_) => {}
                Err(e) => return e,
            }
        }
    }

    fn events(doc: &[u8]) -> Result<Vec<String>, ParseError> {
        let mut r = XmlReader::new(doc, Limits::default())?;
        let mut out = vec![];
        loop {
            match r.next()? {
                Event::Eof => return Ok(out),
                Event::Start(e) | Event::Empty(e) => {
                    out.push(String::from_utf8_lossy(e.local_name().as_ref()).into_owned())
                }
                Event::Text(t) => out.push(t.decode().map_err(|e| r_err(&e))?.into_owned()),
                _ => {}
            }
        }
    }

    fn r_err(e: &dyn std::fmt::Display) -> ParseError {
        ParseError::new(e.to_string())
    }

    #[test]
    fn iso_8859_15_is_decoded() {
        let mut doc = b"<?xml version=\"1.0\" encoding=\"ISO-8859-15\"?><a>caf".to_vec();
        doc.push(0xE9); // é
        doc.extend_from_slice(b" \xA4</a>"); // € in 8859-15
        assert_eq!(events(&doc).unwrap(), vec!["a", "café €"]);
    }

    #[test]
    fn utf16_with_and_without_bom() {
        let text = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><a>zürich</a>";
        let le: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_le_bytes()).collect();
        let be: Vec<u8> = text.encode_utf16().flat_map(|u| u.to_be_bytes()).collect();
        let mut le_bom = vec![0xFF, 0xFE];
        le_bom.extend_from_slice(&le);
        for doc in [le, be, le_bom] {
            assert_eq!(events(&doc).unwrap(), vec!["a", "zürich"]);
        }
    }

    #[test]
    fn bytes_not_in_the_declared_encoding_are_refused_with_their_position() {
        let doc = b"<a>\n  <b>ok</b>\n  <c>\xFF</c></a>";
        let e = events(doc).unwrap_err();
        assert_eq!(e.position, Some(Position { line: 3, column: 6 }));
        assert!(e.message.contains("UTF-8"), "{e}");
    }

    #[test]
    fn utf8_characters_cut_by_chunk_boundaries_are_joined() {
        // Past the sniffed head, read one byte at a time, so every
        // multi-byte character is cut.
        let (name, text) = ("é€😀".repeat(200), "ü".repeat(300));
        let doc = format!("<a n=\"{name}\">{text}</a>");
        let input = io::BufReader::with_capacity(1, doc.as_bytes());
        let mut r = XmlReader::new(input, Limits::default()).unwrap();
        let Event::Start(e) = r.next().unwrap() else {
            panic!()
        };
        assert_eq!(attr(&e, b"n").unwrap(), Some(name));
        let Event::Text(t) = r.next().unwrap() else {
            panic!()
        };
        assert_eq!(t.decode().unwrap(), text);

        // A cut character completed by a byte that does not belong to it is
        // refused where it starts, however the bytes were chunked.
        let mut doc = format!("<a>{}\n  éé", "x".repeat(1100)).into_bytes();
        doc.extend_from_slice(b"\xC3(</a>");
        for cap in [1, 2, 3, 7, 64 << 10] {
            let mut r = XmlReader::new(
                io::BufReader::with_capacity(cap, &doc[..]),
                Limits::default(),
            )
            .unwrap();
            let e = first_error(&mut r);
            assert_eq!(
                e.position,
                Some(Position { line: 2, column: 7 }),
                "capacity {cap}: {e}"
            );
        }

        // A character left unfinished at the end is not UTF-8.
        let e = events(b"<a>\n\xC3").unwrap_err();
        assert_eq!(e.position, Some(Position { line: 2, column: 1 }));
        assert!(e.message.contains("UTF-8"), "{e}");
    }

    #[test]
    fn the_first_error_in_the_document_is_reported_however_it_is_chunked() {
        // UTF-16LE, all in one chunk: a tag mismatch early on, bytes that
        // are not UTF-16 later.
        let mut doc = vec![0xFF, 0xFE];
        for u in "<a></b>"
            .encode_utf16()
            .chain("x".repeat(100).encode_utf16())
        {
            doc.extend_from_slice(&u.to_le_bytes());
        }
        doc.extend_from_slice(&[0x00, 0xD8, 0x61, 0x00]); // an unpaired surrogate
        for cap in [1, 3, 64 << 10] {
            let input = io::BufReader::with_capacity(cap, &doc[..]);
            let mut r = XmlReader::new(input, Limits::default()).unwrap();
            let e = first_error(&mut r);
            assert!(e.message.contains("malformed XML"), "capacity {cap}: {e}");
        }
    }

    #[test]
    fn declared_utf16_on_ascii_bytes_is_refused() {
        let e = events(b"<?xml version=\"1.0\" encoding=\"UTF-16\"?><a/>").unwrap_err();
        assert!(e.message.contains("not UTF-16"), "{e}");
    }

    #[test]
    fn unknown_encodings_are_refused() {
        let e = events(b"<?xml version=\"1.0\" encoding=\"EBCDIC-XYZ\"?><a/>").unwrap_err();
        assert!(e.message.contains("unsupported encoding"), "{e}");
    }

    #[test]
    fn doctypes_that_could_fetch_or_expand_are_refused() {
        let xxe = b"<?xml version=\"1.0\"?><!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><a>&x;</a>";
        assert!(events(xxe).unwrap_err().message.contains("DOCTYPE"));
        let laughs = b"<!DOCTYPE a [<!ENTITY l \"lol\"><!ENTITY l2 \"&l;&l;&l;\">]><a>&l2;</a>";
        assert!(events(laughs).unwrap_err().message.contains("DOCTYPE"));
        let public = b"<!DOCTYPE a PUBLIC \"-//x//EN\" \"http://example.com/a.dtd\"><a/>";
        assert!(events(public).unwrap_err().message.contains("DOCTYPE"));
        assert_eq!(events(b"<!DOCTYPE a><a/>").unwrap(), vec!["a"]);
        let at = events(b"<?xml version=\"1.0\"?>\n<!DOCTYPE a [\n<!ENTITY x \"y\">\n]>\n<a/>")
            .unwrap_err();
        assert_eq!(at.position, Some(Position { line: 2, column: 1 }), "{at}");
    }

    #[test]
    fn truncated_and_empty_documents_are_refused() {
        let e = events(b"<a>\n<b>text").unwrap_err();
        assert!(
            e.message.contains("truncated") || e.message.contains("malformed"),
            "{e}"
        );
        assert!(events(b"").unwrap_err().message.contains("empty"));
        assert!(events(b"   ").unwrap_err().message.contains("empty"));
    }

    #[test]
    fn depth_is_bounded() {
        let doc = "<a>".repeat(300) + &"</a>".repeat(300);
        let e = events(doc.as_bytes()).unwrap_err();
        assert!(e.message.contains("nested deeper"), "{e}");
    }

    #[test]
    fn size_is_bounded() {
        let doc = format!("<a>{}</a>", "x".repeat(100_000));
        let limits = Limits {
            max_bytes: 1000,
            ..Limits::default()
        };
        let mut r = XmlReader::new(doc.as_bytes(), limits).unwrap();
        let e = loop {
            match r.next() {
                Err(e) => break e,
                Ok(Event::Eof) => panic!("limit not enforced"),
                Ok(_) => {}
            }
        };
        assert!(e.message.contains("larger than"), "{e}");
    }

    #[test]
    fn attribute_values_are_normalised_only_where_needed() {
        let doc = b"<a plain=\"as is\" refs=\"a &amp; b&#10;c\" ws=\"t\tu\nv\"/>";
        let mut r = XmlReader::new(&doc[..], Limits::default()).unwrap();
        let Event::Empty(e) = r.next().unwrap() else {
            panic!()
        };
        let got = attrs(&e, [b"plain", b"refs", b"ws", b"absent"]).unwrap();
        assert_eq!(
            got,
            [
                Some("as is".to_string()),
                Some("a & b\nc".to_string()),
                Some("t u v".to_string()),
                None
            ]
        );
    }

    #[test]
    fn malformed_attributes_are_refused() {
        for (doc, says) in [
            (&b"<a x=\"1\"y=\"2\"/>"[..], "white space"),
            (b"<a x=1/>", "not quoted"),
            (b"<a x/>", "no value"),
            (b"<a x=\"a<b\"/>", "'<'"),
            (b"<a =\"1\"/>", "attribute name"),
        ] {
            let mut r = XmlReader::new(doc, Limits::default()).unwrap();
            let got = match r.next() {
                Ok(Event::Empty(e)) => attrs(&e, [b"x"]).unwrap_err(),
                other => panic!("{other:?}"),
            };
            assert!(
                got.contains(says),
                "{}: {got}",
                String::from_utf8_lossy(doc)
            );
        }
        let mut r = XmlReader::new(&b"<a p:x = 'v' y=\"w\" />"[..], Limits::default()).unwrap();
        let Ok(Event::Empty(e)) = r.next() else {
            panic!()
        };
        let got = attrs(&e, [b"x", b"y"]).unwrap();
        assert_eq!(got, [Some("v".to_string()), Some("w".to_string())]);
    }

    #[test]
    fn duplicate_attributes_that_are_read_are_refused() {
        let doc = b"<a x=\"1\" x=\"2\"/>";
        let mut r = XmlReader::new(&doc[..], Limits::default()).unwrap();
        let Event::Empty(e) = r.next().unwrap() else {
            panic!()
        };
        assert!(attrs(&e, [b"x"]).unwrap_err().contains("duplicate"));
        let mut s = String::new();
        assert!(
            attrs_into(&e, [b"x"], [&mut s])
                .unwrap_err()
                .contains("duplicate")
        );
    }

    #[test]
    fn positions_hold_across_chunks_and_long_text() {
        // Many lines over many 64 KiB chunks, then a bad closing tag.
        let mut doc = String::from("<a>\n");
        for i in 0..20_000 {
            doc.push_str(&format!("  <b n=\"{i}\"/>\n"));
        }
        doc.push_str(&"text\n".repeat(200_000));
        doc.push_str("  <c></d></a>");
        let input = io::BufReader::with_capacity(64 << 10, doc.as_bytes());
        let mut r = XmlReader::new(input, Limits::default()).unwrap();
        let e = first_error(&mut r);
        let line = 1 + 20_000 + 200_000 + 1;
        assert_eq!(e.position.map(|p| p.line), Some(line), "{e}");
    }

    #[test]
    fn mismatched_tags_report_their_line() {
        let e = events(b"<a>\n<b>\n</c></a>").unwrap_err();
        assert_eq!(e.position.map(|p| p.line), Some(3), "{e}");
    }
}
