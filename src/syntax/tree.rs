//! The schema-free syntax tree: messages are ordered lists of `key: value` fields.

use crate::error::Span;

/// A `{ ... }` block (or the whole file): its fields in source order.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// Fields in the order written; repeated keys appear repeatedly.
    pub fields: Vec<Field>,
    /// The block, braces included.
    pub span: Span,
}

/// One `key: value` or `key { ... }` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Field {
    /// The field name.
    pub key: String,
    /// Where the field name is written.
    pub key_span: Span,
    /// The value.
    pub value: Value,
}

/// A field value with its location.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// What was written.
    pub kind: ValueKind,
    /// Where.
    pub span: Span,
}

/// The kinds of value the text format has.
#[derive(Clone, Debug, PartialEq)]
pub enum ValueKind {
    /// A nested block.
    Message(Message),
    /// A quoted string, escapes resolved.
    Str(String),
    /// A number, as written.
    Number(f64),
    /// A bare word: an enum value or a boolean.
    Word(String),
    /// `[a, b, c]`: short for the field repeated once per item.
    List(Vec<Value>),
}

impl ValueKind {
    /// How the value is described in type errors.
    pub fn describe(&self) -> String {
        match self {
            ValueKind::Message(_) => "a { } block".to_string(),
            ValueKind::Str(s) => format!("the string \"{s}\""),
            ValueKind::Number(n) => format!("the number {n}"),
            ValueKind::Word(w) => format!("the word {w}"),
            ValueKind::List(_) => "a [ ] list".to_string(),
        }
    }
}
