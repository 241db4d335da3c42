//! The size rules of [`PatchLimits`]: the patch's bytes (before it is parsed), its files
//! and changed lines, its longest added line. The post-image file size is checked where
//! the post-image is known (`splice.rs`).

use autopack_core::patch_rules::PatchLimits;

use super::lines::FileLines;
use super::{ChangedPath, PolicyViolation};

/// The whole text's size, before anything reads it.
pub(super) fn check_patch_bytes(
    patch: &[u8],
    limits: &PatchLimits,
    mode: Option<&str>,
) -> Result<(), PolicyViolation> {
    let bytes = autopack_core::limits::len_u64(patch);
    if bytes > limits.max_patch_bytes {
        return Err(PolicyViolation::PatchTooLarge {
            bytes,
            max: limits.max_patch_bytes,
            mode: mode.map(str::to_owned),
        });
    }
    Ok(())
}

/// Files, changed lines and the longest added line of a parsed patch.
pub(super) fn check_counts(
    changes: &[ChangedPath],
    lines: &[FileLines],
    limits: &PatchLimits,
    mode: Option<&str>,
) -> Result<(), PolicyViolation> {
    if changes.len() > limits.max_files {
        return Err(PolicyViolation::TooManyFiles {
            files: changes.len(),
            max: limits.max_files,
            path: changes.last().map(|c| c.path.clone()).unwrap_or_default(),
        });
    }
    let changed: usize = lines.iter().map(|l| l.added.len() + l.removed.len()).sum();
    if changed > limits.max_changed_lines {
        return Err(PolicyViolation::TooManyLines {
            lines: changed,
            max: limits.max_changed_lines,
            path: changes.first().map(|c| c.path.clone()).unwrap_or_default(),
        });
    }
    for (change, file) in changes.iter().zip(lines) {
        let longest = file.longest_added();
        if longest > limits.max_line_bytes {
            return Err(PolicyViolation::LineTooLong {
                path: change.path.clone(),
                bytes: longest,
                max: limits.max_line_bytes,
                mode: mode.map(str::to_owned),
            });
        }
    }
    Ok(())
}
