//! The system RDP client pointed at a tunnel: a `.rdp` file and the command that opens it.
//!
//! Bastionless draws no remote desktop itself; it launches the client the user has: `mstsc` on
//! Windows, the default `.rdp` handler via `open` on macOS (Windows App / Microsoft Remote
//! Desktop), FreeRDP (`xfreerdp`, `wlfreerdp`) or Remmina on Linux, or the user's own command
//! template. Choosing the client and building its command line are pure functions over an
//! [`RdpEnv`] (OS, programs on `PATH`, Wayland or not), so each OS's command is unit-tested on
//! any OS; only [`RdpEnv::current`] and [`spawn_rdp_client`] touch the machine.
//!
//! The Windows password goes to the client on its standard input (FreeRDP's `/from-stdin`),
//! never on its command line or in a file. Clients that cannot read it from there get the
//! `.rdp` file with the user name, and the password on the clipboard for 30 s (Remmina, macOS)
//! or in the Windows Credential Manager for the session (mstsc): [`hand_over_password`].
//!
//! A template is a command line with placeholders, split like a POSIX shell would:
//! `{address}` (`127.0.0.1:PORT`), `{port}`, `{user}`, `{file}` (the `.rdp` file) and
//! `{title}`. A template with a `/from-stdin` argument gets the password on stdin.

use std::ffi::OsString;
use std::path::Path;
use std::process::Stdio;

use std::io::Write as _;

use super::terminal::{Os, find_on_path};
use super::windows_password::WindowsPassword;

/// The Windows user a new instance's password belongs to.
pub const DEFAULT_RDP_USER: &str = "Administrator";

/// One RDP session to open: where the tunnel listens and who logs in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdpSession {
    /// The tunnel's port on 127.0.0.1.
    pub local_port: u16,
    pub username: String,
    /// What the user calls the host (its Name tag), for the window title.
    pub host_name: String,
}

impl RdpSession {
    /// `127.0.0.1:PORT`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.local_port)
    }

    fn title(&self) -> String {
        format!("{} — Bastionless", self.host_name)
    }
}

/// The `.rdp` file for `session`: the address and user, a window that fits the screen, the
/// clipboard shared and nothing else redirected, and server authentication that warns rather
/// than refuses (a tunnel's 127.0.0.1 never matches the instance's own certificate name).
pub fn rdp_file_contents(session: &RdpSession) -> String {
    let lines = [
        format!("full address:s:{}", session.address()),
        format!("username:s:{}", session.username),
        "screen mode id:i:1".to_owned(),
        "smart sizing:i:1".to_owned(),
        "dynamic resolution:i:1".to_owned(),
        "session bpp:i:32".to_owned(),
        "redirectclipboard:i:1".to_owned(),
        "redirectprinters:i:0".to_owned(),
        "redirectdrives:i:0".to_owned(),
        "redirectsmartcards:i:0".to_owned(),
        "audiomode:i:0".to_owned(),
        "authentication level:i:2".to_owned(),
        "prompt for credentials:i:0".to_owned(),
        "negotiate security layer:i:1".to_owned(),
        "autoreconnection enabled:i:1".to_owned(),
    ];
    // mstsc writes and expects CRLF.
    lines.iter().map(|line| format!("{line}\r\n")).collect()
}

/// An RDP client Bastionless can launch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RdpClient {
    /// Windows' Remote Desktop Connection.
    Mstsc,
    /// macOS: the app registered for `.rdp` files, via `open`.
    MacOpen,
    /// A FreeRDP client (`xfreerdp`, `wlfreerdp`, or their FreeRDP 3 names), by program name.
    FreeRdp(String),
    Remmina,
    /// The user's command template (see the module docs).
    Template(String),
}

/// The FreeRDP programs, in the order they are tried on X11; Wayland sessions try the
/// Wayland-native ones first.
const FREERDP_X11: [&str; 2] = ["xfreerdp", "xfreerdp3"];
const FREERDP_WAYLAND: [&str; 2] = ["wlfreerdp", "wlfreerdp3"];

impl RdpClient {
    /// A client named on the command line: `mstsc`, `open`, `xfreerdp`, `wlfreerdp`,
    /// `xfreerdp3`, `wlfreerdp3` or `remmina`.
    pub fn from_name(name: &str) -> Option<RdpClient> {
        match name {
            "mstsc" => Some(RdpClient::Mstsc),
            "open" => Some(RdpClient::MacOpen),
            "remmina" => Some(RdpClient::Remmina),
            other if FREERDP_X11.contains(&other) || FREERDP_WAYLAND.contains(&other) => {
                Some(RdpClient::FreeRdp(other.to_owned()))
            }
            _ => None,
        }
    }
}

/// What client choice depends on: the OS, which programs are installed, the display server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdpEnv {
    pub os: Os,
    /// The client programs found on `PATH`.
    pub on_path: Vec<String>,
    /// Whether this is a Wayland session (`WAYLAND_DISPLAY` set).
    pub wayland: bool,
}

impl RdpEnv {
    /// This machine.
    pub fn current() -> RdpEnv {
        let candidates = FREERDP_WAYLAND
            .iter()
            .chain(&FREERDP_X11)
            .chain(&["remmina"]);
        RdpEnv {
            os: Os::current(),
            on_path: candidates
                .filter(|name| find_on_path(name).is_some())
                .map(|name| (*name).to_owned())
                .collect(),
            wayland: std::env::var_os("WAYLAND_DISPLAY").is_some_and(|v| !v.is_empty()),
        }
    }

    fn has(&self, program: &str) -> bool {
        self.on_path.iter().any(|p| p == program)
    }
}

/// Why no client can be launched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RdpError {
    #[error(
        "no RDP client was found: install FreeRDP (`apt install freerdp2-x11`, or `freerdp3-x11`) or Remmina, or set an RDP command template in the settings"
    )]
    NoClient,
    #[error("the RDP command template is empty or not a valid command line: `{0}`")]
    BadTemplate(String),
}

/// The client to use: the user's template, else the one they named, else the platform's.
pub fn choose_rdp_client(
    template: Option<&str>,
    named: Option<RdpClient>,
    env: &RdpEnv,
) -> Result<RdpClient, RdpError> {
    if let Some(template) = template.map(str::trim).filter(|t| !t.is_empty()) {
        return Ok(RdpClient::Template(template.to_owned()));
    }
    if let Some(client) = named {
        return Ok(client);
    }
    match env.os {
        Os::Windows => Ok(RdpClient::Mstsc),
        Os::MacOs => Ok(RdpClient::MacOpen),
        Os::Unix => {
            let wayland_first = env.wayland.then_some(FREERDP_WAYLAND).into_iter().flatten();
            wayland_first
                .chain(FREERDP_X11)
                .find(|program| env.has(program))
                .map(|program| RdpClient::FreeRdp(program.to_owned()))
                .or_else(|| env.has("remmina").then_some(RdpClient::Remmina))
                .ok_or(RdpError::NoClient)
        }
    }
}

/// How the password reaches a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordDelivery {
    /// Written to the client's standard input, then closed (FreeRDP's `/from-stdin`).
    Stdin,
    /// Copied to the clipboard for the user to paste, and cleared after 30 s
    /// ([`password_handover`](super::password_handover)): clients that cannot read it from
    /// stdin (Remmina, macOS `open`, templates without `/from-stdin`).
    Clipboard,
    /// A session-only `TERMSRV/127.0.0.1` credential in the Windows Credential Manager, which
    /// mstsc uses by itself; removed when the client exits.
    CredentialStore,
}

/// What was done with the password for a client that does not read it from stdin; keep it
/// until the client exits (a stored credential is removed when this is dropped).
pub struct PasswordHandover {
    /// What to tell the user ("Password copied; clears in 30 s"), if anything.
    pub said: Option<String>,
    _credential: Option<super::password_handover::StoredRdpCredential>,
}

/// Hands `password` to the client as `launch` says, before it starts. A clipboard or credential
/// store that cannot be used does not stop the launch: what went wrong is said instead.
pub fn hand_over_password(
    launch: &RdpLaunch,
    session: &RdpSession,
    password: &WindowsPassword,
) -> PasswordHandover {
    use super::password_handover::{RdpCredential, copy_password_to_clipboard};
    let (said, credential) = match launch.password {
        PasswordDelivery::Stdin => (None, None),
        PasswordDelivery::Clipboard => match copy_password_to_clipboard(password) {
            Ok(said) => (Some(said), None),
            Err(why) => (Some(why), None),
        },
        PasswordDelivery::CredentialStore => {
            match RdpCredential::for_session(session).store(password, None) {
                Ok(stored) => (
                    Some(
                        "the password is in the Windows Credential Manager for this session"
                            .to_owned(),
                    ),
                    Some(stored),
                ),
                Err(why) => match copy_password_to_clipboard(password) {
                    Ok(said) => (Some(format!("{why}; {said}")), None),
                    Err(also) => (Some(format!("{why}; {also}")), None),
                },
            }
        }
    };
    PasswordHandover {
        said,
        _credential: credential,
    }
}

/// A client command line, ready to spawn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RdpLaunch {
    pub program: OsString,
    pub args: Vec<OsString>,
    pub password: PasswordDelivery,
}

/// The command that opens `session` with `client`; `rdp_file` is where the session's `.rdp`
/// file is (for the clients that open files).
pub fn rdp_launch(
    client: &RdpClient,
    session: &RdpSession,
    rdp_file: &Path,
) -> Result<RdpLaunch, RdpError> {
    let file = || OsString::from(rdp_file);
    let launch = |program: &str, args: Vec<OsString>, password| RdpLaunch {
        program: program.into(),
        args,
        password,
    };
    Ok(match client {
        RdpClient::Mstsc => launch("mstsc", vec![file()], PasswordDelivery::CredentialStore),
        // -W: wait for the app to quit, so the .rdp file outlives its reading.
        RdpClient::MacOpen => launch(
            "open",
            vec!["-W".into(), file()],
            PasswordDelivery::Clipboard,
        ),
        RdpClient::Remmina => launch(
            "remmina",
            vec!["-c".into(), file()],
            PasswordDelivery::Clipboard,
        ),
        RdpClient::FreeRdp(program) => launch(
            program,
            [
                format!("/v:{}", session.address()),
                format!("/u:{}", session.username),
                // `force`: read it before connecting, whatever the security protocol.
                "/from-stdin:force".to_owned(),
                // The certificate is the instance's own, named for its hostname, not 127.0.0.1:
                // trust it on first use and notice if it changes.
                "/cert:tofu".to_owned(),
                format!("/title:{}", session.title()),
                "/dynamic-resolution".to_owned(),
                "+clipboard".to_owned(),
            ]
            .into_iter()
            .map(OsString::from)
            .collect(),
            PasswordDelivery::Stdin,
        ),
        RdpClient::Template(template) => template_launch(template, session, rdp_file)?,
    })
}

fn template_launch(
    template: &str,
    session: &RdpSession,
    rdp_file: &Path,
) -> Result<RdpLaunch, RdpError> {
    let bad = || RdpError::BadTemplate(template.to_owned());
    let words = shlex::split(template).ok_or_else(bad)?;
    let expand = |word: &str| {
        word.replace("{address}", &session.address())
            .replace("{port}", &session.local_port.to_string())
            .replace("{user}", &session.username)
            .replace("{title}", &session.title())
            .replace("{file}", &rdp_file.to_string_lossy())
    };
    let mut words = words.iter().map(|word| expand(word));
    let program = words.next().ok_or_else(bad)?;
    let args: Vec<OsString> = words.map(OsString::from).collect();
    let password = if args
        .iter()
        .any(|arg| arg.to_string_lossy().starts_with("/from-stdin"))
    {
        PasswordDelivery::Stdin
    } else {
        PasswordDelivery::Clipboard
    };
    Ok(RdpLaunch {
        program: program.into(),
        args,
        password,
    })
}

/// Starts `launch`, and hands it `password` on stdin when it takes it there. The password is
/// written from memory to the pipe and nowhere else. Blocking only as long as writing a line
/// to a fresh pipe takes.
pub fn spawn_rdp_client(
    launch: &RdpLaunch,
    password: Option<&WindowsPassword>,
) -> std::io::Result<std::process::Child> {
    let mut command = std::process::Command::new(&launch.program);
    command.args(&launch.args);
    let feed = match (launch.password, password) {
        (PasswordDelivery::Stdin, Some(password)) => Some(password),
        _ => None,
    };
    command.stdin(if feed.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = command.spawn()?;
    if let (Some(password), Some(mut stdin)) = (feed, child.stdin.take()) {
        let mut line = zeroize::Zeroizing::new(password.expose().as_bytes().to_vec());
        line.push(b'\n');
        // Dropping stdin closes it: the client sees the end of its input.
        stdin.write_all(&line)?;
    }
    Ok(child)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> RdpSession {
        RdpSession {
            local_port: 50123,
            username: "Administrator".into(),
            host_name: "win-eic-1".into(),
        }
    }

    fn env(os: Os, on_path: &[&str], wayland: bool) -> RdpEnv {
        RdpEnv {
            os,
            on_path: on_path.iter().map(|p| (*p).to_owned()).collect(),
            wayland,
        }
    }

    fn args(launch: &RdpLaunch) -> Vec<String> {
        launch
            .args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_rdp_file_points_at_the_tunnel_with_the_user_and_crlf_lines() {
        let text = rdp_file_contents(&session());
        assert!(text.starts_with("full address:s:127.0.0.1:50123\r\nusername:s:Administrator\r\n"));
        assert!(text.contains("redirectclipboard:i:1\r\n"));
        assert!(text.contains("redirectdrives:i:0\r\n"));
        assert!(text.contains("authentication level:i:2\r\n"));
        assert!(text.ends_with("autoreconnection enabled:i:1\r\n"));
        assert!(!text.contains("password"), "never a password in the file");
        assert_eq!(text.matches("\r\n").count(), text.lines().count());
    }

    #[test]
    fn each_os_gets_its_own_client() {
        let choose = |e: &RdpEnv| choose_rdp_client(None, None, e);
        assert_eq!(choose(&env(Os::Windows, &[], false)), Ok(RdpClient::Mstsc));
        assert_eq!(choose(&env(Os::MacOs, &[], false)), Ok(RdpClient::MacOpen));
        let linux = env(Os::Unix, &["remmina", "xfreerdp", "wlfreerdp"], false);
        assert_eq!(choose(&linux), Ok(RdpClient::FreeRdp("xfreerdp".into())));
        let wayland = env(Os::Unix, &["remmina", "xfreerdp", "wlfreerdp"], true);
        assert_eq!(choose(&wayland), Ok(RdpClient::FreeRdp("wlfreerdp".into())));
        let freerdp3 = env(Os::Unix, &["xfreerdp3"], true);
        assert_eq!(
            choose(&freerdp3),
            Ok(RdpClient::FreeRdp("xfreerdp3".into()))
        );
        assert_eq!(
            choose(&env(Os::Unix, &["remmina"], false)),
            Ok(RdpClient::Remmina)
        );
        let error = choose(&env(Os::Unix, &[], false)).unwrap_err();
        assert!(error.to_string().contains("install FreeRDP"), "{error}");
    }

    #[test]
    fn a_template_wins_over_a_named_client_which_wins_over_detection() {
        let linux = env(Os::Unix, &["xfreerdp"], false);
        assert_eq!(
            choose_rdp_client(
                Some("  my-rdp {address} "),
                Some(RdpClient::Remmina),
                &linux
            ),
            Ok(RdpClient::Template("my-rdp {address}".into()))
        );
        assert_eq!(
            choose_rdp_client(Some(" "), Some(RdpClient::Remmina), &linux),
            Ok(RdpClient::Remmina)
        );
        assert_eq!(
            RdpClient::from_name("wlfreerdp"),
            Some(RdpClient::FreeRdp("wlfreerdp".into()))
        );
        assert_eq!(RdpClient::from_name("mstsc"), Some(RdpClient::Mstsc));
        assert_eq!(RdpClient::from_name("rdesktop"), None);
    }

    #[test]
    fn freerdp_reads_the_password_from_stdin_and_never_from_argv() {
        let file = Path::new("/run/user/1000/bastionless-rdp/win-eic-1.rdp");
        let launch = rdp_launch(&RdpClient::FreeRdp("xfreerdp".into()), &session(), file).unwrap();
        assert_eq!(launch.program, "xfreerdp");
        assert_eq!(
            args(&launch),
            [
                "/v:127.0.0.1:50123",
                "/u:Administrator",
                "/from-stdin:force",
                "/cert:tofu",
                "/title:win-eic-1 — Bastionless",
                "/dynamic-resolution",
                "+clipboard",
            ]
        );
        assert_eq!(launch.password, PasswordDelivery::Stdin);
        assert!(!args(&launch).iter().any(|a| a.starts_with("/p:")));
    }

    #[test]
    fn mstsc_open_and_remmina_open_the_rdp_file() {
        let file = Path::new(r"C:\Users\me\AppData\Local\Temp\b\win-eic-1.rdp");
        let mstsc = rdp_launch(&RdpClient::Mstsc, &session(), file).unwrap();
        assert_eq!(mstsc.program, "mstsc");
        assert_eq!(
            args(&mstsc),
            [r"C:\Users\me\AppData\Local\Temp\b\win-eic-1.rdp"]
        );
        assert_eq!(mstsc.password, PasswordDelivery::CredentialStore);
        let file = Path::new("/var/folders/x/T/b/win-eic-1.rdp");
        let open = rdp_launch(&RdpClient::MacOpen, &session(), file).unwrap();
        assert_eq!(open.program, "open");
        assert_eq!(args(&open), ["-W", "/var/folders/x/T/b/win-eic-1.rdp"]);
        let remmina = rdp_launch(&RdpClient::Remmina, &session(), file).unwrap();
        assert_eq!(remmina.program, "remmina");
        assert_eq!(args(&remmina), ["-c", "/var/folders/x/T/b/win-eic-1.rdp"]);
        assert_eq!(remmina.password, PasswordDelivery::Clipboard);
        assert_eq!(open.password, PasswordDelivery::Clipboard);
    }

    #[test]
    fn a_template_expands_its_placeholders_word_by_word() {
        let file = Path::new("/tmp/b dir/win.rdp");
        let template = "'/opt/my rdp/xfreerdp' /v:{address} /u:{user} /from-stdin +auth-only /t:{title} {file} --port={port}";
        let launch = rdp_launch(&RdpClient::Template(template.into()), &session(), file).unwrap();
        assert_eq!(launch.program, "/opt/my rdp/xfreerdp");
        assert_eq!(
            args(&launch),
            [
                "/v:127.0.0.1:50123",
                "/u:Administrator",
                "/from-stdin",
                "+auth-only",
                "/t:win-eic-1 — Bastionless",
                "/tmp/b dir/win.rdp",
                "--port=50123",
            ]
        );
        assert_eq!(launch.password, PasswordDelivery::Stdin);
        let plain = rdp_launch(
            &RdpClient::Template("rdp-open {file}".into()),
            &session(),
            file,
        )
        .unwrap();
        assert_eq!(plain.password, PasswordDelivery::Clipboard);
        let error =
            rdp_launch(&RdpClient::Template("'unclosed".into()), &session(), file).unwrap_err();
        assert!(matches!(error, RdpError::BadTemplate(_)), "{error}");
    }

    #[cfg(unix)]
    #[test]
    fn the_password_arrives_on_the_clients_stdin_and_not_in_its_arguments() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        let launch = RdpLaunch {
            program: "sh".into(),
            args: vec![
                "-c".into(),
                format!(
                    "cat > '{}'; echo \"$@\" >> '{}'",
                    out.display(),
                    out.display()
                )
                .into(),
                "sh".into(),
                "/from-stdin".into(),
            ],
            password: PasswordDelivery::Stdin,
        };
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 1024).unwrap();
        let sealed = rsa::RsaPublicKey::from(&key)
            .encrypt(
                &mut rsa::rand_core::OsRng,
                rsa::Pkcs1v15Encrypt,
                b"pa ss;word",
            )
            .unwrap();
        let data = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, sealed);
        let password =
            super::super::windows_password::decrypt_password(&data, &key, "i-1", "kp").unwrap();
        let status = spawn_rdp_client(&launch, Some(&password))
            .unwrap()
            .wait()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "pa ss;word\n/from-stdin\n"
        );
    }
}
