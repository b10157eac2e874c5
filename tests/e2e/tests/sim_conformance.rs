//! The simulator passes the driver conformance kit over real mutual TLS on
//! loopback: a real controller bootstraps it with a one-time token, the kit
//! connects with a controller client certificate.

use std::sync::Arc;
use std::time::Duration;

use yunshu_driver_sdk::EventLog;
use yunshu_e2e::{Controller, RunningDriver};
use yunshu_sim::{Delays, Sim, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_passes_the_conformance_kit_over_mtls() {
    let controller = Controller::start(Duration::from_secs(3600)).await;
    let mut config = SimConfig::demo();
    // Short but non-zero delays: the kit must see PROVISIONING turn into RUNNING.
    config.delays = Delays::uniform(30);
    let log = EventLog::new(yunshu_driver_sdk::events::DEFAULT_CAPACITY);
    let sim = Sim::new(config, log.sink()).expect("simulator");
    let token = controller.token("sim").await;
    let driver =
        RunningDriver::start(Arc::new(sim), log, &controller.url, "sim", Some(token)).await;

    let client = driver.client(&controller, "sim").await;
    let report = yunshu_conformance::run(client, &yunshu_conformance::Options::default()).await;
    println!("{report}");
    assert!(report.passed(), "{report}");
    // The simulator declares all eleven kinds: every check runs, none is
    // skipped for want of a kind (lifecycle of each kind, dependency and
    // in-use refusals over the whole reference graph).
    assert_eq!(report.skipped_count(), 0, "{report}");
    assert!(report.checks.len() >= 28, "{report}");
}
