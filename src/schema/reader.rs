//! Typed access to the fields of one message, with the errors a protobuf text parser gives: wrong
//! value types, repeated singular fields, missing required fields and unknown fields (with a
//! "did you mean" drawn from the fields the schema asked for).

use crate::error::{Diagnostic, Result, Span, Spanned};
use crate::syntax::{Message, Value, ValueKind};

/// The largest integer a field may hold (2^31 − 1): sizes beyond it cannot be real, and the bound
/// keeps every product of two sizes within `usize`.
const MAX_INT: i64 = i32::MAX as i64;

/// Reads the fields of one message; call [`Reader::finish`] last to reject unknown fields.
pub struct Reader<'a> {
    what: String,
    msg: &'a Message,
    used: Vec<bool>,
    known: Vec<&'static str>,
    anchor: Option<Span>,
    absent_block: Option<String>,
}

impl<'a> Reader<'a> {
    /// A reader for `msg`, described as `what` in messages (e.g. `layer "conv1"`).
    pub fn new(what: impl Into<String>, msg: &'a Message) -> Self {
        Reader {
            what: what.into(),
            msg,
            used: vec![false; msg.fields.len()],
            known: Vec::new(),
            anchor: None,
            absent_block: None,
        }
    }

    /// The whole message's span.
    pub fn span(&self) -> Span {
        self.msg.span
    }

    /// How the message is described in errors.
    pub fn what(&self) -> &str {
        &self.what
    }

    /// Whether `key` is present, without reading it.
    pub fn msg_has(&self, key: &str) -> bool {
        self.msg.fields.iter().any(|f| f.key == key)
    }

    /// Every value given for `key`, lists expanded, marking them as read.
    fn values(&mut self, key: &'static str) -> Vec<&'a Value> {
        self.known.push(key);
        let mut out = Vec::new();
        for (i, field) in self.msg.fields.iter().enumerate() {
            if field.key == key {
                self.used[i] = true;
                match &field.value.kind {
                    ValueKind::List(items) => out.extend(items.iter()),
                    _ => out.push(&field.value),
                }
            }
        }
        out
    }

    fn single(&mut self, key: &'static str) -> Result<Option<&'a Value>> {
        let values = self.values(key);
        if let [first, second, ..] = values.as_slice() {
            return Err(Diagnostic::new(
                format!("field `{key}` of {} is given more than once", self.what),
                second.span,
                "second value",
            )
            .note_at("first given", first.span));
        }
        Ok(values.first().copied())
    }

    fn type_error(&self, key: &str, expected: &str, value: &Value) -> Diagnostic {
        Diagnostic::new(
            format!("field `{key}` of {} expects {expected}", self.what),
            value.span,
            format!("found {}", value.kind.describe()),
        )
    }

    /// An error for a required field that is absent. A field of the message that looks like a
    /// typo of `key` is reported instead, since it is the likelier mistake.
    pub fn missing(&self, key: &str) -> Diagnostic {
        let typo = self
            .msg
            .fields
            .iter()
            .find(|f| !self.known.contains(&f.key.as_str()) && crate::error::did_you_mean(&f.key, [key]).is_some());
        if let Some(field) = typo {
            return Diagnostic::new(
                format!("unknown field `{}` in {}", field.key, self.what),
                field.key_span,
                "not a field here",
            )
            .help(format!("did you mean \"{key}\"?"));
        }
        let span = self.anchor_span();
        match &self.absent_block {
            Some(block) => Diagnostic::new(
                format!("{} needs `{block} {{ {key}: ... }}`", self.what),
                span,
                format!("this layer type requires `{key}`"),
            ),
            None => {
                Diagnostic::new(format!("{} is missing the required field `{key}`", self.what), span, "in this block")
            }
        }
    }

    /// A reader standing in for the block `key` that `parent` does not have, so that a required
    /// field of it is reported as the parent needing the block.
    pub fn absent(parent: &Reader, key: &str, empty: &'a Message) -> Self {
        let mut r = Reader::new(parent.what.clone(), empty);
        r.anchor = Some(parent.anchor_span());
        r.absent_block = Some(key.to_string());
        r
    }

    /// The span errors about an absent block point at: the anchor, else the message's start.
    pub fn anchor_span(&self) -> Span {
        self.anchor.unwrap_or(Span::new(self.msg.span.start, self.msg.span.start + 1))
    }

    /// Every field's key and where it is written.
    pub fn field_keys(&self) -> impl Iterator<Item = (&'a str, Span)> {
        self.msg.fields.iter().map(|f| (f.key.as_str(), f.key_span))
    }

    /// Points "missing field" errors of an absent block at `span` (the layer's type, say).
    pub fn set_anchor(&mut self, span: Span) {
        self.anchor = Some(span);
    }

    /// Changes how the message is described in errors.
    pub fn set_what(&mut self, what: String) {
        self.what = what;
    }

    fn as_str(&self, key: &str, v: &'a Value) -> Result<Spanned<String>> {
        match &v.kind {
            ValueKind::Str(s) => Ok(Spanned::new(s.clone(), v.span)),
            _ => Err(self.type_error(key, "a quoted string", v)),
        }
    }

    fn as_number(&self, key: &str, v: &'a Value) -> Result<f64> {
        match &v.kind {
            ValueKind::Number(n) => Ok(*n),
            _ => Err(self.type_error(key, "a number", v)),
        }
    }

    fn as_int(&self, key: &str, v: &'a Value, min: i64) -> Result<i64> {
        let n = self.as_number(key, v)?;
        let expected = match min {
            1 => "a positive integer",
            0 => "a non-negative integer",
            _ => "an integer",
        };
        if n.fract() != 0.0 || !n.is_finite() || n < min as f64 {
            return Err(self.type_error(key, expected, v));
        }
        if n.abs() > MAX_INT as f64 {
            return Err(Diagnostic::new(
                format!("field `{key}` of {} is too large", self.what),
                v.span,
                format!("at most {MAX_INT}"),
            ));
        }
        Ok(n as i64)
    }

    /// An optional string field.
    pub fn opt_str(&mut self, key: &'static str) -> Result<Option<Spanned<String>>> {
        self.single(key)?.map(|v| self.as_str(key, v)).transpose()
    }

    /// A required string field.
    pub fn req_str(&mut self, key: &'static str) -> Result<Spanned<String>> {
        self.opt_str(key)?.ok_or_else(|| self.missing(key))
    }

    /// A repeated string field.
    pub fn strs(&mut self, key: &'static str) -> Result<Vec<Spanned<String>>> {
        self.values(key).into_iter().map(|v| self.as_str(key, v)).collect()
    }

    /// An optional number, with its span.
    pub fn opt_f32(&mut self, key: &'static str) -> Result<Option<Spanned<f32>>> {
        match self.single(key)? {
            Some(v) => Ok(Some(Spanned::new(self.as_number(key, v)? as f32, v.span))),
            None => Ok(None),
        }
    }

    /// A number with a default.
    pub fn f32_or(&mut self, key: &'static str, default: f32) -> Result<f32> {
        Ok(self.opt_f32(key)?.map_or(default, |s| s.value))
    }

    /// A repeated number.
    pub fn f32s(&mut self, key: &'static str) -> Result<Vec<f32>> {
        self.values(key).into_iter().map(|v| self.as_number(key, v).map(|n| n as f32)).collect()
    }

    /// An optional non-negative integer, with its span.
    pub fn opt_usize(&mut self, key: &'static str) -> Result<Option<Spanned<usize>>> {
        match self.single(key)? {
            Some(v) => Ok(Some(Spanned::new(self.as_int(key, v, 0)? as usize, v.span))),
            None => Ok(None),
        }
    }

    /// A non-negative integer with a default.
    pub fn usize_or(&mut self, key: &'static str, default: usize) -> Result<usize> {
        Ok(self.opt_usize(key)?.map_or(default, |s| s.value))
    }

    fn opt_positive(&mut self, key: &'static str) -> Result<Option<Spanned<usize>>> {
        match self.single(key)? {
            Some(v) => Ok(Some(Spanned::new(self.as_int(key, v, 1)? as usize, v.span))),
            None => Ok(None),
        }
    }

    /// A required positive integer.
    pub fn req_positive(&mut self, key: &'static str) -> Result<Spanned<usize>> {
        self.opt_positive(key)?.ok_or_else(|| self.missing(key))
    }

    /// A positive integer with a default.
    pub fn positive_or(&mut self, key: &'static str, default: usize) -> Result<usize> {
        Ok(self.opt_positive(key)?.map_or(default, |v| v.value))
    }

    /// A repeated non-negative integer.
    pub fn usizes(&mut self, key: &'static str) -> Result<Vec<Spanned<usize>>> {
        let values = self.values(key);
        values.into_iter().map(|v| Ok(Spanned::new(self.as_int(key, v, 0)? as usize, v.span))).collect()
    }

    /// A repeated integer that may be negative.
    pub fn i64s(&mut self, key: &'static str) -> Result<Vec<i64>> {
        self.values(key).into_iter().map(|v| self.as_int(key, v, i64::MIN / 2)).collect()
    }

    /// An optional integer that may be negative.
    pub fn opt_i64(&mut self, key: &'static str) -> Result<Option<i64>> {
        self.single(key)?.map(|v| self.as_int(key, v, i64::MIN / 2)).transpose()
    }

    /// A boolean (`true`/`false`, or 1/0) with a default.
    pub fn bool_or(&mut self, key: &'static str, default: bool) -> Result<bool> {
        let Some(v) = self.single(key)? else { return Ok(default) };
        match &v.kind {
            ValueKind::Word(w) if w == "true" || w == "True" => Ok(true),
            ValueKind::Word(w) if w == "false" || w == "False" => Ok(false),
            ValueKind::Number(n) if *n == 1.0 => Ok(true),
            ValueKind::Number(n) if *n == 0.0 => Ok(false),
            _ => Err(self.type_error(key, "true or false", v)),
        }
    }

    /// An optional enum value: a bare word (or a string) among `choices`.
    pub fn opt_enum(&mut self, key: &'static str, choices: &[&'static str]) -> Result<Option<Spanned<&'static str>>> {
        let Some(v) = self.single(key)? else { return Ok(None) };
        let word = match &v.kind {
            ValueKind::Word(w) | ValueKind::Str(w) => w,
            _ => return Err(self.type_error(key, &format!("one of {}", choices.join(", ")), v)),
        };
        match choices.iter().find(|c| c.eq_ignore_ascii_case(word)) {
            Some(c) => Ok(Some(Spanned::new(*c, v.span))),
            None => Err(Diagnostic::new(
                format!("unknown value `{word}` for field `{key}` of {}", self.what),
                v.span,
                format!("expected one of {}", choices.join(", ")),
            )
            .suggest(word, choices.iter().copied())),
        }
    }

    /// An optional nested message.
    pub fn opt_msg(&mut self, key: &'static str) -> Result<Option<&'a Message>> {
        self.single(key)?.map(|v| self.as_msg(key, v)).transpose()
    }

    /// A repeated nested message.
    pub fn msgs(&mut self, key: &'static str) -> Result<Vec<&'a Message>> {
        self.values(key).into_iter().map(|v| self.as_msg(key, v)).collect()
    }

    fn as_msg(&self, key: &str, v: &'a Value) -> Result<&'a Message> {
        match &v.kind {
            ValueKind::Message(m) => Ok(m),
            _ => Err(self.type_error(key, "a { } block", v)),
        }
    }

    /// Rejects any field the schema did not read, suggesting the closest known field.
    pub fn finish(self) -> Result<()> {
        for (field, used) in self.msg.fields.iter().zip(&self.used) {
            if !used {
                return Err(Diagnostic::new(
                    format!("unknown field `{}` in {}", field.key, self.what),
                    field.key_span,
                    "not a field here",
                )
                .suggest(&field.key, self.known.iter().copied()));
            }
        }
        Ok(())
    }
}
