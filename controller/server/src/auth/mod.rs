//! Who is calling: local users with argon2id password hashes, login sessions in a
//! cookie (HttpOnly, SameSite=Strict) with a CSRF token, lockout after repeated
//! failures, and the [`Principal`] every handler authorises against.
//!
//! Owns identity and sessions. Must not decide what a role may do to a work order:
//! the permission table lives with the domain (`Role::default_permissions`).

pub mod lockout;
pub mod passwords;
pub mod principal;
pub mod sessions;
pub mod tokens;
pub mod users;

pub use principal::Principal;

#[cfg(test)]
mod tests;
