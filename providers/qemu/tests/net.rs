//! VPCs as network namespaces: two tenants with the same CIDR each get their
//! own namespace with the same gateway address, neither sees the
//! other's, the host's own interfaces and addresses are untouched, and
//! deleting leaves no namespace behind.

use std::net::Ipv4Addr;

use yunshu_qemu::net;

async fn host_view() -> (String, String) {
    let run = |args: &'static [&'static str]| async move {
        let out = tokio::process::Command::new("ip")
            .args(args)
            .output()
            .await
            .expect("ip");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    (
        run(&["-o", "link", "show"]).await,
        run(&["-o", "addr", "show"]).await,
    )
}

#[tokio::test]
async fn two_tenants_with_one_cidr_get_separate_namespaces_and_nothing_touches_the_host() {
    // Unique ids per run: a crashed earlier run leaves nothing this one sees.
    let run = std::process::id();
    let a = format!("vpc-test-a-{run}");
    let b = format!("vpc-test-b-{run}");
    let _cleanup = net::DeleteOnDrop(vec![a.clone(), b.clone()]);
    let before = host_view().await;

    let ns_a = net::create_vpc(&a).await.expect("vpc a");
    let ns_b = net::create_vpc(&b).await.expect("vpc b");
    assert_ne!(ns_a, ns_b);
    // Idempotent: again changes nothing and fails nothing.
    assert_eq!(net::create_vpc(&a).await.expect("again"), ns_a);
    let gw = Ipv4Addr::new(10, 0, 1, 1);
    for vpc in [&a, &b] {
        net::add_subnet(vpc, gw, 24).await.expect("subnet");
        net::add_subnet(vpc, gw, 24).await.expect("subnet again");
        assert_eq!(net::gateways(vpc).await.expect("addrs"), vec![gw]);
    }
    let listed = net::list_vpcs().await.expect("list");
    assert!(
        listed.contains(&ns_a) && listed.contains(&ns_b),
        "{listed:?}"
    );
    assert_eq!(
        host_view().await,
        before,
        "the host's links and addresses changed"
    );

    net::remove_subnet(&a, gw).await.expect("remove subnet");
    net::remove_subnet(&a, gw).await.expect("remove again");
    assert!(net::gateways(&a).await.expect("addrs").is_empty());
    assert_eq!(net::gateways(&b).await.expect("addrs"), vec![gw]);

    for vpc in [&a, &b] {
        net::delete_vpc(vpc).await.expect("delete");
        net::delete_vpc(vpc).await.expect("delete again");
    }
    let listed = net::list_vpcs().await.expect("list");
    assert!(
        !listed.contains(&ns_a) && !listed.contains(&ns_b),
        "{listed:?}"
    );
    assert_eq!(host_view().await, before);
}
