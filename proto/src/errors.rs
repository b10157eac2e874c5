//! The driver error contract.
//!
//! Retryable codes (the controller backs off and tries again): UNAVAILABLE,
//! DEADLINE_EXCEEDED, ABORTED, RESOURCE_EXHAUSTED is **not** among them — it means
//! the provider is out of capacity for this request, a terminal condition for the
//! placement it was given. Terminal codes: INVALID_ARGUMENT, FAILED_PRECONDITION,
//! RESOURCE_EXHAUSTED, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, UNIMPLEMENTED.
//!
//! Every error a driver returns carries an [`v1::ErrorInfo`] in the status details
//! with a stable `reason`; the controller decides on the code and the reason, never
//! on the message text.

use prost::Message;
use tonic::{Code, Status};

use crate::v1;

/// Whether the controller should retry a call that failed with `code`.
pub fn is_retryable(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable | Code::DeadlineExceeded | Code::Aborted | Code::Unknown
    )
}

/// A status with a machine-readable reason (and optional metadata) in its details.
pub fn status(code: Code, reason: &str, message: impl Into<String>) -> Status {
    status_with(
        code,
        reason,
        message,
        std::iter::empty::<(String, String)>(),
    )
}

pub fn status_with(
    code: Code,
    reason: &str,
    message: impl Into<String>,
    metadata: impl IntoIterator<Item = (String, String)>,
) -> Status {
    let info = v1::ErrorInfo {
        reason: reason.to_owned(),
        metadata: metadata.into_iter().collect(),
    };
    Status::with_details(code, message, info.encode_to_vec().into())
}

/// The reason a driver gave, if its status carries one.
pub fn reason(status: &Status) -> Option<v1::ErrorInfo> {
    let details = status.details();
    if details.is_empty() {
        return None;
    }
    v1::ErrorInfo::decode(details).ok()
}

/// Reasons the SDK and the shipped drivers use. Drivers may add their own.
pub mod reasons {
    pub const INVALID_SPEC: &str = "INVALID_SPEC";
    pub const RESOURCE_NOT_FOUND: &str = "RESOURCE_NOT_FOUND";
    pub const CURSOR_EXPIRED: &str = "CURSOR_EXPIRED";
    pub const WATCH_DROPPED: &str = "WATCH_DROPPED";
    pub const IDEMPOTENCY_KEY_REUSED: &str = "IDEMPOTENCY_KEY_REUSED";
    pub const STALE_GENERATION: &str = "STALE_GENERATION";
    pub const PLACEMENT_INVALID: &str = "PLACEMENT_INVALID";
    pub const HOST_MEMORY_EXHAUSTED: &str = "HOST_MEMORY_EXHAUSTED";
    pub const HOST_VCPU_EXHAUSTED: &str = "HOST_VCPU_EXHAUSTED";
    pub const HOST_DOWN: &str = "HOST_DOWN";
    pub const STORAGE_EXHAUSTED: &str = "STORAGE_EXHAUSTED";
    pub const IP_POOL_EXHAUSTED: &str = "IP_POOL_EXHAUSTED";
    pub const BANDWIDTH_EXHAUSTED: &str = "BANDWIDTH_EXHAUSTED";
    pub const ARCH_MISMATCH: &str = "ARCH_MISMATCH";
    pub const INJECTED_FAULT: &str = "INJECTED_FAULT";
    pub const KIND_UNSUPPORTED: &str = "KIND_UNSUPPORTED";
    /// FAILED_PRECONDITION: the spec names a resource the driver does not have
    /// (or is deleting); apply it once that resource exists.
    pub const DEPENDENCY_NOT_FOUND: &str = "DEPENDENCY_NOT_FOUND";
    /// FAILED_PRECONDITION: another live resource still names this one
    /// (metadata `used_by`); delete or change that one first.
    pub const RESOURCE_IN_USE: &str = "RESOURCE_IN_USE";
    /// FAILED_PRECONDITION: no free host of the requested bare-metal model.
    pub const MODEL_UNAVAILABLE: &str = "MODEL_UNAVAILABLE";
    /// UNIMPLEMENTED: the driver measures no usage (`GetMetrics`).
    pub const METRICS_UNSUPPORTED: &str = "METRICS_UNSUPPORTED";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_round_trips_through_status_details() {
        let s = status(
            Code::FailedPrecondition,
            reasons::HOST_MEMORY_EXHAUSTED,
            "full",
        );
        let info = reason(&s).expect("details");
        assert_eq!(info.reason, "HOST_MEMORY_EXHAUSTED");
        assert!(!is_retryable(s.code()));
        assert!(is_retryable(Code::Unavailable));
        assert!(reason(&Status::internal("x")).is_none());
    }
}
