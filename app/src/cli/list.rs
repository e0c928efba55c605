//! `bastionless list`: every instance every profile can see, in every region its account has
//! enabled, as an aligned table or as JSON, each with its best route.
//!
//! It waits for one full inventory refresh, prints the hosts on stdout and every problem on
//! stderr, so `bastionless list --json | jq` gets clean JSON while a broken profile is still
//! reported. Like the app, it shows what the working profiles found even when others fail, and it
//! fails only when no profile could be listed at all. `--filter` is the app's search box.
//!
//! The JSON is the array of host records, each with a `route` object added (its purpose and
//! port, the best method, and every route with its verdict and reasons); fields are only ever
//! added, never renamed, so scripts keep working.

use crate::aws_source::AwsSource;
use crate::cli::target;
use anyhow::{Context as _, bail};
use bastionless_core::engine::{ProfileState, Snapshot};
use bastionless_core::inventory::{Host, HostQuery};
use bastionless_core::profiles::AwsFiles;
use bastionless_core::route::RouteReport;
use std::io::{self, Write};
use std::process::ExitCode;
use std::time::Duration;

/// How long `list` waits for the slowest profile before printing what it has.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print a JSON array of hosts (the full host records, each with its routes) instead of a
    /// table.
    #[arg(long)]
    pub json: bool,
    /// Only hosts this profile can reach (its account's, in any region).
    #[arg(long)]
    pub profile: Option<String>,
    /// Only hosts in this region (and scan only it).
    #[arg(long)]
    pub region: Option<String>,
    /// Only hosts whose name, instance id, IPs, profile, region or tag values contain every word
    /// of TEXT (ignoring case), as the app's search box does; `tag:Env=prod`, `state:running`,
    /// `os:windows`, `route:ssm`, `account:…`, `region:…` and `profile:…` ask one field.
    #[arg(long, value_name = "TEXT")]
    pub filter: Option<String>,
}

pub fn run(args: &ListArgs, source: &AwsSource) -> anyhow::Result<ExitCode> {
    let (_engine, snapshot) = target::inventory(source, args.region.as_deref())?;
    report_problems(&snapshot, &mut io::stderr().lock()).context("could not write to stderr")?;
    ensure_some_profile_worked(&snapshot, source.files())?;

    let hosts = selected(&snapshot, args);
    let mut stdout = io::stdout().lock();
    let printed = if args.json {
        write_json(&snapshot, &hosts, &mut stdout)
    } else {
        stdout.write_all(format_table(&snapshot, &hosts).as_bytes())
    };
    match printed.and_then(|()| stdout.flush()) {
        // The reader went away (`| head`): what it wanted was printed.
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("could not write to stdout")?,
    }
    let stale = hosts.iter().filter(|h| h.stale).count();
    if stale > 0 {
        eprintln!(
            "{stale} of these hosts come from an earlier scan (their region could not be scanned \
             now; see above) and may have changed."
        );
    }
    if hosts.is_empty() && !args.json {
        if snapshot.hosts.is_empty() {
            eprintln!("No instances found.");
        } else {
            eprintln!(
                "None of the {} instances found matches --profile / --region / --filter.",
                snapshot.hosts.len()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The hosts `args` keep, in snapshot order.
fn selected<'a>(snapshot: &'a Snapshot, args: &ListArgs) -> Vec<&'a Host> {
    let query = HostQuery::parse(args.filter.as_deref().unwrap_or_default());
    snapshot
        .hosts
        .iter()
        .filter(|h| {
            args.profile
                .as_ref()
                .is_none_or(|p| snapshot.profiles_for(h).any(|q| q == p))
        })
        .filter(|h| args.region.as_ref().is_none_or(|r| &h.region == r))
        .filter(|h| snapshot.matches(&query, h))
        .collect()
}

/// One line per failed or unanswered profile (`profile NAME: error`), per part of a profile's
/// scan that failed (a region, endpoints, security groups), and per file warning.
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
        for warning in &profile.warnings {
            writeln!(err, "warning: profile {}: {warning}", profile.name)?;
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

/// One host as `list --json` prints it: the host record, plus its routes.
#[derive(serde::Serialize)]
struct ListedHost<'a> {
    #[serde(flatten)]
    host: &'a Host,
    route: Option<&'a RouteReport>,
}

fn write_json(snapshot: &Snapshot, hosts: &[&Host], out: &mut impl Write) -> io::Result<()> {
    let listed: Vec<ListedHost<'_>> = hosts
        .iter()
        .map(|host| ListedHost {
            host,
            route: snapshot.route(host),
        })
        .collect();
    serde_json::to_writer_pretty(&mut *out, &listed)?;
    writeln!(out)
}

/// The hosts as a table with one header line and columns padded to their widest cell.
fn format_table(snapshot: &Snapshot, hosts: &[&Host]) -> String {
    const HEADERS: [&str; 9] = [
        "NAME",
        "INSTANCE ID",
        "PROFILE",
        "ACCOUNT",
        "REGION",
        "STATE",
        "PLATFORM",
        "PRIVATE IP",
        "ROUTE",
    ];
    if hosts.is_empty() {
        return String::new();
    }
    let badges: Vec<String> = hosts
        .iter()
        .map(|h| {
            snapshot
                .route(h)
                .map_or_else(|| "-".to_owned(), RouteReport::badge)
        })
        .collect();
    let rows: Vec<[&str; 9]> = hosts
        .iter()
        .zip(&badges)
        .map(|(h, badge)| {
            [
                h.name.as_deref().unwrap_or("-"),
                &h.instance_id,
                &h.profile,
                &h.account_id,
                &h.region,
                h.state.as_str(),
                h.platform.as_str(),
                h.private_ip.as_deref().unwrap_or("-"),
                badge,
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
    use bastionless_core::route::{self, Purpose, RouteFacts, SsmFacts};

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
            security_group_ids: Vec::new(),
            profile: "prod".to_owned(),
            account_id: "111122223333".to_owned(),
            region: "eu-west-1".to_owned(),
            stale: false,
        }
    }

    fn profile(name: &str, state: ProfileState) -> ProfileStatus {
        ProfileStatus {
            name: name.to_owned(),
            region: None,
            account_id: None,
            same_account_as: None,
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

    /// A snapshot of `hosts`, each with the routes the engine would give it before any region
    /// was scanned.
    fn with_hosts(hosts: Vec<Host>) -> Snapshot {
        let mut s = snapshot(vec![
            ProfileStatus {
                account_id: Some("111122223333".to_owned()),
                ..profile("prod", ProfileState::Ready { hosts: 2 })
            },
            ProfileStatus {
                account_id: Some("111122223333".to_owned()),
                ..profile("prod-eu", ProfileState::Ready { hosts: 0 })
            },
            profile("other", ProfileState::Ready { hosts: 0 }),
        ]);
        for host in &hosts {
            let facts = RouteFacts {
                region: None,
                ssm: SsmFacts::Unknown("not read"),
            };
            std::sync::Arc::make_mut(&mut s.routes).insert(
                host.key(),
                route::assess(host, Purpose::for_host(host), &facts),
            );
        }
        s.hosts = hosts.into();
        s
    }

    fn files() -> AwsFiles {
        AwsFiles::at("/home/me/.aws/config", "/home/me/.aws/credentials")
    }

    fn args(profile: Option<&str>, region: Option<&str>, filter: Option<&str>) -> ListArgs {
        ListArgs {
            json: false,
            profile: profile.map(str::to_owned),
            region: region.map(str::to_owned),
            filter: filter.map(str::to_owned),
        }
    }

    #[test]
    fn table_columns_line_up_under_their_headers() {
        let s = with_hosts(vec![
            host(
                Some("a-rather-long-name"),
                "i-0123456789abcdef0",
                Some("10.0.0.1"),
            ),
            host(None, "i-1", None),
        ]);
        let hosts: Vec<&Host> = s.hosts.iter().collect();
        let table = format_table(&s, &hosts);
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
        let route_column = lines[0].find("ROUTE").expect("header");
        assert_eq!(lines[1].find("EIC?"), Some(route_column), "{table}");
        assert!(
            lines[2].starts_with("- "),
            "a nameless host shows a dash: {table}"
        );
        assert!(
            lines[2][ip_column..].starts_with("- "),
            "a host without an IP shows a dash: {table}"
        );
        assert!(lines[1].contains("running") && lines[1].contains("linux"));
    }

    #[test]
    fn no_hosts_print_no_table() {
        assert_eq!(format_table(&Snapshot::default(), &[]), "");
    }

    #[test]
    fn json_is_the_array_of_host_records_with_their_routes_added() {
        let s = with_hosts(vec![host(Some("web"), "i-1", Some("10.0.0.1"))]);
        let mut out = Vec::new();
        write_json(&s, &[&s.hosts[0]], &mut out).expect("writes");
        let parsed: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        assert_eq!(parsed[0]["instance_id"], "i-1");
        assert_eq!(parsed[0]["name"], "web");
        assert_eq!(parsed[0]["state"], "running");
        assert_eq!(parsed[0]["account_id"], "111122223333");
        assert_eq!(parsed[0]["stale"], false);
        assert_eq!(parsed[0]["route"]["port"], 22);
        assert_eq!(parsed[0]["route"]["best"], "eic");
        assert_eq!(parsed[0]["route"]["routes"][0]["verdict"], "unsure");
    }

    #[test]
    fn profile_region_and_filter_narrow_the_listing() {
        let mut eu = host(Some("web-eu"), "i-1", Some("10.0.0.1"));
        eu.tags.insert("Team".to_owned(), "Payments".to_owned());
        let mut us = host(Some("web-us"), "i-2", Some("10.0.0.2"));
        us.region = "us-east-1".to_owned();
        let mut foreign = host(Some("db"), "i-3", None);
        foreign.profile = "other".to_owned();
        foreign.account_id = "444455556666".to_owned();
        let s = with_hosts(vec![eu, us, foreign]);
        let ids = |args: ListArgs| -> Vec<String> {
            selected(&s, &args)
                .iter()
                .map(|h| h.instance_id.clone())
                .collect()
        };
        assert_eq!(ids(args(None, None, None)), ["i-1", "i-2", "i-3"]);
        // prod-eu reaches prod's account, so it sees prod's hosts in every region.
        assert_eq!(ids(args(Some("prod-eu"), None, None)), ["i-1", "i-2"]);
        assert_eq!(ids(args(Some("other"), None, None)), ["i-3"]);
        assert_eq!(ids(args(None, Some("us-east-1"), None)), ["i-2"]);
        assert_eq!(ids(args(None, None, Some("WEB payments"))), ["i-1"]);
        assert_eq!(
            ids(args(Some("prod"), Some("eu-west-1"), Some("db"))),
            [] as [&str; 0]
        );
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
        s.profiles[0]
            .warnings
            .push("Could not list instances in ap-south-1: AuthFailure".to_owned());
        let mut err = Vec::new();
        report_problems(&s, &mut err).expect("writes");
        let err = String::from_utf8(err).expect("utf-8");
        assert!(
            err.contains("warning: config line 1: stray text\n"),
            "{err}"
        );
        assert!(err.contains("profile bad: AuthFailure: nope\n"), "{err}");
        assert!(err.contains("profile slow: no answer within 60 s"), "{err}");
        assert!(
            err.contains(
                "warning: profile good: Could not list instances in ap-south-1: AuthFailure\n"
            ),
            "{err}"
        );
        assert!(
            !err.lines().any(|l| l.starts_with("profile good")),
            "a working profile is no failure: {err}"
        );
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
