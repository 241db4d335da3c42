//! Symlink rules: a patch may not create a symlink, change a tracked symlink's target, or
//! turn one into a regular file (or back) unless the policy allows symlinks; and no path
//! may go through a directory that is a symlink in the base tree (always refused).
//!
//! The tracked mode is read from the base tree, not from the patch's headers: a plain hunk
//! on a symlink declares no mode, and libgit2 would apply it as an edit of a regular file
//! (mode 120000 silently becoming 100644), after which a checkout that found the old link
//! on disk could write through it.

use git2::{Delta, Oid};

use super::tree::{MODE_LINK, MODE_TREE, Trees};
use super::{PolicyViolation, SymlinkChange};

/// The symlink rule for one delta: `status`, the modes its header declares (0 when it
/// declares none), the base tree's mode at its old path (`None` when absent) and at its
/// new path.
pub(super) fn symlink_change(
    status: Delta,
    declared_new_mode: i32,
    base_old_mode: Option<i32>,
    base_new_mode: Option<i32>,
) -> Option<SymlinkChange> {
    let was_link = base_old_mode == Some(MODE_LINK);
    match status {
        Delta::Deleted => None,
        // A typechange comes as a deletion and an addition of one path.
        Delta::Added if base_new_mode == Some(MODE_LINK) => Some(SymlinkChange::Retyped),
        Delta::Added | Delta::Renamed | Delta::Copied if declared_new_mode == MODE_LINK => {
            Some(SymlinkChange::Created)
        }
        // A rename or copy of a tracked symlink keeps its mode unless the header changes
        // it: a new link at the new path, or a retype.
        Delta::Renamed | Delta::Copied if was_link => Some(if declared_new_mode == 0 {
            SymlinkChange::Created
        } else {
            SymlinkChange::Retyped
        }),
        _ if was_link => Some(
            if declared_new_mode == MODE_LINK || declared_new_mode == 0 {
                SymlinkChange::Edited
            } else {
                SymlinkChange::Retyped
            },
        ),
        _ if declared_new_mode == MODE_LINK => Some(SymlinkChange::Retyped),
        _ => None,
    }
}

/// The first proper ancestor of `path` that is a symlink in `base`.
pub(super) fn symlinked_parent(trees: &mut Trees<'_>, base: Oid, path: &str) -> Option<String> {
    let mut prefix = String::new();
    let comps: Vec<&str> = path.split('/').collect();
    for comp in comps.iter().take(comps.len().saturating_sub(1)) {
        if !prefix.is_empty() {
            prefix.push('/');
        }
        prefix.push_str(comp);
        match trees.entry(base, &prefix) {
            Some((_, MODE_LINK)) => return Some(prefix),
            Some((_, MODE_TREE)) => {}
            _ => return None,
        }
    }
    None
}

/// The refusal for `path` when `change` is not allowed.
pub(super) fn refuse(path: &str, change: SymlinkChange) -> PolicyViolation {
    PolicyViolation::Symlink {
        path: path.to_owned(),
        change,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tree::MODE_BLOB;

    #[test]
    fn classifies_every_symlink_change() {
        use SymlinkChange::*;
        let link = Some(MODE_LINK);
        let file = Some(MODE_BLOB);
        assert_eq!(
            symlink_change(Delta::Added, MODE_LINK, None, None),
            Some(Created)
        );
        assert_eq!(symlink_change(Delta::Modified, 0, link, link), Some(Edited));
        assert_eq!(
            symlink_change(Delta::Modified, MODE_LINK, link, link),
            Some(Edited)
        );
        assert_eq!(
            symlink_change(Delta::Modified, MODE_BLOB, link, link),
            Some(Retyped)
        );
        assert_eq!(
            symlink_change(Delta::Modified, MODE_LINK, file, file),
            Some(Retyped)
        );
        assert_eq!(
            symlink_change(Delta::Added, MODE_BLOB, None, link),
            Some(Retyped)
        );
        assert_eq!(
            symlink_change(Delta::Renamed, MODE_LINK, link, None),
            Some(Created)
        );
        assert_eq!(
            symlink_change(Delta::Renamed, MODE_BLOB, link, None),
            Some(Retyped)
        );
        assert_eq!(symlink_change(Delta::Deleted, 0, link, link), None);
        assert_eq!(symlink_change(Delta::Modified, MODE_BLOB, file, file), None);
    }
}
