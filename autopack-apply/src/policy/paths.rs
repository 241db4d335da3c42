//! Path rules: our explicit ones (absolute, `..`, `.git`, NUL, backslash), git's own rules
//! for a tree entry's name (through `gix-validate`, with git's NTFS and HFS+ protections
//! on, whatever the host: a repository is checked out on every kind of machine), and the
//! length limits of [`PathLimits`].
//!
//! The explicit rules come first because their refusals say more (`parent_component`
//! rather than git's "relative components are disallowed"); git's rules then catch what
//! only looks harmless here: `.g\u{200c}it` (HFS+ ignores zero-width characters), `git~1`
//! (the NTFS short name of `.git`), `.git::$INDEX_ALLOCATION` (an NTFS stream), `.git.` and
//! `.git ` (NTFS drops trailing dots and spaces), Windows device names and characters.

use autopack_core::patch_rules::PathLimits;
use gix_validate::path::component::{Error as GitRule, Mode, Options};

use super::PolicyViolation;

/// Git's checks with every protection on (`core.protectNTFS`, `core.protectHFS`, and the
/// Windows names and characters).
const GIT_RULES: Options = Options {
    protect_windows: true,
    protect_ntfs: true,
    protect_hfs: true,
};

/// Every rule on one (relative, `/`-separated) path; the refusal names the rule and the
/// whole path.
pub(super) fn check_path(path: &str, limits: &PathLimits) -> Result<(), PolicyViolation> {
    let owned = || path.to_owned();
    if path.starts_with('/') {
        return Err(PolicyViolation::AbsolutePath { path: owned() });
    }
    let comps: Vec<&str> = path.split('/').collect();
    if comps.contains(&"..") {
        return Err(PolicyViolation::ParentComponent { path: owned() });
    }
    if comps.iter().any(|c| c.eq_ignore_ascii_case(".git")) {
        return Err(PolicyViolation::GitDirComponent { path: owned() });
    }
    if path.is_empty()
        || comps.iter().any(|c| c.is_empty() || *c == ".")
        || path.contains(['\\', '\0'])
    {
        return Err(PolicyViolation::MalformedPath { path: owned() });
    }
    for comp in &comps {
        git_rules(path, comp)?;
    }
    if path.len() > limits.max_path_bytes {
        return Err(PolicyViolation::PathTooLong {
            path: owned(),
            bytes: path.len(),
            max: limits.max_path_bytes,
        });
    }
    if let Some(comp) = comps.iter().find(|c| c.len() > limits.max_component_bytes) {
        return Err(PolicyViolation::ComponentTooLong {
            path: owned(),
            bytes: comp.len(),
            max: limits.max_component_bytes,
        });
    }
    Ok(())
}

/// Git's rules for one component of `path`.
fn git_rules(path: &str, comp: &str) -> Result<(), PolicyViolation> {
    // Checked as if the entry were a symlink: git then also refuses every spelling of
    // `.gitmodules` NTFS and HFS+ would resolve to the real one, and a `.gitmodules` by
    // any name is a submodule change.
    let refusal =
        match gix_validate::path::component(comp.as_bytes().into(), Some(Mode::Symlink), GIT_RULES)
        {
            Ok(_) => return Ok(()),
            Err(e) => e,
        };
    let path = path.to_owned();
    Err(match refusal {
        GitRule::DotGitDir => PolicyViolation::GitDirComponent { path },
        GitRule::SymlinkedGitModules => PolicyViolation::Submodule { path },
        GitRule::Relative => PolicyViolation::ParentComponent { path },
        GitRule::Empty | GitRule::PathSeparator => PolicyViolation::MalformedPath { path },
        other => PolicyViolation::UnportablePath {
            path,
            component: comp.to_owned(),
            reason: other.to_string(),
        },
    })
}

/// Whether `path` names `.gitmodules` (any case) at any level.
pub(super) fn is_gitmodules(path: &str) -> bool {
    path.split('/')
        .any(|c| c.eq_ignore_ascii_case(".gitmodules"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(path: &str) -> &'static str {
        match check_path(path, &PathLimits::default()) {
            Ok(()) => "ok",
            Err(v) => v.rule(),
        }
    }

    #[test]
    fn explicit_rules_name_what_they_refuse() {
        assert_eq!(rule("src/a.rs"), "ok");
        assert_eq!(rule("a/../b"), "parent_component");
        assert_eq!(rule("x/.GIT/config"), "git_dir_component");
        assert_eq!(rule("a//b"), "malformed_path");
        assert_eq!(rule("a/./b"), "malformed_path");
        assert_eq!(rule("a\\b"), "malformed_path");
        assert_eq!(rule("/etc/passwd"), "absolute_path");
    }

    #[test]
    fn git_rules_catch_what_ntfs_and_hfs_resolve_to_git_dirs() {
        for path in [
            ".g\u{200c}it/config",
            ".gi\u{200d}t/config",
            "\u{feff}.git/config",
            "git~1/config",
            "GIT~1/config",
            ".git::$INDEX_ALLOCATION/config",
            ".git /x",
            ".git./x",
            ".git.../x",
            "sub/.Git /hooks/x",
        ] {
            assert_eq!(rule(path), "git_dir_component", "{path:?}");
        }
        assert_eq!(rule(".gitmodules "), "submodule");
        assert_eq!(rule("GITMOD~1"), "submodule");
        assert_eq!(rule("con"), "unportable_path");
        assert_eq!(rule("a/b:c"), "unportable_path");
        assert_eq!(rule("trailing."), "unportable_path");
        assert_eq!(rule("ok/.gitignore"), "ok");
        assert_eq!(rule("ok/.github/x"), "ok");
    }

    #[test]
    fn length_limits() {
        let limits = PathLimits {
            max_component_bytes: 4,
            max_path_bytes: 9,
        };
        assert!(check_path("abcd/abcd", &limits).is_ok());
        assert!(matches!(
            check_path("abcde", &limits),
            Err(PolicyViolation::ComponentTooLong {
                bytes: 5,
                max: 4,
                ..
            })
        ));
        assert!(matches!(
            check_path("abcd/abcd/a", &limits),
            Err(PolicyViolation::PathTooLong {
                bytes: 11,
                max: 9,
                ..
            })
        ));
    }
}
