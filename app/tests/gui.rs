//! The window, run headless against the simulator and driven through its accessibility tree the
//! way a screen reader would: cells are found by their text, the search field by its label.

#[path = "support/gui.rs"]
mod gui_support;

use bastionless::ui::BastionlessApp;
use bastionless_core::engine::{Engine, EngineConfig, Snapshot};
use bastionless_core::profiles::AwsFiles;
use bastionless_sim::{BackgroundSimulator, Scenario};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use gui_support::shown;
use std::sync::Arc;
use std::time::{Duration, Instant};

const INVENTORY_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts an engine on `files` and waits for its first inventory.
fn engine_with_inventory(files: AwsFiles) -> (Engine, Arc<Snapshot>) {
    let engine = Engine::start(EngineConfig::new(files)).expect("engine starts");
    let snapshot = engine.wait_until(INVENTORY_TIMEOUT, |s| !s.refreshing);
    assert!(
        !snapshot.refreshing,
        "the inventory did not finish within {INVENTORY_TIMEOUT:?}"
    );
    (engine, snapshot)
}

/// The app in a window tall enough to lay out every row (the table only lays out visible rows).
fn harness_for(engine: Engine, rows: usize) -> Harness<'static, BastionlessApp> {
    let height = 200.0 + 30.0 * rows as f32;
    Harness::builder()
        .with_size([1280.0, height])
        .build_eframe(|cc| BastionlessApp::new(engine, &cc.egui_ctx))
}

#[test]
fn the_window_lists_the_demo_hosts_and_the_search_narrows_them() {
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let (engine, snapshot) = engine_with_inventory(AwsFiles::at(
        simulator.config_file(),
        simulator.credentials_file(),
    ));
    let failed: Vec<_> = snapshot.failed_profiles().collect();
    assert!(failed.is_empty(), "every demo profile works: {failed:?}");
    let total = snapshot.hosts.len();

    let mut harness = harness_for(engine, total);
    harness.run();
    for name in [
        "web-eic-1",
        "app-ssm-1",
        "db-both-1",
        "win-ssm-1",
        "win-eic-1",
        "legacy-none-1",
        "stopped-1",
    ] {
        assert!(shown(&harness, name), "{name} is in the table");
    }
    for header in [
        "Name",
        "Instance ID",
        "Account",
        "Region",
        "State",
        "OS",
        "Private IP",
        "Route",
    ] {
        assert!(shown(&harness, header), "the {header} column has a header");
    }
    assert!(
        shown(&harness, "10.10.1.21"),
        "web-eic-1's private IP is shown"
    );
    assert!(
        shown(&harness, &format!("{total} hosts")),
        "the status line counts every host"
    );
    assert!(
        !shown(&harness, "Refreshing…"),
        "nothing is refreshing any more"
    );

    let search = harness.get_by_label("Search");
    search.focus();
    search.type_text("eic");
    harness.run();

    assert!(
        !shown(&harness, "app-ssm-1"),
        "app-ssm-1 does not match `eic`"
    );
    assert!(
        !shown(&harness, "legacy-none-1"),
        "legacy-none-1 does not match `eic`"
    );
    assert!(shown(&harness, "web-eic-1"), "web-eic-1 matches `eic`");
    assert!(shown(&harness, "win-eic-1"), "win-eic-1 matches `eic`");
    let matching = snapshot
        .hosts
        .iter()
        .filter(|h| h.display_name().to_lowercase().contains("eic"))
        .count();
    assert!(
        shown(&harness, &format!("{matching} of {total} hosts")),
        "the status line says how many hosts the search keeps ({matching} of {total})"
    );
}

#[test]
fn a_broken_profile_is_shown_with_its_reason_until_a_refresh_finds_it_fixed() {
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("config");
    let demo_config = std::fs::read_to_string(simulator.config_file()).expect("config readable");
    std::fs::write(
        &config,
        format!("{demo_config}\n[profile regionless]\noutput = json\n"),
    )
    .expect("config written");
    let (engine, snapshot) =
        engine_with_inventory(AwsFiles::at(&config, simulator.credentials_file()));

    let mut harness = harness_for(engine, snapshot.hosts.len());
    harness.run();
    let error = "profile regionless: No region";
    assert!(
        harness.query_all_by_label_contains(error).next().is_some(),
        "the status line shows the broken profile and why"
    );
    assert!(
        shown(&harness, "web-eic-1"),
        "the other profiles' hosts are still listed"
    );

    std::fs::write(
        &config,
        format!("{demo_config}\n[profile regionless]\nregion = us-east-1\n"),
    )
    .expect("config written");
    harness.get_by_label("Refresh").click();
    let deadline = Instant::now() + INVENTORY_TIMEOUT;
    // The refresh runs on the engine's threads; step the window until it shows the result.
    while harness.query_all_by_label_contains(error).next().is_some() {
        assert!(
            Instant::now() < deadline,
            "the refresh never re-read the fixed config"
        );
        harness.step();
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The demo's inventory in a window tall enough for every row, searched for `query`.
fn demo_window(
    simulator: &BackgroundSimulator,
) -> (Harness<'static, BastionlessApp>, Arc<Snapshot>) {
    let (engine, snapshot) = engine_with_inventory(AwsFiles::at(
        simulator.config_file(),
        simulator.credentials_file(),
    ));
    let mut harness = harness_for(engine, snapshot.hosts.len());
    harness.run();
    (harness, snapshot)
}

fn search(harness: &mut Harness<'_, BastionlessApp>, text: &str) {
    let field = harness.get_by_label("Search");
    field.focus();
    field.type_text(text);
    harness.run();
}

/// The names among `names` that the table shows, top to bottom.
fn order_shown(harness: &Harness<'_, BastionlessApp>, names: &[&str]) -> Vec<String> {
    let mut shown: Vec<(f32, String)> = names
        .iter()
        .filter_map(|name| {
            // A name two hosts share is placed by its first row.
            harness
                .query_all_by_label(name)
                .map(|node| node.rect().min.y)
                .min_by(f32::total_cmp)
                .map(|y| (y, (*name).to_owned()))
        })
        .collect();
    shown.sort_by(|a, b| a.0.total_cmp(&b.0));
    shown.into_iter().map(|(_, name)| name).collect()
}

#[test]
fn field_terms_in_the_search_keep_only_the_hosts_they_describe() {
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let (mut harness, snapshot) = demo_window(&simulator);
    search(&mut harness, "os:windows");
    for host in snapshot.hosts.iter() {
        let windows = host.platform.as_str() == "windows";
        assert_eq!(
            shown(&harness, host.display_name()),
            windows,
            "{} ({}) with os:windows",
            host.display_name(),
            host.platform.as_str()
        );
    }

    let field = harness.get_by_label("Search");
    field.focus();
    harness.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    field.type_text("route:ssm state:running");
    harness.run();
    assert!(
        shown(&harness, "app-ssm-1"),
        "app-ssm-1's best route is SSM"
    );
    assert!(
        !shown(&harness, "web-eic-1"),
        "web-eic-1's best route is EIC"
    );
    assert!(!shown(&harness, "stopped-1"), "stopped-1 is not running");
}

#[test]
fn clicking_a_header_sorts_by_it_and_clicking_again_reverses() {
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let (mut harness, snapshot) = demo_window(&simulator);
    let mut names: Vec<&str> = snapshot.hosts.iter().map(|h| h.display_name()).collect();
    names.sort_by_key(|n| n.to_lowercase());
    names.dedup();

    harness.get_by_role_and_label(Role::Button, "Name").click();
    harness.run();
    assert_eq!(order_shown(&harness, &names), names, "sorted by name");

    harness
        .get_by_role_and_label(Role::Button, "Name ⏶")
        .click();
    harness.run();
    let mut reversed = names.clone();
    reversed.reverse();
    assert_eq!(
        order_shown(&harness, &names),
        reversed,
        "sorted by name, descending"
    );
}

#[test]
fn the_context_menu_copies_the_instance_id_and_explains_the_route() {
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let (mut harness, snapshot) = demo_window(&simulator);
    let web = snapshot
        .hosts
        .iter()
        .find(|h| h.display_name() == "web-eic-1")
        .expect("the demo has web-eic-1");

    harness.get_by_label("web-eic-1").click_secondary();
    harness.run();
    harness.get_by_label("Copy instance ID").click();
    harness.step();
    let copied = harness
        .output()
        .platform_output
        .commands
        .iter()
        .any(|c| *c == egui::OutputCommand::CopyText(web.instance_id.clone()));
    assert!(
        copied,
        "the instance id went to the clipboard: {:?}",
        harness.output().platform_output.commands
    );
    harness.run();

    harness.get_by_label("web-eic-1").click_secondary();
    harness.run();
    harness.get_by_label("Why this route?").click();
    harness.run();
    assert!(
        shown(&harness, "Routes to web-eic-1"),
        "the route window opens"
    );
    assert!(
        harness
            .query_all_by_label_contains("EIC: ready")
            .next()
            .is_some(),
        "it gives the EIC verdict"
    );
}

#[test]
fn grouping_gathers_hosts_under_account_region_and_vpc() {
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let (mut harness, snapshot) = demo_window(&simulator);
    harness.get_by_label("Group").click();
    harness.run();
    let web = snapshot
        .hosts
        .iter()
        .find(|h| h.display_name() == "web-eic-1")
        .expect("the demo has web-eic-1");
    let title = format!(
        "⏷ {} › {} › {}",
        web.account_id,
        web.region,
        web.vpc_id.as_deref().expect("web-eic-1 is in a VPC")
    );
    let heading = harness.get_by_label(&title);
    let heading_y = heading.rect().min.y;
    assert!(harness.get_by_label("web-eic-1").rect().min.y > heading_y);
    heading.click();
    harness.run();
    assert!(
        !shown(&harness, "web-eic-1"),
        "a collapsed group hides its hosts"
    );
}

#[test]
fn an_idle_window_does_not_repaint() {
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let (mut harness, _) = demo_window(&simulator);
    harness.remove_cursor();
    harness.run();
    // What an event loop would do for three seconds: draw a frame whenever egui asks for one
    // (the engine's change hook, an animation, a timer).
    let ctx = harness.ctx.clone();
    let end = Instant::now() + Duration::from_secs(3);
    let mut frames = 0;
    while Instant::now() < end {
        if ctx.has_requested_repaint() {
            harness.step();
            frames += 1;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(frames, 0, "frames drawn in 3 s of idleness");
}

#[test]
fn the_star_makes_a_favorite_in_the_store_and_the_favorites_view_lists_only_favorites() {
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let (engine, snapshot) = engine_with_inventory(AwsFiles::at(
        simulator.config_file(),
        simulator.credentials_file(),
    ));
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = bastionless_core::store::Store::open(dir.path()).expect("store opens");
    let mut harness = Harness::builder()
        .with_size([1280.0, 200.0 + 30.0 * snapshot.hosts.len() as f32])
        .build_eframe({
            let store = store.clone();
            |cc| BastionlessApp::new(engine, &cc.egui_ctx).with_store(Some(store))
        });
    harness.run();
    let web = snapshot
        .hosts
        .iter()
        .find(|h| h.display_name() == "web-eic-1")
        .expect("the demo has web-eic-1");

    let row_y = harness.get_by_label("web-eic-1").rect().center().y;
    harness
        .query_all_by_label("☆")
        .find(|star| (star.rect().center().y - row_y).abs() < 4.0)
        .expect("web-eic-1's row has a star")
        .click();
    harness.run();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !store.is_favorite(&(&web.key()).into()) {
        assert!(
            Instant::now() < deadline,
            "the favorite never reached the store"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let saved = std::fs::read_to_string(dir.path().join("favorites.toml")).expect("saved");
    assert!(saved.contains(&web.instance_id), "{saved}");

    harness.get_by_label("★ Favorites").click();
    harness.run();
    assert!(shown(&harness, "web-eic-1"), "the favorite is listed");
    assert!(!shown(&harness, "app-ssm-1"), "other hosts are not");
    let count = format!("1 of {} hosts", snapshot.hosts.len());
    assert!(shown(&harness, &count), "the status line says {count}");
}
