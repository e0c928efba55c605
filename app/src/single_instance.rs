//! One window per user and store: a second `bastionless` (no subcommand) hands its request to
//! the running app, which shows its window, and exits.
//!
//! Who is first is decided by an exclusive lock on `instance.lock` in the store directory, held
//! for the life of the process and released by the OS when it ends, even on a crash — so there
//! is no stale-PID guessing and no race between two launches. The first then listens on a Unix
//! socket beside it (loopback TCP, with the port in `instance.port`, where there are no Unix
//! sockets); the second connects and sends one line. The store directory is private to the
//! user (0700), and the only request is "show the window", so nothing else can be asked.

use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a second launch asks of the first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Show and focus the window.
    Show,
}

impl Request {
    fn line(self) -> &'static str {
        match self {
            Request::Show => "show",
        }
    }

    fn parse(line: &str) -> Option<Self> {
        match line.trim() {
            "show" => Some(Request::Show),
            _ => None,
        }
    }
}

/// Whether this process is the one instance.
pub enum Claim {
    /// It is: keep this alive for as long as the app runs, and [`Instance::serve`] it.
    First(Instance),
    /// Another was running and took the request; this process should exit.
    HandedOver,
}

/// The running instance's claim: the lock and the listener.
pub struct Instance {
    lock: std::fs::File,
    listener: Listener,
}

#[cfg(unix)]
type Listener = std::os::unix::net::UnixListener;
#[cfg(not(unix))]
type Listener = std::net::TcpListener;

/// How long a second launch waits for the first to answer (it may still be starting).
const HANDOVER_WAIT: Duration = Duration::from_secs(5);

/// Claims `dir` for this process, or hands `request` to the process that has it.
pub fn claim(dir: &Path, request: Request) -> std::io::Result<Claim> {
    std::fs::create_dir_all(dir)?;
    let lock = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("instance.lock"))?;
    match lock.try_lock() {
        Ok(()) => Ok(Claim::First(Instance {
            listener: listen(dir)?,
            lock,
        })),
        Err(std::fs::TryLockError::WouldBlock) => {
            hand_over(dir, request)?;
            Ok(Claim::HandedOver)
        }
        Err(std::fs::TryLockError::Error(error)) => Err(error),
    }
}

impl Instance {
    /// Answers later launches on a thread of its own, calling `on_request` for each request.
    pub fn serve(self, on_request: impl Fn(Request) + Send + 'static) {
        let spawned = std::thread::Builder::new()
            .name("bastionless-instance".into())
            .spawn(move || {
                let _held = self.lock;
                for stream in self.listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    let _ = stream.set_read_timeout(Some(HANDOVER_WAIT));
                    let mut line = String::new();
                    let _ = BufReader::new(&mut stream).read_line(&mut line);
                    let reply = match Request::parse(&line) {
                        Some(request) => {
                            on_request(request);
                            "ok\n"
                        }
                        None => "unknown request\n",
                    };
                    let _ = stream.write_all(reply.as_bytes());
                }
            });
        if let Err(error) = spawned {
            tracing::warn!("could not listen for later launches: {error}");
        }
    }
}

fn socket_path(dir: &Path) -> PathBuf {
    dir.join("instance.sock")
}

#[cfg(unix)]
fn listen(dir: &Path) -> std::io::Result<Listener> {
    let path = socket_path(dir);
    // Left by an instance that crashed: the lock proves no one is listening on it.
    match std::fs::remove_file(&path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error),
        _ => {}
    }
    Listener::bind(&path)
}

#[cfg(not(unix))]
fn listen(dir: &Path) -> std::io::Result<Listener> {
    let listener = Listener::bind(("127.0.0.1", 0))?;
    std::fs::write(
        dir.join("instance.port"),
        listener.local_addr()?.port().to_string(),
    )?;
    Ok(listener)
}

#[cfg(unix)]
fn connect(dir: &Path) -> std::io::Result<std::os::unix::net::UnixStream> {
    std::os::unix::net::UnixStream::connect(socket_path(dir))
}

#[cfg(not(unix))]
fn connect(dir: &Path) -> std::io::Result<std::net::TcpStream> {
    let port: u16 = std::fs::read_to_string(dir.join("instance.port"))?
        .trim()
        .parse()
        .map_err(|_| std::io::Error::other("instance.port is not a port"))?;
    std::net::TcpStream::connect(("127.0.0.1", port))
}

/// Sends `request` to the running instance, retrying while it is still starting up.
fn hand_over(dir: &Path, request: Request) -> std::io::Result<()> {
    let deadline = std::time::Instant::now() + HANDOVER_WAIT;
    let mut stream = loop {
        match connect(dir) {
            Ok(stream) => break stream,
            Err(error) if std::time::Instant::now() >= deadline => {
                return Err(std::io::Error::new(
                    error.kind(),
                    format!(
                        "Bastionless is already running but did not answer ({error}); close it, \
                         or end its process"
                    ),
                ));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    stream.set_read_timeout(Some(HANDOVER_WAIT))?;
    stream.write_all(format!("{}\n", request.line()).as_bytes())?;
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply)?;
    if reply.trim() == "ok" {
        Ok(())
    } else {
        Err(std::io::Error::other(format!(
            "the running Bastionless refused the request: {}",
            reply.trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_hands_its_request_to_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let Claim::First(first) = claim(dir.path(), Request::Show).unwrap() else {
            panic!("nothing else holds a fresh directory")
        };
        let (seen, requests) = std::sync::mpsc::channel();
        first.serve(move |request| {
            let _ = seen.send(request);
        });
        assert!(matches!(
            claim(dir.path(), Request::Show).unwrap(),
            Claim::HandedOver
        ));
        assert_eq!(
            requests.recv_timeout(Duration::from_secs(5)).unwrap(),
            Request::Show
        );
    }

    #[test]
    fn a_stale_socket_from_a_crashed_instance_does_not_block_the_next() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("instance.sock"), "left behind").unwrap();
        assert!(matches!(
            claim(dir.path(), Request::Show).unwrap(),
            Claim::First(_)
        ));
    }
}
