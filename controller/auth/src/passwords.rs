//! Password hashing with argon2id (RustCrypto `argon2`, default parameters:
//! 19 MiB, 2 passes). Hashing is CPU-heavy by design, so it runs on the blocking
//! pool, never on an async worker.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::AuthError;

/// Shortest password accepted.
pub const MIN_LENGTH: usize = 10;

/// Refuses weak passwords with a message saying what is wanted.
pub fn check_strength(password: &str) -> Result<(), AuthError> {
    let long = password.chars().count() >= MIN_LENGTH;
    let letters = password.chars().any(char::is_alphabetic);
    let digits = password.chars().any(|c| c.is_ascii_digit());
    if long && letters && digits {
        Ok(())
    } else {
        Err(AuthError::PasswordTooWeak {
            min_length: MIN_LENGTH,
        })
    }
}

/// The PHC string of `password` with a fresh random salt.
pub async fn hash(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
    })
    .await
    .map_err(|e| AuthError::Hash(Box::new(e)))?
    .map_err(|e| AuthError::Hash(e.to_string().into()))
}

/// Whether `password` matches the PHC string. A malformed hash never matches.
pub async fn verify(password: String, phc: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&phc)
            .map(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// A hash of a password nobody knows, verified against when the user does not
/// exist, so that a login for an unknown user takes as long as a wrong password
/// and cannot be used to discover user names.
pub async fn dummy_hash() -> Option<String> {
    static DUMMY: tokio::sync::OnceCell<Option<String>> = tokio::sync::OnceCell::const_new();
    DUMMY
        .get_or_init(|| async { hash(yunshu_pki::random_hex(16)).await.ok() })
        .await
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hash_then_verify() {
        let phc = hash("correct horse 1".into()).await.expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify("correct horse 1".into(), phc.clone()).await);
        assert!(!verify("correct horse 2".into(), phc).await);
        assert!(!verify("x".into(), "not a phc string".into()).await);
    }

    /// Seed 003 §3.2.2.6 (账号密码强度核查, 弱口令), for yunshu's own accounts.
    #[test]
    fn weak_passwords_are_refused() {
        assert!(check_strength("short1").is_err());
        assert!(check_strength("onlyletterslong").is_err());
        assert!(check_strength("1234567890123").is_err());
        assert!(check_strength("政务云密码很安全2026").is_ok());
    }
}
