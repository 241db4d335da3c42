//! SHA-256 digests as lowercase hex, the form in-toto digest sets use.

use sha2::{Digest, Sha256};

/// The SHA-256 digest of `bytes` as 64 lowercase hex digits (an in-toto `sha256` value).
///
/// ```
/// assert_eq!(
///     autopack_attest::sha256_hex(b"abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex_lower(&Sha256::digest(bytes))
}

/// `bytes` as lowercase hex, two digits a byte.
pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    out
}

/// Whether `s` is non-empty and only lowercase hex digits (`0-9a-f`).
pub(crate) fn is_lower_hex(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_the_empty_string_and_of_abc() {
        // FIPS 180-2's examples.
        assert_eq!(
            sha256_hex(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex_lower(&[0x00, 0x0f, 0xa0, 0xff]), "000fa0ff");
        assert!(is_lower_hex("0123456789abcdef"));
        assert!(!is_lower_hex(""));
        assert!(!is_lower_hex("ABCDEF"));
        assert!(!is_lower_hex("12 4"));
        assert!(!is_lower_hex("g0"));
    }
}
