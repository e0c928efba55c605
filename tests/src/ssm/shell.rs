//! Shell sessions (`Standard_Stream`, spec §7.6): `/bin/sh` on a pseudo-terminal, as the agent
//! runs a shell for the session's user on a pty.
//!
//! The terminal is real: the pty echoes and edits lines, Ctrl-C arrives as `0x03` and becomes
//! SIGINT, and a Size message (`{"cols":…,"rows":…}`, PayloadType 3) resizes it (the shell
//! gets SIGWINCH). The shell runs as the user running the simulator, in its home directory;
//! when it exits the session is complete. Output is read in 1024-byte pieces, like the
//! agent's shell reader.

use std::io;
use std::os::fd::{AsRawFd as _, FromRawFd as _, OwnedFd};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use serde::Deserialize;
use tokio::sync::mpsc;

use super::target::{BackendEvent, ConnId, Connection};
use crate::listener::BoxedIo;

/// The terminal size before the client sends one.
const INITIAL_SIZE: Size = Size { cols: 80, rows: 24 };

/// The agent's shell read size (`StreamDataPayloadSize`).
const READ_CHUNK: usize = 1024;

/// A terminal size as the client sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
struct Size {
    cols: u16,
    rows: u16,
}

/// A running shell. Dropping it kills the shell and closes its terminal.
pub struct Shell {
    conn: ConnId,
    connection: Connection,
    master: OwnedFd,
    _child: tokio::process::Child,
}

impl Shell {
    /// Starts `/bin/sh` on a new pty; its output arrives as [`BackendEvent`]s for `conn`.
    pub fn start(
        conn: ConnId,
        events: mpsc::Sender<BackendEvent>,
        queued: Arc<AtomicUsize>,
    ) -> io::Result<Shell> {
        let (master, terminal) = open_pty(INITIAL_SIZE)?;
        let mut command = tokio::process::Command::new("/bin/sh");
        command
            .stdin(Stdio::from(terminal.try_clone()?))
            .stdout(Stdio::from(terminal.try_clone()?))
            .stderr(Stdio::from(terminal))
            .env("TERM", "xterm-256color")
            .current_dir(std::env::var_os("HOME").unwrap_or_else(|| "/".into()))
            .kill_on_drop(true);
        // SAFETY: between fork and exec only async-signal-safe calls are made: `setsid` and
        // `ioctl`, which make the terminal (standard input) the new session's controlling
        // terminal, as a login does.
        unsafe {
            command.pre_exec(|| {
                if libc::setsid() == -1 || libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = command.spawn()?;
        // Reads and writes on separate descriptors, so a read waiting for output never holds up
        // input.
        let reader = tokio::fs::File::from_std(std::fs::File::from(master.try_clone()?));
        let writer = tokio::fs::File::from_std(std::fs::File::from(master.try_clone()?));
        let io: BoxedIo = Box::new(tokio::io::join(reader, writer));
        Ok(Shell {
            conn,
            connection: Connection::start(io, conn, READ_CHUNK, events, queued),
            master,
            _child: child,
        })
    }

    /// The connection id the shell's output and end are reported under.
    pub fn conn(&self) -> ConnId {
        self.conn
    }

    /// Keystrokes for the terminal; the caller has counted them as queued.
    pub fn write(&self, data: Vec<u8>) {
        self.connection.write(data);
    }

    /// Applies a Size message; anything unreadable is ignored, as by the agent.
    pub fn resize(&self, payload: &[u8]) {
        match serde_json::from_slice::<Size>(payload) {
            Ok(size) => {
                if let Err(error) = set_size(&self.master, size) {
                    tracing::debug!(%error, "cannot resize the shell's terminal");
                }
            }
            Err(error) => tracing::debug!(%error, "ignoring an unreadable terminal size"),
        }
    }
}

/// A new pseudo-terminal of `size`: (master, terminal).
fn open_pty(size: Size) -> io::Result<(OwnedFd, OwnedFd)> {
    let mut master = -1;
    let mut terminal = -1;
    let window = winsize(size);
    // SAFETY: openpty writes two descriptors into the out-pointers and reads the window size;
    // no name buffer or termios is passed.
    let status = unsafe {
        libc::openpty(
            &mut master,
            &mut terminal,
            std::ptr::null_mut(),
            std::ptr::null(),
            &window,
        )
    };
    if status == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: openpty succeeded, so both are open descriptors that nothing else owns.
    let owned = unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(terminal)) };
    for fd in [&owned.0, &owned.1] {
        // SAFETY: fcntl on a descriptor we own; FD_CLOEXEC keeps them out of the child except
        // through its standard streams.
        unsafe {
            libc::fcntl(fd.as_raw_fd(), libc::F_SETFD, libc::FD_CLOEXEC);
        }
    }
    Ok(owned)
}

fn set_size(master: &OwnedFd, size: Size) -> io::Result<()> {
    let window = winsize(size);
    // SAFETY: TIOCSWINSZ reads one winsize from the pointer.
    if unsafe { libc::ioctl(master.as_raw_fd(), libc::TIOCSWINSZ, &window) } == -1 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn winsize(size: Size) -> libc::winsize {
    libc::winsize {
        ws_row: size.rows,
        ws_col: size.cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_shell_runs_commands_on_a_resizable_terminal() {
        let (events_tx, mut events) = mpsc::channel(16);
        let queued = Arc::new(AtomicUsize::new(0));
        let shell = Shell::start(7, events_tx, Arc::clone(&queued)).expect("a shell");
        shell.resize(br#"{"cols":132,"rows":43}"#);
        for input in [&b"stty size; echo done-$((6*7))\n"[..], b"exit\n"] {
            queued.fetch_add(input.len(), std::sync::atomic::Ordering::Relaxed);
            shell.write(input.to_vec());
        }
        let mut output = Vec::new();
        let closed = tokio::time::timeout(std::time::Duration::from_secs(10), async {
            while let Some(event) = events.recv().await {
                match event {
                    BackendEvent::Data(7, data) => output.extend(data),
                    BackendEvent::Closed(7) => return true,
                    other => panic!("unexpected {other:?}"),
                }
            }
            false
        })
        .await
        .expect("the shell exits");
        assert!(closed);
        let text = String::from_utf8_lossy(&output);
        assert!(text.contains("43 132"), "{text}");
        assert!(text.contains("done-42"), "{text}");
    }
}
