//! The simulator's control plane, driven by the real AWS SDK for Rust exactly as the product
//! drives AWS: profiles from the generated config files, `endpoint_url` from the profile, SigV4
//! signing by the SDK. Where a test needs a request no SDK would send (unsigned, presigned,
//! signed with a slow clock) it signs with `aws-sigv4`, the product's signer, and speaks
//! HTTP/1.1 by hand.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sdk_ec2::error::ProvideErrorMetadata;
use aws_sdk_ec2::operation::RequestId;
use aws_sdk_ec2::types::{ArchitectureValues, Filter, Instance, InstanceStateName, PlatformValues};
use bastionless_sim::{BackgroundSimulator, FaultRule, Scenario, Simulator};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROD_ACCOUNT: &str = "111122223333";

/// Every instance the `prod` profile (acme-prod, us-east-1) can see.
const PROD_US_EAST_1: &[&str] = &[
    "web-eic-1",
    "web-eic-2",
    "app-ssm-1",
    "db-both-1",
    "win-ssm-1",
    "win-eic-1",
    "legacy-none-1",
    "stopped-1",
    "api-1",
    "api-2",
    "api-3",
    "batch-worker-1",
    "batch-worker-2",
    "bastion-1",
    "grafana-1",
    "win-ad-1",
    "kafka-1",
];

// ---------------------------------------------------------------------------------------------
// Helpers

use support::{config_loader, loader_for, sdk_config};

/// `127.0.0.1:PORT` of the control plane.
fn authority(sim: &Simulator) -> String {
    sim.endpoint_url().trim_start_matches("https://").to_owned()
}

/// A TLS connection to the control plane that trusts the simulator's CA.
async fn connect_tls(sim: &Simulator) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use rustls_pki_types::pem::PemObject as _;
    let pem = std::fs::read(sim.ca_bundle().expect("TLS")).expect("readable");
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pki_types::CertificateDer::pem_slice_iter(&pem) {
        roots
            .add(cert.expect("a certificate"))
            .expect("a trust anchor");
    }
    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(authority(sim))
        .await
        .expect("the simulator accepts connections");
    tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(
            rustls_pki_types::ServerName::try_from("127.0.0.1").expect("a name"),
            tcp,
        )
        .await
        .expect("the simulator's certificate is trusted")
}

async fn ec2(sim: &Simulator, profile: &str) -> aws_sdk_ec2::Client {
    aws_sdk_ec2::Client::new(&sdk_config(sim, profile).await)
}

async fn sts(sim: &Simulator, profile: &str) -> aws_sdk_sts::Client {
    aws_sdk_sts::Client::new(&sdk_config(sim, profile).await)
}

async fn demo() -> Simulator {
    Simulator::start(Scenario::demo())
        .await
        .expect("the simulator starts")
}

fn name(instance: &Instance) -> String {
    instance
        .tags()
        .iter()
        .find(|tag| tag.key() == Some("Name"))
        .and_then(|tag| tag.value())
        .unwrap_or_default()
        .to_owned()
}

/// Every instance a DescribeInstances call returns, by Name tag, following `NextToken`s.
async fn describe_by_name(
    client: &aws_sdk_ec2::Client,
    filters: Vec<Filter>,
) -> BTreeMap<String, Instance> {
    let mut pages = client
        .describe_instances()
        .set_filters(Some(filters))
        .into_paginator()
        .send();
    let mut found = BTreeMap::new();
    while let Some(page) = pages.next().await {
        for reservation in page.expect("DescribeInstances succeeds").reservations() {
            for instance in reservation.instances() {
                found.insert(name(instance), instance.clone());
            }
        }
    }
    found
}

fn filter(name: &str, values: &[&str]) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.iter().map(|v| (*v).to_owned()).collect()))
        .build()
}

fn names(found: &BTreeMap<String, Instance>) -> BTreeSet<&str> {
    found.keys().map(String::as_str).collect()
}

fn set<'a>(names: &[&'a str]) -> BTreeSet<&'a str> {
    names.iter().copied().collect()
}

fn status<E>(error: &aws_sdk_ec2::error::SdkError<E>) -> Option<u16> {
    error
        .raw_response()
        .map(|response| response.status().as_u16())
}

/// Rewrites the request body with `edit`, before or after the SDK signs it.
#[derive(Debug)]
struct EditBody {
    after_signing: bool,
    edit: fn(&str) -> String,
}

impl EditBody {
    fn apply(
        &self,
        context: &mut aws_sdk_ec2::config::interceptors::BeforeTransmitInterceptorContextMut<'_>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let request = context.request_mut();
        let body = request
            .body()
            .bytes()
            .ok_or("the request body is not in memory")?;
        let edited = (self.edit)(std::str::from_utf8(body)?);
        assert_eq!(edited.len(), body.len(), "keep Content-Length right");
        *request.body_mut() = aws_smithy_types::body::SdkBody::from(edited);
        Ok(())
    }
}

impl aws_sdk_ec2::config::Intercept for EditBody {
    fn name(&self) -> &'static str {
        "EditBody"
    }

    fn modify_before_signing(
        &self,
        context: &mut aws_sdk_ec2::config::interceptors::BeforeTransmitInterceptorContextMut<'_>,
        _: &aws_sdk_ec2::config::RuntimeComponents,
        _: &mut aws_sdk_ec2::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if self.after_signing {
            Ok(())
        } else {
            self.apply(context)
        }
    }

    fn modify_before_transmit(
        &self,
        context: &mut aws_sdk_ec2::config::interceptors::BeforeTransmitInterceptorContextMut<'_>,
        _: &aws_sdk_ec2::config::RuntimeComponents,
        _: &mut aws_sdk_ec2::config::ConfigBag,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        if self.after_signing {
            self.apply(context)
        } else {
            Ok(())
        }
    }
}

/// A response read off the wire.
#[derive(Debug)]
struct RawResponse {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

/// Sends one HTTP/1.1 request to the simulator (with a `Host` header unless `headers` has one)
/// and reads the whole response.
async fn send_raw(
    sim: &Simulator,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> RawResponse {
    let address = authority(sim);
    let mut stream = connect_tls(sim).await;
    let mut request = format!("{method} {target} HTTP/1.1\r\nconnection: close\r\n");
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request += &format!("host: {address}\r\n");
    }
    for (name, value) in headers {
        request += &format!("{name}: {value}\r\n");
    }
    request += &format!("content-length: {}\r\n\r\n{body}", body.len());
    stream.write_all(request.as_bytes()).await.expect("sent");
    let mut response = Vec::new();
    // The server closes after `connection: close` without a TLS close_notify; what arrived is
    // the whole response.
    let _ = stream.read_to_end(&mut response).await;
    let response = String::from_utf8(response).expect("UTF-8");
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    RawResponse {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A request for `aws-sigv4` to sign as the `prod` profile.
struct ToSign<'a> {
    service: &'a str,
    time: SystemTime,
    /// Presign (query-string signature) valid for this long; `None` signs the headers.
    presign_for: Option<Duration>,
    method: &'a str,
    url: &'a str,
    headers: &'a [(&'a str, &'a str)],
    body: &'a str,
}

/// Signs a request the way the product's signer does.
fn sign(sim: &Simulator, request: &ToSign<'_>) -> aws_sigv4::http_request::SigningInstructions {
    use aws_sigv4::http_request::{
        SignableBody, SignableRequest, SignatureLocation, SigningSettings,
    };
    let profile = sim.scenario().profile("prod").expect("a demo profile");
    let identity = Credentials::new(
        &profile.access_key_id,
        &profile.secret_access_key,
        None,
        None,
        "scenario",
    )
    .into();
    let mut settings = SigningSettings::default();
    if let Some(expires_in) = request.presign_for {
        settings.signature_location = SignatureLocation::QueryParams;
        settings.expires_in = Some(expires_in);
    }
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(&profile.region)
        .name(request.service)
        .time(request.time)
        .settings(settings)
        .build()
        .expect("signing parameters")
        .into();
    let signable = SignableRequest::new(
        request.method,
        request.url,
        request.headers.iter().copied(),
        SignableBody::Bytes(request.body.as_bytes()),
    )
    .expect("a signable request");
    aws_sigv4::http_request::sign(signable, &params)
        .expect("signed")
        .into_parts()
        .0
}

/// A presigned `GET /?Action=GetCallerIdentity…` for the `prod` profile, signed at `time`.
fn presigned_get_caller_identity(sim: &Simulator, time: SystemTime) -> String {
    let host = authority(sim);
    let query = "Action=GetCallerIdentity&Version=2011-06-15";
    let instructions = sign(
        sim,
        &ToSign {
            service: "sts",
            time,
            presign_for: Some(Duration::from_secs(900)),
            method: "GET",
            url: &format!("{}/?{query}", sim.endpoint_url()),
            headers: &[("host", &host)],
            body: "",
        },
    );
    let mut target = format!("/?{query}");
    for (name, value) in instructions.params() {
        let value =
            percent_encoding::utf8_percent_encode(value, percent_encoding::NON_ALPHANUMERIC);
        target += &format!("&{name}={value}");
    }
    target
}

// ---------------------------------------------------------------------------------------------
// DescribeInstances

#[tokio::test]
async fn describe_instances_returns_the_profiles_hosts_with_their_fields() {
    let sim = demo().await;
    let client = ec2(&sim, "prod").await;
    let output = client
        .describe_instances()
        .send()
        .await
        .expect("DescribeInstances succeeds");
    assert!(output.request_id().is_some_and(|id| !id.is_empty()));
    for reservation in output.reservations() {
        assert_eq!(reservation.owner_id(), Some(PROD_ACCOUNT));
        assert!(
            reservation
                .reservation_id()
                .is_some_and(|id| id.starts_with("r-"))
        );
    }
    let found = describe_by_name(&client, vec![]).await;
    assert_eq!(names(&found), set(PROD_US_EAST_1));

    let scenario = sim.scenario();
    let expected = scenario.instance_named("web-eic-1").expect("in the demo");
    let subnet = scenario.subnet(&expected.subnet).expect("its subnet");
    let web = &found["web-eic-1"];
    assert_eq!(web.instance_id(), Some(expected.instance_id.as_str()));
    assert_eq!(web.image_id(), Some(expected.image_id.as_str()));
    let state = web.state().expect("a state");
    assert_eq!(
        (state.code(), state.name()),
        (Some(16), Some(&InstanceStateName::Running))
    );
    assert_eq!(web.private_ip_address(), Some("10.10.1.21"));
    assert_eq!(web.private_dns_name(), Some("ip-10-10-1-21.ec2.internal"));
    assert_eq!(web.public_ip_address(), None);
    assert_eq!(web.vpc_id(), Some(subnet.vpc.as_str()));
    assert_eq!(web.subnet_id(), Some(subnet.id.as_str()));
    assert_eq!(
        web.placement().and_then(|p| p.availability_zone()),
        Some("us-east-1a")
    );
    assert_eq!(web.key_name(), Some("prod-ops"));
    assert_eq!(web.platform(), None);
    assert_eq!(web.platform_details(), Some("Linux/UNIX"));
    assert_eq!(web.instance_type().map(|t| t.as_str()), Some("t3.small"));
    assert_eq!(web.architecture(), Some(&ArchitectureValues::X8664));
    assert_eq!(
        web.launch_time().map(|t| t.secs()),
        Some(expected.launch_time.timestamp())
    );
    let tags: BTreeMap<&str, &str> = web
        .tags()
        .iter()
        .filter_map(|tag| Some((tag.key()?, tag.value()?)))
        .collect();
    let login_user = sim
        .login_user()
        .expect("OpenSSH is installed (the tests need sshd)");
    assert_eq!(
        tags,
        BTreeMap::from([
            ("Env", "prod"),
            ("Name", "web-eic-1"),
            ("Team", "web"),
            ("bastionless:user", login_user),
        ])
    );
    let groups: Vec<(Option<&str>, Option<&str>)> = web
        .security_groups()
        .iter()
        .map(|group| (group.group_id(), group.group_name()))
        .collect();
    assert_eq!(
        groups,
        [(Some(expected.security_groups[0].as_str()), Some("web-prod"))]
    );

    let windows = &found["win-ssm-1"];
    // The wire value is lower-case `windows`, which aws-sdk-ec2's `PlatformValues` (modelled as
    // `Windows`) does not recognise: real EC2 gives `PlatformValues::Unknown("windows")` too.
    assert_eq!(
        windows.platform().map(PlatformValues::as_str),
        Some("windows")
    );
    assert_eq!(windows.platform_details(), Some("Windows"));
    let stopped = found["stopped-1"].state().expect("a state");
    assert_eq!(
        (stopped.code(), stopped.name()),
        (Some(80), Some(&InstanceStateName::Stopped))
    );
    let bastion = &found["bastion-1"];
    assert_eq!(bastion.public_ip_address(), Some("203.0.113.10"));
    assert_eq!(
        bastion.public_dns_name(),
        Some("ec2-203-0-113-10.compute-1.amazonaws.com")
    );
    assert_eq!(
        found["api-3"].architecture(),
        Some(&ArchitectureValues::Arm64)
    );
}

#[tokio::test]
async fn filters_select_by_name_tag_state_vpc_and_platform() {
    let sim = demo().await;
    let client = ec2(&sim, "prod").await;
    let core_vpc = sim
        .scenario()
        .vpcs
        .iter()
        .find(|vpc| vpc.name.as_deref() == Some("prod-core"))
        .expect("the demo has prod-core");

    let by_name =
        describe_by_name(&client, vec![filter("tag:Name", &["web-*", "db-both-1"])]).await;
    assert_eq!(
        names(&by_name),
        set(&["web-eic-1", "web-eic-2", "db-both-1"])
    );

    let stopped =
        describe_by_name(&client, vec![filter("instance-state-name", &["stopped"])]).await;
    assert_eq!(names(&stopped), set(&["stopped-1", "batch-worker-2"]));

    let in_core = describe_by_name(&client, vec![filter("vpc-id", &[&core_vpc.id])]).await;
    assert_eq!(
        names(&in_core),
        set(&[
            "web-eic-1",
            "web-eic-2",
            "db-both-1",
            "win-eic-1",
            "stopped-1",
            "api-1",
            "api-2",
            "api-3",
            "bastion-1",
            "grafana-1",
        ])
    );

    let running_windows_in_core = describe_by_name(
        &client,
        vec![
            filter("vpc-id", &[&core_vpc.id]),
            filter("platform", &["windows"]),
            filter("instance-state-name", &["running"]),
        ],
    )
    .await;
    assert_eq!(names(&running_windows_in_core), set(&["win-eic-1"]));

    let teams = describe_by_name(&client, vec![filter("tag:Team", &["finance", "it"])]).await;
    assert_eq!(names(&teams), set(&["win-ssm-1", "win-eic-1", "win-ad-1"]));

    let nothing = describe_by_name(&client, vec![filter("tag:Name", &["no-such-host"])]).await;
    assert!(nothing.is_empty());
}

#[tokio::test]
async fn the_paginator_returns_every_instance_exactly_once() {
    let sim = demo().await;
    let client = ec2(&sim, "prod").await;
    let mut pages = client
        .describe_instances()
        .max_results(5)
        .into_paginator()
        .send();
    let mut ids = Vec::new();
    let mut page_count = 0;
    while let Some(page) = pages.next().await {
        let page = page.expect("each page succeeds");
        page_count += 1;
        let on_page: usize = page
            .reservations()
            .iter()
            .map(|r| r.instances().len())
            .sum();
        assert!(on_page <= 5, "page {page_count} has {on_page} instances");
        for reservation in page.reservations() {
            for instance in reservation.instances() {
                ids.push(instance.instance_id().expect("an id").to_owned());
            }
        }
    }
    assert_eq!(page_count, PROD_US_EAST_1.len().div_ceil(5));
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "an instance was returned twice: {ids:?}"
    );
    assert_eq!(ids.len(), PROD_US_EAST_1.len());
}

#[tokio::test]
async fn a_profile_sees_only_its_own_account_and_region() {
    let sim = demo().await;
    let mut seen: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    for profile in ["prod", "prod-readonly", "prod-eu", "staging", "sandbox"] {
        let client = ec2(&sim, profile).await;
        let found = describe_by_name(&client, vec![]).await;
        let ids = found
            .values()
            .map(|i| i.instance_id().expect("an id").to_owned())
            .collect();
        seen.insert(profile, ids);
    }
    let count = |profile| seen[profile].len();
    assert_eq!(
        [
            count("prod"),
            count("prod-eu"),
            count("staging"),
            count("sandbox")
        ],
        // sandbox: six of its own, and web-clone-1 (the VPC reusing prod-core's addresses).
        [17, 9, 10, 7]
    );
    // Two profiles on the same account and region see the same instances…
    assert_eq!(seen["prod"], seen["prod-readonly"]);
    // …and no instance is visible from two different account/region pairs.
    let pairs = ["prod", "prod-eu", "staging", "sandbox"];
    for (i, a) in pairs.iter().enumerate() {
        for b in &pairs[i + 1..] {
            assert!(seen[a].is_disjoint(&seen[b]), "{a} and {b} overlap");
        }
    }
    // The rest live where no profile calls home (found only by scanning every region).
    let scenario = sim.scenario();
    let away_from_home = scenario
        .instances
        .iter()
        .filter(|instance| {
            let placement = scenario.placement(instance).expect("placed");
            !scenario
                .profiles
                .iter()
                .any(|p| p.account == placement.account && p.region == placement.region)
        })
        .count();
    assert_eq!(away_from_home, 4);
    assert_eq!(
        seen.values().map(BTreeSet::len).sum::<usize>() - count("prod-readonly") + away_from_home,
        scenario.instances.len()
    );
}

#[tokio::test]
async fn instance_ids_select_instances_and_another_accounts_id_is_not_found() {
    let sim = demo().await;
    let client = ec2(&sim, "prod").await;
    let scenario = sim.scenario();
    let app = &scenario
        .instance_named("app-ssm-1")
        .expect("demo")
        .instance_id;
    let db = &scenario
        .instance_named("db-both-1")
        .expect("demo")
        .instance_id;
    let output = client
        .describe_instances()
        .instance_ids(app)
        .instance_ids(db)
        .send()
        .await
        .expect("DescribeInstances succeeds");
    let returned: BTreeSet<&str> = output
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id())
        .collect();
    assert_eq!(returned, BTreeSet::from([app.as_str(), db.as_str()]));

    let sandbox_host = &scenario
        .instance_named("dev-alice-1")
        .expect("demo")
        .instance_id;
    let error = client
        .describe_instances()
        .instance_ids(sandbox_host)
        .send()
        .await
        .expect_err("another account's instance is invisible");
    assert_eq!(error.code(), Some("InvalidInstanceID.NotFound"));
    assert_eq!(
        error.message(),
        Some(format!("The instance ID '{sandbox_host}' does not exist").as_str())
    );

    let malformed = client
        .describe_instances()
        .instance_ids("i-nothex")
        .send()
        .await
        .expect_err("a malformed id");
    assert_eq!(malformed.code(), Some("InvalidInstanceID.Malformed"));
}

#[tokio::test]
async fn max_results_outside_five_to_a_thousand_and_foreign_tokens_are_refused() {
    let sim = demo().await;
    let client = ec2(&sim, "prod").await;
    for max_results in [4, 1001] {
        let error = client
            .describe_instances()
            .max_results(max_results)
            .send()
            .await
            .expect_err("out of range");
        assert_eq!(error.code(), Some("InvalidParameterValue"), "{max_results}");
        assert_eq!(status(&error), Some(400));
    }
    let error = client
        .describe_instances()
        .next_token("not-a-token")
        .send()
        .await
        .expect_err("a made-up token");
    assert_eq!(error.code(), Some("InvalidPaginationToken"));

    // A real token, replayed with different filters, does not continue the other query.
    let first = client
        .describe_instances()
        .max_results(5)
        .send()
        .await
        .expect("first page");
    let token = first.next_token().expect("more pages follow");
    let error = client
        .describe_instances()
        .max_results(5)
        .next_token(token)
        .filters(filter("instance-state-name", &["running"]))
        .send()
        .await
        .expect_err("a token from another query");
    assert_eq!(error.code(), Some("InvalidPaginationToken"));

    let error = client
        .describe_instances()
        .filters(filter("colour", &["blue"]))
        .send()
        .await
        .expect_err("an unknown filter");
    assert_eq!(error.code(), Some("InvalidParameterValue"));
}

#[tokio::test]
async fn dry_run_reports_that_the_request_would_have_succeeded() {
    let sim = demo().await;
    let error = ec2(&sim, "prod")
        .await
        .describe_instances()
        .dry_run(true)
        .send()
        .await
        .expect_err("dry runs always 'fail'");
    assert_eq!(error.code(), Some("DryRunOperation"));
    assert_eq!(status(&error), Some(412));
}

// ---------------------------------------------------------------------------------------------
// Networks: DescribeInstanceConnectEndpoints, DescribeVpcs, DescribeSubnets, DescribeSecurityGroups

const PROD_ENDPOINT: &str = "eice-0c7919e50564c6f7a";
const PROD_CORE_VPC: &str = "vpc-06701fdef60f5dd0d";

#[tokio::test]
async fn describe_instance_connect_endpoints_reports_the_tunnel_listener_as_the_dns_name() {
    let sim = demo().await;
    let client = ec2(&sim, "prod").await;
    // What the AWS CLI asks: endpoints in a state that carries tunnels, in the instance's VPC.
    let output = client
        .describe_instance_connect_endpoints()
        .filters(filter(
            "state",
            &[
                "create-complete",
                "update-in-progress",
                "update-failed",
                "update-complete",
            ],
        ))
        .filters(filter("vpc-id", &[PROD_CORE_VPC]))
        .send()
        .await
        .expect("DescribeInstanceConnectEndpoints succeeds");
    assert!(output.request_id().is_some());
    let [endpoint] = output.instance_connect_endpoints() else {
        panic!("one endpoint: {output:?}");
    };
    assert_eq!(endpoint.instance_connect_endpoint_id(), Some(PROD_ENDPOINT));
    assert_eq!(endpoint.owner_id(), Some(PROD_ACCOUNT));
    assert_eq!(
        endpoint.state().map(|state| state.as_str()),
        Some("create-complete")
    );
    assert_eq!(endpoint.dns_name(), Some(sim.tunnel_endpoint()));
    let port = sim.tunnel_endpoint().rsplit(':').next().expect("a port");
    assert_eq!(
        endpoint.fips_dns_name(),
        Some(format!("localhost:{port}").as_str())
    );
    assert_eq!(endpoint.vpc_id(), Some(PROD_CORE_VPC));
    assert_eq!(endpoint.subnet_id(), Some("subnet-096e388a9429c5ce6"));
    assert_eq!(endpoint.availability_zone(), Some("us-east-1a"));
    assert_eq!(endpoint.preserve_client_ip(), Some(false));
    assert_eq!(endpoint.security_group_ids(), ["sg-0925b5aa79f5c0afe"]);
    assert_eq!(endpoint.network_interface_ids().len(), 1);
    assert_eq!(
        endpoint.instance_connect_endpoint_arn(),
        Some(
            format!(
                "arn:aws:ec2:us-east-1:{PROD_ACCOUNT}:instance-connect-endpoint/{PROD_ENDPOINT}"
            )
            .as_str()
        )
    );
    assert!(endpoint.created_at().is_some());

    // The sandbox's endpoint is still being created: listed, but not in a usable state.
    let sandbox = ec2(&sim, "sandbox").await;
    let all = sandbox
        .describe_instance_connect_endpoints()
        .send()
        .await
        .expect("listed");
    let states: Vec<&str> = all
        .instance_connect_endpoints()
        .iter()
        .filter_map(|e| e.state().map(|s| s.as_str()))
        .collect();
    assert_eq!(states, ["create-in-progress"]);
    assert_eq!(
        all.instance_connect_endpoints()[0].fips_dns_name(),
        Some(format!("localhost:{port}").as_str())
    );
    let usable = sandbox
        .describe_instance_connect_endpoints()
        .filters(filter("state", &["create-complete"]))
        .send()
        .await
        .expect("listed");
    assert!(usable.instance_connect_endpoints().is_empty());

    // eu-west-1 has no FIPS endpoints.
    let eu = ec2(&sim, "prod-eu").await;
    let eu_endpoints = eu
        .describe_instance_connect_endpoints()
        .send()
        .await
        .expect("listed");
    assert_eq!(
        eu_endpoints.instance_connect_endpoints()[0].fips_dns_name(),
        None
    );
}

#[tokio::test]
async fn describe_instance_connect_endpoints_refuses_unknown_and_malformed_ids_and_pages() {
    let sim = demo().await;
    let client = ec2(&sim, "prod").await;
    // The staging account's endpoint does not exist for prod.
    let error = client
        .describe_instance_connect_endpoints()
        .instance_connect_endpoint_ids("eice-03bb9ef0947d2da9a")
        .send()
        .await
        .expect_err("another account's endpoint");
    assert_eq!(
        error.code(),
        Some("InvalidInstanceConnectEndpointId.NotFound")
    );
    assert_eq!(status(&error), Some(400));
    let error = client
        .describe_instance_connect_endpoints()
        .instance_connect_endpoint_ids("eice-xyz")
        .send()
        .await
        .expect_err("malformed");
    assert_eq!(
        error.code(),
        Some("InvalidInstanceConnectEndpointId.Malformed")
    );
    let error = client
        .describe_instance_connect_endpoints()
        .max_results(51)
        .send()
        .await
        .expect_err("over 50");
    assert_eq!(error.code(), Some("InvalidParameterValue"));
    let by_id = client
        .describe_instance_connect_endpoints()
        .instance_connect_endpoint_ids(PROD_ENDPOINT)
        .max_results(1)
        .send()
        .await
        .expect("by id");
    assert_eq!(by_id.instance_connect_endpoints().len(), 1);
    assert_eq!(by_id.next_token(), None);
}

#[tokio::test]
async fn describe_vpcs_and_subnets_list_the_callers_networks_only() {
    let sim = demo().await;
    let client = ec2(&sim, "prod").await;
    let vpcs = client.describe_vpcs().send().await.expect("DescribeVpcs");
    let found: BTreeMap<&str, (Option<&str>, Option<&str>)> = vpcs
        .vpcs()
        .iter()
        .map(|vpc| {
            let name = vpc
                .tags()
                .iter()
                .find(|tag| tag.key() == Some("Name"))
                .and_then(|tag| tag.value());
            (vpc.vpc_id().unwrap_or_default(), (vpc.cidr_block(), name))
        })
        .collect();
    assert_eq!(
        found,
        BTreeMap::from([
            (PROD_CORE_VPC, (Some("10.10.0.0/16"), Some("prod-core"))),
            (
                "vpc-0361ee1da6c087d6d",
                (Some("10.20.0.0/16"), Some("prod-legacy"))
            ),
        ])
    );
    assert!(
        vpcs.vpcs()
            .iter()
            .all(|vpc| vpc.owner_id() == Some(PROD_ACCOUNT)
                && vpc.state().map(|s| s.as_str()) == Some("available")
                && vpc.is_default() == Some(false))
    );

    let subnets = client
        .describe_subnets()
        .filters(filter("vpc-id", &[PROD_CORE_VPC]))
        .send()
        .await
        .expect("DescribeSubnets");
    let mut names: Vec<(&str, &str, &str)> = subnets
        .subnets()
        .iter()
        .map(|subnet| {
            (
                subnet.subnet_id().unwrap_or_default(),
                subnet.cidr_block().unwrap_or_default(),
                subnet.availability_zone().unwrap_or_default(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            ("subnet-092480d006b9f99da", "10.10.2.0/24", "us-east-1b"),
            ("subnet-096e388a9429c5ce6", "10.10.1.0/24", "us-east-1a"),
            ("subnet-0f019c8f0a8e7f20b", "10.10.100.0/24", "us-east-1a"),
        ]
    );
    assert!(
        subnets
            .subnets()
            .iter()
            .all(|subnet| subnet.vpc_id() == Some(PROD_CORE_VPC)
                && subnet.available_ip_address_count().is_some_and(|n| n > 200))
    );

    let error = client
        .describe_vpcs()
        .vpc_ids("vpc-0a99a46f783910329")
        .send()
        .await
        .expect_err("the staging account's VPC");
    assert_eq!(error.code(), Some("InvalidVpcID.NotFound"));
    assert_eq!(
        error.message(),
        Some("The vpc ID 'vpc-0a99a46f783910329' does not exist")
    );
    let error = client
        .describe_subnets()
        .subnet_ids("subnet-00d2dc24496fdaa25")
        .send()
        .await
        .expect_err("the staging account's subnet");
    assert_eq!(error.code(), Some("InvalidSubnetID.NotFound"));
    let error = client
        .describe_subnets()
        .subnet_ids("subnet-1")
        .send()
        .await
        .expect_err("malformed");
    assert_eq!(error.code(), Some("InvalidSubnetID.Malformed"));
}

/// `(name, optInStatus, endpoint)` of every region a `DescribeRegions` answer lists.
fn regions(
    output: &aws_sdk_ec2::operation::describe_regions::DescribeRegionsOutput,
) -> Vec<(&str, &str, &str)> {
    output
        .regions()
        .iter()
        .map(|region| {
            (
                region.region_name().unwrap_or_default(),
                region.opt_in_status().unwrap_or_default(),
                region.endpoint().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn describe_regions_lists_the_regions_each_account_has_enabled() {
    let sim = demo().await;
    let prod = ec2(&sim, "prod").await;
    let enabled = prod
        .describe_regions()
        .send()
        .await
        .expect("DescribeRegions");
    assert_eq!(
        regions(&enabled),
        [
            (
                "us-east-1",
                "opt-in-not-required",
                "ec2.us-east-1.amazonaws.com"
            ),
            (
                "eu-west-1",
                "opt-in-not-required",
                "ec2.eu-west-1.amazonaws.com"
            ),
            (
                "us-west-2",
                "opt-in-not-required",
                "ec2.us-west-2.amazonaws.com"
            ),
            ("eu-south-1", "opted-in", "ec2.eu-south-1.amazonaws.com"),
        ]
    );

    // acme-staging has not opted in to eu-south-1: listed only with AllRegions.
    let staging = ec2(&sim, "staging").await;
    let enabled = staging
        .describe_regions()
        .all_regions(false)
        .send()
        .await
        .expect("DescribeRegions");
    let names: Vec<&str> = regions(&enabled).iter().map(|r| r.0).collect();
    assert_eq!(names, ["us-east-1", "eu-west-1", "us-west-2"]);
    let all = staging
        .describe_regions()
        .all_regions(true)
        .send()
        .await
        .expect("DescribeRegions");
    assert!(
        regions(&all).contains(&("eu-south-1", "not-opted-in", "ec2.eu-south-1.amazonaws.com")),
        "{:?}",
        regions(&all)
    );
    let opted_in = staging
        .describe_regions()
        .all_regions(true)
        .filters(filter(
            "opt-in-status",
            &["opted-in", "opt-in-not-required"],
        ))
        .send()
        .await
        .expect("filtered");
    assert_eq!(regions(&opted_in).len(), 3);
    let named = staging
        .describe_regions()
        .region_names("eu-south-1")
        .send()
        .await
        .expect("named");
    assert_eq!(
        regions(&named),
        [("eu-south-1", "not-opted-in", "ec2.eu-south-1.amazonaws.com")]
    );
    let error = staging
        .describe_regions()
        .region_names("xx-nowhere-1")
        .send()
        .await
        .expect_err("no such region");
    assert_eq!(error.code(), Some("InvalidParameterValue"));
}

#[tokio::test]
async fn a_region_the_account_has_not_enabled_refuses_ec2_calls() {
    let sim = demo().await;
    let config = config_loader(&sim, "staging")
        .region(aws_config::Region::new("eu-south-1"))
        .load()
        .await;
    let error = aws_sdk_ec2::Client::new(&config)
        .describe_instances()
        .send()
        .await
        .expect_err("acme-staging has not opted in to eu-south-1");
    assert_eq!(error.code(), Some("AuthFailure"));

    let config = config_loader(&sim, "prod")
        .region(aws_config::Region::new("eu-south-1"))
        .load()
        .await;
    let milan = aws_sdk_ec2::Client::new(&config)
        .describe_instances()
        .send()
        .await
        .expect("acme-prod has opted in to eu-south-1");
    let names: BTreeSet<String> = milan
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .map(name)
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["api-milan-1".to_owned(), "worker-milan-1".to_owned()])
    );
}

#[tokio::test]
async fn describe_images_names_the_amis_of_the_region_and_a_filter_skips_unknown_ones() {
    let sim = demo().await;
    let client = ec2(&sim, "prod").await;
    let images = client
        .describe_images()
        .filters(filter(
            "image-id",
            &[
                "ami-02360a8ff6d9d8189",
                "ami-0d7db621ada6f356a",
                "ami-0fffffffffffffff0",
            ],
        ))
        .include_deprecated(true)
        .send()
        .await
        .expect("DescribeImages");
    let mut found: Vec<(&str, &str, &str)> = images
        .images()
        .iter()
        .map(|image| {
            (
                image.image_id().unwrap_or_default(),
                image.name().unwrap_or_default(),
                image.platform_details().unwrap_or_default(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            (
                "ami-02360a8ff6d9d8189",
                "al2023-ami-2023.6.20241111.0-kernel-6.1-x86_64",
                "Linux/UNIX"
            ),
            (
                "ami-0d7db621ada6f356a",
                "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20241119",
                "Linux/UNIX"
            ),
        ]
    );
    let error = client
        .describe_images()
        .image_ids("ami-0fffffffffffffff0")
        .send()
        .await
        .expect_err("no instance runs it");
    assert_eq!(error.code(), Some("InvalidAMIID.NotFound"));
}

#[tokio::test]
async fn the_simulator_counts_the_calls_of_each_action() {
    let sim = demo().await;
    let client = ec2(&sim, "prod").await;
    assert_eq!(sim.calls("DescribeRegions"), 0);
    client
        .describe_regions()
        .send()
        .await
        .expect("DescribeRegions");
    client
        .describe_regions()
        .send()
        .await
        .expect("DescribeRegions");
    sim.throttle("DescribeInstances", 1);
    client
        .describe_instances()
        .send()
        .await
        .expect("retried after one throttle");
    assert_eq!(sim.calls("DescribeRegions"), 2);
    assert_eq!(
        sim.calls("DescribeInstances"),
        2,
        "the throttled call counts too"
    );
    assert_eq!(sim.calls("DescribeVpcs"), 0);
}

#[tokio::test]
async fn describe_security_groups_reports_rules_with_ranges_and_group_references() {
    let sim = demo().await;
    let client = ec2(&sim, "prod").await;
    let output = client
        .describe_security_groups()
        .filters(filter("group-name", &["web-prod", "eice-prod-core"]))
        .send()
        .await
        .expect("DescribeSecurityGroups");
    let groups: BTreeMap<&str, &aws_sdk_ec2::types::SecurityGroup> = output
        .security_groups()
        .iter()
        .map(|group| (group.group_name().unwrap_or_default(), group))
        .collect();
    assert_eq!(groups.len(), 2);
    let web = groups["web-prod"];
    let endpoint_group = groups["eice-prod-core"].group_id().expect("an id");
    assert_eq!(web.vpc_id(), Some(PROD_CORE_VPC));
    assert_eq!(web.owner_id(), Some(PROD_ACCOUNT));
    assert_eq!(web.description(), Some("Web servers"));
    let ssh = web
        .ip_permissions()
        .iter()
        .find(|rule| rule.from_port() == Some(22))
        .expect("an SSH rule");
    assert_eq!((ssh.ip_protocol(), ssh.to_port()), (Some("tcp"), Some(22)));
    assert_eq!(
        ssh.user_id_group_pairs()
            .iter()
            .map(|pair| (pair.group_id(), pair.user_id()))
            .collect::<Vec<_>>(),
        [(Some(endpoint_group), Some(PROD_ACCOUNT))]
    );
    let https = web
        .ip_permissions()
        .iter()
        .find(|rule| rule.from_port() == Some(443))
        .expect("an HTTPS rule");
    assert_eq!(
        https
            .ip_ranges()
            .iter()
            .map(|r| r.cidr_ip())
            .collect::<Vec<_>>(),
        [Some("0.0.0.0/0")]
    );
    // No egress rules written: EC2's default, all traffic anywhere.
    let [egress] = web.ip_permissions_egress() else {
        panic!("one egress rule: {:?}", web.ip_permissions_egress());
    };
    assert_eq!(egress.ip_protocol(), Some("-1"));
    assert_eq!(egress.from_port(), None);
    assert_eq!(egress.ip_ranges()[0].cidr_ip(), Some("0.0.0.0/0"));
    let endpoint_egress = groups["eice-prod-core"].ip_permissions_egress();
    assert_eq!(
        endpoint_egress
            .iter()
            .map(|rule| (rule.from_port(), rule.ip_ranges()[0].cidr_ip()))
            .collect::<Vec<_>>(),
        [
            (Some(22), Some("10.10.0.0/16")),
            (Some(3389), Some("10.10.0.0/16"))
        ]
    );

    let by_reference = client
        .describe_security_groups()
        .filters(filter("ip-permission.group-id", &[endpoint_group]))
        .send()
        .await
        .expect("filtered");
    let mut names: Vec<&str> = by_reference
        .security_groups()
        .iter()
        .filter_map(|g| g.group_name())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["api-prod", "db-prod", "web-prod", "windows-prod"]);

    let error = client
        .describe_security_groups()
        .group_ids("sg-0e26af9dae2387c50")
        .send()
        .await
        .expect_err("the staging account's group");
    assert_eq!(error.code(), Some("InvalidGroup.NotFound"));
    let error = client
        .describe_security_groups()
        .group_ids("sg-nope")
        .send()
        .await
        .expect_err("malformed");
    assert_eq!(error.code(), Some("InvalidGroupId.Malformed"));
}

// ---------------------------------------------------------------------------------------------
// SendSSHPublicKey

/// A throwaway Ed25519 public key (`ssh-keygen -t ed25519`).
const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICecYJaEuSVtOtgrQHI9WX4t2/l4VMsyV9DEy3tc1ySR test";
const WEB_EIC_1: &str = "i-06133c3aacf6f15d2";
const STOPPED_1: &str = "i-09cb4e55db51d4c1b";

async fn instance_connect(sim: &Simulator, profile: &str) -> aws_sdk_ec2instanceconnect::Client {
    aws_sdk_ec2instanceconnect::Client::new(&sdk_config(sim, profile).await)
}

#[tokio::test]
async fn send_ssh_public_key_stores_the_key_for_sixty_seconds() {
    let sim = demo().await;
    let client = instance_connect(&sim, "prod").await;
    let output = client
        .send_ssh_public_key()
        .instance_id(WEB_EIC_1)
        .instance_os_user("ec2-user")
        .ssh_public_key(PUBLIC_KEY)
        .send()
        .await
        .expect("SendSSHPublicKey succeeds");
    assert!(output.success());
    assert!(output.request_id().is_some_and(|id| !id.is_empty()));
    assert_eq!(sim.pushed_keys(WEB_EIC_1, "ec2-user"), [PUBLIC_KEY]);
    assert!(sim.pushed_keys(WEB_EIC_1, "root").is_empty());

    // With the right availability zone too.
    client
        .send_ssh_public_key()
        .instance_id(WEB_EIC_1)
        .instance_os_user("ec2-user")
        .ssh_public_key(PUBLIC_KEY)
        .availability_zone("us-east-1a")
        .send()
        .await
        .expect("the right zone");
    assert_eq!(sim.pushed_keys(WEB_EIC_1, "ec2-user").len(), 2);
}

#[tokio::test]
async fn send_ssh_public_key_reports_each_modelled_error() {
    use aws_sdk_ec2instanceconnect::operation::send_ssh_public_key::SendSSHPublicKeyError;
    let sim = demo().await;
    let client = instance_connect(&sim, "prod").await;
    let send = |instance: &str, user: &str, key: &str| {
        client
            .send_ssh_public_key()
            .instance_id(instance)
            .instance_os_user(user)
            .ssh_public_key(key)
            .send()
    };

    let error = send("i-0e36bb46106d84041", "ec2-user", PUBLIC_KEY)
        .await
        .expect_err("the staging account's instance");
    assert!(
        matches!(
            error.as_service_error(),
            Some(SendSSHPublicKeyError::Ec2InstanceNotFoundException(_))
        ),
        "{error:?}"
    );
    let error = client
        .send_ssh_public_key()
        .instance_id(WEB_EIC_1)
        .instance_os_user("ec2-user")
        .ssh_public_key(PUBLIC_KEY)
        .availability_zone("us-east-1b")
        .send()
        .await
        .expect_err("the wrong zone");
    assert_eq!(error.code(), Some("EC2InstanceNotFoundException"));

    let error = send(STOPPED_1, "ec2-user", PUBLIC_KEY)
        .await
        .expect_err("stopped");
    assert!(
        matches!(
            error.as_service_error(),
            Some(SendSSHPublicKeyError::Ec2InstanceStateInvalidException(_))
        ),
        "{error:?}"
    );

    let error = send("mi-048afb7f6460a110d", "ec2-user", PUBLIC_KEY)
        .await
        .expect_err("not an instance id");
    assert!(
        matches!(
            error.as_service_error(),
            Some(SendSSHPublicKeyError::InvalidArgsException(_))
        ),
        "{error:?}"
    );
    assert_eq!(
        error.message(),
        Some(
            "1 validation error detected: Value 'mi-048afb7f6460a110d' at 'instanceId' failed to satisfy constraint: Member must satisfy regular expression pattern: ^i-[a-f0-9]+$"
        )
    );
    let error = send(WEB_EIC_1, "ec2 user", PUBLIC_KEY)
        .await
        .expect_err("a space in the user");
    assert_eq!(error.code(), Some("InvalidArgsException"));
    assert!(
        error
            .message()
            .is_some_and(|m| m.contains("'instanceOSUser'")),
        "{error:?}"
    );
    let short = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICecYJaEuSVtOtgrQHI9WX4t2";
    let error = send(WEB_EIC_1, "ec2-user", short)
        .await
        .expect_err("too short");
    assert_eq!(
        error.message(),
        Some(
            "1 validation error detected: Value at 'sSHPublicKey' failed to satisfy constraint: Member must have length greater than or equal to 80"
        )
    );
    // Three bytes more than an Ed25519 key blob holds.
    let corrupt = PUBLIC_KEY.replace(" test", "AAAA test");
    let error = send(WEB_EIC_1, "ec2-user", &corrupt)
        .await
        .expect_err("a corrupt key");
    assert_eq!(
        error.message(),
        Some(
            "Invalid input parameter received for Illegal argument exception: ED25519 - SSH Public key is invalid"
        )
    );

    let readonly = instance_connect(&sim, "prod-readonly").await;
    let error = readonly
        .send_ssh_public_key()
        .instance_id(WEB_EIC_1)
        .instance_os_user("ec2-user")
        .ssh_public_key(PUBLIC_KEY)
        .send()
        .await
        .expect_err("denied");
    assert_eq!(error.code(), Some("AccessDeniedException"));
    assert!(
        error.message().is_some_and(|m| m.contains(
            "user/auditor is not authorized to perform: ec2-instance-connect:SendSSHPublicKey"
        )),
        "{error:?}"
    );

    let config = sdk_config(&sim, "prod").await;
    let profile = sim.scenario().profile("prod").expect("prod");
    let wrong_secret = aws_sdk_ec2instanceconnect::config::Builder::from(&config)
        .credentials_provider(Credentials::new(
            &profile.access_key_id,
            "not-the-secret",
            None,
            None,
            "test",
        ))
        .build();
    let error = aws_sdk_ec2instanceconnect::Client::from_conf(wrong_secret)
        .send_ssh_public_key()
        .instance_id(WEB_EIC_1)
        .instance_os_user("ec2-user")
        .ssh_public_key(PUBLIC_KEY)
        .send()
        .await
        .expect_err("a wrong secret");
    assert!(
        matches!(
            error.as_service_error(),
            Some(SendSSHPublicKeyError::AuthException(_))
        ),
        "{error:?}"
    );

    // The SDK retries throttling (three attempts by default): two throttled calls are
    // absorbed, three are not.
    sim.throttle("SendSSHPublicKey", 2);
    send(WEB_EIC_1, "ec2-user", PUBLIC_KEY)
        .await
        .expect("retried past two throttled attempts");
    sim.throttle("SendSSHPublicKey", 3);
    let error = send(WEB_EIC_1, "ec2-user", PUBLIC_KEY)
        .await
        .expect_err("throttled three times");
    assert!(
        matches!(
            error.as_service_error(),
            Some(SendSSHPublicKeyError::ThrottlingException(_))
        ),
        "{error:?}"
    );
    assert!(sim.pushed_keys(STOPPED_1, "ec2-user").is_empty());
}

// ---------------------------------------------------------------------------------------------
// STS

#[tokio::test]
async fn get_caller_identity_returns_the_profiles_account_and_user() {
    let sim = demo().await;
    let identity = sts(&sim, "staging")
        .await
        .get_caller_identity()
        .send()
        .await
        .expect("GetCallerIdentity succeeds");
    assert_eq!(identity.account(), Some("444455556666"));
    assert_eq!(identity.arn(), Some("arn:aws:iam::444455556666:user/alice"));
    let user_id = identity.user_id().expect("a user id");
    assert!(
        user_id.starts_with("AIDA") && user_id.len() == 21,
        "{user_id}"
    );
    assert!(identity.request_id().is_some());

    let prod_eu = sts(&sim, "prod-eu")
        .await
        .get_caller_identity()
        .send()
        .await;
    assert_eq!(
        prod_eu.expect("GetCallerIdentity succeeds").account(),
        Some(PROD_ACCOUNT)
    );
}

// ---------------------------------------------------------------------------------------------
// Authentication

#[tokio::test]
async fn a_wrong_secret_is_rejected_with_auth_failure_by_ec2_and_signature_does_not_match_by_sts() {
    let sim = demo().await;
    let prod = sim.scenario().profile("prod").expect("demo profile");
    let config = config_loader(&sim, "prod")
        .credentials_provider(Credentials::new(
            &prod.access_key_id,
            "not-the-secret",
            None,
            None,
            "test",
        ))
        .load()
        .await;

    let ec2_error = aws_sdk_ec2::Client::new(&config)
        .describe_instances()
        .send()
        .await
        .expect_err("a wrong secret");
    assert_eq!(ec2_error.code(), Some("AuthFailure"));
    assert_eq!(
        ec2_error.message(),
        Some("AWS was not able to validate the provided access credentials")
    );
    assert_eq!(status(&ec2_error), Some(401));

    let sts_error = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .expect_err("a wrong secret");
    assert_eq!(sts_error.code(), Some("SignatureDoesNotMatch"));
    assert_eq!(
        sts_error.raw_response().map(|r| r.status().as_u16()),
        Some(403)
    );
}

#[tokio::test]
async fn an_unknown_access_key_is_auth_failure_for_ec2_and_invalid_client_token_id_for_sts() {
    let sim = demo().await;
    let config = config_loader(&sim, "prod")
        .credentials_provider(Credentials::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            None,
            None,
            "test",
        ))
        .load()
        .await;
    let ec2_error = aws_sdk_ec2::Client::new(&config)
        .describe_instances()
        .send()
        .await
        .expect_err("an unknown key");
    assert_eq!(ec2_error.code(), Some("AuthFailure"));
    assert_eq!(status(&ec2_error), Some(401));

    let sts_error = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .expect_err("an unknown key");
    assert_eq!(sts_error.code(), Some("InvalidClientTokenId"));
    assert_eq!(
        sts_error.message(),
        Some("The security token included in the request is invalid.")
    );
}

#[tokio::test]
async fn a_request_signed_for_a_region_the_scenario_lacks_is_refused() {
    let sim = demo().await;
    let config = config_loader(&sim, "prod")
        .region(aws_config::Region::new("ap-south-1"))
        .load()
        .await;
    let ec2_error = aws_sdk_ec2::Client::new(&config)
        .describe_instances()
        .send()
        .await
        .expect_err("no such region in the scenario");
    assert_eq!(ec2_error.code(), Some("AuthFailure"));
    let sts_error = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .expect_err("no such region in the scenario");
    assert_eq!(sts_error.code(), Some("SignatureDoesNotMatch"));
}

#[tokio::test]
async fn a_body_changed_after_signing_is_rejected() {
    let sim = demo().await;
    let config = sdk_config(&sim, "prod").await;
    let tamper = || EditBody {
        after_signing: true,
        edit: |body| body.replace("Version=2", "Version=3"),
    };
    let ec2_config = aws_sdk_ec2::config::Builder::from(&config)
        .interceptor(tamper())
        .build();
    let error = aws_sdk_ec2::Client::from_conf(ec2_config)
        .describe_instances()
        .send()
        .await
        .expect_err("the signature covers the body");
    assert_eq!(error.code(), Some("AuthFailure"));

    let sts_config = aws_sdk_sts::config::Builder::from(&config)
        .interceptor(tamper())
        .build();
    let error = aws_sdk_sts::Client::from_conf(sts_config)
        .get_caller_identity()
        .send()
        .await
        .expect_err("the signature covers the body");
    assert_eq!(error.code(), Some("SignatureDoesNotMatch"));

    // The same edit made before signing is a validly signed request again.
    let honest = aws_sdk_sts::config::Builder::from(&config)
        .interceptor(EditBody {
            after_signing: false,
            edit: |body| body.to_owned(),
        })
        .build();
    aws_sdk_sts::Client::from_conf(honest)
        .get_caller_identity()
        .send()
        .await
        .expect("an unmodified body is accepted");
}

#[tokio::test]
async fn an_unknown_action_is_invalid_action_in_each_protocols_shape() {
    let sim = demo().await;
    let config = sdk_config(&sim, "prod").await;
    let ec2_config = aws_sdk_ec2::config::Builder::from(&config)
        .interceptor(EditBody {
            after_signing: false,
            edit: |body| body.replace("Action=DescribeInstances", "Action=DescribeInstancez"),
        })
        .build();
    let error = aws_sdk_ec2::Client::from_conf(ec2_config)
        .describe_instances()
        .send()
        .await
        .expect_err("no such action");
    assert_eq!(error.code(), Some("InvalidAction"));

    let sts_config = aws_sdk_sts::config::Builder::from(&config)
        .interceptor(EditBody {
            after_signing: false,
            edit: |body| body.replace("Action=GetCallerIdentity", "Action=GetCallerIdentitz"),
        })
        .build();
    let error = aws_sdk_sts::Client::from_conf(sts_config)
        .get_caller_identity()
        .send()
        .await
        .expect_err("no such action");
    assert_eq!(error.code(), Some("InvalidAction"));
}

#[tokio::test]
async fn an_unsigned_request_is_refused_in_the_services_own_format() {
    let sim = demo().await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let sts = send_raw(
        &sim,
        "POST",
        "/",
        &form,
        "Action=GetCallerIdentity&Version=2011-06-15",
    )
    .await;
    assert_eq!(sts.status, 403);
    assert!(
        sts.body
            .contains("<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"),
        "{}",
        sts.body
    );
    assert!(
        sts.body.contains("<Code>MissingAuthenticationToken</Code>"),
        "{}",
        sts.body
    );
    let request_id = &sts.headers["x-amzn-requestid"];
    assert!(
        sts.body
            .contains(&format!("<RequestId>{request_id}</RequestId>")),
        "{}",
        sts.body
    );

    let ec2 = send_raw(
        &sim,
        "POST",
        "/",
        &form,
        "Action=DescribeInstances&Version=2016-11-15",
    )
    .await;
    assert_eq!(ec2.status, 400);
    assert!(
        ec2.body
            .contains("<Response><Errors><Error><Code>MissingParameter</Code>"),
        "{}",
        ec2.body
    );
}

#[tokio::test]
async fn a_presigned_get_caller_identity_url_works_until_it_expires() {
    let sim = demo().await;
    let ten_minutes_ago = SystemTime::now() - Duration::from_secs(600);
    let fresh = send_raw(
        &sim,
        "GET",
        &presigned_get_caller_identity(&sim, ten_minutes_ago),
        &[],
        "",
    )
    .await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert!(
        fresh
            .body
            .contains(&format!("<Account>{PROD_ACCOUNT}</Account>")),
        "{}",
        fresh.body
    );

    let twenty_minutes_ago = SystemTime::now() - Duration::from_secs(1200);
    let stale = send_raw(
        &sim,
        "GET",
        &presigned_get_caller_identity(&sim, twenty_minutes_ago),
        &[],
        "",
    )
    .await;
    assert_eq!(stale.status, 403);
    assert!(
        stale.body.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{}",
        stale.body
    );
    assert!(stale.body.contains("Signature expired"), "{}", stale.body);

    let tampered = presigned_get_caller_identity(&sim, ten_minutes_ago)
        .replace("X-Amz-Expires=900", "X-Amz-Expires=901");
    let refused = send_raw(&sim, "GET", &tampered, &[], "").await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("<Code>SignatureDoesNotMatch</Code>"),
        "{}",
        refused.body
    );
}

/// `POST /` with a header signature made at `time` by the `prod` profile.
async fn post_signed_at(
    sim: &Simulator,
    service: &str,
    time: SystemTime,
    body: &str,
) -> RawResponse {
    let host = authority(sim);
    let content_type = "application/x-www-form-urlencoded; charset=utf-8";
    let signed_headers = [("host", host.as_str()), ("content-type", content_type)];
    let instructions = sign(
        sim,
        &ToSign {
            service,
            time,
            presign_for: None,
            method: "POST",
            url: &format!("{}/", sim.endpoint_url()),
            headers: &signed_headers,
            body,
        },
    );
    let mut headers = signed_headers.to_vec();
    headers.extend(instructions.headers());
    send_raw(sim, "POST", "/", &headers, body).await
}

#[tokio::test]
async fn a_request_signed_an_hour_ago_is_request_expired_for_ec2() {
    let sim = demo().await;
    let body = "Action=DescribeInstances&Version=2016-11-15";
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    let stale = post_signed_at(&sim, "ec2", an_hour_ago, body).await;
    assert_eq!(stale.status, 400, "{}", stale.body);
    assert!(
        stale.body.contains("<Code>RequestExpired</Code>"),
        "{}",
        stale.body
    );

    // Signed now, the same request is fine: the clock was the only problem.
    let fresh = post_signed_at(&sim, "ec2", SystemTime::now(), body).await;
    assert_eq!(fresh.status, 200, "{}", fresh.body);
    assert!(
        fresh.body.contains("<DescribeInstancesResponse"),
        "{}",
        fresh.body
    );
}

/// A client clock running behind the real one.
#[derive(Debug)]
struct SlowClock(Duration);

impl aws_smithy_async::time::TimeSource for SlowClock {
    fn now(&self) -> SystemTime {
        SystemTime::now() - self.0
    }
}

#[tokio::test]
async fn an_sdk_with_a_slow_clock_corrects_itself_from_the_date_header_against_sts() {
    let sim = demo().await;
    let config = config_loader(&sim, "prod")
        .time_source(SlowClock(Duration::from_secs(3600)))
        .load()
        .await;
    let identity = aws_sdk_sts::Client::new(&config)
        .get_caller_identity()
        .send()
        .await
        .expect("the SDK retries with the skew the Date header reveals");
    assert_eq!(identity.account(), Some(PROD_ACCOUNT));
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

#[test]
fn a_background_simulator_serves_without_a_runtime_and_cleans_up_on_drop() {
    let sim = BackgroundSimulator::start(Scenario::demo()).expect("starts");
    let config_file = sim.config_file().to_owned();
    let endpoint = sim.endpoint_url();
    let env: BTreeMap<String, String> = sim.env_vars().into_iter().collect();
    assert_eq!(env["AWS_CONFIG_FILE"], config_file.display().to_string());
    assert_eq!(
        env["AWS_SHARED_CREDENTIALS_FILE"],
        sim.credentials_file().display().to_string()
    );
    assert_eq!(env["AWS_EC2_METADATA_DISABLED"], "true");
    let ca_bundle = sim.ca_bundle().expect("TLS by default").to_owned();
    assert_eq!(env["AWS_CA_BUNDLE"], ca_bundle.display().to_string());
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    let config_text = std::fs::read_to_string(&config_file).expect("config written");
    assert!(config_text.contains(&format!("endpoint_url = {endpoint}")));
    assert!(config_text.contains(&format!("ca_bundle = {}", ca_bundle.display())));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let account = runtime.block_on(async {
        let config = loader_for(
            sim.config_file(),
            sim.credentials_file(),
            &ca_bundle,
            "sandbox",
        )
        .load()
        .await;
        aws_sdk_sts::Client::new(&config)
            .get_caller_identity()
            .send()
            .await
            .expect("served")
            .account()
            .map(str::to_owned)
    });
    assert_eq!(account.as_deref(), Some("444455556666"));

    drop(sim);
    assert!(
        !config_file.exists(),
        "the config file outlived the simulator"
    );
    let address = endpoint.trim_start_matches("https://");
    assert!(
        std::net::TcpStream::connect(address).is_err(),
        "still listening after drop"
    );
}

#[cfg(unix)]
#[test]
fn the_binary_prints_exports_serves_and_cleans_up_on_sigterm() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_bastionless-sim"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the binary runs");
    let stdout = child.stdout.take().expect("piped stdout");
    let exports: BTreeMap<String, String> = std::io::BufReader::new(stdout)
        .lines()
        .take(4)
        .map(|line| {
            let line = line.expect("a line");
            let (name, value) = line
                .strip_prefix("export ")
                .and_then(|rest| rest.split_once('='))
                .unwrap_or_else(|| panic!("not an export line: {line}"));
            (name.to_owned(), value.trim_matches('\'').to_owned())
        })
        .collect();
    assert_eq!(exports["AWS_EC2_METADATA_DISABLED"], "true");
    let config_file = std::path::PathBuf::from(&exports["AWS_CONFIG_FILE"]);
    let credentials_file = std::path::PathBuf::from(&exports["AWS_SHARED_CREDENTIALS_FILE"]);
    let ca_bundle = std::path::PathBuf::from(&exports["AWS_CA_BUNDLE"]);
    let config_text = std::fs::read_to_string(&config_file).expect("config written");
    assert!(config_text.contains("[profile prod]"), "{config_text}");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let account = runtime.block_on(async {
        let config = loader_for(&config_file, &credentials_file, &ca_bundle, "prod")
            .load()
            .await;
        aws_sdk_sts::Client::new(&config)
            .get_caller_identity()
            .send()
            .await
            .expect("the binary serves")
            .account()
            .map(str::to_owned)
    });
    assert_eq!(account.as_deref(), Some(PROD_ACCOUNT));

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "{exit}");
    assert!(!config_file.exists() && !credentials_file.exists() && !ca_bundle.exists());
}

// ---------------------------------------------------------------------------------------------
// The product's inventory engine against the simulator: every enabled region of every account,
// each scanned once, and the disk cache between runs.

mod inventory_engine {
    use super::*;
    use bastionless_core::engine::{Engine, EngineConfig, ProfileState, Snapshot};
    use bastionless_core::inventory::Host;
    use bastionless_core::profiles::AwsFiles;
    use bastionless_core::route::{Method, Verdict};
    use std::sync::Arc;

    const REFRESH: Duration = Duration::from_secs(60);

    fn files(sim: &BackgroundSimulator) -> AwsFiles {
        AwsFiles::at(sim.config_file(), sim.credentials_file())
    }

    /// Starts an engine and waits for its first refresh to finish.
    fn refreshed(config: EngineConfig) -> (Engine, Arc<Snapshot>) {
        let engine = Engine::start(config).expect("the engine starts");
        let snapshot = engine.wait_until(REFRESH, |s| !s.refreshing);
        assert!(!snapshot.refreshing, "no refresh within {REFRESH:?}");
        (engine, snapshot)
    }

    fn named<'a>(snapshot: &'a Snapshot, name: &str) -> &'a Host {
        let found = snapshot.find_hosts(name);
        assert_eq!(found.len(), 1, "{name}: {found:?}");
        found[0]
    }

    fn status<'a>(
        snapshot: &'a Snapshot,
        profile: &str,
    ) -> &'a bastionless_core::engine::ProfileStatus {
        snapshot
            .profiles
            .iter()
            .find(|p| p.name == profile)
            .unwrap_or_else(|| panic!("no profile {profile}"))
    }

    #[test]
    fn every_enabled_region_of_each_account_is_scanned_once_whatever_its_profiles() {
        let sim = BackgroundSimulator::start(Scenario::demo()).expect("the simulator starts");
        let (_engine, snapshot) = refreshed(EngineConfig::new(files(&sim)));

        // Hosts where no profile calls home are found: acme-prod's in its opt-in region,
        // acme-staging's in eu-west-1.
        let milan = named(&snapshot, "api-milan-1");
        assert_eq!(
            (milan.region.as_str(), milan.profile.as_str()),
            ("eu-south-1", "prod")
        );
        let staging_eu = named(&snapshot, "web-stg-eu-1");
        assert_eq!(
            (staging_eu.region.as_str(), staging_eu.profile.as_str()),
            ("eu-west-1", "sandbox")
        );
        let live = sim
            .scenario()
            .instances
            .iter()
            .filter(|i| i.state.name() != "terminated")
            .count();
        assert_eq!(snapshot.hosts.len(), live, "every instance, each once");
        assert!(snapshot.hosts.iter().all(|h| !h.stale));

        // acme-prod has 4 enabled regions, acme-staging 3 (it has not opted in to eu-south-1):
        // one DescribeInstances each, although five profiles reach the two accounts.
        assert_eq!(sim.calls("GetCallerIdentity"), 5);
        assert_eq!(sim.calls("DescribeRegions"), 2);
        assert_eq!(sim.calls("DescribeInstances"), 7);
        assert_eq!(sim.calls("DescribeInstanceConnectEndpoints"), 7);
        // acme-prod has no instances in us-west-2: nothing there to ask Systems Manager about.
        assert_eq!(sim.calls("DescribeInstanceInformation"), 6);
        assert_eq!(snapshot.progress.regions_done, 7);
        assert_eq!(snapshot.progress.regions_total, 7);

        assert_eq!(
            status(&snapshot, "prod-eu").same_account_as.as_deref(),
            Some("prod")
        );
        assert_eq!(
            status(&snapshot, "prod-eu").state,
            ProfileState::Ready { hosts: 0 }
        );
        assert_eq!(
            status(&snapshot, "staging").same_account_as.as_deref(),
            Some("sandbox")
        );
        let prod_hosts = snapshot
            .hosts
            .iter()
            .filter(|h| h.profile == "prod")
            .count();
        assert_eq!(
            status(&snapshot, "prod").state,
            ProfileState::Ready { hosts: prod_hosts }
        );
        for profile in &snapshot.profiles {
            assert!(
                profile.warnings.is_empty(),
                "{}: {:?}",
                profile.name,
                profile.warnings
            );
        }

        // Every host has its routes, from the endpoints and groups of its own region.
        assert_eq!(snapshot.routes.len(), live);
        let badge = |name: &str| {
            snapshot
                .route(named(&snapshot, name))
                .expect("routed")
                .badge()
        };
        assert_eq!(badge("web-eic-1"), "EIC");
        assert_eq!(
            badge("api-milan-1"),
            "EIC",
            "admitted by the endpoint's subnet range"
        );
        // The sandbox endpoint is still being created; dev-alice-1 admits SSH from anywhere.
        assert_eq!(badge("dev-alice-1"), "Direct");
        assert_eq!(badge("app-ssm-1"), "SSM");
        let cache = snapshot
            .route(named(&snapshot, "cache-eu-1"))
            .expect("routed");
        let eic = cache
            .routes
            .iter()
            .find(|r| r.method == Method::Eic)
            .expect("EIC");
        assert_eq!(eic.verdict, Verdict::Blocked, "{eic:?}");
    }

    #[test]
    fn the_regions_setting_narrows_every_account_to_those_regions() {
        let sim = BackgroundSimulator::start(Scenario::demo()).expect("the simulator starts");
        let mut config = EngineConfig::new(files(&sim));
        config.regions = Some(vec!["eu-south-1".to_owned()]);
        let (_engine, snapshot) = refreshed(config);
        let names: BTreeSet<&str> = snapshot.hosts.iter().map(Host::display_name).collect();
        assert_eq!(names, BTreeSet::from(["api-milan-1", "worker-milan-1"]));
        assert_eq!(sim.calls("DescribeInstances"), 1);
        let sandbox = status(&snapshot, "sandbox");
        assert_eq!(sandbox.state, ProfileState::Ready { hosts: 0 });
        assert!(
            sandbox.warnings.iter().any(|w| w.contains(
                "None of the regions to scan (eu-south-1) is enabled in account 444455556666"
            )),
            "{:?}",
            sandbox.warnings
        );
    }

    /// Copies of the simulator's files in which every secret key is wrong.
    fn with_wrong_secrets(sim: &BackgroundSimulator, dir: &Path) -> AwsFiles {
        let config = dir.join("config");
        let credentials = dir.join("credentials");
        std::fs::copy(sim.config_file(), &config).expect("config copied");
        let text = std::fs::read_to_string(sim.credentials_file()).expect("readable");
        let wrong: String = text
            .lines()
            .map(|line| match line.split_once('=') {
                Some((key, _)) if key.trim() == "aws_secret_access_key" => {
                    "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n".to_owned()
                }
                _ => format!("{line}\n"),
            })
            .collect();
        assert!(
            wrong.contains("EXAMPLEKEY"),
            "the credentials file holds secrets"
        );
        std::fs::write(&credentials, wrong).expect("written");
        AwsFiles::at(config, credentials)
    }

    #[test]
    fn the_disk_cache_shows_the_last_hosts_at_once_marked_stale_until_rescanned() {
        let sim = BackgroundSimulator::start(Scenario::demo()).expect("the simulator starts");
        let dir = tempfile::tempdir().expect("a temporary directory");
        let cache_file = dir.path().join("cache").join("inventory.bin");
        let cached = |files: AwsFiles| EngineConfig {
            cache_file: Some(cache_file.clone()),
            ..EngineConfig::new(files)
        };

        // The cache is written before the refresh is reported done.
        let (first, scanned) = refreshed(cached(files(&sim)));
        drop(first);
        let text =
            String::from_utf8_lossy(&std::fs::read(&cache_file).expect("the cache")).into_owned();
        assert!(
            text.contains("api-milan-1") && !text.contains("secret"),
            "{text:.200}"
        );

        // No profile can sign in: the cached hosts show at once and stay, marked stale.
        let broken = tempfile::tempdir().expect("a temporary directory");
        let engine = Engine::start(cached(with_wrong_secrets(&sim, broken.path())))
            .expect("the engine starts");
        // The engine reads the cache on its own threads; the snapshot after it lists them.
        let at_start = engine.wait_until(REFRESH, |s| !s.loading_cache);
        assert_eq!(at_start.hosts.len(), scanned.hosts.len());
        assert!(at_start.hosts.iter().all(|h| h.stale));
        assert!(at_start.cached_at.is_some());
        // Routes from the cached facts follow the first snapshot, worked out off its path.
        let routed = engine.wait_until(REFRESH, |s| s.routes.len() == scanned.routes.len());
        assert_eq!(
            routed.routes.len(),
            scanned.routes.len(),
            "routes from cached facts"
        );
        let after = engine.wait_until(REFRESH, |s| !s.refreshing);
        assert_eq!(after.failed_profiles().count(), 5);
        assert_eq!(after.hosts.len(), scanned.hosts.len());
        assert!(after.hosts.iter().all(|h| h.stale));
        drop(engine);

        // A damaged cache is a warning, and the next refresh replaces it.
        std::fs::write(&cache_file, "{\"version\": 1, \"regions\": [").expect("written");
        let engine = Engine::start(cached(files(&sim))).expect("the engine starts");
        let at_start = engine.wait_until(REFRESH, |s| !s.loading_cache);
        assert!(at_start.hosts.is_empty());
        assert!(
            at_start.warnings.iter().any(|w| w.contains("is unusable")),
            "{:?}",
            at_start.warnings
        );
        let after = engine.wait_until(REFRESH, |s| !s.refreshing);
        assert!(after.hosts.iter().all(|h| !h.stale));
        assert_eq!(after.cached_at, None);
        drop(engine);
        assert!(
            matches!(
                bastionless_core::inventory::InventoryCache::load(&cache_file),
                Ok(Some(_))
            ),
            "the cache was rewritten"
        );

        // With working profiles, every cached host is confirmed by the scan.
        let (_engine, rescanned) = refreshed(cached(files(&sim)));
        assert!(rescanned.hosts.iter().all(|h| !h.stale));
        assert_eq!(rescanned.cached_at, None);
        assert_eq!(rescanned.hosts.len(), scanned.hosts.len());
    }
}

// ---------------------------------------------------------------------------------------------
// Fault injection

/// The SDK's default retry budget: three attempts per call.
const SDK_ATTEMPTS: u64 = 3;

#[tokio::test]
async fn injected_latency_delays_only_the_actions_it_names() {
    let sim = demo().await;
    let client = ec2(&sim, "prod").await;
    client.describe_regions().send().await.expect("warm-up");
    sim.inject(
        FaultRule::action("DescribeVpcs")
            .latency(Duration::from_millis(400), Duration::from_millis(100)),
    );

    let started = std::time::Instant::now();
    client.describe_vpcs().send().await.expect("DescribeVpcs");
    let slow = started.elapsed();
    let started = std::time::Instant::now();
    client
        .describe_regions()
        .send()
        .await
        .expect("DescribeRegions");
    let fast = started.elapsed();

    assert!(slow >= Duration::from_millis(400), "{slow:?}");
    assert!(slow < Duration::from_secs(5), "{slow:?}");
    assert!(fast < Duration::from_millis(400), "{fast:?}");
}

#[tokio::test]
async fn injected_throttling_at_full_rate_exhausts_the_sdks_retries() {
    let sim = demo().await;
    let client = ec2(&sim, "prod").await;
    sim.inject(FaultRule::action("DescribeVpcs").throttle_rate(1.0));
    let error = client
        .describe_vpcs()
        .send()
        .await
        .expect_err("every attempt throttled");
    assert_eq!(error.code(), Some("RequestLimitExceeded"), "{error:?}");
    assert_eq!(sim.calls("DescribeVpcs"), SDK_ATTEMPTS);

    sim.clear_faults();
    client
        .describe_vpcs()
        .send()
        .await
        .expect("works once the fault is gone");
}

#[tokio::test]
async fn injected_server_errors_use_each_protocols_shape_and_are_retried() {
    let sim = demo().await;
    sim.inject(FaultRule::action("DescribeSubnets").server_error_rate(1.0));
    sim.inject(FaultRule::action("DescribeInstanceInformation").server_error_rate(1.0));

    let error = ec2(&sim, "prod")
        .await
        .describe_subnets()
        .send()
        .await
        .expect_err("a 500 every time");
    assert_eq!(error.code(), Some("InternalError"), "{error:?}");
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(500));
    assert_eq!(sim.calls("DescribeSubnets"), SDK_ATTEMPTS, "5xx is retried");

    let ssm = aws_sdk_ssm::Client::new(&sdk_config(&sim, "prod").await);
    let error = ssm
        .describe_instance_information()
        .send()
        .await
        .expect_err("a 500 every time");
    assert_eq!(error.code(), Some("InternalServerError"), "{error:?}");
    assert_eq!(sim.calls("DescribeInstanceInformation"), SDK_ATTEMPTS);
}

#[tokio::test]
async fn injected_resets_drop_the_connection_without_an_answer() {
    let sim = demo().await;
    let client = ec2(&sim, "prod").await;
    sim.inject(FaultRule::action("DescribeRegions").reset_rate(1.0));
    let error = client
        .describe_regions()
        .send()
        .await
        .expect_err("no answer ever comes");
    assert!(
        matches!(
            error,
            aws_sdk_ec2::error::SdkError::DispatchFailure(_)
                | aws_sdk_ec2::error::SdkError::ResponseError(_)
        ),
        "a transport failure, not a service error: {error:?}"
    );
    assert_eq!(
        sim.calls("DescribeRegions"),
        SDK_ATTEMPTS,
        "resets are retried"
    );
    client
        .describe_vpcs()
        .send()
        .await
        .expect("other actions still answer");
}

#[tokio::test]
async fn a_partial_fault_rate_is_absorbed_by_retries() {
    let sim = demo().await;
    let client = ec2(&sim, "prod").await;
    // One attempt in five fails: with three attempts a call fails only when all three do.
    sim.inject(
        FaultRule::action("DescribeRegions")
            .server_error_rate(0.1)
            .throttle_rate(0.1),
    );
    let mut succeeded = 0;
    for _ in 0..40 {
        if client.describe_regions().send().await.is_ok() {
            succeeded += 1;
        }
    }
    let attempts = sim.calls("DescribeRegions");
    assert!(succeeded >= 38, "{succeeded} of 40 calls succeeded");
    assert!(
        attempts > 40,
        "some attempts were faulted and retried: {attempts}"
    );
}

#[tokio::test]
async fn expired_credentials_get_each_services_expired_token_error() {
    let sim = demo().await;
    let ec2_client = ec2(&sim, "prod").await;
    let ssm = aws_sdk_ssm::Client::new(&sdk_config(&sim, "prod").await);
    let sts_client = sts(&sim, "prod").await;
    sim.expire_credentials("prod");

    let error = ec2_client
        .describe_instances()
        .send()
        .await
        .expect_err("expired");
    assert_eq!(error.code(), Some("RequestExpired"), "{error:?}");
    let error = ssm
        .describe_instance_information()
        .send()
        .await
        .expect_err("expired");
    assert_eq!(error.code(), Some("ExpiredTokenException"), "{error:?}");
    let error = sts_client
        .get_caller_identity()
        .send()
        .await
        .expect_err("expired");
    assert_eq!(error.code(), Some("ExpiredToken"), "{error:?}");
    ec2(&sim, "staging")
        .await
        .describe_regions()
        .send()
        .await
        .expect("other profiles are unaffected");

    sim.renew_credentials("prod");
    ec2_client
        .describe_instances()
        .send()
        .await
        .expect("renewed");
}

#[tokio::test]
async fn scenario_faults_apply_from_the_start_and_bad_rates_are_refused() {
    let with_faults = |rule: &str| {
        let mut text = include_str!("../scenarios/demo.toml").to_owned();
        text.push_str(rule);
        Scenario::from_toml_str(&text)
    };
    let scenario = with_faults(
        "\n[[faults]]\nactions = [\"DescribeVpcs\"]\nregions = [\"us-east-1\"]\nserver_error_rate = 1.0\n",
    )
    .expect("a valid scenario");
    let sim = Simulator::start(scenario).await.expect("starts");
    let error = ec2(&sim, "prod")
        .await
        .describe_vpcs()
        .send()
        .await
        .expect_err("faulted from the first call");
    assert_eq!(error.code(), Some("InternalError"));

    let error = with_faults("\n[[faults]]\nreset_rate = 2.0\n").expect_err("a rate above 1");
    let message = format!("{error:#}");
    assert!(message.contains("reset_rate = 2"), "{message}");
}

// ---------------------------------------------------------------------------------------------
// An independent client: the AWS CLI (v1, botocore) pointed at the simulator with nothing but
// the exports `bastionless-sim` prints. botocore signs, serialises and parses on its own, so
// its acceptance is evidence the simulator speaks AWS's wire formats, not just the Rust SDK's.

/// Runs `aws ARGS… --output json` with the simulator's exports; the parsed JSON.
fn aws_cli(sim: &BackgroundSimulator, args: &[&str]) -> serde_json::Value {
    let output = std::process::Command::new("aws")
        .args(args)
        .args(["--output", "json"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .envs(sim.env_vars())
        .output()
        .expect("the AWS CLI runs (pip install awscli; .ci/run installs it)");
    assert!(
        output.status.success(),
        "aws {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON from the AWS CLI")
}

#[test]
fn the_aws_cli_lists_and_pushes_keys_with_the_printed_exports() {
    let sim = BackgroundSimulator::start(Scenario::demo()).expect("starts");

    let identity = aws_cli(&sim, &["--profile", "prod", "sts", "get-caller-identity"]);
    assert_eq!(identity["Account"], PROD_ACCOUNT);

    let reservations = aws_cli(
        &sim,
        &[
            "--profile",
            "prod",
            "ec2",
            "describe-instances",
            "--filters",
            "Name=tag:Name,Values=web-eic-1,app-ssm-1",
        ],
    );
    let mut names: Vec<String> = reservations["Reservations"]
        .as_array()
        .expect("reservations")
        .iter()
        .flat_map(|r| r["Instances"].as_array().expect("instances").clone())
        .flat_map(|i| i["Tags"].as_array().expect("tags").clone())
        .filter(|tag| tag["Key"] == "Name")
        .map(|tag| tag["Value"].as_str().expect("a name").to_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["app-ssm-1", "web-eic-1"]);

    let endpoints = aws_cli(
        &sim,
        &[
            "--profile",
            "prod",
            "ec2",
            "describe-instance-connect-endpoints",
        ],
    );
    assert!(
        !endpoints["InstanceConnectEndpoints"]
            .as_array()
            .expect("endpoints")
            .is_empty()
    );

    let pushed = aws_cli(
        &sim,
        &[
            "--profile",
            "prod",
            "ec2-instance-connect",
            "send-ssh-public-key",
            "--instance-id",
            "i-06133c3aacf6f15d2",
            "--instance-os-user",
            "ec2-user",
            "--ssh-public-key",
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHJ8yfPDK9fBh3ezXHkAOJfUeTh2bVKq2Qx3jOkJmo0A test",
        ],
    );
    assert_eq!(pushed["Success"], true);

    let managed = aws_cli(
        &sim,
        &["--profile", "prod", "ssm", "describe-instance-information"],
    );
    assert!(
        managed["InstanceInformationList"]
            .as_array()
            .expect("managed nodes")
            .iter()
            .any(|node| node["InstanceId"] == "i-0153167d68d708c5f")
    );
}

// ---------------------------------------------------------------------------------------------
// Access policies scoped to resources

/// The demo plus `web-only`: a user of acme-prod whose policy allows actions on web-eic-1 and
/// the port-forwarding document only.
fn demo_with_scoped_profile() -> Scenario {
    let mut text = include_str!("../scenarios/demo.toml").to_owned();
    text.push_str(
        r#"
[[profiles]]
name = "web-only"
account = "111122223333"
region = "us-east-1"
access_key_id = "AKIAWEBONLYSCOPED001"
secret_access_key = "c2NvcGVkLXBvbGljeS1mb3ItdGhlLXdlYi10aWVyLg"
allowed_resources = [
  "arn:aws:ec2:*:*:instance/i-06133c3aacf6f15d2",
  "arn:aws:ec2:*:*:instance-connect-endpoint/*",
  "arn:aws:ssm:*::document/AWS-StartPortForwardingSession",
]
allowed_tunnel_ports = [22]
"#,
    );
    Scenario::from_toml_str(&text).expect("a valid scenario")
}

#[tokio::test]
async fn a_resource_scoped_policy_allows_its_instance_and_denies_the_others() {
    let sim = Simulator::start(demo_with_scoped_profile())
        .await
        .expect("starts");
    let config = sdk_config(&sim, "web-only").await;
    let eic = aws_sdk_ec2instanceconnect::Client::new(&config);
    let send = |instance: &'static str| {
        eic.send_ssh_public_key()
            .instance_id(instance)
            .instance_os_user("ec2-user")
            .ssh_public_key(PUBLIC_KEY)
            .send()
    };
    send(WEB_EIC_1).await.expect("allowed on web-eic-1");
    let error = send("i-0b4d9ebd00596f37e")
        .await
        .expect_err("web-eic-2 is outside the policy");
    // Not a modelled error of SendSSHPublicKey: the SDK gives the code only.
    assert_eq!(error.code(), Some("AccessDeniedException"), "{error:?}");

    // StartSession is checked on the instance and on the document.
    let ssm = aws_sdk_ssm::Client::new(&config);
    let error = ssm
        .start_session()
        .target(WEB_EIC_1)
        .send()
        .await
        .expect_err("a shell's document is outside the policy");
    assert_eq!(error.code(), Some("AccessDeniedException"), "{error:?}");
    let message = error.message().unwrap_or_default().to_owned();
    assert!(
        message.contains("document/SSM-SessionManagerRunShell"),
        "{message}"
    );
    let error = ssm
        .start_session()
        .target("i-0153167d68d708c5f")
        .document_name("AWS-StartPortForwardingSession")
        .send()
        .await
        .expect_err("app-ssm-1 is outside the policy");
    assert_eq!(error.code(), Some("AccessDeniedException"), "{error:?}");
}
