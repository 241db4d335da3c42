//! Agents in private workspaces: any [`Builder`] or [`Auditor`] wrapped so that each
//! attempt runs in a checkout of its own, and the change it leaves there is its patch.
//!
//! Before each attempt, [`InWorkspace`] checks the integration branch's tip (the Builder)
//! or the candidate under review (the Auditor) out in the run's workspace for that role
//! ([`autopack_apply::workspace`]: an independent clone, outside the host work tree) and
//! fills the request's [`Checkout`]: base, tip and head commits and the workspace path.
//! The agent may answer with a result that carries a patch (the JSON protocol, unchanged),
//! or simply edit files: when its result has no patch, the workspace's change relative to
//! the tip is the patch, and it goes through the same policy gate.

use std::sync::Arc;

use autopack_apply::workspace::{Slot, Workspace, WorkspaceError, Workspaces, refs};
use autopack_apply::{IntegrationBranch, Oid};
use autopack_core::message::{
    AuditorRecommendation, AuditorRequest, AuditorResult, BuilderRequest, BuilderResult,
    BuilderStatus, Checkout,
};

use crate::driver::{Auditor, Builder};
use crate::supervisor::AgentOutcome;

/// A Builder or Auditor whose attempts run in the run's private workspaces.
///
/// ```no_run
/// use std::sync::Arc;
/// use autopack::apply::workspace::Workspaces;
/// use autopack::apply::{BranchOptions, IntegrationBranch};
/// use autopack::host::{CommandAgent, InWorkspace};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let run = autopack::core::ids::RunId::new("run-1")?;
/// let repo = std::path::Path::new("my-repo");
/// let branch = IntegrationBranch::open(repo, &run, "main", BranchOptions::default())?;
/// let workspaces = Arc::new(Workspaces::open(repo, &run, &Workspaces::default_parent())?);
/// // A Builder that only edits files: its change is its patch.
/// let builder = InWorkspace::new(CommandAgent::new("echo done >> NOTES.md"), branch, workspaces);
/// # let _ = builder; Ok(()) }
/// ```
pub struct InWorkspace<A> {
    inner: A,
    branch: IntegrationBranch,
    workspaces: Arc<Workspaces>,
}

impl<A> InWorkspace<A> {
    /// Wraps `inner`; `branch` is a handle on the run's integration branch (read only
    /// here), `workspaces` the run's workspace folder.
    pub fn new(inner: A, branch: IntegrationBranch, workspaces: Arc<Workspaces>) -> InWorkspace<A> {
        InWorkspace {
            inner,
            branch,
            workspaces,
        }
    }

    /// The wrapped agent.
    pub fn inner(&self) -> &A {
        &self.inner
    }

    /// The tip and the run's base commit, now.
    fn tip_and_base(&self) -> Result<(Oid, Oid), String> {
        let status = self
            .branch
            .status()
            .map_err(|e| format!("the integration branch cannot be read: {e}"))?;
        Ok((status.tip, status.base))
    }

    fn prepare(
        &self,
        slot: Slot,
        head: Oid,
        tip: Oid,
        base: Oid,
    ) -> Result<(Workspace, Checkout), String> {
        let ws = self
            .workspaces
            .checkout(slot, head, &[(refs::BASE, base), (refs::TIP, tip)])
            .map_err(|e| format!("the {} workspace could not be prepared: {e}", slot.name()))?;
        let checkout = Checkout {
            base_commit: Some(base.to_string()),
            tip_commit: Some(tip.to_string()),
            head_commit: Some(head.to_string()),
            workspace: Some(ws.path().display().to_string()),
        };
        Ok((ws, checkout))
    }
}

fn failed<T>(reason: String) -> AgentOutcome<T> {
    AgentOutcome::Failed {
        reason,
        tokens_used: 0,
    }
}

/// `result` with the workspace's change as its patch, or the attempt failed when the
/// change cannot be read.
fn with_patch<T>(
    mut result: T,
    tokens_used: u64,
    change: Result<Option<String>, WorkspaceError>,
    set: impl FnOnce(&mut T, Option<String>),
) -> AgentOutcome<T> {
    match change {
        Ok(patch) => {
            set(&mut result, patch);
            AgentOutcome::Returned(result)
        }
        Err(err) => AgentOutcome::Failed {
            reason: format!("the change in the workspace could not be read: {err}"),
            tokens_used,
        },
    }
}

impl<A: Builder> Builder for InWorkspace<A> {
    fn build(&mut self, request: &BuilderRequest) -> AgentOutcome<BuilderResult> {
        let prepared = self
            .tip_and_base()
            .and_then(|(tip, base)| self.prepare(Slot::Builder, tip, tip, base));
        let (ws, checkout) = match prepared {
            Ok(p) => p,
            Err(reason) => return failed(reason),
        };
        let mut request = request.clone();
        request.checkout = Some(checkout);
        match self.inner.build(&request) {
            AgentOutcome::Returned(result) => {
                if result.patch.is_none() && result.status != BuilderStatus::Failed {
                    // The attempt is over: nothing writes the workspace until the next.
                    let tokens = result.tokens_used;
                    return with_patch(result, tokens, ws.finish(), |r, p| r.patch = p);
                }
                AgentOutcome::Returned(result)
            }
            failed => failed,
        }
    }
}

impl<A: Auditor> Auditor for InWorkspace<A> {
    fn audit(&mut self, request: &AuditorRequest) -> AgentOutcome<AuditorResult> {
        let (tip, base) = match self.tip_and_base() {
            Ok(p) => p,
            Err(reason) => return failed(reason),
        };
        let head = match request
            .candidate_commit
            .as_ref()
            .map(|c| Oid::from_str(c.as_str()))
        {
            None => tip,
            Some(Ok(oid)) => oid,
            Some(Err(e)) => return failed(format!("bad candidate commit id: {e}")),
        };
        let (ws, checkout) = match self.prepare(Slot::Auditor, head, tip, base) {
            Ok(p) => p,
            Err(reason) => return failed(reason),
        };
        let mut request = request.clone();
        request.checkout = Some(checkout);
        match self.inner.audit(&request) {
            AgentOutcome::Returned(result) => {
                // An Auditor's own patch is what it changed on top of the candidate,
                // submitted relative to the tip (the candidate never reached the branch).
                if result.patch.is_none() && result.recommendation == AuditorRecommendation::Approve
                {
                    let own = ws.change().and_then(|c| match c {
                        Some(_) if head != tip => ws.change_since(tip),
                        other => Ok(other),
                    });
                    let tokens = result.tokens_used;
                    return with_patch(result, tokens, own, |r, p| r.patch = p);
                }
                AgentOutcome::Returned(result)
            }
            failed => failed,
        }
    }
}
