use std::fmt;

/// Where in a document something went wrong. Lines and columns count from
/// 1; columns count bytes of the UTF-8 text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A document that cannot be accepted: malformed, truncated, hostile, or
/// not what it claims to be. The caller adds the file name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ParseError {
    pub position: Option<Position>,
    pub message: String,
}

impl ParseError {
    pub fn new(message: impl Into<String>) -> Self {
        ParseError {
            position: None,
            message: message.into(),
        }
    }

    pub fn at(position: Position, message: impl Into<String>) -> Self {
        ParseError {
            position: Some(position),
            message: message.into(),
        }
    }

    /// Prefixes the message with `file:line:column: `, the form editors and
    /// CI logs link to.
    pub fn in_file(&self, file: &str) -> String {
        match self.position {
            Some(p) => format!("{file}:{p}: {}", self.message),
            None => format!("{file}: {}", self.message),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(p) => write!(f, "{p}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// A serde_json error carries its own line and column.
impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> Self {
        let what = match e.classify() {
            serde_json::error::Category::Eof => "truncated JSON",
            serde_json::error::Category::Syntax => "malformed JSON",
            serde_json::error::Category::Data => "unexpected JSON content",
            serde_json::error::Category::Io => "unreadable JSON",
        };
        // serde_json's Display appends " at line L column C"; the position
        // is reported separately, so keep only the cause.
        let text = e.to_string();
        let cause = text
            .rsplit_once(" at line ")
            .map(|(c, _)| c.to_string())
            .unwrap_or(text);
        if e.line() == 0 {
            return ParseError::new(format!("{what}: {cause}"));
        }
        ParseError::at(
            Position {
                line: e.line() as u64,
                column: e.column() as u64,
            },
            format!("{what}: {cause}"),
        )
    }
}
