//! Orphans: resources a driver holds that yunshu does not know (created by hand
//! on the provider's console, or left behind by a bug). They are reported — one
//! alarm per provider and resource, naming it — and never deleted silently: the
//! provider or the management unit decides (issue 6).
//!
//! Must not delete or change anything in a driver.

use chrono::Utc;
use yunshu_domain::Text;
use yunshu_domain::alarm::{Alarm, AlarmCategory, AlarmLevel};
use yunshu_domain::ids::AlarmId;
use yunshu_domain::resource::Resource;
use yunshu_proto::v1;
use yunshu_store::records;

use super::{ReconcileError, Reconciler};

/// Lists every driver's resources and raises an alarm for each one the store
/// does not hold (and that is not already being deleted). Returns how many
/// orphans were seen.
pub async fn pass(r: &Reconciler) -> Result<usize, ReconcileError> {
    let mut seen = 0;
    for provider in r.providers.registered().await? {
        let mut client = r.providers.client(&provider).await?;
        let mut token = String::new();
        loop {
            let page = client
                .list(v1::ListRequest {
                    kind: v1::ResourceKind::Unspecified as i32,
                    page_size: 1000,
                    page_token: token.clone(),
                })
                .await
                .map_err(ReconcileError::Driver)?
                .into_inner();
            for state in page.items {
                if state.phase == v1::Phase::Deleted as i32
                    || state.phase == v1::Phase::Deleting as i32
                {
                    continue;
                }
                if records::get::<Resource>(&*r.store, &state.id)
                    .await?
                    .is_some()
                {
                    continue;
                }
                seen += 1;
                raise(r, &provider, &state).await?;
            }
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
    }
    Ok(seen)
}

pub(super) async fn raise(
    r: &Reconciler,
    provider: &str,
    state: &v1::ResourceState,
) -> Result<(), ReconcileError> {
    let invalid = |e: &dyn std::fmt::Display| ReconcileError::Invalid(e.to_string());
    let hash = yunshu_pki::sha256_hex(format!("{provider}/{}", state.id).as_bytes());
    let alarm = Alarm::new(
        AlarmId::new(format!("orphan-{}", &hash[..16])).map_err(|e| invalid(&e))?,
        Utc::now(),
        AlarmLevel::Minor,
        Text::new(format!("供应商 {provider} 存在云枢未登记的资源")).map_err(|e| invalid(&e))?,
        Text::new(format!(
            "供应商 {provider} 上的资源 {}（使用单位 {}）不在云枢的资源记录中。云枢不会自动删除，请核实后处理。",
            state.id,
            if state.tenant.is_empty() { "未知" } else { &state.tenant }
        ))
        .map_err(|e| invalid(&e))?,
    )
    .about(
        AlarmCategory::Capacity,
        None,
        Some(Text::new(format!("driver/{provider}/{}", state.id)).map_err(|e| invalid(&e))?),
    );
    yunshu_workflow::alarms::raise(&*r.store, &super::actor(), &alarm)
        .await
        .map_err(|e| invalid(&e))?;
    Ok(())
}
