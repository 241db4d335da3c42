//! The checkpoint manifest (`project_issue_checkpoint.json`) and the base checkpoint
//! (`project_issue_base.json`).
//!
//! The manifest (format 2) is the commit point of a checkpoint: the last sequence number
//! the checkpoint accounted for, and for every view file the sequence number it is
//! current through, its length and a 64-bit hash of its content. Views are verified
//! against it when a ledger is opened. The first format (no `format` field: every view
//! consistent through one sequence number, hashed with FNV-1a) is still read, so that a
//! store written by an earlier version is migrated (its views become the base).

use std::collections::BTreeMap;

use autopack_issues::{AgingThresholds, Checkpoint};
use serde::{Deserialize, Serialize};

/// The manifest format this version writes.
pub(crate) const MANIFEST_FORMAT: u32 = 2;

/// A view file as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ViewStamp {
    /// The view holds every journal entry up to this sequence number, and no later one.
    pub(crate) through: u64,
    /// Its length in bytes.
    pub(crate) len: u64,
    /// [`hash64`] of its content, 16 hex digits.
    pub(crate) hash: String,
}

/// The manifest of format 2.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub(crate) format: u32,
    /// The last journal sequence number this checkpoint accounted for (the journal was
    /// durable through it when the manifest was written).
    pub(crate) through: u64,
    /// The journal's length after that entry.
    pub(crate) journal_offset: u64,
    /// The ledger's thresholds at the checkpoint (for readers; the journal is the truth).
    pub(crate) aging_thresholds: AgingThresholds,
    /// Every view file written, by path relative to the layout root.
    pub(crate) views: BTreeMap<String, ViewStamp>,
}

impl Manifest {
    pub(crate) fn empty(thresholds: AgingThresholds) -> Manifest {
        Manifest {
            format: MANIFEST_FORMAT,
            through: 0,
            journal_offset: 0,
            aging_thresholds: thresholds,
            views: BTreeMap::new(),
        }
    }
}

/// The manifest of the first format (kept to migrate stores written before format 2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ManifestV1 {
    pub(crate) through: u64,
    pub(crate) journal_offset: u64,
    pub(crate) aging_thresholds: AgingThresholds,
    pub(crate) backlog: FileRefV1,
    pub(crate) runs: Vec<RunRefV1>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileRefV1 {
    pub(crate) path: String,
    pub(crate) fnv64: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RunRefV1 {
    pub(crate) index: FileRefV1,
    pub(crate) phases: Vec<FileRefV1>,
}

/// What was found at the manifest's path.
#[derive(Debug, Clone)]
pub(crate) enum ManifestRead {
    Missing,
    Current(Manifest),
    V1(ManifestV1),
    /// Not a manifest of either format; the message names the file, line and column.
    Corrupt(String),
}

impl ManifestRead {
    pub(crate) fn parse(text: &str, source: &str) -> ManifestRead {
        match autopack_core::json::from_str::<Manifest>(text, source) {
            Ok(m) if m.format == MANIFEST_FORMAT => ManifestRead::Current(m),
            Ok(m) => ManifestRead::Corrupt(format!("{source}: unknown format {}", m.format)),
            Err(current) => match autopack_core::json::from_str::<ManifestV1>(text, source) {
                Ok(v1) => ManifestRead::V1(v1),
                Err(_) => ManifestRead::Corrupt(current.to_string()),
            },
        }
    }

    /// The format-2 manifest, if that is what was read.
    pub(crate) fn current(&self) -> Option<&Manifest> {
        match self {
            ManifestRead::Current(m) => Some(m),
            _ => None,
        }
    }
}

/// The base checkpoint file's content: the state the journal after `through` applies to.
pub(crate) type Base = Checkpoint;

/// FNV-1a 64 over bytes (the first manifest format's hash).
pub(crate) fn fnv64(bytes: &[u8]) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// A 64-bit hash of `bytes`, eight bytes at a time (views run to hundreds of megabytes,
/// and a byte-at-a-time hash would cost more than writing them). Not cryptographic: it
/// detects torn, truncated and foreign files, not tampering.
pub(crate) fn hash64(bytes: &[u8]) -> String {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325 ^ (bytes.len() as u64).wrapping_mul(K);
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        hash = (hash.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
    }
    // A final avalanche, so that nearby inputs differ in every digit.
    hash ^= hash >> 33;
    hash = hash.wrapping_mul(0xff51_afd7_ed55_8ccd);
    hash ^= hash >> 33;
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_sees_every_byte_and_the_length() {
        let a = hash64(b"0123456789abcdef-x");
        assert_ne!(a, hash64(b"0123456789abcdef-y"));
        assert_ne!(a, hash64(b"1123456789abcdef-x"));
        assert_ne!(hash64(b"ab"), hash64(b"ab\0"));
        assert_eq!(a.len(), 16);
    }

    #[test]
    fn manifests_of_both_formats_are_told_apart() {
        let v2 = serde_json::to_string(&Manifest::empty(AgingThresholds::default())).unwrap();
        assert!(matches!(
            ManifestRead::parse(&v2, "m"),
            ManifestRead::Current(_)
        ));
        let v1 = r#"{"through":3,"journal_offset":10,"aging_thresholds":{"runs":3,"tiers":2},
            "backlog":{"path":"project_issue_backlog.json","fnv64":"00"},"runs":[]}"#;
        assert!(matches!(ManifestRead::parse(v1, "m"), ManifestRead::V1(_)));
        let ManifestRead::Corrupt(message) = ManifestRead::parse(&v2[..v2.len() - 3], "m.json")
        else {
            panic!("a truncated manifest is corrupt")
        };
        assert!(message.starts_with("m.json"), "{message}");
    }
}
