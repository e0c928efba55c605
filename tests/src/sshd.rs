//! Real OpenSSH servers behind the simulated instances: the `sshd` backend.
//!
//! EC2 Instance Connect works because the instance's sshd asks, through its
//! `AuthorizedKeysCommand`, for the keys pushed with `SendSSHPublicKey` in the last 60 seconds.
//! This harness reproduces exactly that with a real `/usr/sbin/sshd`, so the product's ssh
//! launcher, key handling and tunnels are tested against the server they meet in AWS:
//!
//! - one sshd per instance, started on the first connection to its port 22 (the 40-host demo
//!   does not start 40 servers), on a free 127.0.0.1 port with its own host key;
//! - the simulator writes each pushed key as a line `<expiry> <key>` to
//!   `<dir>/<instance>/keys/<os-user>`, the expiry in real Unix time (the simulated clock may run
//!   fast), and the key command prints the lines whose expiry is still ahead;
//! - an instance launched with a key pair also authorizes that key pair's public key for the
//!   user it logs in, as EC2 writes it into the default user's `authorized_keys` at launch
//!   (`<dir>/<instance>/key-pair.pub`, printed by the same key command);
//! - the key command runs as `/bin/sh <script> %u`: sshd checks the ownership of only the
//!   command's first word, so the script may live in a temporary directory
//!   (`shared/TEST-HARNESS.md` §1 has the pitfalls this avoids).
//!
//! sshd can only log in users that exist, so every instance logs in the local user running the
//! simulator; the simulator advertises that name with the instance tag `bastionless:user`.
//! Without OpenSSH installed the backend refuses connections and says why in the log.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::sync::OnceCell;

/// Where Debian (and most distributions) install the server; sshd must be started by absolute
/// path ("sshd re-exec requires execution with an absolute path").
const SSHD: &str = "/usr/sbin/sshd";

/// How long a fresh sshd may take to say it is listening (it takes 15–30 ms).
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// Tries at starting one server: a free port found by binding can be taken by someone else
/// before sshd binds it.
const START_ATTEMPTS: usize = 3;

/// One instance's server: started once, on first use; its address or why it could not start.
type ServerStart = OnceCell<Result<SocketAddr, String>>;

/// The sshd servers of one simulator, started on demand.
#[derive(Debug)]
pub struct SshdHarness {
    /// `<simulator dir>/sshd`; one sub-directory per instance.
    root: PathBuf,
    /// The local user every server logs in; `None` when the backend cannot work here.
    login_user: Option<String>,
    unavailable_because: Option<String>,
    servers: Mutex<HashMap<String, Arc<ServerStart>>>,
    /// Per instance id, the public key of the key pair it was launched with.
    key_pairs: Mutex<HashMap<String, String>>,
    /// Running servers; killed when the harness stops or is dropped.
    children: Mutex<Vec<Child>>,
    supports_penalty_switch: OnceCell<bool>,
}

impl SshdHarness {
    /// Looks for OpenSSH and the local user name; starts nothing.
    pub fn detect(root: PathBuf) -> SshdHarness {
        let (login_user, unavailable_because) = match local_user() {
            _ if !Path::new(SSHD).exists() => (
                None,
                Some(format!(
                    "{SSHD} is not installed (Debian: apt-get install openssh-server)"
                )),
            ),
            Ok(user) => (Some(user), None),
            Err(reason) => (None, Some(reason)),
        };
        SshdHarness {
            root,
            login_user,
            unavailable_because,
            servers: Mutex::default(),
            key_pairs: Mutex::default(),
            children: Mutex::default(),
            supports_penalty_switch: OnceCell::new(),
        }
    }

    /// The local user the servers log in, when they can run at all.
    pub fn login_user(&self) -> Option<&str> {
        self.login_user.as_deref()
    }

    /// Makes `keys` (each with its real-time expiry) the keys of `os_user` on `instance_id`,
    /// replacing the previous set; the file is swapped atomically under a running sshd.
    pub fn publish_keys(
        &self,
        instance_id: &str,
        os_user: &str,
        keys: &[(String, DateTime<Utc>)],
    ) -> std::io::Result<()> {
        let dir = self.instance_dir(instance_id).join("keys");
        std::fs::create_dir_all(&dir)?;
        let mut text = String::new();
        for (key, expires) in keys {
            let expires = expires.timestamp_millis() as f64 / 1000.0;
            text += &format!("{expires:.3} {}\n", key.trim());
        }
        let staging = dir.join(format!(".{os_user}.new"));
        std::fs::write(&staging, text)?;
        std::fs::rename(&staging, dir.join(os_user))
    }

    /// Authorizes `public_key` (an `authorized_keys` line) for the login user of
    /// `instance_id`, as the key pair it was launched with; for servers started after this.
    pub fn authorize_key_pair(&self, instance_id: &str, public_key: &str) {
        self.key_pairs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(instance_id.to_owned(), public_key.trim().to_owned());
    }

    /// Connects to `instance_id`'s sshd, starting it on first use.
    pub async fn connect(&self, instance_id: &str) -> std::io::Result<TcpStream> {
        let server = {
            let mut servers = self
                .servers
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            Arc::clone(servers.entry(instance_id.to_owned()).or_default())
        };
        let address = server
            .get_or_init(|| async {
                let started = self.start(instance_id).await;
                match &started {
                    Ok(address) => {
                        tracing::info!(instance_id, %address, "started sshd for the instance");
                    }
                    Err(reason) => {
                        tracing::warn!(
                            instance_id,
                            "the sshd backend refuses connections: {reason}"
                        );
                    }
                }
                started
            })
            .await
            .clone()
            .map_err(|reason| std::io::Error::new(std::io::ErrorKind::ConnectionRefused, reason))?;
        TcpStream::connect(address).await
    }

    /// Kills every server started so far.
    pub fn stop(&self) {
        let mut children = self
            .children
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for child in children.iter_mut() {
            let _ = child.start_kill();
        }
        children.clear();
    }

    fn instance_dir(&self, instance_id: &str) -> PathBuf {
        self.root.join(instance_id)
    }

    async fn start(&self, instance_id: &str) -> Result<SocketAddr, String> {
        if let Some(reason) = &self.unavailable_because {
            return Err(reason.clone());
        }
        let user = self.login_user.as_deref().unwrap_or("root");
        let dir = self.instance_dir(instance_id);
        std::fs::create_dir_all(dir.join("keys"))
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        if running_as_root() {
            privilege_separation_dir()?;
        }
        let host_key = dir.join("host_ed25519");
        if !host_key.exists() {
            generate_host_key(&host_key, instance_id).await?;
        }
        let key_pair = self
            .key_pairs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(instance_id)
            .cloned();
        let key_pair_file = dir.join("key-pair.pub");
        if let Some(public_key) = &key_pair {
            std::fs::write(&key_pair_file, format!("{public_key}\n"))
                .map_err(|e| format!("cannot write {}: {e}", key_pair_file.display()))?;
        }
        let launch_key = key_pair.map(|_| (user, key_pair_file.as_path()));
        let script = dir.join("authorized-keys.sh");
        std::fs::write(&script, key_command_script(&dir.join("keys"), launch_key))
            .map_err(|e| format!("cannot write {}: {e}", script.display()))?;
        let penalties = *self
            .supports_penalty_switch
            .get_or_init(|| supports_per_source_penalties(&host_key))
            .await;
        let config = dir.join("sshd_config");
        std::fs::write(&config, sshd_config(&host_key, &script, user, penalties))
            .map_err(|e| format!("cannot write {}: {e}", config.display()))?;

        let mut last_error = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port().map_err(|e| format!("cannot find a free port: {e}"))?;
            match self.spawn(&dir, &config, port).await {
                Ok(child) => {
                    self.children
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push(child);
                    return Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, port)));
                }
                Err(error) if error.contains("Address already in use") => last_error = error,
                Err(error) => return Err(error),
            }
        }
        Err(last_error)
    }

    /// Starts sshd on `port` and waits until it listens.
    async fn spawn(&self, dir: &Path, config: &Path, port: u16) -> Result<Child, String> {
        let log_path = dir.join("sshd.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("cannot open {}: {e}", log_path.display()))?;
        let start_of_run = log.metadata().map(|m| m.len()).unwrap_or(0);
        let mut child = Command::new(SSHD)
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(config)
            .arg("-p")
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot run {SSHD}: {e}"))?;
        let listening = format!("Server listening on 127.0.0.1 port {port}");
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            let log = read_from(&log_path, start_of_run);
            if log.contains(&listening) {
                return Ok(child);
            }
            if let Ok(Some(status)) = child.try_wait() {
                return Err(format!(
                    "{SSHD} exited ({status}) before listening; its log says: {}",
                    log.trim()
                ));
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = child.start_kill();
                return Err(format!(
                    "{SSHD} did not listen within {START_TIMEOUT:?}; its log says: {}",
                    log.trim()
                ));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

impl Drop for SshdHarness {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The name of the user running this process (`id -un`).
fn local_user() -> Result<String, String> {
    let output = std::process::Command::new("id")
        .arg("-un")
        .output()
        .map_err(|e| format!("cannot run `id -un` to learn the local user name: {e}"))?;
    let name = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if output.status.success() && !name.is_empty() {
        Ok(name)
    } else {
        Err("`id -un` did not name the local user".to_owned())
    }
}

fn running_as_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

/// sshd running as root needs `/run/sshd`, root-owned and not writable by others. It is shared
/// with every other sshd on the machine, so it is created when missing and never removed.
fn privilege_separation_dir() -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt as _;
    match std::fs::DirBuilder::new()
        .mode(0o755)
        .recursive(true)
        .create("/run/sshd")
    {
        Ok(()) => Ok(()),
        Err(e) => Err(format!(
            "cannot create sshd's privilege separation directory /run/sshd: {e}"
        )),
    }
}

async fn generate_host_key(path: &Path, comment: &str) -> Result<(), String> {
    let output = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run ssh-keygen for a host key: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ssh-keygen failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// `PerSourcePenalties` (OpenSSH 9.8+) would lock tests out of 127.0.0.1 after a few failed
/// logins, which the tests make on purpose; older servers reject the keyword, so ask this one.
async fn supports_per_source_penalties(host_key: &Path) -> bool {
    Command::new(SSHD)
        .args(["-t", "-f", "/dev/null", "-o"])
        .arg(format!("HostKey={}", host_key.display()))
        .args(["-o", "PerSourcePenalties=no"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .await
        .is_ok_and(|status| status.success())
}

fn sshd_config(host_key: &Path, script: &Path, user: &str, penalties_switch: bool) -> String {
    let mut config = format!(
        "# Written by bastionless-sim: one simulated EC2 instance's sshd.\n\
         ListenAddress 127.0.0.1\n\
         HostKey {host_key}\n\
         PidFile none\n\
         UsePAM no\n\
         PermitRootLogin prohibit-password\n\
         PasswordAuthentication no\n\
         KbdInteractiveAuthentication no\n\
         AuthorizedKeysFile none\n\
         AuthorizedKeysCommand /bin/sh {script} %u\n\
         AuthorizedKeysCommandUser {user}\n\
         Subsystem sftp internal-sftp\n\
         LogLevel VERBOSE\n",
        host_key = host_key.display(),
        script = script.display(),
    );
    if penalties_switch {
        config += "PerSourcePenalties no\n";
    }
    config
}

/// The `AuthorizedKeysCommand`: prints the unexpired keys of user `$1`, and for `launch_key`'s
/// user the key pair file it names.
fn key_command_script(keys_dir: &Path, launch_key: Option<(&str, &Path)>) -> String {
    let launch_key = launch_key.map_or_else(String::new, |(user, file)| {
        format!(
            "# The key pair the instance was launched with, in {user}'s authorized_keys.\n\
             [ \"$1\" = '{user}' ] && cat '{file}'\n",
            file = file.display()
        )
    });
    format!(
        "#!/bin/sh\n\
         # Written by bastionless-sim: the keys pushed with SendSSHPublicKey for user $1, one\n\
         # \"<expiry-unix-time> <public key>\" line each; only unexpired ones authorize.\n\
         case \"$1\" in */*|'') exit 0 ;; esac\n\
         {launch_key}\
         f='{dir}'/\"$1\"\n\
         [ -f \"$f\" ] || exit 0\n\
         exec awk -v now=\"$(date +%s.%N)\" '$1 + 0 > now + 0 {{ sub(/^[^ ]+ /, \"\"); print }}' \"$f\"\n",
        dir = keys_dir.display()
    )
}

fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?.port())
}

fn read_from(path: &Path, offset: u64) -> String {
    let text = std::fs::read(path).unwrap_or_default();
    let start = usize::try_from(offset).unwrap_or(0).min(text.len());
    String::from_utf8_lossy(&text[start..]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_command_prints_the_user_s_unexpired_keys_and_the_launch_key_pair_for_its_user() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let harness = SshdHarness::detect(dir.path().to_owned());
        let now = Utc::now();
        harness
            .publish_keys(
                "i-1",
                "alice",
                &[
                    (
                        "ssh-ed25519 AAAAfresh fresh".to_owned(),
                        now + chrono::TimeDelta::seconds(30),
                    ),
                    (
                        "ssh-ed25519 AAAAstale stale".to_owned(),
                        now - chrono::TimeDelta::seconds(1),
                    ),
                ],
            )
            .expect("published");
        let script = dir.path().join("akc.sh");
        std::fs::write(
            &script,
            key_command_script(
                &dir.path().join("i-1").join("keys"),
                Some(("bob", &dir.path().join("launch.pub"))),
            ),
        )
        .expect("script written");
        std::fs::write(
            dir.path().join("launch.pub"),
            "ssh-ed25519 AAAAlaunch bob-pair\n",
        )
        .expect("key pair written");
        let run = |user: &str| {
            let output = std::process::Command::new("/bin/sh")
                .arg(&script)
                .arg(user)
                .output()
                .expect("sh runs");
            assert!(output.status.success());
            String::from_utf8(output.stdout).expect("utf-8")
        };
        assert_eq!(run("alice"), "ssh-ed25519 AAAAfresh fresh\n");
        // bob's only key is the instance's key pair.
        assert_eq!(run("bob"), "ssh-ed25519 AAAAlaunch bob-pair\n");
        assert_eq!(run("../alice"), "");
    }
}
