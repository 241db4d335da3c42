//! The added and removed lines of each file of a parsed diff, read once through libgit2's
//! patch objects and shared by the line limit and the test-integrity findings.

use git2::{Diff, DiffLineType, Patch};

/// One file's changed lines (without their newlines).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct FileLines {
    /// Added lines, in order.
    pub(crate) added: Vec<Vec<u8>>,
    /// Removed lines, in order.
    pub(crate) removed: Vec<Vec<u8>>,
}

impl FileLines {
    /// The longest added line's length in bytes.
    pub(crate) fn longest_added(&self) -> u64 {
        self.added.iter().map(|l| l.len() as u64).max().unwrap_or(0)
    }
}

/// The changed lines of every file of `diff`, in delta order.
pub(crate) fn file_lines(diff: &Diff<'_>) -> Result<Vec<FileLines>, git2::Error> {
    let mut out = Vec::with_capacity(diff.deltas().len());
    for i in 0..diff.deltas().len() {
        let mut lines = FileLines::default();
        if let Some(patch) = Patch::from_diff(diff, i)? {
            for h in 0..patch.num_hunks() {
                for l in 0..patch.num_lines_in_hunk(h)? {
                    let line = patch.line_in_hunk(h, l)?;
                    let text = line.content();
                    let text = text.strip_suffix(b"\n").unwrap_or(text);
                    let text = text.strip_suffix(b"\r").unwrap_or(text);
                    match line.origin_value() {
                        DiffLineType::Addition => lines.added.push(text.to_vec()),
                        DiffLineType::Deletion => lines.removed.push(text.to_vec()),
                        _ => {}
                    }
                }
            }
        }
        out.push(lines);
    }
    Ok(out)
}
