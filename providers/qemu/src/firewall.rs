//! Security groups as nftables rules in a VPC's namespace. Every guest port
//! (tap) gets two chains: `in_<tap>` for what reaches the guest (ingress:
//! its groups' allow rules, then drop — default deny) and `out_<tap>` for what
//! the guest sends (egress: allowed unless its groups say otherwise). Both
//! accept the replies of connections already allowed (conntrack), so a guest
//! may call out and hear back while nothing may call in uninvited.
//!
//! A guest's DHCP and DNS with its subnet's gateway (the VPC's `dnsmasq`,
//! `crate::dhcp`) pass whatever its groups say, as a cloud's own resolver
//! does: its requests to the namespace's DHCP port and to the gateway's DNS
//! port are accepted before its egress chain, and the DHCP answers the
//! namespace itself sends it before its ingress chain (they match no
//! connection: the request went to the broadcast address).
//!
//! The whole table is rendered from the driver's state and loaded in one
//! `nft -f` transaction (delete + create), so a half-applied rule set is
//! never live and re-applying is idempotent.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::QemuError;

/// The driver's table in every VPC namespace.
pub const TABLE: &str = "yunshu";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Ingress,
    Egress,
}

/// Layer-4 match of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    Tcp,
    Udp,
    Icmp,
    Any,
}

/// One rule, its remote group already resolved to addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub direction: Direction,
    pub proto: Proto,
    /// Inclusive port range; `None` = every port.
    pub ports: Option<(u16, u16)>,
    /// CIDRs or addresses of the other side. Empty = nobody (a remote group
    /// without members), and the rule matches nothing.
    pub remote: Vec<String>,
    pub allow: bool,
    /// Lower runs first.
    pub priority: u32,
}

/// A guest's NIC and the rules of every group it is in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub tap: String,
    pub address: Ipv4Addr,
    /// Its subnet's gateway, where its DNS server answers.
    pub gateway: Option<Ipv4Addr>,
    pub rules: Vec<Rule>,
}

fn rule_line(rule: &Rule) -> Option<String> {
    if rule.remote.is_empty() {
        return None;
    }
    let side = match rule.direction {
        Direction::Ingress => "saddr",
        Direction::Egress => "daddr",
    };
    let mut line = format!("ip {side} {{ {} }}", rule.remote.join(", "));
    let l4 = match rule.proto {
        Proto::Tcp => Some("tcp"),
        Proto::Udp => Some("udp"),
        Proto::Icmp => {
            line.push_str(" meta l4proto icmp");
            None
        }
        Proto::Any => None,
    };
    if let Some(l4) = l4 {
        match rule.ports {
            Some((a, b)) if a == b => {
                let _ = write!(line, " {l4} dport {a}");
            }
            Some((a, b)) => {
                let _ = write!(line, " {l4} dport {a}-{b}");
            }
            None => {
                let _ = write!(line, " meta l4proto {l4}");
            }
        }
    }
    line.push_str(if rule.allow { " accept" } else { " drop" });
    Some(line)
}

fn chain(out: &mut String, name: &str, rules: &[&Rule], default_accept: bool) {
    let _ = writeln!(out, "  chain {name} {{");
    out.push_str("    ct state established,related accept\n");
    out.push_str("    ct state invalid drop\n");
    for rule in rules {
        if let Some(line) = rule_line(rule) {
            let _ = writeln!(out, "    {line}");
        }
    }
    out.push_str(if default_accept {
        "    accept\n"
    } else {
        "    drop\n"
    });
    out.push_str("  }\n");
}

/// The nftables script that makes the table exactly `ports`.
pub fn render(ports: &[Port]) -> String {
    // `add` then `delete` then the table: one transaction that works whether
    // or not the table exists.
    let mut out =
        format!("add table inet {TABLE}\ndelete table inet {TABLE}\ntable inet {TABLE} {{\n");
    for port in ports {
        let mut rules: Vec<&Rule> = port.rules.iter().collect();
        // Priority order; at equal priority a deny wins.
        rules.sort_by_key(|r| (r.priority, r.allow));
        let ingress: Vec<&Rule> = rules
            .iter()
            .copied()
            .filter(|r| r.direction == Direction::Ingress)
            .collect();
        let egress: Vec<&Rule> = rules
            .iter()
            .copied()
            .filter(|r| r.direction == Direction::Egress)
            .collect();
        chain(&mut out, &format!("in_{}", port.tap), &ingress, false);
        // Egress is open unless a group lists what may go out.
        let egress_open = !egress.iter().any(|r| r.allow);
        chain(&mut out, &format!("out_{}", port.tap), &egress, egress_open);
    }
    let jumps = |out: &mut String, with_egress: bool| {
        for port in ports {
            let _ = writeln!(out, "    oifname \"{0}\" jump in_{0}", port.tap);
            if with_egress {
                let _ = writeln!(out, "    iifname \"{0}\" jump out_{0}", port.tap);
            }
        }
    };
    out.push_str("  chain forward {\n    type filter hook forward priority 0; policy accept;\n");
    jumps(&mut out, true);
    out.push_str("  }\n");
    // What the namespace itself sends (its balancers, health checks, the
    // DHCP server's answers).
    out.push_str("  chain output {\n    type filter hook output priority 0; policy accept;\n");
    for port in ports {
        let _ = writeln!(
            out,
            "    oifname \"{}\" udp sport 67 udp dport 68 accept",
            port.tap
        );
    }
    jumps(&mut out, false);
    out.push_str("  }\n");
    // What guests send to the namespace itself (their gateway, a balancer).
    out.push_str("  chain input {\n    type filter hook input priority 0; policy accept;\n");
    for port in ports {
        let tap = &port.tap;
        let _ = writeln!(
            out,
            "    iifname \"{tap}\" udp sport 68 udp dport 67 accept"
        );
        if let Some(gw) = port.gateway {
            let _ = writeln!(
                out,
                "    iifname \"{tap}\" ip daddr {gw} meta l4proto {{ tcp, udp }} th dport 53 accept"
            );
        }
        let _ = writeln!(out, "    iifname \"{tap}\" jump out_{tap}");
    }
    out.push_str("  }\n}\n");
    out
}

/// The driver's NAT table in every VPC namespace (public addresses).
pub const NAT_TABLE: &str = "yunshu_nat";

/// A public address bound to a private one in the VPC: what comes in for
/// `public` goes to `private`; if `outbound`, what `private` sends out
/// through the uplink leaves as `public` (a VM's; a balancer only answers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub public: Ipv4Addr,
    pub private: Ipv4Addr,
    pub outbound: bool,
    /// A WAF in front of `private` (`crate::waf`): its address and the TCP
    /// ports that go to it instead.
    pub waf: Option<(Ipv4Addr, Vec<u16>)>,
}

/// The nftables script that makes the NAT table exactly `bindings`.
pub fn render_nat(uplink: &str, bindings: &[Binding]) -> String {
    let mut out =
        format!("add table ip {NAT_TABLE}\ndelete table ip {NAT_TABLE}\ntable ip {NAT_TABLE} {{\n");
    out.push_str(
        "  chain prerouting {\n    type nat hook prerouting priority -100; policy accept;\n",
    );
    for b in bindings {
        if let Some((waf, ports)) = &b.waf
            && !ports.is_empty()
        {
            let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
            let _ = writeln!(
                out,
                "    ip daddr {} tcp dport {{ {} }} dnat to {waf}",
                b.public,
                ports.join(", ")
            );
        }
        let _ = writeln!(out, "    ip daddr {} dnat to {}", b.public, b.private);
    }
    out.push_str("  }\n");
    out.push_str(
        "  chain postrouting {\n    type nat hook postrouting priority 100; policy accept;\n",
    );
    for b in bindings.iter().filter(|b| b.outbound) {
        let _ = writeln!(
            out,
            "    oifname \"{uplink}\" ip saddr {} snat to {}",
            b.private, b.public
        );
    }
    out.push_str("  }\n}\n");
    out
}

/// Loads `render_nat(uplink, bindings)` into namespace `ns`.
pub async fn apply_nat(ns: &str, uplink: &str, bindings: &[Binding]) -> Result<(), QemuError> {
    load(ns, &render_nat(uplink, bindings)).await
}

/// Loads `render(ports)` into namespace `ns`.
pub async fn apply(ns: &str, ports: &[Port]) -> Result<(), QemuError> {
    load(ns, &render(ports)).await
}

/// Runs an nftables script in namespace `ns` (one transaction).
async fn load(ns: &str, script: &str) -> Result<(), QemuError> {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(QemuError::io("nft (nftables)"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(script.as_bytes())
            .await
            .map_err(QemuError::io("nft stdin"))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(QemuError::io("nft"))?;
    if !out.status.success() {
        return Err(QemuError::Command {
            command: format!("nft -f (in {ns})"),
            output: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn web() -> Port {
        Port {
            tap: "t1".to_owned(),
            address: Ipv4Addr::new(10, 0, 1, 10),
            gateway: Some(Ipv4Addr::new(10, 0, 1, 1)),
            rules: vec![
                Rule {
                    direction: Direction::Ingress,
                    proto: Proto::Tcp,
                    ports: Some((80, 80)),
                    remote: vec!["0.0.0.0/0".to_owned()],
                    allow: true,
                    priority: 100,
                },
                Rule {
                    direction: Direction::Ingress,
                    proto: Proto::Tcp,
                    ports: Some((22, 22)),
                    remote: Vec::new(),
                    allow: true,
                    priority: 100,
                },
                Rule {
                    direction: Direction::Ingress,
                    proto: Proto::Any,
                    ports: None,
                    remote: vec!["10.9.0.0/16".to_owned()],
                    allow: false,
                    priority: 100,
                },
            ],
        }
    }

    #[test]
    fn ingress_is_default_deny_with_denies_first_and_empty_groups_matching_nothing() {
        let script = render(&[web()]);
        let chain = script
            .split("chain in_t1 {")
            .nth(1)
            .and_then(|c| c.split("\n  }").next())
            .expect("in chain");
        let lines: Vec<&str> = chain
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(
            lines,
            vec![
                "ct state established,related accept",
                "ct state invalid drop",
                "ip saddr { 10.9.0.0/16 } drop",
                "ip saddr { 0.0.0.0/0 } tcp dport 80 accept",
                "drop",
            ]
        );
        assert!(script.contains("oifname \"t1\" jump in_t1"));
        assert!(script.contains("iifname \"t1\" jump out_t1"));
    }

    #[test]
    fn egress_is_open_until_a_group_lists_what_may_go_out() {
        let open = render(&[web()]);
        let out = open.split("chain out_t1 {").nth(1).expect("out chain");
        assert!(
            out.split('}')
                .next()
                .is_some_and(|c| c.trim_end().ends_with("accept"))
        );
        let mut p = web();
        p.rules.push(Rule {
            direction: Direction::Egress,
            proto: Proto::Udp,
            ports: Some((53, 53)),
            remote: vec!["10.0.0.2".to_owned()],
            allow: true,
            priority: 1,
        });
        let closed = render(&[p]);
        let out = closed
            .split("chain out_t1 {")
            .nth(1)
            .and_then(|c| c.split("\n  }").next())
            .expect("out chain");
        assert!(
            out.contains("ip daddr { 10.0.0.2 } udp dport 53 accept"),
            "{out}"
        );
        assert!(out.trim_end().ends_with("drop"), "{out}");
    }

    #[test]
    fn dhcp_and_the_gateways_dns_pass_before_the_groups() {
        let script = render(&[web()]);
        let chain = |name: &str| {
            script
                .split(&format!("chain {name} {{"))
                .nth(1)
                .and_then(|c| c.split("\n  }").next())
                .map(|c| c.lines().map(str::trim).collect::<Vec<_>>())
                .unwrap_or_default()
        };
        let input = chain("input");
        let dns = "iifname \"t1\" ip daddr 10.0.1.1 meta l4proto { tcp, udp } th dport 53 accept";
        let at = |lines: &[&str], l: &str| lines.iter().position(|x| *x == l);
        let jump = at(&input, "iifname \"t1\" jump out_t1").expect("jump");
        assert!(at(&input, dns).is_some_and(|i| i < jump), "{input:?}");
        assert!(
            at(&input, "iifname \"t1\" udp sport 68 udp dport 67 accept").is_some_and(|i| i < jump),
            "{input:?}"
        );
        let output = chain("output");
        let jump = at(&output, "oifname \"t1\" jump in_t1").expect("jump");
        assert!(
            at(&output, "oifname \"t1\" udp sport 67 udp dport 68 accept")
                .is_some_and(|i| i < jump),
            "{output:?}"
        );
        // Forwarded traffic (another guest) gets no such exception.
        assert!(
            !chain("forward").iter().any(|l| l.contains("dport 6")),
            "{script}"
        );
    }

    #[test]
    fn a_waf_takes_its_ports_before_the_balancer_gets_the_rest() {
        let nat = render_nat(
            "up0",
            &[Binding {
                public: Ipv4Addr::new(198, 51, 100, 10),
                private: Ipv4Addr::new(10, 0, 1, 5),
                outbound: false,
                waf: Some((Ipv4Addr::new(169, 254, 128, 1), vec![80, 8080])),
            }],
        );
        let waf = nat
            .find("ip daddr 198.51.100.10 tcp dport { 80, 8080 } dnat to 169.254.128.1")
            .expect(&nat);
        let rest = nat
            .find("ip daddr 198.51.100.10 dnat to 10.0.1.5")
            .expect(&nat);
        assert!(waf < rest, "{nat}");
    }
}
