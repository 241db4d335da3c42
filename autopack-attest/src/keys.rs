//! Ed25519 keys from PEM files: PKCS#8 private keys and SPKI public keys.
//!
//! These are the formats `openssl genpkey -algorithm ed25519` (and `openssl pkey -pubout`)
//! and Python's `cryptography` write. A key's id ([`VerifyingKey::keyid`]) is the lowercase
//! hex SHA-256 of its public key's SPKI DER encoding: computable by any tool from the public
//! key file alone (`openssl pkey -pubin -in key.pub -outform DER | sha256sum`), and the same
//! whichever file format the key came in.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use ed25519_dalek::Signer;
use ed25519_dalek::pkcs8::spki::SubjectPublicKeyInfoRef;
use ed25519_dalek::pkcs8::spki::der::pem;
use ed25519_dalek::pkcs8::spki::der::zeroize::Zeroizing;
use ed25519_dalek::pkcs8::{ALGORITHM_OID, DecodePrivateKey, DecodePublicKey, PrivateKeyInfo};
use thiserror::Error;

use crate::digest::sha256_hex;

/// Key files larger than this are refused unread: an Ed25519 PEM key is under 200 bytes.
const MAX_KEY_FILE_BYTES: u64 = 64 * 1024;

/// The DER encoding of an Ed25519 SubjectPublicKeyInfo up to the key's 32 bytes
/// (RFC 8410: SEQUENCE { SEQUENCE { OID 1.3.101.112 }, BIT STRING (0 unused bits) }).
const SPKI_DER_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

const PRIVATE_LABEL: &str = "PRIVATE KEY";
const PUBLIC_LABEL: &str = "PUBLIC KEY";

/// An Ed25519 private key, for signing envelopes.
///
/// Its `Debug` shows only the key id.
pub struct SigningKey {
    inner: ed25519_dalek::SigningKey,
    public: VerifyingKey,
}

impl SigningKey {
    /// Loads a PKCS#8 PEM private key (`-----BEGIN PRIVATE KEY-----`) from `path`.
    ///
    /// Errors name the path and what is wrong: unreadable, not PEM, another PEM block,
    /// encrypted, not an Ed25519 key, malformed.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let origin = || KeyOrigin::File(path.to_owned());
        let text = read_key_file(path).map_err(|p| KeyError::new(origin(), p))?;
        Self::decode(&text).map_err(|p| KeyError::new(origin(), p))
    }

    /// Reads a PKCS#8 PEM private key from text.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        Self::decode(pem).map_err(|p| KeyError::new(KeyOrigin::Text, p))
    }

    fn decode(text: &str) -> Result<Self, KeyProblem> {
        let der = Zeroizing::new(pem_block(text, PRIVATE_LABEL)?);
        let info = PrivateKeyInfo::try_from(der.as_slice()).map_err(|e| KeyProblem::Malformed {
            reason: format!("not a PKCS#8 PrivateKeyInfo ({e})"),
        })?;
        if info.algorithm.oid != ALGORITHM_OID {
            return Err(not_ed25519(&info.algorithm.oid.to_string()));
        }
        let inner =
            ed25519_dalek::SigningKey::from_pkcs8_der(&der).map_err(|e| KeyProblem::Malformed {
                reason: e.to_string(),
            })?;
        let public = VerifyingKey::new(inner.verifying_key());
        Ok(Self { inner, public })
    }

    /// The public half of this key.
    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.public
    }

    /// The key id: the public key's ([`VerifyingKey::keyid`]).
    pub fn keyid(&self) -> &str {
        self.public.keyid()
    }

    /// The Ed25519 signature of `message` (64 bytes).
    pub(crate) fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.inner.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("keyid", &self.keyid())
            .finish_non_exhaustive()
    }
}

/// An Ed25519 public key, for verifying envelopes, with its key id.
#[derive(Clone, PartialEq, Eq)]
pub struct VerifyingKey {
    inner: ed25519_dalek::VerifyingKey,
    keyid: String,
}

impl VerifyingKey {
    fn new(inner: ed25519_dalek::VerifyingKey) -> Self {
        let keyid = sha256_hex(&spki_der(&inner));
        Self { inner, keyid }
    }

    /// Loads an SPKI PEM public key (`-----BEGIN PUBLIC KEY-----`) from `path`.
    ///
    /// Errors name the path and what is wrong, as [`SigningKey::from_pem_file`]'s do.
    pub fn from_pem_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let path = path.as_ref();
        let origin = || KeyOrigin::File(path.to_owned());
        let text = read_key_file(path).map_err(|p| KeyError::new(origin(), p))?;
        Self::decode(&text).map_err(|p| KeyError::new(origin(), p))
    }

    /// Reads an SPKI PEM public key from text.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        Self::decode(pem).map_err(|p| KeyError::new(KeyOrigin::Text, p))
    }

    fn decode(text: &str) -> Result<Self, KeyProblem> {
        let der = pem_block(text, PUBLIC_LABEL)?;
        let info = SubjectPublicKeyInfoRef::try_from(der.as_slice()).map_err(|e| {
            KeyProblem::Malformed {
                reason: format!("not a SubjectPublicKeyInfo ({e})"),
            }
        })?;
        if info.algorithm.oid != ALGORITHM_OID {
            return Err(not_ed25519(&info.algorithm.oid.to_string()));
        }
        let inner = ed25519_dalek::VerifyingKey::from_public_key_der(&der).map_err(|e| {
            KeyProblem::Malformed {
                reason: e.to_string(),
            }
        })?;
        if inner.is_weak() {
            return Err(KeyProblem::Malformed {
                reason: "a weak (small-order) public key, which verifies forged signatures"
                    .to_owned(),
            });
        }
        Ok(Self::new(inner))
    }

    /// The public half of `key`.
    pub fn from_signing_key(key: &SigningKey) -> Self {
        key.public.clone()
    }

    /// The key id: lowercase hex SHA-256 of [`VerifyingKey::to_spki_der`].
    pub fn keyid(&self) -> &str {
        &self.keyid
    }

    /// The SubjectPublicKeyInfo DER encoding (RFC 8410), 44 bytes.
    pub fn to_spki_der(&self) -> Vec<u8> {
        spki_der(&self.inner).to_vec()
    }

    /// The SPKI PEM text (`-----BEGIN PUBLIC KEY-----`), as `openssl pkey -pubout` writes it.
    pub fn to_spki_pem(&self) -> String {
        use base64::Engine as _;
        let body = base64::engine::general_purpose::STANDARD.encode(spki_der(&self.inner));
        format!("-----BEGIN {PUBLIC_LABEL}-----\n{body}\n-----END {PUBLIC_LABEL}-----\n")
    }

    /// Whether `sig` is a valid Ed25519 signature of `message` by this key, in the strict
    /// sense of `ed25519_dalek`'s `verify_strict` (no malleable or small-order forms).
    pub(crate) fn verifies(&self, message: &[u8], sig: &[u8]) -> bool {
        ed25519_dalek::Signature::from_slice(sig)
            .is_ok_and(|sig| self.inner.verify_strict(message, &sig).is_ok())
    }
}

impl From<&SigningKey> for VerifyingKey {
    fn from(key: &SigningKey) -> Self {
        Self::from_signing_key(key)
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerifyingKey")
            .field("keyid", &self.keyid)
            .finish_non_exhaustive()
    }
}

fn spki_der(key: &ed25519_dalek::VerifyingKey) -> [u8; 44] {
    let mut der = [0u8; 44];
    der[..12].copy_from_slice(&SPKI_DER_PREFIX);
    der[12..].copy_from_slice(key.as_bytes());
    der
}

/// The file's text, refusing unreadable, oversized and non-UTF-8 files.
fn read_key_file(path: &Path) -> Result<Zeroizing<String>, KeyProblem> {
    let file = std::fs::File::open(path).map_err(KeyProblem::Unreadable)?;
    let mut bytes = Zeroizing::new(Vec::new());
    file.take(MAX_KEY_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(KeyProblem::Unreadable)?;
    if bytes.len() as u64 > MAX_KEY_FILE_BYTES {
        return Err(KeyProblem::TooLarge {
            limit: MAX_KEY_FILE_BYTES,
        });
    }
    match std::str::from_utf8(&bytes) {
        Ok(text) => Ok(Zeroizing::new(text.to_owned())),
        Err(_) => Err(KeyProblem::NotPem {
            expected: if bytes.first() == Some(&0x30) {
                "PEM text, not binary DER (convert with `openssl pkey -inform DER`)"
            } else {
                "PEM text"
            },
        }),
    }
}

/// The DER bytes of the first PEM block of `text`, which must be labelled `label`.
fn pem_block(text: &str, label: &'static str) -> Result<Vec<u8>, KeyProblem> {
    // Text before the block (comments, `openssl pkey -text` output) is allowed, as RFC 7468
    // allows it.
    let Some(start) = text.find("-----BEGIN ") else {
        return Err(KeyProblem::NotPem {
            expected: if label == PRIVATE_LABEL {
                "PEM text (`-----BEGIN PRIVATE KEY-----`)"
            } else {
                "PEM text (`-----BEGIN PUBLIC KEY-----`)"
            },
        });
    };
    let block = &text[start..];
    let found = pem::decode_label(block.as_bytes()).map_err(|e| KeyProblem::Malformed {
        reason: format!("bad PEM ({e})"),
    })?;
    if found != label {
        return Err(wrong_label(found, label));
    }
    let (_, der) = pem::decode_vec(block.as_bytes()).map_err(|e| KeyProblem::Malformed {
        reason: format!("bad PEM ({e})"),
    })?;
    Ok(der)
}

fn wrong_label(found: &str, expected: &'static str) -> KeyProblem {
    if found == "ENCRYPTED PRIVATE KEY" {
        return KeyProblem::Encrypted;
    }
    let hint = match (found, expected) {
        (PUBLIC_LABEL, PRIVATE_LABEL) => "; this is a public key, signing needs the private key",
        (PRIVATE_LABEL, PUBLIC_LABEL) => {
            "; this is a private key: give its public key (`openssl pkey -in KEY -pubout`)"
        }
        ("OPENSSH PRIVATE KEY", _) => "; OpenSSH's own format is not read, PKCS#8 PEM is",
        _ => "",
    };
    KeyProblem::WrongLabel {
        found: found.chars().take(40).collect(),
        expected,
        hint,
    }
}

fn not_ed25519(oid: &str) -> KeyProblem {
    let name = match oid {
        "1.3.101.110" => " (X25519)",
        "1.3.101.111" => " (X448)",
        "1.3.101.113" => " (Ed448)",
        "1.2.840.113549.1.1.1" => " (RSA)",
        "1.2.840.10045.2.1" => " (EC)",
        _ => "",
    };
    KeyProblem::NotEd25519 {
        algorithm: format!("{oid}{name}"),
    }
}

/// A key that cannot be loaded: where it came from ([`KeyError::path`]) and what is wrong.
#[derive(Debug, Error)]
#[error("{origin}: {problem}")]
pub struct KeyError {
    origin: KeyOrigin,
    problem: KeyProblem,
}

impl KeyError {
    fn new(origin: KeyOrigin, problem: KeyProblem) -> Self {
        Self { origin, problem }
    }

    /// The key file, or `None` for a key read from text.
    pub fn path(&self) -> Option<&Path> {
        match &self.origin {
            KeyOrigin::File(path) => Some(path),
            KeyOrigin::Text => None,
        }
    }

    /// What is wrong with the key.
    pub fn problem(&self) -> &KeyProblem {
        &self.problem
    }
}

#[derive(Debug)]
enum KeyOrigin {
    File(PathBuf),
    Text,
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "key file {}", path.display()),
            Self::Text => f.write_str("PEM key text"),
        }
    }
}

/// What is wrong with a key file or text.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// The file cannot be opened or read.
    #[error("cannot read it: {0}")]
    Unreadable(#[source] std::io::Error),
    /// The file is far larger than any PEM key.
    #[error("larger than {limit} bytes, so not a PEM key")]
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// No PEM block, or not text at all.
    #[error("not PEM: expected {expected}")]
    NotPem {
        /// What was expected instead.
        expected: &'static str,
    },
    /// A PEM block of another kind.
    #[error("a PEM `{found}` block, expected `{expected}`{hint}")]
    WrongLabel {
        /// The block's label, e.g. `PUBLIC KEY`, `RSA PRIVATE KEY`.
        found: String,
        /// The label expected: `PRIVATE KEY` or `PUBLIC KEY`.
        expected: &'static str,
        /// A hint on what to do (may be empty).
        hint: &'static str,
    },
    /// An encrypted PKCS#8 key.
    #[error(
        "an encrypted private key, which is not read: decrypt it \
         (`openssl pkey -in KEY -out PLAIN`) and keep the file private"
    )]
    Encrypted,
    /// A key of another algorithm.
    #[error("not an Ed25519 key: its algorithm is {algorithm}, expected 1.3.101.112 (Ed25519)")]
    NotEd25519 {
        /// The algorithm's OID, with its name when known.
        algorithm: String,
    },
    /// PEM, but the key inside cannot be decoded.
    #[error("malformed Ed25519 key: {reason}")]
    Malformed {
        /// What the decoder reported.
        reason: String,
    },
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Written by `openssl genpkey -algorithm ed25519` (OpenSSL 3.0).
    pub(crate) const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIF5n+xD3bqF7QkTh54UDrZ92lX6gNda7DfKMF/nRGETt
-----END PRIVATE KEY-----
";
    /// `openssl pkey -in TEST_KEY -pubout`.
    pub(crate) const TEST_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VwAyEAxUH2F2m88ouMHoxuNSTzbNjg6/vPRYU//7Os1WZM0h4=
-----END PUBLIC KEY-----
";
    /// `openssl pkey -in TEST_KEY -pubout -outform DER | sha256sum`.
    pub(crate) const TEST_KEYID: &str =
        "debbe62f25c821925e6ecd3ac28618c78c766060d65a67cbfff8b397fe218fe2";
    /// Another key from `openssl genpkey -algorithm ed25519`.
    pub(crate) const OTHER_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIN60Gm8WsmyUgY/om54fgPumC/3+v5LG49hY2nMQEoaC
-----END PRIVATE KEY-----
";
    /// `openssl genpkey -algorithm x25519` and its public key.
    const X25519_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VuBCIEIAC39Jt6NMK6YxEnVzmuP/ZDqNcLX2STwJRLiRwrE0J4
-----END PRIVATE KEY-----
";
    const X25519_PUBLIC_KEY: &str = "-----BEGIN PUBLIC KEY-----
MCowBQYDK2VuAyEAjXD2VrjuaR3AKEJH4OWbD+NhlHtd3dFcbp3s7uD0VGA=
-----END PUBLIC KEY-----
";

    #[test]
    fn openssl_keys_load_and_the_keyid_is_the_sha256_of_the_spki_der() {
        let key = SigningKey::from_pem(TEST_KEY).unwrap();
        assert_eq!(key.keyid(), TEST_KEYID);
        let public = VerifyingKey::from_pem(TEST_PUBLIC_KEY).unwrap();
        assert_eq!(&public, key.verifying_key());
        assert_eq!(public.keyid(), TEST_KEYID);
        assert_eq!(public.to_spki_pem(), TEST_PUBLIC_KEY);
        assert_eq!(VerifyingKey::from(&key), public);
        assert_eq!(
            format!("{key:?}"),
            format!("SigningKey {{ keyid: {TEST_KEYID:?}, .. }}")
        );
    }

    #[test]
    fn the_spki_der_is_the_one_the_library_encodes() {
        use ed25519_dalek::pkcs8::EncodePublicKey;
        let key = SigningKey::from_pem(TEST_KEY).unwrap();
        let library = key.inner.verifying_key().to_public_key_der().unwrap();
        assert_eq!(key.verifying_key().to_spki_der(), library.as_bytes());
    }

    #[test]
    fn leading_text_before_the_block_is_allowed() {
        let text = format!("Ed25519 test key\n{TEST_KEY}");
        assert_eq!(SigningKey::from_pem(&text).unwrap().keyid(), TEST_KEYID);
    }

    fn problem(result: Result<impl fmt::Debug, KeyError>) -> KeyProblem {
        result.unwrap_err().problem
    }

    #[test]
    fn text_errors_say_what_is_wrong() {
        assert!(matches!(
            problem(SigningKey::from_pem("hello")),
            KeyProblem::NotPem { .. }
        ));
        assert!(matches!(
            problem(SigningKey::from_pem(TEST_PUBLIC_KEY)),
            KeyProblem::WrongLabel { found, .. } if found == "PUBLIC KEY"
        ));
        assert!(matches!(
            problem(VerifyingKey::from_pem(TEST_KEY)),
            KeyProblem::WrongLabel { found, .. } if found == "PRIVATE KEY"
        ));
        assert!(matches!(
            problem(SigningKey::from_pem(X25519_KEY)),
            KeyProblem::NotEd25519 { algorithm } if algorithm == "1.3.101.110 (X25519)"
        ));
        assert!(matches!(
            problem(VerifyingKey::from_pem(X25519_PUBLIC_KEY)),
            KeyProblem::NotEd25519 { .. }
        ));
        let encrypted = "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIGbMFcG\n-----END ENCRYPTED PRIVATE KEY-----\n";
        assert!(matches!(
            problem(SigningKey::from_pem(encrypted)),
            KeyProblem::Encrypted
        ));
        let truncated = TEST_KEY.replace("MC4CAQAwBQYDK2VwBCIE", "MC4CAQAwBQYD");
        assert!(matches!(
            problem(SigningKey::from_pem(&truncated)),
            KeyProblem::Malformed { .. }
        ));
        let no_end = TEST_KEY.replace("-----END PRIVATE KEY-----\n", "");
        assert!(matches!(
            problem(SigningKey::from_pem(&no_end)),
            KeyProblem::Malformed { .. }
        ));
        let err = SigningKey::from_pem("hello").unwrap_err();
        assert_eq!(err.path(), None);
        assert!(
            err.to_string().starts_with("PEM key text: not PEM"),
            "{err}"
        );
    }

    #[test]
    fn file_errors_name_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = SigningKey::from_pem_file(&missing).unwrap_err();
        assert_eq!(err.path(), Some(missing.as_path()));
        assert!(matches!(err.problem(), KeyProblem::Unreadable(_)));
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );

        let cases: [(&str, &[u8], &str); 5] = [
            ("garbage.pem", b"not a key\n", "not PEM"),
            ("binary.der", &[0x30, 0x2e, 0xff, 0xfe], "not binary DER"),
            (
                "public.pem",
                TEST_PUBLIC_KEY.as_bytes(),
                "this is a public key",
            ),
            ("x25519.pem", X25519_KEY.as_bytes(), "not an Ed25519 key"),
            ("huge.pem", &[b'A'; 70 * 1024], "larger than"),
        ];
        for (name, contents, says) in cases {
            let path = dir.path().join(name);
            std::fs::write(&path, contents).unwrap();
            let err = SigningKey::from_pem_file(&path).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(&path.display().to_string()), "{text}");
            assert!(text.contains(says), "{text} says {says}");
            assert_eq!(err.path(), Some(path.as_path()));
        }

        let public = dir.path().join("key.pub");
        std::fs::write(&public, TEST_KEY).unwrap();
        let err = VerifyingKey::from_pem_file(&public).unwrap_err();
        assert!(err.to_string().contains("key.pub"), "{err}");
        assert!(err.to_string().contains("-pubout"), "{err}");

        let good = dir.path().join("good.pem");
        std::fs::write(&good, TEST_KEY).unwrap();
        assert_eq!(
            SigningKey::from_pem_file(&good).unwrap().keyid(),
            TEST_KEYID
        );
        std::fs::write(&public, TEST_PUBLIC_KEY).unwrap();
        assert_eq!(
            VerifyingKey::from_pem_file(&public).unwrap().keyid(),
            TEST_KEYID
        );
        let err = SigningKey::from_pem_file(dir.path()).unwrap_err();
        assert!(matches!(err.problem(), KeyProblem::Unreadable(_)), "{err}");
    }

    #[test]
    fn a_weak_public_key_is_refused() {
        // The identity point (a small-order key) in an Ed25519 SPKI.
        let mut der = SPKI_DER_PREFIX.to_vec();
        der.push(1);
        der.extend([0u8; 31]);
        use base64::Engine as _;
        let body = base64::engine::general_purpose::STANDARD.encode(&der);
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n");
        assert!(matches!(
            problem(VerifyingKey::from_pem(&pem)),
            KeyProblem::Malformed { reason } if reason.contains("weak")
        ));
    }
}
