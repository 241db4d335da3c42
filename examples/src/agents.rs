//! Scripted Builder and Auditor for the example plan ([`crate::plan`]).
//!
//! They behave like real agents from the Supervisor's point of view — results with real
//! git-format patches, token counts, failing tests and suggested issues — but follow a
//! script:
//! - every phase creates or rewrites files of the sample project ([`crate::sample`]) so
//!   that its tests keep passing: in its workspace when the request names one (a
//!   workspace agent: the host reads the change as the patch), else as a patch it returns;
//! - `farewell`: the Builder reports `failed` (a failing test, a minor issue) until the
//!   feedback holds an Auditor's notes, then succeeds;
//! - the Auditor approves high-risk patches (`high_risk_approval`, with one minor finding),
//!   and answers `revise` when Builder attempts ran out or loop; it escalates anything it
//!   was not scripted for.

use autopack::core::ids::IssueKey;
use autopack::core::message::{
    AuditReason, AuditorRecommendation, AuditorRequest, AuditorResult, BuilderRequest,
    BuilderResult, BuilderStatus, ProbeResult, SuggestedIssue,
};
use autopack::core::vocabulary::{IssueCategory, IssueSource, Severity};
use autopack::driver::{Auditor, Builder};
use autopack::supervisor::AgentOutcome;

use crate::diff::{new_file, rewrite_file};
use crate::sample;

/// The phase whose Builder fails until the Auditor revises it.
pub const FAILS_UNTIL_REVISED: &str = "farewell";
/// The phase whose test is flaky once.
pub const FLAKY_ONCE: &str = "cache-tests";
/// The high-risk phase that needs an Auditor approve.
pub const HIGH_RISK: &str = "users-schema";

/// The files the scripted Builder writes for a phase, if it knows it: (path, content as
/// committed before, new content).
pub fn scripted_edits(phase_id: &str) -> Option<Vec<Edit>> {
    let edits = match phase_id {
        "hello-name" => vec![
            Edit::rewrite(
                "src/hello.sh",
                sample::HELLO,
                "#!/bin/sh\n# Prints a greeting, to NAME when given.\necho \"hello${1:+, $1}\"\n",
            ),
            Edit::new(
                "tests/test_hello_name.sh",
                "#!/bin/sh\nout=$(sh src/hello.sh Ada)\n[ \"$out\" = \"hello, Ada\" ] || { echo \"got '$out'\"; exit 1; }\n",
            ),
        ],
        "users-schema" => vec![
            Edit::new("schema/users.schema", "id:int\nname:text\nemail:text\n"),
            Edit::new(
                "tests/strict_schema.sh",
                "#!/bin/sh\n# Strict profile: every schema line is field:type with a known type.\nfor f in schema/*.schema; do\n    [ -f \"$f\" ] || continue\n    if grep -v -E '^[a-z_]+:(int|text|bool)$' \"$f\"; then\n        echo \"bad line in $f\"\n        exit 1\n    fi\ndone\n",
            ),
        ],
        "schema-docs" => vec![
            Edit::new(
                "docs/schema.md",
                "# Schema\n\n## users\n\n- `id` (int): the user's number\n- `name` (text): how to greet them\n- `email` (text): where to write\n",
            ),
            Edit::new(
                "tests/test_docs_schema.sh",
                "#!/bin/sh\n# Every field of every schema is documented.\nfor f in schema/*.schema; do\n    [ -f \"$f\" ] || continue\n    for field in $(cut -d: -f1 \"$f\"); do\n        grep -q \"\\`$field\\`\" docs/schema.md || { echo \"$field is not documented\"; exit 1; }\n    done\ndone\n",
            ),
        ],
        "farewell" => vec![
            Edit::new(
                "src/farewell.sh",
                "#!/bin/sh\n# Says goodbye, to NAME when given.\necho \"goodbye${1:+, $1}\"\n",
            ),
            Edit::new(
                "tests/test_farewell.sh",
                "#!/bin/sh\nout=$(sh src/farewell.sh Ada)\n[ \"$out\" = \"goodbye, Ada\" ] || { echo \"got '$out'\"; exit 1; }\n",
            ),
        ],
        "cache-tests" => vec![Edit::new(
            "tests/test_cache.sh",
            "#!/bin/sh\n# The greeting cache lives outside the checkout ($AUTOPACK_EXAMPLE_STATE).\n# A cold cache misses its deadline once; after that the cache is warm.\nstate=\"${AUTOPACK_EXAMPLE_STATE:-}\"\n[ -n \"$state\" ] || exit 0\nmkdir -p \"$state\" || exit 1\nif [ ! -e \"$state/cache-warm\" ]; then\n    : > \"$state/cache-warm\"\n    echo \"cache cold: lookup missed its deadline\"\n    exit 1\nfi\n",
        )],
        "config-defaults" => vec![
            Edit::new(
                "config/defaults.conf",
                "# Defaults of the greeter.\ngreeting=hello\nfarewell=goodbye\n",
            ),
            Edit::new(
                "tests/test_config.sh",
                "#!/bin/sh\nfor key in greeting farewell; do\n    grep -q \"^$key=\" config/defaults.conf || { echo \"$key has no default\"; exit 1; }\ndone\n",
            ),
        ],
        "readme-usage" => vec![Edit::rewrite(
            "README.md",
            sample::README,
            "# greeter\n\nA tiny shell project used by the Autopack example run.\n\n## Usage\n\n- `sh src/hello.sh [NAME]` prints a greeting.\n- `sh src/farewell.sh [NAME]` says goodbye.\n\nDefaults live in `config/defaults.conf`; the users schema is documented in\n`docs/schema.md`.\n\nRun the tests with `sh run_tests.sh` (add `--strict` for the strict CI profile).\n",
        )],
        "changelog" => vec![
            Edit::new(
                "CHANGELOG.md",
                "# Changelog\n\n## 0.1.0\n\n- Greet by name, say goodbye.\n- Users schema with docs.\n- Configuration defaults.\n",
            ),
            Edit::new(
                "tests/test_changelog.sh",
                "#!/bin/sh\ngrep -q '^## 0.1.0$' CHANGELOG.md || { echo 'CHANGELOG.md has no 0.1.0 entry'; exit 1; }\n",
            ),
        ],
        // Debt-cleanup phases the StrategyEngine inserts once backlog keys have aged
        // (run the example several times in one directory to see one).
        id if id.starts_with("debt-cleanup") => vec![Edit::new(
            &format!("docs/debt/{id}.md"),
            "# Debt cleanup\n\nReviewed the aged backlog keys; notes for the next run.\n",
        )],
        _ => return None,
    };
    Some(edits)
}

/// One file the scripted Builder writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The path in the repository.
    pub path: String,
    /// The content committed before (`None`: a new file).
    pub old: Option<&'static str>,
    /// The content written.
    pub new: String,
}

impl Edit {
    fn new(path: &str, content: &str) -> Edit {
        Edit {
            path: path.to_owned(),
            old: None,
            new: content.to_owned(),
        }
    }

    fn rewrite(path: &str, old: &'static str, new: &str) -> Edit {
        Edit {
            path: path.to_owned(),
            old: Some(old),
            new: new.to_owned(),
        }
    }

    /// The edit as a git-format patch.
    pub fn patch(&self) -> String {
        match self.old {
            None => new_file(&self.path, &self.new),
            Some(old) => rewrite_file(&self.path, old, &self.new),
        }
    }
}

/// The patch and token count the scripted Builder sends for a phase when it has no
/// workspace, if it knows the phase.
pub fn scripted_patch(phase_id: &str) -> Option<(String, u64)> {
    let patch: String = scripted_edits(phase_id)?.iter().map(Edit::patch).collect();
    let tokens = 6_000 + 1_500 * patch.lines().count() as u64;
    Some((patch, tokens))
}

/// Writes `edits` into `workspace`, as an agent that edits files does.
fn write_edits(workspace: &std::path::Path, edits: &[Edit]) -> std::io::Result<()> {
    for edit in edits {
        let path = workspace.join(&edit.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, &edit.new)?;
    }
    Ok(())
}

fn minor(
    key: &str,
    source: IssueSource,
    category: &str,
    evidence: &str,
    what: &str,
) -> Option<SuggestedIssue> {
    Some(SuggestedIssue {
        issue_key: IssueKey::new(key).ok()?,
        severity: Severity::Minor,
        source,
        category: IssueCategory::new(category).ok()?,
        expected_fail: false,
        evidence_refs: vec![evidence.to_owned()],
        description: what.to_owned(),
    })
}

/// The scripted Builder; counts its calls.
#[derive(Debug, Default)]
pub struct ScriptedBuilder {
    /// Builder attempts made, in order: (phase id, attempt).
    pub calls: Vec<(String, u32)>,
}

impl Builder for ScriptedBuilder {
    fn build(&mut self, request: &BuilderRequest) -> AgentOutcome<BuilderResult> {
        let phase = request.phase_id.as_str();
        self.calls.push((phase.to_owned(), request.attempt));
        let Some((patch, tokens)) = scripted_patch(phase) else {
            return AgentOutcome::Failed {
                reason: format!("the scripted Builder has no script for phase {phase}"),
                tokens_used: 0,
            };
        };
        let revised = request.feedback.iter().any(|f| f.starts_with("Auditor:"));
        if phase == FAILS_UNTIL_REVISED && !revised {
            return AgentOutcome::Returned(BuilderResult {
                phase_id: request.phase_id.clone(),
                status: BuilderStatus::Failed,
                patch: None,
                probe_results: vec![ProbeResult {
                    name: "farewell smoke test".into(),
                    passed: false,
                    output: "sh: src/farewell.sh: No such file or directory".into(),
                }],
                suggested_issues: minor(
                    "test_failure__farewell_missing_script",
                    IssueSource::CursorSelfDoubt,
                    "test_failure",
                    "tests/test_farewell.sh",
                    "the Builder keeps writing the test before the script it tests",
                )
                .into_iter()
                .collect(),
                tokens_used: 9_000,
                failing_tests: vec!["tests/test_farewell.sh".into()],
                notes: "I cannot decide where the farewell script should live".into(),
            });
        }
        // In a workspace, the Builder edits files and leaves the patch to the host.
        let workspace = request
            .checkout
            .as_ref()
            .and_then(|c| c.workspace.as_deref());
        let patch = match workspace {
            Some(ws) => {
                let edits = scripted_edits(phase).unwrap_or_default();
                if let Err(e) = write_edits(std::path::Path::new(ws), &edits) {
                    return AgentOutcome::Failed {
                        reason: format!(
                            "the scripted Builder could not write its files in {ws}: {e}"
                        ),
                        tokens_used: 0,
                    };
                }
                None
            }
            None => Some(patch),
        };
        AgentOutcome::Returned(BuilderResult {
            phase_id: request.phase_id.clone(),
            status: BuilderStatus::Success,
            patch,
            probe_results: vec![ProbeResult {
                name: format!("{phase} smoke test"),
                passed: true,
                output: String::new(),
            }],
            suggested_issues: Vec::new(),
            tokens_used: tokens,
            failing_tests: Vec::new(),
            notes: if revised {
                "followed the Auditor's notes".into()
            } else {
                String::new()
            },
        })
    }
}

/// The scripted Auditor; counts its calls.
#[derive(Debug, Default)]
pub struct ScriptedAuditor {
    /// Reviews made, in order: (phase id, reason).
    pub calls: Vec<(String, AuditReason)>,
}

impl Auditor for ScriptedAuditor {
    fn audit(&mut self, request: &AuditorRequest) -> AgentOutcome<AuditorResult> {
        let phase = request.phase_id.as_str();
        self.calls.push((phase.to_owned(), request.reason));
        let (recommendation, notes, issues) = match request.reason {
            AuditReason::HighRiskApproval => (
                AuditorRecommendation::Approve,
                format!("{phase}: the patch is scoped and checked by CI; approved"),
                if phase == HIGH_RISK {
                    minor(
                        "docs_gap__schema_migration_note",
                        IssueSource::Auditor,
                        "docs_gap",
                        "schema/users.schema",
                        "no note on migrating existing user files",
                    )
                    .into_iter()
                    .collect()
                } else {
                    Vec::new()
                },
            ),
            AuditReason::AttemptsExhausted | AuditReason::FailureLoop => (
                AuditorRecommendation::Revise,
                "write src/farewell.sh next to src/hello.sh first, then its test".to_owned(),
                Vec::new(),
            ),
            AuditReason::MajorIssue => (
                AuditorRecommendation::Escalate,
                "not scripted: a major issue needs a person".to_owned(),
                Vec::new(),
            ),
        };
        AgentOutcome::Returned(AuditorResult {
            phase_id: request.phase_id.clone(),
            recommendation,
            review_notes: notes,
            issues_found: issues,
            patch: None,
            confidence: 0.85,
            tokens_used: 4_000,
        })
    }
}
