//! Tunnels as the saved app settings shape them, through the real engine against the
//! simulator. A Session Manager tunnel spreads its parallel connections over several sessions,
//! as many as the setting allows: one session moves about 1 MB/s, so parallel connections only
//! add up when they ride sessions of their own (each connection here carries sshd's banner).
//! The saved EIC connection cap applies from the engine's start.

use std::io::Read as _;
use std::net::TcpStream;
use std::time::Duration;

use bastionless_core::engine::{Command, Engine, EngineConfig, RouteChoice};
use bastionless_core::profiles::AwsFiles;
use bastionless_core::store::{AppSettings, Store};
use bastionless_sim::{Scenario, Simulator};

const TIMEOUT: Duration = Duration::from_secs(60);

/// Opens `connections` connections at once through one SSM tunnel to app-ssm-1's sshd, with
/// the store's pool size set to `pool_size`; returns how many sessions the simulator granted.
fn sessions_for(connections: usize, pool_size: u8) -> usize {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let sim = runtime
        .block_on(Simulator::start(Scenario::demo()))
        .expect("simulator starts");
    assert!(
        sim.login_user().is_some(),
        "OpenSSH's sshd is needed for the instances' port 22 (see TEST-HARNESS.md)"
    );
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = Store::open(dir.path()).expect("a store");
    store
        .set_settings(AppSettings {
            ssm_pool_size: pool_size,
            ..AppSettings::default()
        })
        .expect("settings saved");
    let engine = Engine::start(EngineConfig {
        store: Some(store),
        ..EngineConfig::new(AwsFiles::at(sim.config_file(), sim.credentials_file()))
    })
    .expect("engine starts");
    let snapshot = engine.wait_until(TIMEOUT, |s| !s.refreshing);
    let host = snapshot.find_hosts("app-ssm-1")[0].key();
    engine.send(Command::OpenTunnel {
        host,
        remote_port: 22,
        local_port: None,
        route: RouteChoice::Ssm,
    });
    let snapshot = engine.wait_until(TIMEOUT, |s| {
        s.tunnels.iter().any(|t| t.local_addr().is_some())
    });
    let addr = snapshot.tunnels[0].local_addr().expect("bound");

    // All connections stay open while the sessions are counted.
    let banners: Vec<(TcpStream, Vec<u8>)> = std::thread::scope(|scope| {
        let opened: Vec<_> = (0..connections)
            .map(|_| {
                scope.spawn(move || {
                    let mut local = TcpStream::connect(addr).expect("the listener accepts");
                    local
                        .set_read_timeout(Some(Duration::from_secs(30)))
                        .expect("a read timeout");
                    let mut banner = vec![0u8; 4];
                    local.read_exact(&mut banner).expect("sshd's banner");
                    (local, banner)
                })
            })
            .collect();
        opened.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (_, banner) in &banners {
        assert_eq!(banner, b"SSH-", "sshd's banner crossed the tunnel");
    }
    let sessions = sim.ssm_session_ids().len();
    drop(banners);
    drop(engine);
    runtime.block_on(sim.shutdown());
    sessions
}

#[test]
fn four_parallel_connections_ride_four_sessions_by_default() {
    let pool_size = AppSettings::default().ssm_pool_size;
    assert_eq!(pool_size, 4);
    assert_eq!(sessions_for(4, pool_size), 4);
}

#[test]
fn the_pool_size_setting_caps_the_sessions_of_a_tunnel() {
    assert_eq!(sessions_for(4, 2), 2);
    assert_eq!(sessions_for(3, 1), 1);
}

#[test]
fn the_saved_eic_connection_cap_applies_from_the_start() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let store = Store::open(dir.path()).expect("a store");
    store
        .set_settings(AppSettings {
            eic_connection_cap: 3,
            ..AppSettings::default()
        })
        .expect("settings saved");
    let files = AwsFiles::at(
        dir.path().join("no-config"),
        dir.path().join("no-credentials"),
    );
    let engine = Engine::start(EngineConfig {
        store: Some(store),
        ..EngineConfig::new(files)
    })
    .expect("engine starts");
    assert_eq!(
        engine.tunnel_settings().max_connections_per_endpoint.get(),
        3
    );
}
