//! Signing in from the window, against the simulator: the MFA dialog takes the device's current
//! code (a real TOTP from the simulator's virtual device) and the role's profile loads; the SSO
//! session's Sign in button starts the device flow, the status line shows the code the
//! simulator issued, and once the test approves it (as the user would in the browser) the
//! session is signed in and its profile works.
//!
//! A binary of its own: the MFA prompt and `$BROWSER` are process-wide.

#[path = "support/gui.rs"]
mod gui_support;

use bastionless::ui::BastionlessApp;
use bastionless_core::engine::{
    Engine, EngineConfig, ProfileState, ProfileStatus, SignInState, Snapshot,
};
use bastionless_core::profiles::AwsFiles;
use bastionless_sim::{Scenario, Simulator};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable};
use gui_support::step_until;

const SERIAL: &str = "arn:aws:iam::111122223333:mfa/alice";

fn profile<'a>(snapshot: &'a Snapshot, name: &str) -> Option<&'a ProfileStatus> {
    snapshot.profiles.iter().find(|p| p.name == name)
}

/// Whether the profile was scanned (its role was assumed, its SSO token worked).
fn loaded(harness: &Harness<'_, BastionlessApp>, name: &str) -> bool {
    let snapshot = harness.state().engine().snapshot();
    !snapshot.refreshing
        && profile(&snapshot, name).is_some_and(|p| {
            p.account_id.is_some() && matches!(p.state, ProfileState::Ready { .. })
        })
}

#[test]
fn the_mfa_dialog_and_the_sso_sign_in_bring_their_profiles_in() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let sim = runtime
        .block_on(Simulator::start(Scenario::demo()))
        .expect("simulator starts");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let ca = sim
        .ca_bundle()
        .expect("TLS by default")
        .display()
        .to_string();
    let endpoint = sim.endpoint_url();
    let lines = format!("region = us-east-1\nendpoint_url = {endpoint}\nca_bundle = {ca}\n");
    std::fs::write(
        dir.path().join("config"),
        format!(
            "[profile prod]\n{lines}\n\
             [profile break-glass]\nrole_arn = arn:aws:iam::111122223333:role/BreakGlass\nsource_profile = prod\nmfa_serial = {SERIAL}\n{lines}\n\
             [sso-session acme]\nsso_start_url = https://acme.awsapps.com/start\nsso_region = us-east-1\n\n\
             [profile sso-staging]\nsso_session = acme\nsso_account_id = 444455556666\nsso_role_name = ViewOnly\n{lines}\n"
        ),
    )
    .expect("config written");
    let prod = sim.scenario().profile("prod").expect("the demo has prod");
    std::fs::write(
        dir.path().join("credentials"),
        format!(
            "[prod]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            prod.access_key_id, prod.secret_access_key
        ),
    )
    .expect("credentials written");
    // The sign-in "opens the browser": `true` stands in for it, and the test approves.
    // SAFETY: set before the engine starts any thread that reads the environment.
    unsafe { std::env::set_var("BROWSER", "true") };
    let mut config = EngineConfig::new(AwsFiles::at(
        dir.path().join("config"),
        dir.path().join("credentials"),
    ));
    config.regions = Some(vec!["us-east-1".to_owned()]);
    let engine = Engine::start(config).expect("engine starts");
    let mut harness = Harness::builder()
        .with_size([1400.0, 800.0])
        .build_eframe(|cc| BastionlessApp::new(engine, &cc.egui_ctx));

    step_until(&mut harness, "the MFA dialog", |h| {
        h.query_all_by_label("MFA code").next().is_some()
    });
    assert!(
        harness.query_all_by_label_contains(SERIAL).next().is_some(),
        "the dialog names the device"
    );
    let code = sim.mfa_code(SERIAL).expect("the device has a code");
    let field = harness.get_by_role_and_label(Role::TextInput, "Code");
    field.focus();
    field.type_text(&code);
    harness.step();
    harness
        .get_by_role_and_label(Role::Button, "Continue")
        .click();
    step_until(&mut harness, "break-glass loading with the code", |h| {
        loaded(h, "break-glass")
    });
    assert!(
        harness.query_all_by_label("MFA code").next().is_none(),
        "the dialog is gone once answered"
    );

    step_until(&mut harness, "the Sign in button", |h| {
        h.query_all_by_role_and_label(Role::Button, "Sign in to acme")
            .next()
            .is_some()
    });
    harness
        .get_by_role_and_label(Role::Button, "Sign in to acme")
        .click();
    step_until(&mut harness, "the device code shown", |h| {
        h.query_all_by_label_contains("Approve code ")
            .next()
            .is_some()
    });
    let line = harness.get_by_label_contains("Approve code ");
    let node = line.accesskit_node();
    let shown = node
        .value()
        .or_else(|| node.label())
        .expect("the line has text");
    let user_code = shown
        .trim_start_matches("Approve code ")
        .trim_end_matches(" at")
        .to_owned();
    assert!(
        sim.pending_sso_user_codes().contains(&user_code),
        "the window shows the code the simulator issued: {user_code:?} in {:?}",
        sim.pending_sso_user_codes()
    );
    assert!(sim.approve_sso_device(&user_code), "the code was pending");

    step_until(&mut harness, "sso-staging loading after the sign-in", |h| {
        loaded(h, "sso-staging")
    });
    let snapshot = harness.state().engine().snapshot();
    let acme = snapshot
        .sso_sessions
        .iter()
        .find(|s| s.name == "acme")
        .expect("the session is listed");
    assert_eq!(acme.state, SignInState::SignedIn);
    step_until(&mut harness, "the status line saying so", |h| {
        h.query_all_by_label("signed in").next().is_some()
    });
    drop(harness);
    runtime.block_on(sim.shutdown());
}
