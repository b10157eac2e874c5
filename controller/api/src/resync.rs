//! `POST /api/v1/admin/resync`: ask the leader's reconciler to re-check every
//! resource now (after a provider incident, say), instead of at its next
//! interval. The re-check is low-priority work: a newly approved order still
//! goes first.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use yunshu_auth::Principal;
use yunshu_domain::user::Permission;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ResyncAccepted {
    pub queued: bool,
}

#[utoipa::path(
    post,
    path = "/api/v1/admin/resync",
    tag = "admin",
    security(("bearer" = []), ("session" = [], "csrf" = [])),
    responses(
        (status = 202, description = "Queued on this replica's reconciler", body = ResyncAccepted),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs settings_manage", body = crate::error::ErrorBody),
        (status = 409, description = "NOT_LEADER: send it to the leading replica", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn resync(
    caller: Principal,
    State(state): State<AppState>,
) -> Result<(StatusCode, Json<ResyncAccepted>), ApiError> {
    caller.require(Permission::SettingsManage, None)?;
    let leads = state.capacity.read().map(|s| s.leader).unwrap_or(false);
    if !leads {
        return Err(ApiError::refused(
            StatusCode::CONFLICT,
            "NOT_LEADER",
            "This replica does not run the reconciler; send the request to the leader.",
            "本实例不是主实例，未运行调和器，请向主实例发送请求。",
        ));
    }
    state.resync.notify_one();
    Ok((StatusCode::ACCEPTED, Json(ResyncAccepted { queued: true })))
}
