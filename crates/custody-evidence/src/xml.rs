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

use std::io::{self, BufRead, Read};

use encoding_rs::{Encoding, UTF_8, UTF_16BE, UTF_16LE};
use quick_xml::events::{BytesRef, BytesStart, Event};

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
    for a in e.attributes() {
        let a = a.map_err(|e| format!("malformed attribute: {e}"))?;
        if a.key.local_name().as_ref() == name {
            return a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map(|v| Some(v.into_owned()))
                .map_err(|e| format!("attribute {}: {e}", String::from_utf8_lossy(name)));
        }
    }
    Ok(None)
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
                encoding_rs::DecoderResult::Malformed(..) => {
                    let pos = Position {
                        line: self.lines + 1,
                        column: self.produced - self.line_start + 1,
                    };
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        Failure(ParseError::at(
                            pos,
                            format!(
                                "bytes that are not valid {} (the document's declared or detected encoding)",
                                self.encoding.name()
                            ),
                        )),
                    ));
                }
            }
        }
        Ok(())
    }
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
        if self.pos >= self.out.len() && !self.done {
            self.refill()?;
        }
        Ok(&self.out[self.pos..])
    }

    fn consume(&mut self, amt: usize) {
        self.pos = (self.pos + amt).min(self.out.len());
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
struct Tracked<R> {
    inner: R,
    consumed: u64,
    max_bytes: u64,
    lines: u64,
    /// Offset just after the last newline consumed.
    line_start: u64,
    /// State at the start of the current event, and the newlines consumed
    /// since, so that an error inside the event can be placed exactly.
    mark_lines: u64,
    mark_line_start: u64,
    recent: Vec<u64>,
    failure: std::cell::RefCell<Option<ParseError>>,
}

const RECENT_CAP: usize = 1 << 16;

impl<R: BufRead> Tracked<R> {
    fn new(inner: R, max_bytes: u64) -> Self {
        Tracked {
            inner,
            consumed: 0,
            max_bytes,
            lines: 0,
            line_start: 0,
            mark_lines: 0,
            mark_line_start: 0,
            recent: Vec::new(),
            failure: std::cell::RefCell::new(None),
        }
    }

    fn mark(&mut self) {
        self.mark_lines = self.lines;
        self.mark_line_start = self.line_start;
        self.recent.clear();
    }

    fn position(&self) -> Position {
        Position {
            line: self.lines + 1,
            column: self.consumed - self.line_start + 1,
        }
    }

    /// The position of `offset`, which lies in the current event.
    fn position_of(&self, offset: u64) -> Position {
        let offset = offset.min(self.consumed);
        let before = self.recent.partition_point(|nl| *nl < offset);
        let dropped = self.lines - self.mark_lines - self.recent.len() as u64;
        let line_start = if before > 0 {
            self.recent[before - 1] + 1
        } else {
            self.mark_line_start
        };
        Position {
            line: self.mark_lines + dropped + before as u64 + 1,
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
        match self.inner.fill_buf() {
            Ok(b) => Ok(b),
            Err(e) => {
                let failure = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<Failure>())
                    .map(|f| f.0.clone())
                    .unwrap_or_else(|| ParseError::new(format!("unreadable: {e}")));
                *self.failure.borrow_mut() = Some(failure);
                Err(e)
            }
        }
    }

    fn consume(&mut self, amt: usize) {
        if let Ok(b) = self.inner.fill_buf() {
            let amt = amt.min(b.len());
            for i in memchr::memchr_iter(b'\n', &b[..amt]) {
                let at = self.consumed + i as u64;
                self.lines += 1;
                self.line_start = at + 1;
                if self.recent.len() == RECENT_CAP {
                    // A huge text node: forget the oldest half; errors are
                    // reported near the end of an event anyway.
                    self.recent.drain(..RECENT_CAP / 2);
                }
                self.recent.push(at);
            }
        }
        self.consumed += amt as u64;
        self.inner.consume(amt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn mismatched_tags_report_their_line() {
        let e = events(b"<a>\n<b>\n</c></a>").unwrap_err();
        assert_eq!(e.position.map(|p| p.line), Some(3), "{e}");
    }
}
