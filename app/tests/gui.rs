//! The window, run headless against the simulator and driven through its accessibility tree the
//! way a screen reader would: cells are found by their text, the search field by its label.

use bastionless::ui::BastionlessApp;
use bastionless_core::engine::{Engine, EngineConfig, Snapshot};
use bastionless_core::profiles::AwsFiles;
use bastionless_sim::{BackgroundSimulator, Scenario};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
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

fn shown(harness: &Harness<'_, BastionlessApp>, text: &str) -> bool {
    harness.query_all_by_label(text).next().is_some()
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
        "Profile",
        "Region",
        "State",
        "Private IP",
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
