//! `bastionless list`, run as the built binary against the simulator: what a user or a script
//! sees on stdout, stderr and in the exit code.

use bastionless_sim::{BackgroundSimulator, Scenario};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The binary with none of the caller's AWS settings, so only the files a test names count.
fn bastionless(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bastionless"));
    command.args(args);
    for var in [
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
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
    command
}

/// Runs `list --json` on the given files.
fn list_json(config: &Path, credentials: &Path) -> Output {
    bastionless(&["list", "--json"])
        .env("AWS_CONFIG_FILE", config)
        .env("AWS_SHARED_CREDENTIALS_FILE", credentials)
        .output()
        .expect("the binary runs")
}

fn stdout_hosts(output: &Output) -> Vec<Value> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let parsed: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{stdout}\nstderr:\n{}",
            stderr(output)
        )
    });
    parsed.as_array().expect("a JSON array").clone()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn field<'a>(host: &'a Value, name: &str) -> &'a str {
    host[name]
        .as_str()
        .unwrap_or_else(|| panic!("host has no string `{name}`: {host}"))
}

/// The profiles of the hosts listed.
fn profiles_listed(hosts: &[Value]) -> BTreeSet<String> {
    hosts
        .iter()
        .map(|h| field(h, "profile").to_owned())
        .collect()
}

/// A copy of the simulator's files in a temporary directory, for a test to break.
struct EditableFiles {
    _dir: tempfile::TempDir,
    config: PathBuf,
    credentials: PathBuf,
}

impl EditableFiles {
    fn copy_of(simulator: &BackgroundSimulator) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let config = dir.path().join("config");
        let credentials = dir.path().join("credentials");
        std::fs::copy(simulator.config_file(), &config).expect("config copied");
        std::fs::copy(simulator.credentials_file(), &credentials).expect("credentials copied");
        Self {
            _dir: dir,
            config,
            credentials,
        }
    }

    /// Appends `text` to the config file and returns the 1-based number of its first line.
    fn append_to_config(&self, text: &str) -> usize {
        let mut config = std::fs::read_to_string(&self.config).expect("config readable");
        if !config.is_empty() && !config.ends_with('\n') {
            config.push('\n');
        }
        let first_line = config.lines().count() + 1;
        config.push_str(text);
        std::fs::write(&self.config, config).expect("config written");
        first_line
    }
}

/// Replaces `aws_secret_access_key` in `profile`'s section (`[NAME]` or `[profile NAME]`) and
/// says whether there was one to replace.
fn replace_secret(text: &str, profile: &str, secret: &str) -> (String, bool) {
    let headers = [format!("[{profile}]"), format!("[profile {profile}]")];
    let mut in_profile = false;
    let mut replaced = false;
    let mut out = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            in_profile = headers.iter().any(|h| h == trimmed);
        }
        let is_secret = trimmed
            .split_once('=')
            .is_some_and(|(key, _)| key.trim().eq_ignore_ascii_case("aws_secret_access_key"));
        if in_profile && is_secret {
            out.push_str(&format!("aws_secret_access_key = {secret}\n"));
            replaced = true;
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    (out, replaced)
}

#[test]
fn list_demo_json_lists_every_demo_instance_with_its_details() {
    let scenario = Scenario::demo();
    let output = bastionless(&["list", "--demo", "--json"])
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "exit {:?}; stderr:\n{}",
        output.status,
        stderr(&output)
    );
    let hosts = stdout_hosts(&output);

    let mut expected_ids = BTreeSet::new();
    for instance in &scenario.instances {
        if instance.state.name() == "terminated" {
            continue;
        }
        let placement = scenario
            .placement(instance)
            .expect("demo instances are placed");
        let covering_profiles: BTreeSet<&str> = scenario
            .profiles
            .iter()
            .filter(|p| p.account == placement.account && p.region == placement.region)
            .map(|p| p.name.as_str())
            .collect();
        if covering_profiles.is_empty() {
            continue;
        }
        expected_ids.insert(instance.instance_id.clone());
        let listed: Vec<&Value> = hosts
            .iter()
            .filter(|h| field(h, "instance_id") == instance.instance_id)
            .collect();
        assert!(
            !listed.is_empty(),
            "{} ({:?}) is missing",
            instance.instance_id,
            instance.name()
        );
        for host in listed {
            assert_eq!(host["name"].as_str(), instance.name(), "{host}");
            assert_eq!(
                field(host, "private_ip"),
                instance.private_ip.to_string(),
                "{host}"
            );
            assert_eq!(
                host["public_ip"].as_str(),
                instance.public_ip.map(|ip| ip.to_string()).as_deref()
            );
            assert_eq!(field(host, "state"), instance.state.name(), "{host}");
            assert_eq!(field(host, "region"), placement.region, "{host}");
            assert_eq!(field(host, "account_id"), placement.account, "{host}");
            assert_eq!(field(host, "vpc_id"), placement.vpc.id, "{host}");
            assert_eq!(field(host, "subnet_id"), placement.subnet.id, "{host}");
            let platform = format!("{:?}", instance.platform).to_lowercase();
            assert_eq!(field(host, "platform"), platform, "{host}");
            assert!(
                covering_profiles.contains(field(host, "profile")),
                "{host} listed through a foreign profile"
            );
            for (key, value) in &instance.tags {
                assert_eq!(host["tags"][key].as_str(), Some(value.as_str()), "{host}");
            }
        }
    }
    assert!(
        expected_ids.len() >= 40,
        "the demo should show at least 40 instances"
    );
    let listed_ids: BTreeSet<String> = hosts
        .iter()
        .map(|h| field(h, "instance_id").to_owned())
        .collect();
    assert_eq!(
        listed_ids, expected_ids,
        "the listing holds exactly the demo's instances"
    );
}

#[test]
fn list_demo_prints_an_aligned_table_by_default() {
    let output = bastionless(&["--demo", "list"])
        .output()
        .expect("the binary runs");
    assert!(
        output.status.success(),
        "exit {:?}; stderr:\n{}",
        output.status,
        stderr(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    let header = lines.first().expect("a header line");
    for title in [
        "NAME",
        "INSTANCE ID",
        "PROFILE",
        "ACCOUNT",
        "REGION",
        "STATE",
        "PLATFORM",
        "PRIVATE IP",
    ] {
        assert!(header.contains(title), "{header}");
    }
    let id_column = header.find("INSTANCE ID").expect("instance id column");
    let web = lines
        .iter()
        .find(|l| l.starts_with("web-eic-1 "))
        .expect("web-eic-1 is listed");
    assert_eq!(&web[id_column..id_column + 2], "i-", "{stdout}");
    assert!(
        web.contains(" 10.10.1.21") && web.contains(" running "),
        "{web}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("win-ssm-1 ") && l.contains("windows")),
        "{stdout}"
    );
}

#[test]
fn broken_profiles_are_reported_with_file_and_line_and_the_others_still_list() {
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let files = EditableFiles::copy_of(&simulator);
    let first = files.append_to_config(
        "[profile garbled]\nregion = us-east-1\nthis line is garbage\n\n[profile regionless]\noutput = json\n",
    );
    let output = list_json(&files.config, &files.credentials);
    let err = stderr(&output);
    assert!(
        output.status.success(),
        "exit {:?}; stderr:\n{err}",
        output.status
    );

    let garbled = err
        .lines()
        .find(|l| l.starts_with("profile garbled: "))
        .unwrap_or_else(|| panic!("{err}"));
    let garbage_line = format!("{} line {}", files.config.display(), first + 2);
    assert!(
        garbled.contains(&garbage_line),
        "names the file and line ({garbage_line}): {garbled}"
    );
    let regionless = err
        .lines()
        .find(|l| l.starts_with("profile regionless: "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(regionless.contains("region"), "{regionless}");
    assert!(
        regionless.contains("[profile regionless]"),
        "says where to add it: {regionless}"
    );

    let hosts = stdout_hosts(&output);
    let listed = profiles_listed(&hosts);
    for profile in ["prod", "prod-eu", "staging", "sandbox"] {
        assert!(
            listed.contains(profile),
            "{profile} still lists its hosts; listed: {listed:?}\n{err}"
        );
    }
    assert!(!listed.contains("garbled") && !listed.contains("regionless"));
}

#[test]
fn a_wrong_secret_fails_only_its_profile() {
    let simulator = BackgroundSimulator::start(Scenario::demo()).expect("simulator starts");
    let files = EditableFiles::copy_of(&simulator);
    let wrong = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
    let mut replaced_any = false;
    for path in [&files.credentials, &files.config] {
        let text = std::fs::read_to_string(path).expect("readable");
        let (edited, replaced) = replace_secret(&text, "staging", wrong);
        std::fs::write(path, edited).expect("written");
        replaced_any |= replaced;
    }
    assert!(
        replaced_any,
        "the simulator's files hold a secret for profile staging"
    );

    let output = list_json(&files.config, &files.credentials);
    let err = stderr(&output);
    assert!(
        output.status.success(),
        "exit {:?}; stderr:\n{err}",
        output.status
    );
    let staging = err
        .lines()
        .find(|l| l.starts_with("profile staging: "))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(
        ["AuthFailure", "SignatureDoesNotMatch"]
            .iter()
            .any(|code| staging.contains(code)),
        "says AWS refused the signature: {staging}"
    );
    assert!(
        !staging.contains(wrong),
        "never echoes the secret: {staging}"
    );

    let listed = profiles_listed(&stdout_hosts(&output));
    assert!(!listed.contains("staging"), "{listed:?}");
    for profile in ["prod", "prod-eu", "sandbox"] {
        assert!(
            listed.contains(profile),
            "{profile} still lists its hosts; listed: {listed:?}\n{err}"
        );
    }
}

#[test]
fn list_fails_with_a_reason_when_no_profile_works() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let config = dir.path().join("config");
    let credentials = dir.path().join("credentials");
    std::fs::write(&config, "[profile regionless]\noutput = json\n").expect("written");
    std::fs::write(&credentials, "").expect("written");

    let output = list_json(&config, &credentials);
    let err = stderr(&output);
    assert!(
        !output.status.success(),
        "exit {:?}; stderr:\n{err}",
        output.status
    );
    assert!(err.contains("profile regionless: "), "{err}");
    assert!(
        err.contains("none of the 1 profiles could be listed"),
        "{err}"
    );
    assert!(
        output.stdout.is_empty(),
        "nothing on stdout: {}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn list_with_no_aws_files_says_how_to_add_a_profile() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let output = list_json(&dir.path().join("config"), &dir.path().join("credentials"));
    let err = stderr(&output);
    assert!(
        !output.status.success(),
        "exit {:?}; stderr:\n{err}",
        output.status
    );
    assert!(err.contains("no AWS profiles found"), "{err}");
    assert!(err.contains("aws configure"), "{err}");
}
