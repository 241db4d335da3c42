//! Validated identifiers.
//!
//! Run, tier, phase and project ids and issue keys become file names under
//! `.autonomous_runs/` and components of git refs (`autonomous/{run_id}`,
//! `autonomous/{run_id}/tier-{tier_id}/phase-{phase_id}`), so they are checked once, in the
//! one constructor of each type, and are valid for as long as they exist
//! ("parse, don't validate"). Deserialisation goes through the same constructor.
//! Ids are shared strings: cloning one (records, requests and ledgers hold many copies)
//! costs a reference-count increment, not an allocation.
//!
//! The rules (SPEC §3), each reported as an [`IdRule`]:
//! - not empty and at most [`MAX_ID_LEN`] bytes;
//! - only ASCII letters, digits, `-`, `_` and `.` — this rules out path separators (`/`, `\`),
//!   control characters, whitespace, unicode and every character git refuses in a ref
//!   (`~ ^ : ? * [ @{` …);
//! - no leading `.` or `-`, no trailing `.`, no `..` anywhere, no `.lock` suffix (git's ref
//!   rules, and no id that a command line would read as an option).
//!
//! ```
//! use autopack_core::ids::{IdRule, RunId};
//!
//! let run = RunId::new("run-2025-11-23.1").unwrap();
//! assert_eq!(run.as_str(), "run-2025-11-23.1");
//!
//! let err = RunId::new("..").unwrap_err();
//! assert_eq!(err.rule, IdRule::LeadingDot);
//! assert_eq!(err.to_string(), "invalid run_id \"..\": must not start with '.'");
//! assert_eq!(RunId::new("../etc").unwrap_err().rule, IdRule::PathSeparator('/'));
//! ```

use std::borrow::Cow;
use std::fmt;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

mod commit;
pub use commit::{COMMIT_ID_PATTERN, CommitId, CommitIdError, CommitIdRule, check_commit_id};

/// Longest id accepted, in bytes. Ids are file names, and file names are limited to 255
/// bytes on common filesystems; 128 leaves room for the prefixes and suffixes of the layout.
pub const MAX_ID_LEN: usize = 128;

/// The regular expression published in the JSON Schemas of every id type. The structural
/// rules (`..`, leading/trailing `.`, `.lock`) are enforced by the constructor as well.
pub const ID_PATTERN: &str = r"^[A-Za-z0-9_][A-Za-z0-9._-]*$";

/// Which kind of id a value was meant to be; named in every [`IdError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdKind {
    /// A run id (`run_id`).
    Run,
    /// A tier id (`tier_id`).
    Tier,
    /// A phase id (`phase_id`).
    Phase,
    /// A project id (`project_id`).
    Project,
    /// An issue key (`issue_key`).
    IssueKey,
}

impl IdKind {
    /// The field name the spec uses for this kind of id.
    pub const fn field(self) -> &'static str {
        match self {
            IdKind::Run => "run_id",
            IdKind::Tier => "tier_id",
            IdKind::Phase => "phase_id",
            IdKind::Project => "project_id",
            IdKind::IssueKey => "issue_key",
        }
    }
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.field())
    }
}

/// The rule an id broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdRule {
    /// The id is empty.
    Empty,
    /// The id is longer than [`MAX_ID_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The id holds `/` or `\`.
    PathSeparator(char),
    /// The id holds `..`.
    DotDot,
    /// The id starts with `.`.
    LeadingDot,
    /// The id starts with `-`, which command-line tools (git among them) read as an option.
    LeadingDash,
    /// The id ends with `.`.
    TrailingDot,
    /// The id ends with `.lock`, which git reserves.
    LockSuffix,
    /// The id holds a control character.
    ControlCharacter(char),
    /// The id holds `@{`, which git reads as a reflog expression.
    ReflogSyntax,
    /// The id holds whitespace.
    Whitespace(char),
    /// The id holds a character git refuses in a ref (`~ ^ : ? * [` and so on) or that is not
    /// portable in a file name.
    ForbiddenCharacter(char),
    /// The id holds a character outside ASCII.
    NonAscii(char),
}

impl fmt::Display for IdRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdRule::Empty => f.write_str("must not be empty"),
            IdRule::TooLong { len } => {
                write!(f, "is {len} bytes long; at most {MAX_ID_LEN} are allowed")
            }
            IdRule::PathSeparator(c) => write!(f, "must not contain the path separator {c:?}"),
            IdRule::DotDot => f.write_str("must not contain '..'"),
            IdRule::LeadingDot => f.write_str("must not start with '.'"),
            IdRule::LeadingDash => f.write_str("must not start with '-'"),
            IdRule::TrailingDot => f.write_str("must not end with '.'"),
            IdRule::LockSuffix => f.write_str("must not end with '.lock'"),
            IdRule::ControlCharacter(c) => {
                write!(
                    f,
                    "must not contain the control character U+{:04X}",
                    *c as u32
                )
            }
            IdRule::ReflogSyntax => f.write_str("must not contain '@{'"),
            IdRule::Whitespace(c) => {
                write!(f, "must not contain whitespace (U+{:04X})", *c as u32)
            }
            IdRule::ForbiddenCharacter(c) => write!(
                f,
                "must not contain {c:?}; only ASCII letters, digits, '-', '_' and '.' are allowed"
            ),
            IdRule::NonAscii(c) => write!(
                f,
                "must not contain the non-ASCII character {c:?}; only ASCII letters, digits, '-', '_' and '.' are allowed"
            ),
        }
    }
}

/// An id that broke one of the rules of this module.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} {value:?}: {rule}")]
pub struct IdError {
    /// The kind of id that was being constructed.
    pub kind: IdKind,
    /// The rejected value, as given.
    pub value: String,
    /// The first rule it broke.
    pub rule: IdRule,
}

/// Checks `value` against every id rule and returns the first one it breaks.
///
/// Exposed so that callers can test a candidate without committing to an id type.
pub fn check_id(value: &str) -> Result<(), IdRule> {
    if value.is_empty() {
        return Err(IdRule::Empty);
    }
    // Character rules first: they explain the most surprising rejections best.
    for (i, c) in value.char_indices() {
        match c {
            'a'..='z' | 'A'..='Z' | '0'..='9' | '-' | '_' | '.' => {}
            '/' | '\\' => return Err(IdRule::PathSeparator(c)),
            '@' if value[i + 1..].starts_with('{') => return Err(IdRule::ReflogSyntax),
            c if c.is_control() => return Err(IdRule::ControlCharacter(c)),
            c if c.is_whitespace() => return Err(IdRule::Whitespace(c)),
            c if !c.is_ascii() => return Err(IdRule::NonAscii(c)),
            c => return Err(IdRule::ForbiddenCharacter(c)),
        }
    }
    if value.len() > MAX_ID_LEN {
        return Err(IdRule::TooLong { len: value.len() });
    }
    if value.starts_with('.') {
        return Err(IdRule::LeadingDot);
    }
    if value.starts_with('-') {
        return Err(IdRule::LeadingDash);
    }
    if value.contains("..") {
        return Err(IdRule::DotDot);
    }
    if value.ends_with(".lock") {
        return Err(IdRule::LockSuffix);
    }
    if value.ends_with('.') {
        return Err(IdRule::TrailingDot);
    }
    Ok(())
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(std::sync::Arc<str>);

        impl $name {
            /// The kind of id this type holds.
            pub const KIND: IdKind = $kind;

            /// Validates `value` and wraps it.
            ///
            /// # Errors
            /// An [`IdError`] naming the kind, the value and the first rule it breaks.
            pub fn new(value: impl AsRef<str> + Into<String>) -> Result<Self, IdError> {
                match check_id(value.as_ref()) {
                    Ok(()) => Ok(Self(std::sync::Arc::from(value.into()))),
                    Err(rule) => Err(IdError { kind: $kind, value: value.into(), rule }),
                }
            }

            /// The id as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0.as_ref().to_owned()
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                // One allocation per id (the `Arc`), not a `String` first.
                crate::json::deserialize_via_str(
                    deserializer,
                    concat!("a ", stringify!($name), " string"),
                    |raw| match check_id(raw) {
                        Ok(()) => Ok($name(std::sync::Arc::from(raw))),
                        Err(rule) => Err(IdError {
                            kind: $kind,
                            value: raw.to_owned(),
                            rule,
                        }),
                    },
                )
            }
        }

        impl JsonSchema for $name {
            fn schema_name() -> Cow<'static, str> {
                Cow::Borrowed(stringify!($name))
            }

            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "description": concat!(
                        "A validated ", stringify!($name),
                        ": 1-128 ASCII letters, digits, '-', '_' or '.'; no leading '.' or '-', no trailing '.', no '..', no '.lock' suffix."
                    ),
                    "minLength": 1,
                    "maxLength": MAX_ID_LEN,
                    "pattern": ID_PATTERN,
                })
            }
        }
    };
}

id_type!(
    /// The id of a run; names the run's folder and its integration branch `autonomous/{run_id}`.
    RunId,
    IdKind::Run
);
id_type!(
    /// The id of a tier within a plan.
    TierId,
    IdKind::Tier
);
id_type!(
    /// The id of a phase within a plan.
    PhaseId,
    IdKind::Phase
);
id_type!(
    /// The id of a project; names its ruleset file.
    ProjectId,
    IdKind::Project
);
id_type!(
    /// The stable key of a logical issue, shared by every report of the same problem.
    IssueKey,
    IdKind::IssueKey
);

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(value: &str) -> IdRule {
        match RunId::new(value) {
            Ok(id) => panic!("{id:?} should have been rejected"),
            Err(err) => {
                assert_eq!(err.kind, IdKind::Run);
                assert_eq!(err.value, value);
                err.rule
            }
        }
    }

    #[test]
    fn accepts_ordinary_ids() {
        for ok in [
            "run-1",
            "a",
            "A_b-c.d",
            "2025-11-23T11",
            "x.lockx",
            "tier_01",
            "a.b.c",
        ] {
            assert!(RunId::new(ok).is_ok(), "{ok}");
        }
        let longest = "a".repeat(MAX_ID_LEN);
        assert!(RunId::new(longest).is_ok());
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(rule(""), IdRule::Empty);
    }

    #[test]
    fn rejects_overlong() {
        assert_eq!(
            rule(&"a".repeat(MAX_ID_LEN + 1)),
            IdRule::TooLong {
                len: MAX_ID_LEN + 1
            }
        );
    }

    #[test]
    fn rejects_path_like() {
        assert_eq!(rule("a/b"), IdRule::PathSeparator('/'));
        assert_eq!(rule("a\\b"), IdRule::PathSeparator('\\'));
        assert_eq!(rule("/abs"), IdRule::PathSeparator('/'));
        assert_eq!(rule(".."), IdRule::LeadingDot);
        assert_eq!(rule("a..b"), IdRule::DotDot);
        assert_eq!(rule("x.."), IdRule::DotDot);
        assert_eq!(rule(".hidden"), IdRule::LeadingDot);
        assert_eq!(rule("."), IdRule::LeadingDot);
    }

    #[test]
    fn rejects_control_characters() {
        assert_eq!(rule("a\nb"), IdRule::ControlCharacter('\n'));
        assert_eq!(rule("a\0"), IdRule::ControlCharacter('\0'));
        assert_eq!(rule("a\u{7f}"), IdRule::ControlCharacter('\u{7f}'));
        assert_eq!(rule("\u{1b}[31m"), IdRule::ControlCharacter('\u{1b}'));
    }

    #[test]
    fn rejects_git_ref_syntax() {
        assert_eq!(rule("x.lock"), IdRule::LockSuffix);
        assert_eq!(rule("x@{1}"), IdRule::ReflogSyntax);
        assert_eq!(rule("x@y"), IdRule::ForbiddenCharacter('@'));
        assert_eq!(rule("end."), IdRule::TrailingDot);
        for c in ['~', '^', ':', '?', '*', '[', '"', '<', '>', '|'] {
            assert_eq!(rule(&format!("a{c}b")), IdRule::ForbiddenCharacter(c));
        }
    }

    #[test]
    fn rejects_whitespace_and_unicode() {
        assert_eq!(rule("a b"), IdRule::Whitespace(' '));
        assert_eq!(rule("é"), IdRule::NonAscii('é'));
        assert_eq!(rule("run\u{2028}"), IdRule::Whitespace('\u{2028}'));
        assert_eq!(rule("фаза"), IdRule::NonAscii('ф'));
        // Full-width solidus looks like a path separator but is neither ASCII nor allowed.
        assert_eq!(rule("a\u{ff0f}b"), IdRule::NonAscii('\u{ff0f}'));
    }

    #[test]
    fn error_names_kind_value_and_rule() {
        let err = PhaseId::new("a/b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid phase_id \"a/b\": must not contain the path separator '/'"
        );
        let err = IssueKey::new("").unwrap_err();
        assert_eq!(err.to_string(), "invalid issue_key \"\": must not be empty");
    }

    #[test]
    fn serde_goes_through_the_constructor() {
        let id: TierId = serde_json::from_str("\"tier-1\"").unwrap();
        assert_eq!(id.as_str(), "tier-1");
        assert_eq!(serde_json::to_string(&id).unwrap(), "\"tier-1\"");
        let err = serde_json::from_str::<TierId>("\"../x\"").unwrap_err();
        assert!(
            err.to_string().contains("invalid tier_id \"../x\""),
            "{err}"
        );
    }

    #[test]
    fn every_accepted_id_matches_the_published_pattern() {
        // The published pattern is a necessary condition; keep it honest.
        for ok in ["a", "run-1", "A_b-c.d", "_x", "x-"] {
            assert!(check_id(ok).is_ok());
            let first = ok.chars().next().unwrap();
            assert!(first.is_ascii_alphanumeric() || first == '_');
        }
        assert_eq!(check_id("-x"), Err(IdRule::LeadingDash));
        assert_eq!(check_id("--force"), Err(IdRule::LeadingDash));
    }
}
