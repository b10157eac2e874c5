//! `GET /api/v1/systems/{number}/cost?month=YYYY-MM`: what a system is charged
//! for a month so far (SPEC §6), for the department's dashboard. The figures
//! are `workflow::cost`'s; this module owns the wire shape and who may read.

use axum::Json;
use axum::extract::{Extension, State};
use chrono::Datelike;
use serde::Deserialize;
use yunshu_auth::Principal;
use yunshu_domain::calendar::CHINA_STANDARD_TIME;
use yunshu_domain::user::Permission;
use yunshu_workflow::{self as workflow, Clock, cost};

use crate::error::ApiError;
use crate::json::{ApiPath, ApiQuery};
use crate::state::AppState;
use crate::workflow_error::workflow_error;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CostQuery {
    /// `YYYY-MM` (China Standard Time); default: this month.
    pub month: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/v1/systems/{number}/cost",
    tag = "systems",
    params(("number" = String, Path, description = "The system number"), CostQuery),
    security(("bearer" = []), ("session" = [])),
    responses(
        (status = 200, description = "The month's charge so far, by catalog item", body = cost::MonthCost),
        (status = 400, description = "MONTH_INVALID or a malformed query", body = crate::error::ErrorBody),
        (status = 401, description = "AUTH_REQUIRED: no valid credential", body = crate::error::ErrorBody),
        (status = 403, description = "FORBIDDEN: needs bill_read", body = crate::error::ErrorBody),
        (status = 404, description = "SYSTEM_NOT_FOUND", body = crate::error::ErrorBody),
    )
)]
pub(crate) async fn system_cost(
    caller: Principal,
    State(state): State<AppState>,
    ApiPath(number): ApiPath<String>,
    clock: Option<Extension<Clock>>,
    ApiQuery(q): ApiQuery<CostQuery>,
) -> Result<Json<cost::MonthCost>, ApiError> {
    let now = crate::context::now_of(clock);
    let first = match q.month.as_deref() {
        Some(m) => cost::parse_month(m).ok_or_else(|| {
            ApiError::refused(
                axum::http::StatusCode::BAD_REQUEST,
                "MONTH_INVALID",
                "month must be YYYY-MM, e.g. 2026-12.",
                "月份格式须为 YYYY-MM，例如 2026-12。",
            )
        })?,
        None => {
            let today = now.with_timezone(&CHINA_STANDARD_TIME).date_naive();
            today.with_day(1).unwrap_or(today)
        }
    };
    let system = workflow::systems::system_get(&*state.store, &caller, &number)
        .await
        .map_err(workflow_error)?;
    caller.require(Permission::BillRead, Some(system.tenant()))?;
    let orders = workflow::expansion::orders_of(&*state.store, &system.number)
        .await
        .map_err(workflow_error)?;
    let catalog = cost::catalog_for(&orders);
    // A system forced offline at the end of its usage period (002 art. 14)
    // is charged up to then only.
    let term = workflow::usage::load(&*state.store, &system.number)
        .await
        .map_err(workflow_error)?;
    let offline_at = workflow::usage::offline_since(term.as_ref().map(|(t, _)| t));
    Ok(Json(cost::month_cost(
        &orders, &catalog, first, offline_at, now,
    )))
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use crate::test_app::{App, cst, line};

    fn amount(body: &Value, measure: &str) -> u64 {
        body["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["measure"] == measure))
            .and_then(|i| i["amount_fen"].as_u64())
            .unwrap_or(0)
    }

    /// Delivered on 11 Dec 2025 00:00 CST with 2 × (4 vCPU, 8 GiB, 100 + 500
    /// GiB, 200 GiB backup); a change on 21 Dec to 3 servers; exit carried out
    /// 1 Jan. At Beijing's prices one server is 4 × 14.02 + 8 × 41.15 + 6 ×
    /// 28.60 + 2 × (backup price) a month; December has 31 days.
    #[tokio::test]
    async fn a_month_is_charged_from_delivery_piecewise_over_changes_until_reclaimed() {
        let app = App::with_users_at(cst(2025, 12, 1, 9)).await;
        let (li, wang, sun, zhou) = (
            app.login("li").await,
            app.login("wang").await,
            app.login("sun").await,
            app.login("zhou").await,
        );
        let sys = app.system_create(&li, "费用测试系统").await.body["number"]
            .as_str()
            .expect("number")
            .to_owned();
        let path = format!("/api/v1/systems/{sys}/cost?month=2025-12");
        let before = app.call("GET", &path, None, &wang).await;
        assert_eq!(before.status, StatusCode::OK, "{}", before.body);
        assert_eq!(before.body["total_fen"], 0, "nothing before delivery");
        assert!(before.body["billing_from"].is_null());

        let create =
            |lines: Value, kind: &str| json!({"kind": kind, "system": sys, "lines": lines});
        let onboard = app
            .call(
                "POST",
                "/api/v1/orders",
                Some(create(json!([line("app", 2)]), "onboarding")),
                &li,
            )
            .await;
        let id = onboard.body["id"].as_str().expect("id").to_owned();
        for (who, to) in [(&li, "submitted"), (&sun, "accepted"), (&zhou, "approved")] {
            app.step(who, &id, to).await;
        }
        // (The reconciler moves it on when the VMs run; no reconciler here.)
        app.step(&zhou, &id, "test_env_ready").await;
        app.clock.set(cst(2025, 12, 11, 0));
        app.step(&wang, &id, "delivered").await;

        // 10 days of 31 with 2 servers.
        app.clock.set(cst(2025, 12, 21, 0));
        let ten_days = app.call("GET", &path, None, &wang).await;
        assert_eq!(ten_days.status, StatusCode::OK, "{}", ten_days.body);
        let vcpu_10 = amount(&ten_days.body, "vcpu");
        // 2 servers × 4 vCPU × ¥14.02 × 10/31 = ¥36.18
        assert_eq!(vcpu_10, 3618, "{}", ten_days.body);
        assert_eq!(ten_days.body["priced"], true);
        assert_eq!(ten_days.body["catalog"], "beijing-2023");

        // A change to 3 servers from 21 Dec.
        let change = app
            .call(
                "POST",
                "/api/v1/orders",
                Some(create(json!([line("app", 3)]), "change")),
                &wang,
            )
            .await;
        assert_eq!(change.status, StatusCode::CREATED, "{}", change.body);
        let cid = change.body["id"].as_str().expect("id").to_owned();
        for (who, to) in [
            (&wang, "submitted"),
            (&sun, "accepted"),
            (&zhou, "approved"),
        ] {
            app.step(who, &cid, to).await;
        }
        // The whole month, read in January: 10 days × 2 + 11 days × 3 servers
        // = 53 server-days (the exit is not carried out: charged to the end).
        app.clock.set(cst(2026, 1, 5, 0));
        let month = app.call("GET", &path, None, &wang).await;
        // 4 × 14.02 × 53 / 31 = ¥95.88 (rounded to the fen)
        assert_eq!(amount(&month.body, "vcpu"), 9588, "{}", month.body);
        assert_eq!(month.body["billed_seconds"], 21 * 86_400);
        let units: Vec<u64> = month.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|i| i["units"].as_u64())
            .collect();
        assert_eq!(units[0], 12, "3 servers × 4 vCPU held at the end");
        let total = month.body["total_fen"].as_u64().expect("total");
        assert_eq!(
            total,
            month.body["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter_map(|i| i["amount_fen"].as_u64())
                .sum::<u64>()
        );

        // Another department cannot read it; a bad month is refused.
        let zhao = app.login("zhao").await;
        let r = app.call("GET", &path, None, &zhao).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
        let r = app
            .call(
                "GET",
                &format!("/api/v1/systems/{sys}/cost?month=2025-13"),
                None,
                &wang,
            )
            .await;
        assert_eq!(r.body["code"], "MONTH_INVALID", "{}", r.body);
        let r = app.call("GET", &path, None, &App::admin()).await;
        assert_eq!(
            r.status,
            StatusCode::NOT_FOUND,
            "the platform admin reads no tenant data"
        );
    }
}
