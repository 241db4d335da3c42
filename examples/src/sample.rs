//! The sample project the example run works on: a tiny POSIX-shell "greeter" whose tests
//! are shell scripts, created as a git repository with git2 (no `git` binary needed).
//!
//! `run_tests.sh` runs every `tests/test_*.sh` (and, with `--strict`, every
//! `tests/strict_*.sh` too) with `sh`, prints TAP lines (`ok 1 - tests/x.sh`,
//! `not ok 2 - tests/y.sh`) and writes a JUnit report (`junit.xml`) that the preflight gate
//! reads the failing tests from.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use git2::{Repository, RepositoryInitOptions, Signature, Time};

/// The README as committed on `main`.
pub const README: &str = "# greeter\n\nA tiny shell project used by the Autopack example run.\n\nRun the tests with `sh run_tests.sh` (add `--strict` for the strict CI profile).\n";

/// `src/hello.sh` as committed on `main`.
pub const HELLO: &str = "#!/bin/sh\n# Prints a greeting.\necho \"hello\"\n";

/// The test runner (POSIX sh).
pub const RUN_TESTS: &str = r#"#!/bin/sh
# Runs the greeter's tests: every tests/test_*.sh, and with --strict every
# tests/strict_*.sh too. Prints TAP lines and writes junit.xml (one testcase per
# test file, named by its path); exits 1 when any test fails.
cd "$(dirname "$0")" || exit 2
strict=no
[ "${1:-}" = "--strict" ] && strict=yes
n=0
failed=0
cases=""
for t in tests/test_*.sh tests/strict_*.sh; do
    [ -f "$t" ] || continue
    case "$t" in
        tests/strict_*) [ "$strict" = yes ] || continue ;;
    esac
    n=$((n + 1))
    if out=$(sh "$t" 2>&1); then
        echo "ok $n - $t"
        cases="$cases<testcase name=\"$t\"/>"
    else
        echo "not ok $n - $t"
        printf '%s\n' "$out" | sed 's/^/# /'
        failed=$((failed + 1))
        text=$(printf '%s' "$out" | sed 's/&/\&amp;/g; s/</\&lt;/g; s/>/\&gt;/g')
        cases="$cases<testcase name=\"$t\"><failure message=\"failed\">$text</failure></testcase>"
    fi
done
echo "1..$n"
printf '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites tests="%s" failures="%s"><testsuite tests="%s" failures="%s">%s</testsuite></testsuites>\n' \
    "$n" "$failed" "$n" "$failed" "$cases" > junit.xml
[ "$failed" -eq 0 ]
"#;

/// The JUnit report `run_tests.sh` writes (the example run's `--junit`).
pub const JUNIT_REPORT: &str = "junit.xml";

/// `.gitignore` as committed on `main`: the test report is never part of a change.
pub const GITIGNORE: &str = "junit.xml\n";

/// `tests/test_hello.sh` as committed on `main`.
pub const TEST_HELLO: &str = "#!/bin/sh\nout=$(sh src/hello.sh)\n[ \"$out\" = \"hello\" ] || { echo \"expected 'hello', got '$out'\"; exit 1; }\n";

/// The sample repository.
#[derive(Debug, Clone)]
pub struct SampleRepo {
    /// Its work tree.
    pub path: PathBuf,
    /// The tip of `main` (hex).
    pub main_tip: String,
    /// Whether it was created now (else an existing sample repository was reused).
    pub created: bool,
}

/// Creates the sample project as a git repository at `dir` (which must be missing or
/// empty), with one commit on `main` and HEAD on `main`. An existing sample repository
/// (one holding `run_tests.sh` and a `main` branch) is reused as it is.
///
/// `.autonomous_runs/` is added to `.git/info/exclude`, so the artefacts written inside
/// the repository never make it dirty.
///
/// # Errors
/// When `dir` holds something else, or the repository cannot be written.
pub fn create_sample_repo(dir: &Path) -> Result<SampleRepo> {
    if dir.join(".git").exists() && dir.join("run_tests.sh").is_file() {
        exclude_runs_dir(dir)?;
        let main_tip = main_tip(dir)?;
        return Ok(SampleRepo {
            path: dir.to_owned(),
            main_tip,
            created: false,
        });
    }
    if dir.exists()
        && fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty and is not a sample repository; name a new or empty directory",
            dir.display()
        );
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut opts = RepositoryInitOptions::new();
    opts.initial_head("main");
    let repo =
        Repository::init_opts(dir, &opts).with_context(|| format!("git init {}", dir.display()))?;
    let files: [(&str, &str); 5] = [
        (".gitignore", GITIGNORE),
        ("README.md", README),
        ("run_tests.sh", RUN_TESTS),
        ("src/hello.sh", HELLO),
        ("tests/test_hello.sh", TEST_HELLO),
    ];
    let mut index = repo.index().context("opening the index")?;
    for (rel, content) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
        index
            .add_path(Path::new(rel))
            .with_context(|| format!("adding {rel} to the index"))?;
    }
    index.write().context("writing the index")?;
    let tree_id = index.write_tree().context("writing the tree")?;
    let tree = repo.find_tree(tree_id).context("reading the tree")?;
    let sig = Signature::new(
        "Sample Author",
        "author@example.invalid",
        &Time::new(1_767_225_600, 0),
    )
    .context("signature")?;
    let commit = repo
        .commit(
            Some("refs/heads/main"),
            &sig,
            &sig,
            "Initial greeter",
            &tree,
            &[],
        )
        .context("committing the sample project")?;
    exclude_runs_dir(dir)?;
    Ok(SampleRepo {
        path: dir.to_owned(),
        main_tip: commit.to_string(),
        created: true,
    })
}

/// Adds `.autonomous_runs/` to the repository's `.git/info/exclude` (once).
///
/// # Errors
/// When the file cannot be read or written.
pub fn exclude_runs_dir(repo: &Path) -> Result<()> {
    let info = repo.join(".git").join("info");
    fs::create_dir_all(&info).with_context(|| format!("creating {}", info.display()))?;
    let exclude = info.join("exclude");
    let mut text = fs::read_to_string(&exclude).unwrap_or_default();
    if text.lines().any(|l| l.trim() == ".autonomous_runs/") {
        return Ok(());
    }
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(".autonomous_runs/\n");
    fs::write(&exclude, text).with_context(|| format!("writing {}", exclude.display()))
}

/// The tip of a branch (`main`, or a full ref name), as hex.
///
/// # Errors
/// When the repository or the branch cannot be read.
pub fn branch_tip(repo: &Path, branch: &str) -> Result<String> {
    let r = Repository::open(repo).with_context(|| format!("opening {}", repo.display()))?;
    let name = if branch.starts_with("refs/") {
        branch.to_owned()
    } else {
        format!("refs/heads/{branch}")
    };
    let id = r
        .refname_to_id(&name)
        .with_context(|| format!("reading {name} in {}", repo.display()))?;
    Ok(id.to_string())
}

/// The tip of `main`.
///
/// # Errors
/// As [`branch_tip`].
pub fn main_tip(repo: &Path) -> Result<String> {
    branch_tip(repo, "main")
}

/// Commits on `branch` that `base` does not have, newest first: (short id, subject).
///
/// # Errors
/// When the repository or a branch cannot be read.
pub fn commits_ahead(repo: &Path, branch: &str, base: &str) -> Result<Vec<(String, String)>> {
    let r = Repository::open(repo).with_context(|| format!("opening {}", repo.display()))?;
    let mut walk = r.revwalk().context("revwalk")?;
    walk.push_ref(branch)
        .with_context(|| format!("reading {branch}"))?;
    walk.hide_ref(base)
        .with_context(|| format!("reading {base}"))?;
    let mut out = Vec::new();
    for oid in walk {
        let oid = oid.context("walking commits")?;
        let commit = r.find_commit(oid).context("reading a commit")?;
        let id = oid.to_string();
        out.push((
            id[..10.min(id.len())].to_owned(),
            commit
                .summary()
                .ok()
                .flatten()
                .unwrap_or_default()
                .to_owned(),
        ));
    }
    Ok(out)
}

/// Tag names under `refs/tags/{prefix}`, sorted.
///
/// # Errors
/// When the repository cannot be read.
pub fn tags_under(repo: &Path, prefix: &str) -> Result<Vec<String>> {
    let r = Repository::open(repo).with_context(|| format!("opening {}", repo.display()))?;
    let mut out: Vec<String> = r
        .tag_names(Some(&format!("{prefix}*")))
        .context("listing tags")?
        .iter()
        .filter_map(|t| t.ok().flatten().map(str::to_owned))
        .collect();
    out.sort();
    Ok(out)
}

/// Quotes `s` for `sh` (single quotes).
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The folder where the sample's flaky test keeps its state for run `run_id`: beside the
/// repository's folder, never inside it (created empty).
///
/// # Errors
/// When it cannot be created.
pub fn state_dir(repo: &Path, run_id: &autopack::core::ids::RunId) -> anyhow::Result<PathBuf> {
    let name = format!(
        "{}.autopack-example-state",
        repo.file_name().unwrap_or_default().to_string_lossy()
    );
    let dir = repo.with_file_name(name).join(run_id.as_str());
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| anyhow::anyhow!("creating {}: {e}", dir.display()))?;
    Ok(dir)
}

/// The sample project's test command for a CI profile. `state_dir` (outside every
/// checkout) is where the flaky test remembers that it has already failed once.
pub fn test_command(state_dir: &Path, strict: bool) -> String {
    format!(
        "AUTOPACK_EXAMPLE_STATE={} sh run_tests.sh{}",
        shell_quote(&state_dir.display().to_string()),
        if strict { " --strict" } else { "" }
    )
}
