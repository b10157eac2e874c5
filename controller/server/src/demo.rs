//! Demo data for `yunshu serve --demo`: filled in with the domain model.

use crate::readiness::Readiness;
use yunshu_store::Store;

pub async fn seed_when_ready(_store: &dyn Store, _readiness: &Readiness) {}
