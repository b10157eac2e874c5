//! WAF policies: an nginx with ModSecurity and the OWASP CRS in front of
//! each load balancer a policy protects (`crate::waf` holds the process and
//! the configuration, and why it sits where it does).
//!
//! A target is a load balancer, or a public IP bound to one (which means
//! that balancer); a public IP bound to a VM, or a target of another kind,
//! is refused: on this driver a WAF protects load balancers. A public IP
//! not bound yet is accepted and protects nothing until it is bound to a
//! balancer. One balancer has one WAF: a second policy reaching the same
//! balancer is refused.
//!
//! Served only when the Debian packages are installed (checked when the
//! driver starts, [`detect`]); otherwise `waf_policy` is not declared and
//! the controller refuses orders needing one at approval.
//!
//! The nginx of each protected balancer lives in `waf/<balancer>/` of the
//! state directory (its configuration, pid file, `audit.log`, its address
//! and the VPC it is in). `sync_wafs` makes those directories match the
//! policies and balancers (started, reloaded when their configuration
//! changes, left running — adopted — when it does not, stopped and removed
//! when no policy reaches their balancer); it runs inside `sync_edges`,
//! which then sends the public IPs' HTTP ports to the WAFs' addresses.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use yunshu_driver_sdk::cidr::Cidr;
use yunshu_proto::errors::{reasons, status};
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1::{self, ResourceKind as K, resource_spec::Spec};

use super::network::vpc_of_subnet;
use super::{Entry, QemuDriver, Resources, internal, invalid, missing, spec_of};
use crate::waf::{self, Packages, Policy, Site};
use crate::{QemuError, net};

/// The WAFs' own addresses in the VPC namespaces (link-local; the uplink
/// uses 169.254.0.1, so the upper half is free).
const FIRST_ADDRESS: u32 = u32::from_be_bytes([169, 254, 128, 1]);
const LAST_ADDRESS: u32 = u32::from_be_bytes([169, 254, 255, 254]);

/// The packages a WAF needs, or `None` (logged) if any is missing.
pub(super) fn detect() -> Option<Packages> {
    match Packages::detect() {
        Ok(p) => {
            tracing::info!(nginx = %p.nginx.display(), "WAF packages present: waf_policy served");
            Some(p)
        }
        Err(missing) => {
            tracing::warn!(
                %missing,
                "WAF packages missing: waf_policy not declared (install nginx, \
                 libnginx-mod-http-modsecurity and modsecurity-crs)"
            );
            None
        }
    }
}

fn waf_spec(request: &v1::ApplyRequest) -> Option<&v1::WafPolicySpec> {
    match spec_of(request)? {
        Spec::WafPolicy(w) => Some(w),
        _ => None,
    }
}

/// What a target means: `Ok(Some(balancer))`, `Ok(None)` for a public IP
/// bound to nothing yet, `Err` for what a WAF cannot protect here.
fn balancer_of(resources: &Resources, target: &str) -> Result<Option<String>, Status> {
    if QemuDriver::get_entry(resources, K::LoadBalancer, target).is_some() {
        return Ok(Some(target.to_owned()));
    }
    let Some(eip) = QemuDriver::get_entry(resources, K::Eip, target) else {
        return Err(missing("eip or load_balancer", target));
    };
    let bound = match spec_of(&eip.request) {
        Some(Spec::Eip(e)) => e.bind_to.clone(),
        _ => String::new(),
    };
    if bound.is_empty() {
        Ok(None)
    } else if QemuDriver::get_entry(resources, K::LoadBalancer, &bound).is_some() {
        Ok(Some(bound))
    } else {
        Err(invalid(format!(
            "public IP {target} is bound to {bound}, not to a load balancer: \
             on this driver a WAF protects load balancers"
        )))
    }
}

/// The balancers a policy reaches now (targets that cannot be resolved any
/// more are left out).
fn balancers(resources: &Resources, spec: &v1::WafPolicySpec) -> Vec<String> {
    let mut out: Vec<String> = spec
        .targets
        .iter()
        .filter_map(|t| balancer_of(resources, t).ok().flatten())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The nginx side of a checked spec.
fn policy_of(spec: &v1::WafPolicySpec) -> Result<Policy, Status> {
    let mut rule_files = Vec::new();
    for r in &spec.rule_sets {
        let files = waf::rule_files(r).ok_or_else(|| {
            invalid(format!(
                "unknown WAF rule set {r:?}: this driver knows owasp-crs-4/ sqli, xss, \
                 rce, lfi, rfi, scanner and protocol"
            ))
        })?;
        rule_files.extend(files.iter().copied());
    }
    let block = match v1::WafMode::try_from(spec.mode) {
        Ok(v1::WafMode::Block) => true,
        Ok(v1::WafMode::Detect) => false,
        _ => return Err(invalid("waf_policy.mode must be block or detect")),
    };
    let cidrs = |list: &[String], what: &str| -> Result<Vec<String>, Status> {
        list.iter()
            .map(|c| {
                Cidr::parse(c)
                    .map(|_| c.clone())
                    .map_err(|e| invalid(format!("{what} {c:?}: {e}")))
            })
            .collect()
    };
    let cc_limit = match &spec.cc_limit {
        Some(cc) if cc.requests == 0 || cc.period_seconds == 0 => {
            return Err(invalid(
                "waf_policy.cc_limit: requests and period_seconds must be at least 1",
            ));
        }
        Some(cc) => Some((cc.requests, cc.period_seconds)),
        None => None,
    };
    Ok(Policy {
        block,
        rule_files,
        allow: cidrs(&spec.allow_cidrs, "allow_cidrs")?,
        deny: cidrs(&spec.deny_cidrs, "deny_cidrs")?,
        cc_limit,
    })
}

/// A running WAF: where nginx listens and the balancer ports it takes.
pub(super) struct Front {
    pub address: Ipv4Addr,
    pub ports: Vec<u16>,
}

impl QemuDriver {
    fn waf_root(&self) -> PathBuf {
        self.inner.config.state_dir.join("waf")
    }

    /// Checks a WAF policy against what exists.
    fn check_waf(&self, resources: &Resources, request: &v1::ApplyRequest) -> Result<(), Status> {
        let Some(spec) = waf_spec(request) else {
            return Err(invalid("not a WAF policy"));
        };
        if self.inner.waf.is_none() {
            return Err(status(
                Code::InvalidArgument,
                reasons::KIND_UNSUPPORTED,
                "the WAF packages (nginx, libnginx-mod-http-modsecurity, modsecurity-crs) \
                 are not installed on this host",
            ));
        }
        policy_of(spec)?;
        if spec.targets.iter().any(String::is_empty) {
            return Err(invalid("waf_policy.targets: empty id"));
        }
        let mut mine = Vec::new();
        for t in &spec.targets {
            if let Some(lb) = balancer_of(resources, t)? {
                mine.push(lb);
            }
        }
        for e in resources.values() {
            let Some(other) = waf_spec(&e.request) else {
                continue;
            };
            if e.request.id == request.id {
                continue;
            }
            if let Some(lb) = balancers(resources, other)
                .into_iter()
                .find(|lb| mine.contains(lb))
            {
                return Err(invalid(format!(
                    "load balancer {lb} is already protected by WAF policy {}",
                    e.request.id
                )));
            }
        }
        Ok(())
    }

    /// The observed state of a WAF policy: what it loads and protects.
    pub(super) fn waf_state(
        &self,
        resources: &Resources,
        request: &v1::ApplyRequest,
    ) -> v1::ResourceState {
        let mut state = self.state_of(request, v1::Phase::Running, "");
        let Some(spec) = waf_spec(request) else {
            return state;
        };
        let o = &mut state.outputs;
        o.insert(
            "mode".to_owned(),
            if spec.mode == v1::WafMode::Block as i32 {
                "block"
            } else {
                "detect"
            }
            .to_owned(),
        );
        o.insert("rule_sets".to_owned(), spec.rule_sets.join(","));
        if let Ok(policy) = policy_of(spec) {
            o.insert("rule_files".to_owned(), policy.rule_files.join(","));
        }
        let protects = balancers(resources, spec);
        for lb in &protects {
            let dir = self.waf_root().join(lb);
            o.insert(
                format!("audit_log.{lb}"),
                dir.join("audit.log").display().to_string(),
            );
            if let Ok(a) = std::fs::read_to_string(dir.join("address")) {
                o.insert(format!("address.{lb}"), a.trim().to_owned());
            }
        }
        o.insert("protects".to_owned(), protects.join(","));
        if self.inner.waf.is_none() {
            state.message = "the WAF packages are not installed: nothing is filtered".to_owned();
        } else if protects.is_empty() {
            state.message =
                "protects no load balancer yet (its public IPs are not bound to one)".to_owned();
        }
        state
    }

    /// Applies a WAF policy: kept, then every WAF and the NAT synced; if
    /// that fails the previous policy (or none) is put back.
    pub(super) async fn apply_waf(
        &self,
        resources: &mut Resources,
        request: &v1::ApplyRequest,
    ) -> Result<v1::ResourceState, Status> {
        self.check_waf(resources, request)?;
        self.save(request).await?;
        let key = (request.kind, request.id.clone());
        let state = self.waf_state(resources, request);
        let previous = resources.insert(
            key.clone(),
            Entry {
                request: request.clone(),
                state,
            },
        );
        if let Err(e) = self.sync_edges(resources).await {
            match previous {
                Some(p) => {
                    let _ = self.save(&p.request).await;
                    resources.insert(key, p);
                }
                None => {
                    let _ = self.forget(K::WafPolicy, &request.id).await;
                    resources.remove(&key);
                }
            }
            let _ = self.sync_edges(resources).await;
            return Err(internal(e));
        }
        let state = self.waf_state(resources, request);
        if let Some(entry) = resources.get_mut(&key) {
            entry.state = state.clone();
        }
        Ok(state)
    }

    /// Makes the WAF directories match the policies: an nginx per reached
    /// balancer with HTTP listeners (started, reloaded or adopted). Returns
    /// them by balancer; [`QemuDriver::reap_wafs`] stops the rest once the
    /// NAT no longer sends anything to them.
    pub(super) async fn sync_wafs(
        &self,
        resources: &Resources,
    ) -> Result<BTreeMap<String, Front>, QemuError> {
        let mut fronts = BTreeMap::new();
        let Some(packages) = self.inner.waf.as_ref() else {
            return Ok(fronts);
        };
        let root = self.waf_root();
        let mut claimed = BTreeMap::new();
        for e in resources.values() {
            let Some(spec) = waf_spec(&e.request) else {
                continue;
            };
            let Ok(policy) = policy_of(spec) else {
                continue;
            };
            for lb in balancers(resources, spec) {
                claimed.entry(lb).or_insert_with(|| policy.clone());
            }
        }
        let mut taken = self.waf_addresses().await;
        for (lb, policy) in claimed {
            let Some(entry) = QemuDriver::get_entry(resources, K::LoadBalancer, &lb) else {
                continue;
            };
            let Some(Spec::LoadBalancer(spec)) = spec_of(&entry.request) else {
                continue;
            };
            let Some(vpc) = vpc_of_subnet(resources, &spec.subnet) else {
                continue;
            };
            let Some(vip) = entry
                .state
                .outputs
                .get("vip")
                .and_then(|a| a.parse::<Ipv4Addr>().ok())
            else {
                continue;
            };
            let mut ports: Vec<u16> = spec
                .listeners
                .iter()
                .filter(|l| l.protocol == v1::Protocol::Http as i32)
                .filter_map(|l| u16::try_from(l.port).ok())
                .collect();
            ports.sort_unstable();
            if ports.is_empty() {
                continue;
            }
            let dir = root.join(&lb);
            let address = match taken.get(&lb) {
                Some((a, _)) => *a,
                None => {
                    let used: Vec<u32> = taken.values().map(|(a, _)| u32::from(*a)).collect();
                    let a = (FIRST_ADDRESS..=LAST_ADDRESS)
                        .find(|a| !used.contains(a))
                        .map(Ipv4Addr::from)
                        .ok_or_else(|| QemuError::Config("no WAF address left".to_owned()))?;
                    tokio::fs::create_dir_all(&dir)
                        .await
                        .map_err(QemuError::io("WAF dir"))?;
                    tokio::fs::write(dir.join("address"), a.to_string())
                        .await
                        .map_err(QemuError::io("WAF address"))?;
                    taken.insert(lb.clone(), (a, vpc.to_owned()));
                    a
                }
            };
            tokio::fs::write(dir.join("vpc"), vpc)
                .await
                .map_err(QemuError::io("WAF vpc"))?;
            net::add_local_address(vpc, address).await?;
            let site = Site {
                listen: address,
                upstream: vip,
                ports: ports.clone(),
            };
            let modsec = waf::render_modsecurity(packages, &policy, &dir);
            waf::apply(
                &net::namespace(vpc),
                &dir,
                |m| waf::render_nginx(packages, &policy, &site, &dir, m),
                &modsec,
            )
            .await?;
            fronts.insert(lb, Front { address, ports });
        }
        Ok(fronts)
    }

    /// The WAF directories' addresses and VPCs, by balancer.
    async fn waf_addresses(&self) -> BTreeMap<String, (Ipv4Addr, String)> {
        let mut out = BTreeMap::new();
        let Ok(mut entries) = tokio::fs::read_dir(self.waf_root()).await else {
            return out;
        };
        while let Ok(Some(e)) = entries.next_entry().await {
            let address = tokio::fs::read_to_string(e.path().join("address"))
                .await
                .ok()
                .and_then(|a| a.trim().parse().ok());
            let vpc = tokio::fs::read_to_string(e.path().join("vpc"))
                .await
                .unwrap_or_default();
            if let Some(a) = address {
                out.insert(
                    e.file_name().to_string_lossy().into_owned(),
                    (a, vpc.trim().to_owned()),
                );
            }
        }
        out
    }

    /// Stops and removes every WAF not in `fronts` (its nginx, its address,
    /// its directory).
    pub(super) async fn reap_wafs(
        &self,
        fronts: &BTreeMap<String, Front>,
    ) -> Result<(), QemuError> {
        let root = self.waf_root();
        let Ok(mut entries) = tokio::fs::read_dir(&root).await else {
            return Ok(());
        };
        let addresses = self.waf_addresses().await;
        while let Ok(Some(e)) = entries.next_entry().await {
            let lb = e.file_name().to_string_lossy().into_owned();
            if fronts.contains_key(&lb) {
                continue;
            }
            waf::stop(&e.path()).await?;
            if let Some((address, vpc)) = addresses.get(&lb)
                && !vpc.is_empty()
            {
                net::remove_local_address(vpc, *address).await?;
            }
            tokio::fs::remove_dir_all(e.path())
                .await
                .or_else(super::not_found_ok)
                .map_err(QemuError::io("remove the WAF dir"))?;
        }
        Ok(())
    }
}
