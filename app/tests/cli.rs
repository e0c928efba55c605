//! `bastionless list` and `bastionless doctor`, run as the built binary against the simulator:
//! what a user or a script sees on stdout, stderr and in the exit code.

use bastionless_sim::{BackgroundSimulator, Scenario};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The binary with none of the caller's AWS settings, so only the files a test names count,
/// and a host cache of its own, so no run sees another's hosts (or the user's).
fn bastionless(args: &[&str]) -> Command {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let cache_home = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-cache-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    let mut command = Command::new(env!("CARGO_BIN_EXE_bastionless"));
    command.args(args).env("XDG_CACHE_HOME", cache_home);
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

/// The profile that lists an account's hosts: the first of its profiles by name (no
/// `AWS_PROFILE` here), which scans every region the account has enabled.
fn scanning_profile<'a>(scenario: &'a Scenario, account: &str) -> &'a str {
    scenario
        .profiles
        .iter()
        .filter(|p| p.account == account)
        .map(|p| p.name.as_str())
        .min()
        .expect("every demo account has a profile")
}

#[test]
fn list_demo_json_lists_every_demo_instance_in_every_enabled_region_with_its_details() {
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
    assert!(
        !stderr(&output).contains("warning"),
        "every part of every scan works: {}",
        stderr(&output)
    );
    let hosts = stdout_hosts(&output);

    let mut expected_ids = BTreeSet::new();
    let mut away_from_home = 0;
    for instance in &scenario.instances {
        if instance.state.name() == "terminated" {
            continue;
        }
        let placement = scenario
            .placement(instance)
            .expect("demo instances are placed");
        if !scenario
            .profiles
            .iter()
            .any(|p| p.account == placement.account && p.region == placement.region)
        {
            away_from_home += 1;
        }
        expected_ids.insert(instance.instance_id.clone());
        let listed: Vec<&Value> = hosts
            .iter()
            .filter(|h| field(h, "instance_id") == instance.instance_id)
            .collect();
        assert_eq!(
            listed.len(),
            1,
            "{} ({:?}) is listed once",
            instance.instance_id,
            instance.name()
        );
        let host = listed[0];
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
        assert_eq!(
            field(host, "profile"),
            scanning_profile(&scenario, placement.account),
            "{host}"
        );
        for (key, value) in &instance.tags {
            assert_eq!(host["tags"][key].as_str(), Some(value.as_str()), "{host}");
        }
        let groups: Vec<&str> = host["security_group_ids"]
            .as_array()
            .expect("security groups")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(groups, instance.security_groups, "{host}");
        assert_eq!(host["stale"], false, "{host}");
        let expected_port = if platform == "windows" { 3389 } else { 22 };
        assert_eq!(host["route"]["port"], expected_port, "{host}");
        assert_eq!(
            host["route"]["routes"].as_array().map(Vec::len),
            Some(3),
            "{host}"
        );
    }
    assert!(
        expected_ids.len() >= 40,
        "the demo should show at least 40 instances"
    );
    assert_eq!(
        away_from_home, 4,
        "hosts where no profile calls home are listed too"
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
        "ROUTE",
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
    let route_column = header.find("ROUTE").expect("route column");
    assert_eq!(web[route_column..].trim_end(), "EIC", "{stdout}");
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
    assert_eq!(
        regions_listed(&hosts),
        BTreeSet::from(["eu-south-1", "eu-west-1", "us-east-1", "us-west-2"].map(String::from)),
        "every region of every account is still listed\n{err}"
    );
    let listed = profiles_listed(&hosts);
    assert_eq!(
        listed,
        BTreeSet::from(["prod".to_owned(), "sandbox".to_owned()]),
        "each account is listed through its first profile\n{err}"
    );
}

/// The regions of the hosts listed.
fn regions_listed(hosts: &[Value]) -> BTreeSet<String> {
    hosts
        .iter()
        .map(|h| field(h, "region").to_owned())
        .collect()
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

    // The staging account is still listed, in every region, through sandbox.
    let hosts = stdout_hosts(&output);
    let staging_hosts: Vec<&Value> = hosts
        .iter()
        .filter(|h| field(h, "account_id") == "444455556666")
        .collect();
    assert!(
        staging_hosts
            .iter()
            .any(|h| field(h, "region") == "us-west-2"),
        "staging's home region is scanned by sandbox\n{err}"
    );
    assert!(
        staging_hosts
            .iter()
            .all(|h| field(h, "profile") == "sandbox"),
        "{staging_hosts:?}"
    );
    assert!(!profiles_listed(&hosts).contains("staging"));
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

/// Runs `bastionless --demo ARGS` and returns stdout, stderr and whether it succeeded.
fn demo(args: &[&str]) -> (String, String, bool) {
    let mut all = vec!["--demo"];
    all.extend_from_slice(args);
    let output = bastionless(&all).output().expect("the binary runs");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr(&output),
        output.status.success(),
    )
}

#[test]
fn list_narrows_by_profile_region_and_filter_text() {
    let ids = |args: &[&str]| -> BTreeSet<String> {
        let mut all = vec!["list", "--json"];
        all.extend_from_slice(args);
        let (stdout, err, ok) = demo(&all);
        assert!(ok, "{err}");
        let hosts: Value = serde_json::from_str(&stdout).expect("JSON");
        hosts
            .as_array()
            .expect("an array")
            .iter()
            .map(|h| field(h, "name").to_owned())
            .collect()
    };
    let milan = BTreeSet::from(["api-milan-1".to_owned(), "worker-milan-1".to_owned()]);
    assert_eq!(ids(&["--region", "eu-south-1"]), milan);
    assert_eq!(ids(&["--filter", "MILAN"]), milan);
    assert_eq!(
        ids(&["--filter", "milan worker"]),
        BTreeSet::from(["worker-milan-1".to_owned()])
    );
    // prod-eu reaches acme-prod: every region of it, none of acme-staging's.
    let prod_eu = ids(&["--profile", "prod-eu"]);
    assert!(
        prod_eu.contains("web-eic-1") && prod_eu.contains("api-milan-1"),
        "{prod_eu:?}"
    );
    assert!(!prod_eu.contains("web-stg-1"), "{prod_eu:?}");
    assert!(ids(&["--profile", "staging", "--filter", "milan"]).is_empty());
}

#[test]
fn doctor_web_eic_1_names_the_endpoint_and_the_rules_that_let_ssh_through() {
    let (stdout, err, ok) = demo(&["doctor", "web-eic-1"]);
    assert!(ok, "a ready route exits 0: {stdout}{err}");
    assert!(
        stdout.starts_with("web-eic-1 (i-06133c3aacf6f15d2), account 111122223333, us-east-1, running: SSH (port 22)\n"),
        "{stdout}"
    );
    for expected in [
        "1. EIC: ready\n",
        "   - the endpoint for vpc-06701fdef60f5dd0d is eice-0c7919e50564c6f7a in subnet-096e388a9429c5ce6 (create-complete)\n",
        "   - sg-0925b5aa79f5c0afe (eice-prod-core) lets 22 out to 10.10.0.0/16 (\"SSH into the VPC\")\n",
        "   - sg-03bdce9de075022f4 (web-prod) admits 22 from sg-0925b5aa79f5c0afe (\"SSH from EC2 Instance Connect Endpoint\"), eice-0c7919e50564c6f7a's group\n",
        "2. SSM: blocked\n   - not managed by Systems Manager",
        "3. Direct: blocked\n   - web-eic-1 has no public IPv4 address\n",
        "Use EIC.\n",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn doctor_app_ssm_1_chooses_session_manager_and_says_its_vpc_has_no_endpoint() {
    let (stdout, err, ok) = demo(&["doctor", "app-ssm-1"]);
    assert!(ok, "{stdout}{err}");
    for expected in [
        "1. SSM: ready\n   - SSM Agent 3.3.1142.0 is online and forwards several connections at once\n",
        "2. EIC: blocked\n   - no EC2 Instance Connect Endpoint in vpc-0361ee1da6c087d6d (create one in that VPC",
        "Use SSM.\n",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
    // An agent too old to forward ports, in a region no profile calls home.
    let (stdout, err, ok) = demo(&["doctor", "win-stg-eu-1"]);
    assert!(!ok, "{stdout}{err}");
    assert!(
        stdout.contains("SSM: blocked\n   - SSM Agent 2.3.444.0 cannot forward ports (that needs 2.3.672.0 or later)"),
        "{stdout}"
    );
}

#[test]
fn doctor_cache_eu_1_names_the_missing_rules_on_both_sides() {
    let (stdout, err, ok) = demo(&["doctor", "cache-eu-1"]);
    assert!(!ok, "{stdout}{err}");
    for expected in [
        "EIC: blocked\n",
        "   - the endpoint for vpc-06e795059673ff198 is eice-0fa1493f6045a261e in subnet-0abe13d4d70c7b9fe (create-complete)\n",
        "   - eice-0fa1493f6045a261e's group sg-0bbbd3e8dc4178d3e (eice-prod-eu) has no outbound 22 to 10.30.1.81 or to the instance's group sg-02966ebe9e4003273 (cache-eu); add an outbound rule for TCP 22\n",
        "   - sg-02966ebe9e4003273 (cache-eu) has no inbound 22 from eice-0fa1493f6045a261e's group sg-0bbbd3e8dc4178d3e (eice-prod-eu); add an inbound rule for TCP 22 from that group\n",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn doctor_stopped_1_says_it_is_stopped_and_a_port_can_be_asked_for() {
    let (stdout, err, ok) = demo(&["doctor", "stopped-1", "--port", "8080"]);
    assert!(!ok, "{stdout}{err}");
    assert!(stdout.contains(": port 8080\n"), "{stdout}");
    for method in ["EIC", "SSM", "Direct"] {
        assert!(
            stdout.contains(&format!(
                "{method}: blocked\n   - stopped-1 is stopped; start it, then refresh\n"
            )),
            "{method} in:\n{stdout}"
        );
    }
    assert!(
        stdout.ends_with("No route can work now: see the reasons above.\n"),
        "{stdout}"
    );

    let (_, err, ok) = demo(&["doctor", "no-such-host"]);
    assert!(!ok);
    assert!(err.contains("no host matches `no-such-host`"), "{err}");
}
