//! Integration branches, commits of checked patches and snapshot tags.

use std::fmt;
use std::path::{Path, PathBuf};

use autopack_core::ids::{PhaseId, RunId, TierId};
use git2::{ErrorCode, ObjectType, Oid, Repository};

use crate::loose::LooseWriter;
use crate::policy::{CheckedPatch, TreeCache};
use crate::refs::{ProtectedRefs, integration_ref, snapshot_tag_name, snapshot_tag_ref};

/// Options of [`IntegrationBranch::create`] and [`IntegrationBranch::open`].
#[derive(Debug, Clone, Default)]
pub struct BranchOptions {
    /// Refs no call may write (always `main` and `master`).
    pub protected: ProtectedRefs,
}

/// A commit identity with an explicit time (the supervisor's clock decides, not this crate).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitSignature {
    /// Author and committer name.
    pub name: String,
    /// Author and committer e-mail.
    pub email: String,
    /// Seconds since the Unix epoch.
    pub seconds: i64,
    /// Offset from UTC in minutes.
    pub offset_minutes: i32,
}

impl CommitSignature {
    pub(crate) fn to_git(&self) -> Result<git2::Signature<'static>, git2::Error> {
        git2::Signature::new(
            &self.name,
            &self.email,
            &git2::Time::new(self.seconds, self.offset_minutes),
        )
    }
}

/// Which agent's work a commit holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// The Builder's patch.
    Builder,
    /// The Auditor's fix.
    Auditor,
}

impl Role {
    /// `builder` or `auditor`, as written in the `Autopack-Role:` trailer.
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Builder => "builder",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a commit records besides the patch.
#[derive(Debug, Clone)]
pub struct CommitInfo {
    /// The phase's tier.
    pub tier_id: TierId,
    /// The phase the patch belongs to.
    pub phase_id: PhaseId,
    /// Who wrote the patch.
    pub role: Role,
    /// Free text; its first line becomes the subject after `autopack({run}/{phase}): `.
    pub message: String,
    /// Author and committer.
    pub signature: CommitSignature,
    /// Where the patch came from, for the provenance trailers.
    pub provenance: Option<Provenance>,
}

/// Where a run's patch came from: what the `Autopack-Attempt`, `Autopack-Patch-SHA256`
/// and `Autopack-Journal` trailers record, so that a resume and `autopack verify` can
/// match every commit of the integration branch with the journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance {
    /// The attempt that wrote the patch.
    pub attempt: u32,
    /// The SHA-256 of the patch text, as submitted.
    pub patch_sha256: String,
    /// The journal's position (entries, head hash) when the patch was applied.
    pub journal: Option<String>,
}

impl CommitInfo {
    /// The full commit message: subject naming run and phase, body, and the trailers
    /// `Autopack-Run:`, `Autopack-Tier:`, `Autopack-Phase:`, `Autopack-Role:`.
    pub fn message_for(&self, run_id: &RunId) -> String {
        let text = self.message.trim();
        let (subject, body) = match text.split_once('\n') {
            Some((s, b)) => (s.trim(), b.trim()),
            None => (text, ""),
        };
        let mut out = format!("autopack({run_id}/{}): {subject}\n\n", self.phase_id);
        if !body.is_empty() {
            out.push_str(body);
            out.push_str("\n\n");
        }
        out.push_str(&format!(
            "Autopack-Run: {run_id}\nAutopack-Tier: {}\nAutopack-Phase: {}\nAutopack-Role: {}\n",
            self.tier_id, self.phase_id, self.role
        ));
        if let Some(p) = &self.provenance {
            out.push_str(&format!(
                "Autopack-Attempt: {}\nAutopack-Patch-SHA256: {}\n",
                p.attempt, p.patch_sha256
            ));
            if let Some(journal) = &p.journal {
                out.push_str(&format!("Autopack-Journal: {journal}\n"));
            }
        }
        out
    }
}

/// A commit made by [`IntegrationBranch::commit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppliedCommit {
    /// The new commit (the branch's new tip).
    pub commit: Oid,
    /// Its parent (the tip the patch was checked against).
    pub parent: Oid,
    /// Its tree.
    pub tree: Oid,
}

/// A snapshot tag of the integration branch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotTag {
    /// Full ref name, `refs/tags/autonomous/{run}/tier-{tier}/phase-{phase}`.
    pub ref_name: String,
    /// The commit it points to (peeled).
    pub target: Oid,
}

/// The integration branch's state, for reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchStatus {
    /// Full ref name.
    pub ref_name: String,
    /// Current tip.
    pub tip: Oid,
    /// The base branch's full ref name.
    pub base_ref: String,
    /// The merge base of the tip and the base branch (the base commit the run forked from).
    pub base: Oid,
    /// Commits on the branch that the base branch does not have.
    pub commits_ahead: usize,
    /// Snapshot tags of the run, sorted by name.
    pub snapshot_tags: Vec<SnapshotTag>,
}

/// Errors of branch creation, commits and tags.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The ref is protected; no run may write it.
    #[error("protected_ref: {ref_name} is protected by pattern {pattern:?}")]
    ProtectedRef {
        /// The refused ref.
        ref_name: String,
        /// The pattern protecting it.
        pattern: String,
    },
    /// The base is not an existing branch.
    #[error("base_not_found: base branch {base:?} does not exist in {repo}")]
    BaseNotFound {
        /// The base as given.
        base: String,
        /// The repository.
        repo: PathBuf,
    },
    /// `create` found the branch already there (use `open` to resume).
    #[error("branch_exists: {ref_name} already exists")]
    BranchExists {
        /// The branch.
        ref_name: String,
    },
    /// `open` (or a later call) did not find the branch.
    #[error("branch_missing: {ref_name} does not exist")]
    BranchMissing {
        /// The branch.
        ref_name: String,
    },
    /// The branch is the host's checked-out branch; writing it would desynchronise the host's
    /// index and work tree from HEAD.
    #[error("checked_out: {ref_name} is checked out as HEAD; refusing to move it")]
    CheckedOut {
        /// The branch.
        ref_name: String,
    },
    /// The patch was checked against another branch.
    #[error("wrong_branch: patch was checked against {checked} but is being applied to {ref_name}")]
    WrongBranch {
        /// The branch the patch was checked on.
        checked: String,
        /// This branch.
        ref_name: String,
    },
    /// Someone else moved the branch since the patch was checked.
    #[error("stale_tip: {ref_name} is at {found}, the patch was checked against {expected}")]
    StaleTip {
        /// The branch.
        ref_name: String,
        /// The tip the patch was checked against.
        expected: Oid,
        /// The tip found (zero when unknown).
        found: Oid,
    },
    /// A snapshot tag already exists for another commit.
    #[error("tag_conflict: {ref_name} points to {existing}, not {requested}")]
    TagConflict {
        /// The tag.
        ref_name: String,
        /// Where it points.
        existing: Oid,
        /// Where the caller wanted it.
        requested: Oid,
    },
    /// The commit to tag is not on the integration branch.
    #[error("not_on_branch: {commit} is not on {ref_name}")]
    NotOnBranch {
        /// The commit.
        commit: Oid,
        /// The branch.
        ref_name: String,
    },
    /// The repository failed.
    #[error("git: {op} failed in {repo}: {source}")]
    Git {
        /// What was being done.
        op: &'static str,
        /// The repository.
        repo: PathBuf,
        /// The libgit2 error.
        #[source]
        source: git2::Error,
    },
    /// Writing an object file failed.
    #[error("io: {op} failed in {repo}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The repository.
        repo: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

/// A run's integration branch `refs/heads/autonomous/{run_id}`.
///
/// Owns its own handle on the repository; nothing here checks out, touches HEAD, the index
/// or the work tree.
pub struct IntegrationBranch {
    repo: Repository,
    loose: LooseWriter,
    trees: TreeCache,
    path: PathBuf,
    run_id: RunId,
    ref_name: String,
    base_ref: String,
    protected: ProtectedRefs,
}

impl fmt::Debug for IntegrationBranch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IntegrationBranch")
            .field("repo", &self.path)
            .field("ref_name", &self.ref_name)
            .field("base_ref", &self.base_ref)
            .finish()
    }
}

pub(crate) fn open_repo(path: &Path) -> Result<Repository, git2::Error> {
    Repository::open(path)
}

/// The commit object `git_commit_create_buffer` formats for one parent, author = committer
/// and no encoding header, from ids alone (libgit2 wants the tree object loaded).
fn commit_buffer(
    tree: Oid,
    parent: Oid,
    sig: &git2::Signature<'_>,
    message: &str,
) -> Result<Vec<u8>, git2::Error> {
    if message.contains('\0') {
        return Err(git2::Error::from_str(
            "the commit message contains a NUL byte",
        ));
    }
    let when = sig.when();
    let sign = if when.offset_minutes() < 0 || when.sign() == '-' {
        '-'
    } else {
        '+'
    };
    let offset = when.offset_minutes().unsigned_abs();
    let mut person = Vec::with_capacity(sig.name_bytes().len() + sig.email_bytes().len() + 32);
    person.extend_from_slice(sig.name_bytes());
    person.extend_from_slice(b" <");
    person.extend_from_slice(sig.email_bytes());
    // libgit2 prints the time as a C `unsigned`.
    person.extend_from_slice(
        format!(
            "> {} {sign}{:02}{:02}\n",
            when.seconds() as u32,
            offset / 60,
            offset % 60
        )
        .as_bytes(),
    );
    let mut out = Vec::with_capacity(2 * person.len() + message.len() + 128);
    out.extend_from_slice(format!("tree {tree}\nparent {parent}\nauthor ").as_bytes());
    out.extend_from_slice(&person);
    out.extend_from_slice(b"committer ");
    out.extend_from_slice(&person);
    out.push(b'\n');
    out.extend_from_slice(message.as_bytes());
    Ok(out)
}

/// `main` → `refs/heads/main`; full names are kept.
pub(crate) fn branch_ref(name: &str) -> String {
    if name.starts_with("refs/") {
        name.to_owned()
    } else {
        format!("refs/heads/{name}")
    }
}

impl IntegrationBranch {
    /// Creates `refs/heads/autonomous/{run_id}` at the tip of `base` (a branch name such as
    /// `main`, or a full `refs/heads/…` name).
    ///
    /// # Errors
    /// [`ApplyError::ProtectedRef`], [`ApplyError::BaseNotFound`],
    /// [`ApplyError::BranchExists`], [`ApplyError::Git`].
    pub fn create(
        repo: impl AsRef<Path>,
        run_id: &RunId,
        base: &str,
        opts: BranchOptions,
    ) -> Result<IntegrationBranch, ApplyError> {
        let branch = Self::handle(repo.as_ref(), run_id, base, opts)?;
        branch.guard_writable()?;
        let base_tip = branch.base_tip(base)?;
        let log = format!("autopack: create integration branch for run {run_id}");
        let created = branch
            .repo
            .reference(&branch.ref_name, base_tip, false, &log)
            .map(|_| ());
        match created {
            Ok(()) => Ok(branch),
            Err(e) if e.code() == ErrorCode::Exists => Err(ApplyError::BranchExists {
                ref_name: branch.ref_name.clone(),
            }),
            Err(e) => Err(branch.git("create branch", e)),
        }
    }

    /// Opens an existing integration branch (to resume a run).
    ///
    /// # Errors
    /// [`ApplyError::ProtectedRef`], [`ApplyError::BaseNotFound`],
    /// [`ApplyError::BranchMissing`], [`ApplyError::Git`].
    pub fn open(
        repo: impl AsRef<Path>,
        run_id: &RunId,
        base: &str,
        opts: BranchOptions,
    ) -> Result<IntegrationBranch, ApplyError> {
        let branch = Self::handle(repo.as_ref(), run_id, base, opts)?;
        branch.guard_writable()?;
        branch.base_tip(base)?;
        branch.tip()?;
        Ok(branch)
    }

    fn handle(
        path: &Path,
        run_id: &RunId,
        base: &str,
        opts: BranchOptions,
    ) -> Result<IntegrationBranch, ApplyError> {
        let git = |op| {
            move |source| ApplyError::Git {
                op,
                repo: path.to_owned(),
                source,
            }
        };
        let repo = open_repo(path).map_err(git("open repository"))?;
        // As libgit2's own loose backend: `core.fsyncObjectFiles` decides.
        let fsync = repo
            .config()
            .map_err(git("read configuration"))?
            .get_bool("core.fsyncObjectFiles")
            .unwrap_or(false);
        let loose = LooseWriter::new(repo.commondir().join("objects"), fsync);
        Ok(IntegrationBranch {
            repo,
            loose,
            trees: TreeCache::default(),
            path: path.to_owned(),
            run_id: run_id.clone(),
            ref_name: integration_ref(run_id),
            base_ref: branch_ref(base),
            protected: opts.protected,
        })
    }

    fn base_tip(&self, base: &str) -> Result<Oid, ApplyError> {
        let not_found = || ApplyError::BaseNotFound {
            base: base.to_owned(),
            repo: self.path.clone(),
        };
        if !self.base_ref.starts_with("refs/heads/") {
            return Err(not_found());
        }
        let reference = self
            .repo
            .find_reference(&self.base_ref)
            .map_err(|_| not_found())?;
        let commit = reference.peel_to_commit().map_err(|_| not_found())?;
        Ok(commit.id())
    }

    /// Refuses protected refs and the branch HEAD points to.
    fn guard_writable(&self) -> Result<(), ApplyError> {
        if let Err(pattern) = self.protected.check(&self.ref_name) {
            return Err(ApplyError::ProtectedRef {
                ref_name: self.ref_name.clone(),
                pattern,
            });
        }
        if let Ok(head) = self.repo.find_reference("HEAD")
            && head.symbolic_target().ok().flatten() == Some(self.ref_name.as_str())
        {
            return Err(ApplyError::CheckedOut {
                ref_name: self.ref_name.clone(),
            });
        }
        Ok(())
    }

    pub(crate) fn git(&self, op: &'static str, source: git2::Error) -> ApplyError {
        ApplyError::Git {
            op,
            repo: self.path.clone(),
            source,
        }
    }

    /// The run this branch belongs to.
    pub fn run_id(&self) -> &RunId {
        &self.run_id
    }

    /// `refs/heads/autonomous/{run_id}`.
    pub fn ref_name(&self) -> &str {
        &self.ref_name
    }

    /// The repository's path as given.
    pub fn repo_path(&self) -> &Path {
        &self.path
    }

    pub(crate) fn repo(&self) -> &Repository {
        &self.repo
    }

    pub(crate) fn loose(&self) -> &LooseWriter {
        &self.loose
    }

    pub(crate) fn tree_cache(&self) -> &TreeCache {
        &self.trees
    }

    /// The branch's current tip, read from the ref now.
    ///
    /// # Errors
    /// [`ApplyError::BranchMissing`], [`ApplyError::Git`].
    pub fn tip(&self) -> Result<Oid, ApplyError> {
        match self.repo.refname_to_id(&self.ref_name) {
            Ok(id) => Ok(id),
            Err(e) if e.code() == ErrorCode::NotFound => Err(ApplyError::BranchMissing {
                ref_name: self.ref_name.clone(),
            }),
            Err(e) => Err(self.git("read branch tip", e)),
        }
    }

    /// Tip, base, commits ahead of the base branch and snapshot tags.
    ///
    /// # Errors
    /// [`ApplyError::BranchMissing`], [`ApplyError::Git`].
    pub fn status(&self) -> Result<BranchStatus, ApplyError> {
        let tip = self.tip()?;
        let base_tip = self
            .repo
            .refname_to_id(&self.base_ref)
            .map_err(|e| self.git("read base branch", e))?;
        let base = self
            .repo
            .merge_base(tip, base_tip)
            .map_err(|e| self.git("merge base", e))?;
        let (commits_ahead, _) = self
            .repo
            .graph_ahead_behind(tip, base_tip)
            .map_err(|e| self.git("ahead/behind", e))?;
        let mut snapshot_tags = Vec::new();
        let glob = format!("refs/tags/autonomous/{}/*", self.run_id);
        let refs = self
            .repo
            .references_glob(&glob)
            .map_err(|e| self.git("list tags", e))?;
        for reference in refs {
            let reference = reference.map_err(|e| self.git("list tags", e))?;
            let Ok(name) = reference.name() else { continue };
            let target = reference
                .peel_to_commit()
                .map_err(|e| self.git("peel tag", e))?
                .id();
            snapshot_tags.push(SnapshotTag {
                ref_name: name.to_owned(),
                target,
            });
        }
        snapshot_tags.sort_by(|a, b| a.ref_name.cmp(&b.ref_name));
        Ok(BranchStatus {
            ref_name: self.ref_name.clone(),
            tip,
            base_ref: self.base_ref.clone(),
            base,
            commits_ahead,
            snapshot_tags,
        })
    }

    /// Commits a checked patch onto the branch (no checkout): parent = the tip it was checked
    /// against, tree = the tree the check computed. Moves only this branch's ref, with a
    /// compare-and-swap: if the tip moved since the check, no ref moves (the unreferenced
    /// commit object is left for `git gc`).
    ///
    /// # Errors
    /// [`ApplyError::StaleTip`], [`ApplyError::WrongBranch`], [`ApplyError::ProtectedRef`],
    /// [`ApplyError::CheckedOut`], [`ApplyError::BranchMissing`], [`ApplyError::Git`],
    /// [`ApplyError::Io`] when the commit object cannot be written.
    pub fn commit(
        &self,
        patch: &CheckedPatch,
        info: &CommitInfo,
    ) -> Result<AppliedCommit, ApplyError> {
        // A candidate plus a compare-and-swap of the ref: the tip must still be the one the
        // patch was checked against.
        self.guard_writable()?;
        let candidate = self.write_candidate(patch, info)?;
        self.move_to(&candidate)?;
        Ok(candidate)
    }

    /// Commits a checked patch as a *candidate*: a commit object whose parent is the tip
    /// the patch was checked against, written to the object database without moving any
    /// ref. CI runs on the candidate (in a [`crate::workspace`] checkout of it); only
    /// [`IntegrationBranch::advance`] makes it part of the branch, so a patch that fails CI
    /// never reaches the branch. With a fixed signature the same patch on the same tip gives
    /// the same commit id, so a retry after a crash is harmless.
    ///
    /// # Errors
    /// [`ApplyError::WrongBranch`], [`ApplyError::ProtectedRef`],
    /// [`ApplyError::CheckedOut`], [`ApplyError::BranchMissing`], [`ApplyError::Git`],
    /// [`ApplyError::Io`] when the commit object cannot be written.
    pub fn commit_candidate(
        &self,
        patch: &CheckedPatch,
        info: &CommitInfo,
    ) -> Result<AppliedCommit, ApplyError> {
        self.guard_writable()?;
        self.write_candidate(patch, info)
    }

    /// [`IntegrationBranch::commit_candidate`] after the guard.
    fn write_candidate(
        &self,
        patch: &CheckedPatch,
        info: &CommitInfo,
    ) -> Result<AppliedCommit, ApplyError> {
        if patch.branch_ref() != self.ref_name {
            return Err(ApplyError::WrongBranch {
                checked: patch.branch_ref().to_owned(),
                ref_name: self.ref_name.clone(),
            });
        }
        let odb = self.repo.odb().map_err(|e| self.git("object store", e))?;
        // The check found both (the tip it read, the tree it wrote); only make sure neither
        // has gone since, without reading them back.
        let parent = patch.base_tip();
        let tree = patch.tree();
        for (id, what) in [(parent, "find parent"), (tree, "find tree")] {
            if !odb.exists(id) {
                let missing = git2::Error::from_str(&format!("{id} is not in the repository"));
                return Err(self.git(what, missing));
            }
        }
        let sig = info
            .signature
            .to_git()
            .map_err(|e| self.git("signature", e))?;
        let message = info.message_for(&self.run_id);
        let buffer = commit_buffer(tree, parent, &sig, &message)
            .map_err(|e| self.git("commit candidate", e))?;
        // Written by the loose writer (see `loose.rs` for why not `git_commit_create`).
        let commit = self
            .loose
            .write(&odb, ObjectType::Commit, &buffer)
            .map_err(|source| ApplyError::Io {
                op: "write commit",
                repo: self.path.clone(),
                source,
            })?;
        self.trees.note_commit(commit, tree);
        Ok(AppliedCommit {
            commit,
            parent,
            tree,
        })
    }

    /// The candidate `commit` as [`IntegrationBranch::advance`] takes it, read back from the
    /// object database (for a host that resumes after a crash and kept only the id).
    ///
    /// # Errors
    /// [`ApplyError::Git`] when the commit or its parent does not exist.
    pub fn candidate(&self, commit: Oid) -> Result<AppliedCommit, ApplyError> {
        let found = self
            .repo
            .find_commit(commit)
            .map_err(|e| self.git("find candidate", e))?;
        let parent = found
            .parent_id(0)
            .map_err(|e| self.git("find candidate parent", e))?;
        Ok(AppliedCommit {
            commit,
            parent,
            tree: found.tree_id(),
        })
    }

    /// Moves the branch to a candidate from [`IntegrationBranch::commit_candidate`], with a
    /// compare-and-swap from the candidate's parent. Idempotent: a branch already at the
    /// candidate is left as it is.
    ///
    /// # Errors
    /// [`ApplyError::StaleTip`] when the branch moved since the candidate was made;
    /// [`ApplyError::ProtectedRef`], [`ApplyError::CheckedOut`],
    /// [`ApplyError::BranchMissing`], [`ApplyError::Git`].
    pub fn advance(&self, candidate: &AppliedCommit) -> Result<(), ApplyError> {
        self.guard_writable()?;
        self.move_to(candidate)
    }

    /// [`IntegrationBranch::advance`] after the guard.
    fn move_to(&self, candidate: &AppliedCommit) -> Result<(), ApplyError> {
        // The compare-and-swap itself reads the tip under the ref lock; only when it refuses
        // do we read the tip to say why (already there, moved, or gone).
        let log = format!("autopack: advance to candidate {}", candidate.commit);
        match self.repo.reference_matching(
            &self.ref_name,
            candidate.commit,
            true,
            candidate.parent,
            &log,
        ) {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.code(), ErrorCode::Modified | ErrorCode::NotFound) => {
                let current = self.tip()?;
                if current == candidate.commit {
                    Ok(())
                } else {
                    Err(ApplyError::StaleTip {
                        ref_name: self.ref_name.clone(),
                        expected: candidate.parent,
                        found: current,
                    })
                }
            }
            Err(e) => Err(self.git("advance", e)),
        }
    }

    /// Creates the annotated tag `autonomous/{run}/tier-{tier}/phase-{phase}` on `target`
    /// (a commit on this branch). Retrying with the same target returns the existing tag;
    /// a different target is [`ApplyError::TagConflict`].
    ///
    /// # Errors
    /// [`ApplyError::TagConflict`], [`ApplyError::NotOnBranch`],
    /// [`ApplyError::ProtectedRef`], [`ApplyError::Git`].
    pub fn snapshot_tag(
        &self,
        tier_id: &TierId,
        phase_id: &PhaseId,
        target: Oid,
        tagger: &CommitSignature,
    ) -> Result<SnapshotTag, ApplyError> {
        let ref_name = snapshot_tag_ref(&self.run_id, tier_id, phase_id);
        if let Err(pattern) = self.protected.check(&ref_name) {
            return Err(ApplyError::ProtectedRef { ref_name, pattern });
        }
        if let Some(existing) = self.existing_tag(&ref_name)? {
            return self.same_tag(ref_name, existing, target);
        }
        let tip = self.tip()?;
        let on_branch = tip == target
            || self
                .repo
                .graph_descendant_of(tip, target)
                .map_err(|e| self.git("ancestry", e))?;
        if !on_branch {
            return Err(ApplyError::NotOnBranch {
                commit: target,
                ref_name: self.ref_name.clone(),
            });
        }
        let object = self
            .repo
            .find_object(target, Some(ObjectType::Commit))
            .map_err(|e| self.git("find tag target", e))?;
        let sig = tagger.to_git().map_err(|e| self.git("signature", e))?;
        let name = snapshot_tag_name(&self.run_id, tier_id, phase_id);
        let message = format!(
            "autopack snapshot: run {} tier {tier_id} phase {phase_id}\n\nAutopack-Run: {}\nAutopack-Tier: {tier_id}\nAutopack-Phase: {phase_id}\n",
            self.run_id, self.run_id
        );
        match self.repo.tag(&name, &object, &sig, &message, false) {
            Ok(_) => Ok(SnapshotTag { ref_name, target }),
            Err(e) if e.code() == ErrorCode::Exists => match self.existing_tag(&ref_name)? {
                Some(existing) => self.same_tag(ref_name, existing, target),
                None => Err(self.git("create tag", e)),
            },
            Err(e) => Err(self.git("create tag", e)),
        }
    }

    fn existing_tag(&self, ref_name: &str) -> Result<Option<Oid>, ApplyError> {
        match self.repo.find_reference(ref_name) {
            Ok(reference) => Ok(Some(
                reference
                    .peel_to_commit()
                    .map_err(|e| self.git("peel tag", e))?
                    .id(),
            )),
            Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
            Err(e) => Err(self.git("read tag", e)),
        }
    }

    fn same_tag(
        &self,
        ref_name: String,
        existing: Oid,
        target: Oid,
    ) -> Result<SnapshotTag, ApplyError> {
        if existing == target {
            Ok(SnapshotTag { ref_name, target })
        } else {
            Err(ApplyError::TagConflict {
                ref_name,
                existing,
                requested: target,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_buffer_matches_libgit2() {
        let dir = tempfile::tempdir().unwrap();
        let repo = Repository::init(dir.path()).unwrap();
        let tree = repo
            .find_tree(repo.treebuilder(None).unwrap().write().unwrap())
            .unwrap();
        let sig0 = git2::Signature::new("p", "p@example.invalid", &git2::Time::new(1, 0)).unwrap();
        let parent_id = repo.commit(None, &sig0, &sig0, "root", &tree, &[]).unwrap();
        let parent = repo.find_commit(parent_id).unwrap();
        let people = [
            ("autopack", "a@example.invalid", 1_700_000_000, 0),
            ("  Zoë Ünïcode ", " z@example.invalid ", 1_700_000_000, 330),
            ("west", "w@example.invalid", 86_400, -90),
            ("late", "l@example.invalid", 4_000_000_000, -1),
            ("far", "f@example.invalid", 1_234_567_890, 14 * 60 + 59),
        ];
        let messages = ["one line", "subject\n\nbody\n\nTrailer: x\n", ""];
        for (name, email, seconds, offset) in people {
            let sig = git2::Signature::new(name, email, &git2::Time::new(seconds, offset)).unwrap();
            for message in messages {
                let ours = commit_buffer(tree.id(), parent_id, &sig, message).unwrap();
                let theirs = repo
                    .commit_create_buffer(&sig, &sig, message, &tree, &[&parent])
                    .unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&theirs)
                );
            }
        }
        assert!(commit_buffer(tree.id(), parent_id, &sig0, "a\0b").is_err());
    }
}
