//! Strict JSON reading with errors that say where.
//!
//! Every reader of a plan, ruleset, backlog or agent message goes through [`from_str`], so
//! a bad document is reported with its source (a file name, or a description such as
//! `builder stdout`), the JSON path of the offending value (`phases[2].tier_id`) and the
//! line and column.
//!
//! ```
//! use autopack_core::json;
//! use autopack_core::ids::RunId;
//!
//! #[derive(Debug, serde::Deserialize)]
//! struct Doc { runs: Vec<RunId> }
//!
//! let err = json::from_str::<Doc>("{\"runs\": [\"ok\", \"a/b\"]}", "doc.json").unwrap_err();
//! assert_eq!(err.path, "runs[1]");
//! assert!(err.to_string().starts_with("doc.json: runs[1]: invalid run_id \"a/b\""));
//! ```

use serde::de::DeserializeOwned;

/// A JSON document that could not be read as the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}: {}{message} (line {line}, column {column})", path_prefix(.path))]
pub struct JsonError {
    /// Where the document came from: a file path or a description.
    pub source_name: String,
    /// The JSON path of the value at fault (`run.run_scope`, `phases[2]`); `.` for the root.
    pub path: String,
    /// 1-based line of the error (0 when unknown).
    pub line: usize,
    /// 1-based column of the error (0 when unknown).
    pub column: usize,
    /// What was wrong.
    pub message: String,
}

fn path_prefix(path: &str) -> String {
    if path == "." || path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    }
}

/// Parses `text` as a `T`, naming `source` and the JSON path in any error.
///
/// # Errors
/// A [`JsonError`] for syntax errors, truncated documents, wrong types, unknown fields
/// (where `T` denies them) and values its constructors reject.
pub fn from_str<T: DeserializeOwned>(
    text: &str,
    source: impl Into<String>,
) -> Result<T, JsonError> {
    from_str_named(text, move || source.into())
}

/// As [`from_str`], but the source's name is made only when there is an error: no
/// allocation per document when parsing many (the entries of a journal).
///
/// # Errors
/// As [`from_str`].
pub fn from_str_named<T: DeserializeOwned>(
    text: &str,
    source: impl FnOnce() -> String,
) -> Result<T, JsonError> {
    // Tracking the path costs an allocation per object key, so the document is parsed
    // untracked first; only a document that fails is parsed again to name the path.
    // Parsing is deterministic, so the second pass fails at the same place.
    let mut de = serde_json::Deserializer::from_str(text);
    if let Ok(value) = T::deserialize(&mut de)
        && de.end().is_ok()
    {
        return Ok(value);
    }
    from_str_tracked(text, source())
}

#[cold]
fn from_str_tracked<T: DeserializeOwned>(text: &str, source: String) -> Result<T, JsonError> {
    let mut de = serde_json::Deserializer::from_str(text);
    let result: Result<T, _> = serde_path_to_error::deserialize(&mut de);
    let value = match result {
        Ok(value) => value,
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            return Err(JsonError {
                source_name: source,
                path,
                line: inner.line(),
                column: inner.column(),
                message: strip_position(&inner.to_string()),
            });
        }
    };
    // Trailing garbage after the document is an error too.
    if let Err(inner) = de.end() {
        return Err(JsonError {
            source_name: source,
            path: ".".into(),
            line: inner.line(),
            column: inner.column(),
            message: strip_position(&inner.to_string()),
        });
    }
    Ok(value)
}

/// Parses bytes; invalid UTF-8 is reported like any other syntax error.
///
/// # Errors
/// As [`from_str`].
pub fn from_slice<T: DeserializeOwned>(
    bytes: &[u8],
    source: impl Into<String>,
) -> Result<T, JsonError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => from_str(text, source),
        Err(err) => Err(JsonError {
            source_name: source.into(),
            path: ".".into(),
            line: 0,
            column: 0,
            message: format!("not valid UTF-8: {err}"),
        }),
    }
}

/// Deserializes a value from a JSON string through `parse`, without an owned copy of the
/// string when the input lends it (serde's `Cow<str>` always copies). Ids, labels and
/// timestamps are read this way: a replayed journal holds millions of them.
pub(crate) fn deserialize_via_str<'de, D, T, E>(
    deserializer: D,
    expecting: &'static str,
    parse: impl FnOnce(&str) -> Result<T, E>,
) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    E: std::fmt::Display,
{
    struct Via<F> {
        expecting: &'static str,
        parse: F,
    }
    impl<T, E: std::fmt::Display, F: FnOnce(&str) -> Result<T, E>> serde::de::Visitor<'_> for Via<F> {
        type Value = T;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<Er: serde::de::Error>(self, text: &str) -> Result<T, Er> {
            (self.parse)(text).map_err(Er::custom)
        }
    }
    deserializer.deserialize_str(Via { expecting, parse })
}

/// serde_json appends " at line L column C"; we report those as fields.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(idx) => message[..idx].to_owned(),
        None => message.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        count: u32,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        items: Vec<Inner>,
    }

    #[test]
    fn names_source_path_and_position() {
        let err = from_str::<Outer>("{\"items\": [{\"count\": 1}, {\"count\": -1}]}", "x.json")
            .unwrap_err();
        assert_eq!(err.source_name, "x.json");
        assert_eq!(err.path, "items[1].count");
        assert_eq!(err.line, 1);
        assert!(err.message.contains("-1"), "{}", err.message);
        assert!(
            err.to_string().starts_with("x.json: items[1].count: "),
            "{err}"
        );
    }

    #[test]
    fn unknown_fields_are_named() {
        let err =
            from_str::<Outer>("{\"items\": [{\"count\": 1, \"extra\": 2}]}", "x.json").unwrap_err();
        assert_eq!(err.path, "items[0].extra");
        assert!(
            err.message.contains("unknown field `extra`"),
            "{}",
            err.message
        );
    }

    #[test]
    fn truncated_and_trailing_documents_fail() {
        let err = from_str::<Outer>("{\"items\": [{\"count\": 1}", "t.json").unwrap_err();
        assert!(err.message.contains("EOF"), "{}", err.message);
        let err = from_str::<Outer>("{\"items\": []} {}", "t.json").unwrap_err();
        assert_eq!(err.line, 1);
        assert!(err.message.contains("trailing"), "{}", err.message);
        let err = from_slice::<Outer>(&[0xff, 0xfe], "bin").unwrap_err();
        assert!(err.message.contains("UTF-8"));
    }
}
