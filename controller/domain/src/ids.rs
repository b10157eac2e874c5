//! Newtype identifiers for records whose key is a machine-made or operator-chosen
//! slug (`UserId`, `OrderId`, `ResourceId`, `ProviderId`, …) and [`Actor`], who did
//! something.
//!
//! Owns the slug rule: 1–64 ASCII letters, digits, `-`, `_` or `.`, starting with a
//! letter or digit. `/` and `:` are excluded on purpose: the store builds composite
//! keys with `/` (see `Record::id`) and [`Actor`] uses `:` as its separator.
//! Identifiers with business meaning live with their concept instead: `TenantCode`
//! in `tenant`, `SystemNumber` in `system`, `CatalogCode` in `catalog`.
//! This module does not generate identifiers (no clock, no randomness here).

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::ErrorCode;

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IdError {
    #[error("invalid {kind} {value:?}: {reason}")]
    Invalid {
        kind: &'static str,
        value: String,
        reason: &'static str,
    },
    #[error("invalid actor {value:?}: expected \"user:<id>\" or \"system:<component>\"")]
    ActorInvalid { value: String },
}

impl ErrorCode for IdError {
    fn code(&self) -> &'static str {
        match self {
            IdError::Invalid { .. } => "ID_INVALID",
            IdError::ActorInvalid { .. } => "ACTOR_INVALID",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            IdError::Invalid { kind, value, .. } => format!(
                "{kind} 标识“{value}”无效：只能包含 1–64 个英文字母、数字、“-”、“_”或“.”，且以字母或数字开头"
            ),
            IdError::ActorInvalid { value } => format!("操作人“{value}”无效"),
        }
    }
}

/// Longest slug accepted.
pub const SLUG_MAX_LEN: usize = 64;

/// Checks the slug rule described in the module header.
pub(crate) fn check_slug(kind: &'static str, value: &str) -> Result<(), IdError> {
    let invalid = |reason| IdError::Invalid {
        kind,
        value: value.to_string(),
        reason,
    };
    let first = value.chars().next().ok_or_else(|| invalid("empty"))?;
    if value.len() > SLUG_MAX_LEN {
        return Err(invalid("longer than 64 characters"));
    }
    if !first.is_ascii_alphanumeric() {
        return Err(invalid("must start with a letter or digit"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(invalid(
            "only ASCII letters, digits, '-', '_' and '.' are allowed",
        ));
    }
    Ok(())
}

/// Defines a validated slug newtype with serde, `Display`, `FromStr` and `TryFrom`.
macro_rules! slug_id {
    ($(#[$meta:meta])* $name:ident, $kind:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Refuses values that break the slug rule (module `ids`).
            pub fn new(value: impl Into<String>) -> Result<Self, IdError> {
                let value = value.into();
                check_slug($kind, &value)?;
                Ok($name(value))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(value: String) -> Result<Self, Self::Error> {
                $name::new(value)
            }
        }

        impl TryFrom<&str> for $name {
            type Error = IdError;
            fn try_from(value: &str) -> Result<Self, Self::Error> {
                $name::new(value)
            }
        }

        impl std::str::FromStr for $name {
            type Err = IdError;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                $name::new(value)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> String {
                value.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

slug_id!(
    /// A user's login name (登录名), unique across the platform.
    UserId,
    "user"
);
slug_id!(
    /// A role binding's key.
    RoleBindingId,
    "role binding"
);
slug_id!(
    /// A work order's key (工单编号), assigned by the workflow when the order is created.
    OrderId,
    "work order"
);
slug_id!(
    /// A resource's key, assigned by the controller; also the driver idempotency key's root.
    ResourceId,
    "resource"
);
slug_id!(
    /// A cloud service provider's platform (云服务商平台), e.g. `sim`, `taiji`.
    ProviderId,
    "provider"
);
slug_id!(
    /// A deployment node (部署节点) of a provider, e.g. `fuzhongxin` (城市副中心).
    ZoneId,
    "zone"
);
slug_id!(
    /// A network area (网络区域) of a zone, e.g. `extranet`, `internet`.
    NetworkAreaId,
    "network area"
);
slug_id!(
    /// A resource pool (资源池) of one CPU architecture.
    PoolId,
    "pool"
);
slug_id!(
    /// A physical host (宿主机).
    HostId,
    "host"
);
slug_id!(
    /// A storage class (存储类型), e.g. `standard`, `ssd`.
    StorageClassId,
    "storage class"
);
slug_id!(
    /// An alarm's key.
    AlarmId,
    "alarm"
);
slug_id!(
    /// A named service catalog (服务目录), e.g. `beijing-2023`, `datong-2023`.
    CatalogId,
    "catalog"
);
slug_id!(
    /// An anti-affinity group (反亲和组): VMs in one group go to different hosts.
    AntiAffinityGroup,
    "anti-affinity group"
);
slug_id!(
    /// An operating-system image known to a provider, e.g. `kylin-v10-sp3`.
    ImageId,
    "image"
);
slug_id!(
    /// An organisational unit (组织机构) of the administration tree, e.g.
    /// `beijing`, `chaoyang-fgw` (module `org_unit`).
    OrgUnitId,
    "org unit"
);

/// Who did something: a signed-in user or a component of yunshu itself (the
/// reconciler marking a test environment ready, the deadline clock raising alarms).
/// Written as `user:<UserId>` or `system:<component>` so audit lines stay one string.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Actor {
    User(UserId),
    /// A component name that follows the slug rule, e.g. `reconciler`.
    System(String),
}

impl Actor {
    /// A system actor; refuses names that break the slug rule.
    pub fn system(component: &str) -> Result<Self, IdError> {
        check_slug("system component", component)?;
        Ok(Actor::System(component.to_string()))
    }

    /// The user behind this actor, if it is one.
    pub fn user(&self) -> Option<&UserId> {
        match self {
            Actor::User(u) => Some(u),
            Actor::System(_) => None,
        }
    }
}

impl From<UserId> for Actor {
    fn from(value: UserId) -> Self {
        Actor::User(value)
    }
}

impl std::str::FromStr for Actor {
    type Err = IdError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid = || IdError::ActorInvalid {
            value: value.to_string(),
        };
        match value.split_once(':') {
            Some(("user", id)) => UserId::new(id).map(Actor::User).map_err(|_| invalid()),
            Some(("system", c)) => Actor::system(c).map_err(|_| invalid()),
            _ => Err(invalid()),
        }
    }
}

impl TryFrom<String> for Actor {
    type Error = IdError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<Actor> for String {
    fn from(value: Actor) -> String {
        value.to_string()
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::User(u) => write!(f, "user:{u}"),
            Actor::System(c) => write!(f, "system:{c}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, ok: bool) {
        assert_eq!(OrderId::new(input).is_ok(), ok, "{input:?}");
    }

    #[test]
    fn slug_rule() {
        check("WO-2026-000001", true);
        check("a", true);
        check("zhang.san_01", true);
        check("", false);
        check("-leading", false);
        check("has space", false);
        check("a/b", false);
        check("a:b", false);
        check("中文", false);
        check(&"a".repeat(64), true);
        check(&"a".repeat(65), false);
    }

    #[test]
    fn error_code_and_kind() {
        let e = ProviderId::new("").expect_err("empty");
        assert_eq!(e.code(), "ID_INVALID");
        assert!(e.to_string().contains("provider"));
    }

    #[test]
    fn serde_validates() {
        let id: UserId = serde_json::from_str("\"zhangsan\"").expect("valid");
        assert_eq!(id.as_str(), "zhangsan");
        assert!(serde_json::from_str::<UserId>("\"zhang san\"").is_err());
    }

    #[test]
    fn actor_round_trip() {
        for s in ["user:zhangsan", "system:reconciler"] {
            let a: Actor = s.parse().expect("valid");
            assert_eq!(a.to_string(), s);
            let json = serde_json::to_string(&a).expect("ser");
            assert_eq!(serde_json::from_str::<Actor>(&json).expect("de"), a);
        }
        for s in ["zhangsan", "user:", "robot:x", "system:a b"] {
            assert!(s.parse::<Actor>().is_err(), "{s}");
        }
    }
}
