//! Signed attestations of what an Autopack run built: [in-toto Statement v1] documents in
//! [DSSE] envelopes, signed and verified with Ed25519 keys from PEM files.
//!
//! ```
//! use autopack_attest::{ResourceDescriptor, SigningKey, Statement, VerifyingKey};
//! use autopack_attest::{Envelope, sign_statement};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // Usually `SigningKey::from_pem_file(path)`, the file from `openssl genpkey -algorithm ed25519`.
//! let key = SigningKey::from_pem(
//!     "-----BEGIN PRIVATE KEY-----\n\
//!      MC4CAQAwBQYDK2VwBCIEIF5n+xD3bqF7QkTh54UDrZ92lX6gNda7DfKMF/nRGETt\n\
//!      -----END PRIVATE KEY-----\n",
//! )?;
//! let statement = Statement::new(
//!     vec![ResourceDescriptor::git_commit(
//!         "autopack/run-1",
//!         "0123456789abcdef0123456789abcdef01234567",
//!     )],
//!     "https://in-toto.io/attestation/test-result/v0.1",
//!     json!({"configuration": [], "result": "PASSED"}),
//! );
//! statement.validate()?;
//! let json = sign_statement(&statement, &key).to_json();
//!
//! // A verifier holds the public key (`openssl pkey -in KEY -pubout`), never the private one.
//! let public = VerifyingKey::from_pem(&key.verifying_key().to_spki_pem())?;
//! let verified = Envelope::from_json(&json)?.verify(&public)?;
//! assert_eq!(verified, statement);
//!
//! // A changed payload no longer verifies.
//! let mut forged = Envelope::from_json(&json)?;
//! forged.payload = forged.payload.to_ascii_uppercase();
//! assert!(forged.verify(&public).is_err());
//! # Ok(())
//! # }
//! ```
//!
//! - [`Statement`] and [`ResourceDescriptor`]: the statement, read leniently (unknown
//!   fields ignored, as in-toto requires) and checked by [`Statement::validate`], whose
//!   errors name the field (`subject[0].digest`).
//! - [`pae`], [`Envelope`], [`sign_statement`], [`Envelope::verify`]: DSSE v1 with payload
//!   type [`IN_TOTO_PAYLOAD_TYPE`]; base64 written standard and padded, read in either
//!   alphabet.
//! - [`SigningKey`] (PKCS#8 PEM) and [`VerifyingKey`] (SPKI PEM): key files as OpenSSL and
//!   Python's `cryptography` write them; errors name the file and what is wrong. A key's
//!   id is the lowercase hex SHA-256 of its public key's SPKI DER.
//! - [`sha256_hex`]: subject digests.
//!
//! Pure data in, data out: only the `from_pem_file` loaders touch the filesystem. The
//! cryptography is `ed25519-dalek`'s (strict verification), `sha2`'s and `base64`'s.
//!
//! [in-toto Statement v1]: https://github.com/in-toto/attestation/blob/main/spec/v1/statement.md
//! [DSSE]: https://github.com/secure-systems-lab/dsse/blob/master/protocol.md

// The README's example runs as a doctest too, so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

mod digest;
mod dsse;
mod keys;
mod statement;

pub use digest::sha256_hex;
pub use dsse::{
    Envelope, EnvelopeError, IN_TOTO_PAYLOAD_TYPE, Signature, VerifyError, pae, sign_payload,
    sign_statement, verify_envelope_json,
};
pub use keys::{KeyError, KeyProblem, SigningKey, VerifyingKey};
pub use statement::{
    ResourceDescriptor, STATEMENT_TYPE_V1, Statement, StatementError, StatementReadError,
};

/// Refuses JSON that is not an object: serde's derived structs would also take an array.
fn expect_json_object(bytes: &[u8]) -> Result<(), serde_json::Error> {
    let first = bytes
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
    if first == Some(&b'{') {
        Ok(())
    } else {
        Err(<serde_json::Error as serde::de::Error>::custom(
            "expected a JSON object",
        ))
    }
}
