//! The spec text as a tree that remembers where every key and value is, so that errors can
//! say `file:line:col: grid.optimized_metric[1]: ...`, and the conversion of its values to
//! JSON (TOML's NaN, infinities and dates have no JSON form and are rejected here).
use crate::error::{Location, SweepError};
use serde_json::{Number, Value};
use std::ops::Range;
use toml::de::{DeTable, DeValue};

/// A TOML value with its byte span in the spec text.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub kind: NodeKind,
    pub span: Range<usize>,
}

#[derive(Debug, Clone)]
pub(crate) enum NodeKind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Node>),
    /// Entries in the order they appear in the file.
    Table(Vec<Entry>),
}

#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub value: Node,
}

impl Node {
    pub fn as_table(&self) -> Option<&[Entry]> {
        match &self.kind {
            NodeKind::Table(t) => Some(t),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Node]> {
        match &self.kind {
            NodeKind::Array(a) => Some(a),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The value's type, and the value itself when it is short, for "expected X, got Y"
    /// messages: `the integer 0`, `the string "x"`, `an integer out of range (…)`, `a list`.
    pub fn type_name(&self) -> String {
        match &self.kind {
            NodeKind::Str(s) if s.chars().count() <= 60 => format!("the string {s:?}"),
            NodeKind::Str(_) => "a string".into(),
            NodeKind::Int(n) => format!("the integer {n}"),
            NodeKind::Float(x) => format!("the float {x}"),
            NodeKind::Bool(b) => format!("the boolean {b}"),
            NodeKind::Datetime(d) if d.starts_with("integer ") => format!("an {d}"),
            NodeKind::Datetime(d) => format!("the date {d}"),
            NodeKind::Array(_) => "a list".into(),
            NodeKind::Table(_) => "a table".into(),
        }
    }
}

/// The spec file's name and text positions: turns spans into line and column.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub file: String,
    line_starts: Vec<usize>,
}

impl Source {
    pub fn new(file: String, text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Source { file, line_starts }
    }

    fn line_col(&self, offset: usize) -> (usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= offset);
        let start = self.line_starts[line.saturating_sub(1)];
        (line.max(1), offset - start + 1)
    }

    pub fn loc(&self, key: &str, span: &Range<usize>) -> Location {
        Location {
            file: self.file.clone(),
            key: key.to_string(),
            line: Some(self.line_col(span.start)),
        }
    }

    pub fn err(&self, key: &str, span: &Range<usize>, message: impl Into<String>) -> SweepError {
        SweepError::Spec {
            at: self.loc(key, span),
            message: message.into(),
        }
    }

    /// The parser's reason on one line, after its position: "line 6, column 1: duplicate
    /// key `max_iter`" (the parser's own text spans several lines with a source excerpt,
    /// and one-line error output would keep only its position).
    fn toml_message(&self, e: &toml::de::Error, text: &str) -> String {
        let reason = e
            .message()
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("; ");
        match e.span() {
            Some(span) => {
                let (line, col) = self.line_col(span.start);
                // What the parser points at (the repeated key, the bad value), when short.
                let at = text
                    .get(span.clone())
                    .and_then(|t| t.lines().next())
                    .map(str::trim)
                    .filter(|t| !t.is_empty() && t.len() <= 60 && !reason.contains(*t));
                match at {
                    Some(t) => format!("line {line}, column {col}: {reason} (at `{t}`)"),
                    None => format!("line {line}, column {col}: {reason}"),
                }
            }
            None => reason,
        }
    }

    /// Parses the text into a tree (the root is a table spanning the whole file).
    pub fn parse(&self, text: &str) -> Result<Node, SweepError> {
        let doc = DeTable::parse(text).map_err(|e| SweepError::Toml {
            file: self.file.clone(),
            message: self.toml_message(&e, text),
        })?;
        let span = doc.span();
        Ok(Node {
            kind: NodeKind::Table(convert_table(doc.get_ref())),
            span,
        })
    }
}

fn convert_table(t: &DeTable<'_>) -> Vec<Entry> {
    t.iter()
        .map(|(k, v)| Entry {
            key: k.get_ref().to_string(),
            value: convert(v.get_ref(), v.span()),
        })
        .collect()
}

fn convert(v: &DeValue<'_>, span: Range<usize>) -> Node {
    let kind = match v {
        DeValue::String(s) => NodeKind::Str(s.to_string()),
        DeValue::Integer(i) => match i64::from_str_radix(i.as_str(), i.radix()) {
            Ok(n) => NodeKind::Int(n),
            // Out of i64 range: keep it as text so that to_json reports it.
            Err(_) => NodeKind::Datetime(format!("integer {i} (out of range)")),
        },
        DeValue::Float(f) => NodeKind::Float(parse_float(f.as_str())),
        DeValue::Boolean(b) => NodeKind::Bool(*b),
        DeValue::Datetime(d) => NodeKind::Datetime(d.to_string()),
        DeValue::Array(a) => NodeKind::Array(
            a.iter()
                .map(|item| convert(item.get_ref(), item.span()))
                .collect(),
        ),
        DeValue::Table(t) => NodeKind::Table(convert_table(t)),
    };
    Node { kind, span }
}

fn parse_float(s: &str) -> f64 {
    match s.trim_start_matches('+') {
        "inf" => f64::INFINITY,
        "-inf" => f64::NEG_INFINITY,
        "nan" | "-nan" => f64::NAN,
        other => other.parse().unwrap_or(f64::NAN),
    }
}

/// Converts a node to JSON; `key` is its key path, for the error.
pub(crate) fn to_json(src: &Source, key: &str, node: &Node) -> Result<Value, SweepError> {
    Ok(match &node.kind {
        NodeKind::Str(s) => Value::String(s.clone()),
        NodeKind::Int(n) => Value::Number((*n).into()),
        NodeKind::Float(x) => match Number::from_f64(*x) {
            Some(n) => Value::Number(n),
            None => {
                return Err(src.err(
                    key,
                    &node.span,
                    format!(
                        "expected a finite number, got {x} (NaN and infinities have no JSON form)"
                    ),
                ))
            }
        },
        NodeKind::Bool(b) => Value::Bool(*b),
        NodeKind::Datetime(d) => {
            return Err(src.err(
                key,
                &node.span,
                format!("expected a number, string, boolean, list or table, got {d}"),
            ))
        }
        NodeKind::Array(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| to_json(src, &index_key(key, i), item))
                .collect::<Result<_, _>>()?,
        ),
        NodeKind::Table(entries) => {
            let mut map = serde_json::Map::new();
            for e in entries {
                map.insert(
                    e.key.clone(),
                    to_json(src, &child_key(key, &e.key), &e.value)?,
                );
            }
            Value::Object(map)
        }
    })
}

/// `parent.key`, quoting the key when it is not a bare TOML key (`grid."model.kernel_size"`).
pub(crate) fn child_key(parent: &str, key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let key = if bare {
        key.to_string()
    } else {
        serde_json::to_string(key).unwrap_or_else(|_| key.to_string())
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

/// `parent[i]`.
pub(crate) fn index_key(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 4) && *d < c.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur[j + 1] = sub.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// " (did you mean `x`?)" or "".
pub(crate) fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> String {
    suggest(word, candidates)
        .map(|s| format!(" (did you mean `{s}`?)"))
        .unwrap_or_default()
}
