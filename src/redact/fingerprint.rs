//! Keyed fingerprints: HMAC-SHA256 of a secret under a per-install key.
//!
//! A fingerprint identifies a secret across occurrences (and lets a baseline suppress a known one)
//! without revealing it: without the key, a fingerprint cannot be checked against guesses.
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// A 32-byte key for [`FingerprintKey::fingerprint`]. Its `Debug` never prints the key.
#[derive(Clone)]
pub struct FingerprintKey([u8; 32]);

impl std::fmt::Debug for FingerprintKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("FingerprintKey(..)")
    }
}

impl FingerprintKey {
    /// Wrap raw key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The raw key bytes (for persisting the key).
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Hex HMAC-SHA256 of `secret` (64 lowercase hex digits).
    pub fn fingerprint(&self, secret: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes any key size");
        mac.update(secret);
        hex::encode(mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyed_and_stable() {
        let a = FingerprintKey::from_bytes([1; 32]);
        let b = FingerprintKey::from_bytes([2; 32]);
        assert_eq!(a.fingerprint(b"s3cret"), a.fingerprint(b"s3cret"));
        assert_ne!(a.fingerprint(b"s3cret"), b.fingerprint(b"s3cret"));
        assert_eq!(a.fingerprint(b"x").len(), 64);
        assert_eq!(format!("{a:?}"), "FingerprintKey(..)");
    }
}
