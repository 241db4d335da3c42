//! DSSE (Dead Simple Signing Envelope) v1: the pre-authentication encoding, the JSON
//! envelope, signing and verifying with Ed25519.

use base64::Engine as _;
use base64::engine::general_purpose::{
    STANDARD, STANDARD_PAD_INDIFFERENT, URL_SAFE_PAD_INDIFFERENT,
};
use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::keys::{SigningKey, VerifyingKey};
use crate::statement::{Statement, StatementReadError};

/// The DSSE payload type of an in-toto Statement.
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// DSSE's pre-authentication encoding, the bytes a signature covers:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in bytes as ASCII decimal.
///
/// ```
/// // The DSSE protocol's test vector.
/// assert_eq!(
///     autopack_attest::pae("http://example.com/HelloWorld", b"hello world"),
///     b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
/// );
/// ```
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let type_len = payload_type.len().to_string();
    let body_len = payload.len().to_string();
    let mut out = Vec::with_capacity(
        10 + type_len.len() + payload_type.len() + body_len.len() + payload.len(),
    );
    out.extend_from_slice(b"DSSEv1 ");
    out.extend_from_slice(type_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload_type.as_bytes());
    out.push(b' ');
    out.extend_from_slice(body_len.as_bytes());
    out.push(b' ');
    out.extend_from_slice(payload);
    out
}

/// A DSSE JSON envelope: a typed payload and its signatures.
///
/// In JSON (`to_json`, `from_json`, serde), `payload` and each `sig` are base64: written
/// standard and padded, read in the standard or URL-safe alphabet, padded or not, as DSSE
/// requires of verifiers. Unknown fields are ignored; an absent `keyid` reads as empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// How to read `payload`; [`IN_TOTO_PAYLOAD_TYPE`] for a statement.
    pub payload_type: String,
    /// The signed bytes.
    pub payload: Vec<u8>,
    /// Signatures over [`pae`]`(payload_type, payload)`.
    pub signatures: Vec<Signature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    /// Which key signed: an unauthenticated hint ([`VerifyingKey::keyid`] for ours); may be
    /// empty.
    pub keyid: String,
    /// The signature bytes (64 for Ed25519).
    pub sig: Vec<u8>,
}

/// Signs `statement` as an in-toto envelope: its [`Statement::to_json_bytes`], payload type
/// [`IN_TOTO_PAYLOAD_TYPE`], one signature with `key`'s key id.
///
/// The statement is not validated here; [`Envelope::verify`] refuses an invalid one, so
/// call [`Statement::validate`] first when the statement comes from elsewhere.
pub fn sign_statement(statement: &Statement, key: &SigningKey) -> Envelope {
    sign_payload(IN_TOTO_PAYLOAD_TYPE, statement.to_json_bytes(), key)
}

/// Signs any payload: an envelope of `payload_type` and `payload` with one Ed25519
/// signature over their [`pae`].
pub fn sign_payload(payload_type: &str, payload: Vec<u8>, key: &SigningKey) -> Envelope {
    let sig = key.sign(&pae(payload_type, &payload)).to_vec();
    Envelope {
        payload_type: payload_type.to_owned(),
        payload,
        signatures: vec![Signature {
            keyid: key.keyid().to_owned(),
            sig,
        }],
    }
}

impl Envelope {
    /// Checks that a signature by `key` covers the payload and its type.
    ///
    /// The signatures whose `keyid` is `key`'s are tried; when none has it, every
    /// signature is (a key id is only a hint). Ed25519 in its strict form (`verify_strict`).
    pub fn verify_signature(&self, key: &VerifyingKey) -> Result<(), VerifyError> {
        if self.signatures.is_empty() {
            return Err(VerifyError::NoSignatures);
        }
        let by_keyid: Vec<&Signature> = self
            .signatures
            .iter()
            .filter(|s| s.keyid == key.keyid())
            .collect();
        let candidates = if by_keyid.is_empty() {
            self.signatures.iter().collect()
        } else {
            by_keyid
        };
        let message = pae(&self.payload_type, &self.payload);
        if candidates.iter().any(|s| key.verifies(&message, &s.sig)) {
            Ok(())
        } else {
            Err(VerifyError::NoSignatureVerifies {
                keyid: key.keyid().to_owned(),
                tried: candidates.len(),
            })
        }
    }

    /// Verifies an in-toto envelope with `key` and returns its statement.
    ///
    /// In the DSSE protocol's order: a signature by `key` verifies
    /// ([`Envelope::verify_signature`]), the payload type is [`IN_TOTO_PAYLOAD_TYPE`], the
    /// payload is a statement that [`Statement::validate`] accepts.
    pub fn verify(&self, key: &VerifyingKey) -> Result<Statement, VerifyError> {
        self.verify_signature(key)?;
        if self.payload_type != IN_TOTO_PAYLOAD_TYPE {
            return Err(VerifyError::WrongPayloadType {
                found: self.payload_type.clone(),
            });
        }
        Statement::from_json(&self.payload).map_err(VerifyError::PayloadNotStatement)
    }

    /// Reads an envelope's JSON; errors name the field (`payload`, `signatures[1].sig`, ...).
    pub fn from_json(json: &str) -> Result<Self, EnvelopeError> {
        crate::expect_json_object(json.as_bytes()).map_err(|source| EnvelopeError::Json {
            path: ".".to_owned(),
            source,
        })?;
        let mut de = serde_json::Deserializer::from_str(json);
        let raw: RawEnvelope =
            serde_path_to_error::deserialize(&mut de).map_err(|e| EnvelopeError::Json {
                path: e.path().to_string(),
                source: e.into_inner(),
            })?;
        de.end().map_err(|source| EnvelopeError::Json {
            path: ".".to_owned(),
            source,
        })?;
        Self::try_from(raw)
    }

    /// The envelope as compact JSON, base64 standard and padded.
    pub fn to_json(&self) -> String {
        // Strings only: serialising cannot fail.
        serde_json::to_string(self).expect("an Envelope always serialises to JSON")
    }
}

/// Why an envelope's JSON cannot be read.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// Not JSON, or a field of the wrong JSON type.
    #[error("not envelope JSON at `{path}`: {source}")]
    Json {
        /// Where in the document (`.` for the whole, `signatures[0]`, ...).
        path: String,
        /// What `serde_json` reported.
        #[source]
        source: serde_json::Error,
    },
    /// A field that must be base64 is not.
    #[error("`{field}` is not base64: {reason}")]
    Base64 {
        /// `payload` or `signatures[i].sig`.
        field: String,
        /// What the decoder reported.
        reason: String,
    },
}

/// Why an envelope does not verify.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The envelope has no signatures at all.
    #[error("the envelope has no signatures")]
    NoSignatures,
    /// No signature verifies with the key.
    #[error("no signature verifies with key {keyid} ({tried} tried)")]
    NoSignatureVerifies {
        /// The key's id.
        keyid: String,
        /// How many signatures were tried.
        tried: usize,
    },
    /// The payload type is not in-toto's.
    #[error("`payloadType` is {found:?}, expected {IN_TOTO_PAYLOAD_TYPE:?}")]
    WrongPayloadType {
        /// The envelope's payload type.
        found: String,
    },
    /// The signed payload is not a valid in-toto statement.
    #[error("the payload is not a valid in-toto Statement: {0}")]
    PayloadNotStatement(#[source] StatementReadError),
    /// The envelope's JSON cannot be read ([`verify_envelope_json`]).
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

/// Reads an envelope's JSON and verifies it with `key` ([`Envelope::from_json`], then
/// [`Envelope::verify`]).
pub fn verify_envelope_json(json: &str, key: &VerifyingKey) -> Result<Statement, VerifyError> {
    Envelope::from_json(json)?.verify(key)
}

/// The envelope as JSON text holds it (every field optional: DSSE lets empty ones be left
/// out).
#[derive(Deserialize)]
struct RawEnvelope {
    #[serde(default)]
    payload: String,
    #[serde(rename = "payloadType", default)]
    payload_type: String,
    #[serde(default)]
    signatures: Vec<RawSignature>,
}

#[derive(Deserialize)]
struct RawSignature {
    #[serde(default)]
    keyid: Option<String>,
    #[serde(default)]
    sig: String,
}

impl TryFrom<RawEnvelope> for Envelope {
    type Error = EnvelopeError;

    fn try_from(raw: RawEnvelope) -> Result<Self, EnvelopeError> {
        let payload = decode_base64(&raw.payload, || "payload".to_owned())?;
        let signatures = raw
            .signatures
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                Ok(Signature {
                    keyid: s.keyid.unwrap_or_default(),
                    sig: decode_base64(&s.sig, || format!("signatures[{i}].sig"))?,
                })
            })
            .collect::<Result<_, EnvelopeError>>()?;
        Ok(Self {
            payload_type: raw.payload_type,
            payload,
            signatures,
        })
    }
}

/// Standard or URL-safe base64 (told apart by their distinct symbols), padded or not.
fn decode_base64(text: &str, field: impl FnOnce() -> String) -> Result<Vec<u8>, EnvelopeError> {
    let engine = if text.contains(['-', '_']) {
        &URL_SAFE_PAD_INDIFFERENT
    } else {
        &STANDARD_PAD_INDIFFERENT
    };
    engine.decode(text).map_err(|e| EnvelopeError::Base64 {
        field: field(),
        reason: e.to_string(),
    })
}

impl Serialize for Envelope {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Envelope", 3)?;
        s.serialize_field("payload", &STANDARD.encode(&self.payload))?;
        s.serialize_field("payloadType", &self.payload_type)?;
        s.serialize_field("signatures", &self.signatures)?;
        s.end()
    }
}

impl Serialize for Signature {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let fields = if self.keyid.is_empty() { 1 } else { 2 };
        let mut s = serializer.serialize_struct("Signature", fields)?;
        if !self.keyid.is_empty() {
            s.serialize_field("keyid", &self.keyid)?;
        }
        s.serialize_field("sig", &STANDARD.encode(&self.sig))?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = RawEnvelope::deserialize(deserializer)?;
        Self::try_from(raw).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::keys::tests::{OTHER_KEY, TEST_KEY, TEST_KEYID};
    use crate::statement::{ResourceDescriptor, StatementError};

    fn key() -> SigningKey {
        SigningKey::from_pem(TEST_KEY).unwrap()
    }

    fn statement() -> Statement {
        Statement::new(
            vec![ResourceDescriptor::git_commit(
                "autopack/run-1",
                "0123456789abcdef0123456789abcdef01234567",
            )],
            "https://in-toto.io/attestation/test-result/v0.1",
            json!({"configuration": [], "result": "PASSED"}),
        )
    }

    #[test]
    fn pae_of_the_dsse_test_vector() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn pae_by_hand() {
        assert_eq!(pae("", b""), b"DSSEv1 0  0 ");
        // Lengths count bytes, not characters; the body is taken as it is, spaces and all.
        assert_eq!(
            pae("t\u{e9}", b" a b"),
            "DSSEv1 3 t\u{e9} 4  a b".as_bytes()
        );
        let body = vec![b'x'; 1234];
        let encoded = pae(IN_TOTO_PAYLOAD_TYPE, &body);
        let head = b"DSSEv1 28 application/vnd.in-toto+json 1234 ";
        assert_eq!(&encoded[..head.len()], head);
        assert_eq!(&encoded[head.len()..], &body[..]);
    }

    #[test]
    fn the_dsse_spec_example_envelope_reads() {
        // From the DSSE protocol's test vectors (an ECDSA signature; no keyid).
        let json = r#"{"payload": "aGVsbG8gd29ybGQ=",
 "payloadType": "http://example.com/HelloWorld",
 "signatures": [{"sig": "A3JqsQGtVsJ2O2xqrI5IcnXip5GToJ3F+FnZ+O88SjtR6rDAajabZKciJTfUiHqJPcIAriEGAHTVeCUjW2JIZA=="}]}"#;
        let envelope = Envelope::from_json(json).unwrap();
        assert_eq!(envelope.payload, b"hello world");
        assert_eq!(envelope.payload_type, "http://example.com/HelloWorld");
        assert_eq!(envelope.signatures.len(), 1);
        assert_eq!(envelope.signatures[0].keyid, "");
        assert_eq!(envelope.signatures[0].sig.len(), 64);
        // An ECDSA signature is no Ed25519 signature of ours.
        assert!(matches!(
            envelope.verify(key().verifying_key()),
            Err(VerifyError::NoSignatureVerifies { tried: 1, .. })
        ));
    }

    #[test]
    fn sign_then_verify_round_trips_through_json() {
        let key = key();
        let envelope = sign_statement(&statement(), &key);
        assert_eq!(envelope.payload_type, IN_TOTO_PAYLOAD_TYPE);
        assert_eq!(envelope.signatures[0].keyid, TEST_KEYID);
        let json = envelope.to_json();
        let value: Value = serde_json::from_str(&json).unwrap();
        assert_eq!(value["payloadType"], IN_TOTO_PAYLOAD_TYPE);
        assert_eq!(value["signatures"][0]["keyid"], TEST_KEYID);
        assert_eq!(
            value["payload"],
            STANDARD.encode(statement().to_json_bytes())
        );
        let read = Envelope::from_json(&json).unwrap();
        assert_eq!(read, envelope);
        assert_eq!(read.verify(key.verifying_key()).unwrap(), statement());
        assert_eq!(
            verify_envelope_json(&json, key.verifying_key()).unwrap(),
            statement()
        );
        // serde agrees with from_json / to_json.
        let via_serde: Envelope = serde_json::from_str(&json).unwrap();
        assert_eq!(via_serde, envelope);
        assert_eq!(serde_json::to_string(&envelope).unwrap(), json);
    }

    #[test]
    fn a_tampered_payload_fails() {
        let key = key();
        let mut envelope = sign_statement(&statement(), &key);
        let mut changed = statement();
        changed.predicate = json!({"configuration": [], "result": "FAILED"});
        envelope.payload = changed.to_json_bytes();
        assert!(matches!(
            envelope.verify(key.verifying_key()),
            Err(VerifyError::NoSignatureVerifies { tried: 1, .. })
        ));
        let mut envelope = sign_statement(&statement(), &key);
        envelope.payload.push(b' ');
        assert!(envelope.verify(key.verifying_key()).is_err());
    }

    #[test]
    fn a_tampered_signature_fails() {
        let key = key();
        let good = sign_statement(&statement(), &key);
        for i in [0, 31, 32, 63] {
            let mut envelope = good.clone();
            envelope.signatures[0].sig[i] ^= 0x01;
            assert!(matches!(
                envelope.verify(key.verifying_key()),
                Err(VerifyError::NoSignatureVerifies { .. })
            ));
        }
        let mut short = good.clone();
        short.signatures[0].sig.pop();
        assert!(short.verify(key.verifying_key()).is_err());
        let mut none = good;
        none.signatures.clear();
        assert!(matches!(
            none.verify(key.verifying_key()),
            Err(VerifyError::NoSignatures)
        ));
    }

    #[test]
    fn the_wrong_key_fails() {
        let envelope = sign_statement(&statement(), &key());
        let other = SigningKey::from_pem(OTHER_KEY).unwrap();
        assert!(matches!(
            envelope.verify(other.verifying_key()),
            Err(VerifyError::NoSignatureVerifies { keyid, tried: 1 }) if keyid == other.keyid()
        ));
    }

    #[test]
    fn the_keyid_is_only_a_hint() {
        let key = key();
        let other = SigningKey::from_pem(OTHER_KEY).unwrap();
        // No signature carries the key's id: every signature is tried.
        let mut envelope = sign_statement(&statement(), &key);
        envelope.signatures[0].keyid = String::new();
        envelope
            .signatures
            .insert(0, sign_statement(&statement(), &other).signatures.remove(0));
        assert!(envelope.verify(key.verifying_key()).is_ok());
        assert!(envelope.verify(other.verifying_key()).is_ok());
        // A signature carrying the key's id that does not verify is not rescued by another.
        let mut envelope = sign_statement(&statement(), &key);
        envelope.signatures[0].keyid = other.keyid().to_owned();
        envelope.signatures.push(Signature {
            keyid: other.keyid().to_owned(),
            sig: vec![0; 64],
        });
        assert!(matches!(
            envelope.verify(other.verifying_key()),
            Err(VerifyError::NoSignatureVerifies { tried: 2, .. })
        ));
    }

    #[test]
    fn the_wrong_payload_type_fails() {
        let key = key();
        // Signed as another type: the signature holds, the type is refused.
        let envelope = sign_payload("application/json", statement().to_json_bytes(), &key);
        assert!(envelope.verify_signature(key.verifying_key()).is_ok());
        assert!(matches!(
            envelope.verify(key.verifying_key()),
            Err(VerifyError::WrongPayloadType { found }) if found == "application/json"
        ));
        // Relabelled after signing: the type is covered by the signature.
        let mut relabelled = sign_statement(&statement(), &key);
        relabelled.payload_type = "application/vnd.in-toto.v2+json".to_owned();
        assert!(matches!(
            relabelled.verify(key.verifying_key()),
            Err(VerifyError::NoSignatureVerifies { .. })
        ));
    }

    #[test]
    fn a_payload_that_is_no_statement_fails() {
        let key = key();
        let envelope = sign_payload(IN_TOTO_PAYLOAD_TYPE, b"not json".to_vec(), &key);
        assert!(matches!(
            envelope.verify(key.verifying_key()),
            Err(VerifyError::PayloadNotStatement(
                StatementReadError::Json { .. }
            ))
        ));
        let mut invalid = statement();
        invalid.subject[0].digest.clear();
        let envelope = sign_statement(&invalid, &key);
        let err = envelope.verify(key.verifying_key()).unwrap_err();
        assert!(
            matches!(
                &err,
                VerifyError::PayloadNotStatement(StatementReadError::Invalid(
                    StatementError::EmptyDigest { field }
                )) if field == "subject[0].digest"
            ),
            "{err}"
        );
        assert!(err.to_string().contains("subject[0].digest"), "{err}");
    }

    #[test]
    fn bad_base64_names_the_field() {
        let good = sign_statement(&statement(), &key()).to_json();
        let mut value: Value = serde_json::from_str(&good).unwrap();
        value["payload"] = json!("not base64!");
        let err = Envelope::from_json(&value.to_string()).unwrap_err();
        assert!(
            matches!(&err, EnvelopeError::Base64 { field, .. } if field == "payload"),
            "{err}"
        );
        let mut value: Value = serde_json::from_str(&good).unwrap();
        value["signatures"]
            .as_array_mut()
            .unwrap()
            .push(json!({"keyid": "x", "sig": "%%%%"}));
        let err = verify_envelope_json(&value.to_string(), key().verifying_key()).unwrap_err();
        assert!(
            matches!(&err, VerifyError::Envelope(EnvelopeError::Base64 { field, .. }) if field == "signatures[1].sig"),
            "{err}"
        );
        assert!(err.to_string().contains("`signatures[1].sig`"), "{err}");
    }

    #[test]
    fn json_errors_name_the_field() {
        let err = Envelope::from_json(r#"{"payload": 5}"#).unwrap_err();
        assert!(
            matches!(&err, EnvelopeError::Json { path, .. } if path == "payload"),
            "{err}"
        );
        let err = Envelope::from_json(r#"{"signatures": [{"sig": "", "keyid": 1}]}"#).unwrap_err();
        assert!(
            matches!(&err, EnvelopeError::Json { path, .. } if path == "signatures[0].keyid"),
            "{err}"
        );
        assert!(matches!(
            Envelope::from_json("[]"),
            Err(EnvelopeError::Json { .. })
        ));
        assert!(matches!(
            Envelope::from_json("{} {}"),
            Err(EnvelopeError::Json { .. })
        ));
    }

    #[test]
    fn url_safe_and_unpadded_base64_are_read() {
        let key = key();
        let envelope = sign_statement(&statement(), &key);
        let value = json!({
            "payloadType": IN_TOTO_PAYLOAD_TYPE,
            "payload": base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&envelope.payload),
            "signatures": [{
                "keyid": null,
                "sig": base64::engine::general_purpose::URL_SAFE.encode(&envelope.signatures[0].sig)
            }],
            "unknown": "ignored"
        });
        let read = Envelope::from_json(&value.to_string()).unwrap();
        assert_eq!(read.payload, envelope.payload);
        assert_eq!(read.signatures[0].sig, envelope.signatures[0].sig);
        assert_eq!(read.verify(key.verifying_key()).unwrap(), statement());
    }

    #[test]
    fn ed25519_signing_is_deterministic() {
        let key = key();
        assert_eq!(
            sign_statement(&statement(), &key),
            sign_statement(&statement(), &key)
        );
    }
}
