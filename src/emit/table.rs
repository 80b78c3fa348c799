//! Plain-text tables for the `--emit` listings.

/// Horizontal alignment of a column.
#[derive(Clone, Copy)]
pub(super) enum Align {
    /// Padded on the right.
    Left,
    /// Padded on the left.
    Right,
}

/// The rules drawn around a table.
#[derive(Clone, Copy, PartialEq)]
pub(super) enum Frame {
    /// Rows only.
    None,
    /// Column names above a rule of `-`.
    Header,
    /// Column names above a rule of `=`, and a closing rule of `=`.
    Full,
}

/// A text table whose column widths fit its contents; columns with no header and no text are
/// left out.
pub(super) struct Table {
    columns: Vec<(&'static str, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names and alignments.
    pub(super) fn new(columns: &[(&'static str, Align)]) -> Self {
        Table { columns: columns.to_vec(), rows: Vec::new() }
    }

    /// Appends a row of cells, one per column.
    pub(super) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Appends the table to `out`, every line prefixed by `indent`.
    pub(super) fn render(&self, out: &mut String, indent: &str, frame: Frame) {
        let header = frame != Frame::None;
        let len = |s: &str| s.chars().count();
        let widths: Vec<usize> = (0..self.columns.len())
            .map(|i| {
                let head = if header { len(self.columns[i].0) } else { 0 };
                self.rows.iter().map(|r| len(&r[i])).fold(head, usize::max)
            })
            .collect();
        let shown: Vec<usize> = (0..self.columns.len()).filter(|i| widths[*i] > 0).collect();
        let line = |cells: Vec<&str>| {
            let mut text = String::from(indent);
            for (k, &i) in shown.iter().enumerate() {
                let pad = " ".repeat(widths[i] - len(cells[i]));
                if k > 0 {
                    text.push_str("  ");
                }
                match self.columns[i].1 {
                    Align::Left => text.push_str(&format!("{}{pad}", cells[i])),
                    Align::Right => text.push_str(&format!("{pad}{}", cells[i])),
                }
            }
            format!("{}\n", text.trim_end())
        };
        let rule = |c: &str| {
            let total = shown.iter().map(|i| widths[*i]).sum::<usize>() + 2 * shown.len().saturating_sub(1);
            format!("{indent}{}\n", c.repeat(total))
        };
        if header {
            out.push_str(&line(self.columns.iter().map(|c| c.0).collect()));
            out.push_str(&rule(if frame == Frame::Full { "=" } else { "-" }));
        }
        for row in &self.rows {
            out.push_str(&line(row.iter().map(String::as_str).collect()));
        }
        if frame == Frame::Full {
            out.push_str(&rule("="));
        }
    }
}
