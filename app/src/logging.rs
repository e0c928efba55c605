//! Logging: to stderr as before (`RUST_LOG` overrides the level), and into a small in-memory
//! ring buffer that the window's log view shows, with secrets taken out first.
//!
//! The ring buffer is a `tracing` layer, so every crate's events reach it without knowing about
//! the window. Secrets must never reach the screen: before a line is stored, the values of
//! fields whose names suggest a secret are replaced, and anything that looks like a presigned
//! URL's signature or token, an AWS access key id, a session token or a private key block is
//! masked wherever it appears.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::util::SubscriberInitExt as _;

/// How many lines the log view keeps.
pub const LINES_KEPT: usize = 1000;

/// What replaces a secret.
const MASK: &str = "‹redacted›";

/// One logged event, already redacted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    pub at: SystemTime,
    pub level: tracing::Level,
    pub target: String,
    pub text: String,
}

/// The newest [`LINES_KEPT`] lines, oldest first.
#[derive(Debug, Default)]
pub struct LogBuffer {
    lines: Mutex<VecDeque<LogLine>>,
}

impl LogBuffer {
    fn push(&self, line: LogLine) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() == LINES_KEPT {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// A copy of the lines kept, oldest first.
    pub fn lines(&self) -> Vec<LogLine> {
        let lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        lines.iter().cloned().collect()
    }
}

/// The process's log buffer (empty until [`init`] installs the layer that fills it).
pub fn buffer() -> &'static LogBuffer {
    static BUFFER: OnceLock<LogBuffer> = OnceLock::new();
    BUFFER.get_or_init(LogBuffer::default)
}

/// Logs to stderr (WARN by default, `RUST_LOG` overrides) and keeps INFO and above, or what
/// `RUST_LOG` asks for, in [`buffer`] for the window.
pub fn init() {
    let filter = || {
        EnvFilter::builder()
            .with_default_directive(LevelFilter::WARN.into())
            .from_env_lossy()
    };
    let kept = || {
        EnvFilter::builder()
            .with_default_directive(LevelFilter::INFO.into())
            .from_env_lossy()
    };
    use tracing_subscriber::Layer as _;
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter()),
        )
        .with(RingLayer { buffer: buffer() }.with_filter(kept()))
        .init();
}

/// The layer that stores redacted events in a [`LogBuffer`].
pub struct RingLayer {
    pub buffer: &'static LogBuffer,
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for RingLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut text = RedactingVisitor::default();
        event.record(&mut text);
        let metadata = event.metadata();
        self.buffer.push(LogLine {
            at: SystemTime::now(),
            level: *metadata.level(),
            target: metadata.target().to_owned(),
            text: redact(&text.text),
        });
    }
}

/// Formats an event's fields as `message key=value…`, masking fields named like secrets.
#[derive(Default)]
struct RedactingVisitor {
    text: String,
}

impl Visit for RedactingVisitor {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let name = field.name();
        if name == "message" {
            let _ = write!(self.text, "{value:?}");
        } else if secret_field(name) {
            let _ = write!(self.text, " {name}={MASK}");
        } else {
            let _ = write!(self.text, " {name}={value:?}");
        }
    }
}

/// Whether a field's name says it holds a secret.
fn secret_field(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "signature",
        "credential",
        "private",
        "url",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// `text` with every secret-looking part masked: presigned-URL query values
/// (`X-Amz-Signature=…`, `X-Amz-Security-Token=…`, `X-Amz-Credential=…`), AWS access key ids
/// (`AKIA…`, `ASIA…`), `Authorization:` header values, and private key blocks.
pub fn redact(text: &str) -> String {
    let mut out = text.to_owned();
    // Private key blocks, whole.
    while let Some(start) = out.find("-----BEGIN") {
        let end = out[start..].find("PRIVATE KEY-----").and_then(|first| {
            let after = start + first + "PRIVATE KEY-----".len();
            out[after..]
                .find("PRIVATE KEY-----")
                .map(|second| after + second + "PRIVATE KEY-----".len())
        });
        match end {
            Some(end) => out.replace_range(start..end, MASK),
            None => {
                out.replace_range(start.., MASK);
                break;
            }
        }
    }
    for key in [
        "x-amz-signature=",
        "x-amz-security-token=",
        "x-amz-credential=",
        "authorization: ",
        "authorization=",
        "tokenvalue\":\"",
    ] {
        out = mask_values_after(&out, key);
    }
    mask_access_key_ids(&out)
}

/// Masks what follows each (case-insensitive) `key`, up to the next `&`, space, quote or end.
fn mask_values_after(text: &str, key: &str) -> String {
    let lower = text.to_ascii_lowercase();
    let mut out = String::with_capacity(text.len());
    let mut rest = 0;
    while let Some(found) = lower[rest..].find(key) {
        let value_start = rest + found + key.len();
        let value_end = text[value_start..]
            .find(|c: char| c == '&' || c == '"' || c == '\'' || c.is_whitespace())
            .map_or(text.len(), |end| value_start + end);
        out.push_str(&text[rest..value_start]);
        out.push_str(MASK);
        rest = value_end;
    }
    out.push_str(&text[rest..]);
    out
}

/// Masks 20-character AWS access key ids (`AKIA…` long-term, `ASIA…` temporary).
fn mask_access_key_ids(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let candidate = &bytes[i..bytes.len().min(i + 20)];
        let boundary_before = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        let boundary_after = bytes.get(i + 20).is_none_or(|b| !b.is_ascii_alphanumeric());
        if boundary_before
            && boundary_after
            && candidate.len() == 20
            && (candidate.starts_with(b"AKIA") || candidate.starts_with(b"ASIA"))
            && candidate
                .iter()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            out.push_str(MASK);
            i += 20;
        } else {
            let c = text[i..].chars().next().expect("i is on a char boundary");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_url_secrets_are_masked_and_the_rest_kept() {
        let url = "wss://eic.us-east-1.amazonaws.com/openTunnel?instanceConnectEndpointId=eice-1&\
                   X-Amz-Credential=ASIAXXXXXXXXXXXXXXXX%2F20260101&X-Amz-Security-Token=IQoJb3&\
                   X-Amz-Signature=abc123 next";
        let redacted = redact(url);
        assert!(
            redacted.contains("instanceConnectEndpointId=eice-1"),
            "{redacted}"
        );
        assert!(!redacted.contains("IQoJb3"), "{redacted}");
        assert!(!redacted.contains("abc123"), "{redacted}");
        assert!(!redacted.contains("ASIAXXXX"), "{redacted}");
        assert!(redacted.ends_with(" next"), "{redacted}");
    }

    #[test]
    fn access_key_ids_and_private_keys_are_masked() {
        let text = "key AKIAIOSFODNN7EXAMPLE used; -----BEGIN OPENSSH PRIVATE KEY-----\nb3Bl\n-----END OPENSSH PRIVATE KEY----- done";
        let redacted = redact(text);
        assert_eq!(redacted, format!("key {MASK} used; {MASK} done"));
        assert_eq!(redact("AKIA is a prefix"), "AKIA is a prefix");
    }

    #[test]
    fn events_reach_the_buffer_with_secret_fields_masked() {
        static BUFFER: OnceLock<LogBuffer> = OnceLock::new();
        let buffer = BUFFER.get_or_init(LogBuffer::default);
        let subscriber = tracing_subscriber::registry().with(RingLayer { buffer });
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(token = "s3cr3t", host = "web-1", "tunnel failed");
        });
        let lines = buffer.lines();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].level, tracing::Level::WARN);
        assert_eq!(
            lines[0].text,
            format!("tunnel failed token={MASK} host=\"web-1\"")
        );
    }

    #[test]
    fn the_buffer_keeps_only_the_newest_lines() {
        let buffer = LogBuffer::default();
        for n in 0..LINES_KEPT + 5 {
            buffer.push(LogLine {
                at: SystemTime::UNIX_EPOCH,
                level: tracing::Level::INFO,
                target: "t".into(),
                text: n.to_string(),
            });
        }
        let lines = buffer.lines();
        assert_eq!(lines.len(), LINES_KEPT);
        assert_eq!(lines[0].text, "5");
    }
}
