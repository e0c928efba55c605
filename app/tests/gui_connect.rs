//! Connecting from the window, against the simulator: a double-click (and Enter after a palette
//! pick) sends the host's default Connect, whose terminal is a script here that records what it
//! was asked to run; with ssh set to reach the host through a port on 127.0.0.1, the tunnel
//! then shows in the tunnels panel with the bytes that cross it, and Close ends it. (The
//! default, a ProxyCommand, is followed end to end in `ssh_config_e2e.rs`.)
//!
//! `TERMINAL` and `XDG_DATA_HOME` are set once for the whole process (before any engine starts),
//! so these tests live in a binary of their own.

#[path = "support/gui.rs"]
mod gui_support;

use bastionless::ui::BastionlessApp;
use bastionless_core::engine::{Engine, EngineConfig, Snapshot};
use bastionless_core::profiles::AwsFiles;
use bastionless_core::store::{AppSettings, SshVia, Store};
use bastionless_sim::{BackgroundSimulator, Scenario};
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable};
use gui_support::{TIMEOUT, shown_containing as shown, step_until};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// A directory with the terminal script (which appends its arguments, one run per line, to
/// `terminal.log` and exits), set as `$TERMINAL`, and Bastionless's data directory.
fn fake_terminal() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary directory").keep();
        let script = dir.join("terminal");
        std::fs::write(
            &script,
            format!(
                "#!/bin/sh\necho \"$*\" >> '{}'\n",
                dir.join("terminal.log").display()
            ),
        )
        .expect("script written");
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
            .expect("script made executable");
        // SAFETY: called before this process starts any engine (every test calls this first,
        // and `OnceLock` makes the others wait), so no other thread reads the environment.
        unsafe {
            std::env::set_var("TERMINAL", &script);
            std::env::set_var("XDG_DATA_HOME", &dir);
        }
        dir
    })
}

fn terminal_log() -> String {
    std::fs::read_to_string(fake_terminal().join("terminal.log")).unwrap_or_default()
}

/// The window over `simulator`, its ssh set to reach the host through a port on 127.0.0.1
/// (the `ssh_via` setting; the default, a ProxyCommand, opens no tunnel in the window's
/// engine), so the tunnel shows in the tunnels panel.
fn demo_window(
    simulator: &BackgroundSimulator,
) -> (Harness<'static, BastionlessApp>, Arc<Snapshot>) {
    let files = AwsFiles::at(simulator.config_file(), simulator.credentials_file());
    // Beside the terminal script, kept as it is for the process.
    let dir = tempfile::tempdir_in(fake_terminal())
        .expect("a directory")
        .keep();
    let store = Store::open(dir).expect("a store");
    store
        .set_settings(AppSettings {
            ssh_via: Some(SshVia::LoopbackPort),
            ..AppSettings::default()
        })
        .expect("settings saved");
    let mut config = EngineConfig::new(files);
    config.store = Some(store);
    let engine = Engine::start(config).expect("engine starts");
    let snapshot = engine.wait_until(TIMEOUT, |s| !s.refreshing);
    assert!(
        !snapshot.refreshing,
        "the inventory did not finish within {TIMEOUT:?}"
    );
    let height = 360.0 + 30.0 * snapshot.hosts.len() as f32;
    // Steps of a 60 Hz display, so two clicks three steps apart make a double-click.
    let mut harness = Harness::builder()
        .with_size([1400.0, height])
        .with_step_dt(1.0 / 60.0)
        .with_max_steps(120)
        .build_eframe(|cc| BastionlessApp::new(engine, &cc.egui_ctx));
    harness.run();
    (harness, snapshot)
}

#[test]
fn double_click_opens_ssh_through_a_tunnel_whose_bytes_show_and_close_ends_it() {
    fake_terminal();
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let (mut harness, snapshot) = demo_window(&simulator);
    let web = snapshot
        .hosts
        .iter()
        .find(|h| h.display_name() == "web-eic-1")
        .expect("the demo has web-eic-1")
        .clone();

    let row = harness.get_by_label("web-eic-1");
    row.click();
    row.click();
    harness.run();

    step_until(&mut harness, "the tunnel listens", |h| {
        shown(h, "listening")
    });
    assert!(
        shown(&harness, "web-eic-1:22"),
        "the tunnel names its host and port"
    );
    let addr: std::net::SocketAddr = harness
        .query_all_by_label_contains("127.0.0.1:")
        .find_map(|node| {
            node.accesskit_node()
                .value()
                .and_then(|text| text.parse().ok())
        })
        .expect("the panel shows the tunnel's local address");
    step_until(&mut harness, "the terminal runs ssh", |_| {
        terminal_log().contains(&web.instance_id)
    });
    let log = terminal_log();
    assert!(
        log.contains("ssh") && log.contains(&addr.port().to_string()),
        "the terminal runs ssh to the tunnel: {log}"
    );

    // What the terminal's ssh would do: connect, and read the server's greeting.
    let mut stream = std::net::TcpStream::connect(addr).expect("the tunnel accepts");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut greeting = [0u8; 8];
    stream
        .read_exact(&mut greeting)
        .expect("sshd greets through the tunnel");
    assert_eq!(&greeting, b"SSH-2.0-");
    step_until(&mut harness, "the panel counts the greeting's bytes", |h| {
        h.query_all_by_label_contains("received ").any(|node| {
            node.accesskit_node()
                .value()
                .is_some_and(|text| !text.contains("received 0 B"))
        })
    });
    assert!(
        shown(&harness, "open"),
        "a tunnel carrying a connection is open"
    );

    harness.get_by_label("Close").click();
    harness.run();
    step_until(&mut harness, "the tunnel is gone", |h| {
        !shown(h, "web-eic-1:22")
    });
    drop(stream);
}

#[test]
fn the_palette_finds_a_host_and_enter_connects_to_it() {
    fake_terminal();
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let (mut harness, snapshot) = demo_window(&simulator);
    let db = snapshot
        .hosts
        .iter()
        .find(|h| h.display_name() == "db-both-1")
        .expect("the demo has db-both-1")
        .clone();

    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::K);
    harness.run();
    let field = harness.get_by_label("Find a host or an action");
    field.type_text("dbboth");
    harness.run();
    assert!(
        shown(&harness, &db.instance_id),
        "the palette lists db-both-1"
    );
    harness.key_press(egui::Key::Enter);
    harness.run();
    assert!(
        harness.query_by_label("Find a host or an action").is_none(),
        "picking a host closes the palette"
    );

    // The host is selected in the table: Enter connects to it.
    harness.key_press(egui::Key::Enter);
    harness.run();
    step_until(&mut harness, "a tunnel to db-both-1 shows", |h| {
        shown(h, "db-both-1:22")
    });
    step_until(&mut harness, "the terminal runs ssh to db-both-1", |_| {
        terminal_log().contains(&db.instance_id)
    });
}
