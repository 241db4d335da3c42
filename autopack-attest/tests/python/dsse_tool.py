"""An independent DSSE + Ed25519 implementation for autopack-attest's interop tests.

Written from the DSSE protocol (PAE, the JSON envelope) with Python's `cryptography`
package for Ed25519; it shares no code with the Rust crate. Commands:

  keygen PRIVATE_PEM PUBLIC_PEM           new Ed25519 key (PKCS#8 / SPKI PEM); prints keyid
  keyid PUBLIC_PEM                        prints the key's keyid
  sign PRIVATE_PEM PAYLOAD_TYPE PAYLOAD   prints an envelope (JSON) signing the payload file
  verify ENVELOPE PUBLIC_PEM              verifies; prints {"keyid", "payloadType",
                                          "payloadSha256"}; exit 1 if no signature verifies

keyid = lowercase hex SHA-256 of the public key's SubjectPublicKeyInfo DER.
"""

import base64
import hashlib
import json
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)


def pae(payload_type: bytes, body: bytes) -> bytes:
    """DSSEv1 SP LEN(type) SP type SP LEN(body) SP body, lengths as ASCII decimal."""
    return b" ".join(
        [b"DSSEv1", str(len(payload_type)).encode(), payload_type, str(len(body)).encode(), body]
    )


def keyid(public_key: Ed25519PublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def load_public(path: str) -> Ed25519PublicKey:
    with open(path, "rb") as f:
        key = serialization.load_pem_public_key(f.read())
    if not isinstance(key, Ed25519PublicKey):
        raise SystemExit(f"{path}: not an Ed25519 public key")
    return key


def load_private(path: str) -> Ed25519PrivateKey:
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"{path}: not an Ed25519 private key")
    return key


def keygen(private_path: str, public_path: str) -> None:
    key = Ed25519PrivateKey.generate()
    with open(private_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    with open(public_path, "wb") as f:
        f.write(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    print(keyid(key.public_key()))


def sign(private_path: str, payload_type: str, payload_path: str) -> None:
    key = load_private(private_path)
    with open(payload_path, "rb") as f:
        body = f.read()
    sig = key.sign(pae(payload_type.encode("utf-8"), body))
    envelope = {
        "payloadType": payload_type,
        "payload": base64.b64encode(body).decode("ascii"),
        "signatures": [
            {"keyid": keyid(key.public_key()), "sig": base64.b64encode(sig).decode("ascii")}
        ],
    }
    print(json.dumps(envelope))


def verify(envelope_path: str, public_path: str) -> int:
    key = load_public(public_path)
    with open(envelope_path, "rb") as f:
        envelope = json.load(f)
    payload_type = envelope["payloadType"]
    body = base64.b64decode(envelope["payload"], validate=True)
    message = pae(payload_type.encode("utf-8"), body)
    for signature in envelope["signatures"]:
        try:
            key.verify(base64.b64decode(signature["sig"], validate=True), message)
        except InvalidSignature:
            continue
        print(
            json.dumps(
                {
                    "keyid": keyid(key),
                    "signatureKeyid": signature.get("keyid", ""),
                    "payloadType": payload_type,
                    "payloadSha256": hashlib.sha256(body).hexdigest(),
                }
            )
        )
        return 0
    print("InvalidSignature: no signature verifies", file=sys.stderr)
    return 1


def main(argv: list) -> int:
    command, args = argv[1], argv[2:]
    if command == "keygen":
        keygen(*args)
    elif command == "keyid":
        print(keyid(load_public(*args)))
    elif command == "sign":
        sign(*args)
    elif command == "verify":
        return verify(*args)
    else:
        raise SystemExit(f"unknown command {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
