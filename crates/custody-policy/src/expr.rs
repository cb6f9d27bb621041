//! The `${{ ... }}` expression language of environment policies (Kosli's
//! policy v1): `== != < > <= >= and or not in`, parentheses, lists, the
//! contexts `flow.name`, `flow.tags.<key>`, `artifact.name`,
//! `artifact.fingerprint`, and the functions `exists(x)` and
//! `matches(input, regex)`.
//!
//! Parsed once into an [`Expr`]; regexes are compiled then. Evaluation
//! borrows from the expression and the context and allocates nothing. The
//! grammar is small enough that a hand-written recursive-descent parser is
//! shorter than a combinator library's setup, and its errors can say
//! exactly where the expression went wrong.

use std::fmt;

use regex::Regex;

/// A parsed expression.
#[derive(Debug, Clone)]
pub enum Expr {
    Null,
    Bool(bool),
    Num(f64),
    Str(String),
    List(Vec<Expr>),
    Var(Var),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(Box<Expr>, Op, Box<Expr>),
    Exists(Box<Expr>),
    /// The pattern as written and compiled.
    Matches(Box<Expr>, String, Regex),
}

/// Equality ignores the compiled regex (the pattern text decides it).
impl PartialEq for Expr {
    fn eq(&self, other: &Expr) -> bool {
        use Expr::*;
        match (self, other) {
            (Null, Null) => true,
            (Bool(a), Bool(b)) => a == b,
            (Num(a), Num(b)) => a == b,
            (Str(a), Str(b)) => a == b,
            (List(a), List(b)) => a == b,
            (Var(a), Var(b)) => a == b,
            (Not(a), Not(b)) => a == b,
            (And(a, b), And(c, d)) | (Or(a, b), Or(c, d)) => a == c && b == d,
            (Cmp(a, o, b), Cmp(c, p, d)) => a == c && o == p && b == d,
            (Exists(a), Exists(b)) => a == b,
            (Matches(a, p, _), Matches(b, q, _)) => a == b && p == q,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    FlowName,
    FlowTag(String),
    ArtifactName,
    ArtifactFingerprint,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Lt,
    Gt,
    Le,
    Ge,
    In,
    NotIn,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Lt => "<",
            Op::Gt => ">",
            Op::Le => "<=",
            Op::Ge => ">=",
            Op::In => "in",
            Op::NotIn => "not in",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ExprError {
    pub expr: String,
    /// From 1, in characters.
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ExprError {
    /// A long expression is shown around the column, not whole: the
    /// message goes back to whoever sent it and into logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 160;
        let n = self.expr.chars().count();
        if n <= SHOWN {
            return write!(
                f,
                "{} at column {} of '{}'",
                self.message, self.column, self.expr
            );
        }
        let start = self.column.saturating_sub(SHOWN / 2 + 1).min(n - SHOWN);
        let part: String = self.expr.chars().skip(start).take(SHOWN).collect();
        let (pre, post) = (
            if start > 0 { "..." } else { "" },
            if start + SHOWN < n { "..." } else { "" },
        );
        write!(
            f,
            "{} at column {} of '{pre}{part}{post}' ({n} characters)",
            self.message, self.column
        )
    }
}

/// What an expression is evaluated against: one artifact and, when it has
/// provenance, one of its flows.
pub trait Context {
    fn flow_name(&self) -> Option<&str>;
    fn flow_tag(&self, key: &str) -> Option<&str>;
    fn artifact_name(&self) -> &str;
    fn artifact_fingerprint(&self) -> &str;
}

/// A value during evaluation, borrowed from the expression or the context.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Bool(bool),
    Num(f64),
    Str(&'a str),
    List(&'a [Expr]),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct EvalError(pub String);

// ---- Parsing -------------------------------------------------------------

/// Parses a whole `${{ ... }}` (the wrapper is required, as in Kosli's
/// schema).
pub fn parse_wrapped(text: &str) -> Result<Expr, ExprError> {
    let t = text.trim();
    let inner = t
        .strip_prefix("${{")
        .and_then(|r| r.strip_suffix("}}"))
        .ok_or_else(|| ExprError {
            expr: text.to_string(),
            column: 1,
            message: "an expression must be written ${{ ... }}".into(),
        })?;
    parse(inner).map_err(|mut e| {
        e.expr = text.to_string();
        // Columns count from the start of what was written.
        let lead = text.find("${{").unwrap_or(0) + 3;
        e.column += text[..lead].chars().count();
        e
    })
}

/// How deep an expression may nest: parentheses, lists, `not` and
/// function calls for the parser's recursion, and the height of the tree
/// (a chain of `and`s is a tree as tall as the chain) for everything that
/// walks it afterwards: evaluation, printing, dropping. Real conditions
/// are a few levels deep; this keeps every walk far from any stack limit.
pub const MAX_DEPTH: usize = 64;

/// Parses an expression without its `${{ }}`.
pub fn parse(text: &str) -> Result<Expr, ExprError> {
    let tokens = lex(text)?;
    let mut p = Parser {
        text,
        tokens,
        pos: 0,
        nesting: 0,
        height: 0,
    };
    let e = p.or()?;
    if let Some(t) = p.tokens.get(p.pos) {
        return Err(p.error_at(t.at, format!("unexpected {}", t.kind.describe())));
    }
    Ok(e)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Str(String),
    Num(f64),
    Ident(String),
    Op(Op),
    And,
    Or,
    Not,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Str(s) => format!("string \"{s}\""),
            Tok::Num(n) => format!("number {n}"),
            Tok::Ident(i) => format!("'{i}'"),
            Tok::Op(o) => format!("'{}'", o.as_str()),
            Tok::And => "'and'".into(),
            Tok::Or => "'or'".into(),
            Tok::Not => "'not'".into(),
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::LBracket => "'['".into(),
            Tok::RBracket => "']'".into(),
            Tok::Comma => "','".into(),
        }
    }
}

struct Token {
    kind: Tok,
    /// Column, from 1.
    at: usize,
}

fn lex(text: &str) -> Result<Vec<Token>, ExprError> {
    let err = |at: usize, message: String| ExprError {
        expr: text.to_string(),
        column: at,
        message,
    };
    let chars: Vec<char> = text.chars().collect();
    let mut out = vec![];
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let at = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let (kind, len) = match (c, two.as_str()) {
            (_, "==") => (Tok::Op(Op::Eq), 2),
            (_, "!=") => (Tok::Op(Op::Ne), 2),
            (_, "<=") => (Tok::Op(Op::Le), 2),
            (_, ">=") => (Tok::Op(Op::Ge), 2),
            ('<', _) => (Tok::Op(Op::Lt), 1),
            ('>', _) => (Tok::Op(Op::Gt), 1),
            ('(', _) => (Tok::LParen, 1),
            (')', _) => (Tok::RParen, 1),
            ('[', _) => (Tok::LBracket, 1),
            (']', _) => (Tok::RBracket, 1),
            (',', _) => (Tok::Comma, 1),
            ('"' | '\'', _) => {
                let quote = c;
                let mut s = String::new();
                let mut j = i + 1;
                loop {
                    match chars.get(j) {
                        None => return Err(err(at, "unterminated string".into())),
                        Some(&ch) if ch == quote => break,
                        Some('\\') => {
                            match chars.get(j + 1) {
                                Some(&e @ ('\\' | '"' | '\'')) => s.push(e),
                                Some('n') => s.push('\n'),
                                Some('t') => s.push('\t'),
                                Some(other) => {
                                    return Err(err(j + 1, format!("unknown escape '\\{other}'")));
                                }
                                None => return Err(err(at, "unterminated string".into())),
                            }
                            j += 2;
                            continue;
                        }
                        Some(&ch) => s.push(ch),
                    }
                    j += 1;
                }
                (Tok::Str(s), j + 1 - i)
            }
            (c, _)
                if c.is_ascii_digit()
                    || (c == '-' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                let mut j = i + 1;
                while j < chars.len() && (chars[j].is_ascii_digit() || chars[j] == '.') {
                    j += 1;
                }
                let s: String = chars[i..j].iter().collect();
                let n: f64 = s
                    .parse()
                    .map_err(|_| err(at, format!("bad number '{s}'")))?;
                (Tok::Num(n), j - i)
            }
            (c, _) if c.is_ascii_alphabetic() || c == '_' => {
                // Paths may hold dots and hyphens: flow.tags.risk-level.
                let mut j = i + 1;
                while j < chars.len()
                    && (chars[j].is_ascii_alphanumeric() || matches!(chars[j], '_' | '.' | '-'))
                {
                    j += 1;
                }
                let word: String = chars[i..j].iter().collect();
                let kind = match word.as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    "in" => Tok::Op(Op::In),
                    _ => Tok::Ident(word),
                };
                (kind, j - i)
            }
            (c, _) => return Err(err(at, format!("unexpected character '{c}'"))),
        };
        out.push(Token { kind, at });
        i += len;
    }
    Ok(out)
}

struct Parser<'t> {
    text: &'t str,
    tokens: Vec<Token>,
    pos: usize,
    /// How many parsing functions are on the stack for nested forms.
    nesting: usize,
    /// The height of the expression the last parsing function returned.
    height: usize,
}

impl Parser<'_> {
    fn error_at(&self, column: usize, message: String) -> ExprError {
        ExprError {
            expr: self.text.to_string(),
            column,
            message,
        }
    }

    fn end_column(&self) -> usize {
        self.text.chars().count() + 1
    }

    fn peek(&self) -> Option<&Tok> {
        self.tokens.get(self.pos).map(|t| &t.kind)
    }

    fn next(&mut self) -> Option<(Tok, usize)> {
        let t = self.tokens.get(self.pos)?;
        self.pos += 1;
        Some((t.kind.clone(), t.at))
    }

    fn expect(&mut self, want: Tok, what: &str) -> Result<(), ExprError> {
        match self.next() {
            Some((t, _)) if t == want => Ok(()),
            Some((t, at)) => {
                Err(self.error_at(at, format!("expected {what}, found {}", t.describe())))
            }
            None => Err(self.error_at(self.end_column(), format!("expected {what} at the end"))),
        }
    }

    fn too_deep(&self) -> ExprError {
        let at = self
            .tokens
            .get(self.pos.saturating_sub(1))
            .map_or(1, |t| t.at);
        self.error_at(
            at,
            format!("the expression nests too deeply (more than {MAX_DEPTH} levels)"),
        )
    }

    /// Enters a nested form (parentheses, a list, `not`, a function's
    /// arguments), refusing to go deeper than [`MAX_DEPTH`].
    fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, ExprError>,
    ) -> Result<T, ExprError> {
        if self.nesting >= MAX_DEPTH {
            return Err(self.too_deep());
        }
        self.nesting += 1;
        let r = f(self);
        self.nesting -= 1;
        r
    }

    /// Records the height of a node over children of height `below`.
    fn grew(&mut self, below: usize) -> Result<(), ExprError> {
        self.height = below + 1;
        if self.height > MAX_DEPTH {
            return Err(self.too_deep());
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.and()?;
        let mut h = self.height;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            let right = self.and()?;
            self.grew(h.max(self.height))?;
            h = self.height;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        self.height = h;
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, ExprError> {
        let mut left = self.not()?;
        let mut h = self.height;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            let right = self.not()?;
            self.grew(h.max(self.height))?;
            h = self.height;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        self.height = h;
        Ok(left)
    }

    fn not(&mut self) -> Result<Expr, ExprError> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            let inner = self.nested(|p| p.not())?;
            self.grew(self.height)?;
            return Ok(Expr::Not(Box::new(inner)));
        }
        self.comparison()
    }

    fn comparison(&mut self) -> Result<Expr, ExprError> {
        let left = self.primary()?;
        let op = match self.peek() {
            Some(Tok::Op(op)) => *op,
            // `not in`: a `not` right after an operand.
            Some(Tok::Not)
                if matches!(
                    self.tokens.get(self.pos + 1).map(|t| &t.kind),
                    Some(Tok::Op(Op::In))
                ) =>
            {
                self.pos += 1;
                Op::NotIn
            }
            _ => return Ok(left),
        };
        self.pos += 1;
        let h = self.height;
        let right = self.primary()?;
        if let Some(Tok::Op(_)) = self.peek() {
            let at = self.tokens[self.pos].at;
            return Err(self.error_at(at, "comparisons do not chain: use 'and'".into()));
        }
        self.grew(h.max(self.height))?;
        Ok(Expr::Cmp(Box::new(left), op, Box::new(right)))
    }

    fn primary(&mut self) -> Result<Expr, ExprError> {
        let Some((tok, at)) = self.next() else {
            return Err(self.error_at(self.end_column(), "expected a value at the end".into()));
        };
        self.height = 1;
        match tok {
            Tok::Str(s) => Ok(Expr::Str(s)),
            Tok::Num(n) => Ok(Expr::Num(n)),
            Tok::LParen => {
                let e = self.nested(|p| p.or())?;
                self.expect(Tok::RParen, "')'")?;
                Ok(e)
            }
            Tok::LBracket => {
                let mut items = vec![];
                if self.peek() == Some(&Tok::RBracket) {
                    self.pos += 1;
                    return Ok(Expr::List(items));
                }
                let mut h = 0;
                loop {
                    items.push(self.nested(|p| p.or())?);
                    h = h.max(self.height);
                    match self.next() {
                        Some((Tok::Comma, _)) => continue,
                        Some((Tok::RBracket, _)) => {
                            self.grew(h)?;
                            break;
                        }
                        Some((t, at)) => {
                            return Err(self.error_at(
                                at,
                                format!("expected ',' or ']', found {}", t.describe()),
                            ));
                        }
                        None => {
                            return Err(self.error_at(self.end_column(), "unclosed list".into()));
                        }
                    }
                }
                Ok(Expr::List(items))
            }
            Tok::Ident(word) => self.word(word, at),
            other => {
                Err(self.error_at(at, format!("expected a value, found {}", other.describe())))
            }
        }
    }

    fn word(&mut self, word: String, at: usize) -> Result<Expr, ExprError> {
        match word.as_str() {
            "true" => return Ok(Expr::Bool(true)),
            "false" => return Ok(Expr::Bool(false)),
            "null" => return Ok(Expr::Null),
            "exists" | "matches" if self.peek() == Some(&Tok::LParen) => {
                self.pos += 1;
                let first = self.nested(|p| p.or())?;
                self.grew(self.height)?;
                if word == "exists" {
                    self.expect(Tok::RParen, "')'")?;
                    return Ok(Expr::Exists(Box::new(first)));
                }
                self.expect(Tok::Comma, "',' and a regex")?;
                let pattern = match self.next() {
                    Some((Tok::Str(p), at)) => {
                        let re = Regex::new(&p).map_err(|e| {
                            self.error_at(
                                at,
                                format!(
                                    "invalid regex \"{p}\": {}",
                                    e.to_string().lines().last().unwrap_or("").trim()
                                ),
                            )
                        })?;
                        (p, re)
                    }
                    Some((t, at)) => {
                        return Err(self.error_at(
                            at,
                            format!("matches() takes a regex in quotes, not {}", t.describe()),
                        ));
                    }
                    None => return Err(self.error_at(self.end_column(), "expected a regex".into())),
                };
                self.expect(Tok::RParen, "')'")?;
                return Ok(Expr::Matches(Box::new(first), pattern.0, pattern.1));
            }
            _ => {}
        }
        let var = match word.as_str() {
            "flow.name" => Var::FlowName,
            "artifact.name" => Var::ArtifactName,
            "artifact.fingerprint" => Var::ArtifactFingerprint,
            w => match w.strip_prefix("flow.tags.") {
                Some(key) if !key.is_empty() => Var::FlowTag(key.to_string()),
                _ => {
                    return Err(self.error_at(
                        at,
                        format!(
                            "unknown name '{w}': use flow.name, flow.tags.<key>, artifact.name, artifact.fingerprint, exists() or matches()"
                        ),
                    ));
                }
            },
        };
        Ok(Expr::Var(var))
    }
}

// ---- Printing (the parser reads back what this writes) ----------------------

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Null => f.write_str("null"),
            Expr::Bool(b) => write!(f, "{b}"),
            Expr::Num(n) => write!(f, "{n}"),
            Expr::Str(s) => write_str(f, s),
            Expr::List(items) => {
                f.write_str("[")?;
                for (i, e) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{e}")?;
                }
                f.write_str("]")
            }
            Expr::Var(Var::FlowName) => f.write_str("flow.name"),
            Expr::Var(Var::FlowTag(k)) => write!(f, "flow.tags.{k}"),
            Expr::Var(Var::ArtifactName) => f.write_str("artifact.name"),
            Expr::Var(Var::ArtifactFingerprint) => f.write_str("artifact.fingerprint"),
            Expr::Not(e) => write!(f, "not ({e})"),
            Expr::And(a, b) => write!(f, "({a}) and ({b})"),
            Expr::Or(a, b) => write!(f, "({a}) or ({b})"),
            Expr::Cmp(a, op, b) => write!(f, "({a}) {} ({b})", op.as_str()),
            Expr::Exists(e) => write!(f, "exists({e})"),
            Expr::Matches(e, p, _) => {
                write!(f, "matches({e}, ")?;
                write_str(f, p)?;
                f.write_str(")")
            }
        }
    }
}

fn write_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

// ---- Evaluation ---------------------------------------------------------

impl Expr {
    /// Evaluates to a boolean; anything else is an evaluation error, as
    /// every policy condition must be a yes or a no.
    pub fn test(&self, cx: &impl Context) -> Result<bool, EvalError> {
        match self.eval(cx)? {
            Value::Bool(b) => Ok(b),
            other => Err(EvalError(format!(
                "'{self}' is {}, not true or false",
                kind(&other)
            ))),
        }
    }

    pub fn eval<'a>(&'a self, cx: &'a impl Context) -> Result<Value<'a>, EvalError> {
        Ok(match self {
            Expr::Null => Value::Null,
            Expr::Bool(b) => Value::Bool(*b),
            Expr::Num(n) => Value::Num(*n),
            Expr::Str(s) => Value::Str(s),
            Expr::List(items) => Value::List(items),
            Expr::Var(v) => match v {
                Var::FlowName => cx.flow_name().map_or(Value::Null, Value::Str),
                Var::FlowTag(k) => cx.flow_tag(k).map_or(Value::Null, Value::Str),
                Var::ArtifactName => Value::Str(cx.artifact_name()),
                Var::ArtifactFingerprint => Value::Str(cx.artifact_fingerprint()),
            },
            Expr::Not(e) => Value::Bool(!e.test(cx)?),
            Expr::And(a, b) => Value::Bool(a.test(cx)? && b.test(cx)?),
            Expr::Or(a, b) => Value::Bool(a.test(cx)? || b.test(cx)?),
            Expr::Exists(e) => Value::Bool(e.eval(cx)? != Value::Null),
            Expr::Matches(e, _, re) => match e.eval(cx)? {
                Value::Str(s) => Value::Bool(re.is_match(s)),
                Value::Null => Value::Bool(false),
                other => {
                    return Err(EvalError(format!(
                        "matches() needs a string, got {}",
                        kind(&other)
                    )));
                }
            },
            Expr::Cmp(a, op, b) => Value::Bool(compare(a.eval(cx)?, *op, b.eval(cx)?, cx)?),
        })
    }
}

fn kind(v: &Value<'_>) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Num(_) => "a number",
        Value::Str(_) => "a string",
        Value::List(_) => "a list",
    }
}

fn compare<'a>(
    a: Value<'a>,
    op: Op,
    b: Value<'a>,
    cx: &'a impl Context,
) -> Result<bool, EvalError> {
    let order = |a: Value<'_>, b: Value<'_>| -> Result<Option<std::cmp::Ordering>, EvalError> {
        match (a, b) {
            (Value::Num(x), Value::Num(y)) => Ok(x.partial_cmp(&y)),
            (Value::Str(x), Value::Str(y)) => Ok(Some(x.cmp(y))),
            // An undefined value is never less or greater than anything.
            (Value::Null, _) | (_, Value::Null) => Ok(None),
            (x, y) => Err(EvalError(format!(
                "cannot order {} and {}",
                kind(&x),
                kind(&y)
            ))),
        }
    };
    Ok(match op {
        Op::Eq => equal(a, b, cx)?,
        Op::Ne => !equal(a, b, cx)?,
        Op::Lt => order(a, b)? == Some(std::cmp::Ordering::Less),
        Op::Gt => order(a, b)? == Some(std::cmp::Ordering::Greater),
        Op::Le => matches!(
            order(a, b)?,
            Some(std::cmp::Ordering::Less | std::cmp::Ordering::Equal)
        ),
        Op::Ge => matches!(
            order(a, b)?,
            Some(std::cmp::Ordering::Greater | std::cmp::Ordering::Equal)
        ),
        Op::In | Op::NotIn => {
            let found = match b {
                Value::List(items) => {
                    let mut found = false;
                    for item in items {
                        if equal(a, item.eval(cx)?, cx)? {
                            found = true;
                            break;
                        }
                    }
                    found
                }
                Value::Str(hay) => match a {
                    Value::Str(needle) => hay.contains(needle),
                    Value::Null => false,
                    other => {
                        return Err(EvalError(format!(
                            "cannot look for {} in a string",
                            kind(&other)
                        )));
                    }
                },
                Value::Null => false,
                other => {
                    return Err(EvalError(format!(
                        "'in' needs a list or a string, got {}",
                        kind(&other)
                    )));
                }
            };
            found == (op == Op::In)
        }
    })
}

fn equal<'a>(a: Value<'a>, b: Value<'a>, cx: &'a impl Context) -> Result<bool, EvalError> {
    Ok(match (a, b) {
        (Value::List(x), Value::List(y)) => {
            if x.len() != y.len() {
                return Ok(false);
            }
            for (p, q) in x.iter().zip(y) {
                if !equal(p.eval(cx)?, q.eval(cx)?, cx)? {
                    return Ok(false);
                }
            }
            true
        }
        (x, y) => x == y,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    struct Cx {
        flow: Option<&'static str>,
        tags: HashMap<&'static str, &'static str>,
        name: &'static str,
    }

    impl Context for Cx {
        fn flow_name(&self) -> Option<&str> {
            self.flow
        }
        fn flow_tag(&self, key: &str) -> Option<&str> {
            self.tags.get(key).copied()
        }
        fn artifact_name(&self) -> &str {
            self.name
        }
        fn artifact_fingerprint(&self) -> &str {
            "ab12"
        }
    }

    fn cx() -> Cx {
        Cx {
            flow: Some("backend"),
            tags: [("risk-level", "high"), ("team.name", "pay")].into(),
            name: "datadog:7",
        }
    }

    fn yes(text: &str) -> bool {
        parse_wrapped(text).unwrap().test(&cx()).unwrap()
    }

    #[test]
    fn kosli_examples() {
        assert!(yes(r#"${{ matches(artifact.name, "^datadog:.*") }}"#));
        assert!(yes(r#"${{ flow.tags.risk-level == "high" }}"#));
        assert!(yes(r#"${{ flow.tags.team.name == 'pay' }}"#));
        assert!(yes(
            r#"${{ exists(flow.name) and not exists(flow.tags.missing) }}"#
        ));
        assert!(yes(r#"${{ flow.name in ["backend", "frontend"] }}"#));
        assert!(yes(
            r#"${{ flow.name not in ["web"] and artifact.name != "x" }}"#
        ));
        assert!(yes(
            r#"${{ (flow.name == "x" or flow.name == "backend") and 2 < 3 }}"#
        ));
        assert!(yes(r#"${{ "dog" in artifact.name }}"#));
        assert!(!yes(r#"${{ flow.tags.missing == "high" }}"#));
        assert!(!yes(r#"${{ flow.tags.missing < "z" }}"#));
    }

    #[test]
    fn depth_is_bounded_whatever_the_shape() {
        let deep = |open: &str, atom: &str, close: &str, n: usize| {
            format!("{}{atom}{}", open.repeat(n), close.repeat(n))
        };
        let chain = |op: &str, n: usize| vec!["true"; n].join(op);
        // Within the limit: parsed, evaluated and printed.
        for text in [
            deep("(", "true", ")", MAX_DEPTH - 1),
            deep("[", "1", "]", MAX_DEPTH - 2),
            deep("not ", "true", "", MAX_DEPTH - 1),
            chain(" and ", MAX_DEPTH - 1),
        ] {
            let e = parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            let _ = e.eval(&cx());
            let _ = e.to_string();
        }
        // Far beyond it (these overflowed the stack before): an error that
        // says so, for nesting and for long chains alike.
        for text in [
            deep("(", "true", ")", 5_000),
            deep("[", "1", "]", 5_000),
            deep("not ", "true", "", 5_000),
            deep("exists(", "true", ")", 5_000),
            chain(" and ", 100_000),
            chain(" or ", 100_000),
            format!("{} == 1", deep("[", "1", "]", 70)),
        ] {
            let e = parse(&text).unwrap_err();
            assert!(e.message.contains("nests too deeply"), "{}", e.message);
        }
    }

    #[test]
    fn errors_say_where() {
        let e = parse_wrapped(r#"${{ flow.nam == "x" }}"#).unwrap_err();
        assert!(e.message.starts_with("unknown name 'flow.nam'"), "{e}");
        assert_eq!(e.column, 5);
        let e = parse_wrapped(r#"${{ matches(artifact.name, "[") }}"#).unwrap_err();
        assert!(e.message.starts_with("invalid regex"), "{e}");
        let e = parse_wrapped(r#"${{ a == }}"#).unwrap_err();
        assert!(e.message.contains("unknown name 'a'"), "{e}");
        let e = parse_wrapped(r#"${{ flow.name == "x" == true }}"#).unwrap_err();
        assert!(e.message.contains("do not chain"), "{e}");
        let e = parse_wrapped(r#"flow.name == "x""#).unwrap_err();
        assert!(e.message.contains("${{"), "{e}");
        let e = parse_wrapped(r#"${{ (flow.name == "x" }}"#).unwrap_err();
        assert!(e.message.contains("expected ')'"), "{e}");
        // Evaluation: a condition must be a boolean.
        let e = parse_wrapped(r#"${{ flow.name }}"#)
            .unwrap()
            .test(&cx())
            .unwrap_err();
        assert!(e.0.contains("not true or false"), "{e}");
    }

    fn leaf() -> impl Strategy<Value = Expr> {
        prop_oneof![
            Just(Expr::Null),
            any::<bool>().prop_map(Expr::Bool),
            (0u32..1000).prop_map(|n| Expr::Num(f64::from(n))),
            "[a-z \"'\\\\]{0,6}".prop_map(Expr::Str),
            Just(Expr::Var(Var::FlowName)),
            Just(Expr::Var(Var::ArtifactName)),
            "[a-z][a-z.-]{0,6}[a-z]".prop_map(|k| Expr::Var(Var::FlowTag(k))),
        ]
    }

    fn expr() -> impl Strategy<Value = Expr> {
        leaf().prop_recursive(4, 24, 3, |inner| {
            let op = prop_oneof![
                Just(Op::Eq),
                Just(Op::Ne),
                Just(Op::Lt),
                Just(Op::Ge),
                Just(Op::In),
                Just(Op::NotIn)
            ];
            prop_oneof![
                inner.clone().prop_map(|e| Expr::Not(Box::new(e))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Expr::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone())
                    .prop_map(|(a, b)| Expr::Or(Box::new(a), Box::new(b))),
                (inner.clone(), op, inner.clone()).prop_map(|(a, o, b)| Expr::Cmp(
                    Box::new(a),
                    o,
                    Box::new(b)
                )),
                inner.clone().prop_map(|e| Expr::Exists(Box::new(e))),
                prop::collection::vec(inner.clone(), 0..3).prop_map(Expr::List),
                inner.prop_map(|e| Expr::Matches(
                    Box::new(e),
                    "^a.b$".into(),
                    Regex::new("^a.b$").unwrap()
                )),
            ]
        })
    }

    proptest! {
        #[test]
        fn what_is_printed_parses_back_the_same(e in expr()) {
            let text = e.to_string();
            let back = parse(&text).map_err(|x| TestCaseError::fail(format!("{x}")))?;
            prop_assert_eq!(back, e);
        }
    }
}
