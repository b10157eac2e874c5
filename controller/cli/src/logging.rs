//! Structured logs with `tracing`: human-readable by default, JSON lines on request.

use std::io::Write;

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
}

pub fn init(format: Format, filter: &str) -> Result<(), String> {
    // RUST_LOG, when set, wins over the flag: it is what Rust operators reach for.
    let filter = match std::env::var("RUST_LOG") {
        Ok(env) if !env.is_empty() => EnvFilter::try_new(env),
        _ => EnvFilter::try_new(filter),
    }
    .map_err(|e| format!("bad log filter: {e}"))?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match format {
        Format::Human => builder
            .with_writer(|| OneLine(std::io::stderr()))
            .try_init(),
        // JSON escapes control characters in every string itself.
        Format::Json => builder
            .with_writer(std::io::stderr)
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
    result.map_err(|e| format!("cannot set up logging: {e}"))
}

/// Keeps a human log line one line per event (issue 16, low: newlines in
/// logged strings): a name, path or message holding a newline or another
/// control character could otherwise forge a log line of its own. The fmt
/// layer writes each event with one `write_all` ending in its newline; every
/// other line break and control character is escaped (`\n`, `\x07`). Tabs and
/// ESC (the terminal colours) pass.
struct OneLine<W>(W);

fn escape_controls(buf: &[u8]) -> Vec<u8> {
    let (body, newline) = match buf.strip_suffix(b"\n") {
        Some(body) => (body, true),
        None => (buf, false),
    };
    let mut out = Vec::with_capacity(buf.len() + 8);
    for &b in body {
        match b {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' | 0x1b => out.push(b),
            c if c < 0x20 || c == 0x7f => out.extend_from_slice(format!("\\x{c:02x}").as_bytes()),
            c => out.push(c),
        }
    }
    if newline {
        out.push(b'\n');
    }
    out
}

impl<W: Write> Write for OneLine<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write_all(&escape_controls(buf))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Security issue 16 (low): a value with a newline cannot start a forged
    /// line in the human log.
    #[test]
    fn human_logs_keep_one_line_per_event() {
        let event = b"INFO login failed user=\"eve\nINFO login ok user=admin\" \x07\x1b[0m\tend\n";
        let mut sink = OneLine(Vec::new());
        sink.write_all(event).expect("write");
        let text = String::from_utf8(sink.0).expect("utf-8");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert!(text.ends_with("end\n"), "{text}");
        assert!(text.contains("eve\\nINFO login ok"), "{text}");
        assert!(
            text.contains("\\x07") && text.contains("\x1b[0m\t"),
            "{text}"
        );
    }
}
