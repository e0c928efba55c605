//! `bastionless login` as the built binary against the simulator: it prints the URL and code,
//! opens "the browser" (`$BROWSER`, here a script that approves the code on the simulator's
//! page as a user clicking Approve would), and leaves the token in the AWS CLI's cache.

use bastionless_sim::{BackgroundSimulator, Scenario};
use std::process::Command;

#[test]
fn login_signs_in_through_the_browser_page_and_fills_the_cli_cache() {
    let sim = BackgroundSimulator::start(Scenario::demo()).expect("the simulator starts");
    let home = tempfile::tempdir().unwrap();
    let ca = sim.ca_bundle().expect("TLS by default");
    let browser = home.path().join("browser.sh");
    let opened = home.path().join("opened");
    std::fs::write(
        &browser,
        format!(
            "#!/bin/sh\necho \"$1\" > '{opened}'\nurl=\"$1\"\ncode=\"${{url##*user_code=}}\"\nbase=\"${{url%%/device*}}\"\nsleep 1\nexec curl -s --cacert '{ca}' -d \"user_code=$code\" \"$base/device\" >/dev/null\n",
            opened = opened.display(),
            ca = ca.display()
        ),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&browser, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    let output = Command::new(env!("CARGO_BIN_EXE_bastionless"))
        .args(["login", "--sso-session", "acme"])
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", sim.config_file())
        .env("AWS_SHARED_CREDENTIALS_FILE", sim.credentials_file())
        .env("BROWSER", &browser)
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_CA_BUNDLE")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");

    let url = std::fs::read_to_string(&opened).expect("the browser was opened");
    let code = url.trim().rsplit("user_code=").next().unwrap().to_owned();
    assert!(url.starts_with(&sim.endpoint_url()), "{url}");
    assert!(
        stderr.contains(&format!("    {code}\n")),
        "the code is shown: {stderr}"
    );
    assert!(stderr.contains("Signed in to `acme`"), "{stderr}");

    // sha1("acme"), the file name the AWS CLI uses for `[sso-session acme]`.
    let cache = home
        .path()
        .join(".aws/sso/cache/293abb6b76d7791c0732cc517d38c4b5c734b87f.json");
    let cached: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).expect("cached")).unwrap();
    assert_eq!(cached["startUrl"], "https://acme.awsapps.com/start");
    assert!(cached["accessToken"].is_string() && cached["refreshToken"].is_string());
    assert!(
        !stderr.contains(cached["accessToken"].as_str().unwrap()),
        "no token on screen"
    );

    // Without a session of that name, the error lists the ones there are.
    let missing = Command::new(env!("CARGO_BIN_EXE_bastionless"))
        .args(["login", "--sso-session", "nope", "--no-browser"])
        .env("HOME", home.path())
        .env("AWS_CONFIG_FILE", sim.config_file())
        .env("AWS_SHARED_CREDENTIALS_FILE", sim.credentials_file())
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("known: acme"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}
