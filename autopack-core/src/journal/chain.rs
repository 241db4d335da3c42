//! Hash chains: what makes a journal tamper-evident.
//!
//! Every sealed journal line carries `prev`, the SHA-256 of the line before it (the bytes
//! of that line as stored, without its newline: the entry's canonical serialisation, as
//! written by `serde_json` in field order). The first line of a run's journal carries
//! instead the digest of a [`Binding`] — the run id and the plan, ruleset and strategy
//! digests — which it also holds as `binds`; a ledger's journal starts from
//! [`Digest::ZERO`]. Changing, inserting, removing or reordering any line but the last
//! breaks the next line's link; the last line is covered by the head hash, which a
//! run's attestation and its commits' trailers record.
//!
//! Journals written before chaining still read: their lines have no `prev`. The chain
//! starts at the first line that has one (a run resumed by this version goes on sealing
//! from there; that line links to the hash of the line before it), and from there on a
//! line without a link is a break. [`ChainCheck`] is the one rule, used by every replay.
//!
//! ```
//! use autopack_core::journal::chain::{ChainCheck, Digest, Genesis, Links, seal};
//!
//! let first = seal(&Digest::ZERO, None, r#"{"event":"a"}"#);
//! let second = seal(&Digest::of(first.as_bytes()), None, r#"{"event":"b"}"#);
//! assert!(second.starts_with(r#"{"prev":""#));
//!
//! let mut check = ChainCheck::new(Genesis::Zero);
//! check.check(&first, &Links { prev: Some(Digest::ZERO), binds: None }).unwrap();
//! let link = Links { prev: Some(Digest::of(first.as_bytes())), binds: None };
//! check.check(&second, &link).unwrap();
//! assert_eq!(check.head(), Some(Digest::of(second.as_bytes())));
//! // The same line again does not link to the last one.
//! assert!(check.check(&second, &link).is_err());
//! ```

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, EnumAccess, MapAccess, VariantAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::ids::RunId;

/// A SHA-256 digest, written as 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// Thirty-two zero bytes: where a ledger journal's chain starts.
    pub const ZERO: Digest = Digest([0; 32]);

    /// The SHA-256 of `bytes`.
    pub fn of(bytes: impl AsRef<[u8]>) -> Digest {
        Digest(Sha256::digest(bytes.as_ref()).into())
    }

    /// The SHA-256 of the concatenation of `parts` (a line written in pieces).
    pub fn of_parts(parts: &[&[u8]]) -> Digest {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Digest(hasher.finalize().into())
    }

    /// The SHA-256 of `value`'s canonical serialisation (compact JSON, fields in
    /// declaration order).
    ///
    /// # Errors
    /// When `value` cannot be serialised.
    pub fn of_json<T: Serialize + ?Sized>(value: &T) -> Result<Digest, serde_json::Error> {
        let mut hasher = Sha256::new();
        serde_json::to_writer(HashWriter(&mut hasher), value)?;
        Ok(Digest(hasher.finalize().into()))
    }

    /// The digest `hex` spells (64 lowercase hex digits), if it is one.
    pub fn parse_hex(hex: &str) -> Option<Digest> {
        let bytes = hex.as_bytes();
        if bytes.len() != 64 {
            return None;
        }
        const fn nibble(b: u8) -> u8 {
            match b {
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                _ => 0xff,
            }
        }
        let mut out = [0u8; 32];
        let mut bad = 0u8;
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let (high, low) = (nibble(pair[0]), nibble(pair[1]));
            // 0xff marks a non-digit; collected, checked once.
            bad |= (high | low) & 0xf0;
            out[i] = (high << 4) | (low & 0x0f);
        }
        (bad == 0).then_some(Digest(out))
    }

    /// The 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        // Only ASCII digits are written.
        String::from_utf8_lossy(&self.hex()).into_owned()
    }

    /// The 64 lowercase hex digits, as bytes (no allocation: every append writes one).
    pub fn hex(&self) -> [u8; 64] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (i, byte) in self.0.iter().enumerate() {
            out[2 * i] = DIGITS[usize::from(byte >> 4)];
            out[2 * i + 1] = DIGITS[usize::from(byte & 0x0f)];
        }
        out
    }
}

/// Feeds `serde_json` output straight into a hasher (no buffer for a large document).
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hex = self.hex();
        // Only ASCII digits are written.
        f.write_str(std::str::from_utf8(&hex).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({self})")
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        // Read straight from the line (no string allocated): every sealed line has one.
        struct HexVisitor;
        impl Visitor<'_> for HexVisitor {
            type Value = Digest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a SHA-256 digest (64 lowercase hex digits)")
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Digest, E> {
                Digest::parse_hex(text).ok_or_else(|| {
                    E::custom(format!(
                        "`{text}` is not a SHA-256 digest (64 lowercase hex digits)"
                    ))
                })
            }
        }
        d.deserialize_str(HexVisitor)
    }
}

impl schemars::JsonSchema for Digest {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Sha256Digest".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[0-9a-f]{64}$",
            "description": "A SHA-256 digest, 64 lowercase hex digits."
        })
    }
}

/// What the first line of a run's journal binds the run to: its chain starts from the
/// digest of this (see [`Binding::genesis`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// The run.
    pub run_id: RunId,
    /// The SHA-256 of the plan's canonical JSON.
    pub plan_sha256: Digest,
    /// The SHA-256 of the ruleset's canonical JSON, when the strategy was compiled from
    /// one (the strategy records it).
    pub ruleset_sha256: Option<Digest>,
    /// The SHA-256 of the frozen strategy's canonical JSON.
    pub strategy_sha256: Digest,
}

impl Binding {
    /// The `prev` of the journal's first line: the SHA-256 of this binding's canonical
    /// JSON.
    pub fn genesis(&self) -> Digest {
        // A struct of strings and digests always serialises.
        Digest::of_json(self).unwrap_or(Digest::ZERO)
    }
}

/// A position in a journal: how many entries it held and the hash of the last one (the
/// head). A commit's `Autopack-Journal` trailer records the position its patch was
/// applied at, which anchors the chain in git.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalPosition {
    /// Entries in the journal.
    pub entries: u64,
    /// The SHA-256 of the last of them.
    pub head: Digest,
}

impl fmt::Display for JournalPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.entries, self.head)
    }
}

impl JournalPosition {
    /// Reads the trailer form `{entries} {head}`.
    pub fn parse(text: &str) -> Option<JournalPosition> {
        let (entries, head) = text.trim().split_once(' ')?;
        Some(JournalPosition {
            entries: entries.parse().ok()?,
            head: Digest::parse_hex(head)?,
        })
    }
}

/// The chain fields of one line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Links {
    /// The hash the line links to: the line before it's, or the genesis.
    pub prev: Option<Digest>,
    /// What a run journal's first line binds.
    pub binds: Option<Binding>,
}

/// Where a journal's chain starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Genesis {
    /// A run journal: the first line holds a [`Binding`] and links to its digest.
    Binding,
    /// A ledger journal: the first line links to [`Digest::ZERO`].
    Zero,
}

/// `entry_json` (a JSON object) as a sealed line: `prev` (and `binds`) first, then the
/// entry's own fields.
pub fn seal(prev: &Digest, binds: Option<&Binding>, entry_json: &str) -> String {
    let mut line = Vec::with_capacity(entry_json.len() + 80);
    seal_prefix(&mut line, prev, binds);
    line.extend_from_slice(entry_json.as_bytes());
    close_prefix(&mut line, entry_json.len());
    // Only JSON text was written.
    String::from_utf8(line).unwrap_or_default()
}

/// Serialises `entry` straight after its links, in one buffer: what every append does.
///
/// # Errors
/// When `entry` does not serialise (or is not a JSON object).
pub fn seal_entry<E: Serialize + ?Sized>(
    prev: &Digest,
    binds: Option<&Binding>,
    entry: &E,
) -> Result<String, serde_json::Error> {
    let mut line = Vec::with_capacity(256);
    seal_prefix(&mut line, prev, binds);
    let start = line.len();
    serde_json::to_writer(&mut line, entry)?;
    if line.get(start) != Some(&b'{') {
        return Err(serde::ser::Error::custom(
            "a journal entry must be a JSON object",
        ));
    }
    let entry_len = line.len() - start;
    close_prefix(&mut line, entry_len);
    // serde_json writes UTF-8.
    String::from_utf8(line).map_err(serde::ser::Error::custom)
}

/// `{"prev":"…"` (and `,"binds":{…}`), without the comma the entry's fields follow.
fn seal_prefix(line: &mut Vec<u8>, prev: &Digest, binds: Option<&Binding>) {
    line.extend_from_slice(b"{\"prev\":\"");
    line.extend_from_slice(&prev.hex());
    line.push(b'"');
    if let Some(binds) = binds {
        line.extend_from_slice(b",\"binds\":");
        // A struct of strings and digests always serialises.
        let _ = serde_json::to_writer(&mut *line, binds);
    }
}

/// Turns the entry's opening brace, the last `entry_len` bytes' first, into the comma
/// after the links (or drops it, for an empty object).
fn close_prefix(line: &mut Vec<u8>, entry_len: usize) {
    let at = line.len() - entry_len;
    if line.get(at + 1) == Some(&b'}') {
        line.remove(at);
    } else if line.get(at) == Some(&b'{') {
        line[at] = b',';
    }
}

/// Why a line breaks the chain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ChainBreak {
    /// The line's `prev` is not the hash of the line before it.
    #[error("entry {entry} does not link to entry {}: it was changed, removed, reordered or inserted", entry - 1)]
    Unlinked {
        /// The line (from 1).
        entry: usize,
    },
    /// A line after the chain started has no `prev`.
    #[error("entry {entry} has no hash link although the chain started at entry {started}")]
    MissingLink {
        /// The line (from 1).
        entry: usize,
        /// The first sealed line.
        started: usize,
    },
    /// The first line does not link to its genesis (its binding, or zero).
    #[error("entry 1 does not link to the journal's genesis ({reason})")]
    BadGenesis {
        /// What is wrong.
        reason: &'static str,
    },
    /// A line other than the first holds a binding.
    #[error("entry {entry} holds a binding, which only the first entry may")]
    MisplacedBinding {
        /// The line (from 1).
        entry: usize,
    },
}

/// Checks a journal's lines in order against their links, keeping the head hash.
#[derive(Debug, Clone)]
pub struct ChainCheck {
    genesis: Genesis,
    /// Lines checked so far.
    seen: usize,
    /// The hash of the last line checked.
    last: Option<Digest>,
    /// The first sealed line (from 1).
    started: Option<usize>,
    binding: Option<Binding>,
}

impl ChainCheck {
    /// A check of a journal whose chain starts at `genesis`.
    pub fn new(genesis: Genesis) -> ChainCheck {
        ChainCheck {
            genesis,
            seen: 0,
            last: None,
            started: None,
            binding: None,
        }
    }

    /// Checks the next line (`line`, as stored) given its parsed `links`, then makes its
    /// hash the head.
    ///
    /// # Errors
    /// The [`ChainBreak`]; the check then stays where it was.
    pub fn check(&mut self, line: &str, links: &Links) -> Result<(), ChainBreak> {
        self.check_hashed(Digest::of(line.as_bytes()), links)
    }

    /// [`check`](Self::check) of a line whose hash the caller computed (a replay hashes
    /// on the thread that parses).
    ///
    /// # Errors
    /// As [`check`](Self::check).
    pub fn check_hashed(&mut self, line_hash: Digest, links: &Links) -> Result<(), ChainBreak> {
        let entry = self.seen + 1;
        if links.binds.is_some() && entry > 1 {
            return Err(ChainBreak::MisplacedBinding { entry });
        }
        match (links.prev, self.started) {
            (None, Some(started)) => return Err(ChainBreak::MissingLink { entry, started }),
            // Written before chaining.
            (None, None) => {}
            (Some(prev), _) if entry == 1 => {
                let expected = match (self.genesis, &links.binds) {
                    (Genesis::Zero, None) => Digest::ZERO,
                    (Genesis::Zero, Some(_)) => {
                        return Err(ChainBreak::BadGenesis {
                            reason: "a ledger journal binds nothing",
                        });
                    }
                    (Genesis::Binding, Some(binds)) => binds.genesis(),
                    (Genesis::Binding, None) => {
                        return Err(ChainBreak::BadGenesis {
                            reason: "it holds no binding",
                        });
                    }
                };
                if prev != expected {
                    return Err(ChainBreak::BadGenesis {
                        reason: "its link is not the digest of its genesis",
                    });
                }
                self.binding = links.binds.clone();
            }
            (Some(prev), _) => {
                if Some(prev) != self.last {
                    return Err(ChainBreak::Unlinked { entry });
                }
            }
        }
        if links.prev.is_some() && self.started.is_none() {
            self.started = Some(entry);
        }
        self.last = Some(line_hash);
        self.seen = entry;
        Ok(())
    }

    /// The hash of the last line checked (what the next line must link to).
    pub fn head(&self) -> Option<Digest> {
        self.last
    }

    /// The first sealed line (from 1), if the chain has started.
    pub fn started(&self) -> Option<usize> {
        self.started
    }

    /// How many lines were checked.
    pub fn len(&self) -> usize {
        self.seen
    }

    /// Whether no line was checked.
    pub fn is_empty(&self) -> bool {
        self.seen == 0
    }

    /// The first line's binding, when it holds one.
    pub fn binding(&self) -> Option<&Binding> {
        self.binding.as_ref()
    }
}

/// A journal line parsed with its chain fields: `prev` and `binds` beside the entry, an
/// externally tagged enum (`{"prev": "…", "input": {…}}`); the fields may come in any
/// order, and lines without them (written before chaining) read too.
#[derive(Debug, Clone, PartialEq)]
pub struct Sealed<E> {
    /// The line's links.
    pub links: Links,
    /// The entry.
    pub entry: E,
}

impl<'de, E: Deserialize<'de>> Deserialize<'de> for Sealed<E> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Sealed<E>, D::Error> {
        d.deserialize_map(SealedVisitor(PhantomData))
    }
}

struct SealedVisitor<E>(PhantomData<E>);

impl<'de, E: Deserialize<'de>> Visitor<'de> for SealedVisitor<E> {
    type Value = Sealed<E>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a journal entry (a JSON object)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Sealed<E>, A::Error> {
        let mut links = Links::default();
        let mut entry = None;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            match key.as_ref() {
                "prev" if links.prev.is_none() => links.prev = Some(map.next_value()?),
                "binds" if links.binds.is_none() => links.binds = Some(map.next_value()?),
                "prev" | "binds" => return Err(de::Error::duplicate_field("prev")),
                _ if entry.is_some() => {
                    return Err(de::Error::custom(format!(
                        "a second entry `{key}` in one journal line"
                    )));
                }
                _ => {
                    entry = Some(E::deserialize(VariantOf {
                        variant: key,
                        map: &mut map,
                    })?)
                }
            }
        }
        let entry = entry.ok_or_else(|| de::Error::custom("a journal line without an entry"))?;
        Ok(Sealed { links, entry })
    }
}

/// A map key, borrowed from the line when it holds no escape (no allocation per line).
struct Key<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Key<'de>, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(std::borrow::Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// The rest of a map whose key `variant` was read: an externally tagged enum's value.
struct VariantOf<'a, 'de, A> {
    variant: std::borrow::Cow<'de, str>,
    map: &'a mut A,
}

impl<'de, A: MapAccess<'de>> Deserializer<'de> for VariantOf<'_, 'de, A> {
    type Error = A::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, A::Error> {
        visitor.visit_enum(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}

impl<'de, A: MapAccess<'de>> EnumAccess<'de> for VariantOf<'_, 'de, A> {
    type Error = A::Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), A::Error> {
        let value = seed.deserialize(de::value::StrDeserializer::<A::Error>::new(
            self.variant.as_ref(),
        ))?;
        Ok((value, self))
    }
}

impl<'de, A: MapAccess<'de>> VariantAccess<'de> for VariantOf<'_, 'de, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.map.next_value::<de::IgnoredAny>().map(drop)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _: V) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("journal entries are newtype variants"))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, A::Error> {
        Err(de::Error::custom("journal entries are newtype variants"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Entry {
        Config(u32),
        Input(Vec<String>),
    }

    fn binding() -> Binding {
        Binding {
            run_id: RunId::new("r1").unwrap(),
            plan_sha256: Digest::of("plan"),
            ruleset_sha256: None,
            strategy_sha256: Digest::of("strategy"),
        }
    }

    fn parse(line: &str) -> Sealed<Entry> {
        crate::json::from_str(line, "test line").unwrap()
    }

    /// A sealed journal of `n` lines.
    fn journal(n: usize) -> Vec<String> {
        let binds = binding();
        let mut lines = vec![seal(&binds.genesis(), Some(&binds), r#"{"config":1}"#)];
        for i in 1..n {
            let prev = Digest::of(lines[i - 1].as_bytes());
            lines.push(seal(&prev, None, &format!(r#"{{"input":["{i}"]}}"#)));
        }
        lines
    }

    fn check_all(lines: &[String]) -> Result<ChainCheck, ChainBreak> {
        let mut check = ChainCheck::new(Genesis::Binding);
        for line in lines {
            check.check(line, &parse(line).links)?;
        }
        Ok(check)
    }

    #[test]
    fn digests_spell_and_parse_as_hex() {
        let d = Digest::of("abc");
        assert_eq!(
            d.to_hex(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Digest::parse_hex(&d.to_hex()), Some(d));
        assert_eq!(Digest::parse_hex("BA78"), None);
        assert_eq!(Digest::parse_hex(&"G".repeat(64)), None);
        assert_eq!(Digest::of_parts(&[b"a", b"bc"]), d);
        assert_eq!(Digest::of_json("abc").unwrap(), Digest::of("\"abc\""));
    }

    #[test]
    fn sealing_in_one_buffer_writes_what_sealing_the_text_does() {
        let prev = Digest::of("p");
        for entry in [Entry::Config(7), Entry::Input(vec!["a".into(), "}".into()])] {
            let json = serde_json::to_string(&entry).unwrap();
            for binds in [None, Some(binding())] {
                assert_eq!(
                    seal_entry(&prev, binds.as_ref(), &entry).unwrap(),
                    seal(&prev, binds.as_ref(), &json)
                );
            }
        }
        assert_eq!(
            seal(&Digest::ZERO, None, "{}"),
            format!("{{\"prev\":\"{}\"}}", Digest::ZERO)
        );
        assert!(seal_entry(&prev, None, &3u8).is_err());
        assert_eq!(Digest::of("abc").to_hex(), format!("{}", Digest::of("abc")));
    }

    #[test]
    fn sealed_lines_read_back_with_their_links_and_unsealed_ones_without() {
        let lines = journal(3);
        let first = parse(&lines[0]);
        assert_eq!(first.entry, Entry::Config(1));
        assert_eq!(first.links.binds, Some(binding()));
        assert_eq!(first.links.prev, Some(binding().genesis()));
        assert_eq!(parse(&lines[2]).entry, Entry::Input(vec!["2".into()]));
        let legacy = parse(r#"{"input":["x"]}"#);
        assert_eq!(legacy.links, Links::default());
        // Any order.
        let late = parse(&format!(r#"{{"input":[],"prev":"{}"}}"#, Digest::ZERO));
        assert_eq!(late.links.prev, Some(Digest::ZERO));
    }

    #[test]
    fn bad_lines_are_refused_with_the_field_named() {
        for (line, want) in [
            (r#"{"prev":"00"}"#, "not a SHA-256 digest"),
            (r#"{}"#, "without an entry"),
            (r#"{"input":[],"config":1}"#, "second entry"),
            (r#"{"output":1}"#, "unknown variant `output`"),
        ] {
            let err = crate::json::from_str::<Sealed<Entry>>(line, "line 9")
                .unwrap_err()
                .to_string();
            assert!(err.contains(want), "{line}: {err}");
            assert!(err.contains("line 9"), "{err}");
        }
        let err = crate::json::from_str::<Sealed<Entry>>(r#"{"input":[1]}"#, "line 9")
            .unwrap_err()
            .to_string();
        assert!(err.contains("input[0]"), "{err}");
    }

    #[test]
    fn an_intact_chain_checks_and_every_tamper_is_named() {
        let lines = journal(6);
        let check = check_all(&lines).unwrap();
        assert_eq!(check.head(), Some(Digest::of(lines[5].as_bytes())));
        assert_eq!(check.started(), Some(1));
        assert_eq!(check.binding(), Some(&binding()));

        // An edited line breaks the next one's link.
        let mut edited = lines.clone();
        edited[2] = edited[2].replace("\"2\"", "\"two\"");
        assert_eq!(
            check_all(&edited).unwrap_err(),
            ChainBreak::Unlinked { entry: 4 }
        );
        // Removed, swapped, duplicated.
        let mut removed = lines.clone();
        removed.remove(3);
        assert_eq!(
            check_all(&removed).unwrap_err(),
            ChainBreak::Unlinked { entry: 4 }
        );
        let mut swapped = lines.clone();
        swapped.swap(2, 3);
        assert_eq!(
            check_all(&swapped).unwrap_err(),
            ChainBreak::Unlinked { entry: 3 }
        );
        // A line with its link stripped.
        let mut stripped = lines.clone();
        stripped[4] = r#"{"input":["4"]}"#.into();
        assert_eq!(
            check_all(&stripped).unwrap_err(),
            ChainBreak::MissingLink {
                entry: 5,
                started: 1
            }
        );
        // Another run's binding, or a binding edited.
        let mut rebound = lines.clone();
        rebound[0] = rebound[0].replace("\"r1\"", "\"r2\"");
        assert!(matches!(
            check_all(&rebound).unwrap_err(),
            ChainBreak::BadGenesis { .. }
        ));
        let mut misplaced = lines.clone();
        misplaced[1] = lines[0].clone();
        assert_eq!(
            check_all(&misplaced).unwrap_err(),
            ChainBreak::MisplacedBinding { entry: 2 }
        );
    }

    #[test]
    fn a_journal_written_before_chaining_reads_and_may_go_on_sealed() {
        let legacy = [r#"{"config":1}"#.to_string(), r#"{"input":["a"]}"#.into()];
        let check = check_all(&legacy).unwrap();
        assert_eq!(check.started(), None);
        let mut lines = legacy.to_vec();
        lines.push(seal(&check.head().unwrap(), None, r#"{"input":["b"]}"#));
        let check = check_all(&lines).unwrap();
        assert_eq!(check.started(), Some(3));
        lines.push(r#"{"input":["c"]}"#.into());
        assert!(matches!(
            check_all(&lines).unwrap_err(),
            ChainBreak::MissingLink { entry: 4, .. }
        ));
    }

    #[test]
    fn a_ledger_chain_starts_at_zero() {
        let mut check = ChainCheck::new(Genesis::Zero);
        let line = seal(&Digest::ZERO, None, r#"{"seq":1}"#);
        check
            .check(
                &line,
                &Links {
                    prev: Some(Digest::ZERO),
                    binds: None,
                },
            )
            .unwrap();
        let mut bad = ChainCheck::new(Genesis::Zero);
        assert!(
            bad.check(
                &line,
                &Links {
                    prev: Some(Digest::of("x")),
                    binds: None
                }
            )
            .is_err()
        );
    }

    proptest::proptest! {
        #[test]
        fn any_single_byte_change_but_in_the_last_line_is_caught(
            n in 2usize..12, line in 0usize..11, at in 0usize..400, byte in 0u8..128,
        ) {
            let lines = journal(n);
            let line = line % (n - 1);
            let bytes = lines[line].as_bytes();
            let at = at % bytes.len();
            proptest::prop_assume!(bytes[at] != byte);
            let mut changed = bytes.to_vec();
            changed[at] = byte;
            let Ok(changed) = String::from_utf8(changed) else { return Ok(()) };
            let mut tampered = lines.clone();
            tampered[line] = changed;
            let mut check = ChainCheck::new(Genesis::Binding);
            let mut broke = false;
            for l in &tampered {
                match crate::json::from_str::<Sealed<Entry>>(l, "l") {
                    Ok(sealed) => if check.check(l, &sealed.links).is_err() { broke = true; break },
                    Err(_) => { broke = true; break }
                }
            }
            proptest::prop_assert!(broke);
        }
    }
}
