//! The gRPC service: what every driver gets for free around its [`Driver`].

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use yunshu_proto::convert::spec_kind;
use yunshu_proto::errors::{reasons, status};
use yunshu_proto::tonic::{self, Code, Request, Response, Status};
use yunshu_proto::v1;
use yunshu_proto::v1::driver_server::Driver as DriverRpc;

use crate::driver::Driver;
use crate::events::EventLog;

/// Largest page `List` returns.
const MAX_PAGE: usize = 1000;
const DEFAULT_PAGE: usize = 100;

type ResourceKey = (i32, String);

/// Wraps a [`Driver`] into the `yunshu.provider.v1.Driver` gRPC service.
pub struct DriverService<D> {
    driver: Arc<D>,
    events: EventLog,
    provider: String,
    /// Idempotency key → the resource it was first used for.
    keys: Mutex<HashMap<String, ResourceKey>>,
    /// One lock per resource, so two Applies of the same resource never race.
    locks: Mutex<HashMap<ResourceKey, Arc<tokio::sync::Mutex<()>>>>,
}

impl<D: Driver> DriverService<D> {
    pub fn new(driver: Arc<D>, events: EventLog, provider: impl Into<String>) -> Self {
        Self {
            driver,
            events,
            provider: provider.into(),
            keys: Mutex::new(HashMap::new()),
            locks: Mutex::new(HashMap::new()),
        }
    }

    /// The tonic server for this service.
    pub fn into_server(self) -> v1::driver_server::DriverServer<Self> {
        v1::driver_server::DriverServer::new(self)
    }

    fn lock_for(&self, key: &ResourceKey) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(key.clone()).or_default().clone()
    }
}

fn invalid(message: impl Into<String>) -> Status {
    status(Code::InvalidArgument, reasons::INVALID_SPEC, message)
}

fn kind_of(raw: i32) -> Result<v1::ResourceKind, Status> {
    match v1::ResourceKind::try_from(raw) {
        Ok(v1::ResourceKind::Unspecified) | Err(_) => {
            Err(invalid(format!("resource kind {raw} is not a known kind")))
        }
        Ok(k) => Ok(k),
    }
}

/// Checks what the SDK can check without knowing the provider.
fn validate_apply(req: &v1::ApplyRequest) -> Result<v1::ResourceKind, Status> {
    let kind = kind_of(req.kind)?;
    if req.id.is_empty() || req.id.len() > 255 {
        return Err(invalid("id must be 1 to 255 bytes"));
    }
    if req.generation == 0 {
        return Err(invalid("generation starts at 1"));
    }
    if req.idempotency_key.is_empty() {
        return Err(invalid("idempotency_key is required"));
    }
    let spec = req
        .spec
        .as_ref()
        .and_then(|s| s.spec.as_ref())
        .ok_or_else(|| invalid("spec is required"))?;
    if spec_kind(spec) != kind {
        return Err(invalid(format!(
            "spec is for {:?} but kind is {:?}",
            spec_kind(spec),
            kind
        )));
    }
    Ok(kind)
}

/// Runs one change of the driver in a task of its own, holding the
/// resource's lock until it ends. A caller that goes away (the controller
/// killed mid-call drops the connection, and tonic drops this handler's
/// future) must not cut a change off half-way: a VM recorded as booting
/// whose QEMU was never started stays so forever, because the retried
/// generation is answered as a no-op.
async fn run_to_completion<D, F, Fut, T>(
    driver: &Arc<D>,
    guard: tokio::sync::OwnedMutexGuard<()>,
    change: F,
) -> Result<T, Status>
where
    D: Driver,
    F: FnOnce(Arc<D>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, Status>> + Send + 'static,
    T: Send + 'static,
{
    let driver = driver.clone();
    tokio::spawn(async move {
        let out = change(driver).await;
        drop(guard);
        out
    })
    .await
    .map_err(|e| {
        status(
            Code::Internal,
            "DRIVER_PANICKED",
            format!("the driver's change failed: {e}"),
        )
    })?
}

/// Page tokens are "<kind number>/<id>" of the last item returned.
fn parse_token(token: &str) -> Result<Option<(v1::ResourceKind, String)>, Status> {
    if token.is_empty() {
        return Ok(None);
    }
    let (kind, id) = token
        .split_once('/')
        .ok_or_else(|| invalid("page_token is not one this driver issued"))?;
    let kind = kind
        .parse::<i32>()
        .ok()
        .and_then(|k| v1::ResourceKind::try_from(k).ok())
        .ok_or_else(|| invalid("page_token is not one this driver issued"))?;
    Ok(Some((kind, id.to_owned())))
}

#[tonic::async_trait]
impl<D: Driver> DriverRpc for DriverService<D> {
    async fn get_info(
        &self,
        _: Request<v1::GetInfoRequest>,
    ) -> Result<Response<v1::DriverInfo>, Status> {
        let mut info = self.driver.info();
        info.provider.clone_from(&self.provider);
        info.protocol_version = yunshu_proto::PROTOCOL_VERSION as i32;
        Ok(Response::new(info))
    }

    async fn get_inventory(
        &self,
        _: Request<v1::GetInventoryRequest>,
    ) -> Result<Response<v1::Inventory>, Status> {
        Ok(Response::new(self.driver.inventory().await?))
    }

    async fn apply(
        &self,
        request: Request<v1::ApplyRequest>,
    ) -> Result<Response<v1::ApplyResponse>, Status> {
        let req = request.into_inner();
        let kind = validate_apply(&req)?;
        let key: ResourceKey = (kind as i32, req.id.clone());
        {
            let keys = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(owner) = keys.get(&req.idempotency_key)
                && owner != &key
            {
                return Err(status(
                    Code::FailedPrecondition,
                    reasons::IDEMPOTENCY_KEY_REUSED,
                    format!(
                        "idempotency key {} was used for another resource ({})",
                        req.idempotency_key, owner.1
                    ),
                ));
            }
        }
        let lock = self.lock_for(&key);
        let guard = lock.lock_owned().await;
        let existing = self.driver.get(kind, &req.id).await?;
        if let Some(current) = &existing {
            // Level-based: the same generation again is a no-op.
            if current.generation == req.generation {
                return Ok(Response::new(v1::ApplyResponse {
                    state: Some(current.clone()),
                    created: false,
                    changed: false,
                }));
            }
            if current.generation > req.generation {
                return Err(status(
                    Code::FailedPrecondition,
                    reasons::STALE_GENERATION,
                    format!(
                        "{} is at generation {}; generation {} is older",
                        req.id, current.generation, req.generation
                    ),
                ));
            }
        }
        let state = run_to_completion(&self.driver, guard, {
            let req = req.clone();
            move |d| async move { d.apply(&req).await }
        })
        .await?;
        self.keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(req.idempotency_key.clone(), key);
        Ok(Response::new(v1::ApplyResponse {
            state: Some(state),
            created: existing.is_none(),
            changed: true,
        }))
    }

    async fn get(
        &self,
        request: Request<v1::GetRequest>,
    ) -> Result<Response<v1::ResourceState>, Status> {
        let req = request.into_inner();
        let kind = kind_of(req.kind)?;
        match self.driver.get(kind, &req.id).await? {
            Some(state) => Ok(Response::new(state)),
            None => Err(status(
                Code::NotFound,
                reasons::RESOURCE_NOT_FOUND,
                format!("no {kind:?} with id {:?}", req.id),
            )),
        }
    }

    async fn delete(
        &self,
        request: Request<v1::DeleteRequest>,
    ) -> Result<Response<v1::DeleteResponse>, Status> {
        let req = request.into_inner();
        let kind = kind_of(req.kind)?;
        let key: ResourceKey = (kind as i32, req.id.clone());
        let lock = self.lock_for(&key);
        let guard = lock.lock_owned().await;
        let id = req.id.clone();
        let state = run_to_completion(&self.driver, guard, move |d| async move {
            d.delete(kind, &id).await
        })
        .await?;
        Ok(Response::new(v1::DeleteResponse {
            existed: state.is_some(),
            state,
        }))
    }

    async fn list(
        &self,
        request: Request<v1::ListRequest>,
    ) -> Result<Response<v1::ListResponse>, Status> {
        let req = request.into_inner();
        let kind = match v1::ResourceKind::try_from(req.kind) {
            Ok(v1::ResourceKind::Unspecified) => None,
            Ok(k) => Some(k),
            Err(_) => return Err(invalid(format!("resource kind {} is not known", req.kind))),
        };
        let limit = match req.page_size as usize {
            0 => DEFAULT_PAGE,
            n => n.min(MAX_PAGE),
        };
        let after = parse_token(&req.page_token)?;
        // One more than asked tells whether another page exists.
        let mut items = self.driver.list(kind, after, limit + 1).await?;
        let next_page_token = if items.len() > limit {
            items.truncate(limit);
            items
                .last()
                .map(|s| format!("{}/{}", s.kind, s.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(v1::ListResponse {
            items,
            next_page_token,
        }))
    }

    async fn get_metrics(
        &self,
        request: Request<v1::GetMetricsRequest>,
    ) -> Result<Response<v1::GetMetricsResponse>, Status> {
        let req = request.into_inner();
        if req.ids.len() > MAX_PAGE {
            return Err(invalid(format!("at most {MAX_PAGE} ids per request")));
        }
        Ok(Response::new(v1::GetMetricsResponse {
            vms: self.driver.metrics(&req.ids).await?,
        }))
    }

    type WatchStream = tokio_stream::wrappers::ReceiverStream<Result<v1::WatchEvent, Status>>;

    async fn watch(
        &self,
        request: Request<v1::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        Ok(Response::new(
            self.events.watch(&request.into_inner().cursor)?,
        ))
    }
}
