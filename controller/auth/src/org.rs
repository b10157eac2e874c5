//! What a unit admin's bindings reach (003 §3.2.2.15, hierarchical
//! administration): resolved from the stored org units and tenants when the
//! caller is authenticated, so [`crate::Principal::can`] stays a synchronous
//! look-up. A change of the tree is seen from the caller's next request.

use std::collections::{BTreeMap, BTreeSet};

use yunshu_domain::TenantCode;
use yunshu_domain::ids::OrgUnitId;
use yunshu_domain::org_unit::{OrgTree, OrgUnit};
use yunshu_domain::tenant::Tenant;
use yunshu_domain::user::{RoleBinding, Scope};
use yunshu_store::{Store, StoreError, page, records};

/// Below one bound unit: the units strictly below it and the tenants attached
/// to it or to any unit below it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitReach {
    pub below: BTreeSet<OrgUnitId>,
    pub tenants: BTreeSet<TenantCode>,
}

/// Per unit the caller is bound at, what it reaches. Empty for everyone
/// without a unit-scoped binding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrgReach {
    pub units: BTreeMap<OrgUnitId, UnitReach>,
}

impl OrgReach {
    /// Whether tenant `t` is attached at or below `bound`.
    pub fn reaches_tenant(&self, bound: &OrgUnitId, t: &TenantCode) -> bool {
        self.units.get(bound).is_some_and(|r| r.tenants.contains(t))
    }

    /// Whether `unit` lies strictly below `bound`.
    pub fn strictly_below(&self, bound: &OrgUnitId, unit: &OrgUnitId) -> bool {
        self.units
            .get(bound)
            .is_some_and(|r| r.below.contains(unit))
    }

    /// Whether `unit` is `bound` or lies below it.
    pub fn within(&self, bound: &OrgUnitId, unit: &OrgUnitId) -> bool {
        self.units.contains_key(bound) && (bound == unit || self.strictly_below(bound, unit))
    }
}

/// Every stored org unit, as a tree.
pub async fn tree(store: &dyn Store) -> Result<OrgTree, StoreError> {
    let units = page::scan_all_under::<OrgUnit>(store, &records::prefix::<OrgUnit>()).await?;
    Ok(OrgTree::new(units.into_iter().map(|(u, _)| u)))
}

/// Every stored tenant.
pub async fn tenants(store: &dyn Store) -> Result<Vec<Tenant>, StoreError> {
    let all = page::scan_all_under::<Tenant>(store, &records::prefix::<Tenant>()).await?;
    Ok(all.into_iter().map(|(t, _)| t).collect())
}

/// What the unit-scoped `bindings` reach in `tree` with `tenants` attached.
pub fn reach_in(tree: &OrgTree, tenants: &[Tenant], bindings: &[RoleBinding]) -> OrgReach {
    let mut reach = OrgReach::default();
    for b in bindings {
        let Scope::OrgUnit { unit } = b.scope() else {
            continue;
        };
        // A unit removed from the store (not possible through the API)
        // reaches nothing.
        if tree.get(unit).is_none() {
            continue;
        }
        let below = tree.below(unit);
        let attached = tenants
            .iter()
            .filter(|t| {
                t.org_unit
                    .as_ref()
                    .is_some_and(|u| u == unit || below.contains(u))
            })
            .map(|t| t.code.clone())
            .collect();
        reach.units.insert(
            unit.clone(),
            UnitReach {
                below,
                tenants: attached,
            },
        );
    }
    reach
}

/// [`reach_in`] read from the store; reads nothing for bindings without a
/// unit scope, so the common caller pays nothing.
pub async fn reach(store: &dyn Store, bindings: &[RoleBinding]) -> Result<OrgReach, StoreError> {
    if !bindings
        .iter()
        .any(|b| matches!(b.scope(), Scope::OrgUnit { .. }))
    {
        return Ok(OrgReach::default());
    }
    let tree = tree(store).await?;
    let tenants = tenants(store).await?;
    Ok(reach_in(&tree, &tenants, bindings))
}
