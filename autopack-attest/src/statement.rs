//! The in-toto Statement v1: what an attestation is about (its subjects, by digest) and what
//! it says about them (a typed predicate).
//!
//! Read leniently, as the in-toto parsing rules require (unknown fields are ignored, missing
//! optional fields take their defaults), and checked by [`Statement::validate`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use thiserror::Error;

use crate::digest::{is_lower_hex, sha256_hex};

/// The `_type` of every in-toto Statement v1.
pub const STATEMENT_TYPE_V1: &str = "https://in-toto.io/Statement/v1";

/// An in-toto ResourceDescriptor: one artefact, named and identified by its digests.
///
/// Field names follow the in-toto v1 ResourceDescriptor spec; absent optional fields are
/// left out when written. `content` is kept as the base64 text the JSON holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDescriptor {
    /// Identifier that tells this artefact from the others of a statement (a file name, a
    /// branch); empty means unset.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// A URI that identifies the resource globally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    /// Algorithm name to digest value, e.g. `{"gitCommit": "<40 hex>"}` or
    /// `{"sha256": "<64 hex>"}`.
    #[serde(default)]
    pub digest: BTreeMap<String, String>,
    /// The resource's own bytes, as the base64 text of the JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Where the resource can be downloaded, if not at `uri`.
    #[serde(
        default,
        rename = "downloadLocation",
        skip_serializing_if = "Option::is_none"
    )]
    pub download_location: Option<String>,
    /// The resource's media (MIME) type.
    #[serde(default, rename = "mediaType", skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Further facts about the resource, for policies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<Map<String, Value>>,
}

impl ResourceDescriptor {
    /// A descriptor with a name and a digest set, nothing else.
    pub fn new(name: impl Into<String>, digest: BTreeMap<String, String>) -> Self {
        Self {
            name: name.into(),
            uri: None,
            digest,
            content: None,
            download_location: None,
            media_type: None,
            annotations: None,
        }
    }

    /// A git commit: `{"gitCommit": commit}` (the commit id as lowercase hex).
    pub fn git_commit(name: impl Into<String>, commit: impl Into<String>) -> Self {
        Self::new(
            name,
            BTreeMap::from([("gitCommit".to_owned(), commit.into())]),
        )
    }

    /// A file or blob: `{"sha256": sha256_hex(bytes)}`.
    pub fn sha256_of(name: impl Into<String>, bytes: &[u8]) -> Self {
        Self::new(
            name,
            BTreeMap::from([("sha256".to_owned(), sha256_hex(bytes))]),
        )
    }
}

/// An in-toto Statement v1 (`https://in-toto.io/Statement/v1`).
///
/// Serialised with the spec's field names (`_type`, `subject`, `predicateType`,
/// `predicate`). Reading ignores unknown fields and fills missing ones with empty values, so
/// that [`Statement::validate`] can name what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// The statement's schema: [`STATEMENT_TYPE_V1`].
    #[serde(rename = "_type", default)]
    pub statement_type: String,
    /// The artefacts the statement is about; at least one, each with a digest.
    #[serde(default)]
    pub subject: Vec<ResourceDescriptor>,
    /// URI of the predicate's type (its schema and meaning).
    #[serde(rename = "predicateType", default)]
    pub predicate_type: String,
    /// The predicate: a JSON object whose schema `predicate_type` names. Absent reads as `{}`.
    #[serde(default = "empty_object")]
    pub predicate: Value,
}

fn empty_object() -> Value {
    Value::Object(Map::new())
}

impl Statement {
    /// A v1 statement about `subjects` saying `predicate` of type `predicate_type`.
    pub fn new(
        subjects: Vec<ResourceDescriptor>,
        predicate_type: impl Into<String>,
        predicate: Value,
    ) -> Self {
        Self {
            statement_type: STATEMENT_TYPE_V1.to_owned(),
            subject: subjects,
            predicate_type: predicate_type.into(),
            predicate,
        }
    }

    /// Checks what in-toto requires of a statement: `_type` is [`STATEMENT_TYPE_V1`], there
    /// is at least one subject, each subject's digest set is non-empty with lowercase hex
    /// values, `predicateType` is non-empty and `predicate` is an object.
    ///
    /// Every digest value must be lowercase hex, as in-toto's named algorithms (`sha256`,
    /// `gitCommit`, ...) are; a value in another encoding is refused rather than ignored.
    pub fn validate(&self) -> Result<(), StatementError> {
        if self.statement_type != STATEMENT_TYPE_V1 {
            return Err(StatementError::WrongType {
                found: self.statement_type.clone(),
            });
        }
        if self.subject.is_empty() {
            return Err(StatementError::NoSubject);
        }
        for (i, subject) in self.subject.iter().enumerate() {
            if subject.digest.is_empty() {
                return Err(StatementError::EmptyDigest {
                    field: format!("subject[{i}].digest"),
                });
            }
            for (algorithm, value) in &subject.digest {
                if algorithm.is_empty() {
                    return Err(StatementError::EmptyAlgorithm {
                        field: format!("subject[{i}].digest"),
                    });
                }
                if !is_lower_hex(value) {
                    return Err(StatementError::DigestNotHex {
                        field: format!("subject[{i}].digest.{algorithm}"),
                        value: shorten(value),
                    });
                }
            }
        }
        if self.predicate_type.trim().is_empty() {
            return Err(StatementError::EmptyPredicateType);
        }
        if !self.predicate.is_object() {
            return Err(StatementError::PredicateNotObject {
                found: json_kind(&self.predicate),
            });
        }
        Ok(())
    }

    /// The statement as compact JSON: the bytes [`crate::sign_statement`] signs.
    ///
    /// Fields in the order `_type`, `subject`, `predicateType`, `predicate`; object keys of
    /// the predicate as `serde_json` holds them. A verifier checks these exact bytes, so no
    /// canonical form is needed.
    pub fn to_json_bytes(&self) -> Vec<u8> {
        // Strings, string-keyed maps and JSON values only: serialising cannot fail.
        serde_json::to_vec(self).expect("a Statement always serialises to JSON")
    }

    /// Reads a statement from JSON (leniently, see [`Statement`]) and validates it.
    pub fn from_json(bytes: &[u8]) -> Result<Self, StatementReadError> {
        crate::expect_json_object(bytes).map_err(|source| StatementReadError::Json {
            path: ".".to_owned(),
            source,
        })?;
        let mut de = serde_json::Deserializer::from_slice(bytes);
        let statement: Statement =
            serde_path_to_error::deserialize(&mut de).map_err(|e| StatementReadError::Json {
                path: e.path().to_string(),
                source: e.into_inner(),
            })?;
        de.end().map_err(|source| StatementReadError::Json {
            path: ".".to_owned(),
            source,
        })?;
        statement.validate()?;
        Ok(statement)
    }
}

/// What [`Statement::validate`] finds wrong, naming the field ([`StatementError::field`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum StatementError {
    /// `_type` is not the v1 statement type.
    #[error("`_type` is {found:?}, expected {STATEMENT_TYPE_V1:?}")]
    WrongType {
        /// The `_type` the statement has.
        found: String,
    },
    /// `subject` is empty or absent.
    #[error("`subject` is empty: a statement needs at least one subject")]
    NoSubject,
    /// A subject has no digest.
    #[error("`{field}` is missing or empty: each subject needs at least one digest")]
    EmptyDigest {
        /// Which digest set, e.g. `subject[0].digest`.
        field: String,
    },
    /// A digest set has an empty algorithm name.
    #[error("`{field}` has an empty algorithm name")]
    EmptyAlgorithm {
        /// Which digest set, e.g. `subject[0].digest`.
        field: String,
    },
    /// A digest value is empty or not lowercase hex.
    #[error("`{field}` is {value:?}, expected lowercase hex digits")]
    DigestNotHex {
        /// Which value, e.g. `subject[0].digest.sha256`.
        field: String,
        /// The value (its first 80 characters).
        value: String,
    },
    /// `predicateType` is empty or absent.
    #[error("`predicateType` is empty: a statement needs the URI of its predicate's type")]
    EmptyPredicateType,
    /// `predicate` is not a JSON object.
    #[error("`predicate` is {found}, expected a JSON object")]
    PredicateNotObject {
        /// What kind of JSON value it is (`null`, `an array`, ...).
        found: &'static str,
    },
}

impl StatementError {
    /// The path of the offending field, e.g. `_type`, `subject[0].digest`,
    /// `subject[1].digest.sha256`, `predicateType`.
    pub fn field(&self) -> &str {
        match self {
            Self::WrongType { .. } => "_type",
            Self::NoSubject => "subject",
            Self::EmptyDigest { field }
            | Self::EmptyAlgorithm { field }
            | Self::DigestNotHex { field, .. } => field,
            Self::EmptyPredicateType => "predicateType",
            Self::PredicateNotObject { .. } => "predicate",
        }
    }
}

/// Why bytes are not a valid statement: not statement-shaped JSON, or an invalid statement.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StatementReadError {
    /// Not JSON, or a field of the wrong JSON type.
    #[error("not statement JSON at `{path}`: {source}")]
    Json {
        /// Where in the document (`.` for the whole, `subject[0].name`, ...).
        path: String,
        /// What `serde_json` reported.
        #[source]
        source: serde_json::Error,
    },
    /// Statement-shaped, but [`Statement::validate`] refuses it.
    #[error(transparent)]
    Invalid(#[from] StatementError),
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// At most 80 characters of `s`, so an error never carries a huge value.
fn shorten(s: &str) -> String {
    match s.char_indices().nth(80) {
        Some((end, _)) => format!("{}...", &s[..end]),
        None => s.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

    fn statement() -> Statement {
        Statement::new(
            vec![
                ResourceDescriptor::git_commit("autopack/run-1", COMMIT),
                ResourceDescriptor::sha256_of("report.xml", b"<testsuites/>"),
            ],
            "https://in-toto.io/attestation/test-result/v0.1",
            json!({
                "configuration": [],
                "passedTests": ["core::plan", "core::ids"],
                "result": "PASSED"
            }),
        )
    }

    #[test]
    fn a_new_statement_is_valid() {
        assert_eq!(statement().validate(), Ok(()));
    }

    #[test]
    fn statement_json_snapshot() {
        let json = String::from_utf8(statement().to_json_bytes()).unwrap();
        insta::assert_snapshot!(json);
    }

    #[test]
    fn statement_json_has_the_v1_required_fields() {
        let value: Value = serde_json::from_slice(&statement().to_json_bytes()).unwrap();
        let object = value.as_object().unwrap();
        assert_eq!(object["_type"], "https://in-toto.io/Statement/v1");
        assert!(
            object["predicateType"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        );
        assert!(object["predicate"].is_object());
        let subjects = object["subject"].as_array().unwrap();
        assert!(!subjects.is_empty());
        for subject in subjects {
            assert!(subject["name"].as_str().is_some_and(|s| !s.is_empty()));
            let digest = subject["digest"].as_object().unwrap();
            assert!(!digest.is_empty());
            for value in digest.values() {
                assert!(is_lower_hex(value.as_str().unwrap()));
            }
        }
        // The spec's field names, and nothing in snake_case.
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["_type", "predicate", "predicateType", "subject"]);
    }

    #[test]
    fn reading_ignores_unknown_fields_and_keeps_known_ones() {
        let json = json!({
            "_type": STATEMENT_TYPE_V1,
            "subject": [{
                "name": "a.tar", "digest": {"sha256": sha256_hex(b"a")},
                "uri": "pkg:generic/a", "downloadLocation": "https://example.org/a.tar",
                "mediaType": "application/x-tar", "annotations": {"size": 1},
                "futureField": true
            }],
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {"buildDefinition": {}},
            "extension.example.org": {"x": 1}
        });
        let read = Statement::from_json(json.to_string().as_bytes()).unwrap();
        let subject = &read.subject[0];
        assert_eq!(subject.uri.as_deref(), Some("pkg:generic/a"));
        assert_eq!(
            subject.download_location.as_deref(),
            Some("https://example.org/a.tar")
        );
        assert_eq!(subject.media_type.as_deref(), Some("application/x-tar"));
        assert_eq!(subject.annotations.as_ref().unwrap()["size"], 1);
    }

    #[test]
    fn an_absent_predicate_reads_as_empty() {
        let json = json!({
            "_type": STATEMENT_TYPE_V1,
            "subject": [{"digest": {"gitCommit": COMMIT}}],
            "predicateType": "https://example.org/p/v1"
        });
        let read = Statement::from_json(json.to_string().as_bytes()).unwrap();
        assert_eq!(read.predicate, json!({}));
        assert_eq!(read.subject[0].name, "");
    }

    fn field_of(edit: impl FnOnce(&mut Statement)) -> String {
        let mut s = statement();
        edit(&mut s);
        let err = s.validate().unwrap_err();
        let field = err.field().to_owned();
        assert!(
            err.to_string().contains(&format!("`{field}`")),
            "{err} names {field}"
        );
        field
    }

    #[test]
    fn validation_errors_name_the_field() {
        assert_eq!(
            field_of(|s| s.statement_type = "https://in-toto.io/Statement/v0.1".into()),
            "_type"
        );
        assert_eq!(field_of(|s| s.subject.clear()), "subject");
        assert_eq!(
            field_of(|s| s.subject[0].digest.clear()),
            "subject[0].digest"
        );
        assert_eq!(
            field_of(|s| {
                s.subject[1].digest.insert(String::new(), "ab".into());
            }),
            "subject[1].digest"
        );
        assert_eq!(
            field_of(|s| {
                s.subject[1]
                    .digest
                    .insert("sha256".into(), COMMIT.to_uppercase());
            }),
            "subject[1].digest.sha256"
        );
        assert_eq!(
            field_of(|s| {
                s.subject[0]
                    .digest
                    .insert("gitCommit".into(), String::new());
            }),
            "subject[0].digest.gitCommit"
        );
        assert_eq!(field_of(|s| s.predicate_type.clear()), "predicateType");
        assert_eq!(field_of(|s| s.predicate = json!([1])), "predicate");
        assert_eq!(field_of(|s| s.predicate = Value::Null), "predicate");
    }

    #[test]
    fn reading_names_the_field_of_a_wrong_json_type() {
        let err = Statement::from_json(br#"{"_type": 5}"#).unwrap_err();
        assert!(
            matches!(&err, StatementReadError::Json { path, .. } if path == "_type"),
            "{err}"
        );
        let err = Statement::from_json(br#"{"subject": [{"name": "a", "digest": {"sha256": 1}}]}"#)
            .unwrap_err();
        assert!(
            matches!(&err, StatementReadError::Json { path, .. } if path == "subject[0].digest.sha256"),
            "{err}"
        );
        assert!(matches!(
            Statement::from_json(b"{} trailing"),
            Err(StatementReadError::Json { .. })
        ));
        assert!(matches!(
            Statement::from_json(br#"["https://in-toto.io/Statement/v1", [], "t", {}]"#),
            Err(StatementReadError::Json { .. })
        ));
        assert!(matches!(
            Statement::from_json(b"{}"),
            Err(StatementReadError::Invalid(
                StatementError::WrongType { .. }
            ))
        ));
    }

    #[test]
    fn long_values_are_shortened_in_errors() {
        let long = "Z".repeat(1000);
        let mut s = statement();
        s.subject[0].digest.insert("sha256".into(), long);
        let err = s.validate().unwrap_err();
        assert!(err.to_string().len() < 200, "{err}");
    }
}
