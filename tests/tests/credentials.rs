//! The product's profiles and credentials against the simulator: role chains across accounts,
//! MFA, `credential_process`, broken profiles that hide only themselves, account aliases, and IAM Identity
//! Center — device sign-in with the test approving the code, the token cache shared with the
//! AWS CLI, refresh-token renewal, an expired session, and account discovery.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use bastionless_core::profiles::{AwsFiles, MfaPrompt, ProfileCatalog, set_mfa_prompt};
use bastionless_core::sso::{self, CachedToken, SsoError, SsoSessionKey};
use bastionless_sim::{Scenario, Simulator};

/// `[profile NAME]` lines pointing at the simulator (endpoint and CA).
fn sim_lines(sim: &Simulator, region: &str) -> String {
    let mut text = format!("region = {region}\nendpoint_url = {}\n", sim.endpoint_url());
    if let Some(ca) = sim.ca_bundle() {
        text += &format!("ca_bundle = {}\n", ca.display());
    }
    text
}

/// Writes `config` (after a `[profile prod]` with the simulator's keys) into a fresh directory.
fn files(sim: &Simulator, dir: &Path, config: &str) -> AwsFiles {
    let prod = sim.scenario().profile("prod").expect("the demo has prod");
    let text = format!("[profile prod]\n{}\n{config}", sim_lines(sim, "us-east-1"));
    std::fs::write(dir.join("config"), text).unwrap();
    std::fs::write(
        dir.join("credentials"),
        format!(
            "[prod]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            prod.access_key_id, prod.secret_access_key
        ),
    )
    .unwrap();
    AwsFiles::at(dir.join("config"), dir.join("credentials"))
}

/// `(account, ARN)` of `profile`, through its own credentials, or the error a user would see.
async fn who_is(catalog: &ProfileCatalog, profile: &str) -> Result<(String, String), String> {
    let profile = catalog
        .get(profile)
        .unwrap_or_else(|| panic!("{profile} is usable: {:?}", catalog.broken));
    let sdk = catalog.sdk_config(profile).await?;
    let identity = aws_sdk_sts::Client::new(&sdk)
        .get_caller_identity()
        .send()
        .await
        .map_err(|e| {
            format!(
                "{}",
                aws_smithy_types::error::display::DisplayErrorContext(&e)
            )
        })?;
    Ok((
        identity.account().unwrap_or_default().to_owned(),
        identity.arn().unwrap_or_default().to_owned(),
    ))
}

#[tokio::test]
async fn role_chains_cross_accounts_and_broken_profiles_stay_on_their_own() {
    let sim = Simulator::start(Scenario::demo()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let lines = sim_lines(&sim, "us-west-2");
    let config = format!(
        "[profile readonly]\nrole_arn = arn:aws:iam::444455556666:role/ReadOnly\nsource_profile = prod\n{lines}\n\
         [profile admin]\nrole_arn = arn:aws:iam::444455556666:role/Admin\nsource_profile = readonly\nrole_session_name = ops-admin\n{lines}\n\
         [profile loop-a]\nrole_arn = arn:aws:iam::444455556666:role/Admin\nsource_profile = loop-b\n{lines}\n\
         [profile loop-b]\nrole_arn = arn:aws:iam::444455556666:role/Admin\nsource_profile = loop-a\n{lines}\n\
         [profile garbled]\n{lines}this line is not a setting\n\
         [profile untrusted]\nrole_arn = arn:aws:iam::111122223333:role/AWSAdministratorAccess\nsource_profile = prod\n{lines}\n\
         [profile failing-process]\ncredential_process = sh -c 'echo token service unreachable >&2; exit 3'\n{lines}\n"
    );
    let catalog = ProfileCatalog::load(&files(&sim, dir.path(), &config)).unwrap();

    let (account, arn) = who_is(&catalog, "admin").await.unwrap();
    assert_eq!(account, "444455556666");
    assert_eq!(
        arn,
        "arn:aws:sts::444455556666:assumed-role/Admin/ops-admin"
    );
    assert_eq!(sim.calls("AssumeRole"), 2, "prod → ReadOnly → Admin");
    let (account, _) = who_is(&catalog, "prod").await.unwrap();
    assert_eq!(account, "111122223333");

    let broken = |name: &str| {
        catalog
            .broken
            .iter()
            .find(|b| b.name == name)
            .map(|b| b.error.clone())
            .unwrap_or_else(|| panic!("{name} should be broken: {:?}", catalog.broken))
    };
    assert!(
        broken("loop-a").contains("loop-a → loop-b → loop-a"),
        "{}",
        broken("loop-a")
    );
    assert!(broken("loop-b").contains("loop-b → loop-a → loop-b"));
    assert!(broken("garbled").contains("line"), "{}", broken("garbled"));
    assert_eq!(catalog.broken.len(), 3, "{:?}", catalog.broken);

    let denied = who_is(&catalog, "untrusted").await.unwrap_err();
    assert!(
        denied.contains("AccessDenied") && denied.contains("sts:AssumeRole"),
        "{denied}"
    );
    let failed = who_is(&catalog, "failing-process").await.unwrap_err();
    assert!(failed.contains("token service unreachable"), "{failed}");
    // The failures stayed on their profiles.
    assert!(who_is(&catalog, "readonly").await.is_ok());

    // Account aliases: listed where the policy allows, absent (not an error) where it does not.
    let calls = bastionless_core::inventory::CallBudget::default();
    let alias = |name: &str| {
        let profile = catalog.get(name).unwrap().clone();
        let (catalog, calls) = (&catalog, &calls);
        async move {
            let sdk = catalog.sdk_config(&profile).await.unwrap();
            bastionless_core::inventory::account_alias(&sdk, calls).await
        }
    };
    assert_eq!(alias("prod").await.as_deref(), Some("acme-prod"));
    assert_eq!(alias("admin").await.as_deref(), Some("acme-staging"));
    assert_eq!(
        alias("readonly").await,
        None,
        "ReadOnly may not list aliases"
    );
    assert_eq!(sim.calls("ListAccountAliases"), 3);
}

/// Answers MFA prompts with a fixed code and remembers who asked.
struct FixedCode {
    code: Mutex<String>,
    asked: Mutex<Vec<(String, String)>>,
}

impl MfaPrompt for FixedCode {
    fn code(
        &self,
        profile: &str,
        serial: &str,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send>> {
        self.asked
            .lock()
            .unwrap()
            .push((profile.to_owned(), serial.to_owned()));
        let code = self.code.lock().unwrap().clone();
        Box::pin(async move { Ok(code) })
    }
}

#[tokio::test]
async fn an_mfa_role_asks_for_the_code_once_and_refuses_a_wrong_one() {
    let sim = Simulator::start(Scenario::demo()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let serial = "arn:aws:iam::111122223333:mfa/alice";
    let lines = sim_lines(&sim, "us-east-1");
    let config = format!(
        "[profile break-glass]\nrole_arn = arn:aws:iam::111122223333:role/BreakGlass\nsource_profile = prod\nmfa_serial = {serial}\n{lines}\n\
         [profile break-glass-no-mfa]\nrole_arn = arn:aws:iam::111122223333:role/BreakGlass\nsource_profile = prod\nrole_session_name = nomfa\n{lines}\n\
         [profile break-glass-wrong]\nrole_arn = arn:aws:iam::111122223333:role/BreakGlass\nsource_profile = prod\nmfa_serial = {serial}\nrole_session_name = wrong\n{lines}\n"
    );
    let catalog = ProfileCatalog::load(&files(&sim, dir.path(), &config)).unwrap();
    let prompt = Arc::new(FixedCode {
        code: Mutex::new(sim.mfa_code(serial).expect("alice has a device")),
        asked: Mutex::new(Vec::new()),
    });
    set_mfa_prompt(prompt.clone());

    let (_, arn) = who_is(&catalog, "break-glass").await.unwrap();
    assert!(arn.contains("assumed-role/BreakGlass/"), "{arn}");
    // The role's credentials are kept: a second use asks no second code.
    who_is(&catalog, "break-glass").await.unwrap();
    assert_eq!(
        *prompt.asked.lock().unwrap(),
        [("break-glass".to_owned(), serial.to_owned())]
    );

    let without = who_is(&catalog, "break-glass-no-mfa").await.unwrap_err();
    assert!(without.contains("AccessDenied"), "{without}");
    let current = sim.mfa_code(serial).unwrap();
    let wrong = format!(
        "{:06}",
        (current.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    *prompt.code.lock().unwrap() = wrong;
    let refused = who_is(&catalog, "break-glass-wrong").await.unwrap_err();
    assert!(
        refused.contains("MultiFactorAuthentication failed"),
        "{refused}"
    );
}

fn sso_config(sim: &Simulator) -> String {
    let ca = sim
        .ca_bundle()
        .map(|ca| format!("ca_bundle = {}\n", ca.display()))
        .unwrap_or_default();
    format!(
        "[sso-session acme]\nsso_start_url = https://acme.awsapps.com/start\nsso_region = us-east-1\nendpoint_url = {}\n{ca}\n\
         [profile sso-admin]\nsso_session = acme\nsso_account_id = 111122223333\nsso_role_name = AWSAdministratorAccess\n{}\n",
        sim.endpoint_url(),
        sim_lines(sim, "us-east-1")
    )
}

/// Signs in to `acme`, approving the device code as the user would.
async fn sign_in(sim: &Simulator, catalog: &ProfileCatalog) {
    let session = catalog.sso_session("acme").expect("declared").clone();
    let shown: Arc<Mutex<Option<sso::DeviceCode>>> = Arc::default();
    let cache = catalog.sso_cache_dir.clone();
    let signing_in = tokio::spawn({
        let shown = shown.clone();
        async move {
            sso::sign_in(&session, &cache, |code| {
                *shown.lock().unwrap() = Some(code.clone());
            })
            .await
        }
    });
    let code = loop {
        if let Some(code) = shown.lock().unwrap().clone() {
            break code;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert!(code.url().starts_with(&sim.endpoint_url()), "{code:?}");
    assert!(code.url().contains(&code.user_code));
    // Polling before approval hears `authorization_pending` and keeps waiting.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(!signing_in.is_finished());
    assert!(sim.approve_sso_device(&code.user_code));
    signing_in.await.unwrap().expect("signed in");
}

fn cache_path(catalog: &ProfileCatalog) -> PathBuf {
    sso::cache_file(&catalog.sso_cache_dir, &SsoSessionKey::Named("acme".into()))
}

#[tokio::test]
async fn sso_device_sign_in_serves_profiles_through_the_cli_cache_and_renews_it() {
    let sim = Simulator::start(Scenario::demo()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let catalog = ProfileCatalog::load(&files(&sim, dir.path(), &sso_config(&sim))).unwrap();

    let before = who_is(&catalog, "sso-admin").await.unwrap_err();
    assert!(
        before.contains("SSO session `acme`: sign-in needed"),
        "{before}"
    );

    sign_in(&sim, &catalog).await;
    let (account, arn) = who_is(&catalog, "sso-admin").await.unwrap();
    assert_eq!(account, "111122223333");
    assert!(
        arn.contains("assumed-role/AWSAdministratorAccess/"),
        "{arn}"
    );

    // The cache file is where and what the AWS CLI expects.
    let written: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(cache_path(&catalog)).unwrap()).unwrap();
    for field in [
        "startUrl",
        "region",
        "accessToken",
        "expiresAt",
        "clientId",
        "clientSecret",
        "registrationExpiresAt",
        "refreshToken",
    ] {
        assert!(
            written.get(field).is_some_and(|v| v.is_string()),
            "{field}: {written}"
        );
    }

    // A file as the AWS CLI writes it (its own field order, an expiry about to pass) is read,
    // and its refresh token renews it.
    let cli_file = serde_json::json!({
        "startUrl": written["startUrl"],
        "region": written["region"],
        "accessToken": written["accessToken"],
        "expiresAt": CachedToken::format_time(chrono::Utc::now() + chrono::TimeDelta::minutes(1)),
        "clientId": written["clientId"],
        "clientSecret": written["clientSecret"],
        "registrationExpiresAt": written["registrationExpiresAt"],
        "refreshToken": written["refreshToken"],
    });
    std::fs::write(cache_path(&catalog), cli_file.to_string()).unwrap();
    sim.expire_sso_access_tokens("acme");
    let refreshes = sim.calls("CreateToken");
    let grants =
        sso::list_account_roles(catalog.sso_session("acme").unwrap(), &catalog.sso_cache_dir)
            .await
            .expect("renewed with the refresh token");
    assert_eq!(sim.calls("CreateToken"), refreshes + 1);
    let renewed = CachedToken::load(&catalog.sso_cache_dir, &SsoSessionKey::Named("acme".into()))
        .unwrap()
        .unwrap();
    assert_ne!(
        Some(renewed.access_token.as_str()),
        written["accessToken"].as_str()
    );
    assert!(renewed.expires().unwrap() > chrono::Utc::now() + chrono::TimeDelta::hours(1));

    // Account discovery: every account and role the session grants.
    let found: Vec<(String, String)> = grants
        .iter()
        .map(|g| (g.account_id.clone(), g.role_name.clone()))
        .collect();
    assert_eq!(
        found,
        [
            (
                "111122223333".to_owned(),
                "AWSAdministratorAccess".to_owned()
            ),
            ("444455556666".to_owned(), "ViewOnly".to_owned()),
        ]
    );
}

#[tokio::test]
async fn an_ended_sso_session_needs_sign_in_for_that_session_only() {
    let sim = Simulator::start(Scenario::demo()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let catalog = ProfileCatalog::load(&files(&sim, dir.path(), &sso_config(&sim))).unwrap();
    sign_in(&sim, &catalog).await;
    let session = catalog.sso_session("acme").unwrap();
    sso::list_account_roles(session, &catalog.sso_cache_dir)
        .await
        .unwrap();

    sim.sign_out_sso("acme");
    let error = sso::list_account_roles(session, &catalog.sso_cache_dir)
        .await
        .unwrap_err();
    assert!(
        matches!(&error, SsoError::SignInNeeded { session, .. } if session == "acme"),
        "{error:?}"
    );
    // With the cached token expired too, renewal fails the same way, not as a network error.
    let mut cached =
        CachedToken::load(&catalog.sso_cache_dir, &SsoSessionKey::Named("acme".into()))
            .unwrap()
            .unwrap();
    cached.expires_at =
        CachedToken::format_time(chrono::Utc::now() - chrono::TimeDelta::minutes(1));
    cached
        .store(&catalog.sso_cache_dir, &SsoSessionKey::Named("acme".into()))
        .unwrap();
    let error = sso::list_account_roles(session, &catalog.sso_cache_dir)
        .await
        .unwrap_err();
    assert!(matches!(error, SsoError::SignInNeeded { .. }), "{error:?}");
    // Profiles that do not use the session are untouched.
    assert_eq!(who_is(&catalog, "prod").await.unwrap().0, "111122223333");
}
