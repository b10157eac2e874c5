//! Envelope encryption of secrets kept in the store (issue 16 item 6).
//!
//! A secret is encrypted with a fresh random data key (AES-256-GCM); the data
//! key is encrypted ("wrapped") with the installation's master key, which lives
//! outside the store (a file or an environment variable). Both encryptions bind
//! the record's identity as associated data, so a sealed value copied onto
//! another record does not open. A store dump alone therefore holds nothing
//! usable; rotating the master key means re-wrapping data keys only.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error(
        "the store key must be 32 bytes written as 64 hex digits or as standard base64 (e.g. `head -c 32 /dev/urandom | base64`): {0}"
    )]
    KeyFormat(String),
    #[error(
        "the value was sealed with store key {sealed_with}, but the key given is {given}: supply the installation's store key"
    )]
    WrongKey { sealed_with: String, given: String },
    #[error("the sealed value does not open: {0}")]
    Corrupt(&'static str),
}

/// The installation's master key. Never printed: `Debug` shows its id only.
#[derive(Clone)]
pub struct MasterKey([u8; 32]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MasterKey({})", self.id())
    }
}

impl MasterKey {
    /// A fresh random key (tests, and `yunshu` documentation examples).
    pub fn generate() -> Self {
        Self(rand::random())
    }

    /// Parses 64 hex digits or standard base64 of exactly 32 bytes;
    /// surrounding whitespace (a trailing newline in a file) is ignored.
    pub fn parse(text: &str) -> Result<Self, EnvelopeError> {
        let text = text.trim();
        // 64 hex digits are never read as base64: they would decode to 48 bytes.
        let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(text).map_err(|e| EnvelopeError::KeyFormat(e.to_string()))?
        } else {
            BASE64
                .decode(text)
                .map_err(|e| EnvelopeError::KeyFormat(format!("not hex, and not base64: {e}")))?
        };
        let key: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| EnvelopeError::KeyFormat(format!("found {} bytes", bytes.len())))?;
        Ok(Self(key))
    }

    /// The key's public name: the first 16 hex digits of a domain-separated
    /// SHA-256, so an error can say "sealed with key X, given Y" without
    /// revealing either.
    pub fn id(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"yunshu store key id\0");
        hasher.update(self.0);
        hex::encode(&hasher.finalize()[..8])
    }
}

/// A sealed secret as stored: text fields, so a record stays JSON a person can
/// read (base64 of nonce followed by ciphertext and tag).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    /// [`MasterKey::id`] of the master key that wrapped the data key.
    pub key_id: String,
    /// The data key, encrypted with the master key.
    pub wrapped_key: String,
    /// The secret, encrypted with the data key.
    pub ciphertext: String,
}

/// Seals `plaintext` for the record named `context` (the associated data).
pub fn seal(master: &MasterKey, context: &str, plaintext: &[u8]) -> Sealed {
    let data_key: [u8; 32] = rand::random();
    Sealed {
        key_id: master.id(),
        wrapped_key: encrypt(&master.0, context, &data_key),
        ciphertext: encrypt(&data_key, context, plaintext),
    }
}

/// Opens what [`seal`] made for `context`; a different master key is
/// [`EnvelopeError::WrongKey`], a changed value or context is
/// [`EnvelopeError::Corrupt`].
pub fn open(master: &MasterKey, context: &str, sealed: &Sealed) -> Result<Vec<u8>, EnvelopeError> {
    let given = master.id();
    if sealed.key_id != given {
        return Err(EnvelopeError::WrongKey {
            sealed_with: sealed.key_id.clone(),
            given,
        });
    }
    let data_key = decrypt(&master.0, context, &sealed.wrapped_key)?;
    let data_key: [u8; 32] = data_key
        .as_slice()
        .try_into()
        .map_err(|_| EnvelopeError::Corrupt("the data key is not 32 bytes"))?;
    decrypt(&data_key, context, &sealed.ciphertext)
}

fn encrypt(key: &[u8; 32], context: &str, plaintext: &[u8]) -> String {
    let cipher = Aes256Gcm::new(key.into());
    // A random 96-bit nonce per encryption: each data key encrypts one value
    // and the master key a few wraps, far from the 2^32 random-nonce bound.
    let nonce: [u8; NONCE_LEN] = rand::random();
    let payload = Payload {
        msg: plaintext,
        aad: context.as_bytes(),
    };
    // AES-GCM encryption fails only for messages over 64 GiB.
    let ciphertext = cipher
        .encrypt(Nonce::from_slice(&nonce), payload)
        .unwrap_or_default();
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ciphertext);
    BASE64.encode(out)
}

fn decrypt(key: &[u8; 32], context: &str, text: &str) -> Result<Vec<u8>, EnvelopeError> {
    let bytes = BASE64
        .decode(text)
        .map_err(|_| EnvelopeError::Corrupt("not base64"))?;
    if bytes.len() < NONCE_LEN {
        return Err(EnvelopeError::Corrupt("too short"));
    }
    let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
    let cipher = Aes256Gcm::new(key.into());
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad: context.as_bytes(),
            },
        )
        .map_err(|_| {
            EnvelopeError::Corrupt("authentication failed (changed, or sealed for another record)")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_secrets_open_with_their_key_and_context_only() {
        let key = MasterKey::generate();
        let sealed = seal(&key, "driver_ca/default", b"-----BEGIN PRIVATE KEY-----");
        assert!(!sealed.ciphertext.contains("PRIVATE"));
        assert_eq!(
            open(&key, "driver_ca/default", &sealed).expect("opens"),
            b"-----BEGIN PRIVATE KEY-----"
        );
        let other = MasterKey::generate();
        assert!(matches!(
            open(&other, "driver_ca/default", &sealed),
            Err(EnvelopeError::WrongKey { .. })
        ));
        assert!(matches!(
            open(&key, "driver_ca/other", &sealed),
            Err(EnvelopeError::Corrupt(_))
        ));
    }

    #[test]
    fn store_keys_are_hex_or_base64_of_32_bytes() {
        let hex_key = "00".repeat(32);
        let b64_key = BASE64.encode([0u8; 32]);
        assert_eq!(
            MasterKey::parse(&hex_key).expect("hex").id(),
            MasterKey::parse(&format!("{b64_key}\n"))
                .expect("base64")
                .id()
        );
        for bad in ["", "short", &"00".repeat(16), &BASE64.encode([0u8; 16])] {
            let err = MasterKey::parse(bad).expect_err(bad);
            assert!(err.to_string().contains("32 bytes"), "{err}");
        }
        assert!(!format!("{:?}", MasterKey::parse(&hex_key).expect("hex")).contains(&hex_key));
    }
}
