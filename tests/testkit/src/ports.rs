//! Ephemeral loopback ports.

use std::net::TcpListener;

/// A port on 127.0.0.1 that was free a moment ago. Another process may take it
/// before the caller binds it, so callers that start servers retry on failure.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
