//! The run journal: an append-only log of a run's inputs.
//!
//! The Supervisor appends every input to its run's journal *before* applying it, so a
//! crashed run resumes by replaying the journal, and any run can be re-derived after the
//! fact. A [`RunStore`] stores entries as single-line JSON documents (JSON Lines); it does
//! not interpret them. [`MemoryRunStore`] keeps them in memory; the layout crate keeps
//! them in `.autonomous_runs/{run_id}/journal.jsonl`.
//!
//! ```
//! use autopack_core::ids::RunId;
//! use autopack_core::journal::{self, MemoryRunStore, RunStore, chain::Digest};
//!
//! #[derive(Debug, serde::Serialize, serde::Deserialize)]
//! #[serde(rename_all = "snake_case")]
//! enum Entry { Input(String) }
//!
//! let mut store = MemoryRunStore::default();
//! let run = RunId::new("run-1").unwrap();
//! // A chain of this journal's own (a run journal's first line binds its run instead).
//! let mut prev = Digest::of("run-1");
//! journal::append_sealed(&mut store, &run, &mut prev, None, &Entry::Input("a".into())).unwrap();
//! journal::append_sealed(&mut store, &run, &mut prev, None, &Entry::Input("b".into())).unwrap();
//! assert_eq!(store.read(&run).unwrap().len(), 2);
//! // The first line links to no genesis: replay, which checks the chain, names it.
//! let err = journal::replay::<_, Entry>(&mut store, &run).unwrap_err();
//! assert!(err.to_string().contains("entry 1"), "{err}");
//! ```
//!
//! Every line the driver writes is sealed into a hash chain ([`chain`]), so an edited,
//! removed or inserted entry is named on replay.

pub mod chain;

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::ids::RunId;
use crate::json::JsonError;

/// What reading a journal found: its complete entries, kept as one text of
/// newline-terminated lines (one allocation however long the journal), and a torn tail if
/// one was cut.
///
/// The text is shared copy-on-write: a clone is O(1) whatever the journal's length, so
/// [`MemoryRunStore::read`] hands out a snapshot without copying, and a
/// [`push`](Self::push) onto contents whose text is still shared copies it once.
///
/// ```
/// use autopack_core::journal::JournalContents;
///
/// let contents = JournalContents::from_entries(["{\"a\":1}", "{\"b\":2}"]);
/// assert_eq!(contents.len(), 2);
/// assert_eq!(contents.entries().collect::<Vec<_>>(), ["{\"a\":1}", "{\"b\":2}"]);
/// assert_eq!(contents.text(), "{\"a\":1}\n{\"b\":2}\n");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JournalContents {
    /// Every complete entry, in append order, each followed by a newline.
    text: Arc<String>,
    /// How many entries `text` holds.
    len: usize,
    /// A half-written last line (a crash during append), if one was found and cut.
    pub torn_tail: Option<TornTail>,
}

impl JournalContents {
    /// Contents holding `text`, a run of entries each followed by a newline; a last entry
    /// without its newline gets one.
    pub fn from_text(mut text: String) -> JournalContents {
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        let len = count_newlines(text.as_bytes());
        JournalContents {
            text: Arc::new(text),
            len,
            torn_tail: None,
        }
    }

    /// Contents holding `entries` (each without a newline), in order.
    pub fn from_entries<I>(entries: I) -> JournalContents
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let mut contents = JournalContents::default();
        for entry in entries {
            contents.push(entry.as_ref());
        }
        contents
    }

    /// Adds an entry (which must not hold a newline) at the end.
    pub fn push(&mut self, entry: &str) {
        let text = Arc::make_mut(&mut self.text);
        text.push_str(entry);
        text.push('\n');
        self.len += 1;
    }

    /// The entries in order, without their newlines.
    pub fn entries(&self) -> impl DoubleEndedIterator<Item = &str> + '_ {
        self.text.split_terminator('\n')
    }

    /// The last entry.
    pub fn last(&self) -> Option<&str> {
        self.entries().next_back()
    }

    /// How many entries there are.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The entries as one text, each followed by a newline: the journal file's good part.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text, for a caller that wants to own it.
    pub fn into_text(self) -> String {
        Arc::unwrap_or_clone(self.text)
    }
}

/// How many `\n` bytes `bytes` holds. Counting in blocks of 255 into byte-wide counters
/// lets the compiler use the widest vector lanes: several times faster than a filtered
/// count over a journal of hundreds of megabytes.
fn count_newlines(bytes: &[u8]) -> usize {
    bytes
        .chunks(255)
        .map(|block| block.iter().fold(0u8, |n, &b| n + u8::from(b == b'\n')) as usize)
        .sum()
}

/// A half-written last line found at the end of a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    /// Byte offset where the torn line started; the journal was truncated to it.
    pub offset: u64,
    /// How many bytes were cut.
    pub bytes: u64,
}

/// Where runs' journals are kept.
///
/// Invariant: entries come back from [`RunStore::read`] exactly as appended, in order; an
/// entry is either wholly present or wholly absent after a crash.
pub trait RunStore {
    /// The store's error type.
    type Error: std::error::Error + Send + Sync + 'static;

    /// Appends one entry (a single-line JSON document, no newline) to `run_id`'s journal.
    ///
    /// # Errors
    /// The store's error when the entry cannot be stored, or holds a newline.
    fn append(&mut self, run_id: &RunId, entry: &str) -> Result<(), Self::Error>;

    /// Reads `run_id`'s journal (empty when the run has none). A torn last line is
    /// reported and cut, never merged with the next entry.
    ///
    /// # Errors
    /// The store's error when the journal cannot be read.
    fn read(&mut self, run_id: &RunId) -> Result<JournalContents, Self::Error>;

    /// Makes every appended entry durable (a checkpoint).
    ///
    /// # Errors
    /// The store's error when syncing fails.
    fn sync(&mut self, run_id: &RunId) -> Result<(), Self::Error>;

    /// The runs that have a journal, sorted.
    ///
    /// # Errors
    /// The store's error when the runs cannot be listed.
    fn runs(&mut self) -> Result<Vec<RunId>, Self::Error>;
}

/// An error of the typed journal helpers.
#[derive(Debug, thiserror::Error)]
pub enum JournalError<E: std::error::Error + 'static> {
    /// The store failed.
    #[error(transparent)]
    Store(E),
    /// An entry could not be serialised.
    #[error("journal entry could not be serialised: {0}")]
    Serialize(String),
    /// An entry could not be read back.
    #[error(transparent)]
    Parse(#[from] JsonError),
    /// The journal's hash chain is broken: an entry was changed, removed, reordered or
    /// inserted after it was written.
    #[error("journal {run_id} was tampered with: {source}")]
    Broken {
        /// The run.
        run_id: RunId,
        /// Where and how the chain breaks.
        source: chain::ChainBreak,
    },
}

/// Serialises `entry` as one JSON line and appends it.
///
/// # Errors
/// [`JournalError::Serialize`] or the store's error.
pub fn append<S: RunStore, E: Serialize>(
    store: &mut S,
    run_id: &RunId,
    entry: &E,
) -> Result<(), JournalError<S::Error>> {
    let line = serde_json::to_string(entry).map_err(|e| JournalError::Serialize(e.to_string()))?;
    store.append(run_id, &line).map_err(JournalError::Store)
}

/// Serialises `entry` as one JSON line sealed with `prev` (and, for a run journal's
/// first line, `binds`; see [`chain`]), appends it, and makes its hash the new `prev`.
///
/// # Errors
/// [`JournalError::Serialize`] or the store's error; `prev` is then unchanged.
pub fn append_sealed<S: RunStore, E: Serialize>(
    store: &mut S,
    run_id: &RunId,
    prev: &mut chain::Digest,
    binds: Option<&chain::Binding>,
    entry: &E,
) -> Result<(), JournalError<S::Error>> {
    let line = chain::seal_entry(prev, binds, entry)
        .map_err(|e| JournalError::Serialize(e.to_string()))?;
    store.append(run_id, &line).map_err(JournalError::Store)?;
    *prev = chain::Digest::of(line.as_bytes());
    Ok(())
}

/// Reads and parses every entry of `run_id`'s journal (externally tagged entries, such
/// as the driver's), checking its hash chain ([`chain`]).
///
/// # Errors
/// The store's error, a [`JsonError`] naming the entry (`journal {run_id} entry N`), or
/// [`JournalError::Broken`] naming the first entry that breaks the chain.
pub fn replay<S: RunStore, E: DeserializeOwned>(
    store: &mut S,
    run_id: &RunId,
) -> Result<Vec<E>, JournalError<S::Error>> {
    let contents = store.read(run_id).map_err(JournalError::Store)?;
    let mut check = chain::ChainCheck::new(chain::Genesis::Binding);
    contents
        .entries()
        .enumerate()
        .map(|(i, line)| {
            let sealed: chain::Sealed<E> = parse_sealed_entry(run_id, i, line)?;
            check
                .check(line, &sealed.links)
                .map_err(|source| JournalError::Broken {
                    run_id: run_id.clone(),
                    source,
                })?;
            Ok(sealed.entry)
        })
        .collect()
}

/// Parses entry `index` (from 0) of `run_id`'s journal with its chain fields
/// ([`chain::Sealed`]); an error names it `journal {run_id} entry {index + 1}`.
///
/// A line as the driver writes it (`{"prev":"<64 hex>",` then the entry's fields), up to
/// 64 KiB, is read on a fast path: the digest straight from its bytes, the entry as the
/// object that follows — what every line of a long replay costs. Any other line, and any
/// line that fails there, takes the general path, whose errors name the line's own
/// columns.
///
/// # Errors
/// A [`JsonError`] naming the entry and the JSON path at fault.
pub fn parse_sealed_entry<E: DeserializeOwned>(
    run_id: &RunId,
    index: usize,
    line: &str,
) -> Result<chain::Sealed<E>, JsonError> {
    const PREFIX: &str = "{\"prev\":\"";
    // `{"prev":"` (9 bytes), 64 hex digits, `",` — then the entry's first field.
    const FIELDS_AT: usize = PREFIX.len() + 64 + 2;
    // The fast path copies the entry's fields; a line longer than this (a run's start,
    // with its whole plan and strategy) is cheaper read in place by the general path.
    const FAST_PATH_MAX_BYTES: usize = 64 * 1024;
    if line.len() <= FAST_PATH_MAX_BYTES
        && let Some(rest) = line.strip_prefix(PREFIX)
        && let Some(hex) = rest.get(..64)
        && rest.get(64..66) == Some("\",")
        && let Some(prev) = chain::Digest::parse_hex(hex)
        && let Some(fields) = line.get(FIELDS_AT..)
        && !fields.starts_with("\"binds\"")
    {
        let mut object = String::with_capacity(fields.len() + 1);
        object.push('{');
        object.push_str(fields);
        let mut de = serde_json::Deserializer::from_str(&object);
        if let Ok(entry) = E::deserialize(&mut de)
            && de.end().is_ok()
        {
            return Ok(chain::Sealed {
                links: chain::Links {
                    prev: Some(prev),
                    binds: None,
                },
                entry,
            });
        }
    }
    parse_entry(run_id, index, line)
}

/// Parses entry `index` (from 0) of `run_id`'s journal; an error names it
/// `journal {run_id} entry {index + 1}`.
///
/// # Errors
/// A [`JsonError`] naming the entry and the JSON path at fault.
pub fn parse_entry<E: DeserializeOwned>(
    run_id: &RunId,
    index: usize,
    line: &str,
) -> Result<E, JsonError> {
    crate::json::from_str_named(line, || format!("journal {run_id} entry {}", index + 1))
}

/// An error of [`MemoryRunStore`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemoryRunStoreError {
    /// An entry held a newline, which would split it in two.
    #[error("journal entry for run {run_id} holds a newline")]
    Newline {
        /// The run.
        run_id: RunId,
    },
}

/// A [`RunStore`] in memory, for tests and hosts that need no durability.
#[derive(Debug, Clone, Default)]
pub struct MemoryRunStore {
    journals: BTreeMap<RunId, JournalContents>,
}

impl RunStore for MemoryRunStore {
    type Error = MemoryRunStoreError;

    fn append(&mut self, run_id: &RunId, entry: &str) -> Result<(), Self::Error> {
        if entry.contains('\n') {
            return Err(MemoryRunStoreError::Newline {
                run_id: run_id.clone(),
            });
        }
        self.journals.entry(run_id.clone()).or_default().push(entry);
        Ok(())
    }

    fn read(&mut self, run_id: &RunId) -> Result<JournalContents, Self::Error> {
        Ok(self.journals.get(run_id).cloned().unwrap_or_default())
    }

    fn sync(&mut self, _run_id: &RunId) -> Result<(), Self::Error> {
        Ok(())
    }

    fn runs(&mut self) -> Result<Vec<RunId>, Self::Error> {
        Ok(self.journals.keys().cloned().collect())
    }
}

/// A conformance suite any [`RunStore`] can run against itself.
#[cfg(any(test, feature = "testing"))]
pub mod testing {
    use super::*;

    /// Runs every check against stores made by `make` (each call must give an empty store).
    ///
    /// # Panics
    /// When the store breaks the [`RunStore`] contract.
    pub fn run_store_conformance<S: RunStore>(mut make: impl FnMut() -> S) {
        appends_come_back_in_order(make());
        runs_are_separate(make());
        newlines_are_refused(make());
        unknown_run_reads_empty(make());
    }

    fn id(s: &str) -> RunId {
        RunId::new(s).expect("test ids are valid")
    }

    fn appends_come_back_in_order<S: RunStore>(mut store: S) {
        let run = id("conformance-order");
        for i in 0..100 {
            store
                .append(&run, &format!("{{\"n\":{i}}}"))
                .expect("append");
            if i % 10 == 0 {
                store.sync(&run).expect("sync");
            }
        }
        let read = store.read(&run).expect("read");
        assert_eq!(read.torn_tail, None);
        let expected: Vec<String> = (0..100).map(|i| format!("{{\"n\":{i}}}")).collect();
        assert_eq!(read.entries().collect::<Vec<_>>(), expected);
        assert_eq!(read.len(), 100);
    }

    fn runs_are_separate<S: RunStore>(mut store: S) {
        let (a, b) = (id("conformance-a"), id("conformance-b"));
        store.append(&a, "{\"x\":1}").expect("append a");
        store.append(&b, "{\"y\":2}").expect("append b");
        store.append(&a, "{\"x\":3}").expect("append a");
        assert_eq!(
            store.read(&a).expect("read").entries().collect::<Vec<_>>(),
            vec!["{\"x\":1}", "{\"x\":3}"]
        );
        assert_eq!(
            store.read(&b).expect("read").entries().collect::<Vec<_>>(),
            vec!["{\"y\":2}"]
        );
        assert_eq!(store.runs().expect("runs"), vec![a, b]);
    }

    fn newlines_are_refused<S: RunStore>(mut store: S) {
        let run = id("conformance-newline");
        assert!(store.append(&run, "{\"a\":1}\n{\"b\":2}").is_err());
        assert!(store.read(&run).expect("read").is_empty());
    }

    fn unknown_run_reads_empty<S: RunStore>(mut store: S) {
        let read = store.read(&id("never-written")).expect("read");
        assert!(read.is_empty());
        assert_eq!(read.torn_tail, None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_store_conforms() {
        testing::run_store_conformance(MemoryRunStore::default);
    }

    #[test]
    fn typed_round_trip() {
        #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Entry {
            Input(Vec<u32>),
        }
        let mut store = MemoryRunStore::default();
        let run = RunId::new("r").unwrap();
        // Unsealed lines (as written before chaining) replay.
        append(&mut store, &run, &Entry::Input(vec![1, 2, 3])).unwrap();
        append(&mut store, &run, &Entry::Input(vec![4])).unwrap();
        let back: Vec<Entry> = replay(&mut store, &run).unwrap();
        assert_eq!(
            back,
            vec![Entry::Input(vec![1, 2, 3]), Entry::Input(vec![4])]
        );
        // And may go on sealed from their head.
        let head = store
            .read(&run)
            .unwrap()
            .last()
            .map(chain::Digest::of)
            .unwrap();
        let mut prev = head;
        append_sealed(&mut store, &run, &mut prev, None, &Entry::Input(vec![5])).unwrap();
        assert_eq!(replay::<_, Entry>(&mut store, &run).unwrap().len(), 3);
        // After which an unsealed line is a break.
        append(&mut store, &run, &Entry::Input(vec![6])).unwrap();
        let err = replay::<_, Entry>(&mut store, &run).unwrap_err();
        assert!(
            matches!(
                &err,
                JournalError::Broken {
                    source: chain::ChainBreak::MissingLink {
                        entry: 4,
                        started: 3
                    },
                    ..
                }
            ),
            "{err}"
        );
        let mut store = MemoryRunStore::default();
        append(&mut store, &run, &Entry::Input(vec![1])).unwrap();
        store.append(&run, "not json").unwrap();
        let err = replay::<_, Entry>(&mut store, &run).unwrap_err();
        assert!(err.to_string().contains("journal r entry 2"), "{err}");
    }

    #[test]
    fn the_fast_path_reads_what_the_general_path_reads_or_defers_to_it() {
        #[derive(Debug, PartialEq, Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        enum Entry {
            Input(Vec<String>),
        }
        let run = RunId::new("r").unwrap();
        let prev = chain::Digest::of("x");
        let general = |line: &str| {
            crate::json::from_str_named::<chain::Sealed<Entry>>(line, || "general".into())
        };
        let entry = Entry::Input(vec!["a".into(), "\"prev\":".into()]);
        let line = chain::seal_entry(&prev, None, &entry).unwrap();
        let fast = parse_sealed_entry::<Entry>(&run, 0, &line).unwrap();
        assert_eq!(fast, general(&line).unwrap());
        assert_eq!(fast.links.prev, Some(prev));
        // Lines the fast path does not take, or fails on: the general path answers,
        // with its own errors.
        for odd in [
            format!(r#"{{"prev":"{prev}","input":[],"prev":"{prev}"}}"#),
            format!(r#"{{"prev":"{}","input":[]}}"#, "G".repeat(64)),
            format!(r#"{{ "prev":"{prev}","input":[]}}"#),
            format!(r#"{{"prev":"{prev}","input":[1]}}"#),
            r#"{"input":["legacy"]}"#.to_owned(),
        ] {
            let fast = parse_sealed_entry::<Entry>(&run, 4, &odd);
            match general(&odd) {
                Ok(want) => assert_eq!(fast.unwrap(), want, "{odd}"),
                Err(_) => {
                    let err = fast.unwrap_err().to_string();
                    assert!(err.contains("journal r entry 5"), "{odd}: {err}");
                }
            }
        }
    }

    #[test]
    fn a_read_is_a_snapshot_that_later_appends_do_not_change() {
        let mut store = MemoryRunStore::default();
        let run = RunId::new("r").unwrap();
        store.append(&run, "{\"a\":1}").unwrap();
        let snapshot = store.read(&run).unwrap();
        store.append(&run, "{\"b\":2}").unwrap();
        assert_eq!(snapshot.entries().collect::<Vec<_>>(), ["{\"a\":1}"]);
        assert_eq!(snapshot.len(), 1);
        let now = store.read(&run).unwrap();
        assert_eq!(now.text(), "{\"a\":1}\n{\"b\":2}\n");

        let mut copy = now.clone();
        copy.push("{\"c\":3}");
        assert_eq!(now.len(), 2);
        assert_eq!(copy.len(), 3);
        assert_eq!(copy.into_text(), "{\"a\":1}\n{\"b\":2}\n{\"c\":3}\n");
    }

    proptest::proptest! {
        #[test]
        fn newlines_are_counted_exactly(bytes in proptest::collection::vec(
            proptest::prop_oneof![proptest::strategy::Just(b'\n'), proptest::num::u8::ANY],
            0..2000,
        )) {
            let naive = bytes.iter().filter(|&&b| b == b'\n').count();
            proptest::prop_assert_eq!(count_newlines(&bytes), naive);
        }
    }
}
