//! Workspaces against real repositories.

use super::*;

struct Host {
    _dir: tempfile::TempDir,
    repo: Repository,
}

fn host() -> Host {
    let dir = tempfile::tempdir().unwrap();
    let repo = Repository::init(dir.path().join("host")).unwrap();
    Host { _dir: dir, repo }
}

impl Host {
    /// Commits `files` on top of `parent` (no ref moved unless `main`).
    fn commit(&self, parent: Option<Oid>, files: &[(&str, &str)], main: bool) -> Oid {
        let base = parent.map(|p| self.repo.find_commit(p).unwrap().tree().unwrap());
        let mut tb = self.repo.treebuilder(base.as_ref()).unwrap();
        for (path, content) in files {
            let blob = self.repo.blob(content.as_bytes()).unwrap();
            tb.insert(path, blob, 0o100644).unwrap();
        }
        let tree = self.repo.find_tree(tb.write().unwrap()).unwrap();
        let sig =
            git2::Signature::new("t", "t@example.invalid", &git2::Time::new(1_700_000_000, 0))
                .unwrap();
        let parents: Vec<git2::Commit<'_>> = parent
            .iter()
            .map(|p| self.repo.find_commit(*p).unwrap())
            .collect();
        let refs: Vec<&git2::Commit<'_>> = parents.iter().collect();
        self.repo
            .commit(
                main.then_some("refs/heads/main"),
                &sig,
                &sig,
                "c",
                &tree,
                &refs,
            )
            .unwrap()
    }
}

#[test]
fn a_reused_workspace_follows_the_tip_and_reports_only_the_agents_change() {
    let h = host();
    let c1 = h.commit(None, &[("a", "1\n")], true);
    let parent = tempfile::tempdir().unwrap();
    let run = RunId::new("r").unwrap();
    let wss = Workspaces::open(h.repo.workdir().unwrap(), &run, parent.path()).unwrap();
    let ws = wss.checkout(Slot::Builder, c1, &[]).unwrap();
    assert_eq!(ws.change().unwrap(), None);
    std::fs::write(ws.path().join("b"), "2\n").unwrap();
    std::fs::write(ws.path().join("junk"), "x\n").unwrap();
    assert!(ws.change().unwrap().unwrap().contains("+++ b/b"));
    // A candidate that is on no ref of the host: its objects are copied over.
    let c2 = h.commit(Some(c1), &[("b", "2\n")], false);
    let ws = wss.checkout(Slot::Auditor, c2, &[(refs::TIP, c1)]).unwrap();
    let opened = Repository::open(ws.path()).unwrap();
    assert_eq!(
        opened.refname_to_id(refs::TIP).unwrap(),
        c1,
        "the tip beside it"
    );
    assert_eq!(
        ws.change_since(c1)
            .unwrap()
            .unwrap()
            .matches("diff --git")
            .count(),
        1
    );
    let ws = wss.checkout(Slot::Builder, c2, &[]).unwrap();
    assert_eq!(
        ws.change().unwrap(),
        None,
        "untracked junk is cleaned, b is committed"
    );
    assert!(!ws.path().join("junk").exists());
    std::fs::remove_file(ws.path().join("a")).unwrap();
    let change = ws.change().unwrap().unwrap();
    assert!(change.contains("deleted file mode"), "{change}");
}

/// Every file of the work tree (but `.git`) and its mode.
fn files(root: &Path) -> std::collections::BTreeMap<String, (u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if rel == ".git" {
                continue;
            }
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else if meta.file_type().is_symlink() {
                out.insert(rel, (0o120000, Vec::new()));
            } else {
                let exec = meta.permissions().mode() & 0o100;
                out.insert(rel, (exec, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    out
}

#[test]
fn a_reset_undoes_whatever_the_last_attempt_did_and_touches_nothing_else() {
    let h = host();
    let many: Vec<(String, String)> = (0..50)
        .map(|i| (format!("f{i}"), format!("{i}\n")))
        .collect();
    let refs: Vec<(&str, &str)> = many.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let c1 = h.commit(None, &refs, true);
    let c2 = h.commit(Some(c1), &[("f1", "changed\n"), ("new", "n\n")], false);
    let parent = tempfile::tempdir().unwrap();
    let run = RunId::new("r").unwrap();
    let wss = Workspaces::open(h.repo.workdir().unwrap(), &run, parent.path()).unwrap();
    let ws = wss.checkout(Slot::Builder, c1, &[]).unwrap();
    let clean_c1 = files(ws.path());
    let untouched = std::fs::metadata(ws.path().join("f40")).unwrap();
    // Everything an agent may do to a work tree.
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(ws.path().join("f2"), "edited\n").unwrap();
    std::fs::remove_file(ws.path().join("f3")).unwrap();
    std::fs::write(ws.path().join("untracked"), "u\n").unwrap();
    std::fs::create_dir_all(ws.path().join("deep/er")).unwrap();
    std::fs::write(ws.path().join("deep/er/x"), "x\n").unwrap();
    std::fs::write(ws.path().join(".gitignore"), "ignored\n").unwrap();
    std::fs::write(ws.path().join("ignored"), "i\n").unwrap();
    std::fs::set_permissions(ws.path().join("f4"), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::remove_file(ws.path().join("f5")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", ws.path().join("f5")).unwrap();
    let change = ws.change().unwrap().unwrap();
    for needle in [
        "+++ b/f2",
        "deleted file mode",
        "+++ b/untracked",
        "+++ b/deep/er/x",
        "new mode 100755",
        "b/f5",
    ] {
        assert!(change.contains(needle), "{needle} in {change}");
    }
    assert!(!change.contains("b/ignored"), "{change}");
    // Back to the same commit: exactly its files, and an untouched file not rewritten.
    let ws = wss.checkout(Slot::Builder, c1, &[]).unwrap();
    assert_eq!(files(ws.path()), clean_c1);
    assert_eq!(ws.change().unwrap(), None);
    let again = std::fs::metadata(ws.path().join("f40")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (again.ino(), again.mtime_nsec()),
        (untouched.ino(), untouched.mtime_nsec())
    );
    // On to the next commit, after another edit.
    std::fs::write(ws.path().join("f6"), "edited\n").unwrap();
    let ws = wss.checkout(Slot::Builder, c2, &[]).unwrap();
    let mut want = clean_c1.clone();
    want.insert("f1".into(), (0, b"changed\n".to_vec()));
    want.insert("new".into(), (0, b"n\n".to_vec()));
    assert_eq!(files(ws.path()), want);
    assert_eq!(ws.change().unwrap(), None);
    // An agent that rewrites the workspace's own index changes nothing either.
    std::fs::write(ws.path().join(".git/index"), b"garbage").unwrap();
    std::fs::write(ws.path().join("f7"), "edited\n").unwrap();
    assert!(ws.change().unwrap().unwrap().contains("+++ b/f7"));
    let ws = wss.checkout(Slot::Builder, c2, &[]).unwrap();
    assert_eq!(files(ws.path()), want);
}

#[test]
fn a_finished_attempt_hands_its_scan_to_the_next_checkout() {
    let h = host();
    let c1 = h.commit(None, &[("a", "1\n"), ("b", "2\n")], true);
    let parent = tempfile::tempdir().unwrap();
    let run = RunId::new("r").unwrap();
    let wss = Workspaces::open(h.repo.workdir().unwrap(), &run, parent.path()).unwrap();
    let ws = wss.checkout(Slot::Builder, c1, &[]).unwrap();
    let clean = files(ws.path());
    std::fs::write(ws.path().join("a"), "edited\n").unwrap();
    std::fs::write(ws.path().join("c"), "new\n").unwrap();
    let patch = ws.finish().unwrap().unwrap();
    assert!(
        patch.contains("+++ b/a") && patch.contains("+++ b/c"),
        "{patch}"
    );
    assert!(wss.dir().join("builder.scan").exists());
    // The next checkout undoes exactly what the scan found, and uses it up.
    let ws = wss.checkout(Slot::Builder, c1, &[]).unwrap();
    assert_eq!(files(ws.path()), clean);
    assert!(!wss.dir().join("builder.scan").exists());
    assert_eq!(ws.change().unwrap(), None);
}

#[test]
fn a_kept_scan_naming_anything_but_plain_relative_paths_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("builder.scan");
    keep_scan(&path, &[b"d/a".to_vec()], &[b"b".to_vec()]);
    assert_eq!(
        take_scan(&path),
        Some((vec![b"d/a".to_vec()], vec![b"b".to_vec()]))
    );
    assert!(!path.exists(), "a scan is used once");
    for bad in [
        &b"D../x\0"[..],
        b"D/etc/passwd\0",
        b"Ud//x\0",
        b"Ua/./b\0",
        b"Xa\0",
    ] {
        std::fs::write(&path, bad).unwrap();
        assert_eq!(take_scan(&path), None, "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn a_workspace_whose_git_dir_an_agent_tampered_with_is_cloned_anew() {
    let h = host();
    let c1 = h.commit(None, &[("a", "1\n")], true);
    let parent = tempfile::tempdir().unwrap();
    let run = RunId::new("r").unwrap();
    let wss = Workspaces::open(h.repo.workdir().unwrap(), &run, parent.path()).unwrap();
    let ws = wss.checkout(Slot::Builder, c1, &[]).unwrap();
    let git_dir = ws.path().join(".git");
    // An agent points the workspace at the host: a commondir, a symlinked HEAD, a hook.
    std::fs::write(
        git_dir.join("commondir"),
        h.repo.path().display().to_string(),
    )
    .unwrap();
    std::fs::create_dir_all(git_dir.join("hooks")).unwrap();
    std::fs::write(git_dir.join("hooks/post-checkout"), "#!/bin/sh\n").unwrap();
    let ws = wss.checkout(Slot::Builder, c1, &[]).unwrap();
    assert!(!git_dir.join("commondir").exists() && !git_dir.join("hooks").exists());
    std::os::unix::fs::symlink(h.repo.path().join("HEAD"), git_dir.join("ORIG_HEAD")).unwrap();
    let ws2 = wss.checkout(Slot::Builder, c1, &[]).unwrap();
    assert!(std::fs::symlink_metadata(git_dir.join("ORIG_HEAD")).is_err());
    assert_eq!(ws2.change().unwrap(), None);
    let _ = ws;
}

#[test]
fn workspaces_inside_the_host_work_tree_or_in_use_are_refused() {
    let h = host();
    h.commit(None, &[("a", "1\n")], true);
    let run = RunId::new("r").unwrap();
    let inside = h.repo.workdir().unwrap().join("ws");
    assert!(matches!(
        Workspaces::open(h.repo.workdir().unwrap(), &run, &inside),
        Err(WorkspaceError::InsideHost { .. })
    ));
    let parent = tempfile::tempdir().unwrap();
    let held = Workspaces::open(h.repo.workdir().unwrap(), &run, parent.path()).unwrap();
    assert!(matches!(
        Workspaces::open_waiting(
            h.repo.workdir().unwrap(),
            &run,
            parent.path(),
            std::time::Duration::from_millis(50)
        ),
        Err(WorkspaceError::Busy { .. })
    ));
    // A held folder is not reclaimed; a released one is.
    assert!(Workspaces::reclaim_stale(parent.path()).unwrap().is_empty());
    let dir = held.dir().to_owned();
    drop(held);
    assert_eq!(Workspaces::reclaim_stale(parent.path()).unwrap(), vec![dir]);
    // A run that opens its folder while a reclaimer holds the lock waits for it.
    let reclaimer = std::fs::File::options()
        .write(true)
        .open(
            parent
                .path()
                .join(format!("{}.lock", held_name(parent.path()))),
        )
        .unwrap();
    reclaimer.lock().unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(reclaimer);
    });
    let reopened = Workspaces::open(h.repo.workdir().unwrap(), &run, parent.path()).unwrap();
    release.join().unwrap();
    assert!(reopened.dir().is_dir());
}

/// The name of the one workspace folder's lock under `parent`, without `.lock`.
fn held_name(parent: &std::path::Path) -> String {
    std::fs::read_dir(parent)
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .find_map(|n| n.strip_suffix(".lock").map(str::to_owned))
        .unwrap()
}
