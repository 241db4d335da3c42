//! Commit ids: the object ids of git commits, as the host reports them.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The regular expression published in the JSON Schema of [`CommitId`].
pub const COMMIT_ID_PATTERN: &str = "^([0-9a-f]{40}|[0-9a-f]{64})$";

/// The id of a git commit: 40 (SHA-1) or 64 (SHA-256) lowercase hexadecimal digits, the
/// full object id git prints — never an abbreviation, a ref name or a revision expression.
///
/// ```
/// use autopack_core::ids::{CommitId, CommitIdRule};
///
/// let commit = CommitId::new("4b825dc642cb6eb9a060e54bf8d69288fbee4904").unwrap();
/// assert_eq!(commit.as_str().len(), 40);
///
/// let err = CommitId::new("HEAD").unwrap_err();
/// assert_eq!(err.rule, CommitIdRule::Length { len: 4 });
/// assert_eq!(
///     err.to_string(),
///     "invalid commit id \"HEAD\": is 4 characters long; a commit id is 40 or 64 lowercase hex digits"
/// );
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CommitId(Arc<str>);

/// The rule a commit id broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommitIdRule {
    /// Neither 40 nor 64 characters long.
    Length {
        /// Its length in characters.
        len: usize,
    },
    /// A character that is not a lowercase hex digit (`0-9`, `a-f`).
    NotLowercaseHex {
        /// The character.
        found: char,
        /// Its byte offset.
        at: usize,
    },
}

impl fmt::Display for CommitIdRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommitIdRule::Length { len } => write!(
                f,
                "is {len} characters long; a commit id is 40 or 64 lowercase hex digits"
            ),
            CommitIdRule::NotLowercaseHex { found, at } => write!(
                f,
                "holds {found:?} at byte {at}; a commit id is 40 or 64 lowercase hex digits"
            ),
        }
    }
}

/// A value that is not a [`CommitId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid commit id {value:?}: {rule}")]
pub struct CommitIdError {
    /// The rejected value, as given.
    pub value: String,
    /// The rule it broke.
    pub rule: CommitIdRule,
}

/// The rule `value` breaks as a commit id, if any.
pub fn check_commit_id(value: &str) -> Result<(), CommitIdRule> {
    let first = |bad: fn(char) -> bool| value.char_indices().find(|&(_, c)| bad(c));
    // A character that is in no id at all ("HEAD~1", "a b") explains more than a length.
    if let Some((at, found)) = first(|c| !c.is_ascii_alphanumeric()) {
        return Err(CommitIdRule::NotLowercaseHex { found, at });
    }
    let len = value.len();
    if len != 40 && len != 64 {
        return Err(CommitIdRule::Length { len });
    }
    match first(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
        Some((at, found)) => Err(CommitIdRule::NotLowercaseHex { found, at }),
        None => Ok(()),
    }
}

impl CommitId {
    /// Validates `value` and wraps it.
    ///
    /// # Errors
    /// A [`CommitIdError`] naming the value and the rule it breaks.
    pub fn new(value: impl AsRef<str> + Into<String>) -> Result<CommitId, CommitIdError> {
        match check_commit_id(value.as_ref()) {
            Ok(()) => Ok(CommitId(Arc::from(value.into()))),
            Err(rule) => Err(CommitIdError {
                value: value.into(),
                rule,
            }),
        }
    }

    /// The commit id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CommitId({:?})", &*self.0)
    }
}

impl AsRef<str> for CommitId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for CommitId {
    type Err = CommitIdError;
    fn from_str(s: &str) -> Result<CommitId, CommitIdError> {
        CommitId::new(s)
    }
}

impl TryFrom<String> for CommitId {
    type Error = CommitIdError;
    fn try_from(s: String) -> Result<CommitId, CommitIdError> {
        CommitId::new(s)
    }
}

impl TryFrom<&str> for CommitId {
    type Error = CommitIdError;
    fn try_from(s: &str) -> Result<CommitId, CommitIdError> {
        CommitId::new(s)
    }
}

impl From<CommitId> for String {
    fn from(id: CommitId) -> String {
        id.0.as_ref().to_owned()
    }
}

impl PartialEq<str> for CommitId {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for CommitId {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl Serialize for CommitId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for CommitId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CommitId, D::Error> {
        crate::json::deserialize_via_str(deserializer, "a commit id string", |raw| {
            match check_commit_id(raw) {
                Ok(()) => Ok(CommitId(Arc::from(raw))),
                Err(rule) => Err(CommitIdError {
                    value: raw.to_owned(),
                    rule,
                }),
            }
        })
    }
}

impl JsonSchema for CommitId {
    fn schema_name() -> Cow<'static, str> {
        Cow::Borrowed("CommitId")
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "description": "A git commit's full object id: 40 (SHA-1) or 64 (SHA-256) lowercase hex digits.",
            "pattern": COMMIT_ID_PATTERN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA1: &str = "0123456789abcdef0123456789abcdef01234567";

    #[test]
    fn accepts_full_sha1_and_sha256_ids() {
        assert_eq!(CommitId::new(SHA1).unwrap().as_str(), SHA1);
        let sha256 = "ab".repeat(32);
        assert_eq!(CommitId::new(sha256.clone()).unwrap().as_str(), sha256);
    }

    #[test]
    fn rejects_what_is_not_a_full_lowercase_id() {
        let rule = |v: &str| CommitId::new(v).unwrap_err().rule;
        assert_eq!(rule(""), CommitIdRule::Length { len: 0 });
        assert_eq!(rule(&SHA1[..7]), CommitIdRule::Length { len: 7 });
        assert_eq!(rule(&format!("{SHA1}0")), CommitIdRule::Length { len: 41 });
        assert_eq!(
            rule(&SHA1.to_uppercase()),
            CommitIdRule::NotLowercaseHex { found: 'A', at: 10 }
        );
        assert_eq!(
            rule("HEAD~1"),
            CommitIdRule::NotLowercaseHex { found: '~', at: 4 }
        );
        assert_eq!(rule("main"), CommitIdRule::Length { len: 4 });
        let mut bad = SHA1.to_owned();
        bad.replace_range(39..40, "g");
        assert_eq!(
            rule(&bad),
            CommitIdRule::NotLowercaseHex { found: 'g', at: 39 }
        );
    }

    #[test]
    fn serde_keeps_the_plain_string_and_refuses_bad_values() {
        let id: CommitId = serde_json::from_str(&format!("\"{SHA1}\"")).unwrap();
        assert_eq!(serde_json::to_string(&id).unwrap(), format!("\"{SHA1}\""));
        let err = serde_json::from_str::<CommitId>("\"c-1\"").unwrap_err();
        assert!(
            err.to_string().contains("invalid commit id \"c-1\""),
            "{err}"
        );
    }

    #[test]
    fn the_schema_publishes_the_pattern() {
        let schema = schemars::schema_for!(CommitId);
        let json = serde_json::to_value(&schema).unwrap();
        assert_eq!(json["pattern"], COMMIT_ID_PATTERN);
    }
}
