//! The kit against an in-memory fake driver: a correct one passes every check, and
//! deliberately broken ones fail exactly where they are broken.

mod fake;

use std::time::Duration;

use fake::Faults;
use yunshu_conformance::{Options, Report, names, run};

fn options() -> Options {
    Options {
        // The fake converges at once; a short patience keeps a failing run short.
        patience: Duration::from_secs(5),
        ..Options::default()
    }
}

async fn run_against(faults: Faults) -> Report {
    let report = run(fake::client(faults).await, &options()).await;
    println!("{faults:?}\n{report}");
    report
}

fn failed(report: &Report, name: &str) -> bool {
    report.check(name).is_some_and(|c| !c.passed)
}

#[tokio::test]
async fn a_correct_driver_passes_every_check() {
    let report = run_against(Faults::default()).await;
    let ran: Vec<&str> = report.checks.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(ran, names::ALL);
    assert!(report.passed(), "{report}");
    // The fake declares VM, VPC and SUBNET: the other eight kinds are skipped,
    // the reference checks run on subnet.vpc and vm.nics[].subnet.
    for name in [
        names::LIFECYCLE_VM,
        names::LIFECYCLE_VPC,
        names::LIFECYCLE_SUBNET,
        names::DEPENDENCY_MISSING_REFUSED,
        names::DELETE_IN_USE_REFUSED,
    ] {
        assert!(
            report.check(name).is_some_and(|c| c.passed),
            "{name}: {report}"
        );
    }
    let skipped: Vec<&str> = report
        .checks
        .iter()
        .filter(|c| c.skipped)
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        skipped,
        [
            names::LIFECYCLE_SECURITY_GROUP,
            names::LIFECYCLE_BARE_METAL,
            names::LIFECYCLE_VOLUME,
            names::LIFECYCLE_EIP,
            names::LIFECYCLE_LOAD_BALANCER,
            names::LIFECYCLE_WAF_POLICY,
            names::LIFECYCLE_BACKUP_POLICY,
            names::LIFECYCLE_SNAPSHOT,
        ]
    );
    assert!(
        report
            .check(names::LIFECYCLE_EIP)
            .is_some_and(|c| c.detail.contains("does not declare RESOURCE_KIND_EIP")),
        "{report}"
    );
    assert!(
        report
            .to_string()
            .ends_with("20 passed, 0 failed, 8 skipped\n")
    );
}

#[tokio::test]
async fn a_driver_ignoring_references_fails_the_reference_checks() {
    let report = run_against(Faults {
        ignore_references: true,
        ..Faults::default()
    })
    .await;
    let missing = report
        .check(names::DEPENDENCY_MISSING_REFUSED)
        .expect("ran");
    assert!(missing.failed(), "{report}");
    assert!(
        missing.detail.contains("subnet.vpc") && missing.detail.contains("got success"),
        "{}",
        missing.detail
    );
    let in_use = report.check(names::DELETE_IN_USE_REFUSED).expect("ran");
    assert!(in_use.failed(), "{report}");
    assert!(
        in_use.detail.contains("RESOURCE_IN_USE") || in_use.detail.contains("got success"),
        "{}",
        in_use.detail
    );
    // Everything else still holds.
    assert_eq!(report.failed_count(), 2, "{report}");
}

/// The power state (proto/README.md; seed 002 art. 13, 14): a driver that
/// keeps a VM running when asked to power it off fails `lifecycle_vm`, and
/// nothing else.
#[tokio::test]
async fn a_driver_ignoring_the_power_state_fails_the_vm_lifecycle() {
    let report = run_against(Faults {
        ignore_power: true,
        ..Faults::default()
    })
    .await;
    let vm = report.check(names::LIFECYCLE_VM).expect("ran");
    assert!(vm.failed(), "{report}");
    assert!(vm.detail.contains("PHASE_STOPPED"), "{}", vm.detail);
    assert_eq!(report.failed_count(), 1, "{report}");
}

#[tokio::test]
async fn delete_that_errors_on_missing_resources_fails() {
    let report = run_against(Faults {
        delete_missing_errors: true,
        ..Faults::default()
    })
    .await;
    assert!(failed(&report, names::DELETE_IDEMPOTENT), "{report}");
    // Its error has no ErrorInfo either.
    assert!(failed(&report, names::ERRORS_CARRY_REASON), "{report}");
    assert!(!report.passed());
    assert!(
        report
            .check(names::LIST_COMPLETE_PAGINATED)
            .is_some_and(|c| c.passed)
    );
}

#[tokio::test]
async fn list_that_drops_items_at_page_boundaries_fails() {
    let report = run_against(Faults {
        list_drops_after_token: true,
        ..Faults::default()
    })
    .await;
    let list = report.check(names::LIST_COMPLETE_PAGINATED).expect("ran");
    assert!(!list.passed, "{report}");
    assert!(list.detail.contains("missing"), "{}", list.detail);
    assert!(
        report
            .check(names::DELETE_IDEMPOTENT)
            .is_some_and(|c| c.passed)
    );
}

#[tokio::test]
async fn accepting_an_invalid_spec_fails() {
    let report = run_against(Faults {
        accept_zero_vcpu: true,
        ..Faults::default()
    })
    .await;
    let check = report.check(names::INVALID_SPEC_REJECTED).expect("ran");
    assert!(!check.passed, "{report}");
    assert!(check.detail.contains("0 vCPU"), "{}", check.detail);
}

#[tokio::test]
async fn binary_exit_code_follows_the_report() {
    let bin = env!("CARGO_BIN_EXE_yunshu-conformance");
    for (faults, code, summary) in [
        (Faults::default(), 0, "20 passed, 0 failed, 8 skipped"),
        (
            Faults {
                list_drops_after_token: true,
                ..Faults::default()
            },
            1,
            "19 passed, 1 failed, 8 skipped",
        ),
    ] {
        let addr = fake::serve(faults).await;
        let out = tokio::process::Command::new(bin)
            .args([
                "--endpoint",
                &format!("http://{addr}"),
                "--insecure-plaintext",
                "--patience-secs",
                "5",
            ])
            .output()
            .await
            .expect("run binary");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{stdout}\n{stderr}");
        assert!(stdout.lines().any(|l| l == summary), "{stdout}");
        assert!(stderr.contains("WARNING: --insecure-plaintext"), "{stderr}");
    }
}

#[tokio::test]
async fn tls_flags_are_required_without_plaintext() {
    let bin = env!("CARGO_BIN_EXE_yunshu-conformance");
    let out = tokio::process::Command::new(bin)
        .args(["--endpoint", "https://127.0.0.1:1"])
        .output()
        .await
        .expect("run binary");
    assert_ne!(out.status.code(), Some(0));
}
