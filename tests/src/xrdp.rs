//! A real RDP server for tests: Debian's `xrdp` on a random loopback port, logging a local user
//! in with a Windows instance's password, so an RDP client can be tested end to end through a
//! tunnel (a scenario points the instance's port 3389 at [`XrdpServer::address`] with a `tcp:`
//! backend).
//!
//! xrdp 0.9 has no NLA: it checks the password (through `xrdp-sesman` and PAM) only after the
//! RDP connection is up, and carries on after a `+auth-only` client has gone. So the verdict
//! is read from sesman's log: `created session (access granted)` or `AUTHFAIL`
//! ([`XrdpServer::wait_for_login`]). Sessions are started with `/bin/false` as the X server, so
//! a successful login leaves no desktop running.
//!
//! Needs root (a system user, `/run/xrdp`), the `xrdp` package, and port 3350 free: xrdp
//! always reaches sesman there, so one server runs per machine at a time.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// The port xrdp reaches sesman on, whatever its configuration says.
const SESMAN_PORT: u16 = 3350;
const XRDP: &str = "/usr/sbin/xrdp";
const SESMAN: &str = "/usr/sbin/xrdp-sesman";

/// How a login attempt ended, as sesman logged it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginOutcome {
    Granted,
    Refused,
}

/// A running xrdp and xrdp-sesman; both stop when dropped.
#[derive(Debug)]
pub struct XrdpServer {
    dir: tempfile::TempDir,
    xrdp: Child,
    sesman: Child,
    address: SocketAddr,
}

impl XrdpServer {
    /// Whether this machine can run it: the packages are installed and this is root.
    pub fn available() -> Result<(), String> {
        for program in [XRDP, SESMAN, "/usr/sbin/chpasswd", "/usr/sbin/useradd"] {
            if !Path::new(program).exists() {
                return Err(format!(
                    "{program} is missing (apt-get install xrdp passwd)"
                ));
            }
        }
        if !is_root() {
            return Err("xrdp tests need root (a system user and /run/xrdp)".to_owned());
        }
        Ok(())
    }

    /// Starts xrdp on a free loopback port with a certificate made for the run; logins are
    /// for the users made with [`XrdpServer::set_login`].
    pub fn start() -> anyhow::Result<XrdpServer> {
        XrdpServer::available().map_err(anyhow::Error::msg)?;
        if TcpStream::connect((Ipv4Addr::LOCALHOST, SESMAN_PORT)).is_ok() {
            bail!("port {SESMAN_PORT} is taken: another xrdp-sesman runs on this machine");
        }
        let dir = tempfile::Builder::new()
            .prefix("bastionless-xrdp-")
            .tempdir()?;
        run(Command::new("/bin/sh").arg("/usr/share/xrdp/socksetup"))?;
        make_certificate(dir.path())?;
        let port = free_port()?;
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        std::fs::write(dir.path().join("xrdp.ini"), xrdp_ini(dir.path(), port)?)?;
        std::fs::write(dir.path().join("sesman.ini"), sesman_ini(dir.path())?)?;
        let sesman = {
            let mut command = Command::new(SESMAN);
            command
                .arg("-n")
                .arg("-c")
                .arg(dir.path().join("sesman.ini"))
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            // Its session children outlive it: a process group of its own lets Drop end them.
            std::os::unix::process::CommandExt::process_group(&mut command, 0);
            command.spawn().context("cannot start xrdp-sesman")?
        };
        let xrdp = Command::new(XRDP)
            .arg("-n")
            .arg("-c")
            .arg(dir.path().join("xrdp.ini"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start xrdp")?;
        let server = XrdpServer {
            dir,
            xrdp,
            sesman,
            address,
        };
        server.wait_listening()?;
        Ok(server)
    }

    /// Makes (or reuses) the local user `user` and sets its password: what an RDP login as
    /// `user` must present.
    pub fn set_login(&self, user: &str, password: &str) -> anyhow::Result<()> {
        ensure_user(user, password)
    }

    /// How much sesman has logged so far, to wait for a login after this point.
    pub fn log_position(&self) -> usize {
        std::fs::metadata(self.sesman_log()).map_or(0, |m| m.len() as usize)
    }

    /// Where xrdp listens.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// sesman's log.
    pub fn sesman_log(&self) -> PathBuf {
        self.dir.path().join("sesman.log")
    }

    /// Waits for sesman's verdict on a login by `user` logged after `since` (a
    /// [`XrdpServer::log_position`]); PAM delays a refusal by up to 3 s.
    pub fn wait_for_login(
        &self,
        user: &str,
        since: usize,
        timeout: Duration,
    ) -> Option<LoginOutcome> {
        let granted = format!("access granted): username {user},");
        let refused = format!("AUTHFAIL: user={user} ");
        let deadline = Instant::now() + timeout;
        loop {
            let log = std::fs::read(self.sesman_log()).unwrap_or_default();
            let log = String::from_utf8_lossy(log.get(since..).unwrap_or_default());
            if log.contains(&granted) {
                return Some(LoginOutcome::Granted);
            }
            if log.contains(&refused) {
                return Some(LoginOutcome::Refused);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn wait_listening(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(10);
        let sesman_up = || {
            TcpStream::connect((Ipv4Addr::LOCALHOST, SESMAN_PORT)).is_ok()
                || TcpStream::connect(("::1", SESMAN_PORT)).is_ok()
        };
        while Instant::now() < deadline {
            if TcpStream::connect(self.address).is_ok() && sesman_up() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!(
            "xrdp did not listen on {} within 10 s; see {}",
            self.address,
            self.dir.path().join("xrdp.log").display()
        )
    }
}

impl Drop for XrdpServer {
    fn drop(&mut self) {
        let _ = self.xrdp.kill();
        let _ = self.xrdp.wait();
        if let Ok(group) = i32::try_from(self.sesman.id()) {
            // SAFETY: kill(2) with a negative pid signals the process group sesman leads.
            unsafe {
                libc::kill(-group, libc::SIGKILL);
            }
        }
        let _ = self.sesman.wait();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Creates `user` (no home, no shell) unless it exists, and sets its password through stdin.
fn ensure_user(user: &str, password: &str) -> anyhow::Result<()> {
    let exists = Command::new("id")
        .arg("-u")
        .arg(user)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?
        .success();
    if !exists {
        run(Command::new("/usr/sbin/useradd")
            .args(["-M", "-s", "/usr/sbin/nologin"])
            .arg(user))?;
    }
    let mut chpasswd = Command::new("/usr/sbin/chpasswd")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run chpasswd")?;
    {
        use std::io::Write as _;
        let mut stdin = chpasswd.stdin.take().context("chpasswd's stdin")?;
        writeln!(stdin, "{user}:{password}")?;
    }
    let output = chpasswd.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "chpasswd failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn make_certificate(dir: &Path) -> anyhow::Result<()> {
    let certificate = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()])?;
    crate::shared_config::write_private(&dir.join("cert.pem"), &certificate.cert.pem())?;
    crate::shared_config::write_private(
        &dir.join("key.pem"),
        &certificate.signing_key.serialize_pem(),
    )?;
    Ok(())
}

/// Debian's xrdp.ini, listening on loopback only, TLS with the run's certificate, logging to
/// `dir`.
fn xrdp_ini(dir: &Path, port: u16) -> anyhow::Result<String> {
    let stock = std::fs::read_to_string("/etc/xrdp/xrdp.ini").context("reading xrdp.ini")?;
    Ok(stock
        .lines()
        .map(|line| match line.split_once('=').map(|(key, _)| key) {
            Some("port") if line == "port=3389" => format!("port=tcp://127.0.0.1:{port}"),
            Some("security_layer") => "security_layer=tls".to_owned(),
            Some("certificate") => format!("certificate={}", dir.join("cert.pem").display()),
            Some("key_file") => format!("key_file={}", dir.join("key.pem").display()),
            Some("LogFile") if line == "LogFile=xrdp.log" => {
                format!("LogFile={}", dir.join("xrdp.log").display())
            }
            Some("EnableSyslog") => "EnableSyslog=false".to_owned(),
            _ => line.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n"))
}

/// Debian's sesman.ini, logging to `dir`, with `/bin/false` as the only `[Xorg]` parameter: a
/// granted login starts no X server.
fn sesman_ini(dir: &Path) -> anyhow::Result<String> {
    let stock = std::fs::read_to_string("/etc/xrdp/sesman.ini").context("reading sesman.ini")?;
    let mut out = Vec::new();
    let mut in_xorg = false;
    for line in stock.lines() {
        if line.starts_with('[') {
            in_xorg = line == "[Xorg]";
            out.push(line.to_owned());
            if in_xorg {
                out.push("param=/bin/false".to_owned());
            }
            continue;
        }
        if in_xorg && line.starts_with("param=") {
            continue;
        }
        out.push(match line {
            "LogFile=xrdp-sesman.log" => {
                format!("LogFile={}", dir.join("sesman.log").display())
            }
            "EnableSyslog=true" => "EnableSyslog=false".to_owned(),
            other => other.to_owned(),
        });
    }
    Ok(out.join("\n"))
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    let output = command.output()?;
    if !output.status.success() {
        bail!(
            "{:?} failed: {}",
            command,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}
