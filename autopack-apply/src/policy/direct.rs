//! The direct apply: a text patch's hunks applied to the preimage bytes exactly where its
//! headers say, for the common patch (files edited, added or deleted, no rename, copy,
//! mode change or binary). It gives libgit2's result where it applies and declines
//! (`None`) everywhere else, and the caller then runs libgit2's apply, whose verdict and
//! error message stand; so it changes the speed of a check, never its outcome.
//!
//! Why: libgit2's apply needs every preimage copied into a scratch object store (read,
//! then hashed again) and hashes its results through that store; on a 1,000-file patch
//! the copy and the apply were more than half of the check's time. Here each preimage is
//! read once and each post-image hashed once.

use std::collections::{BTreeMap, HashMap};

use git2::{Delta, Diff, DiffLineType, ObjectType, Odb, Oid};

use super::lines::FileLines;

use super::tree::{MODE_BLOB, MODE_EXEC};

/// The post-image entry of each declared path that stays (path → id, mode) and the bytes
/// of each post-image blob.
pub(super) type PostImage = (BTreeMap<String, (Oid, i32)>, HashMap<Oid, Vec<u8>>);

/// Applies `diff` to the preimages `before` (path → id, mode in the base), reading their
/// bytes from `odb`; `Ok(None)` when this patch is not one the direct apply takes, or a
/// hunk does not match exactly (libgit2 then decides).
pub(super) fn apply(
    odb: &Odb<'_>,
    diff: &Diff<'_>,
    files: &[FileLines],
    before: &BTreeMap<String, (Oid, i32)>,
) -> Result<Option<PostImage>, git2::Error> {
    let mut after = before.clone();
    let mut data = HashMap::new();
    let mut seen = std::collections::BTreeSet::new();
    for (i, delta) in diff.deltas().enumerate() {
        if delta.flags().is_binary() {
            return Ok(None);
        }
        let Some(path) = delta.new_file().path().and_then(|p| p.to_str()) else {
            return Ok(None);
        };
        if delta.old_file().path().and_then(|p| p.to_str()) != Some(path)
            || !seen.insert(path.to_owned())
        {
            return Ok(None);
        }
        let declared_mode = i32::from(delta.new_file().mode());
        let pre = before.get(path).copied();
        let (pre_bytes, mode) = match (delta.status(), pre) {
            (Delta::Modified, Some((id, mode))) if mode == MODE_BLOB || mode == MODE_EXEC => {
                // A mode change (the header names another mode) is libgit2's to apply; so
                // is an executable file under a header naming no mode, which libgit2 makes
                // 100644 (a quirk kept as it was: the direct apply changes no outcome).
                if (declared_mode != 0 && declared_mode != mode)
                    || (declared_mode == 0 && mode != MODE_BLOB)
                {
                    return Ok(None);
                }
                let object = odb.read(id)?;
                if object.kind() != ObjectType::Blob {
                    return Ok(None);
                }
                (object.data().to_vec(), mode)
            }
            (Delta::Added, None) if declared_mode == MODE_BLOB || declared_mode == MODE_EXEC => {
                (Vec::new(), declared_mode)
            }
            (Delta::Deleted, Some((id, mode))) if mode == MODE_BLOB || mode == MODE_EXEC => {
                let object = odb.read(id)?;
                (object.data().to_vec(), mode)
            }
            _ => return Ok(None),
        };
        let Some(file) = files.get(i) else {
            return Ok(None);
        };
        let Some(post) = apply_hunks(&pre_bytes, file) else {
            return Ok(None);
        };
        if delta.status() == Delta::Deleted {
            // A removal must take the whole content away; libgit2 words the refusal.
            if !post.is_empty() {
                return Ok(None);
            }
            after.remove(path);
            continue;
        }
        let id = Oid::hash_object(ObjectType::Blob, &post)?;
        after.insert(path.to_owned(), (id, mode));
        data.insert(id, post);
    }
    Ok(Some((after, data)))
}

/// `pre` with the hunks of `patch` applied at exactly their stated lines; `None` when a
/// hunk's preimage lines differ from the file there, a hunk is out of order, or its
/// headers disagree with each other (libgit2 places hunks by their new-side line, which a
/// consistent patch makes the same place).
fn apply_hunks(pre: &[u8], file: &FileLines) -> Option<Vec<u8>> {
    let lines: Vec<&[u8]> = pre.split_inclusive(|b| *b == b'\n').collect();
    let mut out = Vec::with_capacity(pre.len() + 256);
    let mut at = 0usize;
    let mut offset: i64 = 0;
    for hunk in &file.hunks {
        let (old_start, old_lines) = (hunk.old_start as usize, hunk.old_lines as usize);
        let new_start = i64::from(hunk.new_start);
        let start = if old_lines == 0 {
            // Only the whole of an empty file; a pure insertion elsewhere is libgit2's.
            if old_start != 0 || !lines.is_empty() {
                return None;
            }
            0
        } else {
            old_start - 1
        };
        // libgit2 places the hunk at its new-side line in the file as patched so far.
        if (new_start.max(1) - 1) != start as i64 + offset || start < at {
            return None;
        }
        let mut pre_img: Vec<Vec<u8>> = Vec::new();
        let mut post_img: Vec<Vec<u8>> = Vec::new();
        // Where the last line went (preimage, postimage): a "no newline" marker strips
        // that line's newline wherever it is.
        let mut last = (false, false);
        for (origin, text) in &hunk.lines {
            let text = text.clone();
            match origin {
                DiffLineType::Context => {
                    pre_img.push(text.clone());
                    post_img.push(text);
                    last = (true, true);
                }
                DiffLineType::Deletion => {
                    pre_img.push(text);
                    last = (true, false);
                }
                DiffLineType::Addition => {
                    post_img.push(text);
                    last = (false, true);
                }
                DiffLineType::ContextEOFNL | DiffLineType::AddEOFNL | DiffLineType::DeleteEOFNL => {
                    for (take, img) in [(last.0, &mut pre_img), (last.1, &mut post_img)] {
                        if take
                            && let Some(prev) = img.last_mut()
                            && prev.last() == Some(&b'\n')
                        {
                            prev.pop();
                        }
                    }
                }
                _ => return None,
            }
        }
        if pre_img.len() != old_lines
            || lines.len() < start + old_lines
            || lines[start..start + old_lines]
                .iter()
                .zip(&pre_img)
                .any(|(have, want)| *have != want.as_slice())
        {
            return None;
        }
        for line in &lines[at..start] {
            out.extend_from_slice(line);
        }
        for line in &post_img {
            out.extend_from_slice(line);
        }
        at = start + old_lines;
        offset += post_img.len() as i64 - old_lines as i64;
    }
    for line in &lines[at..] {
        out.extend_from_slice(line);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use git2::{DiffFormat, Repository};
    use proptest::prelude::*;

    use super::*;

    /// A file's content as lines, and whether the last line ends in a newline.
    type Text = (Vec<String>, bool);

    fn render((lines, newline): &Text) -> Vec<u8> {
        let mut s = lines.join("\n");
        if *newline && !lines.is_empty() {
            s.push('\n');
        }
        s.into_bytes()
    }

    fn text() -> impl Strategy<Value = Text> {
        (
            prop::collection::vec(
                prop::sample::select(vec!["a", "b", "c", "", "x y", "a"]),
                0..12,
            )
            .prop_map(|v| v.into_iter().map(str::to_owned).collect()),
            any::<bool>(),
        )
    }

    /// The base and target contents of up to four files (`None`: absent), one executable.
    fn files() -> impl Strategy<Value = Vec<(Option<Text>, Option<Text>)>> {
        prop::collection::vec((prop::option::of(text()), prop::option::of(text())), 1..5)
    }

    fn tree(repo: &Repository, files: &[Option<Vec<u8>>]) -> Oid {
        let mut tb = repo.treebuilder(None).unwrap();
        for (i, content) in files.iter().enumerate() {
            if let Some(content) = content {
                let mode = if i == 0 { MODE_EXEC } else { MODE_BLOB };
                tb.insert(format!("f{i}"), repo.blob(content).unwrap(), mode)
                    .unwrap();
            }
        }
        tb.write().unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]
        /// Wherever the direct apply takes a patch, its result is libgit2's.
        #[test]
        fn the_direct_apply_gives_libgit2s_result(files in files()) {
            let dir = tempfile::tempdir().unwrap();
            let repo = Repository::init(dir.path()).unwrap();
            let old: Vec<_> = files.iter().map(|(a, _)| a.as_ref().map(render)).collect();
            let new: Vec<_> = files.iter().map(|(_, b)| b.as_ref().map(render)).collect();
            let (old_tree, new_tree) = (tree(&repo, &old), tree(&repo, &new));
            let diff = repo
                .diff_tree_to_tree(
                    Some(&repo.find_tree(old_tree).unwrap()),
                    Some(&repo.find_tree(new_tree).unwrap()),
                    None,
                )
                .unwrap();
            let mut text = Vec::new();
            diff.print(DiffFormat::Patch, |_, _, l| {
                if matches!(l.origin(), '+' | '-' | ' ') {
                    text.push(l.origin() as u8);
                }
                text.extend_from_slice(l.content());
                true
            })
            .unwrap();
            prop_assume!(!text.is_empty());
            let parsed = Diff::from_buffer(&text).unwrap();
            let odb = repo.odb().unwrap();
            let old_tree = repo.find_tree(old_tree).unwrap();
            let mut before = BTreeMap::new();
            let mut declared = BTreeSet::new();
            for d in parsed.deltas() {
                let p = d.new_file().path().unwrap().to_str().unwrap().to_owned();
                if let Some(e) = old_tree.get_name(&p) {
                    before.insert(p.clone(), (e.id(), e.filemode()));
                }
                declared.insert(p);
            }
            let theirs = super::super::splice::with_libgit2(&odb, &parsed, &declared, &before)
                .expect("libgit2 applies a diff of the two trees");
            let files = crate::policy::lines::file_lines(&parsed).unwrap();
            let ours = apply(&odb, &parsed, &files, &before).unwrap();
            prop_assert!(ours.is_some(), "a plain diff of edits is the direct apply's:\n{}", String::from_utf8_lossy(&text));
            let (ours, data) = ours.unwrap();
            prop_assert_eq!(&ours, &theirs.0, "{}", String::from_utf8_lossy(&text));
            for (id, bytes) in &data {
                prop_assert_eq!(Some(bytes), theirs.1.get(id));
            }
            // And both are the target tree.
            let new_tree = repo.find_tree(new_tree).unwrap();
            for (path, (id, mode)) in &ours {
                let e = new_tree.get_name(path).unwrap();
                prop_assert_eq!((e.id(), e.filemode()), (*id, *mode));
            }
        }
    }

    #[test]
    fn hunks_that_do_not_match_exactly_are_left_to_libgit2() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let id = repo.blob(b"a\nb\nc\nd\n").unwrap();
        let before = BTreeMap::from([("f".to_owned(), (id, MODE_BLOB))]);
        let odb = repo.odb().unwrap();
        let run = |patch: &str| {
            let diff = Diff::from_buffer(patch.as_bytes()).unwrap();
            let files = crate::policy::lines::file_lines(&diff).unwrap();
            apply(&odb, &diff, &files, &before).unwrap()
        };
        // Exact: taken.
        let exact = run("diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -2,2 +2,2 @@\n b\n-c\n+C\n");
        let (after, data) = exact.unwrap();
        assert_eq!(data[&after["f"].0], b"a\nb\nC\nd\n");
        // Stated one line off, a stale line, an inconsistent new-side line.
        assert!(
            run("diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n b\n-c\n+C\n").is_none()
        );
        assert!(
            run("diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -2,2 +2,2 @@\n b\n-x\n+C\n").is_none()
        );
        assert!(
            run("diff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -2,2 +7,2 @@\n b\n-c\n+C\n").is_none()
        );
    }

    #[test]
    fn a_patch_without_index_lines_keeps_the_mode_libgit2_keeps() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let odb = repo.odb().unwrap();
        for mode in [MODE_EXEC, MODE_BLOB] {
            let id = repo.blob(b"#!/bin/sh\necho hi\n").unwrap();
            let before = BTreeMap::from([("run.sh".to_owned(), (id, mode))]);
            let declared = BTreeSet::from(["run.sh".to_owned()]);
            let patch = "diff --git a/run.sh b/run.sh\n--- a/run.sh\n+++ b/run.sh\n@@ -1,2 +1,2 @@\n #!/bin/sh\n-echo hi\n+echo bye\n";
            let diff = Diff::from_buffer(patch.as_bytes()).unwrap();
            let files = crate::policy::lines::file_lines(&diff).unwrap();
            let theirs =
                super::super::splice::with_libgit2(&odb, &diff, &declared, &before).unwrap();
            match apply(&odb, &diff, &files, &before).unwrap() {
                Some((ours, _)) => assert_eq!(ours, theirs.0, "mode {mode:o}"),
                None => assert_eq!(mode, MODE_EXEC, "declined only for the executable"),
            }
        }
    }
}
