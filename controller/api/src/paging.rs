//! The paging parameters every list endpoint takes: the previous page's
//! cursor and a limit (clamped by `yunshu_store::page::limit`).

use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The previous page's `next`.
    pub after: Option<String>,
    pub limit: Option<usize>,
}
