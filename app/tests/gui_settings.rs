//! What the window keeps in the store, against the simulator's demo inventory: the Settings
//! window (checked inline, saved atomically, the theme and the EIC cap applied at once), a
//! host's settings dialog (saved per account and instance, shown again as saved), and the
//! palette's recent connections (made again with one pick) and ★ (the same favorite as the
//! table's star).

#[path = "support/gui.rs"]
mod gui_support;

use bastionless::ui::BastionlessApp;
use bastionless_core::engine::{Engine, EngineConfig, Snapshot};
use bastionless_core::inventory::{Host, HostKey};
use bastionless_core::profiles::AwsFiles;
use bastionless_core::store::{Action, HostSettings, RoutePreference, Store, Theme};
use bastionless_core::tunnel::LocalEnd;
use bastionless_sim::{BackgroundSimulator, Scenario};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable};
use gui_support::{TIMEOUT, shown, shown_containing, step_until};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The demo inventory in a window that keeps `store`, tall enough for every row.
fn window_with_store(
    simulator: &BackgroundSimulator,
    store: &Store,
) -> (Harness<'static, BastionlessApp>, Arc<Snapshot>) {
    let files = AwsFiles::at(simulator.config_file(), simulator.credentials_file());
    let mut config = EngineConfig::new(files);
    config.store = Some(store.clone());
    let engine = Engine::start(config).expect("engine starts");
    let snapshot = engine.wait_until(TIMEOUT, |s| !s.refreshing);
    assert!(!snapshot.refreshing, "the inventory did not finish");
    let store = store.clone();
    let mut harness = Harness::builder()
        .with_size([1400.0, 420.0 + 30.0 * snapshot.hosts.len() as f32])
        .build_eframe(|cc| BastionlessApp::new(engine, &cc.egui_ctx).with_store(Some(store)));
    harness.run();
    (harness, snapshot)
}

/// Replaces the text of the field labelled `label`.
fn type_into(harness: &mut Harness<'_, BastionlessApp>, label: &str, text: &str) {
    harness
        .get_by_role_and_label(Role::TextInput, label)
        .focus();
    harness.run();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    harness.run();
    harness
        .get_by_role_and_label(Role::TextInput, label)
        .type_text(text);
    harness.run();
}

fn field_value(harness: &Harness<'_, BastionlessApp>, label: &str) -> String {
    harness
        .get_by_role_and_label(Role::TextInput, label)
        .accesskit_node()
        .value()
        .unwrap_or_default()
}

fn demo_host<'a>(snapshot: &'a Snapshot, name: &str) -> &'a Host {
    snapshot
        .hosts
        .iter()
        .find(|h| h.display_name() == name)
        .unwrap_or_else(|| panic!("the demo has {name}"))
}

#[test]
fn settings_are_checked_inline_then_saved_to_the_store_and_applied_at_once() {
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(dir.path()).expect("store opens");
    let (mut harness, _) = window_with_store(&simulator, &store);
    let file = dir.path().join("settings.toml");

    harness
        .get_by_role_and_label(Role::Button, "Settings")
        .click();
    harness.run();
    assert_eq!(
        field_value(&harness, "EIC connections per endpoint"),
        "10",
        "the window shows what the store holds"
    );
    type_into(&mut harness, "Terminal command", "xterm -e");
    type_into(&mut harness, "EIC connections per endpoint", "25");
    harness.get_by_role_and_label(Role::Button, "Save").click();
    harness.run();
    assert!(
        shown_containing(&harness, "Put {command} where the command to run goes"),
        "the template without {{command}} is explained next to it"
    );
    assert!(
        shown_containing(&harness, "from 1 to 20, not “25”"),
        "the out-of-range cap is explained next to it"
    );
    assert!(!file.exists(), "nothing invalid reaches the store");

    type_into(&mut harness, "Terminal command", "xterm -e {command}");
    type_into(&mut harness, "EIC connections per endpoint", "3");
    type_into(&mut harness, "Regions to scan", "us-east-1, eu-west-1");
    harness.get_by_role_and_label(Role::Button, "Dark").click();
    harness.run();
    harness.get_by_role_and_label(Role::Button, "Save").click();
    step_until(&mut harness, "the save", |h| {
        !h.query_all_by_role_and_label(Role::Button, "Save")
            .any(|_| true)
    });
    harness.run();

    let saved = std::fs::read_to_string(&file).expect("settings.toml written");
    assert!(saved.contains("xterm -e {command}"), "{saved}");
    assert!(saved.contains("eic_connection_cap = 3"), "{saved}");
    let reopened = Store::open(dir.path()).expect("the store reopens");
    let settings = reopened.settings();
    assert_eq!(settings.theme, Theme::Dark);
    assert_eq!(settings.regions, ["us-east-1", "eu-west-1"]);
    assert_eq!(
        harness.ctx.options(|o| o.theme_preference),
        egui::ThemePreference::Dark,
        "the theme applies without a restart"
    );
    let deadline = Instant::now() + TIMEOUT;
    while harness
        .state()
        .engine()
        .tunnel_settings()
        .max_connections_per_endpoint
        .get()
        != 3
    {
        assert!(
            Instant::now() < deadline,
            "the engine never got the new EIC cap"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn host_settings_are_saved_per_account_and_instance_and_shown_again() {
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(dir.path()).expect("store opens");
    let (mut harness, snapshot) = window_with_store(&simulator, &store);
    let web = demo_host(&snapshot, "web-eic-1");

    harness.get_by_label("web-eic-1").click_secondary();
    harness.run();
    harness.get_by_label("Host settings…").click();
    harness.run();
    assert!(
        shown(&harness, "Settings for web-eic-1"),
        "the dialog opens"
    );
    type_into(&mut harness, "User", "ubuntu");
    type_into(&mut harness, "SSH port", "0");
    harness.get_by_role_and_label(Role::Button, "Save").click();
    harness.run();
    assert!(
        shown_containing(&harness, "must be a number from 1 to 65535"),
        "port 0 is refused with the reason"
    );
    type_into(&mut harness, "SSH port", "2222");
    type_into(&mut harness, "Identity file", "/home/me/.ssh/web.pem");
    harness
        .get_by_role_and_label(Role::Button, "Session Manager")
        .click();
    harness.run();
    harness.get_by_role_and_label(Role::Button, "Save").click();
    step_until(&mut harness, "the save", |h| {
        !shown(h, "Settings for web-eic-1")
    });
    harness.run();

    let expected = HostSettings {
        user: Some("ubuntu".into()),
        identity_file: Some("/home/me/.ssh/web.pem".into()),
        port: Some(2222),
        route: Some(RoutePreference::Ssm),
    };
    let reopened = Store::open(dir.path()).expect("the store reopens");
    assert_eq!(reopened.host_settings(&(&web.key()).into()), expected);
    let other_account = HostKey {
        account_id: "444455556666".into(),
        ..web.key()
    };
    assert_eq!(
        reopened.host_settings(&(&other_account).into()),
        HostSettings::default(),
        "the same instance id in another account has its own settings"
    );

    harness.get_by_label("web-eic-1").click_secondary();
    harness.run();
    harness.get_by_label("Host settings…").click();
    harness.run();
    assert_eq!(field_value(&harness, "User"), "ubuntu");
    assert_eq!(field_value(&harness, "SSH port"), "2222");
    assert_eq!(
        field_value(&harness, "Identity file"),
        "/home/me/.ssh/web.pem"
    );
    assert!(
        harness
            .get_by_role_and_label(Role::Button, "Session Manager")
            .accesskit_node()
            .toggled()
            == Some(egui::accesskit::Toggled::True),
        "the saved route is the one picked"
    );
}

#[test]
fn the_palette_repeats_a_recent_connection_and_stars_a_host() {
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(dir.path()).expect("store opens");
    let (mut harness, snapshot) = window_with_store(&simulator, &store);
    let web = demo_host(&snapshot, "web-eic-1");
    let app = demo_host(&snapshot, "app-ssm-1");
    store
        .record_recent(
            &app.key(),
            Some(&app.profile),
            app.name.as_deref(),
            Action::Forward { remote_port: 22 },
            None,
        )
        .expect("recent recorded");
    store
        .record_recent(
            &web.key(),
            Some(&web.profile),
            web.name.as_deref(),
            Action::Ssh,
            None,
        )
        .expect("recent recorded");

    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::K);
    harness.run();
    let newest = harness
        .get_by_label_contains("↺ web-eic-1 (ssh)")
        .rect()
        .min
        .y;
    let older = harness
        .get_by_label_contains("↺ app-ssm-1 (forward:22)")
        .rect()
        .min
        .y;
    assert!(newest < older, "the newest recent connection comes first");

    harness
        .get_by_label_contains("↺ app-ssm-1 (forward:22)")
        .click();
    // A step, not `run`: the tunnel it opens changes the snapshot while the window settles.
    harness.step();
    step_until(&mut harness, "the forward from the recent entry", |h| {
        h.state().engine().snapshot().tunnels.iter().any(|t| {
            t.target.host == app.key()
                && t.target.remote_port == 22
                && matches!(t.local, LocalEnd::Listener(_))
        })
    });
    step_until(&mut harness, "the tunnels panel lists it", |h| {
        shown(h, "app-ssm-1:22")
    });

    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::K);
    harness.run();
    let palette_field = harness.get_by_role_and_label(Role::TextInput, "Find a host or an action");
    palette_field.type_text("web-eic-1");
    harness.run();
    let entry = harness
        .query_all_by_label_contains("web-eic-1   ")
        .find(|n| {
            !n.accesskit_node()
                .label()
                .unwrap_or_default()
                .starts_with('↺')
        })
        .expect("the host is offered")
        .rect();
    // The entry's own star: on its line, just left of it (the table's stars are far left).
    let beside_entry = move |star: egui::Rect| {
        (star.center().y - entry.center().y).abs() < 4.0
            && star.max.x <= entry.min.x
            && entry.min.x - star.max.x < 40.0
    };
    harness
        .query_all_by_label("☆")
        .find(|star| beside_entry(star.rect()))
        .expect("the host's entry has a star")
        .click();
    harness.run();
    let deadline = Instant::now() + TIMEOUT;
    while !store.is_favorite(&(&web.key()).into()) {
        assert!(Instant::now() < deadline, "the star never made a favorite");
        std::thread::sleep(Duration::from_millis(20));
    }
    harness.run();
    assert!(
        harness
            .query_all_by_label("★")
            .any(|star| beside_entry(star.rect())),
        "the entry's star shows it is a favorite now"
    );
}
