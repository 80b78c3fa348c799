//! The only file that touches pest: graph-file text → [`Message`] tree.

use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;
use pest::Parser as _;

use super::tree::{Field, Message, Value, ValueKind};
use crate::error::{Diagnostic, Result, Span};

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/graph.pest"]
struct GraphParser;

/// Deepest `{`/`[` nesting accepted; deeper input is rejected before pest sees it, so that no input
/// can exhaust the parser's stack.
const MAX_NESTING: usize = 64;

/// Parses a whole graph file into its field tree.
pub fn parse(text: &str) -> Result<Message> {
    check_nesting(text)?;
    let mut pairs = GraphParser::parse(Rule::file, text).map_err(syntax_error)?;
    let file = pairs.next().expect("pest returns the file rule on success");
    let span = Span::new(0, text.len());
    let fields = file.into_inner().filter(|p| p.as_rule() == Rule::field).map(field).collect();
    Ok(Message { fields, span })
}

fn field(pair: Pair<Rule>) -> Field {
    let mut inner = pair.into_inner();
    let key = inner.next().expect("grammar: field starts with a key");
    let value = inner.next().expect("grammar: field has a value");
    Field { key: key.as_str().to_string(), key_span: span_of(&key), value: value_of(value) }
}

fn value_of(pair: Pair<Rule>) -> Value {
    let span = span_of(&pair);
    let kind = match pair.as_rule() {
        Rule::message => ValueKind::Message(Message { fields: pair.into_inner().map(field).collect(), span }),
        Rule::list => ValueKind::List(pair.into_inner().map(value_of).collect()),
        Rule::string => ValueKind::Str(unescape(pair.into_inner().next().map_or("", |p| p.as_str()))),
        Rule::number => ValueKind::Number(parse_number(pair.as_str())),
        Rule::word => ValueKind::Word(pair.as_str().to_string()),
        other => unreachable!("grammar: unexpected value rule {other:?}"),
    };
    Value { kind, span }
}

fn parse_number(text: &str) -> f64 {
    match text.trim_start_matches('-') {
        "inf" => f64::INFINITY.copysign(if text.starts_with('-') { -1.0 } else { 1.0 }),
        "nan" => f64::NAN,
        _ => text.parse().unwrap_or(f64::NAN),
    }
}

fn unescape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some(other) => out.push(other),
            None => {}
        }
    }
    out
}

fn span_of(pair: &Pair<Rule>) -> Span {
    Span::new(pair.as_span().start(), pair.as_span().end())
}

fn check_nesting(text: &str) -> Result<()> {
    let (mut depth, mut in_string, mut in_comment) = (0usize, None::<char>, false);
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        if in_comment {
            in_comment = c != '\n';
        } else if let Some(quote) = in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == quote || c == '\n' {
                in_string = None;
            }
        } else {
            match c {
                '#' => in_comment = true,
                '"' | '\'' => in_string = Some(c),
                '{' | '[' => depth += 1,
                '}' | ']' => depth = depth.saturating_sub(1),
                _ => {}
            }
            if depth > MAX_NESTING {
                return Err(Diagnostic::new(
                    format!("blocks nested more than {MAX_NESTING} deep"),
                    Span::new(i, i + 1),
                    "too deep",
                ));
            }
        }
    }
    Ok(())
}

fn syntax_error(err: pest::error::Error<Rule>) -> Diagnostic {
    let span = match err.location {
        InputLocation::Pos(p) => Span::new(p, p + 1),
        InputLocation::Span((s, e)) => Span::new(s, e),
    };
    let expected = match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => describe_expected(positives),
        ErrorVariant::CustomError { message } => message.clone(),
    };
    Diagnostic::new("syntax error", span, format!("expected {expected}"))
}

fn describe_expected(rules: &[Rule]) -> String {
    let mut words: Vec<&str> = Vec::new();
    for rule in rules {
        let word = match rule {
            Rule::EOI => "end of file",
            Rule::field | Rule::key => "a field name",
            Rule::message => "'{'",
            Rule::list => "'['",
            Rule::string => "a string",
            Rule::number => "a number",
            Rule::word => "a word",
            _ => "a value",
        };
        if !words.contains(&word) {
            words.push(word);
        }
    }
    if rules.contains(&Rule::field) && !rules.contains(&Rule::EOI) {
        words.push("'}'");
    }
    match words.len() {
        0 => "something else".to_string(),
        1 => words[0].to_string(),
        n => format!("{} or {}", words[..n - 1].join(", "), words[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(m: &Message) -> Vec<&str> {
        m.fields.iter().map(|f| f.key.as_str()).collect()
    }

    #[test]
    fn parses_caffe_variants() {
        let text =
            "name: 'net' # comment\nlayer { name: \"a\"; top: \"x\", include: { phase: TEST } dim: [1, 2] lr: -1e-4 }";
        let m = parse(text).unwrap();
        assert_eq!(keys(&m), ["name", "layer"]);
        let ValueKind::Message(layer) = &m.fields[1].value.kind else { panic!() };
        assert_eq!(keys(layer), ["name", "top", "include", "dim", "lr"]);
        assert_eq!(layer.fields[4].value.kind, ValueKind::Number(-1e-4));
        let ValueKind::Message(include) = &layer.fields[2].value.kind else { panic!() };
        assert_eq!(include.fields[0].value.kind, ValueKind::Word("TEST".into()));
    }

    #[test]
    fn unescapes_strings() {
        let m = parse(r#"s: "a\"b\\c""#).unwrap();
        assert_eq!(m.fields[0].value.kind, ValueKind::Str("a\"b\\c".into()));
    }

    #[test]
    fn reports_position_of_syntax_errors() {
        let err = parse("layer {\n  name: \n}").unwrap_err();
        assert_eq!(err.span.start, 17);
        assert!(err.label.contains("a string"), "{}", err.label);
    }

    #[test]
    fn rejects_deep_nesting() {
        let text = "a {".repeat(100);
        assert!(parse(&text).unwrap_err().message.contains("nested"));
    }
}
