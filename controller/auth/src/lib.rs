//! Who is calling (SPEC §1): local users with argon2id password hashes and their
//! role bindings, login sessions kept on a store lease, lockout after repeated
//! failures, revocable scoped API tokens, and [`resolve`], which turns what a
//! request presented (a bearer token or a session id with its CSRF echo) into
//! the [`Principal`] every layer authorises against.
//!
//! Owns identity, credentials and sessions; every change it makes is written
//! with its audit entry in one store transaction. Must not speak HTTP (the `api`
//! crate reads headers and cookies, calls [`resolve`] and maps [`AuthError`] to
//! statuses), and must not decide what a role may do to a work order: the
//! permission table lives with the domain (`Role::default_permissions`).

pub mod activation;
pub mod bindings;
mod error;
pub mod lockout;
pub mod offboarding;
pub mod org;
pub mod passwords;
pub mod principal;
pub mod sessions;
pub mod tokens;
pub mod users;

pub use error::AuthError;
pub use principal::{Credential, Principal, resolve};

use yunshu_domain::audit::AuditAction;
use yunshu_domain::{Actor, Text};
use yunshu_store::audit::AuditDraft;

/// The audit entry for `action` on `target` by `actor`, now.
fn audit_draft(
    actor: &Actor,
    action: &str,
    target: &str,
    detail: Option<String>,
) -> Result<AuditDraft, AuthError> {
    let built = |e: yunshu_domain::DomainError| AuthError::Build {
        what: "the audit entry",
        source: e,
    };
    Ok(AuditDraft {
        at: chrono::Utc::now(),
        actor: actor.clone(),
        action: AuditAction::new(action).map_err(|e| built(e.into()))?,
        target: Text::new(target).map_err(|e| built(e.into()))?,
        detail: detail
            .map(Text::new)
            .transpose()
            .map_err(|e| built(e.into()))?,
    })
}
