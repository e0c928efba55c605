//! [`run_stdio`]: an `AWS-StartSSHSession` between stdin/stdout and the instance's port, for
//! `ssh -o ProxyCommand` (spec §7.5).
//!
//! The agent treats the document's session as one byte stream (no `type` property, so never
//! mux). When stdin ends, what was read is delivered and the session is terminated — the
//! plugin just exits and leaves the agent's side to time out; when the instance's side ends
//! (sshd closed, `channel_closed`), stdout is flushed and we return.

use std::io;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::api::{SessionApi, SessionDocument};
use super::config::SessionConfig;
use super::driver::Purpose;
use super::error::SessionError;
use super::port::PortSession;
use super::state::SessionEnd;

/// Carries `stdin` to `port` on `target` and the answers to `stdout` until either side ends.
pub async fn run_stdio<A, R, W>(
    api: Arc<A>,
    target: &str,
    port: u16,
    mut stdin: R,
    mut stdout: W,
    config: SessionConfig,
) -> Result<(), SessionError>
where
    A: SessionApi,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let document = SessionDocument::Ssh { port };
    let session = PortSession::start_with(api, target, document, Purpose::Stdio, config).await?;
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

    let upload = async {
        let copied = tokio::io::copy(&mut stdin, &mut to_instance).await;
        // A write error means the session ended; the download side reports why.
        let _ = to_instance.shutdown().await;
        match copied {
            Err(error) if error.kind() != io::ErrorKind::BrokenPipe => Err(error),
            _ => Ok(()),
        }
    };
    let download = async {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = match from_instance.read(&mut buffer).await {
                Ok(0) => break,
                Ok(n) => n,
                // The session failed; its state says how.
                Err(_) => break,
            };
            stdout.write_all(&buffer[..n]).await?;
            stdout.flush().await?;
        }
        stdout.flush().await
    };

    let mut upload = std::pin::pin!(upload);
    let mut download = std::pin::pin!(download);
    let mut uploading = true;
    let local = loop {
        tokio::select! {
            result = &mut download => break result,
            result = &mut upload, if uploading => {
                uploading = false;
                if let Err(error) = result {
                    break Err(error);
                }
            }
        }
    };

    let exit = session.shut_down().await?;
    local.map_err(SessionError::Local)?;
    match exit.into_result()? {
        SessionEnd::Terminated | SessionEnd::ClosedByService { .. } => Ok(()),
        end => Err(SessionError::Ended(end)),
    }
}
