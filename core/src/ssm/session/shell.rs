//! [`run_shell`]: an interactive Session Manager shell (`Standard_Stream`, spec §7.6) between a
//! local terminal and the instance.
//!
//! A shell has no handshake: the agent's first output (the prompt) opens the session, and its
//! bytes are one raw stream both ways. The exception is a shell the account's Session Manager
//! preferences encrypt with KMS: then the handshake sets up encryption (spec §6.3, done by the
//! channel and the driver) and its notice, "This session is encrypted using AWS KMS.", is the
//! first line of output. Keystrokes go as they are read — the caller puts the
//! terminal in raw mode, so Ctrl-C arrives here as the byte 0x03 and reaches the remote shell
//! instead of ending this process, and Enter is already `\r` (the plugin's `\n`→`\r` rewrite is
//! not needed). Terminal sizes come from a watch channel and are sent whenever they change,
//! the first one at once.
//!
//! When local input ends (a pipe, not a terminal), one Ctrl-D (0x04) is sent: at the start of
//! a line it is end-of-file for the remote shell, which then exits, and the session ends the
//! way it does interactively — the agent closes the channel once the shell is gone — so output
//! still on its way is not cut off.

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::api::{SessionApi, SessionDocument};
use super::config::SessionConfig;
use super::driver::Purpose;
use super::error::SessionError;
use super::port::PortSession;
use super::state::SessionEnd;
use crate::ssm::proto::TerminalSize;

/// End of input for a terminal at the start of a line.
const END_OF_INPUT: u8 = 0x04;

/// How a shell session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellExit {
    pub session_id: String,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub end: SessionEnd,
}

/// Runs a shell on `target` until it exits: `stdin` to the shell, its output to `stdout`,
/// `sizes` as resize messages. `on_start` gets the session id as soon as there is one.
pub async fn run_shell<A, R, W>(
    api: Arc<A>,
    target: &str,
    mut stdin: R,
    mut stdout: W,
    mut sizes: watch::Receiver<TerminalSize>,
    config: SessionConfig,
    on_start: impl FnOnce(&str),
) -> Result<ShellExit, SessionError>
where
    A: SessionApi,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let session =
        PortSession::start_with(api, target, SessionDocument::Shell, Purpose::Shell, config)
            .await?;
    on_start(session.session_id());
    let size = *sizes.borrow_and_update();
    session.resize(size).await;
    let stream = match session.open_stream().await {
        Ok(stream) => stream,
        Err(error) => {
            let _ = session.close().await;
            return Err(SessionError::Ended(SessionEnd::Failed {
                error: error.to_string(),
            }));
        }
    };
    let (mut from_instance, mut to_instance) = tokio::io::split(stream);

    let mut output = vec![0u8; 16 * 1024];
    let mut input = vec![0u8; 1024];
    let mut reading_input = true;
    let mut watching_sizes = true;
    let local: std::io::Result<()> = loop {
        tokio::select! {
            read = from_instance.read(&mut output) => match read {
                // The shell exited (or the session failed: its end says how).
                Ok(0) | Err(_) => break stdout.flush().await,
                Ok(n) => {
                    if let Err(error) = stdout.write_all(&output[..n]).await {
                        break Err(error);
                    }
                    if let Err(error) = stdout.flush().await {
                        break Err(error);
                    }
                }
            },
            read = stdin.read(&mut input), if reading_input => match read {
                Ok(0) => {
                    reading_input = false;
                    // A write error means the session ended; the output side reports why.
                    let _ = to_instance.write_all(&[END_OF_INPUT]).await;
                }
                Ok(n) => {
                    let _ = to_instance.write_all(&input[..n]).await;
                }
                Err(error) => break Err(error),
            },
            changed = sizes.changed(), if watching_sizes => match changed {
                Ok(()) => {
                    let size = *sizes.borrow_and_update();
                    session.resize(size).await;
                }
                Err(_) => watching_sizes = false,
            },
        }
    };

    let stats = session.stats();
    let session_id = session.session_id().to_owned();
    let exit = session.shut_down().await?;
    local.map_err(SessionError::Local)?;
    let end = exit.into_result()?;
    match end {
        SessionEnd::Terminated | SessionEnd::ClosedByService { .. } => Ok(ShellExit {
            session_id,
            bytes_sent: stats.bytes_sent,
            bytes_received: stats.bytes_received,
            end,
        }),
        end => Err(SessionError::Ended(end)),
    }
}
