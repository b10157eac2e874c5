//! One authenticated OpenStack session and the REST calls the driver makes.
//!
//! `openstack_sdk` does Keystone v3 (password or application credential),
//! the service catalog, endpoint version discovery and token renewal; the
//! requests themselves go through one generic [`RestEndpoint`] with a JSON
//! body, so each service is a path and a microversion here rather than one
//! of the SDK's generated per-service crates (see README: build time).
//!
//! Errors keep the HTTP status so the driver can tell "gone" (404), "busy"
//! (409, 5xx: retry) and "refused" (400) apart without reading messages.

use std::borrow::Cow;
use std::time::Duration;

use openstack_sdk::api::rest_endpoint_prelude::{
    ApiVersion, BodyError, QueryParams, RestEndpoint, ServiceType,
};
use openstack_sdk::api::{QueryAsync, raw};
use openstack_sdk::config::{Auth, CloudConfig};
use openstack_sdk::{AsyncOpenStack, RenewHandle};
use secrecy::SecretString;
use serde_json::Value;

/// Which API a call goes to, with the microversion the driver was written
/// against (Nova 2.60: tags on create; Placement 1.17: traits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Compute,
    Network,
    Volume,
    LoadBalancer,
    Placement,
    Image,
}

impl Service {
    fn service_type(self) -> ServiceType {
        match self {
            Service::Compute => ServiceType::Compute,
            Service::Network => ServiceType::Network,
            Service::Volume => ServiceType::BlockStorage,
            Service::LoadBalancer => ServiceType::LoadBalancer,
            Service::Placement => ServiceType::Placement,
            Service::Image => ServiceType::Image,
        }
    }

    /// The version segment of the path when the catalog endpoint is the
    /// service's root (as Neutron's, Glance's and Octavia's usually are).
    fn prefix(self) -> &'static str {
        match self {
            Service::Network => "v2.0/",
            Service::Image | Service::LoadBalancer => "v2/",
            _ => "",
        }
    }

    /// The API version whose endpoint is used (from the catalog and version
    /// discovery, as the SDK's generated requests do), and the microversion
    /// asked for.
    fn version(self) -> (ApiVersion, ApiVersion) {
        match self {
            Service::Compute => (ApiVersion::new(2, 1), ApiVersion::new(2, 60)),
            Service::Network => (ApiVersion::new(2, 0), ApiVersion::new(2, 0)),
            Service::Volume => (ApiVersion::new(3, 0), ApiVersion::new(3, 0)),
            Service::LoadBalancer => (ApiVersion::new(2, 0), ApiVersion::new(2, 0)),
            Service::Placement => (ApiVersion::new(1, 0), ApiVersion::new(1, 17)),
            Service::Image => (ApiVersion::new(2, 0), ApiVersion::new(2, 0)),
        }
    }
}

/// A failed call: the step, and the HTTP status when the service answered.
#[derive(Debug, thiserror::Error)]
pub enum CloudError {
    #[error("connecting to Keystone at {auth_url}")]
    Connect {
        auth_url: String,
        #[source]
        source: Box<openstack_sdk::OpenStackError>,
    },
    #[error("{method} {service:?} {path}: no answer")]
    Transport {
        method: &'static str,
        service: Service,
        path: String,
        message: String,
    },
    #[error("{method} {service:?} {path}: HTTP {status}: {message}")]
    Http {
        method: &'static str,
        service: Service,
        path: String,
        status: u16,
        message: String,
    },
    #[error("{method} {service:?} {path}: answer is not JSON")]
    Decode {
        method: &'static str,
        service: Service,
        path: String,
        #[source]
        source: serde_json::Error,
    },
}

impl CloudError {
    /// The HTTP status the service answered with, if it answered.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            CloudError::Http { status, .. } => Some(*status),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        self.http_status() == Some(404)
    }
}

/// How to authenticate; the secret never appears in `Debug` output.
#[derive(Clone)]
pub enum Credentials {
    Password {
        username: String,
        user_domain: String,
        password: SecretString,
        project: String,
        project_domain: String,
    },
    /// Application credentials are scoped to their project by Keystone.
    ApplicationCredential { id: String, secret: SecretString },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Password {
                username, project, ..
            } => write!(f, "password(user {username}, project {project})"),
            Credentials::ApplicationCredential { id, .. } => {
                write!(f, "application_credential({id})")
            }
        }
    }
}

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct CloudConfigInput {
    pub auth_url: String,
    pub region: Option<String>,
    pub credentials: Credentials,
}

/// An authenticated session; cheap to share behind an `Arc`.
pub struct Cloud {
    session: AsyncOpenStack,
    /// Keeps the background token renewal running while the session lives.
    _renew: RenewHandle,
}

/// Renew the token this long before it expires, so no call races expiry.
const RENEW_MARGIN_MINUTES: i64 = 10;

/// Per-call HTTP timeout: a hung API must not hold a resource's lock forever.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

impl Cloud {
    /// Authenticates and fetches the catalog. Keystone's answer is not cached
    /// on disk (`auth_cache` off): the driver holds its token in memory only.
    pub async fn connect(input: &CloudConfigInput) -> Result<Cloud, CloudError> {
        let mut auth = Auth {
            auth_url: Some(input.auth_url.clone()),
            ..Default::default()
        };
        let auth_type = match &input.credentials {
            Credentials::Password {
                username,
                user_domain,
                password,
                project,
                project_domain,
            } => {
                auth.username = Some(username.clone());
                auth.user_domain_name = Some(user_domain.clone());
                auth.password = Some(password.clone());
                auth.project_name = Some(project.clone());
                auth.project_domain_name = Some(project_domain.clone());
                "v3password"
            }
            Credentials::ApplicationCredential { id, secret } => {
                auth.application_credential_id = Some(id.clone());
                auth.application_credential_secret = Some(secret.clone());
                "v3applicationcredential"
            }
        };
        let config = CloudConfig {
            auth: Some(auth),
            auth_type: Some(auth_type.to_owned()),
            region_name: input.region.clone(),
            interface: Some("public".to_owned()),
            name: Some("yunshu".to_owned()),
            auth_cache: Some(false),
            ..Default::default()
        };
        let session = AsyncOpenStack::builder(&config)
            .disable_auth_cache(true)
            .http_timeout(CALL_TIMEOUT)
            .connect()
            .await
            .map_err(|e| CloudError::Connect {
                auth_url: input.auth_url.clone(),
                source: Box::new(e),
            })?;
        let renew = session.enable_auto_renew(chrono::TimeDelta::minutes(RENEW_MARGIN_MINUTES));
        Ok(Cloud {
            session,
            _renew: renew,
        })
    }

    /// The id of the project the token is scoped to.
    pub fn project_id(&self) -> Option<String> {
        let info = self.session.get_auth_info()?;
        let project = info.token.project?;
        project.id
    }

    pub async fn get(&self, service: Service, path: &str) -> Result<Value, CloudError> {
        self.call(service, Method::Get, path, None).await
    }

    pub async fn post(
        &self,
        service: Service,
        path: &str,
        body: Value,
    ) -> Result<Value, CloudError> {
        self.call(service, Method::Post, path, Some(body)).await
    }

    pub async fn put(
        &self,
        service: Service,
        path: &str,
        body: Value,
    ) -> Result<Value, CloudError> {
        self.call(service, Method::Put, path, Some(body)).await
    }

    /// DELETE; a 404 is success (already gone), which makes deletes idempotent.
    pub async fn delete(&self, service: Service, path: &str) -> Result<(), CloudError> {
        match self.call(service, Method::Delete, path, None).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// One request; `path` is relative to the service's versioned root and may
    /// carry a query string.
    pub async fn call(
        &self,
        service: Service,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CloudError> {
        let (version, microversion) = service.version();
        let (path_only, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let endpoint = Call {
            service,
            method,
            path: format!("{}{path_only}", service.prefix()),
            query: query
                .map(|q| {
                    q.split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect()
                })
                .unwrap_or_default(),
            body: body.map(|b| b.to_string().into_bytes()),
            version,
            microversion,
        };
        let rsp: http::Response<bytes::Bytes> = raw(endpoint)
            .skip_error_check(true)
            .query_async(&self.session)
            .await
            .map_err(|e| CloudError::Transport {
                method: method.name(),
                service,
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let status = rsp.status().as_u16();
        let bytes = rsp.body();
        if !(200..300).contains(&status) {
            return Err(CloudError::Http {
                method: method.name(),
                service,
                path: path.to_owned(),
                status,
                message: error_message(bytes),
            });
        }
        if bytes.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(bytes).map_err(|source| CloudError::Decode {
            method: method.name(),
            service,
            path: path.to_owned(),
            source,
        })
    }
}

/// The human part of an OpenStack error body: Nova wraps it as
/// `{"itemNotFound": {"message": …}}`, Neutron as `{"NeutronError": {…}}`,
/// Octavia and Placement as `{"faultstring": …}` / `{"errors": [{"detail": …}]}`.
fn error_message(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return text.chars().take(300).collect();
    };
    let found = v
        .get("faultstring")
        .or_else(|| v.get("message"))
        .or_else(|| v.pointer("/errors/0/detail"))
        .or_else(|| {
            v.as_object()
                .and_then(|o| o.values().next())
                .and_then(|inner| inner.get("message"))
        });
    match found.and_then(Value::as_str) {
        Some(s) => s.to_owned(),
        None => text.chars().take(300).collect(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Put,
    Delete,
}

impl Method {
    fn name(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

/// The one request shape the driver needs: a path, a query, a JSON body.
struct Call {
    service: Service,
    method: Method,
    path: String,
    query: Vec<(String, String)>,
    body: Option<Vec<u8>>,
    version: ApiVersion,
    microversion: ApiVersion,
}

impl RestEndpoint for Call {
    fn method(&self) -> http::Method {
        match self.method {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
            Method::Put => http::Method::PUT,
            Method::Delete => http::Method::DELETE,
        }
    }

    fn endpoint(&self) -> Cow<'static, str> {
        Cow::Owned(self.path.clone())
    }

    fn service_type(&self) -> ServiceType {
        self.service.service_type()
    }

    fn parameters(&self) -> QueryParams<'_> {
        let mut params = QueryParams::default();
        for (k, v) in &self.query {
            params.push(k.as_str(), v.as_str());
        }
        params
    }

    fn body(&self) -> Result<Option<(&'static str, Vec<u8>)>, BodyError> {
        Ok(self.body.clone().map(|b| ("application/json", b)))
    }

    fn api_version(&self) -> Option<ApiVersion> {
        Some(self.version)
    }

    fn min_version(&self) -> Option<ApiVersion> {
        Some(self.microversion)
    }
}
