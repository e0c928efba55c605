//! Logging in with the instance's own key pair instead of a pushed key, end to end: the
//! simulator's sshd accepts the key pair an instance was launched with (as EC2 puts it in the
//! default user's `authorized_keys`), and `bastionless ssh` offers the key file the settings
//! name — the host's identity file on every route, else the file set for the host's key pair
//! name off EC2 Instance Connect — with `IdentitiesOnly=yes`, and pushes no key for it.
//!
//! ssh runs through a recording wrapper (`--ssh-program`) so the test sees the options
//! Bastionless gave it; the login itself is the real OpenSSH client and server.

use bastionless_core::store::{AppSettings, HostSettings, Store};
use std::path::{Path, PathBuf};
use std::process::Output;

mod support;

use support::World;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A scratch directory with a copy of the `prod-ops` key pair's private key (mode 0600, as ssh
/// wants it), an ssh wrapper that records its arguments, and a settings directory.
struct Setup {
    dir: tempfile::TempDir,
    key: PathBuf,
    wrapper: PathBuf,
    store: Store,
}

impl Setup {
    fn new(world: &World) -> Setup {
        let dir = tempfile::tempdir().unwrap();
        let source = world
            .simulator
            .ssh_key_pair_file("prod-ops")
            .expect("the demo's Linux instances use the prod-ops key pair");
        let key = dir.path().join("prod-ops.pem");
        std::fs::write(&key, std::fs::read(source).unwrap()).unwrap();
        set_mode(&key, 0o600);
        let wrapper = dir.path().join("ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\nexec ssh \"$@\"\n",
                dir.path().join("ssh-args").display()
            ),
        )
        .unwrap();
        set_mode(&wrapper, 0o755);
        let store = Store::open(dir.path().join("config")).unwrap();
        Setup {
            dir,
            key,
            wrapper,
            store,
        }
    }

    /// `bastionless ssh HOST [ROUTE…] -- -o BatchMode=yes echo ok` with these settings.
    fn ssh(&self, world: &World, host: &str, extra: &[&str]) -> Output {
        let mut args = vec!["ssh", host, "--ssh-program", self.wrapper.to_str().unwrap()];
        args.extend(extra);
        args.extend(["--", "-o", "BatchMode=yes", "echo", "ok"]);
        world
            .bastionless_command(&args)
            .env("BASTIONLESS_CONFIG_DIR", self.dir.path().join("config"))
            .output()
            .expect("bastionless runs")
    }

    /// The arguments ssh was last run with, one a line.
    fn ssh_args(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("ssh-args")).unwrap()
    }
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

fn assert_logged_in(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: stderr:\n{}",
        text(&output.stderr)
    );
    assert_eq!(text(&output.stdout), "ok\n", "{what}");
}

#[test]
fn a_host_s_identity_file_logs_in_through_the_real_sshd_on_both_routes_without_a_push() {
    let world = World::start();
    let setup = Setup::new(&world);
    let snapshot = world.engine().snapshot();
    let offered = format!("\nIdentitiesOnly=yes\n-i\n{}\n", setup.key.display());

    for (name, route) in [("web-eic-1", "eic"), ("db-both-1", "ssm")] {
        let host = snapshot.find_hosts(name)[0].key();
        assert_eq!(
            world
                .simulator
                .scenario()
                .instance_named(name)
                .and_then(|i| i.key_name.as_deref()),
            Some("prod-ops")
        );
        setup
            .store
            .set_host_settings(
                &(&host).into(),
                HostSettings {
                    identity_file: Some(setup.key.clone()),
                    ..HostSettings::default()
                },
            )
            .unwrap();
        let pushed = world.simulator.calls("SendSSHPublicKey");
        let output = setup.ssh(&world, name, &["--route", route]);
        assert_logged_in(&output, name);
        let args = setup.ssh_args();
        assert!(args.contains(&offered), "{name}: {args}");
        assert!(
            args.lines()
                .any(|w| w.starts_with("ProxyCommand=") && w.ends_with(&format!("--route {route}"))),
            "{name} goes by its route: {args}"
        );
        assert_eq!(
            world.simulator.calls("SendSSHPublicKey"),
            pushed,
            "{name}: no key is pushed when the settings name one"
        );
    }

    // The same login with a key the instance was not launched with is refused: it was the key
    // pair that let ssh in.
    let stranger = setup.dir.path().join("stranger");
    let made = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&stranger)
        .status()
        .unwrap();
    assert!(made.success());
    let output = setup.ssh(
        &world,
        "web-eic-1",
        &["--route", "eic", "-i", stranger.to_str().unwrap()],
    );
    assert_eq!(output.status.code(), Some(255), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("Permission denied"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn the_key_pair_s_file_from_the_settings_logs_in_off_eic_and_eic_still_pushes_its_own_key() {
    let world = World::start();
    let setup = Setup::new(&world);
    let mut settings = AppSettings::default();
    settings
        .key_pair_identity_files
        .insert("prod-ops".into(), setup.key.clone());
    setup.store.set_settings(settings).unwrap();
    let offered = format!("\nIdentitiesOnly=yes\n-i\n{}\n", setup.key.display());

    // Through Session Manager: the key pair's file, and nothing pushed.
    let pushed = world.simulator.calls("SendSSHPublicKey");
    let output = setup.ssh(&world, "db-both-1", &["--route", "ssm"]);
    assert_logged_in(&output, "db-both-1 by SSM");
    assert!(setup.ssh_args().contains(&offered), "{}", setup.ssh_args());
    assert_eq!(world.simulator.calls("SendSSHPublicKey"), pushed);

    // Through EC2 Instance Connect: its ephemeral key, the route's own way in (the key pair's
    // file is the fallback should the push fail).
    let output = setup.ssh(&world, "db-both-1", &["--route", "eic"]);
    assert_logged_in(&output, "db-both-1 by EIC");
    let args = setup.ssh_args();
    assert!(args.contains("\nIdentitiesOnly=yes\n-i\n"), "{args}");
    assert!(!args.contains(&offered), "{args}");
    assert_eq!(world.simulator.calls("SendSSHPublicKey"), pushed + 1);
}
