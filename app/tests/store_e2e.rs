//! Favorites and recents through the built binary: what one `bastionless` process stores, the
//! next one reads, aliases name hosts in other commands, and damage is reported, not hidden.
//!
//! Each test has a store directory of its own (`BASTIONLESS_CONFIG_DIR`) and, where hosts are
//! looked up, the simulator's AWS files.

use bastionless_sim::{BackgroundSimulator, Scenario};
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// One simulator for the whole file: the tests only read its inventory.
fn simulator() -> &'static BackgroundSimulator {
    static SIMULATOR: OnceLock<BackgroundSimulator> = OnceLock::new();
    SIMULATOR
        .get_or_init(|| BackgroundSimulator::start(Scenario::demo()).expect("simulator starts"))
}

/// The binary on `store`, with the simulator's AWS files and none of the caller's settings.
fn bastionless(store: &Path, args: &[&str]) -> Output {
    let simulator = simulator();
    let mut command = Command::new(env!("CARGO_BIN_EXE_bastionless"));
    command
        .args(args)
        .env("BASTIONLESS_CONFIG_DIR", store)
        .env("XDG_CACHE_HOME", store.join("cache"))
        .env("XDG_DATA_HOME", store.join("data"))
        .env("AWS_CONFIG_FILE", simulator.config_file())
        .env("AWS_SHARED_CREDENTIALS_FILE", simulator.credentials_file());
    for var in [
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    command.output().expect("the binary runs")
}

fn ok(output: &Output) -> &Output {
    assert!(
        output.status.success(),
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn json(output: &Output) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    serde_json::from_str::<Value>(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{stdout}"))
        .as_array()
        .expect("a JSON array")
        .clone()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_favorite_added_in_one_process_is_listed_by_the_next_and_its_alias_names_the_host() {
    let store = tempfile::tempdir().unwrap();
    let added = bastionless(
        store.path(),
        &[
            "favorites",
            "add",
            "web-eic-1",
            "--alias",
            "web",
            "--action",
            "forward:8080",
            "--local-port",
            "18080",
        ],
    );
    ok(&added);
    assert!(stderr(&added).contains("Added web"), "{}", stderr(&added));

    let listed = json(ok(&bastionless(
        store.path(),
        &["favorites", "list", "--json"],
    )));
    assert_eq!(listed.len(), 1, "{listed:?}");
    let favorite = &listed[0];
    assert_eq!(favorite["alias"], "web");
    assert_eq!(favorite["name"], "web-eic-1");
    assert_eq!(favorite["action"], "forward:8080");
    assert_eq!(favorite["local_port"], 18080);
    assert_eq!(favorite["account_id"], "111122223333");
    let instance_id = favorite["instance_id"].as_str().unwrap().to_owned();

    // The table groups by account.
    let table = ok(&bastionless(store.path(), &["favorites"]))
        .stdout
        .clone();
    let table = String::from_utf8(table).unwrap();
    assert!(
        table.starts_with("account 111122223333\n  web  "),
        "{table}"
    );

    // The alias names the host in another command.
    let doctor = bastionless(store.path(), &["doctor", "web"]);
    let doctor_out = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        doctor_out.contains(&instance_id),
        "doctor web did not explain {instance_id}:\n{doctor_out}\n{}",
        stderr(&doctor)
    );

    // Removing by alias leaves an empty list, in a third process.
    ok(&bastionless(store.path(), &["favorites", "remove", "web"]));
    assert_eq!(
        json(ok(&bastionless(store.path(), &["favorites", "--json"]))),
        Vec::<Value>::new()
    );
}

#[test]
fn the_demo_keeps_favorites_apart_from_the_users() {
    let store = tempfile::tempdir().unwrap();
    ok(&bastionless(
        store.path(),
        &["--demo", "favorites", "add", "web-eic-1"],
    ));
    assert!(store.path().join("demo").join("favorites.toml").exists());
    assert!(!store.path().join("favorites.toml").exists());
    assert_eq!(
        json(ok(&bastionless(store.path(), &["favorites", "--json"]))),
        Vec::<Value>::new()
    );
    let demo = json(ok(&bastionless(
        store.path(),
        &["--demo", "favorites", "--json"],
    )));
    assert_eq!(demo.len(), 1);
    assert_eq!(demo[0]["action"], "ssh");
}

#[test]
fn a_damaged_favorites_file_is_reported_and_kept_while_recents_still_load() {
    let store = tempfile::tempdir().unwrap();
    std::fs::write(store.path().join("favorites.toml"), "[[favorite]\nbroken").unwrap();
    std::fs::write(
        store.path().join("recents.toml"),
        "schema = 1\n[[recent]]\naccount_id = \"111122223333\"\nregion = \"us-east-1\"\n\
         instance_id = \"i-0abc\"\naction = \"ssh\"\nat = \"2026-11-22T10:00:00Z\"\n",
    )
    .unwrap();

    let listed = bastionless(store.path(), &["favorites", "--json"]);
    ok(&listed);
    assert_eq!(json(&listed), Vec::<Value>::new());
    let why = stderr(&listed);
    assert!(
        why.contains("favorites file")
            && why.contains("could not be read")
            && why.contains("kept as"),
        "{why}"
    );
    let kept: Vec<_> = std::fs::read_dir(store.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("favorites.toml.unreadable-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(
        std::fs::read_to_string(store.path().join(&kept[0])).unwrap(),
        "[[favorite]\nbroken"
    );

    let recents = json(ok(&bastionless(store.path(), &["recent", "--json"])));
    assert_eq!(recents.len(), 1);
    assert_eq!(recents[0]["instance_id"], "i-0abc");
    assert_eq!(recents[0]["action"], "ssh");
}

#[test]
fn a_newer_favorites_file_is_refused_and_left_untouched() {
    let store = tempfile::tempdir().unwrap();
    let path = store.path().join("favorites.toml");
    std::fs::write(&path, "schema = 99\n[[favorite]]\nfuture = true\n").unwrap();
    let added = bastionless(store.path(), &["favorites", "add", "web-eic-1"]);
    assert!(!added.status.success());
    assert!(
        stderr(&added).contains("newer Bastionless"),
        "{}",
        stderr(&added)
    );
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "schema = 99\n[[favorite]]\nfuture = true\n"
    );
}

#[test]
fn favorites_exported_by_one_store_import_into_another() {
    let dir = tempfile::tempdir().unwrap();
    let (mine, theirs) = (dir.path().join("mine"), dir.path().join("theirs"));
    ok(&bastionless(
        &mine,
        &["favorites", "add", "web-eic-1", "--alias", "web"],
    ));
    let file = dir.path().join("team.toml");
    ok(&bastionless(
        &mine,
        &["favorites", "export", file.to_str().unwrap()],
    ));
    let imported = bastionless(&theirs, &["favorites", "import", file.to_str().unwrap()]);
    ok(&imported);
    assert!(
        stderr(&imported).contains("1 favorites added"),
        "{}",
        stderr(&imported)
    );
    let listed = json(ok(&bastionless(&theirs, &["favorites", "--json"])));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["alias"], "web");
}

#[test]
fn bad_input_gets_an_actionable_error() {
    let store = tempfile::tempdir().unwrap();
    let bad_action = bastionless(
        store.path(),
        &["favorites", "add", "web-eic-1", "--action", "telnet"],
    );
    assert!(!bad_action.status.success());
    assert!(
        stderr(&bad_action).contains("ssh, rdp, shell or forward:PORT"),
        "{}",
        stderr(&bad_action)
    );
    let unknown = bastionless(store.path(), &["favorites", "remove", "nothing-here"]);
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("no favorite is called `nothing-here`"),
        "{}",
        stderr(&unknown)
    );
    assert_eq!(
        json(ok(&bastionless(store.path(), &["recent", "--json"]))),
        Vec::<Value>::new()
    );
}

#[test]
fn a_connection_made_through_the_engine_is_listed_by_recent_in_a_new_process() {
    use bastionless_core::engine::{Command as EngineCommand, ConnectHow, Engine, EngineConfig};
    use bastionless_core::profiles::AwsFiles;
    use bastionless_core::store::{Action, Store};
    use std::time::{Duration, Instant};

    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let simulator = simulator();
    let engine = Engine::start(EngineConfig {
        store: Some(store.clone()),
        ..EngineConfig::new(AwsFiles::at(
            simulator.config_file(),
            simulator.credentials_file(),
        ))
    })
    .unwrap();
    let snapshot = engine.wait_until(Duration::from_secs(60), |s| !s.refreshing);
    let host = snapshot
        .find_hosts("web-eic-1")
        .first()
        .map(|h| h.key())
        .expect("web-eic-1 is listed");
    engine.send(EngineCommand::Connect {
        host: host.clone(),
        how: ConnectHow::Forward {
            remote_port: 22,
            local_port: None,
        },
        route: bastionless_core::engine::RouteChoice::Auto,
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.recents().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let recents = store.recents();
    assert_eq!(recents.len(), 1, "{recents:?}");
    assert_eq!(recents[0].host_key(), host);
    assert_eq!(recents[0].action, Action::Forward { remote_port: 22 });
    assert_eq!(recents[0].name.as_deref(), Some("web-eic-1"));
    drop(engine);

    let listed = json(ok(&bastionless(dir.path(), &["recent", "--json"])));
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["instance_id"], host.instance_id.as_str());
    assert_eq!(listed[0]["action"], "forward:22");
    let table = bastionless(dir.path(), &["recent"]);
    let table = String::from_utf8_lossy(&ok(&table).stdout).into_owned();
    assert!(
        table.contains("forward:22") && table.contains("web-eic-1"),
        "{table}"
    );
}
