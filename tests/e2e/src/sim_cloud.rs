//! What most end-to-end tests of a system's life start from: a controller in
//! this process, the simulator driver registered with it over mTLS, the test
//! people, and a system whose onboarding order is approved and provisioned.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use yunshu_driver_sdk::EventLog;
use yunshu_sim::{Sim, SimConfig};

use crate::{Controller, People, RunningDriver, eventually};

/// A controller with the simulator (`sim`, demo data centre) and the people.
pub struct SimCloud {
    pub controller: Controller,
    pub people: People,
    _driver: RunningDriver,
}

/// One server line of `quantity` arm64 VMs named `name`, with a data disk and
/// `backup_gib` of backup.
pub fn vm_line(name: &str, quantity: u32, backup_gib: u32) -> Value {
    json!({
        "server": {
            "server_name": name, "network_area": "gov_extranet", "form": "vm",
            "architecture": "arm64", "vcpu": 4, "memory_gib": 8, "system_disk_gib": 50,
            "data_disk_gib": 100, "os": "麒麟 V10", "purpose": "应用服务器",
            "backup_gib": backup_gib
        },
        "quantity": quantity
    })
}

/// The items of `items` of `kind` not deleted.
pub fn live_of(items: &[Value], kind: &str) -> Vec<Value> {
    items
        .iter()
        .filter(|r| r["kind"] == kind && r["phase"] != "deleted")
        .cloned()
        .collect()
}

impl SimCloud {
    /// Registers the simulator with `controller` and creates the people.
    pub async fn start(controller: Controller) -> Self {
        let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
        let sim = Sim::new(SimConfig::demo(), log.sink()).expect("simulator");
        let token = controller.token("sim").await;
        let driver =
            RunningDriver::start(Arc::new(sim), log, &controller.url, "sim", Some(token)).await;
        let people = People::create(&controller.url, &controller.admin_token).await;
        SimCloud {
            controller,
            people,
            _driver: driver,
        }
    }

    /// Moves `order` to `to` as `who` (a bearer token), with a reason.
    pub async fn step(&self, who: &str, order: &str, to: &str) -> Value {
        let (s, body) = self
            .controller
            .api(
                "POST",
                &format!("/api/v1/orders/{order}/transitions"),
                who,
                Some(json!({"to": to, "reason": "ok"})),
            )
            .await;
        assert_eq!(s, 200, "{to}: {body}");
        body
    }

    /// The order as the department sees it.
    pub async fn order(&self, order: &str) -> Value {
        self.controller
            .api(
                "GET",
                &format!("/api/v1/orders/{order}"),
                &self.people.wang,
                None,
            )
            .await
            .1
    }

    /// A new system `name` with an onboarding order on the simulator under
    /// `policy` for `lines`, submitted, accepted, approved and provisioned
    /// (`test_env_ready`): (system number, order id).
    pub async fn provisioned(&self, name: &str, policy: &str, lines: Value) -> (String, String) {
        let p = &self.people;
        let system = self.controller.create_system(&p.wang, name).await;
        let (s, body) = self
            .controller
            .api(
                "POST",
                "/api/v1/orders",
                &p.wang,
                Some(
                    json!({"kind": "onboarding", "system": system, "provider": "sim",
                            "policy": policy, "lines": lines}),
                ),
            )
            .await;
        assert_eq!(s, 201, "{body}");
        let order = body["id"].as_str().expect("id").to_owned();
        for (who, to) in [
            (&p.wang, "submitted"),
            (&p.sun, "accepted"),
            (&p.zhou, "approved"),
        ] {
            self.step(who, &order, to).await;
        }
        let ready = eventually(Duration::from_secs(30), || async {
            self.order(&order).await["state"] == "test_env_ready"
        })
        .await;
        assert!(ready, "not provisioned: {}", self.order(&order).await);
        (system, order)
    }

    /// The system's resources as the department sees them.
    pub async fn resources(&self, system: &str) -> Vec<Value> {
        let (s, res) = self
            .controller
            .api(
                "GET",
                &format!("/api/v1/systems/{system}/resources"),
                &self.people.wang,
                None,
            )
            .await;
        assert_eq!(s, 200, "{res}");
        res["items"].as_array().cloned().unwrap_or_default()
    }

    /// Whether, within 30 s, the system has `count` VMs, all in `phase`.
    pub async fn vms_become(&self, system: &str, count: usize, phase: &str) -> bool {
        eventually(Duration::from_secs(30), || async {
            let vms = live_of(&self.resources(system).await, "vm");
            vms.len() == count && vms.iter().all(|v| v["phase"] == phase)
        })
        .await
    }
}
