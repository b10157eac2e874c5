//! Error codes shared by every module: the [`ErrorCode`] trait and the crate-wide
//! [`DomainError`] that wraps each module's error enum.
//!
//! Owns the promise that codes are stable API: add new codes, never rename them
//! (STYLE.md, "Errors"). The English message is the `Display` impl; the Chinese
//! message is [`ErrorCode::message_zh`]. This module does not know HTTP statuses —
//! the API layer maps codes to statuses.

use thiserror::Error;

use crate::{
    alarm::AlarmError, audit::AuditError, catalog::CatalogError, ids::IdError, order::OrderError,
    order_line::LineError, order_services::ServiceError, provider::ProviderError,
    record::RecordError, resource::ResourceError, system::SystemError, tenant::TenantError,
    text::TextError, user::UserError,
};

/// A domain error with a stable machine code and a Chinese message.
pub trait ErrorCode: std::error::Error {
    /// Stable SCREAMING_SNAKE code, e.g. `"TENANT_CODE_INVALID"`. Never renamed.
    fn code(&self) -> &'static str;
    /// Message for Chinese-speaking users (the portal's default language).
    fn message_zh(&self) -> String;
}

/// Any error this crate can return, for callers that do not care which module failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DomainError {
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(transparent)]
    Id(#[from] IdError),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error(transparent)]
    Tenant(#[from] TenantError),
    #[error(transparent)]
    User(#[from] UserError),
    #[error(transparent)]
    System(#[from] SystemError),
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error(transparent)]
    Line(#[from] LineError),
    #[error(transparent)]
    Resource(#[from] ResourceError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    Alarm(#[from] AlarmError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error(transparent)]
    Calendar(#[from] crate::calendar::CalendarError),
    #[error(transparent)]
    Policy(#[from] crate::calendar::PolicyError),
    #[error(transparent)]
    CatalogImport(#[from] crate::catalog_data::CatalogImportError),
    #[error(transparent)]
    Service(#[from] ServiceError),
}

impl DomainError {
    fn inner(&self) -> &dyn ErrorCode {
        match self {
            DomainError::Text(e) => e,
            DomainError::Id(e) => e,
            DomainError::Record(e) => e,
            DomainError::Tenant(e) => e,
            DomainError::User(e) => e,
            DomainError::System(e) => e,
            DomainError::Order(e) => e,
            DomainError::Line(e) => e,
            DomainError::Resource(e) => e,
            DomainError::Provider(e) => e,
            DomainError::Catalog(e) => e,
            DomainError::Alarm(e) => e,
            DomainError::Audit(e) => e,
            DomainError::Calendar(e) => e,
            DomainError::Policy(e) => e,
            DomainError::CatalogImport(e) => e,
            DomainError::Service(e) => e,
        }
    }

    /// See [`ErrorCode::code`].
    pub fn code(&self) -> &'static str {
        self.inner().code()
    }

    /// See [`ErrorCode::message_zh`].
    pub fn message_zh(&self) -> String {
        self.inner().message_zh()
    }
}

impl ErrorCode for DomainError {
    fn code(&self) -> &'static str {
        DomainError::code(self)
    }
    fn message_zh(&self) -> String {
        DomainError::message_zh(self)
    }
}

/// An error with its sources, on one line (`outer: cause: root cause`), for
/// logs and `/readyz`: a log line must say why, not only what.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_module_errors_and_keeps_their_code() {
        let e: DomainError = TenantError::CodeInvalid {
            value: "abc".into(),
        }
        .into();
        assert_eq!(e.code(), "TENANT_CODE_INVALID");
        assert!(e.message_zh().contains("abc"));
        assert!(e.to_string().contains("abc"));
    }

    #[test]
    fn chain_names_every_source() {
        #[derive(Debug, Error)]
        #[error("cannot save the name")]
        struct Save(#[source] TextError);
        assert_eq!(
            chain(&Save(TextError::Empty)),
            format!("cannot save the name: {}", TextError::Empty)
        );
    }

    #[test]
    fn codes_are_screaming_snake() {
        let samples: Vec<DomainError> = vec![
            TextError::Empty.into(),
            TenantError::CodeInvalid { value: "x".into() }.into(),
            RecordError::SchemaTooNew {
                kind: "tenant".into(),
                found: 9,
                supported: 1,
            }
            .into(),
        ];
        for e in samples {
            let code = e.code();
            assert!(
                code.chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()),
                "{code}"
            );
        }
    }
}
