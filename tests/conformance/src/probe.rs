//! The kit's side of the wire: every RPC goes through [`Probe`], which bounds it in
//! time and remembers every error status the driver sent, so that
//! `errors_carry_reason` can judge the whole run and not just one check.

use std::collections::HashSet;
use std::error::Error as _;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;
use yunshu_proto::errors;
use yunshu_proto::tonic::codec::Streaming;
use yunshu_proto::tonic::transport::Channel;
use yunshu_proto::tonic::{Code, Response, Status};
use yunshu_proto::v1::{self, ResourceKind, driver_client::DriverClient};

use crate::Options;
use crate::spec::SpecFactory;

/// A failed check, with what was wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct Fail(pub String);

/// Fails the current check with a formatted message.
macro_rules! fail {
    ($($arg:tt)*) => { return Err($crate::probe::Fail(format!($($arg)*))) };
}

/// Fails the current check unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($arg:tt)*) => { if !$cond { fail!($($arg)*) } };
}

pub(crate) use {ensure, fail};

/// `CODE [REASON]: message`, for failure details.
pub(crate) fn describe(status: &Status) -> String {
    let reason = errors::reason(status)
        .map(|i| i.reason)
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| "no ErrorInfo reason".to_owned());
    format!("{:?} [{reason}]: {}", status.code(), status.message())
}

/// An error status seen during the run.
#[derive(Clone, Debug)]
pub(crate) struct SeenStatus {
    pub check: &'static str,
    pub rpc: &'static str,
    pub code: Code,
    pub reason: Option<String>,
}

/// The client plus the run's memory of error statuses.
pub(crate) struct Probe {
    client: DriverClient<Channel>,
    call_timeout: Duration,
    seen: Mutex<Vec<SeenStatus>>,
    /// Errors raised by the client side (connection refused, reset …): not the
    /// driver's words, so not held to the ErrorInfo rule, but counted for the detail.
    transport_errors: Mutex<usize>,
}

impl Probe {
    pub fn new(client: DriverClient<Channel>, call_timeout: Duration) -> Self {
        Self {
            client,
            call_timeout,
            seen: Mutex::new(Vec::new()),
            transport_errors: Mutex::new(0),
        }
    }

    pub fn seen(&self) -> Vec<SeenStatus> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn transport_errors(&self) -> usize {
        *self
            .transport_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    pub fn record(&self, check: &'static str, rpc: &'static str, status: &Status) {
        // tonic attaches a source error only to statuses it made up on the client
        // side (transport failures); a status the driver sent has none.
        if status.source().is_some() {
            *self
                .transport_errors
                .lock()
                .unwrap_or_else(|p| p.into_inner()) += 1;
            return;
        }
        let reason = errors::reason(status)
            .map(|i| i.reason)
            .filter(|r| !r.is_empty());
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(SeenStatus {
                check,
                rpc,
                code: status.code(),
                reason,
            });
    }

    /// Runs one unary call with the call timeout. A timeout becomes a locally made
    /// DEADLINE_EXCEEDED that is not recorded: the driver never said it.
    async fn call<T>(
        &self,
        check: &'static str,
        rpc: &'static str,
        fut: impl Future<Output = Result<Response<T>, Status>>,
    ) -> Result<T, Status> {
        match tokio::time::timeout(self.call_timeout, fut).await {
            Err(_) => Err(Status::deadline_exceeded(format!(
                "conformance kit: {rpc} got no answer within {} ms",
                self.call_timeout.as_millis()
            ))),
            Ok(Ok(response)) => Ok(response.into_inner()),
            Ok(Err(status)) => {
                self.record(check, rpc, &status);
                Err(status)
            }
        }
    }

    pub async fn get_info(&self, check: &'static str) -> Result<v1::DriverInfo, Status> {
        let mut c = self.client.clone();
        self.call(check, "GetInfo", async move {
            c.get_info(v1::GetInfoRequest {}).await
        })
        .await
    }

    pub async fn get_inventory(&self, check: &'static str) -> Result<v1::Inventory, Status> {
        let mut c = self.client.clone();
        self.call(check, "GetInventory", async move {
            c.get_inventory(v1::GetInventoryRequest {}).await
        })
        .await
    }

    pub async fn apply(
        &self,
        check: &'static str,
        req: v1::ApplyRequest,
    ) -> Result<v1::ApplyResponse, Status> {
        let mut c = self.client.clone();
        self.call(check, "Apply", async move { c.apply(req).await })
            .await
    }

    pub async fn get(
        &self,
        check: &'static str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<v1::ResourceState, Status> {
        let mut c = self.client.clone();
        let req = v1::GetRequest {
            kind: kind as i32,
            id: id.to_owned(),
        };
        self.call(check, "Get", async move { c.get(req).await })
            .await
    }

    /// Delete; `rpc` names the call in the error record ("Delete", or "Delete
    /// (cleanup)" so that a failure report tells the two apart).
    pub async fn delete(
        &self,
        check: &'static str,
        rpc: &'static str,
        kind: ResourceKind,
        id: &str,
    ) -> Result<v1::DeleteResponse, Status> {
        let mut c = self.client.clone();
        let req = v1::DeleteRequest {
            kind: kind as i32,
            id: id.to_owned(),
        };
        self.call(check, rpc, async move { c.delete(req).await })
            .await
    }

    pub async fn list(
        &self,
        check: &'static str,
        req: v1::ListRequest,
    ) -> Result<v1::ListResponse, Status> {
        let mut c = self.client.clone();
        self.call(check, "List", async move { c.list(req).await })
            .await
    }

    pub async fn watch(
        &self,
        check: &'static str,
        cursor: &str,
    ) -> Result<Streaming<v1::WatchEvent>, Status> {
        let mut c = self.client.clone();
        let req = v1::WatchRequest {
            cursor: cursor.to_owned(),
        };
        self.call(check, "Watch", async move { c.watch(req).await })
            .await
    }
}

/// What one check works with. Remembers what it created so the runner can delete
/// it afterwards, even when the check failed or ran out of time.
pub(crate) struct Ctx<'a> {
    pub probe: &'a Probe,
    pub check: &'static str,
    pub spec: &'a SpecFactory,
    pub options: &'a Options,
    created: Mutex<Vec<(ResourceKind, String)>>,
}

impl<'a> Ctx<'a> {
    pub fn new(
        probe: &'a Probe,
        check: &'static str,
        spec: &'a SpecFactory,
        options: &'a Options,
    ) -> Self {
        Self {
            probe,
            check,
            spec,
            options,
            created: Mutex::new(Vec::new()),
        }
    }

    /// Applies `req`, registering it for cleanup first (a call that times out may
    /// still have created something).
    pub async fn apply(&self, req: v1::ApplyRequest) -> Result<v1::ApplyResponse, Status> {
        if let Ok(kind) = ResourceKind::try_from(req.kind)
            && kind != ResourceKind::Unspecified
            && !req.id.is_empty()
        {
            self.created
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((kind, req.id.clone()));
        }
        self.probe.apply(self.check, req).await
    }

    /// Applies `req`, which must succeed.
    pub async fn must_apply(&self, req: v1::ApplyRequest) -> Result<v1::ApplyResponse, Fail> {
        let (id, generation) = (req.id.clone(), req.generation);
        let response = self
            .apply(req)
            .await
            .map_err(|s| Fail(format!("Apply {id} gen {generation}: {}", describe(&s))))?;
        ensure!(
            response.state.is_some(),
            "Apply {id} gen {generation} returned no state"
        );
        Ok(response)
    }

    /// Creates a fresh resource of `kind` at generation 1; returns its id.
    pub async fn create(&self, kind: ResourceKind, label: &str) -> Result<String, Fail> {
        let id = self.spec.new_id(label);
        self.must_apply(self.spec.request(kind, &id, 1)).await?;
        Ok(id)
    }

    pub async fn get(&self, kind: ResourceKind, id: &str) -> Result<v1::ResourceState, Status> {
        self.probe.get(self.check, kind, id).await
    }

    pub async fn delete(&self, kind: ResourceKind, id: &str) -> Result<v1::DeleteResponse, Status> {
        self.probe.delete(self.check, "Delete", kind, id).await
    }

    pub async fn must_delete(
        &self,
        kind: ResourceKind,
        id: &str,
    ) -> Result<v1::DeleteResponse, Fail> {
        self.delete(kind, id)
            .await
            .map_err(|s| Fail(format!("Delete {id}: {}", describe(&s))))
    }

    pub async fn list(&self, req: v1::ListRequest) -> Result<v1::ListResponse, Status> {
        self.probe.list(self.check, req).await
    }

    pub async fn watch(&self, cursor: &str) -> Result<Streaming<v1::WatchEvent>, Fail> {
        self.probe
            .watch(self.check, cursor)
            .await
            .map_err(|s| Fail(format!("Watch from cursor {cursor:?}: {}", describe(&s))))
    }

    /// The next event of `stream`, or a failure when `deadline` passes first.
    pub async fn next_event(
        &self,
        stream: &mut Streaming<v1::WatchEvent>,
        deadline: Instant,
    ) -> Result<v1::WatchEvent, Fail> {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Err(_) => fail!("no watch event within patience"),
            Ok(Ok(Some(event))) => Ok(event),
            Ok(Ok(None)) => fail!("watch stream ended"),
            Ok(Err(status)) => {
                self.probe.record(self.check, "Watch (stream)", &status);
                fail!("watch stream failed: {}", describe(&status))
            }
        }
    }

    /// Every resource of `kind` (all kinds for UNSPECIFIED), page by page.
    pub async fn list_all(
        &self,
        kind: ResourceKind,
        page_size: u32,
    ) -> Result<Vec<v1::ResourceState>, Fail> {
        let deadline = Instant::now() + self.options.patience;
        let mut items = Vec::new();
        let mut token = String::new();
        let mut tokens = HashSet::new();
        loop {
            let page = self
                .list(v1::ListRequest {
                    kind: kind as i32,
                    page_size,
                    page_token: token.clone(),
                })
                .await
                .map_err(|s| Fail(format!("List (token {token:?}): {}", describe(&s))))?;
            items.extend(page.items);
            if page.next_page_token.is_empty() {
                return Ok(items);
            }
            // A token seen before would page forever.
            ensure!(
                tokens.insert(page.next_page_token.clone()),
                "List returned page token {:?} twice",
                page.next_page_token
            );
            ensure!(
                Instant::now() < deadline,
                "listing did not finish within patience ({} items so far)",
                items.len()
            );
            token = page.next_page_token;
        }
    }

    /// Polls Get until the resource runs at `generation` (observed too).
    pub async fn wait_running(
        &self,
        kind: ResourceKind,
        id: &str,
        generation: u64,
    ) -> Result<v1::ResourceState, Fail> {
        self.wait_phase(kind, id, generation, v1::Phase::Running)
            .await
    }

    /// Polls Get until the resource shows `phase` at `generation` (observed
    /// too).
    pub async fn wait_phase(
        &self,
        kind: ResourceKind,
        id: &str,
        generation: u64,
        phase: v1::Phase,
    ) -> Result<v1::ResourceState, Fail> {
        let deadline = Instant::now() + self.options.patience;
        let mut pause = Duration::from_millis(20);
        loop {
            let state = self
                .get(kind, id)
                .await
                .map_err(|s| Fail(format!("Get {id} while converging: {}", describe(&s))))?;
            if state.phase == phase as i32
                && state.generation == generation
                && state.observed_generation == generation
            {
                return Ok(state);
            }
            ensure!(
                state.phase != v1::Phase::Failed as i32,
                "{id} went to PHASE_FAILED: {}",
                state.message
            );
            if Instant::now() + pause > deadline {
                fail!(
                    "{id} did not converge to {} at generation {generation} within {} s: phase {}, generation {}, observed_generation {}",
                    phase_name(phase as i32),
                    self.options.patience.as_secs(),
                    phase_name(state.phase),
                    state.generation,
                    state.observed_generation
                );
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Polls Get until it answers NOT_FOUND.
    pub async fn wait_gone(&self, kind: ResourceKind, id: &str) -> Result<(), Fail> {
        self.gone_by(kind, id, Instant::now() + self.options.patience)
            .await
    }

    async fn gone_by(&self, kind: ResourceKind, id: &str, deadline: Instant) -> Result<(), Fail> {
        let mut pause = Duration::from_millis(20);
        loop {
            match self.get(kind, id).await {
                Err(s) if s.code() == Code::NotFound => return Ok(()),
                Err(s) => fail!("Get {id} while deleting: {}", describe(&s)),
                Ok(state) => {
                    if Instant::now() + pause > deadline {
                        fail!(
                            "{id} still there {} s after Delete (phase {})",
                            self.options.patience.as_secs(),
                            phase_name(state.phase)
                        );
                    }
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// Drops (kind, id) from what `cleanup` deletes: the check deleted it and saw
    /// it gone.
    pub fn forget(&self, kind: ResourceKind, id: &str) {
        self.created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(k, i)| !(*k == kind && i == id));
    }

    /// Deletes everything this check applied, newest first (what a resource
    /// names was created before it, so it must go after it), and waits until it
    /// is gone, so the next check starts on a driver without it (a bare-metal
    /// host free again). A Delete refused with FAILED_PRECONDITION (still named
    /// by something not gone yet) is tried again once the others are gone, all
    /// within one patience. Errors are only recorded: the check has already
    /// been judged.
    pub async fn cleanup(&self) {
        let created = std::mem::take(&mut *self.created.lock().unwrap_or_else(|p| p.into_inner()));
        let mut seen = HashSet::new();
        let mut pending: Vec<(ResourceKind, String)> = created
            .into_iter()
            .rev()
            .filter(|key| seen.insert(key.clone()))
            .collect();
        let deadline = Instant::now() + self.options.patience;
        loop {
            let mut refused = Vec::new();
            let mut deleting = Vec::new();
            for (kind, id) in pending {
                match self
                    .probe
                    .delete(self.check, "Delete (cleanup)", kind, &id)
                    .await
                {
                    Ok(r) if r.existed => deleting.push((kind, id)),
                    Ok(_) => {}
                    Err(s) if s.code() == Code::FailedPrecondition => refused.push((kind, id)),
                    Err(_) => {}
                }
            }
            let progressed = !deleting.is_empty();
            for (kind, id) in deleting {
                let _ = self.gone_by(kind, &id, deadline).await;
            }
            if refused.is_empty() || Instant::now() >= deadline {
                return;
            }
            if !progressed {
                // Held by something this check did not create: give it a moment.
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            pending = refused;
        }
    }
}

pub(crate) fn phase_name(phase: i32) -> &'static str {
    v1::Phase::try_from(phase).map_or("UNKNOWN", |p| p.as_str_name())
}

/// Expects `result` to be an error with `code`; returns the status.
pub(crate) fn expect_code<T>(
    result: Result<T, Status>,
    code: Code,
    what: &str,
) -> Result<Status, Fail> {
    match result {
        Ok(_) => fail!("{what}: expected {code:?}, got success"),
        Err(s) if s.code() == code => Ok(s),
        Err(s) => fail!("{what}: expected {code:?}, got {}", describe(&s)),
    }
}
