//! The one trait a driver implements.

use async_trait::async_trait;
use yunshu_proto::tonic::Status;
use yunshu_proto::v1;

/// A provider's platform, as yunshu sees it.
///
/// Errors are `tonic::Status` built with [`crate::status`] so that they carry a
/// machine-readable reason: retryable codes (UNAVAILABLE, DEADLINE_EXCEEDED,
/// ABORTED) for transient trouble, terminal ones (INVALID_ARGUMENT,
/// FAILED_PRECONDITION, RESOURCE_EXHAUSTED, NOT_FOUND) otherwise.
///
/// Every change of a resource's observed state (created, phase moved, deleted) and
/// of the inventory (host down/up) must be reported through the
/// [`crate::EventSink`] the driver was built with: that is what `Watch` streams.
#[async_trait]
pub trait Driver: Send + Sync + 'static {
    /// Name, version, kinds and architectures. The SDK fills in `provider` and
    /// `protocol_version`.
    fn info(&self) -> v1::DriverInfo;

    /// The provider's capacity now.
    async fn inventory(&self) -> Result<v1::Inventory, Status>;

    /// Converges resource (kind, id) to `request`.
    ///
    /// The SDK calls this only with a validated request (kind matches the spec,
    /// generation ≥ 1, id and idempotency key present) whose generation is newer
    /// than the one the driver holds, and never concurrently for the same resource.
    /// Returns the state right after accepting the request; later progress goes
    /// through the event sink.
    async fn apply(&self, request: &v1::ApplyRequest) -> Result<v1::ResourceState, Status>;

    /// The resource's observed state, or `None` if the driver does not have it.
    async fn get(
        &self,
        kind: v1::ResourceKind,
        id: &str,
    ) -> Result<Option<v1::ResourceState>, Status>;

    /// Starts deleting; `None` if there was nothing to delete. Idempotent.
    async fn delete(
        &self,
        kind: v1::ResourceKind,
        id: &str,
    ) -> Result<Option<v1::ResourceState>, Status>;

    /// Up to `limit` resources (all kinds when `kind` is `None`), ordered by
    /// (kind, id), strictly after `after`. The order must be stable so that
    /// pagination visits every resource once.
    async fn list(
        &self,
        kind: Option<v1::ResourceKind>,
        after: Option<(v1::ResourceKind, String)>,
        limit: usize,
    ) -> Result<Vec<v1::ResourceState>, Status>;

    /// Usage counters of the VMs named (all when `ids` is empty), sampled
    /// now. A driver that measures nothing keeps this answer: `UNIMPLEMENTED`
    /// with `METRICS_UNSUPPORTED`, never made-up figures.
    async fn metrics(&self, ids: &[String]) -> Result<Vec<v1::VmMetrics>, Status> {
        let _ = ids;
        Err(yunshu_proto::errors::status(
            yunshu_proto::tonic::Code::Unimplemented,
            yunshu_proto::errors::reasons::METRICS_UNSUPPORTED,
            "this driver measures no usage",
        ))
    }
}
