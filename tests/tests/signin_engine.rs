//! Signing in through the engine, as the app does: an MFA code asked for in the snapshot and
//! answered with `Command::SupplyMfaCode`, and an SSO session that shows "sign-in needed" once,
//! then signs in with `Command::SignIn` (the test approving the device code) and refreshes;
//! account discovery turning the session's roles into profiles and back.
//!
//! A test binary of its own: the MFA prompt is process-wide, and here it must be the engine's.

use std::time::Duration;

use bastionless_core::engine::{
    Command, Engine, EngineConfig, ProfileState, SignInState, Snapshot,
};
use bastionless_core::profiles::AwsFiles;
use bastionless_sim::{Scenario, Simulator};

const WAIT: Duration = Duration::from_secs(60);

fn status<'a>(snapshot: &'a Snapshot, name: &str) -> &'a bastionless_core::engine::ProfileStatus {
    snapshot
        .profiles
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{name} in {:?}", snapshot.profiles))
}

#[test]
fn the_engine_asks_for_mfa_codes_and_signs_in_to_sso_sessions() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let sim = runtime
        .block_on(Simulator::start(Scenario::demo()))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let ca = sim
        .ca_bundle()
        .expect("TLS by default")
        .display()
        .to_string();
    let endpoint = sim.endpoint_url();
    let lines = format!("region = us-east-1\nendpoint_url = {endpoint}\nca_bundle = {ca}\n");
    let serial = "arn:aws:iam::111122223333:mfa/alice";
    std::fs::write(
        dir.path().join("config"),
        format!(
            "[profile prod]\n{lines}\n\
             [profile break-glass]\nrole_arn = arn:aws:iam::111122223333:role/BreakGlass\nsource_profile = prod\nmfa_serial = {serial}\n{lines}\n\
             [sso-session acme]\nsso_start_url = https://acme.awsapps.com/start\nsso_region = us-east-1\n\n\
             [profile sso-staging]\nsso_session = acme\nsso_account_id = 444455556666\nsso_role_name = ViewOnly\n{lines}\n"
        ),
    )
    .unwrap();
    let prod = sim.scenario().profile("prod").unwrap();
    std::fs::write(
        dir.path().join("credentials"),
        format!(
            "[prod]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            prod.access_key_id, prod.secret_access_key
        ),
    )
    .unwrap();
    // The sign-in "opens the browser"; `true` stands in for it, and the test approves.
    // SAFETY: set before the engine starts any thread that reads the environment.
    unsafe { std::env::set_var("BROWSER", "true") };
    let mut config = EngineConfig::new(AwsFiles::at(
        dir.path().join("config"),
        dir.path().join("credentials"),
    ));
    config.regions = Some(vec!["us-east-1".to_owned()]);
    let engine = Engine::start(config).unwrap();

    // The role needs an MFA code: the snapshot asks, the app answers.
    let snapshot = engine.wait_until(WAIT, |s| s.mfa_request.is_some());
    let request = snapshot.mfa_request.clone().expect("an MFA question");
    assert_eq!(
        (request.profile.as_str(), request.serial.as_str()),
        ("break-glass", serial)
    );
    assert!(
        snapshot
            .notices
            .iter()
            .any(|n| n.text.contains("break-glass"))
    );
    engine.send(Command::SupplyMfaCode {
        code: sim.mfa_code(serial).unwrap(),
    });
    let snapshot = engine.wait_until(WAIT, |s| !s.refreshing && s.mfa_request.is_none());
    assert_eq!(
        status(&snapshot, "break-glass").account_id.as_deref(),
        Some("111122223333"),
        "{:?}",
        status(&snapshot, "break-glass")
    );

    // The account's alias arrives beside the scan.
    let snapshot = engine.wait_until(WAIT, |s| s.account_aliases.contains_key("111122223333"));
    assert_eq!(snapshot.account_aliases["111122223333"], "acme-prod");

    // The SSO session is reported once, with its profiles, as needing a sign-in.
    let acme = snapshot
        .sso_sessions
        .iter()
        .find(|s| s.name == "acme")
        .expect("the session is listed");
    assert_eq!(acme.profiles, ["sso-staging"]);
    assert!(
        matches!(acme.state, SignInState::SignInNeeded { .. }),
        "{acme:?}"
    );
    assert!(matches!(
        status(&snapshot, "sso-staging").state,
        ProfileState::Failed { .. }
    ));

    engine.send(Command::SignIn {
        sso_session: "acme".to_owned(),
    });
    let snapshot = engine.wait_until(WAIT, |s| {
        s.sso_sessions
            .iter()
            .any(|st| matches!(st.state, SignInState::SigningIn { .. }))
    });
    let Some(SignInState::SigningIn { user_code, url }) =
        snapshot.sso_sessions.iter().map(|s| s.state.clone()).next()
    else {
        panic!("{:?}", snapshot.sso_sessions)
    };
    assert!(
        url.starts_with(&endpoint) && url.contains(&user_code),
        "{url}"
    );
    assert!(sim.approve_sso_device(&user_code));

    // Signed in, the engine refreshes, and the session's profile now works.
    let snapshot = engine.wait_until(WAIT, |s| {
        s.profiles
            .iter()
            .any(|p| p.name == "sso-staging" && p.account_id.is_some())
            && !s.refreshing
    });
    assert_eq!(
        status(&snapshot, "sso-staging").account_id.as_deref(),
        Some("444455556666"),
        "{:?}",
        status(&snapshot, "sso-staging")
    );
    assert!(matches!(
        snapshot.sso_sessions[0].state,
        SignInState::SignedIn
    ));
    assert!(
        snapshot
            .notices
            .iter()
            .any(|n| n.text.contains("Signed in to SSO session `acme`"))
    );

    // Account discovery: every account and role of the session becomes a profile, except the
    // one a configured profile already uses.
    engine.send(Command::DiscoverAccounts {
        sso_session: "acme".to_owned(),
        enabled: true,
    });
    let discovered = "acme/acme-prod/AWSAdministratorAccess";
    let snapshot = engine.wait_until(WAIT, |s| {
        s.profiles
            .iter()
            .any(|p| p.name == discovered && p.state != ProfileState::Loading)
            && !s.refreshing
    });
    assert_eq!(
        status(&snapshot, discovered).account_id.as_deref(),
        Some("111122223333"),
        "{:?} {:?}",
        snapshot.profiles,
        snapshot.notices
    );
    assert!(
        !snapshot
            .profiles
            .iter()
            .any(|p| p.name == "acme/acme-staging/ViewOnly"),
        "sso-staging already is that role: {:?}",
        snapshot.profiles
    );
    assert!(snapshot.sso_sessions[0].discovery);
    assert!(dir.path().join("bastionless-sso-discovery.json").exists());

    engine.send(Command::DiscoverAccounts {
        sso_session: "acme".to_owned(),
        enabled: false,
    });
    let snapshot = engine.wait_until(WAIT, |s| {
        !s.profiles.iter().any(|p| p.name == discovered) && !s.refreshing
    });
    assert!(!snapshot.sso_sessions[0].discovery);
    drop(engine);
    runtime.block_on(sim.shutdown());
}
