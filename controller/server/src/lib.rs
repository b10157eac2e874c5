//! The yunshu controller process: `yunshu serve` assembles the crates — opens
//! the store, starts the readiness monitor, loads the driver PKI and checks the
//! drivers, campaigns for leadership and runs the reconciler and the workflow
//! timers while this replica leads, seeds the demo data when asked, and serves
//! the API and the portal until told to stop.
//!
//! Owns the process: configuration, background tasks and their lifetimes, and
//! which replica does the leader's work. Holds no handler, no business rule and
//! no driver call of its own: those are `yunshu_api`'s, `yunshu_workflow`'s and
//! `yunshu_reconciler`'s.

mod demo;
mod readiness;
mod serve;
pub mod store_key;
pub mod tls;

pub use serve::{ServeConfig, ServeError, serve};
pub use yunshu_api::VERSION;
