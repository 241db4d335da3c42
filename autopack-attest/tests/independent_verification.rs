//! Interop with an independent implementation: `tests/python/dsse_tool.py`, DSSE written
//! from the spec on Python's `cryptography` package. Envelopes we sign verify there,
//! envelopes it signs verify here, keys it writes load here, and Ed25519's deterministic
//! signatures agree byte for byte.
//!
//! Needs `python3` with `cryptography` (`pip install cryptography`); without them these
//! tests fail, they never skip. CI (`.ci/run`) installs the package when it is missing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use autopack_attest::{
    Envelope, IN_TOTO_PAYLOAD_TYPE, ResourceDescriptor, SigningKey, Statement, VerifyError,
    VerifyingKey, pae, sha256_hex, sign_payload, sign_statement, verify_envelope_json,
};
use serde_json::{Value, json};

/// Written by `openssl genpkey -algorithm ed25519`.
const TEST_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIF5n+xD3bqF7QkTh54UDrZ92lX6gNda7DfKMF/nRGETt
-----END PRIVATE KEY-----
";
/// `openssl pkey -in TEST_KEY -pubout -outform DER | sha256sum`.
const TEST_KEYID: &str = "debbe62f25c821925e6ecd3ac28618c78c766060d65a67cbfff8b397fe218fe2";

const INSTALL: &str = "pip install cryptography (or: python3 -m pip install cryptography)";

fn tool() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/dsse_tool.py")
}

/// Fails the test, with what to install, unless python3 can import `cryptography`.
fn require_python() {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    let check = CHECK.get_or_init(|| {
        let out = Command::new("python3")
            .args([
                "-B",
                "-c",
                "import cryptography; print(cryptography.__version__)",
            ])
            .output()
            .map_err(|e| format!("python3 cannot start ({e}): install Python 3, then {INSTALL}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "python3 cannot import the cryptography package: {INSTALL}\n{}",
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(message) = check {
        panic!("{message}");
    }
}

/// Runs the Python tool; its output, whatever its exit status.
fn python(args: &[&Path]) -> Output {
    require_python();
    Command::new("python3")
        .arg("-B")
        .arg(tool())
        .args(args)
        .output()
        .expect("python3 runs")
}

/// Runs the Python tool, which must succeed; its stdout.
fn python_ok(args: &[&Path]) -> String {
    let out = python(args);
    assert!(
        out.status.success(),
        "dsse_tool.py {args:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn statement() -> Statement {
    Statement::new(
        vec![
            ResourceDescriptor::git_commit(
                "autopack/run-1",
                "0123456789abcdef0123456789abcdef01234567",
            ),
            ResourceDescriptor::sha256_of("junit.xml", b"<testsuites/>"),
        ],
        "https://in-toto.io/attestation/test-result/v0.1",
        json!({"configuration": [], "passedTests": ["attest::pae"], "result": "PASSED"}),
    )
}

fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

#[test]
fn our_envelope_verifies_in_python() {
    let dir = tempfile::tempdir().unwrap();
    let key = SigningKey::from_pem(TEST_KEY).unwrap();
    let envelope = sign_statement(&statement(), &key);
    let envelope_path = write(dir.path(), "statement.dsse.json", envelope.to_json());
    let public = write(dir.path(), "key.pub", key.verifying_key().to_spki_pem());

    let report: Value =
        serde_json::from_str(&python_ok(&[Path::new("verify"), &envelope_path, &public])).unwrap();
    assert_eq!(
        report["keyid"], TEST_KEYID,
        "Python computes the same keyid"
    );
    assert_eq!(report["signatureKeyid"], TEST_KEYID);
    assert_eq!(report["payloadType"], IN_TOTO_PAYLOAD_TYPE);
    assert_eq!(
        report["payloadSha256"],
        sha256_hex(&statement().to_json_bytes())
    );

    // The Python side really checks: a changed payload is refused there too.
    let mut forged = envelope.clone();
    forged.payload = forged.payload.to_ascii_uppercase();
    let forged_path = write(dir.path(), "forged.dsse.json", forged.to_json());
    let out = python(&[Path::new("verify"), &forged_path, &public]);
    assert!(!out.status.success(), "Python accepted a forged payload");
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidSignature"));
    // And so is a relabelled payload type (PAE covers it).
    let mut relabelled = envelope;
    relabelled.payload_type = "application/json".to_owned();
    let relabelled_path = write(dir.path(), "relabelled.dsse.json", relabelled.to_json());
    assert!(
        !python(&[Path::new("verify"), &relabelled_path, &public])
            .status
            .success()
    );
}

#[test]
fn a_python_generated_key_loads_and_signs_for_python() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("python.key");
    let public = dir.path().join("python.pub");
    let python_keyid = python_ok(&[Path::new("keygen"), &private, &public]);
    let python_keyid = python_keyid.trim();

    let key = SigningKey::from_pem_file(&private).unwrap();
    let their_public = VerifyingKey::from_pem_file(&public).unwrap();
    assert_eq!(key.keyid(), python_keyid);
    assert_eq!(&their_public, key.verifying_key());
    assert_eq!(
        std::fs::read_to_string(&public).unwrap(),
        key.verifying_key().to_spki_pem(),
        "our SPKI PEM is the one Python writes"
    );

    let envelope = sign_statement(&statement(), &key);
    let envelope_path = write(dir.path(), "statement.dsse.json", envelope.to_json());
    let report: Value =
        serde_json::from_str(&python_ok(&[Path::new("verify"), &envelope_path, &public])).unwrap();
    assert_eq!(report["keyid"], python_keyid);
    assert_eq!(envelope.verify(&their_public).unwrap(), statement());
}

#[test]
fn a_python_signed_envelope_verifies_here() {
    let dir = tempfile::tempdir().unwrap();
    let private = write(dir.path(), "test.key", TEST_KEY);
    let payload = write(dir.path(), "statement.json", statement().to_json_bytes());
    let json = python_ok(&[
        Path::new("sign"),
        &private,
        Path::new(IN_TOTO_PAYLOAD_TYPE),
        &payload,
    ]);

    let key = SigningKey::from_pem(TEST_KEY).unwrap();
    let verified = verify_envelope_json(&json, key.verifying_key()).unwrap();
    assert_eq!(verified, statement());

    // Ed25519 is deterministic (RFC 8032): the same key signs the same PAE identically.
    let theirs = Envelope::from_json(&json).unwrap();
    assert_eq!(theirs, sign_statement(&statement(), &key));

    // A Python signature over a tampered payload is refused here.
    let mut forged = theirs;
    forged.payload.push(b'\n');
    assert!(matches!(
        forged.verify(key.verifying_key()),
        Err(VerifyError::NoSignatureVerifies { .. })
    ));
}

#[test]
fn a_known_message_signs_identically_in_both() {
    // The DSSE protocol's test-vector message, signed with the fixed test key.
    let dir = tempfile::tempdir().unwrap();
    let private = write(dir.path(), "test.key", TEST_KEY);
    let payload = write(dir.path(), "hello.txt", b"hello world");
    let payload_type = "http://example.com/HelloWorld";
    let json = python_ok(&[
        Path::new("sign"),
        &private,
        Path::new(payload_type),
        &payload,
    ]);

    let key = SigningKey::from_pem(TEST_KEY).unwrap();
    let theirs = Envelope::from_json(&json).unwrap();
    assert_eq!(theirs.payload, b"hello world");
    assert_eq!(theirs.signatures[0].keyid, TEST_KEYID);
    theirs.verify_signature(key.verifying_key()).unwrap();
    // Not an in-toto payload: the signature holds, `verify` refuses the type.
    assert!(matches!(
        theirs.verify(key.verifying_key()),
        Err(VerifyError::WrongPayloadType { .. })
    ));

    let ours = sign_payload(payload_type, b"hello world".to_vec(), &key);
    assert_eq!(ours.signatures[0].sig, theirs.signatures[0].sig);
    assert_eq!(
        pae(payload_type, b"hello world"),
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    );
    // Our envelope of it verifies in Python too.
    let public = write(dir.path(), "key.pub", key.verifying_key().to_spki_pem());
    let ours_path = write(dir.path(), "hello.dsse.json", ours.to_json());
    let report: Value =
        serde_json::from_str(&python_ok(&[Path::new("verify"), &ours_path, &public])).unwrap();
    assert_eq!(report["payloadSha256"], sha256_hex(b"hello world"));
}
