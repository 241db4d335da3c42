//! The added and removed lines of each file of a parsed diff, read once through libgit2's
//! patch objects and shared by the line limit and the test-integrity findings.

use git2::{Diff, DiffLineType, Patch};

/// One file's changed lines (without their newlines).
#[derive(Debug, Default, Clone)]
pub(crate) struct FileLines {
    /// Added lines, in order.
    pub(crate) added: Vec<Vec<u8>>,
    /// Removed lines, in order.
    pub(crate) removed: Vec<Vec<u8>>,
    /// The hunks as written (lines with their newlines), for the direct apply.
    pub(crate) hunks: Vec<HunkLines>,
}

/// One hunk: its header's numbers and its lines (origin, content with its newline).
#[derive(Debug, Clone)]
pub(crate) struct HunkLines {
    /// The preimage's first line (1-based; 0 for an empty preimage).
    pub(crate) old_start: u32,
    /// The preimage's line count.
    pub(crate) old_lines: u32,
    /// The postimage's first line.
    pub(crate) new_start: u32,
    /// Context, deletions, additions and "no newline" markers, in order.
    pub(crate) lines: Vec<(DiffLineType, Vec<u8>)>,
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
                let (hunk, count) = patch.hunk(h)?;
                let mut raw = Vec::with_capacity(count);
                for l in 0..count {
                    let line = patch.line_in_hunk(h, l)?;
                    let full = line.content();
                    let text = full.strip_suffix(b"\n").unwrap_or(full);
                    let text = text.strip_suffix(b"\r").unwrap_or(text);
                    match line.origin_value() {
                        DiffLineType::Addition => lines.added.push(text.to_vec()),
                        DiffLineType::Deletion => lines.removed.push(text.to_vec()),
                        _ => {}
                    }
                    raw.push((line.origin_value(), full.to_vec()));
                }
                lines.hunks.push(HunkLines {
                    old_start: hunk.old_start(),
                    old_lines: hunk.old_lines(),
                    new_start: hunk.new_start(),
                    lines: raw,
                });
            }
        }
        out.push(lines);
    }
    Ok(out)
}
