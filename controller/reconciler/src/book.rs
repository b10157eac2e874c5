//! The leader's book of work orders: which orders each system has and which
//! are approved, kept in memory from one full listing (at start, at each
//! resync, after a lost watch) and the store's order watch in between.
//!
//! Why: completion runs four times a second and materialization once per
//! system pass; both used to read every order ever filed, which grows with
//! the years a cloud runs (historical orders are never deleted). With the book
//! they read only the orders that matter, by key.
//!
//! The book only says *which* orders to read; their content is always read
//! from the store, so a stale entry costs a read, never a wrong decision.

use std::collections::{BTreeSet, HashMap};

use yunshu_domain::order::{OrderKind, OrderState, WorkOrder};
use yunshu_domain::{OrderId, SystemNumber};
use yunshu_store::records;
use yunshu_workflow::orders::OrderTrack;

use super::{ReconcileError, Reconciler};

#[derive(Debug, Default)]
pub struct OrderBook {
    /// Order → (its system, whether it is approved now).
    orders: HashMap<OrderId, (SystemNumber, bool)>,
    by_system: HashMap<SystemNumber, BTreeSet<OrderId>>,
}

impl OrderBook {
    /// Records `order` as it is now. An exited onboarding order is a
    /// candidate too (its reclaim may be timed) until [`OrderBook::settle`].
    pub fn upsert(&mut self, order: &WorkOrder) {
        let approved = order.state() == OrderState::Approved
            || (order.kind() == OrderKind::Onboarding && order.state() == OrderState::Exited);
        self.orders
            .insert(order.id().clone(), (order.system().clone(), approved));
        self.by_system
            .entry(order.system().clone())
            .or_default()
            .insert(order.id().clone());
    }

    /// Takes `id` off the candidates until it changes again (an exited
    /// onboarding order whose reclaim is recorded, or was never timed).
    pub fn settle(&mut self, id: &OrderId) {
        if let Some((_, candidate)) = self.orders.get_mut(id) {
            *candidate = false;
        }
    }

    /// Forgets an order that was deleted.
    pub fn remove(&mut self, id: &OrderId) {
        if let Some((system, _)) = self.orders.remove(id)
            && let Some(ids) = self.by_system.get_mut(&system)
        {
            ids.remove(id);
            if ids.is_empty() {
                self.by_system.remove(&system);
            }
        }
    }

    /// Replaces everything with a full listing.
    pub fn reset<'a>(&mut self, orders: impl IntoIterator<Item = &'a WorkOrder>) {
        self.orders.clear();
        self.by_system.clear();
        for o in orders {
            self.upsert(o);
        }
    }

    /// The orders of `system`.
    pub fn of_system(&self, system: &SystemNumber) -> Vec<OrderId> {
        self.by_system
            .get(system)
            .map(|ids| ids.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// The orders approved now (completion's candidates), in id order.
    pub fn approved(&self) -> Vec<OrderId> {
        let mut ids: Vec<OrderId> = self
            .orders
            .iter()
            .filter(|(_, (_, approved))| *approved)
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }
}

impl Reconciler {
    /// Every order of `system` with its track, read from the store.
    pub async fn orders_of(
        &self,
        system: &SystemNumber,
    ) -> Result<Vec<(WorkOrder, OrderTrack)>, ReconcileError> {
        let ids = self
            .book
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .of_system(system);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            let Some((order, _)) = records::get::<WorkOrder>(&*self.store, id.as_str()).await?
            else {
                continue;
            };
            if let Some((track, _)) = records::get::<OrderTrack>(&*self.store, id.as_str()).await? {
                out.push((order, track));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use yunshu_domain::order::OrderKind;

    use super::*;

    fn order(id: &str, system: &str) -> WorkOrder {
        let at = chrono::Utc
            .with_ymd_and_hms(2026, 3, 2, 9, 0, 0)
            .single()
            .expect("time");
        WorkOrder::new(
            id.parse().expect("id"),
            OrderKind::Onboarding,
            system.parse().expect("system"),
            "li".parse().expect("user"),
            at,
        )
    }

    #[test]
    fn orders_by_system_and_the_approved_ones() {
        let mut book = OrderBook::default();
        let a = order("WO-20260302-00000001", "110105001");
        let b = order("WO-20260302-00000002", "110105002");
        book.reset([&a, &b]);
        let system: SystemNumber = "110105001".parse().expect("system");
        assert_eq!(book.of_system(&system), vec![a.id().clone()]);
        assert!(book.approved().is_empty(), "drafts are not approved");
        book.remove(a.id());
        assert!(book.of_system(&system).is_empty());
    }
}
