//! Every reason a route gives, from small hand-made regions: one VPC per situation.

use super::*;
use crate::inventory::{
    EicEndpoint, EicEndpointState, Ipv4Cidr, Listing, Peer, PingStatus, RulePeer, RuleProtocol,
    SecurityGroup, SecurityGroupRule,
};

fn tcp(port: u16, peers: &[&str]) -> SecurityGroupRule {
    SecurityGroupRule {
        protocol: RuleProtocol::Tcp,
        ports: Some((port, port)),
        peers: peers
            .iter()
            .map(|peer| RulePeer {
                peer: if let Some(list) = peer.strip_prefix("pl-") {
                    Peer::PrefixList(format!("pl-{list}"))
                } else if peer.starts_with("sg-") {
                    Peer::Group((*peer).to_owned())
                } else {
                    Peer::Cidr(peer.parse().unwrap())
                },
                description: None,
            })
            .collect(),
    }
}

fn group(
    id: &str,
    ingress: Vec<SecurityGroupRule>,
    egress: Vec<SecurityGroupRule>,
) -> SecurityGroup {
    SecurityGroup {
        id: id.into(),
        name: id.trim_start_matches("sg-").into(),
        ingress,
        egress,
    }
}

fn endpoint(id: &str, vpc: &str, subnet_cidr: Option<&str>, group: &str) -> EicEndpoint {
    EicEndpoint {
        id: id.into(),
        state: EicEndpointState::CreateComplete,
        vpc_id: Some(vpc.into()),
        subnet_id: Some(format!("subnet-{vpc}")),
        subnet_cidr: subnet_cidr.map(|c| c.parse().unwrap()),
        dns_name: Some(format!("{id}.example")),
        fips_dns_name: None,
        security_group_ids: vec![group.into()],
        preserve_client_ip: false,
        profile: "prod".into(),
        account_id: "111122223333".into(),
        region: "us-east-1".into(),
    }
}

/// - vpc-a: eice-a (sg-eice: out 22 to 10.0.0.0/16, out 3389 to sg-win) in 10.0.1.0/24;
/// - vpc-b: eice-b (sg-eice-b: out 22 only to sg-elsewhere);
/// - vpc-c: eice-c, client IP preserved (sg-eice-c: all out);
/// - vpc-d: eice-d, subnet not read (sg-eice: as vpc-a's);
/// - vpc-e: eice-e, still being created.
fn region() -> RegionFacts {
    let mut preserving = endpoint("eice-c", "vpc-c", Some("10.2.1.0/24"), "sg-eice-c");
    preserving.preserve_client_ip = true;
    let mut creating = endpoint("eice-e", "vpc-e", Some("10.4.1.0/24"), "sg-eice");
    creating.state = EicEndpointState::CreateInProgress;
    let all_out = SecurityGroupRule {
        protocol: RuleProtocol::All,
        ports: None,
        peers: vec![RulePeer {
            peer: Peer::Cidr(Ipv4Cidr::ANYWHERE),
            description: None,
        }],
    };
    let mut web = group("sg-web", vec![tcp(22, &["sg-eice"])], vec![]);
    web.ingress[0].peers[0].description = Some("SSH from the endpoint".into());
    RegionFacts {
        profile: "prod".into(),
        eic_endpoints: Listing::Listed(vec![
            endpoint("eice-a", "vpc-a", Some("10.0.1.0/24"), "sg-eice"),
            endpoint("eice-b", "vpc-b", Some("10.1.1.0/24"), "sg-eice-b"),
            preserving,
            endpoint("eice-d", "vpc-d", None, "sg-eice"),
            creating,
        ]),
        security_groups: Listing::Listed(vec![
            group(
                "sg-eice",
                vec![],
                vec![
                    tcp(22, &["10.0.0.0/16", "10.3.0.0/16"]),
                    tcp(3389, &["sg-win"]),
                ],
            ),
            group("sg-eice-b", vec![], vec![tcp(22, &["sg-elsewhere"])]),
            group("sg-eice-c", vec![], vec![all_out]),
            web,
            group("sg-win", vec![tcp(3389, &["sg-eice"])], vec![]),
            group("sg-subnet", vec![tcp(22, &["10.0.1.0/24"])], vec![]),
            group("sg-half", vec![tcp(22, &["10.0.1.128/25"])], vec![]),
            group("sg-closed", vec![tcp(6379, &["sg-web"])], vec![]),
            group("sg-office", vec![tcp(22, &["203.0.113.0/24"])], vec![]),
            group("sg-anywhere", vec![tcp(22, &["0.0.0.0/0"])], vec![]),
            group("sg-vpc-only", vec![tcp(22, &["10.2.0.0/16"])], vec![]),
            group("sg-listed", vec![tcp(22, &["pl-0abc"])], vec![]),
            group("sg-private", vec![tcp(22, &["10.3.0.0/16"])], vec![]),
        ]),
        ssm: Listing::Listed(vec![SsmInfo {
            instance_id: "i-0123456789abcdef0".into(),
            ping_status: PingStatus::Online,
            agent_version: Some("3.3.1142.0".into()),
        }]),
    }
}

fn host(vpc: &str, ip: Option<&str>, groups: &[&str]) -> Host {
    Host {
        instance_id: "i-0123456789abcdef0".into(),
        name: Some("web-1".into()),
        tags: Default::default(),
        state: InstanceState::Running,
        platform: Platform::Linux,
        private_ip: ip.map(str::to_owned),
        public_ip: None,
        vpc_id: Some(vpc.into()),
        subnet_id: Some(format!("subnet-{vpc}-9")),
        availability_zone: None,
        key_name: None,
        image: None,
        security_group_ids: groups.iter().map(|g| (*g).to_owned()).collect(),
        profile: "prod".into(),
        account_id: "111122223333".into(),
        region: "us-east-1".into(),
        stale: false,
    }
}

const NO_SSM: SsmFacts<'static> = SsmFacts::Unknown("SSM not read");

fn route(report: &RouteReport, method: Method) -> &RouteVerdict {
    report.routes.iter().find(|r| r.method == method).unwrap()
}

/// Asserts `method`'s verdict, and that some reason contains each of `expected`.
fn expect(
    host: &Host,
    purpose: Purpose,
    facts: &RouteFacts<'_>,
    method: Method,
    verdict: Verdict,
    expected: &[&str],
) {
    let report = assess(host, purpose, facts);
    let found = route(&report, method);
    assert_eq!(found.verdict, verdict, "{found:#?}");
    for text in expected {
        assert!(
            found.reasons.iter().any(|r| r.contains(text)),
            "no reason contains {text:?}: {found:#?}"
        );
    }
}

#[test]
fn every_eic_reason_names_the_endpoint_rule_or_what_is_missing() {
    let facts = region();
    let with = RouteFacts {
        region: Some(&facts),
        ssm: NO_SSM,
    };
    let mut listing_failed = facts.clone();
    listing_failed.eic_endpoints = Listing::Failed(
        "Could not list EC2 Instance Connect Endpoints in us-east-1: UnauthorizedOperation".into(),
    );
    let mut groups_failed = facts.clone();
    groups_failed.security_groups = Listing::Failed("AccessDenied".into());
    let unscanned = RouteFacts {
        region: None,
        ssm: NO_SSM,
    };
    let a = |groups: &[&str]| host("vpc-a", Some("10.0.2.7"), groups);
    let ssh = Purpose::Ssh;
    // (host, purpose, facts, verdict, reasons)
    let table: Vec<(Host, Purpose, RouteFacts<'_>, Verdict, Vec<&str>)> = vec![
        (
            a(&["sg-web"]),
            ssh,
            with,
            Verdict::Ready,
            vec![
                "the endpoint for vpc-a is eice-a in subnet-vpc-a (create-complete)",
                "sg-eice (eice) lets 22 out to 10.0.0.0/16",
                "sg-web (web) admits 22 from sg-eice (\"SSH from the endpoint\"), eice-a's group",
            ],
        ),
        (
            a(&["sg-win"]),
            Purpose::Rdp,
            with,
            Verdict::Ready,
            vec![
                "sg-eice (eice) lets 3389 out to sg-win",
                "sg-win (win) admits 3389 from sg-eice, eice-a's group",
            ],
        ),
        (
            a(&["sg-subnet"]),
            ssh,
            with,
            Verdict::Ready,
            vec![
                "sg-subnet (subnet) admits 22 from 10.0.1.0/24, which holds eice-a's subnet 10.0.1.0/24",
            ],
        ),
        (
            a(&["sg-half"]),
            ssh,
            with,
            Verdict::Unsure,
            vec![
                "eice-a's address (in 10.0.1.0/24) may not be admitted: only sg-half (half) admits 22 from 10.0.1.128/25",
            ],
        ),
        (
            a(&["sg-listed"]),
            ssh,
            with,
            Verdict::Unsure,
            vec!["sg-listed (listed) admits 22 from prefix list pl-0abc"],
        ),
        (
            a(&["sg-closed"]),
            ssh,
            with,
            Verdict::Blocked,
            vec![
                "sg-closed (closed) has no inbound 22 from eice-a's group sg-eice (eice); add an inbound rule for TCP 22 from that group",
            ],
        ),
        (
            a(&["sg-closed", "sg-half"]),
            Purpose::Port(8080),
            with,
            Verdict::Blocked,
            vec![
                "eice-a's group sg-eice (eice) has no outbound 8080 to 10.0.2.7 or to the instance's groups sg-closed (closed), sg-half (half)",
                "sg-closed (closed), sg-half (half) have no inbound 8080",
            ],
        ),
        (
            a(&["sg-gone"]),
            ssh,
            with,
            Verdict::Unsure,
            vec!["cannot tell whether web-1 admits 22: security group sg-gone was not found"],
        ),
        (
            host("vpc-b", Some("10.1.2.7"), &["sg-web"]),
            ssh,
            with,
            Verdict::Blocked,
            vec![
                "eice-b's group sg-eice-b (eice-b) has no outbound 22 to 10.1.2.7 or to the instance's group sg-web (web); add an outbound rule for TCP 22",
            ],
        ),
        (
            host("vpc-c", Some("10.2.2.7"), &["sg-office"]),
            ssh,
            with,
            Verdict::Unsure,
            vec![
                "eice-c preserves client IPs, so the instance sees your own address, and only sg-office (office) admits 22 from 203.0.113.0/24",
            ],
        ),
        (
            host("vpc-c", Some("10.2.2.7"), &["sg-anywhere"]),
            ssh,
            with,
            Verdict::Ready,
            vec!["sg-anywhere (anywhere) admits 22 from 0.0.0.0/0, any address"],
        ),
        (
            host("vpc-c", Some("10.2.2.7"), &["sg-vpc-only"]),
            ssh,
            with,
            Verdict::Blocked,
            vec![
                "no inbound 22 from eice-c's group sg-eice-c (eice-c) or from your address (it preserves client IPs)",
            ],
        ),
        (
            host("vpc-c", Some("10.2.2.7"), &["sg-web"]),
            ssh,
            with,
            Verdict::Blocked,
            vec!["sg-web (web) has no inbound 22"],
        ),
        (
            host("vpc-d", Some("10.3.2.7"), &["sg-private"]),
            ssh,
            with,
            Verdict::Unsure,
            vec!["eice-d's address (subnet not read) may not be admitted"],
        ),
        (
            host("vpc-e", Some("10.4.2.7"), &["sg-web"]),
            ssh,
            with,
            Verdict::Blocked,
            vec!["no usable EC2 Instance Connect Endpoint in vpc-e (eice-e is create-in-progress"],
        ),
        (
            host("vpc-z", Some("10.9.2.7"), &["sg-web"]),
            ssh,
            with,
            Verdict::Blocked,
            vec!["no EC2 Instance Connect Endpoint in vpc-z (create one in that VPC"],
        ),
        (
            host("vpc-a", None, &["sg-web"]),
            ssh,
            with,
            Verdict::Blocked,
            vec![
                "web-1 has no private IPv4 address, and EC2 Instance Connect Endpoints reach instances only by private IPv4",
            ],
        ),
        (
            a(&["sg-web"]),
            ssh,
            RouteFacts {
                region: Some(&listing_failed),
                ssm: NO_SSM,
            },
            Verdict::Unsure,
            vec![
                "Could not list EC2 Instance Connect Endpoints in us-east-1: UnauthorizedOperation",
            ],
        ),
        (
            a(&["sg-web"]),
            ssh,
            RouteFacts {
                region: Some(&groups_failed),
                ssm: NO_SSM,
            },
            Verdict::Unsure,
            vec![
                "cannot tell whether eice-a lets 22 out: the security groups were not read: AccessDenied",
                "cannot tell whether web-1 admits 22: the security groups were not read",
            ],
        ),
        (
            a(&["sg-web"]),
            ssh,
            unscanned,
            Verdict::Unsure,
            vec![
                "us-east-1 has not been scanned yet, so its EC2 Instance Connect Endpoints are not known",
            ],
        ),
    ];
    for (host, purpose, facts, verdict, reasons) in &table {
        expect(host, *purpose, facts, Method::Eic, *verdict, reasons);
    }
}

#[test]
fn every_ssm_reason_follows_the_agent_s_state_and_version() {
    let facts = region();
    let web = host("vpc-a", Some("10.0.2.7"), &["sg-web"]);
    let agent = |status: PingStatus, version: Option<&str>| SsmInfo {
        instance_id: web.instance_id.clone(),
        ping_status: status,
        agent_version: version.map(str::to_owned),
    };
    let online = |version: &str| agent(PingStatus::Online, Some(version));
    let infos = [
        agent(PingStatus::ConnectionLost, Some("3.3.1142.0")),
        online("2.3.671.9"),
        online("2.3.672.0"),
        online("3.0.196.0"),
        online("3.0.196.1"),
        online("3.1.1373.0"),
        online("3.1.1374.0"),
        online("3.3"),
        agent(PingStatus::Online, None),
        agent(PingStatus::Inactive, None),
    ];
    let table: Vec<(SsmFacts<'_>, Verdict, Vec<&str>)> = vec![
        (
            SsmFacts::Unknown("the SSM inventory was not read"),
            Verdict::Unsure,
            vec!["the SSM inventory was not read"],
        ),
        (
            SsmFacts::NotRegistered,
            Verdict::Blocked,
            vec![
                "not managed by Systems Manager: install the SSM Agent and give the instance a role with AmazonSSMManagedInstanceCore",
            ],
        ),
        (
            SsmFacts::Registered(&infos[0]),
            Verdict::Blocked,
            vec!["the SSM Agent is ConnectionLost: it is not checking in"],
        ),
        (
            SsmFacts::Registered(&infos[1]),
            Verdict::Blocked,
            vec!["SSM Agent 2.3.671.9 cannot forward ports (that needs 2.3.672.0 or later)"],
        ),
        (
            SsmFacts::Registered(&infos[2]),
            Verdict::Ready,
            vec![
                "SSM Agent 2.3.672.0 is online but forwards one connection at a time",
                "it cannot forward to other hosts (that needs 3.1.1374.0 or later)",
            ],
        ),
        (
            SsmFacts::Registered(&infos[3]),
            Verdict::Ready,
            vec!["forwards one connection at a time (several need an agent newer than 3.0.196.0)"],
        ),
        (
            SsmFacts::Registered(&infos[4]),
            Verdict::Ready,
            vec!["SSM Agent 3.0.196.1 is online and forwards several connections at once"],
        ),
        (
            SsmFacts::Registered(&infos[5]),
            Verdict::Ready,
            vec!["it cannot forward to other hosts"],
        ),
        (
            SsmFacts::Registered(&infos[6]),
            Verdict::Ready,
            vec!["it can also forward to other hosts its network reaches"],
        ),
        (
            SsmFacts::Registered(&infos[7]),
            Verdict::Unsure,
            vec!["its version (3.3) is not four numbers"],
        ),
        (
            SsmFacts::Registered(&infos[8]),
            Verdict::Unsure,
            vec!["its version (not reported)"],
        ),
        (
            SsmFacts::Registered(&infos[9]),
            Verdict::Blocked,
            vec!["the SSM Agent is Inactive"],
        ),
    ];
    for (ssm, verdict, reasons) in &table {
        let facts = RouteFacts {
            region: Some(&facts),
            ssm: *ssm,
        };
        expect(&web, Purpose::Ssh, &facts, Method::Ssm, *verdict, reasons);
    }
}

#[test]
fn every_direct_reason_judges_the_public_ip_and_the_internet_rules() {
    let facts = region();
    let with = RouteFacts {
        region: Some(&facts),
        ssm: NO_SSM,
    };
    let mut groups_failed = facts.clone();
    groups_failed.security_groups = Listing::Failed("AccessDenied".into());
    let public = |groups: &[&str]| Host {
        public_ip: Some("198.51.100.7".into()),
        ..host("vpc-a", Some("10.0.2.7"), groups)
    };
    let table: Vec<(Host, RouteFacts<'_>, Verdict, Vec<&str>)> = vec![
        (
            host("vpc-a", Some("10.0.2.7"), &["sg-anywhere"]),
            with,
            Verdict::Blocked,
            vec!["web-1 has no public IPv4 address"],
        ),
        (
            public(&["sg-web", "sg-anywhere"]),
            with,
            Verdict::Ready,
            vec!["public IP 198.51.100.7; sg-anywhere (anywhere) admits 22 from 0.0.0.0/0"],
        ),
        (
            public(&["sg-office"]),
            with,
            Verdict::Unsure,
            vec![
                "public IP 198.51.100.7, but only sg-office (office) admits 22 from 203.0.113.0/24; that works if your address is in it",
            ],
        ),
        (
            public(&["sg-vpc-only", "sg-web"]),
            with,
            Verdict::Blocked,
            vec![
                "public IP 198.51.100.7, but sg-vpc-only (vpc-only), sg-web (web) have no inbound 22 from the internet",
            ],
        ),
        (
            public(&["sg-web"]),
            RouteFacts {
                region: Some(&groups_failed),
                ssm: NO_SSM,
            },
            Verdict::Unsure,
            vec![
                "public IP 198.51.100.7, but cannot tell whether 22 is open: the security groups were not read",
            ],
        ),
        (
            public(&["sg-web"]),
            RouteFacts {
                region: None,
                ssm: NO_SSM,
            },
            Verdict::Unsure,
            vec!["public IP 198.51.100.7, but us-east-1 has not been scanned yet"],
        ),
    ];
    for (host, facts, verdict, reasons) in &table {
        expect(host, Purpose::Ssh, facts, Method::Direct, *verdict, reasons);
    }
}

#[test]
fn an_instance_that_is_not_running_blocks_every_route_and_says_so() {
    let facts = region();
    let with = RouteFacts {
        region: Some(&facts),
        ssm: NO_SSM,
    };
    let table = [
        (
            InstanceState::Stopped,
            "web-1 is stopped; start it, then refresh",
        ),
        (
            InstanceState::Pending,
            "web-1 is starting (pending); wait until it is running",
        ),
        (InstanceState::Stopping, "web-1 is stopping"),
        (InstanceState::ShuttingDown, "web-1 is shutting-down"),
    ];
    for (state, reason) in table {
        let stopped = Host {
            state,
            ..host("vpc-a", Some("10.0.2.7"), &["sg-web"])
        };
        let report = assess(&stopped, Purpose::Ssh, &with);
        assert_eq!(report.routes.len(), 3);
        for route in &report.routes {
            assert_eq!(route.verdict, Verdict::Blocked, "{route:?}");
            assert_eq!(route.reasons.len(), 1, "{route:?}");
            assert!(route.reasons[0].starts_with(reason), "{route:?}");
        }
        assert_eq!(report.badge(), "none");
        assert_eq!(report.best(), None);
    }
}

#[test]
fn routes_rank_ready_before_unsure_before_blocked_then_eic_ssm_direct() {
    let facts = region();
    let online = SsmInfo {
        instance_id: "i-0123456789abcdef0".into(),
        ping_status: PingStatus::Online,
        agent_version: Some("3.3.1142.0".into()),
    };
    let methods = |report: &RouteReport| -> Vec<(Method, Verdict)> {
        report
            .routes
            .iter()
            .map(|r| (r.method, r.verdict))
            .collect()
    };
    let ready_both = assess(
        &host("vpc-a", Some("10.0.2.7"), &["sg-web"]),
        Purpose::Ssh,
        &RouteFacts {
            region: Some(&facts),
            ssm: SsmFacts::Registered(&online),
        },
    );
    assert_eq!(
        methods(&ready_both),
        [
            (Method::Eic, Verdict::Ready),
            (Method::Ssm, Verdict::Ready),
            (Method::Direct, Verdict::Blocked)
        ]
    );
    assert_eq!(ready_both.badge(), "EIC");

    let closed = assess(
        &host("vpc-a", Some("10.0.2.7"), &["sg-closed"]),
        Purpose::Ssh,
        &RouteFacts {
            region: Some(&facts),
            ssm: SsmFacts::Registered(&online),
        },
    );
    assert_eq!(closed.routes[0].method, Method::Ssm);
    assert_eq!(closed.badge(), "SSM");

    let unsure = assess(
        &Host {
            public_ip: Some("198.51.100.7".into()),
            ..host("vpc-a", Some("10.0.2.7"), &["sg-half", "sg-office"])
        },
        Purpose::Ssh,
        &RouteFacts {
            region: Some(&facts),
            ssm: SsmFacts::NotRegistered,
        },
    );
    assert_eq!(
        methods(&unsure),
        [
            (Method::Eic, Verdict::Unsure),
            (Method::Direct, Verdict::Unsure),
            (Method::Ssm, Verdict::Blocked)
        ]
    );
    assert_eq!(unsure.badge(), "EIC?");
    assert_eq!(unsure.best().map(|r| r.method), Some(Method::Eic));
}

#[test]
fn a_host_s_ssm_facts_come_from_its_region_s_listing() {
    let facts = region();
    let managed = host("vpc-a", Some("10.0.2.7"), &["sg-web"]);
    let unmanaged = Host {
        instance_id: "i-0fffffffffffffff0".into(),
        ..managed.clone()
    };
    assert!(matches!(
        RouteFacts::for_host(&managed, Some(&facts)).ssm,
        SsmFacts::Registered(info) if info.agent_version.as_deref() == Some("3.3.1142.0")
    ));
    assert_eq!(
        RouteFacts::for_host(&unmanaged, Some(&facts)).ssm,
        SsmFacts::NotRegistered
    );
    let mut failed = facts.clone();
    failed.ssm = Listing::Failed("AccessDeniedException: no".into());
    assert_eq!(
        RouteFacts::for_host(&managed, Some(&failed)).ssm,
        SsmFacts::Unknown("AccessDeniedException: no")
    );
    assert!(matches!(
        RouteFacts::for_host(&managed, None).ssm,
        SsmFacts::Unknown(why) if why.contains("has not been scanned yet")
    ));
}

#[test]
fn purposes_follow_the_platform_and_the_port() {
    let linux = host("vpc-a", None, &[]);
    let windows = Host {
        platform: Platform::Windows,
        ..host("vpc-a", None, &[])
    };
    assert_eq!(Purpose::for_host(&linux), Purpose::Ssh);
    assert_eq!(Purpose::for_host(&windows), Purpose::Rdp);
    assert_eq!(Purpose::from_port(3389), Purpose::Rdp);
    assert_eq!(Purpose::from_port(22).port(), 22);
    assert_eq!(Purpose::from_port(8080), Purpose::Port(8080));
    assert_eq!(Purpose::Port(8080).to_string(), "port 8080");
    assert_eq!(Purpose::Rdp.to_string(), "RDP (port 3389)");
}

#[test]
fn a_report_serializes_with_its_purpose_best_route_and_reasons() {
    let facts = region();
    let report = assess(
        &host("vpc-a", Some("10.0.2.7"), &["sg-web"]),
        Purpose::Ssh,
        &RouteFacts {
            region: Some(&facts),
            ssm: SsmFacts::NotRegistered,
        },
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["purpose"], "ssh");
    assert_eq!(json["port"], 22);
    assert_eq!(json["best"], "eic");
    assert_eq!(json["routes"][0]["method"], "eic");
    assert_eq!(json["routes"][0]["verdict"], "ready");
    assert_eq!(json["routes"][2]["verdict"], "blocked");
    assert!(
        json["routes"][0]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("eice-a")
    );
}
