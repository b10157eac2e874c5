//! Why a workflow operation was refused or failed. Each variant has a stable code
//! (API: add codes, never rename them) and a Chinese message; the `api` module
//! alone decides the HTTP status.

use thiserror::Error;
use yunshu_domain::order::OrderError;
use yunshu_domain::{DomainError, ErrorCode};
use yunshu_store::StoreError;

#[derive(Debug, Error)]
pub enum WorkflowError {
    /// Missing, or belonging to a tenant the caller may not see (SPEC §1: probing
    /// another tenant's object gives "not found", never "forbidden").
    #[error("no information system {number}")]
    SystemNotFound { number: String },
    /// Missing, or outside the caller's scope (as above).
    #[error("no work order {id}")]
    OrderNotFound { id: String },
    /// The caller sees the object but their roles do not allow this step.
    #[error("your roles do not allow this")]
    Forbidden,
    /// Someone else changed the order between our read and our write.
    #[error("work order {id} was changed by someone else; reload it and try again")]
    OrderConflict { id: String },
    #[error("tenant {tenant} has used all 999 information-system numbers")]
    SystemNumbersExhausted { tenant: String },
    #[error("could not allocate a system number for tenant {tenant}: too much contention")]
    SystemNumberBusy { tenant: String },
    /// A refusal by the domain (state machine, validation), with its own code.
    #[error(transparent)]
    Order(#[from] OrderError),
    #[error(transparent)]
    Invalid(#[from] DomainError),
    #[error("store operation {op} failed")]
    Store {
        op: &'static str,
        #[source]
        source: StoreError,
    },
}

impl WorkflowError {
    pub(crate) fn store(op: &'static str) -> impl FnOnce(StoreError) -> WorkflowError {
        move |source| WorkflowError::Store { op, source }
    }

    pub(crate) fn invalid(e: impl Into<DomainError>) -> WorkflowError {
        WorkflowError::Invalid(e.into())
    }
}

impl ErrorCode for WorkflowError {
    fn code(&self) -> &'static str {
        match self {
            WorkflowError::SystemNotFound { .. } => "SYSTEM_NOT_FOUND",
            WorkflowError::OrderNotFound { .. } => "ORDER_NOT_FOUND",
            WorkflowError::Forbidden => "FORBIDDEN",
            WorkflowError::OrderConflict { .. } => "ORDER_CONFLICT",
            WorkflowError::SystemNumbersExhausted { .. } => "SYSTEM_NUMBERS_EXHAUSTED",
            WorkflowError::SystemNumberBusy { .. } => "SYSTEM_NUMBER_BUSY",
            WorkflowError::Order(e) => e.code(),
            WorkflowError::Invalid(e) => e.code(),
            WorkflowError::Store { .. } => "STORE_UNAVAILABLE",
        }
    }

    fn message_zh(&self) -> String {
        match self {
            WorkflowError::SystemNotFound { number } => format!("未找到信息系统 {number}。"),
            WorkflowError::OrderNotFound { id } => format!("未找到工单 {id}。"),
            WorkflowError::Forbidden => "您的角色无权执行此操作。".to_string(),
            WorkflowError::OrderConflict { id } => {
                format!("工单 {id} 已被他人修改，请刷新后重试。")
            }
            WorkflowError::SystemNumbersExhausted { tenant } => {
                format!("使用单位 {tenant} 的 999 个信息系统编号已全部使用。")
            }
            WorkflowError::SystemNumberBusy { tenant } => {
                format!("为使用单位 {tenant} 分配信息系统编号时冲突过多，请稍后重试。")
            }
            WorkflowError::Order(e) => e.message_zh(),
            WorkflowError::Invalid(e) => e.message_zh(),
            WorkflowError::Store { .. } => "数据存储暂不可用，请稍后重试。".to_string(),
        }
    }
}
