//! Bare-metal servers: one whole Redfish system each.
//!
//! Apply: check the placement (the host exists and is up, its architecture
//! and model are the spec's, no other server holds it, the image has a
//! virtual-media URL), give each NIC an address of its subnet, and record
//! all of it in the state directory *before* any BMC call. Then converge:
//! insert the image as virtual media, boot override CD once, power on (or
//! keep off when `stopped`). [`super::poller`] retries what failed and
//! reports RUNNING / STOPPED once `PowerState` says so at that generation.
//!
//! Delete, one step per call or poll, never waiting on the BMC: force off,
//! then once off eject, boot back to the disk (`Hdd`, `Continuous`:
//! sushy-tools reads `Once` back as `Continuous`, so the CD override would
//! otherwise stick), then forget the record, which returns the system to
//! the free pool and its addresses to their subnets.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use yunshu_proto::errors::{reasons, status, status_with};
use yunshu_proto::tonic::{Code, Status};
use yunshu_proto::v1::{self, ResourceKind as K};

use super::{RedfishDriver, Resources, error_chain, invalid, now_ms, spec_of, store_failed};
use crate::redfish::{Power, RedfishError, System};
use crate::store::Record;

fn precondition(reason: &str, message: impl Into<String>) -> Status {
    status(Code::FailedPrecondition, reason, message)
}

fn bmc_failed(e: &RedfishError) -> Status {
    status(Code::Unavailable, "BMC_FAILED", error_chain(e))
}

fn bare_metal_spec(state: &v1::ResourceState) -> Option<&v1::BareMetalSpec> {
    match spec_of(state) {
        Some(v1::resource_spec::Spec::BareMetal(b)) => Some(b),
        _ => None,
    }
}

/// What converging did.
pub(super) enum Step {
    /// The server is as asked at its generation (now or already).
    Converged,
    /// A command was sent or the BMC is still changing; look again later.
    Waiting,
}

impl RedfishDriver {
    pub(super) async fn apply_bare_metal(
        &self,
        request: &v1::ApplyRequest,
    ) -> Result<v1::ResourceState, Status> {
        let Some(v1::resource_spec::Spec::BareMetal(spec)) =
            request.spec.as_ref().and_then(|s| s.spec.as_ref())
        else {
            return Err(invalid("not a bare-metal spec"));
        };
        let host_id = request
            .placement
            .as_ref()
            .map(|p| p.host.clone())
            .unwrap_or_default();
        let host = self.host_view(&host_id).ok_or_else(|| {
            // A host of a BMC that has not answered since the driver
            // started is down, not unknown: PLACEMENT_INVALID would fail
            // the server for good over a transient outage.
            if self.host_bmc_unanswered(&host_id) {
                precondition(
                    reasons::HOST_DOWN,
                    format!("the BMC of host {host_id} does not answer"),
                )
            } else {
                precondition(
                    reasons::PLACEMENT_INVALID,
                    format!("host {host_id:?} is not a system of this driver's BMCs"),
                )
            }
        })?;
        if !host.up {
            return Err(precondition(
                reasons::HOST_DOWN,
                format!("the BMC of host {host_id} does not answer"),
            ));
        }
        if spec.arch != host.arch as i32 {
            return Err(precondition(
                reasons::ARCH_MISMATCH,
                format!(
                    "host {host_id} is {:?}, the server asks for {:?}",
                    host.arch,
                    v1::Architecture::try_from(spec.arch).unwrap_or_default()
                ),
            ));
        }
        if !spec.model.is_empty() && spec.model != host.model {
            return Err(precondition(
                reasons::MODEL_UNAVAILABLE,
                format!(
                    "host {host_id} is a {:?}, the server asks for {:?}",
                    host.model, spec.model
                ),
            ));
        }
        let Some(image_url) = self.inner.config.images.get(&spec.image).cloned() else {
            return Err(invalid(format!(
                "image {:?} has no virtual-media URL in this driver's configuration",
                spec.image
            )));
        };
        let mut resources = self.inner.resources.lock().await;
        let key = (K::BareMetal as i32, request.id.clone());
        let old = resources.get(&key).cloned();
        if let Some((holder, _)) = resources.iter().find(|((kind, id), r)| {
            *kind == K::BareMetal as i32
                && id != &request.id
                && r.state
                    .placement
                    .as_ref()
                    .is_some_and(|p| p.host == host_id)
        }) {
            return Err(status_with(
                Code::FailedPrecondition,
                reasons::PLACEMENT_INVALID,
                format!("host {host_id} is held by bare-metal server {}", holder.1),
                [("used_by".to_owned(), holder.1.clone())],
            ));
        }
        if let Some(old) = &old {
            let was = bare_metal_spec(&old.state);
            let old_host = old.state.placement.as_ref().map(|p| p.host.as_str());
            if old_host != Some(host_id.as_str()) {
                return Err(precondition(
                    reasons::PLACEMENT_INVALID,
                    format!(
                        "{} runs on host {}; a bare-metal server does not move",
                        request.id,
                        old_host.unwrap_or("?")
                    ),
                ));
            }
            if was.is_some_and(|w| w.image != spec.image || w.arch != spec.arch) {
                return Err(invalid(
                    "the image and architecture of a provisioned server do not change; \
                     delete it and order another",
                ));
            }
            if old.state.phase == v1::Phase::Deleting as i32 {
                return Err(precondition(
                    reasons::PLACEMENT_INVALID,
                    format!("{} is being deleted", request.id),
                ));
            }
        }
        let outputs = self.nic_addresses(&resources, request, spec, old.as_ref())?;
        let mut state = Self::state_for(
            request,
            v1::Phase::Provisioning,
            if spec.stopped {
                "recorded; powering off"
            } else {
                "recorded; inserting virtual media and powering on"
            },
        );
        state.outputs = outputs;
        state
            .outputs
            .insert("system".to_owned(), host.system.id.clone());
        state.outputs.insert(
            "bmc".to_owned(),
            self.inner.config.bmcs[host.bmc].name.clone(),
        );
        state.outputs.insert("image_url".to_owned(), image_url);
        if let Some(old) = &old {
            state.observed_generation = old.state.observed_generation;
        }
        let record = Record {
            state,
            booted: old.as_ref().is_some_and(|o| o.booted),
        };
        let change = if old.is_some() {
            v1::ChangeType::Updated
        } else {
            v1::ChangeType::Created
        };
        // Ownership on disk first: a crash after this adopts the system.
        let accepted = self.commit(&mut resources, record, change)?;
        drop(resources);
        // The first attempt at once, so a healthy BMC starts now, but in a
        // task of its own: Apply answers once the generation is recorded,
        // and a BMC that hangs (a virtual-media insert may take a minute)
        // holds neither the call nor the resource. A failure is the
        // poller's to retry; the step re-reads the record under the host's
        // lock, so a later apply or delete is never undone by it.
        let driver = self.clone();
        let id = request.id.clone();
        tokio::spawn(async move {
            if let Err(e) = driver.converge(&id).await {
                let why = error_chain(&e);
                tracing::warn!(server = %id, error = %why, "BMC step failed; the poller retries");
                driver
                    .note(&id, &format!("BMC step failed, retrying: {why}"))
                    .await;
            }
            driver.inner.wake.notify_one();
        });
        Ok(accepted)
    }

    /// `nic<i>.subnet`, `nic<i>.ip` and `private_ip` (the first NIC's) for
    /// the spec's NICs: addresses the server already had on the same subnet
    /// are kept, the others allocated.
    fn nic_addresses(
        &self,
        resources: &Resources,
        request: &v1::ApplyRequest,
        spec: &v1::BareMetalSpec,
        old: Option<&Record>,
    ) -> Result<HashMap<String, String>, Status> {
        let mut outputs = HashMap::new();
        let mut taken: Vec<u32> = Vec::new();
        for (i, nic) in spec.nics.iter().enumerate() {
            let field = format!("nics[{i}].subnet");
            let (cidr, gateway) = Self::subnet_range(resources, &field, &nic.subnet)?;
            let mut used: Vec<u32> = resources
                .values()
                .filter(|r| r.state.id != request.id)
                .flat_map(|r| {
                    r.state
                        .outputs
                        .iter()
                        .filter(|(k, v)| k.ends_with(".subnet") && **v == nic.subnet)
                        .filter_map(|(k, _)| r.state.outputs.get(&k.replace(".subnet", ".ip")))
                        .filter_map(|ip| yunshu_driver_sdk::cidr::parse_ip(ip))
                        .collect::<Vec<_>>()
                })
                .collect();
            used.extend(&taken);
            let kept = old.and_then(|o| {
                let prev_subnet = o.state.outputs.get(&format!("nic{i}.subnet"))?;
                let prev_ip = o.state.outputs.get(&format!("nic{i}.ip"))?;
                (prev_subnet == &nic.subnet && (nic.ip.is_empty() || &nic.ip == prev_ip))
                    .then(|| prev_ip.clone())
            });
            let wanted = kept.unwrap_or_else(|| nic.ip.clone());
            let ip =
                crate::ipam::allocate(&cidr, gateway, &wanted, &used).map_err(|e| match e {
                    crate::ipam::IpamError::Exhausted { .. } => status(
                        Code::ResourceExhausted,
                        reasons::IP_POOL_EXHAUSTED,
                        e.to_string(),
                    ),
                    _ => invalid(format!("{field}: {e}")),
                })?;
            taken.push(ip);
            let ip = crate::ipam::show(ip);
            if i == 0 {
                outputs.insert("private_ip".to_owned(), ip.clone());
            }
            outputs.insert(format!("nic{i}.subnet"), nic.subnet.clone());
            outputs.insert(format!("nic{i}.ip"), ip);
        }
        Ok(outputs)
    }

    /// Sets the message of `id` (a failed BMC step), without changing its
    /// phase or generation.
    pub(super) async fn note(&self, id: &str, message: &str) {
        let mut resources = self.inner.resources.lock().await;
        let key = (K::BareMetal as i32, id.to_owned());
        let Some(mut record) = resources.get(&key).cloned() else {
            return;
        };
        if record.state.message == message {
            return;
        }
        record.state.message = message.to_owned();
        record.state.updated_unix_ms = now_ms();
        if let Err(e) = self.commit(&mut resources, record, v1::ChangeType::Updated) {
            tracing::warn!(server = %id, error = %e.message(), "could not record the BMC failure");
        }
    }

    /// One step towards what `id`'s spec asks, under its host's lock. Sends
    /// at most one power command per call and never waits for it.
    pub(super) async fn converge(&self, id: &str) -> Result<Step, RedfishError> {
        let key = (K::BareMetal as i32, id.to_owned());
        let Some(record) = self.inner.resources.lock().await.get(&key).cloned() else {
            return Ok(Step::Converged);
        };
        let host_id = record
            .state
            .placement
            .as_ref()
            .map(|p| p.host.clone())
            .unwrap_or_default();
        let Some(host) = self.host_view(&host_id) else {
            return Ok(Step::Waiting);
        };
        let lock = self.host_lock(&host_id);
        let _guard = lock.lock().await;
        // Read again under the host's lock: while this call waited for it,
        // a delete may have released the system (a stale record would power
        // it on again and re-insert the image) or an apply moved the
        // generation on.
        let Some(record) = self.inner.resources.lock().await.get(&key).cloned() else {
            return Ok(Step::Converged);
        };
        if record.state.phase == v1::Phase::Deleting as i32 {
            return Ok(Step::Converged);
        }
        let Some(spec) = bare_metal_spec(&record.state).cloned() else {
            return Ok(Step::Converged);
        };
        let bmc = &self.inner.bmcs[host.bmc];
        let system = bmc.system(&host.system.uri).await?;
        let image = record
            .state
            .outputs
            .get("image_url")
            .cloned()
            .unwrap_or_default();
        let want_on = !spec.stopped;
        let booted = record.booted;
        match (want_on, system.power) {
            (true, Power::On) | (false, Power::Off) => {
                if booted || !want_on {
                    // Also the media for a server created powered off: it
                    // is ready to boot when the flag is cleared.
                    if !booted {
                        bmc.insert_cd(&system, &image).await?;
                    }
                    self.converged(id, record.state.generation, system.power)
                        .await;
                    return Ok(Step::Converged);
                }
                // On, but not by us: a system must boot the image, not
                // whatever it ran; switch it off and start again.
                self.power(bmc, &system, "ForceOff").await?;
                Ok(Step::Waiting)
            }
            (true, Power::Off) => {
                if !booted {
                    bmc.insert_cd(&system, &image).await?;
                    bmc.set_boot(&system, "Cd", "Once").await?;
                }
                self.power(bmc, &system, "On").await?;
                if !booted {
                    self.mark_booted(id, record.state.generation).await;
                }
                Ok(Step::Waiting)
            }
            (false, Power::On) => {
                self.power(bmc, &system, "ForceOff").await?;
                Ok(Step::Waiting)
            }
            (_, Power::Other) => Ok(Step::Waiting),
        }
    }

    /// Sends a reset unless the same one went to this system moments ago
    /// (BMCs apply them late; resending would only queue more).
    async fn power(
        &self,
        bmc: &crate::redfish::Bmc,
        system: &System,
        kind: &str,
    ) -> Result<(), RedfishError> {
        let key = format!("{}/{}", bmc.name(), system.id);
        {
            let mut sent = self.inner.resets.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((what, at)) = sent.get(&key)
                && what == kind
                && at.elapsed() < Duration::from_secs(15)
            {
                return Ok(());
            }
            sent.insert(key.clone(), (kind.to_owned(), Instant::now()));
        }
        tracing::info!(bmc = %bmc.name(), system = %system.id, reset = kind, "power");
        let sent = bmc.reset(system, kind).await;
        if sent.is_err() {
            self.inner
                .resets
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&key);
        }
        sent
    }

    async fn mark_booted(&self, id: &str, generation: u64) {
        let mut resources = self.inner.resources.lock().await;
        let key = (K::BareMetal as i32, id.to_owned());
        let Some(mut record) = resources.get(&key).cloned() else {
            return;
        };
        // The first boot is a fact about the system, not about one
        // generation: an apply that moved the generation on meanwhile must
        // not make the next step take the running system for someone
        // else's and force it off.
        record.booted = true;
        if record.state.generation == generation && record.state.phase != v1::Phase::Deleting as i32
        {
            record.state.message =
                "powered on from the virtual media; waiting for PowerState On".to_owned();
        }
        if let Err(e) = self.commit(&mut resources, record, v1::ChangeType::Updated) {
            tracing::warn!(server = %id, error = %e.message(), "could not record the first boot");
        }
    }

    /// Reports `id` converged at `generation` (RUNNING or STOPPED), once;
    /// never over a delete that started meanwhile.
    pub(super) async fn converged(&self, id: &str, generation: u64, power: Power) {
        let mut resources = self.inner.resources.lock().await;
        let key = (K::BareMetal as i32, id.to_owned());
        let Some(mut record) = resources.get(&key).cloned() else {
            return;
        };
        let phase = if power == Power::On {
            v1::Phase::Running
        } else {
            v1::Phase::Stopped
        };
        if record.state.generation != generation
            || record.state.phase == v1::Phase::Deleting as i32
            || (record.state.observed_generation == generation
                && record.state.phase == phase as i32)
        {
            return;
        }
        record.state.phase = phase as i32;
        record.state.observed_generation = generation;
        record.state.message = format!("PowerState {}", power.as_str());
        record.state.updated_unix_ms = now_ms();
        tracing::info!(server = %id, generation, phase = ?phase, "converged");
        if let Err(e) = self.commit(&mut resources, record, v1::ChangeType::Updated) {
            tracing::warn!(server = %id, error = %e.message(), "could not record convergence");
        }
    }

    /// Servers whose system was switched on or off behind the driver's back
    /// (seen in the hosts just read) are driven back to their spec, as any
    /// level-based controller would: they are reported PROVISIONING with
    /// the reason until the poller has them as asked again.
    pub(super) async fn repair_drift(&self) {
        let mut resources = self.inner.resources.lock().await;
        let drifted: Vec<(Record, Power)> = resources
            .values()
            .filter(|r| {
                r.state.kind == K::BareMetal as i32
                    && r.state.observed_generation == r.state.generation
            })
            .filter_map(|r| {
                let phase = v1::Phase::try_from(r.state.phase).ok()?;
                let host = self.host_view(&r.state.placement.as_ref()?.host)?;
                let off_behind = phase == v1::Phase::Running && host.system.power == Power::Off;
                let on_behind = phase == v1::Phase::Stopped && host.system.power == Power::On;
                (host.up && (off_behind || on_behind)).then(|| (r.clone(), host.system.power))
            })
            .collect();
        for (mut record, power) in drifted {
            tracing::warn!(server = %record.state.id, power = power.as_str(), "power changed behind the driver's back; driving it back");
            record.state.phase = v1::Phase::Provisioning as i32;
            record.state.message = format!(
                "found PowerState {} behind the driver's back; driving it back to the spec",
                power.as_str()
            );
            record.state.updated_unix_ms = now_ms();
            if let Err(e) = self.commit(&mut resources, record, v1::ChangeType::Updated) {
                tracing::warn!(error = %e.message(), "could not record the drift");
            }
        }
    }

    /// The bare-metal servers that have not converged, for the poller.
    pub(super) async fn unconverged(&self) -> Vec<String> {
        let resources = self.inner.resources.lock().await;
        resources
            .values()
            .filter(|r| r.state.kind == K::BareMetal as i32)
            .filter(|r| {
                r.state.phase != v1::Phase::Deleting as i32
                    && (r.state.observed_generation != r.state.generation
                        || !matches!(
                            v1::Phase::try_from(r.state.phase),
                            Ok(v1::Phase::Running | v1::Phase::Stopped)
                        ))
            })
            .map(|r| r.state.id.clone())
            .collect()
    }

    /// Releases `id` one step at a time, never waiting for the BMC to apply
    /// a reset: the first call marks it DELETING and sends ForceOff; once
    /// `PowerState` is Off, the media is ejected, the boot override set back
    /// to the disk and the record forgotten (DELETED, also on Watch). A
    /// delete thus answers within one BMC round trip (a power-off may take a
    /// minute — longer than the controller waits for a call); the poller, or
    /// the controller's next Delete, takes the next step. A BMC failure
    /// leaves the record DELETING and the call UNAVAILABLE.
    pub(super) async fn delete_bare_metal(
        &self,
        id: &str,
    ) -> Result<Option<v1::ResourceState>, Status> {
        let key = (K::BareMetal as i32, id.to_owned());
        {
            let mut resources = self.inner.resources.lock().await;
            let Some(mut record) = resources.get(&key).cloned() else {
                return Ok(None);
            };
            if record.state.phase != v1::Phase::Deleting as i32 {
                record.state.phase = v1::Phase::Deleting as i32;
                record.state.message = "powering off, ejecting the virtual media".to_owned();
                record.state.updated_unix_ms = now_ms();
                self.commit(&mut resources, record, v1::ChangeType::Updated)?;
            }
        }
        let step = self.release_step(id).await;
        self.inner.wake.notify_one();
        step
    }

    /// One step of releasing `id` (see [`Self::delete_bare_metal`]): its
    /// state after the step — DELETING while the system is still on, DELETED
    /// once released — or `None` when it is gone already.
    pub(super) async fn release_step(&self, id: &str) -> Result<Option<v1::ResourceState>, Status> {
        let key = (K::BareMetal as i32, id.to_owned());
        let Some(record) = self.inner.resources.lock().await.get(&key).cloned() else {
            return Ok(None);
        };
        let host_id = record
            .state
            .placement
            .as_ref()
            .map(|p| p.host.clone())
            .unwrap_or_default();
        let host_down = || {
            status(
                Code::Unavailable,
                reasons::HOST_DOWN,
                format!("the BMC of host {host_id} does not answer; deleting again later"),
            )
        };
        match self.host_view(&host_id) {
            Some(host) if host.up => {
                let lock = self.host_lock(&host_id);
                let _guard = lock.lock().await;
                // Read again under the host's lock: another step may have
                // released it meanwhile.
                if !self.inner.resources.lock().await.contains_key(&key) {
                    return Ok(None);
                }
                let bmc = &self.inner.bmcs[host.bmc];
                let system = bmc
                    .system(&host.system.uri)
                    .await
                    .map_err(|e| bmc_failed(&e))?;
                if system.power != Power::Off {
                    self.power(bmc, &system, "ForceOff")
                        .await
                        .map_err(|e| bmc_failed(&e))?;
                    return Ok(self.powering_off(id, &system).await);
                }
                bmc.eject_cd(&system).await.map_err(|e| bmc_failed(&e))?;
                bmc.set_boot(&system, "Hdd", "Continuous")
                    .await
                    .map_err(|e| bmc_failed(&e))?;
                // The next server on this system must not have its first
                // power-on swallowed as a repeat of the last one's.
                let system_key = format!("{}/{}", bmc.name(), system.id);
                self.inner
                    .resets
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&system_key);
            }
            Some(_) => return Err(host_down()),
            // Not seen because its BMC has not answered (since this driver
            // started, or lately): the system may well be on with the
            // tenant's image, so it is not forgotten.
            None if record
                .state
                .outputs
                .get("bmc")
                .is_some_and(|b| self.bmc_unanswered(b)) =>
            {
                return Err(host_down());
            }
            // The system left its BMC (decommissioned): nothing to switch off.
            None => {
                tracing::warn!(server = %id, host = %host_id, "system gone from its BMC; forgetting the server")
            }
        }
        self.forget_released(id, &host_id).await
    }

    /// Notes that `id`'s system is still on after ForceOff; says so louder
    /// once that has lasted `power_timeout_s` (BMCs apply resets late; the
    /// reset is sent again meanwhile). Its state, DELETING.
    async fn powering_off(&self, id: &str, system: &System) -> Option<v1::ResourceState> {
        let since = {
            let mut started = self
                .inner
                .releases
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            *started.entry(id.to_owned()).or_insert_with(Instant::now)
        };
        let waited = since.elapsed().as_secs();
        let message = if waited >= self.inner.config.power_timeout_s {
            tracing::warn!(server = %id, system = %system.id, waited, "still powered after ForceOff");
            format!(
                "still powered {} {waited} s after ForceOff; sending it again",
                system.power.as_str()
            )
        } else {
            "ForceOff sent; waiting for PowerState Off, then ejecting the virtual media".to_owned()
        };
        self.note(id, &message).await;
        let key = (K::BareMetal as i32, id.to_owned());
        self.inner
            .resources
            .lock()
            .await
            .get(&key)
            .map(|r| r.state.clone())
    }

    /// Forgets released `id`: the system is free again, its addresses back
    /// in their subnets; DELETED on Watch.
    async fn forget_released(
        &self,
        id: &str,
        host_id: &str,
    ) -> Result<Option<v1::ResourceState>, Status> {
        let key = (K::BareMetal as i32, id.to_owned());
        let mut resources = self.inner.resources.lock().await;
        self.inner
            .store
            .remove(K::BareMetal as i32, id)
            .map_err(store_failed)?;
        self.inner
            .releases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        let Some(record) = resources.remove(&key) else {
            return Ok(None);
        };
        let mut state = record.state;
        state.phase = v1::Phase::Deleted as i32;
        state.message = "powered off, media ejected, system back in the free pool".to_owned();
        state.updated_unix_ms = now_ms();
        self.inner
            .events
            .resource(v1::ChangeType::Deleted, state.clone());
        tracing::info!(server = %id, host = %host_id, "released");
        Ok(Some(state))
    }

    /// The bare-metal servers being released, for the poller.
    pub(super) async fn releasing(&self) -> Vec<String> {
        let resources = self.inner.resources.lock().await;
        resources
            .values()
            .filter(|r| {
                r.state.kind == K::BareMetal as i32 && r.state.phase == v1::Phase::Deleting as i32
            })
            .map(|r| r.state.id.clone())
            .collect()
    }
}
