//! The driver's own rules, offline: a BMC that never answers (a closed
//! port) and resources put straight into the state directory or the map.

use yunshu_driver_sdk::EventLog;
use yunshu_proto::errors::reason;

use super::*;
use crate::redfish::Power;

/// A driver whose one BMC (`rack1`) refuses connections, with `records`
/// in its state directory before it opens (adopted, as after a restart).
async fn driver_with(dir: &std::path::Path, records: &[Record]) -> RedfishDriver {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let password = dir.join("password");
    std::fs::write(&password, "pw").expect("password");
    let text = format!(
        r#"
state_dir = {state:?}
[images]
"img" = "http://127.0.0.1:1/img.iso"
[[bmcs]]
name = "rack1"
url = "https://127.0.0.1:{port}"
username = "admin"
password_file = {password:?}
zone = "z"
network_area = "a"
clock_mhz = 2600
"#,
        state = dir.join("state"),
    );
    let config = Config::parse(&text, false).expect("config");
    let store = Store::open(&config.state_dir).expect("store");
    for r in records {
        store.save(r).expect("save");
    }
    RedfishDriver::open(config, EventLog::new(64).sink())
        .await
        .expect("open")
}

fn server(id: &str, phase: v1::Phase, nics: &[&str]) -> Record {
    let mut state = v1::ResourceState {
        kind: K::BareMetal as i32,
        id: id.to_owned(),
        generation: 1,
        observed_generation: 1,
        phase: phase as i32,
        placement: Some(v1::Placement {
            host: "rack1-sys1".to_owned(),
            ..Default::default()
        }),
        spec: Some(v1::ResourceSpec {
            spec: Some(v1::resource_spec::Spec::BareMetal(v1::BareMetalSpec {
                arch: v1::Architecture::X8664 as i32,
                image: "img".to_owned(),
                nics: nics
                    .iter()
                    .map(|s| v1::Nic {
                        subnet: (*s).to_owned(),
                        ip: String::new(),
                    })
                    .collect(),
                ..Default::default()
            })),
        }),
        ..Default::default()
    };
    state.outputs.insert("bmc".to_owned(), "rack1".to_owned());
    state.outputs.insert("system".to_owned(), "sys1".to_owned());
    Record {
        state,
        booted: true,
    }
}

fn reason_of(s: &Status) -> String {
    reason(s).map(|r| r.reason).unwrap_or_default()
}

fn request(kind: K, id: &str, spec: v1::resource_spec::Spec, host: &str) -> v1::ApplyRequest {
    v1::ApplyRequest {
        kind: kind as i32,
        id: id.to_owned(),
        generation: 1,
        idempotency_key: format!("{id}-1"),
        spec: Some(v1::ResourceSpec { spec: Some(spec) }),
        placement: Some(v1::Placement {
            host: host.to_owned(),
            ..Default::default()
        }),
        tenant: "t".to_owned(),
    }
}

#[tokio::test]
async fn a_server_whose_bmc_never_answered_is_not_forgotten_on_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = driver_with(dir.path(), &[server("bm-1", v1::Phase::Running, &[])]).await;
    let err = d
        .delete(K::BareMetal, "bm-1")
        .await
        .expect_err("the system may be on: not released");
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    assert_eq!(reason_of(&err), reasons::HOST_DOWN);
    let kept = d.get(K::BareMetal, "bm-1").await.expect("get");
    assert_eq!(
        kept.map(|s| s.phase),
        Some(v1::Phase::Deleting as i32),
        "kept, DELETING, for the next delete"
    );
    assert_eq!(d.free_hosts().await, Vec::<String>::new());
}

#[tokio::test]
async fn a_placement_on_a_silent_bmc_is_host_down_not_invalid() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = driver_with(dir.path(), &[]).await;
    let spec = v1::resource_spec::Spec::BareMetal(v1::BareMetalSpec {
        arch: v1::Architecture::X8664 as i32,
        image: "img".to_owned(),
        ..Default::default()
    });
    let err = d
        .apply(&request(K::BareMetal, "bm-1", spec.clone(), "rack1-sys1"))
        .await
        .expect_err("down");
    assert_eq!(reason_of(&err), reasons::HOST_DOWN, "{err:?}");
    let err = d
        .apply(&request(K::BareMetal, "bm-1", spec, "rack9-sys1"))
        .await
        .expect_err("unknown");
    assert_eq!(reason_of(&err), reasons::PLACEMENT_INVALID, "{err:?}");
}

#[tokio::test]
async fn convergence_never_overwrites_a_delete() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut deleting = server("bm-1", v1::Phase::Deleting, &[]);
    deleting.state.observed_generation = 0;
    let d = driver_with(dir.path(), &[deleting]).await;
    // A poller step that read the record before the delete began.
    d.converged("bm-1", 1, Power::On).await;
    let state = d
        .get(K::BareMetal, "bm-1")
        .await
        .expect("get")
        .expect("kept");
    assert_eq!(state.phase, v1::Phase::Deleting as i32);
}

#[tokio::test]
async fn a_deleting_server_does_not_keep_its_subnet_in_use() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vpc = v1::resource_spec::Spec::Vpc(v1::VpcSpec {
        cidr: "10.0.0.0/16".to_owned(),
    });
    let subnet = v1::resource_spec::Spec::Subnet(v1::SubnetSpec {
        vpc: "vpc-1".to_owned(),
        cidr: "10.0.1.0/24".to_owned(),
        gateway: String::new(),
    });
    let check = |phase: v1::Phase| {
        let dir = dir.path().join(format!("{phase:?}"));
        let (vpc, subnet) = (vpc.clone(), subnet.clone());
        async move {
            std::fs::create_dir_all(&dir).expect("dir");
            let d = driver_with(&dir, &[server("bm-1", phase, &["sn-1"])]).await;
            d.apply(&request(K::Vpc, "vpc-1", vpc, ""))
                .await
                .expect("vpc");
            d.apply(&request(K::Subnet, "sn-1", subnet, ""))
                .await
                .expect("subnet");
            d.delete(K::Subnet, "sn-1").await
        }
    };
    let err = check(v1::Phase::Running).await.expect_err("in use");
    assert_eq!(reason_of(&err), reasons::RESOURCE_IN_USE);
    let gone = check(v1::Phase::Deleting).await.expect("not live: no hold");
    assert_eq!(gone.map(|s| s.phase), Some(v1::Phase::Deleted as i32));
}
