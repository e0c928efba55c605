//! Driver tests against the fake service in [`fake`]: loopback TCP and the real network code
//! where bytes must be intact, in-memory pipes on tokio's paused clock where time matters.

mod fake;
mod fake_agent;
mod pacing_tests;
mod pool_tests;
mod port_tests;
mod resume_tests;
mod stdio_tests;
mod terminate_tests;

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{DataChannelConnector, ResumePolicy, SessionConfig, SessionStream};

pub(crate) const INSTANCE: &str = "i-0123456789abcdef0";

/// Settings for tests: fast pacing (the fake agent has no rate limit) and short waits.
pub(crate) fn config(connector: DataChannelConnector) -> SessionConfig {
    let mut config = SessionConfig::new(connector);
    config.max_messages_per_second = std::num::NonZeroU32::new(1_000_000).unwrap();
    config.resume = ResumePolicy {
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_secs(1),
        give_up_after: Duration::from_secs(30),
    };
    config.open_timeout = Duration::from_secs(10);
    config
}

/// `len` reproducible pseudo-random bytes.
pub(crate) fn payload(seed: u8, len: usize) -> Vec<u8> {
    let mut state = u64::from(seed).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Writes `data` through an echoing stream while reading the echo back; returns the echo.
/// The stream is closed only after everything came back (smux v1 has no half-close).
pub(crate) async fn echo(stream: SessionStream, data: Vec<u8>) -> Vec<u8> {
    let expected = data.len();
    let (mut read, mut write) = tokio::io::split(stream);
    let writer = tokio::spawn(async move {
        write.write_all(&data).await.unwrap();
        write.flush().await.unwrap();
        write
    });
    let mut echoed = vec![0u8; expected];
    read.read_exact(&mut echoed).await.unwrap();
    let mut write = writer.await.unwrap();
    write.shutdown().await.unwrap();
    echoed
}

/// Polls `condition` every 10 ms (of tokio time) until it holds; panics after `limit`.
pub(crate) async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + limit;
    while !condition() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
