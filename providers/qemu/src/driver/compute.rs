//! VMs: one QEMU process each, its NIC a tap in its subnet's VPC namespace
//! (address given or the lowest free one of the subnet), its system disk a
//! thin qcow2 throttled by its storage class. Guests boot in the background;
//! the VM turns `RUNNING` when its console shows the guest's marker, `FAILED`
//! with the console's last words if it does not within [`BOOT_TIMEOUT`].
//!
//! The guest asks its VPC's DHCP server for its address (`crate::dhcp`: a
//! reservation for its NIC's MAC, `net::mac`, stable per VM id) and is told
//! the same address on its command line, which it falls back to if no answer
//! comes.
//!
//! A VM's directory `vms/<id>/` holds the accepted request, the address its
//! NIC was given (`address`, kept across restarts), its disk and what QEMU
//! makes (pid, QMP socket, console).

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use yunshu_driver_sdk::cidr::parse_ip;
use yunshu_proto::errors::{reasons, status};
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1::{self, ResourceKind as K, resource_spec::Spec};

use super::network::{address_in, subnet_gateway, subnet_spec, vpc_of_subnet};
use super::{
    Entry, QemuDriver, Resources, VCPU_RATIO, internal, invalid, missing, spec_of, storage,
};
use crate::QemuError;
use crate::net;
use crate::vm::{Vm, VmConfig, VmDisk, VmNic, marker_seen};

/// How long a guest may take to print its marker (TCG on a busy 2-core host).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

fn vm_spec(request: &v1::ApplyRequest) -> Option<&v1::VmSpec> {
    match spec_of(request)? {
        Spec::Vm(vm) => Some(vm),
        _ => None,
    }
}

/// Where a VM's NIC is: its VPC, gateway, prefix and address.
struct Wiring {
    vpc: String,
    gateway: Ipv4Addr,
    prefix: u8,
    address: Ipv4Addr,
}

impl QemuDriver {
    /// The memory and vCPUs of every VM of `arch` but `except`.
    fn committed(resources: &Resources, arch: i32, except: &str) -> (u64, u32) {
        resources
            .values()
            .filter(|e| e.request.id != except)
            .filter_map(|e| vm_spec(&e.request))
            .filter(|vm| vm.arch == arch)
            .fold((0, 0), |(m, c), vm| (m + vm.memory_mib, c + vm.vcpu))
    }

    /// Whether the VM fits its pool's share of the host (memory never
    /// overcommitted, at most [`VCPU_RATIO`] vCPU per core).
    fn check_capacity(
        &self,
        resources: &Resources,
        request: &v1::ApplyRequest,
        vm: &v1::VmSpec,
    ) -> Result<(), Status> {
        let arch = v1::Architecture::try_from(vm.arch).unwrap_or_default();
        let (cores, usable) = self.budget(arch).ok_or_else(|| {
            status(
                Code::FailedPrecondition,
                reasons::ARCH_MISMATCH,
                format!("this host has no {arch:?} pool"),
            )
        })?;
        let (memory, vcpus) = Self::committed(resources, vm.arch, &request.id);
        if memory + vm.memory_mib > usable {
            return Err(status(
                Code::FailedPrecondition,
                reasons::HOST_MEMORY_EXHAUSTED,
                format!(
                    "{} MiB asked, {} of {} MiB free for {arch:?} guests",
                    vm.memory_mib,
                    usable.saturating_sub(memory),
                    usable
                ),
            ));
        }
        let limit = cores * VCPU_RATIO;
        if vcpus + vm.vcpu > limit {
            return Err(status(
                Code::FailedPrecondition,
                reasons::HOST_VCPU_EXHAUSTED,
                format!(
                    "{} vCPU asked, {} of {limit} free for {arch:?} guests",
                    vm.vcpu,
                    limit.saturating_sub(vcpus)
                ),
            ));
        }
        Ok(())
    }

    /// Checks the VM's shape and references; where its NIC goes.
    fn check_vm(
        &self,
        resources: &Resources,
        request: &v1::ApplyRequest,
        vm: &v1::VmSpec,
    ) -> Result<Option<Wiring>, Status> {
        if vm.vcpu == 0 || vm.memory_mib < 64 {
            return Err(invalid("a VM needs at least 1 vCPU and 64 MiB"));
        }
        let arch = v1::Architecture::try_from(vm.arch).unwrap_or_default();
        if self.pool_of(arch).is_none() {
            return Err(status(
                Code::FailedPrecondition,
                reasons::ARCH_MISMATCH,
                format!("this host has no pool of {arch:?} guests"),
            ));
        }
        if let Some(disk) = &vm.system_disk
            && !disk.storage_class.is_empty()
            && storage::iops_of(&disk.storage_class).is_none()
        {
            return Err(invalid(format!(
                "storage class {:?} is not one of this driver's",
                disk.storage_class
            )));
        }
        for group in &vm.security_groups {
            if Self::get_entry(resources, K::SecurityGroup, group).is_none() {
                return Err(missing("security group", group));
            }
        }
        if vm.nics.len() > 1 {
            return Err(invalid("this driver gives a VM one NIC"));
        }
        let Some(nic) = vm.nics.first() else {
            return Ok(None);
        };
        let place = address_in(resources, &nic.subnet, &request.id, &nic.ip)?;
        Ok(Some(Wiring {
            vpc: place.vpc,
            gateway: place.gateway,
            prefix: place.prefix,
            address: place.address,
        }))
    }

    pub(super) async fn apply_vm(
        &self,
        resources: &mut Resources,
        request: &v1::ApplyRequest,
    ) -> Result<v1::ResourceState, Status> {
        let Some(vm) = vm_spec(request) else {
            return Err(invalid("not a VM"));
        };
        let wiring = self.check_vm(resources, request, vm)?;
        self.check_capacity(resources, request, vm)?;
        let key = (K::Vm as i32, request.id.clone());
        let previous = resources.get(&key).map(|e| e.request.clone());
        if vm.stopped {
            return self.power_off(resources, request).await;
        }
        // A guest powered off earlier starts again on its kept disk.
        let reshaped = previous.as_ref().and_then(vm_spec).is_none_or(|old| {
            old.stopped
                || old.vcpu != vm.vcpu
                || old.memory_mib != vm.memory_mib
                || old.nics != vm.nics
        });
        self.save(request).await?;
        // Its DHCP reservation and DNS names: before the guest boots and
        // asks, else on every apply (a re-apply repairs a service that
        // failed). A failure does not keep the guest down (it falls back to
        // the address on its command line) but fails the apply.
        let mut dhcp = Ok(());
        let state = if reshaped {
            // A new shape takes effect by a restart (issue 15: resize on the
            // next start).
            let dir = self.vm_dir(&request.id);
            if let Some(old) = Vm::adopt(&dir) {
                old.stop().await.map_err(internal)?;
            }
            if let Some(old) = previous.as_ref().and_then(vm_spec) {
                self.unwire(resources, &request.id, old).await?;
            }
            let mut state = self.state_of(request, v1::Phase::Provisioning, "booting");
            if let Some(w) = &wiring {
                state
                    .outputs
                    .insert("private_ip".to_owned(), w.address.to_string());
            }
            // In the map before the firewall renders, so its port is there.
            resources.insert(
                key.clone(),
                Entry {
                    request: request.clone(),
                    state: state.clone(),
                },
            );
            dhcp = self.sync_dhcp(resources).await;
            let volumes = self.volume_disks(resources, &request.id);
            let started = self.start_vm(request, wiring.as_ref(), volumes).await;
            match started {
                Ok(vm) => self.watch_boot(request.id.clone(), request.generation, vm.pid()),
                Err(e) => {
                    state.phase = v1::Phase::Failed as i32;
                    state.message = e.to_string();
                }
            }
            state
        } else {
            // Same shape (a new generation of, e.g., its groups or tenant
            // label): the running guest already is what is asked.
            let mut s = resources
                .get(&key)
                .map(|e| e.state.clone())
                .unwrap_or_else(|| self.state_of(request, v1::Phase::Provisioning, ""));
            s.generation = request.generation;
            s.idempotency_key = request.idempotency_key.clone();
            s.spec = request.spec.clone();
            if s.phase == v1::Phase::Running as i32 {
                s.observed_generation = request.generation;
            }
            s.updated_unix_ms = super::now_ms();
            s
        };
        resources.insert(
            key,
            Entry {
                request: request.clone(),
                state: state.clone(),
            },
        );
        if !reshaped {
            dhcp = self.sync_dhcp(resources).await;
        }
        self.sync_firewalls(resources).await.map_err(internal)?;
        dhcp.map_err(internal)?;
        Ok(state)
    }

    /// Powers the VM off as asked (002 art. 13, 14: a system offline or in
    /// its data retention): QEMU stops, the disk, address and tap stay, and
    /// the VM reports `STOPPED` at this generation. Not created yet: it is
    /// recorded powered off and never started.
    async fn power_off(
        &self,
        resources: &mut Resources,
        request: &v1::ApplyRequest,
    ) -> Result<v1::ResourceState, Status> {
        self.save(request).await?;
        if let Some(vm) = Vm::adopt(&self.vm_dir(&request.id)) {
            vm.stop().await.map_err(internal)?;
        }
        let key = (K::Vm as i32, request.id.clone());
        let mut state = self.state_of(request, v1::Phase::Stopped, "powered off; disks kept");
        if let Some(old) = resources.get(&key) {
            state.outputs = old.state.outputs.clone();
            state.outputs.remove("pid");
        }
        state.observed_generation = request.generation;
        resources.insert(
            key,
            Entry {
                request: request.clone(),
                state: state.clone(),
            },
        );
        Ok(state)
    }

    /// Removes the tap an old shape of VM `id` had.
    async fn unwire(
        &self,
        resources: &Resources,
        id: &str,
        old: &v1::VmSpec,
    ) -> Result<(), Status> {
        if let Some(vpc) = old
            .nics
            .first()
            .and_then(|n| vpc_of_subnet(resources, &n.subnet))
        {
            net::remove_tap(vpc, &net::tap_name(id, 0))
                .await
                .map_err(internal)?;
        }
        Ok(())
    }

    /// Starts QEMU for `request`: disk made, tap up, address kept.
    async fn start_vm(
        &self,
        request: &v1::ApplyRequest,
        wiring: Option<&Wiring>,
        volumes: Vec<VmDisk>,
    ) -> Result<Vm, QemuError> {
        let vm = vm_spec(request).ok_or_else(|| QemuError::Guest("not a VM".to_owned()))?;
        let dir = self.vm_dir(&request.id);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(QemuError::io("VM dir"))?;
        let disk = dir.join("system.qcow2");
        let system = vm.system_disk.clone().unwrap_or_default();
        storage::create_image(&disk, system.size_gib.max(1)).await?;
        let nic = match wiring {
            Some(w) => {
                let tap = net::tap_name(&request.id, 0);
                net::add_tap(&w.vpc, &tap, w.address).await?;
                tokio::fs::write(dir.join("address"), w.address.to_string())
                    .await
                    .map_err(QemuError::io("write address"))?;
                Some(VmNic {
                    netns: net::namespace(&w.vpc),
                    tap,
                    mac: net::mac(&request.id, 0),
                    address: format!("{}/{}", w.address, w.prefix),
                    gateway: Some(w.gateway.to_string()),
                    dhcp: true,
                })
            }
            None => None,
        };
        let arch = v1::Architecture::try_from(vm.arch).unwrap_or_default();
        let (_, _, image) = self
            .pool_of(arch)
            .ok_or_else(|| QemuError::Guest(format!("no pool of {arch:?} guests")))?;
        Vm::start(&VmConfig {
            name: request.id.clone(),
            dir,
            image,
            accel: self.inner.config.accel,
            cpu_model: (arch == v1::Architecture::C86).then_some(super::C86_CPU_MODEL),
            vcpu: vm.vcpu,
            memory_mib: vm.memory_mib,
            outlives_caller: true,
            nic,
            disks: std::iter::once(VmDisk {
                id: "system".to_owned(),
                path: disk,
                iops: storage::iops_of(&system.storage_class),
            })
            .chain(volumes)
            .collect(),
        })
        .await
    }

    /// After a restart: adopt the running QEMU or start it again.
    pub(super) async fn recover_vm(
        &self,
        resources: &Resources,
        request: &v1::ApplyRequest,
    ) -> Result<v1::ResourceState, QemuError> {
        let dir = self.vm_dir(&request.id);
        let mut state = self.state_of(request, v1::Phase::Provisioning, "");
        let address = tokio::fs::read_to_string(dir.join("address"))
            .await
            .ok()
            .and_then(|a| a.trim().parse::<Ipv4Addr>().ok());
        if let Some(a) = address {
            state.outputs.insert("private_ip".to_owned(), a.to_string());
        }
        if vm_spec(request).is_some_and(|vm| vm.stopped) {
            // Powered off before the restart: stays off.
            state.phase = v1::Phase::Stopped as i32;
            state.observed_generation = request.generation;
            return Ok(state);
        }
        match Vm::adopt(&dir) {
            Some(vm) if marker_seen(&dir).await => {
                state.phase = v1::Phase::Running as i32;
                state.observed_generation = request.generation;
                state.outputs.insert("pid".to_owned(), vm.pid().to_string());
            }
            Some(vm) => self.watch_boot(request.id.clone(), request.generation, vm.pid()),
            None => {
                let wiring = self.wiring_after_restart(resources, request, address);
                let volumes = self.volume_disks(resources, &request.id);
                let vm = self.start_vm(request, wiring.as_ref(), volumes).await?;
                self.watch_boot(request.id.clone(), request.generation, vm.pid());
            }
        }
        tracing::info!(vm = %request.id, phase = state.phase, "VM recovered from the state directory");
        Ok(state)
    }

    /// The wiring a VM had, from its kept address and its subnet.
    fn wiring_after_restart(
        &self,
        resources: &Resources,
        request: &v1::ApplyRequest,
        address: Option<Ipv4Addr>,
    ) -> Option<Wiring> {
        let nic = vm_spec(request)?.nics.first()?;
        let subnet = Self::get_entry(resources, K::Subnet, &nic.subnet).and_then(subnet_spec)?;
        let (cidr, gateway) = subnet_gateway(subnet).ok()?;
        Some(Wiring {
            vpc: subnet.vpc.clone(),
            gateway: Ipv4Addr::from(gateway),
            prefix: cidr.prefix,
            address: address.or_else(|| parse_ip(&nic.ip).map(Ipv4Addr::from))?,
        })
    }

    /// Stops the VM's QEMU and removes its tap (its directory goes with the
    /// state, in `forget`).
    pub(super) async fn destroy_vm(
        &self,
        resources: &Resources,
        request: &v1::ApplyRequest,
    ) -> Result<(), Status> {
        let dir = self.vm_dir(&request.id);
        if let Some(vm) = Vm::adopt(&dir) {
            vm.stop().await.map_err(internal)?;
        }
        if let Some(old) = vm_spec(request) {
            self.unwire(resources, &request.id, old).await?;
        }
        Ok(())
    }

    /// Waits in the background for the guest's marker, then reports RUNNING
    /// (or FAILED) for that generation.
    fn watch_boot(&self, id: String, generation: u64, pid: u32) {
        let me = self.clone();
        tokio::spawn(async move {
            let dir = me.vm_dir(&id);
            let started = Instant::now();
            let outcome = wait_for_boot(&dir, pid, started).await;
            let mut resources = me.inner.resources.lock().await;
            let Some(entry) = resources.get_mut(&(K::Vm as i32, id.clone())) else {
                return;
            };
            if entry.request.generation != generation {
                return; // a newer apply owns the state now
            }
            match outcome {
                Ok(()) => {
                    entry.state.phase = v1::Phase::Running as i32;
                    entry.state.observed_generation = generation;
                    entry.state.message.clear();
                    entry
                        .state
                        .outputs
                        .insert("pid".to_owned(), pid.to_string());
                    entry.state.outputs.insert(
                        "boot_ms".to_owned(),
                        started.elapsed().as_millis().to_string(),
                    );
                }
                Err(why) => {
                    entry.state.phase = v1::Phase::Failed as i32;
                    entry.state.message = why;
                }
            }
            entry.state.updated_unix_ms = super::now_ms();
            me.inner
                .events
                .resource(v1::ChangeType::Updated, entry.state.clone());
        });
    }
}

async fn wait_for_boot(dir: &Path, pid: u32, started: Instant) -> Result<(), String> {
    loop {
        if marker_seen(dir).await {
            return Ok(());
        }
        // Alive, not "is QEMU": the first check may come before the spawned
        // process has exec'd.
        if !crate::vm::is_alive(pid) {
            let log = tokio::fs::read_to_string(dir.join("qemu.log"))
                .await
                .unwrap_or_default();
            return Err(format!(
                "QEMU exited before the guest came up: {}",
                log.trim()
            ));
        }
        if started.elapsed() > BOOT_TIMEOUT {
            return Err(format!(
                "no boot marker within {} s",
                BOOT_TIMEOUT.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
