//! The one error of this crate. Each refusal maps to one stable API code in the
//! `api` crate (`AUTH_REQUIRED`, `FORBIDDEN`, `LOGIN_FAILED` …); the variants
//! carry what the message needs.

use yunshu_domain::DomainError;
use yunshu_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credential, or one that names nobody active (`AUTH_REQUIRED`).
    #[error("no valid credential")]
    Unauthenticated,
    /// A session request that changes something did not echo its CSRF token.
    #[error("missing or wrong CSRF token")]
    CsrfFailed,
    /// The caller is known but their roles (or token scopes) do not allow it.
    #[error("the caller's roles do not allow this")]
    Forbidden,
    #[error("wrong user name or password")]
    LoginFailed,
    #[error("too many failed logins; locked for {minutes} minutes")]
    AccountLocked { minutes: u64 },
    #[error("passwords need at least {min_length} characters with letters and digits")]
    PasswordTooWeak { min_length: usize },
    /// 三员分立 (003 §3.2.2.15): two roles one person may not hold together.
    #[error("{first} and {second} must be held by different people")]
    RolesSeparated { first: String, second: String },
    /// A platform user manager typed a password: the user sets their own
    /// through a one-time activation.
    #[error("the user sets their own password through the activation code")]
    PasswordSetByUser,
    /// An activation code that is unknown, used or expired.
    #[error("this activation code is unknown, used or expired")]
    ActivationInvalid,
    #[error("a user needs at least one role")]
    UserRolesRequired,
    /// A tenant that does not exist or that the caller may not see.
    #[error("no tenant {code}")]
    TenantNotFound { code: String },
    /// An org unit that does not exist or that the caller may not see.
    #[error("no org unit {id}")]
    OrgUnitNotFound { id: String },
    #[error("user {id} already exists")]
    UserExists { id: String },
    /// A user that does not exist or that the caller may not manage.
    #[error("no user {id}")]
    UserNotFound { id: String },
    /// An offboarding action aimed at the caller's own account.
    #[error("a manager cannot do this to their own account")]
    UserIsCaller,
    /// A role binding the user does not have.
    #[error("no role binding {id} on this user")]
    RoleBindingNotFound { id: String },
    /// The user already holds this role at this scope (adjust that binding).
    #[error("the user already holds {role} at {scope}")]
    RoleBindingExists { role: String, scope: String },
    /// The user (or their bindings, or a token) changed between read and write.
    #[error("user {id} changed meanwhile")]
    UserChanged { id: String },
    #[error("a token needs a name (1–100 characters), at least one scope and 1–{max_days} days")]
    TokenRequestInvalid { max_days: i64 },
    /// A token minting a token that would live longer than itself.
    #[error("a token cannot mint a token that outlives it (it expires at {expires_at})")]
    TokenOutlivesCaller {
        expires_at: chrono::DateTime<chrono::Utc>,
    },
    #[error("a fresh token id collided with a stored one")]
    TokenIdCollision,
    #[error("no token {id}")]
    TokenNotFound { id: String },
    /// Input that fails a domain rule (user id, name, tenant code, binding).
    #[error(transparent)]
    Invalid(DomainError),
    /// A value this crate builds itself was refused by the domain: a bug.
    #[error("cannot build {what}")]
    Build {
        what: &'static str,
        #[source]
        source: DomainError,
    },
    #[error("cannot hash the password")]
    Hash(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("store failed")]
    Store(#[from] StoreError),
}

impl AuthError {
    /// A domain refusal of caller input.
    pub(crate) fn invalid(e: impl Into<DomainError>) -> Self {
        AuthError::Invalid(e.into())
    }
}
