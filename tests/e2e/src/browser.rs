//! Real headless Chromium for portal tests, driven over WebDriver
//! (`chromedriver` from Debian, `fantoccini` as the client). Screenshots go
//! to `target/e2e/` under the workspace root (CI keeps them as artifacts).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A chromedriver process and one browser session, both stopped on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
    shots: PathBuf,
}

/// Where screenshots go: `<workspace>/target/e2e`.
pub fn shots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e")
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens a session. `None`
    /// (with a loud message) only when Chromium is not installed and this is
    /// not CI; in CI a missing browser fails the test.
    pub async fn start() -> Option<Browser> {
        let present =
            std::path::Path::new(CHROMIUM).exists() && std::path::Path::new(CHROMEDRIVER).exists();
        if !present {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the browser tests: install chromium and chromium-driver (scripts/install-deps)"
            );
            eprintln!("SKIPPED: {CHROMIUM} or {CHROMEDRIVER} missing; run scripts/install-deps");
            return None;
        }
        let port = yunshu_testkit::free_port().expect("port");
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".to_owned(),
            serde_json::json!({
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    let shots = shots_dir();
                    std::fs::create_dir_all(&shots).expect("target/e2e");
                    return Some(Browser {
                        client,
                        driver,
                        _profile: profile,
                        shots,
                    });
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not accept a session: {last:?}");
    }

    /// Opens `url` and waits until the page is hydrated (interactive).
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("goto");
        self.hydrated().await;
    }

    /// Waits for the portal's hydration mark on `<body>`.
    pub async fn hydrated(&self) {
        self.client
            .wait()
            .at_most(Duration::from_secs(20))
            .for_element(Locator::Css("body[data-hydrated]"))
            .await
            .expect("the page never became interactive (wasm bundle not loaded?)");
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.client
            .wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .text()
            .await
            .expect("text")
    }

    /// Waits (up to 10 s) until the text of `css` satisfies `done`; returns
    /// the last text seen.
    pub async fn text_until(&self, css: &str, done: impl Fn(&str) -> bool) -> String {
        let mut seen = String::new();
        for _ in 0..100 {
            if let Ok(e) = self.client.find(Locator::Css(css)).await {
                seen = e.text().await.unwrap_or_default();
                if done(&seen) {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        seen
    }

    /// Types `text` into the field `css`.
    pub async fn fill(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    pub async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .expect("click");
    }

    /// Saves a PNG screenshot as `target/e2e/<name>.png`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("write screenshot");
    }

    /// Ends the session (the driver stops on drop).
    pub async fn close(self) {
        let Browser { client, .. } = &self;
        let _ = client.clone().close().await;
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
