//! Rebuilding an issue ledger's files from its journal ([`repair()`]), for an
//! `autopack repair` command and for people.

use std::fs::OpenOptions;
use std::path::PathBuf;

use chrono::{DateTime, Utc};

use super::ledger::{FsIssueLedger, IssueLedgerError};
use crate::error::LayoutError;
use crate::fsio::{self, FileLock};
use crate::journal::{FsyncPolicy, read_journal};
use crate::paths::RunsRoot;
use crate::project::LedgerFiles;

/// A file found damaged and rebuilt (or left, when it could not be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairNote {
    /// The file.
    pub path: PathBuf,
    /// What was wrong and what was done.
    pub problem: String,
}

impl std::fmt::Display for RepairNote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

/// How [`repair()`] treats a damaged journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairOptions {
    /// When a journal line before the last is not a valid entry: cut the journal at that
    /// line, after copying the line and everything after it to
    /// `project_issue_journal.jsonl.corrupt-{now}` (fsynced first). Off: such a journal is
    /// a [`LayoutError::CorruptJournal`] naming the line, and nothing is changed.
    pub truncate_corrupt_journal: bool,
    /// The time in the backup's name.
    pub now: DateTime<Utc>,
}

/// What [`repair()`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    /// Files found damaged (and rebuilt).
    pub notes: Vec<RepairNote>,
    /// Every view file now written and current.
    pub views: usize,
    /// When the journal was cut: the backup of what was cut, the 1-based line it was cut
    /// at, and the bytes cut.
    pub journal_cut: Option<JournalCut>,
}

/// A journal cut at its first corrupt line by [`repair()`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalCut {
    /// The copy of the lines cut.
    pub backup: PathBuf,
    /// The first line cut (1-based).
    pub line: usize,
    /// The bytes cut.
    pub bytes: u64,
}

/// Rebuilds every view of the project ledger under `root` (backlog, run issue indexes,
/// phase issue files) and the manifest from the base and the journal, whatever they hold
/// now; the ledger's thresholds are kept.
///
/// The journal is the truth: a journal whose torn last line is cut as on every open. A
/// journal damaged before its last line cannot be replayed: with
/// [`RepairOptions::truncate_corrupt_journal`] the journal is cut at the first bad line,
/// the cut part backed up first (the entries after it are lost from the ledger, and kept
/// in the backup for a person to look at); without it the error names the file and line
/// and nothing is changed. A corrupt base (`project_issue_base.json`: an imported backlog,
/// or a snapshot saved through [`IssueStore`](autopack_issues::IssueStore)) cannot be
/// rebuilt from the journal and is an error naming it.
///
/// Nothing is half applied: the backup is durable before the journal is cut, and the
/// views are written atomically before the manifest that names them; a repair that fails
/// part way can be run again.
///
/// # Errors
/// [`IssueLedgerError`] naming the file (and line) that could not be read or written.
pub fn repair(root: &RunsRoot, options: &RepairOptions) -> Result<RepairReport, IssueLedgerError> {
    repair_files(root, &LedgerFiles::unsuffixed(root, None), options)
}

/// [`repair`] of one project's ledger files ([`crate::project::ledger_files`]).
///
/// # Errors
/// As [`repair`].
pub fn repair_files(
    root: &RunsRoot,
    files: &LedgerFiles,
    options: &RepairOptions,
) -> Result<RepairReport, IssueLedgerError> {
    let journal_path = files.journal.clone();
    let mut cut = None;
    {
        let _lock = FileLock::acquire(&journal_path)?;
        match read_journal(&journal_path, None) {
            Ok(_) => {}
            Err(LayoutError::CorruptJournal { line, .. }) if options.truncate_corrupt_journal => {
                cut = Some(cut_journal(&journal_path, line, options.now)?);
            }
            Err(e) => return Err(e.into()),
        }
    }
    let mut ledger = match FsIssueLedger::open_with(
        root.clone(),
        files.clone(),
        FsyncPolicy::EveryEntry,
        true,
    ) {
        Ok(ledger) => ledger,
        // An entry that parses but does not replay is damage too.
        Err(IssueLedgerError::Replay { seq, .. }) if options.truncate_corrupt_journal => {
            let line = line_of_seq(&journal_path, seq)?;
            {
                let _lock = FileLock::acquire(&journal_path)?;
                cut = Some(cut_journal(&journal_path, line, options.now)?);
            }
            FsIssueLedger::open_with(root.clone(), files.clone(), FsyncPolicy::EveryEntry, true)?
        }
        Err(e) => return Err(e),
    };
    let notes = ledger.take_repairs();
    Ok(RepairReport {
        notes,
        views: ledger.ledger().views().len(),
        journal_cut: cut,
    })
}

/// The 1-based line of the entry with sequence number `seq`.
fn line_of_seq(path: &std::path::Path, seq: u64) -> Result<usize, IssueLedgerError> {
    let contents = read_journal(path, None)?;
    let needle = format!("{{\"seq\":{seq},");
    contents
        .entries()
        .position(|line| line.starts_with(&needle))
        .map(|i| i + 1)
        .ok_or_else(|| {
            IssueLedgerError::Layout(LayoutError::CorruptJournal {
                path: path.to_owned(),
                line: 0,
                column: 0,
                message: format!("entry {seq} does not replay and its line was not found"),
            })
        })
}

/// Copies line `line` (1-based) and everything after it to a backup, fsyncs it, then cuts
/// the journal there (the caller holds the journal lock).
fn cut_journal(
    path: &std::path::Path,
    line: usize,
    now: DateTime<Utc>,
) -> Result<JournalCut, IssueLedgerError> {
    let bytes = std::fs::read(path).map_err(|e| LayoutError::io("read journal", path, e))?;
    let mut offset = 0usize;
    for _ in 1..line {
        match bytes[offset..].iter().position(|&b| b == b'\n') {
            Some(pos) => offset += pos + 1,
            None => break,
        }
    }
    let stamp = now.format("%Y%m%dT%H%M%SZ");
    let mut backup = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
    let mut n = 1;
    while backup.exists() {
        backup = PathBuf::from(format!("{}.corrupt-{stamp}-{n}", path.display()));
        n += 1;
    }
    fsio::write_atomic(&backup, &bytes[offset..])?;
    let file = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| LayoutError::io("open journal", path, e))?;
    file.set_len(offset as u64)
        .and_then(|()| file.sync_all())
        .map_err(|e| LayoutError::io("truncate journal", path, e))?;
    tracing::warn!(
        file = %path.display(),
        "journal cut at line {line} ({} bytes); the cut part is in {}",
        bytes.len() - offset,
        backup.display()
    );
    Ok(JournalCut {
        backup,
        line,
        bytes: (bytes.len() - offset) as u64,
    })
}
