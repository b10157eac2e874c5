//! A minimal HTTP/1.0 GET for tests that talk to a spawned server, and a
//! condition wait (tests wait on conditions, not on sleeps of a guessed length).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `GET path` on `127.0.0.1:port`: the status code and the body.
pub fn http_get(port: u16, path: &str) -> std::io::Result<(u16, String)> {
    http_get_bearer(port, path, None)
}

/// `GET path` with an optional bearer token: the status code and the body.
pub fn http_get_bearer(
    port: u16,
    path: &str,
    bearer: Option<&str>,
) -> std::io::Result<(u16, String)> {
    let auth = authorization(bearer);
    exchange(
        port,
        &format!(
            "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{auth}\r\n"
        ),
    )
}

/// `POST path` with a JSON body and optional bearer token: status and body.
pub fn http_post_json(
    port: u16,
    path: &str,
    bearer: Option<&str>,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let auth = authorization(bearer);
    exchange(
        port,
        &format!(
            "POST {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n{auth}\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

fn authorization(bearer: Option<&str>) -> String {
    bearer.map_or_else(String::new, |t| format!("Authorization: Bearer {t}\r\n"))
}

/// Sends `request` and reads the answer to the end: its status and body.
fn exchange(port: u16, request: &str) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP response: {head:?}")))?;
    Ok((status, body.to_owned()))
}

/// Polls `cond` every 50 ms until it holds or `patience` runs out; returns whether
/// it held.
pub fn wait_until(patience: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if started.elapsed() >= patience {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
