//! Organisational units (组织机构) and the tree they form: the supervising
//! units (主管部门) above the departments (使用单位), for hierarchical
//! administration — "上级管理员可以创建下级管理员以及下级用户，并可以对其权限进行设置"
//! (003 §3.2.2.15), "分级管理，用户及权限" (003 §2.2.3 7 (3)).
//!
//! A unit has at most one parent; a tenant is attached to at most one unit
//! (`Tenant::org_unit`). A unit's place in the tree is fixed when it is
//! created (units are never moved), so a new unit can only close a cycle by
//! naming itself as its parent, and its depth never changes afterwards.
//! The conventional levels are 省 → 市 → 区县 → 委办局 → 处室; deeper trees are
//! allowed up to [`MAX_DEPTH`].

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::error::ErrorCode;
use crate::ids::OrgUnitId;
use crate::record::Record;
use crate::text::Name;

/// The deepest a unit may sit (the root is depth 1): five conventional
/// levels and room for three more (科, 组 …), yet bounded so a walk up the
/// tree is short and a runaway script cannot grow it without end.
pub const MAX_DEPTH: usize = 8;

/// Why an org unit was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrgUnitError {
    #[error("org unit {id} already exists")]
    Exists { id: String },
    #[error("no org unit {id}")]
    NotFound { id: String },
    #[error("parent org unit {parent} does not exist")]
    ParentNotFound { parent: String },
    #[error("org unit {id} cannot be its own ancestor")]
    Cycle { id: String },
    #[error("org unit {id} would sit at depth {depth}; at most {max} levels")]
    TooDeep {
        id: String,
        depth: usize,
        max: usize,
    },
}

impl ErrorCode for OrgUnitError {
    fn code(&self) -> &'static str {
        match self {
            OrgUnitError::Exists { .. } => "ORG_UNIT_EXISTS",
            OrgUnitError::NotFound { .. } => "ORG_UNIT_NOT_FOUND",
            OrgUnitError::ParentNotFound { .. } => "ORG_UNIT_PARENT_NOT_FOUND",
            OrgUnitError::Cycle { .. } => "ORG_UNIT_CYCLE",
            OrgUnitError::TooDeep { .. } => "ORG_UNIT_TOO_DEEP",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            OrgUnitError::Exists { id } => format!("组织机构 {id} 已存在"),
            OrgUnitError::NotFound { id } => format!("组织机构 {id} 不存在"),
            OrgUnitError::ParentNotFound { parent } => format!("上级组织机构 {parent} 不存在"),
            OrgUnitError::Cycle { id } => format!("组织机构 {id} 不能是自己的上级"),
            OrgUnitError::TooDeep { id, depth, max } => {
                format!("组织机构 {id} 将位于第 {depth} 级，最多 {max} 级")
            }
        }
    }
}

/// One unit of the administration tree, e.g. 北京市 or 朝阳区发展改革委.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrgUnit {
    pub id: OrgUnitId,
    pub name: Name,
    /// `None` for a root (e.g. a province).
    pub parent: Option<OrgUnitId>,
    pub created_at: DateTime<Utc>,
}

impl Record for OrgUnit {
    const KIND: &'static str = "org_unit";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.id.to_string()
    }
}

/// The conventional Chinese name of a depth: 省级, 市级, 区县级, 委办局, 处室;
/// deeper levels are numbered.
pub fn level_zh(depth: usize) -> String {
    match depth {
        1 => "省级".to_owned(),
        2 => "市级".to_owned(),
        3 => "区县级".to_owned(),
        4 => "委办局".to_owned(),
        5 => "处室".to_owned(),
        n => format!("第{n}级"),
    }
}

/// The stored units as a tree: depths, and what lies below a unit.
#[derive(Debug, Clone, Default)]
pub struct OrgTree {
    units: BTreeMap<OrgUnitId, OrgUnit>,
    children: BTreeMap<OrgUnitId, Vec<OrgUnitId>>,
}

impl OrgTree {
    pub fn new(units: impl IntoIterator<Item = OrgUnit>) -> Self {
        let mut tree = OrgTree::default();
        for u in units {
            if let Some(p) = &u.parent {
                tree.children
                    .entry(p.clone())
                    .or_default()
                    .push(u.id.clone());
            }
            tree.units.insert(u.id.clone(), u);
        }
        tree
    }

    pub fn get(&self, id: &OrgUnitId) -> Option<&OrgUnit> {
        self.units.get(id)
    }

    pub fn units(&self) -> impl Iterator<Item = &OrgUnit> {
        self.units.values()
    }

    /// 1 for a root. Stops past [`MAX_DEPTH`], so records damaged into a
    /// loop cannot hang a caller (and look too deep to grow).
    pub fn depth(&self, id: &OrgUnitId) -> usize {
        let mut depth = 1;
        let mut at = self.units.get(id).and_then(|u| u.parent.as_ref());
        while let Some(p) = at {
            depth += 1;
            if depth > MAX_DEPTH + 1 {
                break;
            }
            at = self.units.get(p).and_then(|u| u.parent.as_ref());
        }
        depth
    }

    /// Every unit strictly below `id`, however deep.
    pub fn below(&self, id: &OrgUnitId) -> BTreeSet<OrgUnitId> {
        let mut out = BTreeSet::new();
        let mut todo: Vec<&OrgUnitId> = vec![id];
        while let Some(at) = todo.pop() {
            for c in self.children.get(at).into_iter().flatten() {
                // `insert` is false for a unit already seen: no loop forever.
                if c != id && out.insert(c.clone()) {
                    todo.push(c);
                }
            }
        }
        out
    }

    /// Whether `unit` is `top` or lies below it.
    pub fn within(&self, unit: &OrgUnitId, top: &OrgUnitId) -> bool {
        unit == top || self.below(top).contains(unit)
    }

    /// Checks that `unit` may join the tree: a new id (`ORG_UNIT_EXISTS`), not
    /// its own parent (`ORG_UNIT_CYCLE`), an existing parent
    /// (`ORG_UNIT_PARENT_NOT_FOUND`), at most [`MAX_DEPTH`] deep
    /// (`ORG_UNIT_TOO_DEEP`). Returns its depth.
    pub fn check_new(&self, unit: &OrgUnit) -> Result<usize, OrgUnitError> {
        let id = unit.id.to_string();
        if self.units.contains_key(&unit.id) {
            return Err(OrgUnitError::Exists { id });
        }
        let Some(parent) = &unit.parent else {
            return Ok(1);
        };
        if parent == &unit.id {
            return Err(OrgUnitError::Cycle { id });
        }
        if !self.units.contains_key(parent) {
            return Err(OrgUnitError::ParentNotFound {
                parent: parent.to_string(),
            });
        }
        let depth = self.depth(parent) + 1;
        if depth > MAX_DEPTH {
            return Err(OrgUnitError::TooDeep {
                id,
                depth,
                max: MAX_DEPTH,
            });
        }
        Ok(depth)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn unit(id: &str, parent: Option<&str>) -> OrgUnit {
        OrgUnit {
            id: OrgUnitId::new(id).expect("id"),
            name: Name::new(id).expect("name"),
            parent: parent.map(|p| OrgUnitId::new(p).expect("id")),
            created_at: Utc
                .with_ymd_and_hms(2026, 1, 5, 9, 0, 0)
                .single()
                .expect("date"),
        }
    }

    fn id(s: &str) -> OrgUnitId {
        OrgUnitId::new(s).expect("id")
    }

    #[test]
    fn depth_below_and_refusals() {
        let mut units = vec![unit("u1", None)];
        for n in 2..=MAX_DEPTH {
            units.push(unit(&format!("u{n}"), Some(&format!("u{}", n - 1))));
        }
        units.push(unit("side", Some("u1")));
        let tree = OrgTree::new(units);
        assert_eq!(tree.depth(&id("u1")), 1);
        assert_eq!(tree.depth(&id("u5")), 5);
        assert_eq!(level_zh(5), "处室");
        let below = tree.below(&id("u3"));
        assert!(below.contains(&id("u8")) && !below.contains(&id("u3")));
        assert!(!below.contains(&id("side")) && !below.contains(&id("u2")));
        assert!(tree.within(&id("u3"), &id("u3")));

        let code = |u: OrgUnit| tree.check_new(&u).map_err(|e| e.code());
        assert_eq!(code(unit("new", Some("u7"))), Ok(8));
        assert_eq!(code(unit("new", Some("u8"))), Err("ORG_UNIT_TOO_DEEP"));
        assert_eq!(
            code(unit("new", Some("nowhere"))),
            Err("ORG_UNIT_PARENT_NOT_FOUND")
        );
        assert_eq!(code(unit("new", Some("new"))), Err("ORG_UNIT_CYCLE"));
        assert_eq!(code(unit("u2", None)), Err("ORG_UNIT_EXISTS"));
    }

    #[test]
    fn a_damaged_loop_does_not_hang() {
        let tree = OrgTree::new([unit("a", Some("b")), unit("b", Some("a"))]);
        // Bounded, and too deep for anything to be added below it.
        let depth = tree.depth(&id("a"));
        assert!(depth > MAX_DEPTH && depth <= MAX_DEPTH + 2, "{depth}");
        assert_eq!(tree.below(&id("a")), BTreeSet::from([id("b")]));
    }
}
