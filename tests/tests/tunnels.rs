//! The simulator's EC2 Instance Connect Endpoint, driven by the product's own EIC client
//! (`bastionless_core::eic`) over WSS with the simulator's CA: bytes through a tunnel, every
//! refusal and closure the endpoint gives, the 20-tunnel cap, `maxTunnelDuration`, and real
//! OpenSSH logging in through a tunnel only while a key pushed with `SendSSHPublicKey` is valid.

mod support;

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_config::BehaviorVersion;
use aws_credential_types::Credentials;
use aws_runtime::env_config::file::{EnvConfigFileKind, EnvConfigFiles};
use bastionless_core::eic::{
    ConnectOptions, Connector, EicError, EndpointAddress, MaxTunnelDuration, TunnelCounters,
    TunnelEnd, TunnelRequest, TunnelWebSocket, pump,
};
use bastionless_sim::{Clock, Scenario, SimOptions, Simulator};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const PROD_ENDPOINT: &str = "eice-0c7919e50564c6f7a";
/// win-eic-1: Windows behind the prod endpoint; its port 3389 echoes.
const WIN_EIC_1_IP: &str = "10.10.1.52";
/// web-eic-1: Linux behind the prod endpoint; its port 22 is a real sshd.
const WEB_EIC_1: &str = "i-06133c3aacf6f15d2";
const WEB_EIC_1_IP: &str = "10.10.1.21";
/// grafana-1: behind the prod endpoint, but its security group admits no SSH.
const GRAFANA_1_IP: &str = "10.10.1.120";
/// stopped-1: behind the prod endpoint, stopped.
const STOPPED_1_IP: &str = "10.10.1.71";

async fn simulator(options: SimOptions) -> Simulator {
    Simulator::start_with(Scenario::demo(), options)
        .await
        .expect("the simulator starts")
}

fn credentials(sim: &Simulator, profile: &str) -> Credentials {
    let profile = sim.scenario().profile(profile).expect("a demo profile");
    Credentials::new(
        &profile.access_key_id,
        &profile.secret_access_key,
        None,
        None,
        "scenario",
    )
}

fn connector(sim: &Simulator) -> Connector {
    Connector::new(ConnectOptions {
        ca_bundles: vec![sim.ca_bundle().expect("TLS").to_owned()],
        ..ConnectOptions::default()
    })
    .expect("a connector")
}

fn request(sim: &Simulator, ip: &str, port: u16) -> TunnelRequest {
    TunnelRequest {
        endpoint: EndpointAddress::parse(sim.tunnel_endpoint()).expect("the DnsName parses"),
        endpoint_id: PROD_ENDPOINT.to_owned(),
        private_ip: ip.parse::<IpAddr>().expect("an IP"),
        remote_port: port,
        max_tunnel_duration: None,
        region: "us-east-1".to_owned(),
    }
}

async fn open(sim: &Simulator, request: &TunnelRequest) -> Result<TunnelWebSocket, EicError> {
    connector(sim)
        .open_tunnel(request, &credentials(sim, "prod"), SystemTime::now())
        .await
}

/// The upgrade refusal's status, error code and message.
fn refusal(result: Result<TunnelWebSocket, EicError>) -> (u16, String, String) {
    match result {
        Err(EicError::UpgradeRejected(rejection)) => {
            assert!(rejection.request_id.is_some(), "{rejection:?}");
            (
                rejection.status,
                rejection.error_code.unwrap_or_default(),
                rejection.message.unwrap_or_default(),
            )
        }
        Err(other) => panic!("not an upgrade refusal: {other}"),
        Ok(_) => panic!("the upgrade was accepted"),
    }
}

/// Runs the product's pump over `ws` with a local side the test never writes to.
async fn pump_idle(ws: TunnelWebSocket) -> Result<bastionless_core::eic::CloseInfo, EicError> {
    let (local, _kept_open) = tokio::io::duplex(1024);
    let counters = TunnelCounters::new();
    pump(local, ws, &counters).await
}

#[tokio::test]
async fn bytes_cross_a_tunnel_to_an_echo_backend_and_back() {
    let sim = simulator(SimOptions::default()).await;
    let ws = open(&sim, &request(&sim, WIN_EIC_1_IP, 3389))
        .await
        .expect("the tunnel opens");
    assert_eq!(sim.open_tunnels(PROD_ENDPOINT), 1);
    let (local, test_side) = tokio::io::duplex(256 * 1024);
    let counters = TunnelCounters::new();
    let pumping = tokio::spawn(async move { pump(local, ws, &counters).await });
    // More than one frame's worth each way, written while the echo is read.
    let sent: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let (mut read_half, mut write_half) = tokio::io::split(test_side);
    let writing = {
        let sent = sent.clone();
        tokio::spawn(async move {
            write_half.write_all(&sent).await.expect("written");
            write_half
        })
    };
    let mut echoed = vec![0; sent.len()];
    read_half.read_exact(&mut echoed).await.expect("echoed");
    assert!(echoed == sent, "the echo differs from what was sent");
    // Local EOF ends the tunnel.
    drop(writing.await.expect("the writer"));
    drop(read_half);
    let ended = tokio::time::timeout(Duration::from_secs(10), pumping)
        .await
        .expect("the tunnel ends after local EOF")
        .expect("the pump task")
        .expect("a clean end");
    assert_eq!(ended.ended_by, TunnelEnd::LocalEof);
    wait_until(|| sim.open_tunnels(PROD_ENDPOINT) == 0).await;
}

#[tokio::test]
async fn the_endpoint_refuses_bad_urls_parameters_and_callers_with_specific_errors() {
    let sim = simulator(SimOptions::default()).await;
    let connector = connector(&sim);
    let echo = request(&sim, WIN_EIC_1_IP, 3389);

    let prod = sim.scenario().profile("prod").expect("prod");
    let wrong_secret = Credentials::new(&prod.access_key_id, "wrong", None, None, "test");
    let (status, code, _) = refusal(
        connector
            .open_tunnel(&echo, &wrong_secret, SystemTime::now())
            .await,
    );
    assert_eq!((status, code.as_str()), (403, "SignatureDoesNotMatch"));

    let two_minutes_ago = SystemTime::now() - Duration::from_secs(120);
    let (status, code, message) = refusal(
        connector
            .open_tunnel(&echo, &credentials(&sim, "prod"), two_minutes_ago)
            .await,
    );
    assert_eq!(
        (status, code.as_str()),
        (403, "RequestExpired"),
        "{message}"
    );

    let (status, code, message) = refusal(open(&sim, &request(&sim, WIN_EIC_1_IP, 8080)).await);
    assert_eq!(
        (status, code.as_str(), message.as_str()),
        (
            400,
            "InvalidParameter",
            "The specified RemotePort is not valid. Specify either 22 or 3389 as the RemotePort and retry your request."
        )
    );

    let (status, code, message) = refusal(open(&sim, &request(&sim, "10.99.0.1", 22)).await);
    assert_eq!((status, code.as_str()), (400, "InvalidParameter"));
    assert!(
        message.contains("is not in vpc-06701fdef60f5dd0d"),
        "{message}"
    );

    let mut elsewhere = echo.clone();
    elsewhere.endpoint_id = "eice-03bb9ef0947d2da9a".to_owned();
    let (status, code, _) = refusal(open(&sim, &elsewhere).await);
    assert_eq!(
        (status, code.as_str()),
        (400, "InvalidInstanceConnectEndpointId.NotFound"),
        "another account's endpoint"
    );

    let (status, code, message) = refusal(
        connector
            .open_tunnel(
                &echo,
                &credentials(&sim, "prod-readonly"),
                SystemTime::now(),
            )
            .await,
    );
    assert_eq!((status, code.as_str()), (403, "AccessDeniedException"));
    assert!(
        message.contains("is not authorized to perform: ec2-instance-connect:OpenTunnel"),
        "{message}"
    );
    assert_eq!(sim.open_tunnels(PROD_ENDPOINT), 0);
}

#[tokio::test]
async fn an_unreachable_target_opens_then_closes_with_unable_to_connect_to_target() {
    let sim = simulator(SimOptions::default()).await;
    for (what, ip) in [
        ("a security group that admits no SSH", GRAFANA_1_IP),
        ("a stopped instance", STOPPED_1_IP),
        ("no instance at that address", "10.10.1.250"),
    ] {
        let ws = open(&sim, &request(&sim, ip, 22))
            .await
            .unwrap_or_else(|e| panic!("{what}: the upgrade succeeds first: {e}"));
        match pump_idle(ws).await {
            Err(EicError::ClosedByServer { code, reason }) => {
                assert_eq!(
                    (code, reason.as_str()),
                    (1011, "Unable to connect to target"),
                    "{what}"
                );
            }
            other => panic!("{what}: {other:?}"),
        }
    }
    // Nothing listens on win-eic-1's port 22 (it answers RDP only).
    let ws = open(&sim, &request(&sim, WIN_EIC_1_IP, 22))
        .await
        .expect("the upgrade succeeds");
    assert!(matches!(
        pump_idle(ws).await,
        Err(EicError::ClosedByServer { code: 1011, .. })
    ));
}

#[tokio::test]
async fn the_twenty_first_concurrent_tunnel_is_refused_until_one_closes() {
    let sim = simulator(SimOptions::default()).await;
    let echo = request(&sim, WIN_EIC_1_IP, 3389);
    let mut open_tunnels = Vec::new();
    for _ in 0..20 {
        open_tunnels.push(open(&sim, &echo).await.expect("one of twenty"));
    }
    assert_eq!(sim.open_tunnels(PROD_ENDPOINT), 20);
    let (status, code, message) = refusal(open(&sim, &echo).await);
    assert_eq!((status, code.as_str()), (429, "LimitExceeded"), "{message}");

    let mut closing = open_tunnels.pop().expect("a tunnel");
    closing.close(None).await.expect("closed");
    drop(closing);
    wait_until(|| sim.open_tunnels(PROD_ENDPOINT) == 19).await;
    open_tunnels.push(open(&sim, &echo).await.expect("a place is free again"));
}

#[tokio::test]
async fn max_tunnel_duration_closes_the_tunnel_on_the_simulated_clock() {
    // A simulated minute lasts one real second.
    let sim = simulator(SimOptions::default().clock(Clock::accelerated(60))).await;
    let mut capped = request(&sim, WIN_EIC_1_IP, 3389);
    capped.max_tunnel_duration = Some(MaxTunnelDuration::from_secs(60).expect("in range"));
    let ws = open(&sim, &capped).await.expect("the tunnel opens");
    let started = std::time::Instant::now();
    let ended = tokio::time::timeout(Duration::from_secs(10), pump_idle(ws))
        .await
        .expect("closed within the cap")
        .expect("a normal close");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "{took:?}"
    );
    assert_eq!(ended.ended_by, TunnelEnd::ServerClose);
    assert_eq!(
        (ended.code, ended.reason.as_str()),
        (Some(1000), "Maximum tunnel duration reached")
    );
}

// ---------------------------------------------------------------------------------------------
// Real ssh through a tunnel to the instance's real sshd

/// Listens on 127.0.0.1 and carries each accepted connection through its own freshly signed
/// tunnel, as the product's listener does.
async fn tcp_to_tunnel_relay(sim: &Simulator, request: TunnelRequest) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a relay port");
    let port = listener.local_addr().expect("an address").port();
    let connector = connector(sim);
    let credentials = credentials(sim, "prod");
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let connector = connector.clone();
            let credentials = credentials.clone();
            let request = request.clone();
            tokio::spawn(async move {
                let ws = connector
                    .open_tunnel(&request, &credentials, SystemTime::now())
                    .await
                    .expect("the tunnel opens");
                let counters = TunnelCounters::new();
                let _ = pump(tcp, ws, &counters).await;
            });
        }
    });
    port
}

#[tokio::test]
async fn real_ssh_logs_in_through_a_tunnel_only_while_the_pushed_key_is_valid() {
    assert!(
        Path::new("/usr/sbin/sshd").exists(),
        "this test needs OpenSSH's sshd (Debian: apt-get install openssh-server)"
    );
    // A simulated minute lasts three real seconds.
    let sim = simulator(SimOptions::default().clock(Clock::accelerated(20))).await;
    let user = sim
        .login_user()
        .expect("the sshd backend is active")
        .to_owned();
    let instance = sim.scenario().instance(WEB_EIC_1).expect("web-eic-1");
    assert_eq!(
        instance.tags.get("bastionless:user").map(String::as_str),
        Some(user.as_str())
    );

    let dir = tempfile::tempdir().expect("a temp dir");
    let key = dir.path().join("id_ed25519");
    let keygen = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-f"])
        .arg(&key)
        .status()
        .expect("ssh-keygen runs");
    assert!(keygen.success());
    let public_key = std::fs::read_to_string(key.with_extension("pub")).expect("a public key");

    let port = tcp_to_tunnel_relay(&sim, request(&sim, WEB_EIC_1_IP, 22)).await;
    let refused = ssh(&key, &user, port).await;
    assert!(
        refused
            .as_ref()
            .is_err_and(|e| e.contains("Permission denied")),
        "before the key is pushed: {refused:?}"
    );

    let config = aws_config::defaults(BehaviorVersion::latest())
        .empty_test_environment()
        .http_client(https_client(sim.ca_bundle().expect("TLS")))
        .profile_files(
            EnvConfigFiles::builder()
                .with_file(EnvConfigFileKind::Config, sim.config_file())
                .with_file(EnvConfigFileKind::Credentials, sim.credentials_file())
                .build(),
        )
        .profile_name("prod")
        .load()
        .await;
    aws_sdk_ec2instanceconnect::Client::new(&config)
        .send_ssh_public_key()
        .instance_id(WEB_EIC_1)
        .instance_os_user(&user)
        .ssh_public_key(public_key.trim())
        .send()
        .await
        .expect("the key is pushed");
    let pushed_at = std::time::Instant::now();
    assert_eq!(ssh(&key, &user, port).await, Ok("ok\n".to_owned()));
    assert!(
        pushed_at.elapsed() < Duration::from_secs(3),
        "the login took longer than the key's (accelerated) 60 seconds"
    );

    // 60 simulated seconds are 3 real ones; give the key a margin to be surely gone.
    tokio::time::sleep(Duration::from_millis(3500).saturating_sub(pushed_at.elapsed())).await;
    let expired = ssh(&key, &user, port).await;
    assert!(
        expired
            .as_ref()
            .is_err_and(|e| e.contains("Permission denied")),
        "after the key expired: {expired:?}"
    );
}

use support::https_client;
use support::ssh;

/// Polls `condition` for up to five seconds (tunnels are counted down as their tasks end).
async fn wait_until(condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "the condition did not hold within 5 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_cut_tunnel_ends_its_connection_and_the_products_listener_serves_the_next() {
    use aws_credential_types::provider::SharedCredentialsProvider;
    use bastionless_core::inventory::HostKey;
    use bastionless_core::tunnel::{Route, TunnelSettings, TunnelTarget, Tunnels};

    let sim = simulator(SimOptions::default()).await;
    let route = Route::eic(
        "prod",
        request(&sim, WIN_EIC_1_IP, 3389),
        connector(&sim),
        SharedCredentialsProvider::new(credentials(&sim, "prod")),
    );
    let tunnels = Tunnels::start(
        &tokio::runtime::Handle::current(),
        TunnelSettings::default(),
        |_report| {},
    );
    let local = tunnels
        .reserve(TunnelTarget {
            host: HostKey {
                account_id: "111122223333".to_owned(),
                region: "us-east-1".to_owned(),
                instance_id: "i-win-eic-1".to_owned(),
            },
            host_name: "win-eic-1".to_owned(),
            remote_port: 3389,
        })
        .listen(route, None)
        .await
        .expect("the listener opens");
    let echo = |mut tcp: tokio::net::TcpStream| async move {
        tcp.write_all(b"ping").await.expect("written");
        let mut answer = [0; 4];
        tcp.read_exact(&mut answer).await.expect("echoed");
        assert_eq!(&answer, b"ping");
        tcp
    };

    let mut first = echo(
        tokio::net::TcpStream::connect(local)
            .await
            .expect("connects"),
    )
    .await;
    assert_eq!(sim.cut_tunnels(PROD_ENDPOINT), 1);
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), first.read_to_end(&mut rest))
        .await
        .expect("the local connection ends after the cut, never hangs");
    assert!(rest.is_empty(), "nothing arrives after the cut");
    wait_until(|| sim.open_tunnels(PROD_ENDPOINT) == 0).await;

    let second = echo(
        tokio::net::TcpStream::connect(local)
            .await
            .expect("the listener still accepts"),
    )
    .await;
    drop(second);
}

#[tokio::test]
async fn open_tunnel_honours_the_remote_port_condition_of_the_callers_policy() {
    let mut text = bastionless_sim::scenario::DEMO_TOML.to_owned();
    text.push_str(
        r#"
[[profiles]]
name = "ssh-only"
account = "111122223333"
region = "us-east-1"
access_key_id = "AKIASSHONLYTUNNEL001"
secret_access_key = "b25seS1zc2gtdGhyb3VnaC10aGUtZW5kcG9pbnQu"
allowed_tunnel_ports = [22]
"#,
    );
    let scenario = Scenario::from_toml_str(&text).expect("a valid scenario");
    let sim = Simulator::start(scenario).await.expect("starts");
    let open_as = |port: u16| {
        let request = request(&sim, WIN_EIC_1_IP, port);
        let credentials = credentials(&sim, "ssh-only");
        let connector = connector(&sim);
        async move {
            connector
                .open_tunnel(&request, &credentials, SystemTime::now())
                .await
        }
    };
    let (status, code, message) = refusal(open_as(3389).await);
    assert_eq!((status, code.as_str()), (403, "AccessDeniedException"));
    assert!(message.contains("remotePort 3389"), "{message}");
    // Port 22 passes the policy (and then reaches the host's echo-less port 22: closed).
    let allowed = open_as(22).await;
    assert!(
        !matches!(&allowed, Err(EicError::UpgradeRejected(r)) if r.status == 403),
        "port 22 is allowed by the policy"
    );
}
