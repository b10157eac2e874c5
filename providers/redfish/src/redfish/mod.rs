//! A Redfish client for one BMC: what provisioning a bare-metal server
//! needs and nothing more.
//!
//! Authentication: when the service root links a SessionService, a session
//! is created (`POST Sessions` with the credentials, then the
//! `X-Auth-Token` header) and created again once if the BMC answers 401 (the
//! session timed out); otherwise every request carries HTTP basic auth
//! (sushy-tools has no SessionService). The password is sent only in those
//! two places and never logged; errors carry URIs and status codes only.

pub mod parse;
pub mod tls;

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::config::Secret;
pub use parse::{Media, Power, System};

/// Why a Redfish call failed.
#[derive(Debug, thiserror::Error)]
pub enum RedfishError {
    /// No answer: connection refused, TLS failure, timeout. The BMC is down
    /// for the driver's purposes.
    #[error("BMC {bmc} unreachable at {uri}")]
    Unreachable {
        bmc: String,
        uri: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("BMC {bmc} refused the credentials ({status}) at {uri}")]
    Auth {
        bmc: String,
        uri: String,
        status: u16,
    },
    #[error("BMC {bmc}: {method} {uri} answered {status}: {message}")]
    Http {
        bmc: String,
        method: String,
        uri: String,
        status: u16,
        message: String,
    },
    #[error("BMC {bmc}: {uri}: {message}")]
    Protocol {
        bmc: String,
        uri: String,
        message: String,
    },
    #[error("BMC {bmc}: building the HTTP client")]
    Client {
        bmc: String,
        #[source]
        source: reqwest::Error,
    },
}

impl RedfishError {
    /// Whether the BMC did not answer at all (host DOWN, retry later).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, RedfishError::Unreachable { .. })
    }
}

enum Auth {
    Basic,
    Session {
        token: Secret,
        /// The session resource's URL (`Location`, else the answer's
        /// `@odata.id`, whichever the BMC's own origin serves), deleted on
        /// logout; `None` when the BMC named none.
        url: Option<String>,
    },
}

/// One BMC.
pub struct Bmc {
    name: String,
    base: String,
    username: String,
    password: Secret,
    http: reqwest::Client,
    auth: Mutex<Option<Auth>>,
    /// Logged out for good (the driver is stopping): no new session is
    /// opened, so none is left behind by a call racing the logout.
    closed: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for Bmc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bmc")
            .field("name", &self.name)
            .field("base", &self.base)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// How long one Redfish request may take. Inserting virtual media makes some
/// BMCs (sushy's libvirt driver) download the whole image first.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a read may take: reads never make a BMC fetch anything, and a
/// BMC that hangs should show as DOWN well before an action would time out.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

impl Bmc {
    /// A client for the BMC at `base` (`https://host:port`). `ca_pem` is the
    /// only CA trusted when given; else the system's roots.
    pub fn new(
        name: &str,
        base: &str,
        username: &str,
        password: Secret,
        ca_pem: Option<&[u8]>,
    ) -> Result<Bmc, RedfishError> {
        let client_err = |source| RedfishError::Client {
            bmc: name.to_owned(),
            source,
        };
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .connect_timeout(Duration::from_secs(5))
            .timeout(REQUEST_TIMEOUT)
            // reqwest drops `Authorization` on a redirect to another host,
            // but not `X-Auth-Token`: follow redirects only within the BMC.
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                let same_origin = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| first.origin() == attempt.url().origin());
                if same_origin && attempt.previous().len() < 5 {
                    attempt.follow()
                } else {
                    attempt.stop()
                }
            }));
        if let Some(pem) = ca_pem {
            let tls = tls::client_config(pem).map_err(|message| RedfishError::Protocol {
                bmc: name.to_owned(),
                uri: base.to_owned(),
                message,
            })?;
            builder = builder.use_preconfigured_tls(tls);
        }
        Ok(Bmc {
            name: name.to_owned(),
            base: base.trim_end_matches('/').to_owned(),
            username: username.to_owned(),
            password,
            http: builder.build().map_err(client_err)?,
            auth: Mutex::new(None),
            closed: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The URL of a link the BMC gave. The credentials go with every
    /// request, so an absolute link is followed only within the BMC's own
    /// origin: never to another host, never downgraded to `http://`.
    fn url(&self, uri: &str) -> Result<String, RedfishError> {
        if uri.starts_with('/') {
            return Ok(format!("{}{uri}", self.base));
        }
        match uri.strip_prefix(self.base.as_str()) {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => Ok(uri.to_owned()),
            _ => Err(self.protocol(uri, "a link outside the BMC's own origin is not followed")),
        }
    }

    fn unreachable(&self, uri: &str) -> impl FnOnce(reqwest::Error) -> RedfishError {
        let (bmc, uri) = (self.name.clone(), uri.to_owned());
        move |source| RedfishError::Unreachable { bmc, uri, source }
    }

    /// Decides how to authenticate: a session when the service root links
    /// sessions, basic auth otherwise.
    async fn login(&self) -> Result<Auth, RedfishError> {
        let root_uri = "/redfish/v1/";
        let root = self
            .http
            .get(self.url(root_uri)?)
            .timeout(READ_TIMEOUT)
            .send()
            .await
            .map_err(self.unreachable(root_uri))?;
        let root: Value = root.json().await.unwrap_or(Value::Null);
        let Some(sessions) = parse::sessions_link(&root) else {
            tracing::debug!(bmc = %self.name, "no SessionService: HTTP basic auth");
            return Ok(Auth::Basic);
        };
        let response = self
            .http
            .post(self.url(&sessions)?)
            .json(&json!({"UserName": self.username, "Password": self.password.expose()}))
            .send()
            .await
            .map_err(self.unreachable(&sessions))?;
        let status = response.status();
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RedfishError::Auth {
                bmc: self.name.clone(),
                uri: sessions,
                status: status.as_u16(),
            });
        }
        // A SessionService in trouble is not one that refuses sessions:
        // falling back to basic auth for good could lock out a BMC that
        // disabled it. Nothing is cached; the next call logs in again.
        if status.is_server_error() {
            return Err(RedfishError::Http {
                bmc: self.name.clone(),
                method: Method::POST.to_string(),
                uri: sessions,
                status: status.as_u16(),
                message: status.canonical_reason().unwrap_or("error").to_owned(),
            });
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|t| t.to_str().ok())
                .map(str::to_owned)
        };
        let (token, location) = (header("X-Auth-Token"), header("Location"));
        match token {
            Some(token) if status.is_success() => {
                let body: Value = response.json().await.unwrap_or(Value::Null);
                let odata = body
                    .get("@odata.id")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                // The first the BMC's own origin serves (a `Location` naming
                // another host is not followed, its `@odata.id` may do).
                let url = [location, odata]
                    .into_iter()
                    .flatten()
                    .find_map(|u| self.url(&u).ok());
                tracing::debug!(bmc = %self.name, "Redfish session created");
                Ok(Auth::Session {
                    token: Secret::new(token),
                    url,
                })
            }
            // A SessionService that will not give a token: basic auth is
            // still standard on every Redfish service.
            _ => {
                tracing::warn!(bmc = %self.name, status = status.as_u16(), "session refused: HTTP basic auth");
                Ok(Auth::Basic)
            }
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        uri: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, RedfishError> {
        let mut guard = self.auth.lock().await;
        if guard.is_none() {
            if self.closed.load(std::sync::atomic::Ordering::SeqCst) {
                return Err(self.protocol(uri, "the driver is stopping: no new BMC session"));
            }
            *guard = Some(self.login().await?);
        }
        let mut request = self.http.request(method.clone(), self.url(uri)?);
        if method == Method::GET {
            request = request.timeout(READ_TIMEOUT);
        }
        request = match guard.as_ref() {
            Some(Auth::Session { token, .. }) => request.header("X-Auth-Token", token.expose()),
            _ => request.basic_auth(&self.username, Some(self.password.expose())),
        };
        drop(guard);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.map_err(self.unreachable(uri))
    }

    /// Ends the session, if one is open: `DELETE` on the session resource,
    /// so a BMC with few session slots does not keep this one until it times
    /// out (the driver calls it on shutdown). No session is opened after it:
    /// later calls fail. Failures are logged, not returned: the session
    /// times out on the BMC anyway.
    pub async fn logout(&self) {
        let taken = {
            let mut guard = self.auth.lock().await;
            // Under the lock: a call cannot log in between the two.
            self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
            guard.take()
        };
        let Some(Auth::Session { token, url }) = taken else {
            return;
        };
        let Some(url) = url else {
            tracing::debug!(bmc = %self.name, "the session has no URI to delete: left to time out");
            return;
        };
        match self
            .http
            .delete(url)
            .header("X-Auth-Token", token.expose())
            .timeout(READ_TIMEOUT)
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => {
                tracing::debug!(bmc = %self.name, "Redfish session deleted");
            }
            Ok(r) => {
                tracing::warn!(bmc = %self.name, status = r.status().as_u16(), "session not deleted");
            }
            Err(e) => tracing::warn!(bmc = %self.name, error = %e, "session not deleted"),
        }
    }

    /// One call; on a 401 the authentication is decided again once (a
    /// session timed out, or basic auth was a fallback the BMC refuses).
    async fn call(
        &self,
        method: Method,
        uri: &str,
        body: Option<Value>,
    ) -> Result<Value, RedfishError> {
        let mut response = self.send_once(&method, uri, body.as_ref()).await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            *self.auth.lock().await = None;
            response = self.send_once(&method, uri, body.as_ref()).await?;
        }
        let status = response.status();
        let text = response.text().await.map_err(self.unreachable(uri))?;
        let value: Value = if text.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::Null)
        };
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(RedfishError::Auth {
                bmc: self.name.clone(),
                uri: uri.to_owned(),
                status: status.as_u16(),
            });
        }
        if !status.is_success() {
            return Err(RedfishError::Http {
                bmc: self.name.clone(),
                method: method.to_string(),
                uri: uri.to_owned(),
                status: status.as_u16(),
                message: parse::error_message(&value)
                    .unwrap_or_else(|| status.canonical_reason().unwrap_or("error").to_owned()),
            });
        }
        Ok(value)
    }

    async fn get(&self, uri: &str) -> Result<Value, RedfishError> {
        self.call(Method::GET, uri, None).await
    }

    fn protocol(&self, uri: &str, message: impl Into<String>) -> RedfishError {
        RedfishError::Protocol {
            bmc: self.name.clone(),
            uri: uri.to_owned(),
            message: message.into(),
        }
    }

    /// Every system of the BMC.
    pub async fn systems(&self) -> Result<Vec<System>, RedfishError> {
        let uri = "/redfish/v1/Systems";
        let collection = self.get(uri).await?;
        let mut out = Vec::new();
        for member in parse::members(&collection) {
            out.push(self.system(&member).await?);
        }
        Ok(out)
    }

    /// One system by URI.
    pub async fn system(&self, uri: &str) -> Result<System, RedfishError> {
        let v = self.get(uri).await?;
        parse::system(&v).ok_or_else(|| self.protocol(uri, "not a ComputerSystem"))
    }

    /// The MAC addresses of a system's NICs.
    pub async fn macs(&self, system: &System) -> Result<Vec<String>, RedfishError> {
        let Some(uri) = &system.nics_uri else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for member in parse::members(&self.get(uri).await?) {
            if let Some(mac) = parse::mac(&self.get(&member).await?) {
                out.push(mac);
            }
        }
        Ok(out)
    }

    /// `ComputerSystem.Reset` with `reset_type` (`On`, `ForceOff` …).
    pub async fn reset(&self, system: &System, reset_type: &str) -> Result<(), RedfishError> {
        self.call(
            Method::POST,
            &system.reset_target,
            Some(json!({"ResetType": reset_type})),
        )
        .await
        .map(drop)
    }

    /// Boot source override: `target` (`Cd`, `Hdd`, `Pxe`) and `enabled`
    /// (`Once`, `Continuous`, `Disabled`).
    pub async fn set_boot(
        &self,
        system: &System,
        target: &str,
        enabled: &str,
    ) -> Result<(), RedfishError> {
        let body = json!({"Boot": {"BootSourceOverrideTarget": target,
                                   "BootSourceOverrideEnabled": enabled}});
        self.call(Method::PATCH, &system.uri, Some(body))
            .await
            .map(drop)
    }

    /// The system's CD virtual media: under the System (sushy-tools, newer
    /// BMCs), else under its Manager (most BMCs).
    pub async fn cd(&self, system: &System) -> Result<Media, RedfishError> {
        let mut collections: Vec<String> = system.virtual_media_uri.iter().cloned().collect();
        for manager in &system.managers {
            // A manager that cannot be read is skipped: the next may serve.
            if let Ok(m) = self.get(manager).await
                && let Some(vm) = parse::manager_virtual_media(&m)
            {
                collections.push(vm);
            }
        }
        for collection in &collections {
            let Ok(list) = self.get(collection).await else {
                continue;
            };
            for member in parse::members(&list) {
                if let Some(media) = parse::media(&self.get(&member).await?)
                    && media.is_cd
                {
                    return Ok(media);
                }
            }
        }
        Err(self.protocol(
            &system.uri,
            "no CD virtual media under the system or its managers",
        ))
    }

    /// Inserts `image` into the CD (ejecting another image first).
    pub async fn insert_cd(&self, system: &System, image: &str) -> Result<Media, RedfishError> {
        let cd = self.cd(system).await?;
        if cd.inserted && cd.image == image {
            return Ok(cd);
        }
        if cd.inserted {
            self.eject(&cd).await?;
        }
        let body = json!({"Image": image, "Inserted": true, "WriteProtected": true});
        match &cd.insert_target {
            Some(target) => self.call(Method::POST, target, Some(body)).await?,
            // Redfish before 1.6 (no actions): PATCH the resource.
            None => self.call(Method::PATCH, &cd.uri, Some(body)).await?,
        };
        Ok(cd)
    }

    /// Ejects whatever the CD holds (nothing to do if empty).
    pub async fn eject_cd(&self, system: &System) -> Result<(), RedfishError> {
        let cd = self.cd(system).await?;
        if cd.inserted || !cd.image.is_empty() {
            self.eject(&cd).await?;
        }
        Ok(())
    }

    async fn eject(&self, cd: &Media) -> Result<(), RedfishError> {
        match &cd.eject_target {
            Some(target) => self.call(Method::POST, target, Some(json!({}))).await?,
            None => {
                self.call(
                    Method::PATCH,
                    &cd.uri,
                    Some(json!({"Image": null, "Inserted": false})),
                )
                .await?
            }
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The authentication paths against an in-process Redfish service:
    //! sessions (create, use the token, create again after a 401) and the
    //! basic-auth fallback. The test BMC (sushy-tools) only has the latter.

    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::http::{HeaderMap, StatusCode};
    use axum::response::{IntoResponse, Response};
    use axum::routing::{get, post};
    use serde_json::{Value, json};

    use super::*;

    #[derive(Default)]
    struct Seen {
        /// Tokens handed out, the valid one last.
        tokens: Vec<String>,
        /// Uses left of the current token before it "times out".
        uses_left: u32,
        /// `Authorization` headers seen on resource requests.
        basic: Vec<String>,
        logins: Vec<Value>,
        /// Sessions deleted: (session id, the token the DELETE carried).
        logouts: Vec<(String, String)>,
    }

    async fn serve(with_sessions: bool) -> (String, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let root = move || async move {
            let mut root = json!({"@odata.id": "/redfish/v1/", "Systems": {"@odata.id": "/redfish/v1/Systems"}});
            if with_sessions {
                root["Links"] =
                    json!({"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}});
            }
            axum::Json(root)
        };
        let s1 = seen.clone();
        let login = move |body: axum::Json<Value>| {
            let seen = s1.clone();
            async move {
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                seen.logins.push(body.0.clone());
                if body.0["Password"] != "pw" {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                let token = format!("tok-{}", seen.tokens.len());
                seen.tokens.push(token.clone());
                seen.uses_left = 1;
                let session = format!(
                    "/redfish/v1/SessionService/Sessions/{}",
                    seen.tokens.len() - 1
                );
                let mut r: Response = (
                    StatusCode::CREATED,
                    axum::Json(json!({"@odata.id": session})),
                )
                    .into_response();
                r.headers_mut()
                    .insert("X-Auth-Token", token.parse().expect("header"));
                r.headers_mut()
                    .insert("Location", session.parse().expect("header"));
                r
            }
        };
        let s3 = seen.clone();
        let logout = move |axum::extract::Path(id): axum::extract::Path<String>,
                           headers: HeaderMap| {
            let seen = s3.clone();
            async move {
                let token = headers
                    .get("X-Auth-Token")
                    .and_then(|t| t.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                seen.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .logouts
                    .push((id, token));
                StatusCode::NO_CONTENT
            }
        };
        let s2 = seen.clone();
        let systems = move |headers: HeaderMap| {
            let seen = s2.clone();
            async move {
                let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(a) = headers.get("authorization") {
                    seen.basic.push(a.to_str().unwrap_or_default().to_owned());
                    return axum::Json(json!({"Members": []})).into_response();
                }
                let token = headers
                    .get("X-Auth-Token")
                    .and_then(|t| t.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                let valid = seen.tokens.last() == Some(&token) && seen.uses_left > 0;
                if !valid {
                    return StatusCode::UNAUTHORIZED.into_response();
                }
                seen.uses_left -= 1;
                axum::Json(json!({"Members": []})).into_response()
            }
        };
        let app = Router::new()
            .route("/redfish/v1/", get(root))
            .route("/redfish/v1/SessionService/Sessions", post(login))
            .route(
                "/redfish/v1/SessionService/Sessions/{id}",
                axum::routing::delete(logout),
            )
            .route("/redfish/v1/Systems", get(systems));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), seen)
    }

    #[tokio::test]
    async fn logout_deletes_the_open_session_once() {
        let (base, seen) = serve(true).await;
        let bmc = client(&base, "pw");
        bmc.systems().await.expect("a call on a new session");
        bmc.logout().await;
        bmc.logout().await;
        let got = seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .logouts
            .clone();
        assert_eq!(got, vec![("0".to_owned(), "tok-0".to_owned())]);
        // A call racing the shutdown does not open a session left behind.
        assert!(bmc.systems().await.is_err());
        assert_eq!(
            seen.lock().unwrap_or_else(|p| p.into_inner()).tokens,
            vec!["tok-0"]
        );
    }

    #[tokio::test]
    async fn logout_without_a_session_sends_nothing() {
        let (base, seen) = serve(false).await;
        let bmc = client(&base, "pw");
        bmc.systems().await.expect("basic auth");
        bmc.logout().await;
        assert!(
            seen.lock()
                .unwrap_or_else(|p| p.into_inner())
                .logouts
                .is_empty()
        );
    }

    fn client(base: &str, password: &str) -> Bmc {
        Bmc::new("t", base, "admin", Secret::new(password), None).expect("client")
    }

    #[tokio::test]
    async fn a_session_is_used_and_created_again_after_a_401() {
        let (base, seen) = serve(true).await;
        let bmc = client(&base, "pw");
        bmc.systems().await.expect("first call on a new session");
        // The token allowed one use: the next call gets 401, logs in again.
        bmc.systems().await.expect("second call after re-login");
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        assert_eq!(seen.tokens, vec!["tok-0", "tok-1"]);
        assert!(seen.basic.is_empty(), "no basic auth with a session");
        assert_eq!(
            seen.logins[0],
            json!({"UserName": "admin", "Password": "pw"})
        );
    }

    #[tokio::test]
    async fn wrong_credentials_are_an_auth_error_that_names_no_password() {
        let (base, _seen) = serve(true).await;
        let err = client(&base, "wrong-secret")
            .systems()
            .await
            .expect_err("401");
        assert!(
            matches!(err, RedfishError::Auth { status: 401, .. }),
            "{err:?}"
        );
        assert!(!format!("{err} {err:?}").contains("wrong-secret"));
    }

    #[tokio::test]
    async fn without_a_session_service_basic_auth_is_used() {
        let (base, seen) = serve(false).await;
        client(&base, "pw").systems().await.expect("basic");
        let seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        assert!(seen.logins.is_empty());
        // "admin:pw" in base64.
        assert_eq!(seen.basic, vec!["Basic YWRtaW46cHc="]);
    }

    /// A BMC whose `/redfish/v1/Systems` answers `answer(spy)`, with a
    /// SessionService; and the spy, another origin counting what reaches it.
    async fn serve_pointing_at_spy(
        answer: fn(&str) -> Response,
    ) -> (String, Arc<Mutex<Vec<String>>>) {
        let hits = Arc::new(Mutex::new(Vec::new()));
        let h = hits.clone();
        let spy = Router::new().fallback(move |headers: HeaderMap| {
            let hits = h.clone();
            async move {
                let token = headers
                    .get("X-Auth-Token")
                    .and_then(|t| t.to_str().ok())
                    .unwrap_or("-")
                    .to_owned();
                hits.lock().unwrap_or_else(|p| p.into_inner()).push(token);
                axum::Json(json!({"Members": []}))
            }
        });
        let spy_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let spy_base = format!("http://{}", spy_listener.local_addr().expect("addr"));
        tokio::spawn(async move {
            let _ = axum::serve(spy_listener, spy).await;
        });
        let root = || async {
            axum::Json(
                json!({"Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}}}),
            )
        };
        let login = || async {
            let mut r: Response = (StatusCode::CREATED, axum::Json(json!({}))).into_response();
            r.headers_mut()
                .insert("X-Auth-Token", "secret-token".parse().expect("header"));
            r
        };
        let systems = move || async move { answer(&spy_base) };
        let app = Router::new()
            .route("/redfish/v1/", get(root))
            .route("/redfish/v1/SessionService/Sessions", post(login))
            .route("/redfish/v1/Systems", get(systems));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        (format!("http://{addr}"), hits)
    }

    #[tokio::test]
    async fn credentials_never_follow_a_link_or_redirect_to_another_origin() {
        let link = |spy: &str| {
            axum::Json(json!({"Members": [{"@odata.id": format!("{spy}/redfish/v1/Systems/1")}]}))
                .into_response()
        };
        let redirect = |spy: &str| {
            let mut r = StatusCode::TEMPORARY_REDIRECT.into_response();
            r.headers_mut().insert(
                "Location",
                format!("{spy}/redfish/v1/Systems").parse().expect("header"),
            );
            r
        };
        for answer in [link as fn(&str) -> Response, redirect] {
            let (base, hits) = serve_pointing_at_spy(answer).await;
            let err = client(&base, "pw")
                .systems()
                .await
                .expect_err("not followed");
            assert!(
                matches!(
                    err,
                    RedfishError::Protocol { .. } | RedfishError::Http { status: 307, .. }
                ),
                "{err:?}"
            );
            assert!(
                hits.lock().unwrap_or_else(|p| p.into_inner()).is_empty(),
                "the other origin was called"
            );
        }
    }

    #[tokio::test]
    async fn a_session_service_in_trouble_is_not_a_fall_back_to_basic_for_good() {
        let logins = Arc::new(Mutex::new(0u32));
        let l = logins.clone();
        let root = || async {
            axum::Json(
                json!({"Links": {"Sessions": {"@odata.id": "/redfish/v1/SessionService/Sessions"}}}),
            )
        };
        let login = move || {
            let logins = l.clone();
            async move {
                let mut n = logins.lock().unwrap_or_else(|p| p.into_inner());
                *n += 1;
                if *n == 1 {
                    return StatusCode::SERVICE_UNAVAILABLE.into_response();
                }
                let mut r: Response = (StatusCode::CREATED, axum::Json(json!({}))).into_response();
                r.headers_mut()
                    .insert("X-Auth-Token", "tok".parse().expect("header"));
                r
            }
        };
        // This BMC has basic auth disabled.
        let systems = |headers: HeaderMap| async move {
            if headers.get("X-Auth-Token").is_some_and(|t| t == "tok") {
                axum::Json(json!({"Members": []})).into_response()
            } else {
                StatusCode::UNAUTHORIZED.into_response()
            }
        };
        let app = Router::new()
            .route("/redfish/v1/", get(root))
            .route("/redfish/v1/SessionService/Sessions", post(login))
            .route("/redfish/v1/Systems", get(systems));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let bmc = client(&format!("http://{addr}"), "pw");
        let err = bmc.systems().await.expect_err("503 at login");
        assert!(
            matches!(err, RedfishError::Http { status: 503, .. }),
            "{err:?}"
        );
        bmc.systems()
            .await
            .expect("a session once the service is back");
    }

    #[tokio::test]
    async fn an_unreachable_bmc_says_so() {
        // A port nobody listens on: bind, read the port, close.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").port()
        };
        let err = client(&format!("http://127.0.0.1:{port}"), "pw")
            .systems()
            .await
            .expect_err("refused");
        assert!(err.is_unreachable(), "{err:?}");
    }
}
