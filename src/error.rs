//! Source locations and diagnostics: every error graphc reports names `file:line:col`, shows the
//! line with a caret under the offending text, and says what was expected.

use std::fmt::Write as _;

/// A byte range in a source file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

impl Span {
    /// A span from `start` to `end` (bytes).
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
}

/// A value together with where it was written.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub span: Span,
}

impl<T> Spanned<T> {
    /// Wraps `value` written at `span`.
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

/// A graph file: its display name and its text.
#[derive(Clone, Debug)]
pub struct SourceFile {
    /// The name shown in messages (usually the path as given).
    pub name: String,
    /// The file's contents.
    pub text: String,
}

impl SourceFile {
    /// A source file named `name` holding `text`.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Self {
        SourceFile { name: name.into(), text: text.into() }
    }

    /// Reads a file; bytes that are not UTF-8 are an error naming the offset.
    pub fn read(path: &str) -> Result<Self, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read {path}: {e}"))?;
        Self::from_bytes(path, bytes)
    }

    /// Builds a source file from raw bytes, rejecting text that is not UTF-8.
    pub fn from_bytes(name: &str, bytes: Vec<u8>) -> Result<Self, String> {
        String::from_utf8(bytes).map(|text| SourceFile::new(name, text)).map_err(|e| {
            format!("{name}: not a UTF-8 text file (invalid byte at offset {})", e.utf8_error().valid_up_to())
        })
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.clamp(offset);
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, self.text[line_start..offset].chars().count() + 1)
    }

    /// `name:line:col` of a byte offset.
    pub fn location(&self, offset: usize) -> String {
        let (line, col) = self.line_col(offset);
        format!("{}:{line}:{col}", self.name)
    }

    fn clamp(&self, mut offset: usize) -> usize {
        offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        offset
    }

    fn line_text(&self, line: usize) -> &str {
        self.text.lines().nth(line - 1).unwrap_or("")
    }
}

/// One message attached to a diagnostic, optionally pointing at another place in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct Note {
    /// What the note says.
    pub message: String,
    /// Where it points, if anywhere.
    pub span: Option<Span>,
}

/// An error found in a graph file.
#[derive(Clone, Debug, PartialEq)]
pub struct Diagnostic {
    /// One-line summary.
    pub message: String,
    /// The offending text.
    pub span: Span,
    /// What is wrong at the caret, shown beside it.
    pub label: String,
    /// Further places and explanations.
    pub notes: Vec<Note>,
    /// A suggestion, such as "did you mean ...".
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with a message, the offending span and the text shown at the caret.
    pub fn new(message: impl Into<String>, span: Span, label: impl Into<String>) -> Self {
        Diagnostic { message: message.into(), span, label: label.into(), notes: Vec::new(), help: None }
    }

    /// Adds a note pointing at another place.
    pub fn note_at(mut self, message: impl Into<String>, span: Span) -> Self {
        self.notes.push(Note { message: message.into(), span: Some(span) });
        self
    }

    /// Adds a note without a location.
    pub fn note(mut self, message: impl Into<String>) -> Self {
        self.notes.push(Note { message: message.into(), span: None });
        self
    }

    /// Sets the help line.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Sets the help line to "did you mean ...?" when a close candidate exists.
    pub fn suggest<'a>(self, word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Self {
        match did_you_mean(word, candidates) {
            Some(best) => self.help(format!("did you mean \"{best}\"?")),
            None => self,
        }
    }

    /// Renders the diagnostic against its source file, rustc-style, without colours.
    pub fn render(&self, src: &SourceFile) -> String {
        let (line, col) = src.line_col(self.span.start);
        let mut out = format!("error: {}\n --> {}:{line}:{col}\n", self.message, src.name);
        render_snippet(&mut out, src, self.span, &self.label);
        for note in &self.notes {
            match note.span {
                Some(span) => {
                    let _ = writeln!(out, "note: {} at {}", note.message, src.location(span.start));
                    render_snippet(&mut out, src, span, "");
                }
                None => {
                    let _ = writeln!(out, "note: {}", note.message);
                }
            }
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "help: {help}");
        }
        out
    }
}

fn render_snippet(out: &mut String, src: &SourceFile, span: Span, label: &str) {
    let (line, col) = src.line_col(span.start);
    let text = src.line_text(line);
    let gutter = line.to_string().len();
    let end = src.clamp(span.end.max(span.start));
    let (end_line, end_col) = src.line_col(end);
    let width = if end_line == line { end_col.saturating_sub(col).max(1) } else { 1 };
    let width = width.min(text.chars().count().saturating_sub(col - 1).max(1));
    let pad = " ".repeat(gutter);
    let _ = writeln!(out, "{pad} |");
    let _ = writeln!(out, "{line} | {}", text.trim_end());
    let marker = format!("{}{}", " ".repeat(col - 1), "^".repeat(width));
    let _ = writeln!(out, "{pad} | {}{}", marker, if label.is_empty() { String::new() } else { format!(" {label}") });
}

/// The closest candidate to `word` by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .filter(|c| *c != word)
        .map(|c| (strsim::damerau_levenshtein(&word.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// The result type of every compiler stage.
pub type Result<T, E = Diagnostic> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let src = SourceFile::new("f.g", "ab\ncd");
        assert_eq!(src.line_col(0), (1, 1));
        assert_eq!(src.line_col(4), (2, 2));
        assert_eq!(src.line_col(99), (2, 3));
    }

    #[test]
    fn render_points_at_the_span() {
        let src = SourceFile::new("f.g", "x: 1\nbottom: \"c9\"\n");
        let d = Diagnostic::new("undefined blob", Span::new(13, 17), "no layer writes it");
        let text = d.render(&src);
        assert!(text.contains("--> f.g:2:9"), "{text}");
        assert!(text.contains("  |         ^^^^ no layer writes it"), "{text}");
    }

    #[test]
    fn did_you_mean_finds_typos_only() {
        assert_eq!(did_you_mean("Convlution", ["Convolution", "Pooling"]), Some("Convolution"));
        assert_eq!(did_you_mean("Banana", ["Convolution", "Pooling"]), None);
    }
}
