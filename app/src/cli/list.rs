//! `bastionless list`: every instance every profile can see, as an aligned table or as JSON.
//!
//! It waits for one full inventory refresh, prints the hosts on stdout and every problem on
//! stderr, so `bastionless list --json | jq` gets clean JSON while a broken profile is still
//! reported. Like the app, it shows what the working profiles found even when others fail, and it
//! fails only when no profile could be listed at all.

use anyhow::{Context as _, bail};
use bastionless_core::engine::{Engine, EngineConfig, ProfileState, Snapshot};
use bastionless_core::inventory::Host;
use bastionless_core::profiles::AwsFiles;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

/// How long `list` waits for the slowest profile before printing what it has.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print a JSON array of hosts (the full host records) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &ListArgs, files: &AwsFiles) -> anyhow::Result<ExitCode> {
    let engine = Engine::start(EngineConfig {
        aws_files: files.clone(),
    })
    .context("could not start the background engine")?;
    let snapshot = engine.wait_until(REFRESH_TIMEOUT, |s| !s.refreshing);
    report_problems(&snapshot, &mut io::stderr().lock()).context("could not write to stderr")?;
    ensure_some_profile_worked(&snapshot, files)?;

    let mut stdout = io::stdout().lock();
    let printed = if args.json {
        write_json(&snapshot.hosts, &mut stdout)
    } else {
        stdout.write_all(format_table(&snapshot.hosts).as_bytes())
    };
    match printed.and_then(|()| stdout.flush()) {
        // The reader went away (`| head`): what it wanted was printed.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("could not write to stdout")?,
    }
    if snapshot.hosts.is_empty() && !args.json {
        eprintln!("No instances found.");
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per failed or unanswered profile (`profile NAME: error`) and per file warning.
fn report_problems(snapshot: &Snapshot, err: &mut impl Write) -> io::Result<()> {
    for warning in &snapshot.warnings {
        writeln!(err, "warning: {warning}")?;
    }
    for profile in &snapshot.profiles {
        match &profile.state {
            ProfileState::Failed { error } => writeln!(err, "profile {}: {error}", profile.name)?,
            ProfileState::Loading => writeln!(
                err,
                "profile {}: no answer within {} s; its hosts are missing. Try again, or run with \
                 RUST_LOG=debug to see where it stops.",
                profile.name,
                REFRESH_TIMEOUT.as_secs()
            )?,
            ProfileState::Ready { .. } => {}
        }
    }
    Ok(())
}

/// Succeeds when at least one profile was listed; otherwise says why nothing could be.
fn ensure_some_profile_worked(snapshot: &Snapshot, files: &AwsFiles) -> anyhow::Result<()> {
    let worked = snapshot
        .profiles
        .iter()
        .filter(|p| matches!(p.state, ProfileState::Ready { .. }))
        .count();
    if worked > 0 {
        return Ok(());
    }
    if snapshot.profiles.is_empty() {
        bail!(
            "no AWS profiles found in {} or {}. Add one with `aws configure`, point \
             AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at your files, or try `bastionless \
             list --demo`.",
            files.config.display(),
            files.credentials.display()
        );
    }
    bail!(
        "none of the {} profiles could be listed; fix the problems reported above and try again.",
        snapshot.profiles.len()
    )
}

fn write_json(hosts: &[Host], out: &mut impl Write) -> io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, hosts)?;
    writeln!(out)
}

/// The hosts as a table with one header line and columns padded to their widest cell.
fn format_table(hosts: &[Host]) -> String {
    const HEADERS: [&str; 8] = [
        "NAME",
        "INSTANCE ID",
        "PROFILE",
        "ACCOUNT",
        "REGION",
        "STATE",
        "PLATFORM",
        "PRIVATE IP",
    ];
    if hosts.is_empty() {
        return String::new();
    }
    let rows: Vec<[&str; 8]> = hosts
        .iter()
        .map(|h| {
            [
                h.name.as_deref().unwrap_or("-"),
                &h.instance_id,
                &h.profile,
                &h.account_id,
                &h.region,
                h.state.as_str(),
                h.platform.as_str(),
                h.private_ip.as_deref().unwrap_or("-"),
            ]
        })
        .collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut table = String::new();
    for row in std::iter::once(&HEADERS).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        table.push_str(line.join("  ").trim_end());
        table.push('\n');
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use bastionless_core::engine::ProfileStatus;
    use bastionless_core::inventory::{InstanceState, Platform};

    fn host(name: Option<&str>, id: &str, ip: Option<&str>) -> Host {
        Host {
            instance_id: id.to_owned(),
            name: name.map(str::to_owned),
            tags: Default::default(),
            state: InstanceState::Running,
            platform: Platform::Linux,
            private_ip: ip.map(str::to_owned),
            public_ip: None,
            vpc_id: None,
            subnet_id: None,
            availability_zone: None,
            key_name: None,
            image: None,
            profile: "prod".to_owned(),
            account_id: "111122223333".to_owned(),
            region: "eu-west-1".to_owned(),
        }
    }

    fn profile(name: &str, state: ProfileState) -> ProfileStatus {
        ProfileStatus {
            name: name.to_owned(),
            region: None,
            account_id: None,
            state,
            warnings: Vec::new(),
        }
    }

    fn snapshot(profiles: Vec<ProfileStatus>) -> Snapshot {
        Snapshot {
            profiles,
            ..Snapshot::default()
        }
    }

    fn files() -> AwsFiles {
        AwsFiles::at("/home/me/.aws/config", "/home/me/.aws/credentials")
    }

    #[test]
    fn table_columns_line_up_under_their_headers() {
        let hosts = [
            host(
                Some("a-rather-long-name"),
                "i-0123456789abcdef0",
                Some("10.0.0.1"),
            ),
            host(None, "i-1", None),
        ];
        let table = format_table(&hosts);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 3, "{table}");
        let id_column = lines[0].find("INSTANCE ID").expect("header");
        assert_eq!(
            lines[1].find("i-0123456789abcdef0"),
            Some(id_column),
            "{table}"
        );
        assert_eq!(lines[2].find("i-1"), Some(id_column), "{table}");
        let ip_column = lines[0].find("PRIVATE IP").expect("header");
        assert_eq!(lines[1].find("10.0.0.1"), Some(ip_column), "{table}");
        assert!(
            lines[2].starts_with("- "),
            "a nameless host shows a dash: {table}"
        );
        assert!(
            lines[2].ends_with('-'),
            "a host without an IP shows a dash: {table}"
        );
        assert!(lines[1].contains("running") && lines[1].contains("linux"));
    }

    #[test]
    fn no_hosts_print_no_table() {
        assert_eq!(format_table(&[]), "");
    }

    #[test]
    fn json_is_the_array_of_host_records() {
        let mut out = Vec::new();
        write_json(&[host(Some("web"), "i-1", Some("10.0.0.1"))], &mut out).expect("writes");
        let parsed: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(parsed[0]["instance_id"], "i-1");
        assert_eq!(parsed[0]["name"], "web");
        assert_eq!(parsed[0]["state"], "running");
        assert_eq!(parsed[0]["account_id"], "111122223333");
    }

    #[test]
    fn failed_and_unanswered_profiles_and_warnings_are_each_reported() {
        let mut s = snapshot(vec![
            profile("good", ProfileState::Ready { hosts: 1 }),
            profile(
                "bad",
                ProfileState::Failed {
                    error: "AuthFailure: nope".to_owned(),
                },
            ),
            profile("slow", ProfileState::Loading),
        ]);
        s.warnings.push("config line 1: stray text".to_owned());
        let mut err = Vec::new();
        report_problems(&s, &mut err).expect("writes");
        let err = String::from_utf8(err).expect("utf-8");
        assert!(
            err.contains("warning: config line 1: stray text\n"),
            "{err}"
        );
        assert!(err.contains("profile bad: AuthFailure: nope\n"), "{err}");
        assert!(err.contains("profile slow: no answer within 60 s"), "{err}");
        assert!(!err.contains("profile good"), "{err}");
    }

    #[test]
    fn one_working_profile_is_enough() {
        let s = snapshot(vec![
            profile("good", ProfileState::Ready { hosts: 0 }),
            profile(
                "bad",
                ProfileState::Failed {
                    error: "x".to_owned(),
                },
            ),
        ]);
        assert!(ensure_some_profile_worked(&s, &files()).is_ok());
    }

    #[test]
    fn all_profiles_failing_is_an_error() {
        let s = snapshot(vec![
            profile(
                "bad",
                ProfileState::Failed {
                    error: "x".to_owned(),
                },
            ),
            profile("slow", ProfileState::Loading),
        ]);
        let error = ensure_some_profile_worked(&s, &files())
            .expect_err("fails")
            .to_string();
        assert!(error.contains("none of the 2 profiles"), "{error}");
    }

    #[test]
    fn no_profiles_at_all_names_the_files_and_what_to_do() {
        let error = ensure_some_profile_worked(&snapshot(vec![]), &files())
            .expect_err("fails")
            .to_string();
        assert!(error.contains("/home/me/.aws/config"), "{error}");
        assert!(error.contains("aws configure"), "{error}");
    }
}
