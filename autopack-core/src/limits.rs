//! Size limits of the documents Autopack reads from users and agents.
//!
//! A document over its limit is refused with a [`TooLarge`] that names the document, its
//! size and the limit, before it is parsed. The limits are defaults that hosts may raise
//! (the readers take the limit as an argument; the `autopack` CLI has a flag for each):
//!
//! | document | default | reader | CLI flag |
//! | --- | --- | --- | --- |
//! | plan | [`MAX_PLAN_BYTES`] (16 MiB) | [`Plan::from_json_limited`](crate::plan::Plan::from_json_limited) | `--max-plan-bytes` |
//! | ruleset | `autopack_strategy::MAX_RULESET_BYTES` (1 MiB) | `Ruleset::from_json_limited` | `--max-ruleset-bytes` |
//! | patch | `autopack_apply::MAX_PATCH_BYTES` (8 MiB) | `PatchPolicy::with_max_patch_bytes` | `--max-patch-bytes` |
//!
//! A limit is never more than [`MAX_LIMIT_BYTES`] (1 GiB): everything read is held in
//! memory.
//!
//! ```
//! use autopack_core::limits::{check_size, MAX_PLAN_BYTES};
//!
//! assert!(check_size(10, MAX_PLAN_BYTES, "plan", "plan.json").is_ok());
//! let err = check_size(MAX_PLAN_BYTES + 1, MAX_PLAN_BYTES, "plan", "plan.json").unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "plan.json: 16777217 bytes, over the plan size limit of 16777216 bytes"
//! );
//! ```

/// One mebibyte.
pub const MIB: u64 = 1 << 20;

/// One kibibyte.
pub const KIB: u64 = 1 << 10;

/// Default largest plan document, in bytes (16 MiB).
pub const MAX_PLAN_BYTES: u64 = 16 * MIB;

/// The largest any size limit may be raised to, in bytes (1 GiB).
pub const MAX_LIMIT_BYTES: u64 = 1024 * MIB;

/// A document larger than its limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {size} bytes{}, over the {what} size limit of {limit} bytes", if *.at_least { " or more" } else { "" })]
pub struct TooLarge {
    /// Where the document came from: a file path or a description.
    pub source_name: String,
    /// What kind of document (`plan`, `ruleset`, `patch`, `agent result`).
    pub what: String,
    /// Its size in bytes (or the bytes read before reading stopped, see `at_least`).
    pub size: u64,
    /// Whether reading stopped at `size` bytes (the document is at least that large).
    pub at_least: bool,
    /// The limit in bytes.
    pub limit: u64,
}

/// `Ok` when `size` is at most `limit`; a [`TooLarge`] naming `source` and `what`
/// otherwise.
///
/// # Errors
/// `size > limit`.
pub fn check_size(
    size: u64,
    limit: u64,
    what: &str,
    source: impl Into<String>,
) -> Result<(), TooLarge> {
    if size > limit {
        return Err(TooLarge {
            source_name: source.into(),
            what: what.to_owned(),
            size,
            at_least: false,
            limit,
        });
    }
    Ok(())
}

/// The length of `text` in bytes, as a `u64` (saturating, on a platform where `usize` is
/// wider).
pub fn len_u64(text: &[u8]) -> u64 {
    u64::try_from(text.len()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_itself_is_allowed_one_more_byte_is_not() {
        assert!(check_size(MIB, MIB, "ruleset", "r.json").is_ok());
        let err = check_size(MIB + 1, MIB, "ruleset", "r.json").unwrap_err();
        assert_eq!(err.limit, MIB);
        assert_eq!(err.size, MIB + 1);
        assert!(err.to_string().contains("r.json"), "{err}");
        let cut = TooLarge {
            at_least: true,
            ..err
        };
        assert!(cut.to_string().contains("bytes or more"), "{cut}");
    }

    #[test]
    fn plans_over_the_limit_are_refused_unparsed() {
        use crate::plan::{Plan, PlanError};
        // Not even JSON: the size is checked first.
        let err = Plan::from_json_limited("x".repeat(11).as_str(), "p.json", 10).unwrap_err();
        let PlanError::TooLarge(t) = &err else {
            panic!("{err}")
        };
        assert_eq!((t.size, t.limit, t.what.as_str()), (11, 10, "plan"));
        assert!(err.problems().is_none());
        let big = " ".repeat(usize::try_from(MAX_PLAN_BYTES).unwrap() + 1);
        assert!(matches!(
            Plan::from_json(&big, "p.json"),
            Err(PlanError::TooLarge(_))
        ));
        // Within the limit it is parsed (and this one is not JSON).
        assert!(matches!(
            Plan::from_json_limited("x", "p.json", 10),
            Err(PlanError::Json(_))
        ));
    }
}
