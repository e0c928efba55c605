//! The store end to end, through its files: restarts, damaged and newer files, crashes and
//! concurrent processes.
//!
//! The cross-process tests run this test binary again as the child (`current_exe` with one
//! `--ignored` test named and the directory in an environment variable), so the child is the
//! real store code in a real separate process.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::*;

const CHILD_DIR_ENV: &str = "BASTIONLESS_STORE_TEST_DIR";
const CHILD_TAG_ENV: &str = "BASTIONLESS_STORE_TEST_TAG";

fn favorite(account: &str, id: &str) -> Favorite {
    Favorite {
        account_id: account.into(),
        region: "eu-west-1".into(),
        instance_id: id.into(),
        alias: None,
        name: Some(format!("name-of-{id}")),
        action: Action::Ssh,
        local_port: None,
    }
}

fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn favorites_settings_and_recents_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let host = HostKey {
        account_id: "111122223333".into(),
        region: "eu-west-1".into(),
        instance_id: "i-0aaa".into(),
    };
    {
        let store = Store::open(dir.path()).unwrap();
        let mut db = favorite("111122223333", "i-0aaa");
        db.alias = Some("db".into());
        db.action = Action::Forward { remote_port: 5432 };
        db.local_port = Some(15432);
        assert!(!store.add_favorite(db).unwrap());
        store
            .set_host_settings(
                &AccountInstance::from(&host),
                HostSettings {
                    user: Some("ubuntu".into()),
                    identity_file: Some("/home/me/.ssh/team".into()),
                    port: Some(2222),
                    route: Some(RoutePreference::Ssm),
                },
            )
            .unwrap();
        let settings = AppSettings {
            theme: Theme::Dark,
            regions: vec!["eu-west-1".into(), "us-east-1".into()],
            close_to_tray: CloseToTray::Always,
            terminal_template: Some("foot -- {command}".into()),
            default_users: [("corp-".to_owned(), "corpadmin".to_owned())].into(),
            ..AppSettings::default()
        };
        store.set_settings(settings).unwrap();
        store
            .record_recent(&host, Some("prod"), Some("db-1"), Action::Ssh, None)
            .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.problems(), []);
    let favorites = store.favorites();
    assert_eq!(favorites.len(), 1);
    assert_eq!(favorites[0].alias.as_deref(), Some("db"));
    assert_eq!(favorites[0].action, Action::Forward { remote_port: 5432 });
    assert_eq!(favorites[0].local_port, Some(15432));
    assert_eq!(favorites[0].host_key(), host);
    assert_eq!(store.favorite_by_alias("DB").unwrap().instance_id, "i-0aaa");
    let host_settings = store.host_settings(&AccountInstance::from(&host));
    assert_eq!(host_settings.port, Some(2222));
    assert_eq!(host_settings.route, Some(RoutePreference::Ssm));
    let settings = store.settings();
    assert_eq!(settings.theme, Theme::Dark);
    assert_eq!(settings.close_to_tray, CloseToTray::Always);
    assert_eq!(settings.default_users["corp-"], "corpadmin");
    let recents = store.recents();
    assert_eq!(recents.len(), 1);
    assert_eq!(recents[0].label(), "db-1");
    assert_eq!(recents[0].profile.as_deref(), Some("prod"));
    assert_eq!(
        files_in(dir.path()),
        [
            ".lock",
            "favorites.toml",
            "hosts.toml",
            "recents.toml",
            "settings.toml"
        ]
    );
}

#[test]
fn the_same_instance_id_in_two_accounts_is_two_favorites_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    store
        .add_favorite(favorite("111111111111", "i-0abc"))
        .unwrap();
    store
        .add_favorite(favorite("222222222222", "i-0abc"))
        .unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.favorites().len(), 2);
    assert_eq!(store.find_favorites("i-0abc").len(), 2);
    let removed = store
        .remove_favorite(&AccountInstance {
            account_id: "222222222222".into(),
            instance_id: "i-0abc".into(),
        })
        .unwrap();
    assert_eq!(removed.account_id, "222222222222");
    let left = Store::open(dir.path()).unwrap().favorites();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].account_id, "111111111111");
}

#[test]
fn a_damaged_file_is_kept_aside_and_reported_while_the_rest_loads() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .add_favorite(favorite("111111111111", "i-0abc"))
            .unwrap();
        store
            .set_settings(AppSettings {
                theme: Theme::Light,
                ..Default::default()
            })
            .unwrap();
    }
    // Truncated mid-way, as a crash of some other editor might leave it.
    let settings_path = dir.path().join("settings.toml");
    let damaged = "schema = 1\n\n[settings]\ntheme = \"li";
    std::fs::write(&settings_path, damaged).unwrap();

    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.favorites().len(), 1, "the favorites still load");
    assert_eq!(store.settings(), AppSettings::default());
    let problems = store.problems();
    let [StoreProblem::SetAside { path, moved_to, .. }] = problems.as_slice() else {
        panic!("{problems:?}")
    };
    assert_eq!(path, &settings_path);
    assert_eq!(std::fs::read_to_string(moved_to).unwrap(), damaged);
    let text = problems[0].to_string();
    assert!(
        text.contains("settings") && text.contains("line 4"),
        "{text}"
    );
    assert!(
        !settings_path.exists(),
        "nothing was written in its place yet"
    );

    // Saving settings now writes a fresh file and leaves the damaged copy alone.
    store.set_settings(AppSettings::default()).unwrap();
    assert_eq!(std::fs::read_to_string(moved_to).unwrap(), damaged);
}

#[test]
fn hand_edits_that_break_the_shape_are_set_aside_and_good_ones_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("favorites.toml");
    // A good hand edit: comments, no schema line, keys in any order.
    std::fs::write(
        &path,
        "# my hosts\n[[favorite]]\ninstance_id = \"i-0abc\" # the db\naccount_id = \
         \"111111111111\"\nregion = \"eu-west-1\"\naction = \"forward:5432\"\n",
    )
    .unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.problems(), []);
    assert_eq!(
        store.favorites()[0].action,
        Action::Forward { remote_port: 5432 }
    );

    for (bad, expected) in [
        (
            "[[favorite]]\naccount_id = \"1\"\nregion = \"r\"\ninstance_id = \"i-1\"\nacton = \"ssh\"\n",
            "unknown field `acton`",
        ),
        (
            "[[favorite]]\naccount_id = \"1\"\nregion = \"r\"\ninstance_id = \"i-1\"\naction = \"telnet\"\n",
            "not an action",
        ),
        (
            "[[favorite]]\naccount_id = \"1\"\nregion = \"r\"\n",
            "missing field `instance_id`",
        ),
        ("\u{0}\u{ff}binary", "line 1"),
    ] {
        std::fs::write(&path, bad).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.favorites(), [], "{bad:?}");
        let problems = store.problems();
        let [
            StoreProblem::SetAside {
                reason, moved_to, ..
            },
        ] = problems.as_slice()
        else {
            panic!("{bad:?}: {problems:?}")
        };
        assert!(reason.contains(expected), "{bad:?}: {reason}");
        assert_eq!(std::fs::read_to_string(moved_to).unwrap(), bad);
        assert!(!path.exists());
    }
    let aside = files_in(dir.path())
        .into_iter()
        .filter(|n| n.starts_with("favorites.toml.unreadable-"))
        .count();
    assert_eq!(aside, 4, "each damaged version is kept");
}

#[test]
fn a_newer_schema_is_refused_and_kept_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("favorites.toml");
    let newer = "schema = 9\n[[favorite]]\naccount_id = \"1\"\nsomething_new = true\n";
    std::fs::write(&path, newer).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.favorites(), []);
    let problems = store.problems();
    assert!(
        matches!(problems.as_slice(), [StoreProblem::Newer { schema: 9, .. }]),
        "{problems:?}"
    );
    let error = store
        .add_favorite(favorite("111111111111", "i-0abc"))
        .unwrap_err();
    assert!(
        matches!(error, StoreError::Newer { schema: 9, .. }),
        "{error}"
    );
    assert!(error.to_string().contains("newer Bastionless"), "{error}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), newer);
    assert_eq!(files_in(dir.path()), [".lock", "favorites.toml"]);
    // The other concerns still work.
    store
        .set_settings(AppSettings {
            theme: Theme::Dark,
            ..Default::default()
        })
        .unwrap();
}

#[test]
fn a_refused_change_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut a = favorite("111111111111", "i-0aaa");
    a.alias = Some("web".into());
    store.add_favorite(a).unwrap();
    let before = std::fs::read(dir.path().join("favorites.toml")).unwrap();
    let mut b = favorite("111111111111", "i-0bbb");
    b.alias = Some("WEB".into());
    let error = store.add_favorite(b).unwrap_err();
    assert!(
        error.to_string().contains("already names i-0aaa"),
        "{error}"
    );
    let error = store
        .set_settings(AppSettings {
            eic_connection_cap: 40,
            ..Default::default()
        })
        .unwrap_err();
    assert!(error.to_string().contains("choose 1 to 20"), "{error}");
    assert_eq!(
        std::fs::read(dir.path().join("favorites.toml")).unwrap(),
        before
    );
    assert!(!dir.path().join("settings.toml").exists());
}

#[test]
fn export_then_import_elsewhere_gives_the_same_favorites_and_host_settings() {
    let team = tempfile::tempdir().unwrap();
    let store = Store::open(team.path().join("a")).unwrap();
    let mut db = favorite("111111111111", "i-0aaa");
    db.alias = Some("db".into());
    store.add_favorite(db).unwrap();
    store
        .add_favorite(favorite("222222222222", "i-0aaa"))
        .unwrap();
    let key = AccountInstance {
        account_id: "111111111111".into(),
        instance_id: "i-0aaa".into(),
    };
    store
        .set_host_settings(
            &key,
            HostSettings {
                user: Some("admin".into()),
                ..Default::default()
            },
        )
        .unwrap();
    let shared = team.path().join("team.toml");
    store.export(&shared).unwrap();

    let mine = Store::open(team.path().join("b")).unwrap();
    let mut clash = favorite("333333333333", "i-0ccc");
    clash.alias = Some("db".into());
    mine.add_favorite(clash).unwrap();
    let report = mine.import(&shared).unwrap();
    assert_eq!(report.favorites_added, 1);
    assert_eq!(report.hosts, 1);
    assert_eq!(report.skipped.len(), 1, "{report}");
    assert!(
        report.skipped[0].contains("alias `db` already names"),
        "{report}"
    );
    assert_eq!(mine.favorites().len(), 2);
    assert_eq!(mine.host_settings(&key).user.as_deref(), Some("admin"));

    // Importing again changes nothing new: the same keys are replaced.
    let again = mine.import(&shared).unwrap();
    assert_eq!((again.favorites_added, again.favorites_replaced), (0, 1));

    std::fs::write(&shared, "[[favorite]]\nregion = 3\n").unwrap();
    let error = mine.import(&shared).unwrap_err();
    assert!(error.to_string().contains("cannot be imported"), "{error}");
    assert_eq!(mine.favorites().len(), 2);
}

#[test]
fn no_secret_is_ever_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let host = HostKey {
        account_id: "111122223333".into(),
        region: "us-east-1".into(),
        instance_id: "i-0aaa".into(),
    };
    store
        .add_favorite(favorite("111122223333", "i-0aaa"))
        .unwrap();
    store
        .set_host_settings(
            &AccountInstance::from(&host),
            HostSettings {
                identity_file: Some("/home/me/.ssh/id_ed25519".into()),
                ..Default::default()
            },
        )
        .unwrap();
    store.set_settings(AppSettings::default()).unwrap();
    store
        .record_recent(&host, Some("prod"), None, Action::Rdp, None)
        .unwrap();
    store.export(&dir.path().join("export.toml")).unwrap();
    for name in files_in(dir.path()) {
        let text = std::fs::read_to_string(dir.path().join(&name))
            .unwrap()
            .to_lowercase();
        for secret in [
            "password",
            "secret",
            "token",
            "private key",
            "-----begin",
            "aws_access_key_id",
            "akia",
        ] {
            assert!(!text.contains(secret), "{name} mentions {secret}:\n{text}");
        }
    }
}

#[test]
fn changes_by_another_process_are_seen_after_a_reread() {
    let dir = tempfile::tempdir().unwrap();
    let app = Store::open(dir.path()).unwrap();
    assert!(!app.reload_if_changed());
    let cli = Store::open(dir.path()).unwrap();
    cli.add_favorite(favorite("111111111111", "i-0aaa"))
        .unwrap();
    assert_eq!(app.favorites(), []);
    assert!(app.reload_if_changed());
    assert_eq!(app.favorites().len(), 1);
    assert!(!app.reload_if_changed(), "nothing changed since");
    // The app's own writes are not news to it.
    app.add_favorite(favorite("111111111111", "i-0bbb"))
        .unwrap();
    assert!(!app.reload_if_changed());
}

#[test]
fn a_watch_calls_back_when_another_process_changes_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let app = Store::open(dir.path()).unwrap();
    let (changed, seen) = std::sync::mpsc::channel();
    let _watch = app.watch(Duration::from_millis(20), move || {
        let _ = changed.send(());
    });
    Store::open(dir.path())
        .unwrap()
        .add_favorite(favorite("111111111111", "i-0aaa"))
        .unwrap();
    seen.recv_timeout(Duration::from_secs(5))
        .expect("the watch saw the change");
    assert_eq!(app.favorites().len(), 1);
    // A change through a clone in this process (the window's star) is news to the tray too.
    app.clone()
        .add_favorite(favorite("111111111111", "i-0bbb"))
        .unwrap();
    seen.recv_timeout(Duration::from_secs(5))
        .expect("the watch saw this process's change");
}

/// Starts this test binary running `test` (an `#[ignore]`d child below) on `dir`.
fn child(test: &str, dir: &Path, tag: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--ignored", "--test-threads=1", "--quiet"])
        .env(CHILD_DIR_ENV, dir)
        .env(CHILD_TAG_ENV, tag)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// How many times [`a_writer_killed_at_any_point_leaves_the_old_or_the_new_file`] kills a
/// writer: `BASTIONLESS_CRASH_ITERATIONS` (the full run is 1000), else 200.
fn crash_iterations() -> usize {
    std::env::var("BASTIONLESS_CRASH_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200)
}

/// Kills a process that rewrites `favorites.toml` in a loop with SIGKILL at random moments,
/// and checks after each kill that the file reads whole, with at least as many favorites as
/// the last time (the old file or a newer one, never a torn or empty one).
///
/// The full run: `BASTIONLESS_CRASH_ITERATIONS=1000 cargo test -p bastionless-core --lib
/// store::tests::a_writer_killed`.
#[test]
fn a_writer_killed_at_any_point_leaves_the_old_or_the_new_file() {
    use rand::Rng as _;
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rng();
    let mut last = 0;
    let iterations = crash_iterations();
    for round in 0..iterations {
        let mut writer = child(
            "store::tests::child_writes_favorites_forever",
            dir.path(),
            &round.to_string(),
        );
        std::thread::sleep(Duration::from_micros(rng.random_range(0..30_000)));
        writer.kill().unwrap();
        writer.wait().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.problems(), [], "round {round}");
        let count = store.favorites().len();
        assert!(
            count >= last,
            "round {round}: {count} favorites after {last}"
        );
        last = count;
    }
    assert!(
        last > 0,
        "the writer never got to write in {iterations} rounds"
    );
    // Temporary files left by killed writers are cleared when the store opens.
    assert_eq!(
        files_in(dir.path()),
        [".lock", "favorites.toml"],
        "after {iterations} kills"
    );
}

/// The child of the crash test: adds favorites until killed.
#[test]
#[ignore = "run by a_writer_killed_at_any_point_leaves_the_old_or_the_new_file"]
fn child_writes_favorites_forever() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let tag = std::env::var(CHILD_TAG_ENV).unwrap_or_default();
    let store = Store::open(dir).unwrap();
    for n in 0.. {
        store
            .add_favorite(favorite("111111111111", &format!("i-{tag}-{n}")))
            .unwrap();
    }
}

/// Two processes adding favorites at the same time: every one of them is kept.
#[test]
fn two_processes_writing_at_once_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let writers: Vec<Child> = ["a", "b", "c"]
        .iter()
        .map(|tag| child("store::tests::child_adds_fifty_favorites", dir.path(), tag))
        .collect();
    for mut writer in writers {
        assert!(writer.wait().unwrap().success());
    }
    let store = Store::open(dir.path()).unwrap();
    let favorites = store.favorites();
    assert_eq!(favorites.len(), 150);
    for tag in ["a", "b", "c"] {
        for n in 0..50 {
            let id = format!("i-{tag}-{n}");
            assert!(favorites.iter().any(|f| f.instance_id == id), "{id} lost");
        }
    }
}

#[test]
#[ignore = "run by two_processes_writing_at_once_lose_nothing"]
fn child_adds_fifty_favorites() {
    let Some(dir) = std::env::var_os(CHILD_DIR_ENV) else {
        return;
    };
    let tag = std::env::var(CHILD_TAG_ENV).unwrap();
    // Each process opens the store first, so each starts from an old copy in memory.
    let store = Store::open(dir).unwrap();
    for n in 0..50 {
        store
            .add_favorite(favorite("111111111111", &format!("i-{tag}-{n}")))
            .unwrap();
    }
}
