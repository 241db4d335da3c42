//! Protected paths: globs a patch may not touch ([`ProtectedAction::Refuse`]) or may touch
//! only with an Auditor `approve` ([`ProtectedAction::AuditorApprove`], a hold on the
//! checked patch).

use autopack_core::patch_rules::{
    PatchHold, ProtectedAction, ProtectedPath, default_protected_paths,
};
use globset::GlobSet;

use super::PolicyViolation;
use crate::refs::{PatternError, compile_globs};

/// The compiled rules.
#[derive(Debug, Clone, Default)]
pub(super) struct Protected {
    rules: Vec<ProtectedPath>,
    set: GlobSet,
}

impl Protected {
    /// [`autopack_core::patch_rules::DEFAULT_PROTECTED_PATTERNS`], refused (compiled once per process).
    pub(super) fn defaults() -> Protected {
        static DEFAULTS: std::sync::LazyLock<Protected> = std::sync::LazyLock::new(|| {
            let rules = default_protected_paths::<&str>(&[]);
            // The built-in globs compile (a unit test says so); were one ever broken,
            // refusing every path would be the safe reading, not protecting none.
            Protected::new(&rules).unwrap_or_else(|_| Protected {
                rules: vec![ProtectedPath::refuse("**")],
                set: compile_globs(&["**".to_owned()]).unwrap_or_default(),
            })
        });
        DEFAULTS.clone()
    }

    /// Compiles `rules` (`*` stays within a directory, `**` crosses).
    pub(super) fn new(rules: &[ProtectedPath]) -> Result<Protected, PatternError> {
        let patterns: Vec<String> = rules.iter().map(|r| r.pattern.clone()).collect();
        Ok(Protected {
            rules: rules.to_vec(),
            set: compile_globs(&patterns)?,
        })
    }

    /// The rules, as given.
    pub(super) fn rules(&self) -> &[ProtectedPath] {
        &self.rules
    }

    /// What touching `path` does: `Err` when a refusing rule matches (refusal wins over a
    /// hold, whatever the order), a hold when only approving rules match, nothing when
    /// none does.
    pub(super) fn check(&self, path: &str) -> Result<Option<PatchHold>, PolicyViolation> {
        let matched = self.set.matches(path);
        let rule = |action| {
            matched
                .iter()
                .filter_map(|i| self.rules.get(*i))
                .find(|r| r.action == action)
        };
        if let Some(r) = rule(ProtectedAction::Refuse) {
            return Err(PolicyViolation::ProtectedPath {
                path: path.to_owned(),
                pattern: r.pattern.clone(),
            });
        }
        Ok(
            rule(ProtectedAction::AuditorApprove).map(|r| PatchHold::ProtectedPath {
                path: path.to_owned(),
                pattern: r.pattern.clone(),
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use autopack_core::patch_rules::default_protected_paths;

    #[test]
    fn refusal_wins_and_approval_holds() {
        let rules = vec![
            ProtectedPath {
                pattern: "ci/**".into(),
                action: ProtectedAction::AuditorApprove,
            },
            ProtectedPath::refuse("ci/secret/**"),
        ];
        let p = Protected::new(&rules).unwrap();
        assert!(matches!(
            p.check("ci/secret/x"),
            Err(PolicyViolation::ProtectedPath { pattern, .. }) if pattern == "ci/secret/**"
        ));
        assert_eq!(
            p.check("ci/run.sh").unwrap(),
            Some(PatchHold::ProtectedPath {
                path: "ci/run.sh".into(),
                pattern: "ci/**".into()
            })
        );
        assert_eq!(p.check("src/x").unwrap(), None);
    }

    #[test]
    fn defaults_cover_ci_runner_and_git_files() {
        let p = Protected::new(&default_protected_paths(&["bash run_tests.sh"])).unwrap();
        for path in [
            ".github/workflows/ci.yml",
            "run_tests.sh",
            ".autonomous_runs/x",
            ".autonomous_runs/r/run_summary.md",
            "project_ruleset_p1.json",
            ".autonomous_runs/project_ruleset_p1.json",
            ".gitattributes",
            "sub/.gitignore",
        ] {
            assert!(p.check(path).is_err(), "{path}");
        }
        assert!(p.check("src/run_tests.sh").unwrap().is_none());
    }
}
