//! What each provider's driver says it can build (`GetInfo` → `kinds`),
//! recorded by the reconciler's health check (`provider_offer/<provider>`) and
//! read when an order is approved: an order needing a kind its provider lacks
//! is refused then, naming the kinds, instead of waiting forever after
//! (issue 14: "refused at approval with a reason, never left hanging").
//!
//! A provider whose driver has not answered yet has no record: nothing is
//! refused on a guess; the reconciler explains the wait on the order if the
//! kind is still missing once it knows.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use yunshu_domain::order::{OrderKind, OrderState, WorkOrder};
use yunshu_domain::resource::ResourceKind;
use yunshu_domain::{ProviderId, Record};
use yunshu_store::{PageRequest, Store, StoreError, Txn, records};

use crate::WorkflowError;

/// The kinds one provider's driver declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderOffer {
    pub provider: String,
    pub kinds: BTreeSet<ResourceKind>,
    /// `name version` of the driver that said so.
    pub driver: String,
    pub checked_at: DateTime<Utc>,
}

impl Record for ProviderOffer {
    const KIND: &'static str = "provider_offer";
    const SCHEMA_VERSION: u32 = 1;
    fn id(&self) -> String {
        self.provider.clone()
    }
}

/// Records `offer` unless the same kinds and driver are on record already
/// (the health check runs every few seconds; the store keeps no echo of it).
/// Returns whether it wrote.
pub async fn record(store: &dyn Store, offer: &ProviderOffer) -> Result<bool, StoreError> {
    let current = records::get::<ProviderOffer>(store, &offer.provider).await?;
    let revision = match &current {
        Some((old, _)) if old.kinds == offer.kinds && old.driver == offer.driver => {
            return Ok(false);
        }
        Some((_, rev)) => *rev,
        None => 0,
    };
    let key = records::key::<ProviderOffer>(&offer.provider);
    let txn = Txn::new()
        .when_mod_revision(key.clone(), revision)
        .put(key, records::encode(offer));
    Ok(store.txn(txn).await?.is_committed())
}

/// Every recorded offer.
pub async fn all(store: &dyn Store) -> Result<Vec<ProviderOffer>, WorkflowError> {
    let (offers, _) = records::list::<ProviderOffer>(store, PageRequest::default())
        .await
        .map_err(WorkflowError::store("provider offer list"))?;
    Ok(offers)
}

/// The provider that carries out `order`: the one it names, else the last one
/// named by an order of its system that is in force (a change order usually
/// names none).
fn provider_of<'a>(order: &'a WorkOrder, others: &'a [WorkOrder]) -> Option<&'a ProviderId> {
    if let Some(p) = &order.request().provider {
        return Some(p);
    }
    others
        .iter()
        .filter(|o| o.id() != order.id() && o.system() == order.system())
        .filter(|o| {
            !matches!(
                o.state(),
                OrderState::Draft
                    | OrderState::Submitted
                    | OrderState::Accepted
                    | OrderState::ExpertReview
                    | OrderState::Refused
                    | OrderState::Rejected
            )
        })
        .filter_map(|o| o.request().provider.as_ref().map(|p| (o.created_at(), p)))
        .max_by_key(|(at, _)| *at)
        .map(|(_, p)| p)
}

/// Refuses `order` if the kinds it needs are not all offered: by its
/// provider (named, else the one its system's orders, `system_orders`, name
/// last), or — no provider named anywhere — by any one provider. Only
/// providers whose driver has answered are judged.
pub async fn check(
    store: &dyn Store,
    order: &WorkOrder,
    system_orders: &[(WorkOrder, crate::orders::OrderTrack)],
) -> Result<(), WorkflowError> {
    if order.kind() == OrderKind::Exit {
        return Ok(());
    }
    let needed = order.request().kinds();
    if needed.is_empty() {
        return Ok(());
    }
    let offers = all(store).await?;
    if offers.is_empty() {
        return Ok(());
    }
    let others: Vec<WorkOrder> = system_orders.iter().map(|(o, _)| o.clone()).collect();
    let lacking = |offer: &ProviderOffer| -> Vec<ResourceKind> {
        needed.difference(&offer.kinds).copied().collect()
    };
    match provider_of(order, &others) {
        Some(p) => {
            let Some(offer) = offers.iter().find(|o| o.provider == p.as_str()) else {
                return Ok(());
            };
            let missing = lacking(offer);
            if missing.is_empty() {
                Ok(())
            } else {
                Err(WorkflowError::ProviderLacksKinds {
                    provider: p.to_string(),
                    kinds: missing,
                })
            }
        }
        None => {
            let best = offers
                .iter()
                .map(|o| (lacking(o), o))
                .min_by_key(|(m, o)| (m.len(), o.provider.clone()));
            match best {
                Some((missing, o)) if !missing.is_empty() => {
                    Err(WorkflowError::ProviderLacksKinds {
                        provider: o.provider.clone(),
                        kinds: missing,
                    })
                }
                _ => Ok(()),
            }
        }
    }
}
