//! Authentication refusals as API errors: the one mapping of [`AuthError`] to
//! HTTP statuses, stable codes and both languages.

use axum::http::StatusCode;
use yunshu_auth::AuthError;

use crate::domain_error::invalid as domain_invalid;
use crate::error::ApiError;

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Unauthenticated => ApiError::refused(
                StatusCode::UNAUTHORIZED,
                "AUTH_REQUIRED",
                "Sign in first.",
                "请先登录。",
            ),
            AuthError::CsrfFailed => ApiError::refused(
                StatusCode::FORBIDDEN,
                "CSRF_FAILED",
                "Missing or wrong X-CSRF-Token header; reload the page and try again.",
                "缺少或错误的 X-CSRF-Token 请求头，请刷新页面后重试。",
            ),
            AuthError::Forbidden => ApiError::refused(
                StatusCode::FORBIDDEN,
                "FORBIDDEN",
                "Your roles do not allow this.",
                "您的角色无权执行此操作。",
            ),
            AuthError::LoginFailed => ApiError::refused(
                StatusCode::UNAUTHORIZED,
                "LOGIN_FAILED",
                "Wrong user name or password.",
                "用户名或密码错误。",
            ),
            AuthError::AccountLocked { minutes } => ApiError::refused(
                StatusCode::LOCKED,
                "ACCOUNT_LOCKED",
                format!("Too many failed logins; try again in {minutes} minutes."),
                format!("登录失败次数过多，请 {minutes} 分钟后再试。"),
            ),
            AuthError::PasswordTooWeak { min_length } => ApiError::refused(
                StatusCode::BAD_REQUEST,
                "PASSWORD_TOO_WEAK",
                format!("Passwords need at least {min_length} characters with letters and digits."),
                format!("密码至少 {min_length} 位，且须同时包含字母和数字。"),
            ),
            AuthError::RolesSeparated { first, second } => ApiError::refused(
                StatusCode::CONFLICT,
                "ROLES_SEPARATED",
                format!(
                    "{first} and {second} must be held by different people: system, security and audit administrators are kept apart, and none of them holds a tenant-data role (三员分立)."
                ),
                format!(
                    "{first} 与 {second} 须由不同人员担任：系统管理员、安全管理员、安全审计员三员分立，且均不得持有使用单位业务角色。"
                ),
            ),
            AuthError::PasswordSetByUser => ApiError::refused(
                StatusCode::BAD_REQUEST,
                "PASSWORD_SET_BY_USER",
                "Platform administrators do not set passwords: leave it out and hand the one-time activation link to the user, who sets their own.",
                "平台管理员不设置用户密码：请留空，并将一次性激活链接交给用户本人设置密码。",
            ),
            AuthError::ActivationInvalid => ApiError::refused(
                StatusCode::BAD_REQUEST,
                "ACTIVATION_INVALID",
                "This activation code is unknown, already used or expired; ask your administrator for a new one.",
                "激活码无效、已使用或已过期，请联系管理员重新发放。",
            ),
            AuthError::UserRolesRequired => ApiError::refused(
                StatusCode::BAD_REQUEST,
                "USER_ROLES_REQUIRED",
                "A user needs at least one role.",
                "用户至少需要一个角色。",
            ),
            AuthError::TenantNotFound { code } => ApiError::refused(
                StatusCode::NOT_FOUND,
                "TENANT_NOT_FOUND",
                format!("No tenant {code}."),
                format!("未找到使用单位 {code}。"),
            ),
            AuthError::OrgUnitNotFound { id } => ApiError::refused(
                StatusCode::NOT_FOUND,
                "ORG_UNIT_NOT_FOUND",
                format!("No org unit {id}."),
                format!("未找到组织机构 {id}。"),
            ),
            AuthError::UserExists { id } => ApiError::refused(
                StatusCode::CONFLICT,
                "USER_EXISTS",
                format!("User {id} already exists."),
                format!("用户 {id} 已存在。"),
            ),
            AuthError::UserNotFound { id } => ApiError::refused(
                StatusCode::NOT_FOUND,
                "USER_NOT_FOUND",
                format!("No user {id}."),
                format!("未找到用户 {id}。"),
            ),
            AuthError::UserIsCaller => ApiError::refused(
                StatusCode::CONFLICT,
                "USER_IS_CALLER",
                "You cannot do this to your own account; ask another administrator.",
                "不能对自己的账号执行此操作，请由其他管理员办理。",
            ),
            AuthError::RoleBindingNotFound { id } => ApiError::refused(
                StatusCode::NOT_FOUND,
                "ROLE_BINDING_NOT_FOUND",
                format!("This user has no role binding {id}."),
                format!("该用户没有角色授权 {id}。"),
            ),
            AuthError::RoleBindingExists { role, scope } => ApiError::refused(
                StatusCode::CONFLICT,
                "ROLE_BINDING_EXISTS",
                format!("The user already holds {role} at {scope}; adjust that binding instead."),
                format!("该用户已在 {scope} 持有角色 {role}，请调整原有授权。"),
            ),
            AuthError::UserChanged { id } => ApiError::refused(
                StatusCode::CONFLICT,
                "USER_CHANGED",
                format!("User {id} was changed by someone else meanwhile; reload and try again."),
                format!("用户 {id} 已被他人修改，请刷新后重试。"),
            ),
            AuthError::TokenRequestInvalid { max_days } => ApiError::refused(
                StatusCode::BAD_REQUEST,
                "TOKEN_REQUEST_INVALID",
                format!(
                    "A token needs a name (1–100 characters), at least one scope and 1–{max_days} days."
                ),
                format!("令牌需要名称（1–100 字）、至少一个权限范围，有效期 1–{max_days} 天。"),
            ),
            AuthError::TokenOutlivesCaller { expires_at } => ApiError::refused(
                StatusCode::FORBIDDEN,
                "TOKEN_OUTLIVES_CALLER",
                format!(
                    "A token cannot mint a token that lives longer than itself (it expires at {}); ask for fewer days.",
                    expires_at.to_rfc3339()
                ),
                format!(
                    "令牌不能签发比自身有效期更长的令牌（本令牌于 {} 到期），请缩短有效期。",
                    expires_at.to_rfc3339()
                ),
            ),
            AuthError::TokenIdCollision => ApiError::refused(
                StatusCode::CONFLICT,
                "TOKEN_ID_COLLISION",
                "Please try again.",
                "请重试。",
            ),
            AuthError::TokenNotFound { id } => ApiError::refused(
                StatusCode::NOT_FOUND,
                "TOKEN_NOT_FOUND",
                format!("No token {id}."),
                format!("未找到令牌 {id}。"),
            ),
            AuthError::Invalid(e) => domain_invalid(&e),
            AuthError::Store(e) => ApiError::from(e),
            e @ (AuthError::Build { .. } | AuthError::Hash(_)) => ApiError::internal(e),
        }
    }
}
