//! A QMP client: one JSON object per line over the VM's unix socket. The
//! greeting is read and capabilities negotiated on connect; asynchronous
//! events arriving between a command and its answer are skipped (a VM's state
//! is read with `query-status`, not inferred from events).

use std::path::Path;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::QemuError;

/// How long a QMP greeting may take.
pub const GREETING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Qmp {
    /// Connects to a QMP socket and leaves capabilities negotiation mode.
    /// QEMU serves one QMP client at a time and leaves a second one waiting
    /// for its greeting: that wait is bounded ([`GREETING_TIMEOUT`]) so a
    /// busy monitor is an error, not a hang.
    pub async fn connect(path: &Path) -> Result<Qmp, QemuError> {
        tokio::time::timeout(GREETING_TIMEOUT, Self::handshake(path))
            .await
            .map_err(|_| QemuError::Timeout {
                what: format!(
                    "QMP greeting on {} (another client holds it?)",
                    path.display()
                ),
                seconds: GREETING_TIMEOUT.as_secs(),
            })?
    }

    async fn handshake(path: &Path) -> Result<Qmp, QemuError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(QemuError::io(format!("QMP socket {}", path.display())))?;
        let (read, writer) = stream.into_split();
        let mut qmp = Qmp {
            reader: BufReader::new(read),
            writer,
        };
        let greeting = qmp.line().await?;
        if greeting.get("QMP").is_none() {
            return Err(QemuError::Qmp(format!("not a QMP greeting: {greeting}")));
        }
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    async fn line(&mut self) -> Result<Value, QemuError> {
        let mut text = String::new();
        let n = self
            .reader
            .read_line(&mut text)
            .await
            .map_err(QemuError::io("QMP read"))?;
        if n == 0 {
            return Err(QemuError::Qmp("connection closed".to_owned()));
        }
        serde_json::from_str(&text).map_err(|e| QemuError::Qmp(format!("{e}: {text}")))
    }

    /// Runs `command` and returns its `return` value; a QMP error is an
    /// error with QEMU's description.
    pub async fn execute(
        &mut self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, QemuError> {
        let mut request = json!({ "execute": command });
        if let Some(a) = arguments {
            request["arguments"] = a;
        }
        let mut bytes = request.to_string().into_bytes();
        bytes.push(b'\n');
        self.writer
            .write_all(&bytes)
            .await
            .map_err(QemuError::io("QMP write"))?;
        loop {
            let answer = self.line().await?;
            if answer.get("event").is_some() {
                continue;
            }
            if let Some(r) = answer.get("return") {
                return Ok(r.clone());
            }
            if let Some(e) = answer.get("error") {
                return Err(QemuError::Qmp(format!(
                    "{command}: {}",
                    e["desc"].as_str().unwrap_or("unknown error")
                )));
            }
            return Err(QemuError::Qmp(format!("unexpected answer: {answer}")));
        }
    }

    /// The VM's run state (`running`, `paused`, `shutdown` …).
    pub async fn status(&mut self) -> Result<String, QemuError> {
        let s = self.execute("query-status", None).await?;
        Ok(s["status"].as_str().unwrap_or_default().to_owned())
    }
}
