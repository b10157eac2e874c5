//! One module per page.

pub mod admin;
pub mod audit;
pub mod capacity;
pub mod dashboard;
pub mod login;
pub mod order_detail;
pub mod order_new;
pub mod profile;
pub mod review;
pub mod system_detail;
pub mod system_new;
