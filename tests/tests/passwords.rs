//! `GetPasswordData` through the real AWS SDK, and the product's decryption of what it returns:
//! a Windows instance's password, sealed to its key pair, decrypts with the key pair's `.pem`
//! the simulator writes, and is empty until Windows has set it.

mod support;

use std::time::Duration;

use aws_sdk_ec2::error::ProvideErrorMetadata;
use bastionless_core::launch::windows_password::{decrypt_password, parse_private_key};
use bastionless_sim::{Clock, Scenario, SimOptions, Simulator};
use chrono::Utc;

/// An EC2 client for one of the simulator's profiles, from its generated files only.
async fn ec2(sim: &Simulator, profile: &str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&support::sdk_config(sim, profile).await)
}

fn instance_id(sim: &Simulator, name: &str) -> String {
    sim.scenario()
        .instance_named(name)
        .unwrap_or_else(|| panic!("the demo has {name}"))
        .instance_id
        .clone()
}

async fn password_data(ec2: &aws_sdk_ec2::Client, instance_id: &str) -> String {
    ec2.get_password_data()
        .instance_id(instance_id)
        .send()
        .await
        .expect("GetPasswordData succeeds")
        .password_data
        .unwrap_or_default()
}

fn key_file(sim: &Simulator, key_pair: &str) -> String {
    let path = sim
        .key_pair_file(key_pair)
        .unwrap_or_else(|| panic!("the simulator wrote {key_pair}.pem"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path)
            .expect("exists")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    std::fs::read_to_string(path).expect("readable")
}

#[tokio::test]
async fn the_password_decrypts_with_the_key_pairs_pem_and_matches_the_instances() {
    let sim = Simulator::start(Scenario::demo()).await.expect("starts");
    let key = parse_private_key(&key_file(&sim, "prod-windows")).expect("an RSA key");
    let ec2 = ec2(&sim, "prod").await;
    for name in ["win-eic-1", "win-ssm-1"] {
        let id = instance_id(&sim, name);
        let response = ec2
            .get_password_data()
            .instance_id(&id)
            .send()
            .await
            .expect("GetPasswordData succeeds");
        assert_eq!(response.instance_id(), Some(id.as_str()));
        assert!(response.timestamp().is_some());
        let data = response.password_data().unwrap_or_default();
        let password = decrypt_password(data, &key, name, "prod-windows").expect("decrypts");
        assert_eq!(Some(password.expose()), sim.windows_password(&id), "{name}");
        // EC2 keeps one sealed copy.
        assert_eq!(password_data(&ec2, &id).await, data);
    }
    let eic = sim.windows_password(&instance_id(&sim, "win-eic-1"));
    let ssm = sim.windows_password(&instance_id(&sim, "win-ssm-1"));
    assert_ne!(eic, ssm, "each instance has its own password");

    // Another key pair's key does not open it.
    let staging = parse_private_key(&key_file(&sim, "staging-windows")).expect("an RSA key");
    let data = password_data(&ec2, &instance_id(&sim, "win-eic-1")).await;
    let error = decrypt_password(&data, &staging, "win-eic-1", "prod-windows").unwrap_err();
    assert!(
        error.to_string().contains("does not decrypt the password"),
        "{error}"
    );
    assert!(
        sim.key_pair_file("prod-ops").is_none(),
        "only Windows key pairs"
    );
}

#[tokio::test]
async fn the_password_is_empty_until_four_minutes_after_launch() {
    let mut scenario = Scenario::demo();
    let just_launched = scenario
        .instances
        .iter_mut()
        .find(|i| i.name() == Some("win-eic-1"))
        .expect("in the demo");
    just_launched.launch_time = Utc::now();
    let id = just_launched.instance_id.clone();
    // A simulated minute in half a real second: ready about two seconds from now.
    let options = SimOptions::default().clock(Clock::accelerated(120));
    let sim = Simulator::start_with(scenario, options)
        .await
        .expect("starts");
    let ec2 = ec2(&sim, "prod").await;
    let key = parse_private_key(&key_file(&sim, "prod-windows")).expect("an RSA key");

    let early = password_data(&ec2, &id).await;
    assert_eq!(early, "");
    let error = decrypt_password(&early, &key, "win-eic-1", "prod-windows").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("not ready yet (wait up to 15 min after launch)"),
        "{error}"
    );

    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let data = loop {
        let data = password_data(&ec2, &id).await;
        if !data.is_empty() {
            break data;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still not ready after 10 s (20 simulated minutes)"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let password = decrypt_password(&data, &key, "win-eic-1", "prod-windows").expect("decrypts");
    assert_eq!(Some(password.expose()), sim.windows_password(&id));
}

#[tokio::test]
async fn linux_hosts_and_windows_hosts_without_a_key_pair_have_no_password_data() {
    let sim = Simulator::start(Scenario::demo()).await.expect("starts");
    let ec2 = ec2(&sim, "prod").await;
    assert_eq!(
        password_data(&ec2, &instance_id(&sim, "web-eic-1")).await,
        ""
    );
    assert_eq!(
        password_data(&ec2, &instance_id(&sim, "win-ad-1")).await,
        ""
    );
}

#[tokio::test]
async fn bad_unknown_and_foreign_instance_ids_fail_as_ec2_fails_them() {
    let sim = Simulator::start(Scenario::demo()).await.expect("starts");
    let ec2 = ec2(&sim, "prod").await;
    type Outcome = Result<
        aws_sdk_ec2::operation::get_password_data::GetPasswordDataOutput,
        aws_sdk_ec2::error::SdkError<
            aws_sdk_ec2::operation::get_password_data::GetPasswordDataError,
        >,
    >;
    let code = |result: Outcome| {
        let error = result.expect_err("refused");
        let service = error.into_service_error();
        (
            service.code().map(str::to_owned),
            service.message().map(str::to_owned),
        )
    };
    let (c, m) = code(
        ec2.get_password_data()
            .instance_id("web-eic-1")
            .send()
            .await,
    );
    assert_eq!(c.as_deref(), Some("InvalidInstanceID.Malformed"));
    assert_eq!(m.as_deref(), Some("Invalid id: \"web-eic-1\""));
    let (c, m) = code(
        ec2.get_password_data()
            .instance_id("i-0123456789abcdef0")
            .send()
            .await,
    );
    assert_eq!(c.as_deref(), Some("InvalidInstanceID.NotFound"));
    assert_eq!(
        m.as_deref(),
        Some("The instance ID 'i-0123456789abcdef0' does not exist")
    );
    // win-stg-1 is in the staging account: prod cannot see it.
    let (c, _) = code(
        ec2.get_password_data()
            .instance_id(instance_id(&sim, "win-stg-1"))
            .send()
            .await,
    );
    assert_eq!(c.as_deref(), Some("InvalidInstanceID.NotFound"));
    let (c, _) = code(
        ec2.get_password_data()
            .instance_id(instance_id(&sim, "win-eic-1"))
            .dry_run(true)
            .send()
            .await,
    );
    assert_eq!(c.as_deref(), Some("DryRunOperation"));
    // staging sees its own.
    let staging = self::ec2(&sim, "staging").await;
    let key = parse_private_key(&key_file(&sim, "staging-windows")).expect("an RSA key");
    let id = instance_id(&sim, "win-stg-1");
    let data = password_data(&staging, &id).await;
    let password = decrypt_password(&data, &key, "win-stg-1", "staging-windows").expect("decrypts");
    assert_eq!(Some(password.expose()), sim.windows_password(&id));
}

#[tokio::test]
async fn a_principal_denied_get_password_data_is_unauthorized() {
    let mut scenario = Scenario::demo();
    scenario
        .profiles
        .iter_mut()
        .find(|p| p.name == "prod")
        .expect("prod")
        .denied_actions
        .push("ec2:GetPasswordData".to_owned());
    let sim = Simulator::start(scenario).await.expect("starts");
    let error = ec2(&sim, "prod")
        .await
        .get_password_data()
        .instance_id(instance_id(&sim, "win-eic-1"))
        .send()
        .await
        .expect_err("denied");
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(403));
    assert_eq!(
        error.into_service_error().code(),
        Some("UnauthorizedOperation")
    );
}
