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
    let mut pairs = GraphParser::parse(Rule::file, text).map_err(|e| syntax_error(e, text))?;
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

/// Where brackets open outside strings and comments: the first position nested too deep, and the
/// brackets still open at the end of the text.
struct BracketScan {
    too_deep_at: Option<usize>,
    unclosed: Vec<usize>,
}

fn scan_brackets(text: &str) -> BracketScan {
    let mut scan = BracketScan { too_deep_at: None, unclosed: Vec::new() };
    let (mut in_string, mut in_comment, mut escaped) = (None::<char>, false, false);
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
                '{' | '[' => scan.unclosed.push(i),
                '}' | ']' => {
                    scan.unclosed.pop();
                }
                _ => {}
            }
            if scan.unclosed.len() > MAX_NESTING && scan.too_deep_at.is_none() {
                scan.too_deep_at = Some(i);
            }
        }
    }
    scan
}

fn check_nesting(text: &str) -> Result<()> {
    match scan_brackets(text).too_deep_at {
        Some(i) => {
            Err(Diagnostic::new(format!("blocks nested more than {MAX_NESTING} deep"), Span::new(i, i + 1), "too deep"))
        }
        None => Ok(()),
    }
}

/// Turns pest's error into a diagnostic, recognizing the common mistakes pest can only describe as
/// "expected ...": an unclosed block, an unterminated string, a malformed number, a stray character.
fn syntax_error(err: pest::error::Error<Rule>, text: &str) -> Diagnostic {
    let span = match err.location {
        InputLocation::Pos(p) => Span::new(p, p + 1),
        InputLocation::Span((s, e)) => Span::new(s, e),
    };
    let expected = match &err.variant {
        ErrorVariant::ParsingError { positives, .. } => describe_expected(positives),
        ErrorVariant::CustomError { message } => message.clone(),
    };
    let pos = span.start.min(text.len());
    let rest = &text[pos..];
    if rest.trim().is_empty() {
        if let Some(open) = scan_brackets(text).unclosed.last() {
            return Diagnostic::new(
                "unexpected end of file: a block is not closed",
                Span::new(*open, open + 1),
                "this block is never closed",
            )
            .help("add the missing '}' (or ']')");
        }
    }
    let next = rest.chars().next().unwrap_or(' ');
    if next == '"' || next == '\'' {
        let line_end = rest.find('\n').map_or(text.len(), |i| pos + i);
        return Diagnostic::new(
            "unterminated string",
            Span::new(pos, line_end),
            "the closing quote is missing before the end of the line",
        );
    }
    if let Some(number) = malformed_number(text, pos) {
        return Diagnostic::new(
            format!("malformed number `{}`", &text[number.start..number.end]),
            number,
            "not a number",
        )
        .help("numbers look like 12, -0.5, 1e-4");
    }
    if !(next.is_ascii_alphanumeric() || "_{}[]:;,#.-".contains(next) || next.is_whitespace()) {
        return Diagnostic::new(
            format!("unexpected character '{next}'"),
            Span::new(pos, pos + next.len_utf8()),
            format!("expected {expected}"),
        );
    }
    Diagnostic::new("syntax error", span, format!("expected {expected}"))
}

/// The number-like token at `pos`, or the one just before it, when it is not a valid number
/// (`1e-`, `10x`, `0.0.1`).
fn malformed_number(text: &str, pos: usize) -> Option<Span> {
    let is_token = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '+' || c == '_';
    let token_around = |at: usize| {
        let start = text[..at].char_indices().rev().find(|(_, c)| !is_token(*c)).map_or(0, |(i, c)| i + c.len_utf8());
        let end = text[at..].find(|c: char| !is_token(c)).map_or(text.len(), |i| at + i);
        Span::new(start, end)
    };
    let here = token_around(pos);
    let before = text[..pos].trim_end().len();
    let candidates = [here, token_around(before)];
    candidates.into_iter().find(|s| {
        let token = &text[s.start..s.end];
        let number_like = token.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.');
        number_like && token.len() > 1 && token.parse::<f64>().is_err() && !matches!(token, "-inf" | "-nan")
    })
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
    if (rules.contains(&Rule::field) || rules.contains(&Rule::key)) && !rules.contains(&Rule::EOI) {
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
    fn malformed_numbers_next_to_multibyte_text_do_not_panic() {
        // The token `1x` starts right after a two-byte character.
        assert_eq!(malformed_number("é1x }", 5), Some(Span::new(2, 4)));
    }

    #[test]
    fn rejects_deep_nesting() {
        let text = "a {".repeat(100);
        assert!(parse(&text).unwrap_err().message.contains("nested"));
    }
}
