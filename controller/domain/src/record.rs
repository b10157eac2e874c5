//! Stored records: the [`Record`] trait every top-level stored type implements, and
//! the [`Stored`] envelope that carries a record's kind and schema version.
//!
//! Owns the rule that a binary never silently reads a record written by a newer
//! binary (a rolling `helm upgrade` runs old and new replicas side by side, SPEC §9):
//! [`Stored::check`] refuses a schema version newer than [`Record::SCHEMA_VERSION`].
//! Migrating older versions and the byte encoding are the store's business.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::ErrorCode;

/// A top-level record kept in the store.
pub trait Record {
    /// Stable snake_case kind name, part of every stored key. Never renamed.
    const KIND: &'static str;
    /// Bumped whenever the serialized shape changes incompatibly. Starts at 1.
    const SCHEMA_VERSION: u32;
    /// The record's unique key within its kind (e.g. a tenant code). Composite keys
    /// join their parts with `/`, which no identifier may contain.
    fn id(&self) -> String;
}

/// Why a stored record cannot be read by this binary.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    #[error("expected a record of kind {expected:?}, found {found:?}")]
    KindMismatch {
        expected: &'static str,
        found: String,
    },
    #[error("{kind} record has schema version {found}; this binary knows up to {supported}")]
    SchemaTooNew {
        kind: String,
        found: u32,
        supported: u32,
    },
    #[error("{kind} record has schema version 0; versions start at 1")]
    SchemaInvalid { kind: String },
}

impl ErrorCode for RecordError {
    fn code(&self) -> &'static str {
        match self {
            RecordError::KindMismatch { .. } => "RECORD_KIND_MISMATCH",
            RecordError::SchemaTooNew { .. } => "RECORD_SCHEMA_TOO_NEW",
            RecordError::SchemaInvalid { .. } => "RECORD_SCHEMA_INVALID",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            RecordError::KindMismatch { expected, found } => {
                format!("记录类型不符：应为 {expected}，实际为 {found}")
            }
            RecordError::SchemaTooNew {
                kind,
                found,
                supported,
            } => format!(
                "{kind} 记录的数据版本 {found} 高于本程序支持的版本 {supported}，请先升级程序"
            ),
            RecordError::SchemaInvalid { kind } => format!("{kind} 记录的数据版本 0 无效"),
        }
    }
}

/// The header of a stored record, without its data. A store can deserialize this
/// first (unknown fields such as `data` are ignored) to refuse a newer schema before
/// trying to parse a body whose shape it may not understand.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordHeader {
    pub kind: String,
    pub schema_version: u32,
}

impl RecordHeader {
    /// Checks this header against what `T` expects; see [`Stored::check`].
    pub fn check<T: Record>(&self) -> Result<(), RecordError> {
        if self.kind != T::KIND {
            return Err(RecordError::KindMismatch {
                expected: T::KIND,
                found: self.kind.clone(),
            });
        }
        if self.schema_version == 0 {
            return Err(RecordError::SchemaInvalid {
                kind: self.kind.clone(),
            });
        }
        if self.schema_version > T::SCHEMA_VERSION {
            return Err(RecordError::SchemaTooNew {
                kind: self.kind.clone(),
                found: self.schema_version,
                supported: T::SCHEMA_VERSION,
            });
        }
        Ok(())
    }
}

/// A record together with its kind and schema version, as written to the store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stored<T> {
    pub kind: String,
    pub schema_version: u32,
    pub data: T,
}

impl<T: Record> Stored<T> {
    /// Wraps a record with this binary's kind and schema version.
    pub fn wrap(data: T) -> Self {
        Stored {
            kind: T::KIND.to_string(),
            schema_version: T::SCHEMA_VERSION,
            data,
        }
    }

    /// Refuses a wrong kind, schema version 0, or a schema version newer than this
    /// binary knows. Older versions pass: upgrading them is the store's job.
    pub fn check(&self) -> Result<(), RecordError> {
        RecordHeader {
            kind: self.kind.clone(),
            schema_version: self.schema_version,
        }
        .check::<T>()
    }

    /// The record, after [`Stored::check`].
    pub fn into_inner(self) -> Result<T, RecordError> {
        self.check()?;
        Ok(self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Thing {
        name: String,
    }

    impl Record for Thing {
        const KIND: &'static str = "thing";
        const SCHEMA_VERSION: u32 = 2;
        fn id(&self) -> String {
            self.name.clone()
        }
    }

    fn check(json: &str, expected: Result<(), RecordError>) {
        let stored: Stored<Thing> = serde_json::from_str(json).expect("parses");
        assert_eq!(stored.check(), expected, "{json}");
    }

    #[test]
    fn wrap_round_trip() {
        let s = Stored::wrap(Thing { name: "a".into() });
        let json = serde_json::to_string(&s).expect("ser");
        assert_eq!(
            json,
            r#"{"kind":"thing","schema_version":2,"data":{"name":"a"}}"#
        );
        let back: Stored<Thing> = serde_json::from_str(&json).expect("de");
        assert_eq!(
            back.into_inner().expect("current"),
            Thing { name: "a".into() }
        );
    }

    #[test]
    fn envelope_checks() {
        check(
            r#"{"kind":"thing","schema_version":1,"data":{"name":"a"}}"#,
            Ok(()),
        );
        check(
            r#"{"kind":"thing","schema_version":2,"data":{"name":"a"}}"#,
            Ok(()),
        );
        check(
            r#"{"kind":"thing","schema_version":3,"data":{"name":"a"}}"#,
            Err(RecordError::SchemaTooNew {
                kind: "thing".into(),
                found: 3,
                supported: 2,
            }),
        );
        check(
            r#"{"kind":"thing","schema_version":0,"data":{"name":"a"}}"#,
            Err(RecordError::SchemaInvalid {
                kind: "thing".into(),
            }),
        );
        check(
            r#"{"kind":"other","schema_version":1,"data":{"name":"a"}}"#,
            Err(RecordError::KindMismatch {
                expected: "thing",
                found: "other".into(),
            }),
        );
    }

    #[test]
    fn newer_record_refused_by_header_before_body() {
        let json = r#"{"kind":"thing","schema_version":7,"data":{"renamed":1}}"#;
        let header: RecordHeader = serde_json::from_str(json).expect("header parses");
        let err = header.check::<Thing>().expect_err("too new");
        assert_eq!(err.code(), "RECORD_SCHEMA_TOO_NEW");
        let stored: Stored<Thing> = Stored {
            kind: "thing".into(),
            schema_version: 7,
            data: Thing { name: "x".into() },
        };
        assert!(stored.into_inner().is_err());
    }
}
