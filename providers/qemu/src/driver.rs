//! The SDK [`Driver`] over real QEMU: VMs (the only kind offered so far —
//! `GetInfo` says so, and the controller refuses orders needing more).
//!
//! State lives in `<state>/vms/<id>/`: the last accepted `ApplyRequest`
//! (`request.pb`, protobuf), and what QEMU makes (pid, QMP socket, console).
//! A restarted driver reads every directory back: a VM whose QEMU still runs
//! is adopted as it is, one whose QEMU is gone is started again (its desired
//! state says it should run). Guests boot in the background; the VM turns
//! `RUNNING` when its console shows the guest's marker, `FAILED` with the
//! console's last line if it does not within [`BOOT_TIMEOUT`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use prost::Message;
use tokio::sync::Mutex;
use yunshu_driver_sdk::{Driver, EventSink};
use yunshu_proto::errors::{reasons, status};
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1;

use crate::QemuError;
use crate::guest::GuestImage;
use crate::vm::{Accel, Vm, VmConfig, marker_seen};

/// How long a guest may take to print its marker (TCG on a busy 2-core host).
pub const BOOT_TIMEOUT: Duration = Duration::from_secs(180);

/// The inventory's names for this one host.
const ZONE: &str = "local";
const AREA: &str = "local-gov";
const POOL: &str = "local-x86_64";

/// vCPUs per physical core the driver allows (SPEC: at most 4).
const VCPU_RATIO: u32 = 4;

/// What the driver is given.
#[derive(Debug, Clone)]
pub struct QemuConfig {
    pub state_dir: PathBuf,
    pub image: GuestImage,
    pub accel: Accel,
    /// Memory kept for the host itself, never given to guests.
    pub reserved_memory_mib: u64,
}

struct Entry {
    request: v1::ApplyRequest,
    state: v1::ResourceState,
}

struct Inner {
    config: QemuConfig,
    host: String,
    cores: u32,
    memory_mib: u64,
    vms: Mutex<BTreeMap<String, Entry>>,
    events: EventSink,
}

/// The QEMU driver.
#[derive(Clone)]
pub struct QemuDriver {
    inner: Arc<Inner>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The host's memory in MiB (`/proc/meminfo` MemTotal).
fn host_memory_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kib| kib / 1024)
}

fn vm_spec(request: &v1::ApplyRequest) -> Option<&v1::VmSpec> {
    match request.spec.as_ref()?.spec.as_ref()? {
        v1::resource_spec::Spec::Vm(vm) => Some(vm),
        _ => None,
    }
}

fn internal(e: QemuError) -> Status {
    status(Code::Unavailable, "QEMU_ERROR", e.to_string())
}

impl QemuDriver {
    /// Opens the state directory and brings every VM in it back: adopted if
    /// its QEMU runs, started again if not.
    pub async fn open(config: QemuConfig, events: EventSink) -> Result<QemuDriver, QemuError> {
        let vms_dir = config.state_dir.join("vms");
        tokio::fs::create_dir_all(&vms_dir)
            .await
            .map_err(QemuError::io(format!("state dir {}", vms_dir.display())))?;
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".to_owned());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
        let driver = QemuDriver {
            inner: Arc::new(Inner {
                config,
                host,
                cores,
                memory_mib: host_memory_mib(),
                vms: Mutex::new(BTreeMap::new()),
                events,
            }),
        };
        let mut entries = tokio::fs::read_dir(&vms_dir)
            .await
            .map_err(QemuError::io("read the state dir"))?;
        while let Some(e) = entries
            .next_entry()
            .await
            .map_err(QemuError::io("read the state dir"))?
        {
            let Ok(bytes) = tokio::fs::read(e.path().join("request.pb")).await else {
                continue;
            };
            let Ok(request) = v1::ApplyRequest::decode(bytes.as_slice()) else {
                tracing::warn!(dir = %e.path().display(), "unreadable request.pb: left alone");
                continue;
            };
            driver.recover(request, &e.path()).await?;
        }
        Ok(driver)
    }

    fn vm_dir(&self, id: &str) -> PathBuf {
        self.inner.config.state_dir.join("vms").join(id)
    }

    /// After a restart: adopt the running QEMU or start it again.
    async fn recover(&self, request: v1::ApplyRequest, dir: &Path) -> Result<(), QemuError> {
        let mut state = self.state_of(&request, v1::Phase::Provisioning, "");
        match Vm::adopt(dir) {
            Some(vm) if marker_seen(dir).await => {
                state.phase = v1::Phase::Running as i32;
                state.observed_generation = request.generation;
                state.outputs.insert("pid".to_owned(), vm.pid().to_string());
            }
            Some(vm) => self.watch_boot(request.id.clone(), request.generation, vm.pid()),
            None => {
                let vm = self.start_vm(&request).await?;
                self.watch_boot(request.id.clone(), request.generation, vm.pid());
            }
        }
        tracing::info!(vm = %request.id, phase = state.phase, "VM recovered from the state directory");
        self.inner
            .vms
            .lock()
            .await
            .insert(request.id.clone(), Entry { request, state });
        Ok(())
    }

    fn state_of(
        &self,
        request: &v1::ApplyRequest,
        phase: v1::Phase,
        message: &str,
    ) -> v1::ResourceState {
        let mut outputs = std::collections::HashMap::new();
        outputs.insert(
            "accelerator".to_owned(),
            self.inner.config.accel.as_str().to_owned(),
        );
        v1::ResourceState {
            kind: v1::ResourceKind::Vm as i32,
            id: request.id.clone(),
            generation: request.generation,
            observed_generation: 0,
            phase: phase as i32,
            message: message.to_owned(),
            placement: Some(v1::Placement {
                zone: ZONE.to_owned(),
                network_area: AREA.to_owned(),
                pool: POOL.to_owned(),
                host: self.inner.host.clone(),
            }),
            outputs,
            idempotency_key: request.idempotency_key.clone(),
            tenant: request.tenant.clone(),
            spec: request.spec.clone(),
            updated_unix_ms: now_ms(),
        }
    }

    async fn start_vm(&self, request: &v1::ApplyRequest) -> Result<Vm, QemuError> {
        let vm = vm_spec(request).ok_or_else(|| QemuError::Guest("not a VM".to_owned()))?;
        let dir = self.vm_dir(&request.id);
        Vm::start(&VmConfig {
            name: request.id.clone(),
            dir,
            image: self.inner.config.image.clone(),
            accel: self.inner.config.accel,
            vcpu: vm.vcpu,
            memory_mib: vm.memory_mib,
            outlives_caller: true,
            nic: None,
        })
        .await
    }

    /// Waits in the background for the guest's marker, then reports RUNNING
    /// (or FAILED) for that generation.
    fn watch_boot(&self, id: String, generation: u64, pid: u32) {
        let me = self.clone();
        tokio::spawn(async move {
            let dir = me.vm_dir(&id);
            let started = Instant::now();
            let outcome = loop {
                if marker_seen(&dir).await {
                    break Ok(());
                }
                // Alive, not "is QEMU": the first check may come before the
                // spawned process has exec'd.
                if !crate::vm::is_alive(pid) {
                    let log = tokio::fs::read_to_string(dir.join("qemu.log"))
                        .await
                        .unwrap_or_default();
                    break Err(format!(
                        "QEMU exited before the guest came up: {}",
                        log.trim()
                    ));
                }
                if started.elapsed() > BOOT_TIMEOUT {
                    break Err(format!(
                        "no boot marker within {} s",
                        BOOT_TIMEOUT.as_secs()
                    ));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            };
            let mut vms = me.inner.vms.lock().await;
            let Some(entry) = vms.get_mut(&id) else {
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
            entry.state.updated_unix_ms = now_ms();
            me.inner
                .events
                .resource(v1::ChangeType::Updated, entry.state.clone());
        });
    }

    /// The memory and vCPUs of every VM but `except`.
    fn committed(vms: &BTreeMap<String, Entry>, except: &str) -> (u64, u32) {
        vms.iter()
            .filter(|(id, _)| id.as_str() != except)
            .filter_map(|(_, e)| vm_spec(&e.request))
            .fold((0, 0), |(m, c), vm| (m + vm.memory_mib, c + vm.vcpu))
    }
}

#[async_trait]
impl Driver for QemuDriver {
    fn info(&self) -> v1::DriverInfo {
        v1::DriverInfo {
            name: "yunshu-qemu".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            kinds: vec![v1::ResourceKind::Vm as i32],
            architectures: vec![v1::Architecture::X8664 as i32],
            simulator: false,
            ..Default::default()
        }
    }

    async fn inventory(&self) -> Result<v1::Inventory, Status> {
        let i = &self.inner;
        Ok(v1::Inventory {
            zones: vec![v1::Zone {
                id: ZONE.to_owned(),
                name: "本机".to_owned(),
            }],
            network_areas: vec![v1::NetworkArea {
                id: AREA.to_owned(),
                zone: ZONE.to_owned(),
                name: "本机政务外网区".to_owned(),
                kind: v1::NetworkAreaKind::GovExtranet as i32,
            }],
            pools: vec![v1::Pool {
                id: POOL.to_owned(),
                zone: ZONE.to_owned(),
                network_area: AREA.to_owned(),
                arch: v1::Architecture::X8664 as i32,
                cpu_model: format!("QEMU ({})", i.config.accel.as_str()),
                clock_mhz: 0,
                vcpu_ratio: VCPU_RATIO,
            }],
            hosts: vec![v1::Host {
                id: i.host.clone(),
                pool: POOL.to_owned(),
                cores: i.cores,
                memory_mib: i.memory_mib,
                reserved_memory_mib: i.config.reserved_memory_mib,
                state: v1::HostState::Up as i32,
                model: String::new(),
            }],
            revision: 1,
            ..Default::default()
        })
    }

    async fn apply(&self, request: &v1::ApplyRequest) -> Result<v1::ResourceState, Status> {
        let Some(vm) = vm_spec(request) else {
            return Err(status(
                Code::InvalidArgument,
                reasons::KIND_UNSUPPORTED,
                "this QEMU driver builds VMs only so far",
            ));
        };
        if vm.arch != v1::Architecture::X8664 as i32 {
            return Err(status(
                Code::FailedPrecondition,
                reasons::ARCH_MISMATCH,
                "this host runs x86_64 guests only",
            ));
        }
        if let Some(nic) = vm.nics.first() {
            // Networks are the next part: never pretend a NIC is wired.
            return Err(status(
                Code::FailedPrecondition,
                reasons::DEPENDENCY_NOT_FOUND,
                format!("subnet {} does not exist on this driver", nic.subnet),
            ));
        }
        let mut vms = self.inner.vms.lock().await;
        let (memory, vcpus) = QemuDriver::committed(&vms, &request.id);
        let usable = self
            .inner
            .memory_mib
            .saturating_sub(self.inner.config.reserved_memory_mib);
        if memory + vm.memory_mib > usable {
            return Err(status(
                Code::FailedPrecondition,
                reasons::HOST_MEMORY_EXHAUSTED,
                format!(
                    "{} MiB asked, {} of {} MiB free for guests",
                    vm.memory_mib,
                    usable.saturating_sub(memory),
                    usable
                ),
            ));
        }
        if vcpus + vm.vcpu > self.inner.cores * VCPU_RATIO {
            return Err(status(
                Code::FailedPrecondition,
                reasons::HOST_VCPU_EXHAUSTED,
                format!(
                    "{} vCPU asked, {} of {} free",
                    vm.vcpu,
                    (self.inner.cores * VCPU_RATIO).saturating_sub(vcpus),
                    self.inner.cores * VCPU_RATIO
                ),
            ));
        }
        let dir = self.vm_dir(&request.id);
        let previous = vms.get(&request.id).map(|e| e.request.clone());
        let reshaped = previous
            .as_ref()
            .and_then(vm_spec)
            .is_none_or(|old| old.vcpu != vm.vcpu || old.memory_mib != vm.memory_mib);
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| internal(QemuError::io("VM dir")(e)))?;
        // The request is written before QEMU starts: a crash in between is
        // repaired by `open` (it starts what the request says).
        tokio::fs::write(dir.join("request.pb"), request.encode_to_vec())
            .await
            .map_err(|e| internal(QemuError::io("write request.pb")(e)))?;
        let change = if previous.is_some() {
            v1::ChangeType::Updated
        } else {
            v1::ChangeType::Created
        };
        let state = if reshaped {
            // A new shape takes effect by a restart (issue 15: resize on the
            // next start).
            if let Some(old) = Vm::adopt(&dir) {
                old.stop().await.map_err(internal)?;
            }
            let started = self.start_vm(request).await.map_err(internal)?;
            self.watch_boot(request.id.clone(), request.generation, started.pid());
            self.state_of(request, v1::Phase::Provisioning, "booting")
        } else {
            // Same shape (a new generation of, e.g., its tenant label): the
            // running guest already is what is asked.
            let mut s = vms
                .get(&request.id)
                .map(|e| e.state.clone())
                .unwrap_or_else(|| self.state_of(request, v1::Phase::Provisioning, ""));
            s.generation = request.generation;
            s.idempotency_key = request.idempotency_key.clone();
            s.spec = request.spec.clone();
            if s.phase == v1::Phase::Running as i32 {
                s.observed_generation = request.generation;
            }
            s.updated_unix_ms = now_ms();
            s
        };
        vms.insert(
            request.id.clone(),
            Entry {
                request: request.clone(),
                state: state.clone(),
            },
        );
        self.inner.events.resource(change, state.clone());
        Ok(state)
    }

    async fn get(
        &self,
        kind: v1::ResourceKind,
        id: &str,
    ) -> Result<Option<v1::ResourceState>, Status> {
        if kind != v1::ResourceKind::Vm {
            return Ok(None);
        }
        Ok(self.inner.vms.lock().await.get(id).map(|e| e.state.clone()))
    }

    async fn delete(
        &self,
        kind: v1::ResourceKind,
        id: &str,
    ) -> Result<Option<v1::ResourceState>, Status> {
        if kind != v1::ResourceKind::Vm {
            return Ok(None);
        }
        let mut vms = self.inner.vms.lock().await;
        let Some(entry) = vms.remove(id) else {
            return Ok(None);
        };
        let dir = self.vm_dir(id);
        if let Some(vm) = Vm::adopt(&dir) {
            vm.stop().await.map_err(internal)?;
        }
        tokio::fs::remove_dir_all(&dir)
            .await
            .or_else(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| internal(QemuError::io("remove the VM dir")(e)))?;
        let mut state = entry.state;
        state.phase = v1::Phase::Deleted as i32;
        state.updated_unix_ms = now_ms();
        self.inner
            .events
            .resource(v1::ChangeType::Deleted, state.clone());
        Ok(Some(state))
    }

    async fn list(
        &self,
        kind: Option<v1::ResourceKind>,
        after: Option<(v1::ResourceKind, String)>,
        limit: usize,
    ) -> Result<Vec<v1::ResourceState>, Status> {
        if kind.is_some_and(|k| k != v1::ResourceKind::Vm) {
            return Ok(Vec::new());
        }
        let after_id = match after {
            Some((k, _)) if (k as i32) > (v1::ResourceKind::Vm as i32) => return Ok(Vec::new()),
            Some((v1::ResourceKind::Vm, id)) => Some(id),
            _ => None,
        };
        let vms = self.inner.vms.lock().await;
        Ok(vms
            .iter()
            .filter(|(id, _)| after_id.as_ref().is_none_or(|a| id.as_str() > a.as_str()))
            .take(limit)
            .map(|(_, e)| e.state.clone())
            .collect())
    }
}
