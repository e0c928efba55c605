//! The inventory refresh as the user's settings and history steer it, through the real engine
//! against the simulator: the regions to scan and the refresh interval read from the store at
//! each refresh (no restart), and which of several profiles into one account scans it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bastionless_core::engine::{Engine, EngineConfig, Snapshot};
use bastionless_core::inventory::Host;
use bastionless_core::profiles::AwsFiles;
use bastionless_core::store::{Action, AppSettings, Store};
use bastionless_sim::{BackgroundSimulator, Scenario};

const REFRESH: Duration = Duration::from_secs(60);
const PROD: &str = "111122223333";

fn files(sim: &BackgroundSimulator) -> AwsFiles {
    AwsFiles::at(sim.config_file(), sim.credentials_file())
}

fn config(sim: &BackgroundSimulator, store: &Store) -> EngineConfig {
    EngineConfig {
        store: Some(store.clone()),
        ..EngineConfig::new(files(sim))
    }
}

fn refreshed(engine: &Engine) -> Arc<Snapshot> {
    let snapshot = engine.wait_until(REFRESH, |s| !s.refreshing);
    assert!(!snapshot.refreshing, "no refresh within {REFRESH:?}");
    snapshot
}

fn live_instances(sim: &BackgroundSimulator) -> usize {
    sim.scenario()
        .instances
        .iter()
        .filter(|i| i.state.name() != "terminated")
        .count()
}

/// The profiles that listed the hosts of `account`.
fn listed_by(snapshot: &Snapshot, account: &str) -> BTreeSet<String> {
    snapshot
        .hosts
        .iter()
        .filter(|h| h.account_id == account)
        .map(|h| h.profile.clone())
        .collect()
}

fn same_account_as(snapshot: &Snapshot, profile: &str) -> Option<String> {
    snapshot
        .profiles
        .iter()
        .find(|p| p.name == profile)
        .and_then(|p| p.same_account_as.clone())
}

#[test]
fn the_regions_and_interval_in_the_settings_apply_to_the_next_refresh_without_a_restart() {
    let sim = BackgroundSimulator::start(Scenario::demo()).expect("the simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .set_settings(AppSettings {
            regions: vec!["eu-south-1".to_owned()],
            refresh_interval_minutes: 0,
            ..AppSettings::default()
        })
        .unwrap();
    // A "minute" of 200 ms, so that periodic refreshes come within the test.
    let minute = Duration::from_millis(200);
    let engine = Engine::start(EngineConfig {
        minute,
        ..config(&sim, &store)
    })
    .unwrap();

    // Only the region the settings name is scanned, in the one account that has it enabled.
    let snapshot = refreshed(&engine);
    let names: BTreeSet<&str> = snapshot.hosts.iter().map(Host::display_name).collect();
    assert_eq!(names, BTreeSet::from(["api-milan-1", "worker-milan-1"]));
    assert_eq!(sim.calls("DescribeInstances"), 1);

    // Nothing more happens by itself while the interval is 0.
    std::thread::sleep(minute * 5);
    assert_eq!(
        sim.calls("GetCallerIdentity"),
        5,
        "one refresh, five profiles"
    );

    // Every region, refreshed every minute: the engine refreshes by itself, with the new list.
    store
        .set_settings(AppSettings {
            regions: Vec::new(),
            refresh_interval_minutes: 1,
            ..AppSettings::default()
        })
        .unwrap();
    let live = live_instances(&sim);
    let snapshot = engine.wait_until(REFRESH, |s| !s.refreshing && s.hosts.len() == live);
    assert_eq!(snapshot.hosts.len(), live, "every region scanned");
    let started = Instant::now();
    let refreshes = |sim: &BackgroundSimulator| sim.calls("GetCallerIdentity") / 5;
    let before = refreshes(&sim);
    while refreshes(&sim) < before + 2 && started.elapsed() < REFRESH {
        std::thread::sleep(minute / 4);
    }
    assert!(
        refreshes(&sim) >= before + 2,
        "refreshes kept coming by themselves: {} then {}",
        before,
        refreshes(&sim)
    );

    // Back to 0: once the refresh under way (if any) ends, no other starts.
    store
        .set_settings(AppSettings {
            refresh_interval_minutes: 0,
            ..AppSettings::default()
        })
        .unwrap();
    std::thread::sleep(minute * 2);
    refreshed(&engine);
    let settled = sim.calls("GetCallerIdentity");
    std::thread::sleep(minute * 5);
    assert_eq!(sim.calls("GetCallerIdentity"), settled);
}

#[test]
fn the_profile_last_connected_through_scans_its_account() {
    let sim = BackgroundSimulator::start(Scenario::demo()).expect("the simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();

    // With no history, the first profile by name scans acme-prod.
    let engine = Engine::start(config(&sim, &store)).unwrap();
    let snapshot = refreshed(&engine);
    assert_eq!(
        listed_by(&snapshot, PROD),
        BTreeSet::from(["prod".to_owned()])
    );
    let host = snapshot
        .hosts
        .iter()
        .find(|h| h.account_id == PROD)
        .expect("acme-prod has hosts")
        .key();
    drop(engine);

    // The user connected through prod-eu (its host listed by prod-eu, say, on another day).
    store
        .record_recent(&host, Some("prod-eu"), None, Action::Ssh, None)
        .unwrap();
    let before = sim.calls("DescribeInstances");
    let engine = Engine::start(config(&sim, &store)).unwrap();
    let snapshot = refreshed(&engine);
    assert_eq!(
        listed_by(&snapshot, PROD),
        BTreeSet::from(["prod-eu".to_owned()])
    );
    assert_eq!(
        same_account_as(&snapshot, "prod").as_deref(),
        Some("prod-eu")
    );
    assert_eq!(
        same_account_as(&snapshot, "prod-readonly").as_deref(),
        Some("prod-eu")
    );
    // Still one scan per account and region: acme-prod 4, acme-staging 3.
    assert_eq!(sim.calls("DescribeInstances") - before, 7);
}

/// The demo with `profiles` refused `ec2:DescribeSecurityGroups`.
fn demo_denying_security_groups_to(profiles: &[&str]) -> Scenario {
    let mut scenario = Scenario::demo();
    for profile in scenario.profiles.iter_mut() {
        if profiles.contains(&profile.name.as_str()) {
            profile
                .denied_actions
                .push("ec2:DescribeSecurityGroups".to_owned());
        }
    }
    scenario
}

/// The snapshot after the first refresh of `scenario`, with a store of its own.
fn first_refresh(scenario: Scenario) -> Arc<Snapshot> {
    let sim = BackgroundSimulator::start(scenario).expect("the simulator starts");
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let engine = Engine::start(config(&sim, &store)).unwrap();
    refreshed(&engine)
}

/// The profiles whose scans the hosts of acme-prod come from.
fn prod_scanned_by(snapshot: &Snapshot) -> BTreeSet<&str> {
    snapshot
        .hosts
        .iter()
        .filter(|h| h.account_id == PROD)
        .map(|h| h.profile.as_str())
        .collect()
}

fn assert_no_profile_warnings(snapshot: &Snapshot) {
    for profile in &snapshot.profiles {
        assert!(
            profile.warnings.is_empty(),
            "{}: {:?}",
            profile.name,
            profile.warnings
        );
    }
}

#[test]
fn a_profile_refused_part_of_a_scan_gives_way_to_one_that_reads_it_all() {
    let snapshot = first_refresh(demo_denying_security_groups_to(&["prod"]));

    // prod ranks first, but may not read security groups; prod-eu and prod-readonly may (which
    // of them is asked first depends on which STS answered first), so their scans win wherever
    // there are groups to read, and nothing is reported missing.
    let scanned_by = prod_scanned_by(&snapshot);
    assert!(!scanned_by.is_empty());
    assert!(
        scanned_by.is_subset(&BTreeSet::from(["prod-eu", "prod-readonly"])),
        "{scanned_by:?}"
    );
    assert_no_profile_warnings(&snapshot);
    // Every region of acme-prod with hosts has its security groups.
    for host in snapshot.hosts.iter().filter(|h| h.account_id == PROD) {
        let facts = snapshot
            .regions
            .iter()
            .find(|(key, _)| key.account_id == PROD && key.region == host.region)
            .map(|(_, facts)| facts)
            .expect("the region's facts");
        for group in &host.security_group_ids {
            assert!(facts.security_group(group).is_some(), "{group} listed");
        }
    }
}

#[test]
fn a_scan_refused_part_of_a_region_waits_for_a_profile_sts_has_yet_to_name() {
    use bastionless_sim::scenario::FaultRule;

    // prod owns the account (first by name) and starts scanning at once; it and prod-readonly
    // may not read security groups. prod-eu may, but STS answers it (in eu-west-1) well after
    // prod's scans have been refused: they must wait for it rather than settle for less.
    let mut scenario = demo_denying_security_groups_to(&["prod", "prod-readonly"]);
    scenario.faults.push(FaultRule {
        regions: vec!["eu-west-1".to_owned()],
        ..FaultRule::action("GetCallerIdentity")
            .latency(Duration::from_millis(1500), Duration::ZERO)
    });
    let snapshot = first_refresh(scenario);

    assert_eq!(prod_scanned_by(&snapshot), BTreeSet::from(["prod-eu"]));
    assert_no_profile_warnings(&snapshot);
}

#[test]
fn a_second_refresh_does_not_ask_again_for_ami_names_or_subnet_ranges() {
    use bastionless_core::engine::Command;

    let sim = BackgroundSimulator::start(Scenario::demo()).expect("the simulator starts");
    let engine = Engine::start(EngineConfig::new(files(&sim))).unwrap();
    let first = refreshed(&engine);
    let images = sim.calls("DescribeImages");
    let subnets = sim.calls("DescribeSubnets");
    let instances = sim.calls("DescribeInstances");
    assert!(images > 0 && subnets > 0, "the first refresh asks for both");

    engine.send(Command::Refresh);
    let started = Instant::now();
    while sim.calls("GetCallerIdentity") < 10 && started.elapsed() < REFRESH {
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = refreshed(&engine);
    assert_eq!(sim.calls("DescribeInstances"), 2 * instances, "rescanned");
    // AMI names and subnet ranges never change: what the first refresh learned is reused.
    assert_eq!(sim.calls("DescribeImages"), images);
    assert_eq!(sim.calls("DescribeSubnets"), subnets);
    let names = |s: &Snapshot| -> Vec<(String, Option<String>)> {
        s.hosts
            .iter()
            .map(|h| {
                let image = h.image.as_ref().and_then(|i| i.name.clone());
                (h.instance_id.clone(), image)
            })
            .collect()
    };
    assert_eq!(names(&second), names(&first));
    assert!(names(&second).iter().any(|(_, name)| name.is_some()));
    assert_eq!(
        second.regions, first.regions,
        "endpoints keep their subnet ranges"
    );
}
