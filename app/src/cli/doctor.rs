//! `bastionless doctor HOST [--port N]`: how HOST can be reached, and why not.
//!
//! Every route — EC2 Instance Connect Endpoint, Session Manager, direct — best first, each with
//! its verdict and the reasons the inventory gives (the endpoint, the security group rule that
//! admits the port or the one that is missing, the SSM Agent's state and version). Nothing is
//! connected to: this is what `bastionless ssh` would face, said before it tries. The exit code
//! is 0 when a route is ready and 1 otherwise, for scripts.

use crate::aws_source::AwsSource;
use crate::cli::target::{self, HostArgs};
use bastionless_core::engine::Snapshot;
use bastionless_core::inventory::Host;
use bastionless_core::route::{Purpose, RouteReport, Verdict};
use std::fmt::Write as _;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub target: HostArgs,
    /// The port to reach (default: 22, or 3389 on Windows).
    #[arg(long)]
    pub port: Option<u16>,
}

pub fn run(args: &DoctorArgs, source: &AwsSource) -> anyhow::Result<ExitCode> {
    let (_engine, snapshot) = target::inventory_for(source, &args.target)?;
    let host = target::resolve(&snapshot, &args.target)?;
    let purpose = args
        .port
        .map_or_else(|| Purpose::for_host(host), Purpose::from_port);
    let report = snapshot.assess_route(host, purpose);
    print!("{}", explain(&snapshot, host, &report));
    let ready = report.best().is_some_and(|r| r.verdict == Verdict::Ready);
    Ok(if ready {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The report as the user reads it: the host, each route numbered with its reasons, a verdict.
fn explain(snapshot: &Snapshot, host: &Host, report: &RouteReport) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "{} ({}), account {}, {}, {}: {}",
        host.display_name(),
        host.instance_id,
        host.account_id,
        host.region,
        host.state.as_str(),
        report.purpose
    );
    if host.stale {
        let _ = writeln!(
            out,
            "  (from an earlier scan: {} could not be scanned now, so this may be out of date)",
            host.region
        );
    }
    if let Some(facts) = snapshot.region_facts(host) {
        let _ = writeln!(out, "  (listed through profile {})", facts.profile);
    }
    for (rank, route) in report.routes.iter().enumerate() {
        let _ = writeln!(
            out,
            "{}. {}: {}",
            rank + 1,
            route.method.label(),
            route.verdict.as_str()
        );
        for reason in &route.reasons {
            let _ = writeln!(out, "   - {reason}");
        }
    }
    let _ = match report.best() {
        Some(route) if route.verdict == Verdict::Ready => {
            writeln!(out, "Use {}.", route.method.label())
        }
        Some(route) => writeln!(
            out,
            "No route is sure to work; {} might: check the reasons above.",
            route.method.label()
        ),
        None => writeln!(out, "No route can work now: see the reasons above."),
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bastionless_core::inventory::{InstanceState, Platform};
    use bastionless_core::route::{self, RouteFacts, SsmFacts};

    fn host(state: InstanceState) -> Host {
        Host {
            instance_id: "i-0123456789abcdef0".to_owned(),
            name: Some("web-1".to_owned()),
            tags: Default::default(),
            state,
            platform: Platform::Linux,
            private_ip: Some("10.0.0.1".to_owned()),
            public_ip: None,
            vpc_id: Some("vpc-a".to_owned()),
            subnet_id: None,
            availability_zone: None,
            key_name: None,
            image: None,
            security_group_ids: Vec::new(),
            profile: "prod".to_owned(),
            account_id: "111122223333".to_owned(),
            region: "eu-west-1".to_owned(),
            stale: true,
        }
    }

    fn report(host: &Host) -> RouteReport {
        let facts = RouteFacts {
            region: None,
            ssm: SsmFacts::Unknown("SSM was not asked"),
        };
        route::assess(host, Purpose::Ssh, &facts)
    }

    #[test]
    fn the_explanation_numbers_the_routes_with_their_reasons_and_a_conclusion() {
        let web = host(InstanceState::Running);
        let text = explain(&Snapshot::default(), &web, &report(&web));
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "web-1 (i-0123456789abcdef0), account 111122223333, eu-west-1, running: SSH (port 22)"
        );
        assert!(lines[1].contains("from an earlier scan"), "{text}");
        assert_eq!(lines[2], "1. EIC: unsure");
        assert!(
            lines[3].starts_with("   - eu-west-1 has not been scanned yet"),
            "{text}"
        );
        assert_eq!(lines[4], "2. SSM: unsure");
        assert_eq!(lines[5], "   - SSM was not asked");
        assert_eq!(lines[6], "3. Direct: blocked");
        assert_eq!(
            lines.last(),
            Some(&"No route is sure to work; EIC might: check the reasons above.")
        );
    }

    #[test]
    fn a_stopped_host_has_no_route() {
        let stopped = host(InstanceState::Stopped);
        let text = explain(&Snapshot::default(), &stopped, &report(&stopped));
        assert!(
            text.contains("1. EIC: blocked\n   - web-1 is stopped; start it"),
            "{text}"
        );
        assert!(
            text.ends_with("No route can work now: see the reasons above.\n"),
            "{text}"
        );
    }
}
