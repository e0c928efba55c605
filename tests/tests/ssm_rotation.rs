//! A Session Manager tunnel outlives both the service's hourly data-channel rotation and the
//! credentials it was started with.
//!
//! The product's own pieces carry the bytes: its profile catalog and credential provider (a
//! role assumed through STS), its tunnel manager listening on loopback, and its SSM route,
//! whose session must — when the simulator closes the data channel with 1000 "Bye" an hour
//! (scaled) after it opened — refresh the expired role credentials, call ResumeSession with
//! the fresh ones, and reconnect without losing a byte. The simulator runs AWS-side lifetimes
//! on a fast clock (rotation, credential lifetimes, tokens, idle timeout) and states credential
//! expiry in wall-clock time, as AWS does, so the client's own clock decides when to refresh.

mod support;

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bastionless_core::inventory::HostKey;
use bastionless_core::profiles::{AwsFiles, ProfileCatalog};
use bastionless_core::ssm::session::SsmSessionApi;
use bastionless_core::tunnel::{Route, TunnelSettings, TunnelTarget, Tunnels};
use bastionless_sim::{Clock, Scenario, SimOptions, Simulator};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// win-ssm-1 (acme-prod, us-east-1): agent online, port 3389 echoes.
const WIN_SSM_1: &str = "i-02da2c9431ae0ef4e";
const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";
/// How much faster than real time the simulator's clock runs: the hourly rotation comes after
/// a minute, and 15-minute role credentials last 15 seconds.
const CLOCK_FACTOR: u32 = 60;
/// The shortest role session STS grants, so the credentials expire long before the rotation.
const ROLE_SESSION_SECONDS: u32 = 900;
/// The service rotates the data channel this long after it opens (simulated time).
const ROTATION: Duration = Duration::from_secs(3600);
/// How much more must cross the tunnel after the resume, to show the session carries on.
const AFTER_RESUME: u64 = 1 << 20;
/// How far the writer may run ahead of the echo. The path holds megabytes (the agent, like the
/// real one, queues its output), and a debug build on a busy machine echoes slower than the
/// client uploads; the test is about every byte arriving, not about filling queues.
const IN_FLIGHT: u64 = 1 << 20;

/// The demo scenario and a role in acme-prod that `prod` may assume to open sessions.
fn scenario() -> Scenario {
    let demo = include_str!("../scenarios/demo.toml");
    Scenario::from_toml_str(&format!(
        "{demo}\n[[roles]]\nname = \"SessionOperator\"\naccount = \"{ACCOUNT}\"\ntrusted = [\"prod\"]\n"
    ))
    .expect("the demo with one more role is valid")
}

/// The product's profile catalog for `operator`: the SessionOperator role assumed from `prod`'s
/// keys for the shortest session, everything pointing at the simulator.
fn catalog(sim: &Simulator, dir: &std::path::Path) -> ProfileCatalog {
    let ca = sim.ca_bundle().expect("the simulator serves TLS");
    let lines = format!(
        "region = {REGION}\nendpoint_url = {}\nca_bundle = {}\n",
        sim.endpoint_url(),
        ca.display()
    );
    let config = format!(
        "[profile prod]\n{lines}\n[profile operator]\nrole_arn = arn:aws:iam::{ACCOUNT}:role/SessionOperator\n\
         source_profile = prod\nduration_seconds = {ROLE_SESSION_SECONDS}\n{lines}"
    );
    let prod = sim.scenario().profile("prod").expect("the demo has prod");
    std::fs::write(dir.join("config"), config).expect("config written");
    std::fs::write(
        dir.join("credentials"),
        format!(
            "[prod]\naws_access_key_id = {}\naws_secret_access_key = {}\n",
            prod.access_key_id, prod.secret_access_key
        ),
    )
    .expect("credentials written");
    ProfileCatalog::load(&AwsFiles::at(dir.join("config"), dir.join("credentials")))
        .expect("the files load")
}

/// Bytes the test writes: a pattern that differs at every offset of a 64 KiB chunk.
fn chunk() -> Vec<u8> {
    (0..64 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_keeps_every_byte_across_rotation_with_credentials_that_expired_meanwhile() {
    let sim = Simulator::start_with(
        scenario(),
        SimOptions::default().clock(Clock::accelerated(CLOCK_FACTOR)),
    )
    .await
    .expect("the simulator starts");
    let dir = tempfile::tempdir().expect("a temp dir");
    let catalog = catalog(&sim, dir.path());
    let profile = catalog.get("operator").expect("the role profile is usable");
    let sdk = catalog.sdk_config(profile).await.expect("an SDK config");

    let tunnels = Tunnels::start(
        &tokio::runtime::Handle::current(),
        TunnelSettings::default(),
        |_| {},
    );
    let reservation = tunnels.reserve(TunnelTarget {
        host: HostKey {
            account_id: ACCOUNT.to_owned(),
            region: REGION.to_owned(),
            instance_id: WIN_SSM_1.to_owned(),
        },
        host_name: "win-ssm-1".to_owned(),
        remote_port: 3389,
    });
    let route = Route::ssm(
        "operator",
        WIN_SSM_1,
        3389,
        SsmSessionApi::new(&sdk),
        support::session_config(&sim),
        NonZeroUsize::MIN,
    );
    let id = reservation.id();
    let addr = reservation.listen(route, None).await.expect("listening");
    let resumes = || {
        tunnels
            .statuses_now()
            .first()
            .map_or(0, |status| status.resumes)
    };

    let tcp = TcpStream::connect(addr).await.expect("the tunnel accepts");
    let (mut from, mut to) = tcp.into_split();
    let stop = Arc::new(AtomicBool::new(false));
    let echoed = Arc::new(AtomicU64::new(0));
    let (total_tx, mut total_rx) = tokio::sync::watch::channel(None::<u64>);
    let writing = tokio::spawn({
        let (stop, echoed) = (stop.clone(), echoed.clone());
        async move {
            let chunk = chunk();
            let (mut sent, mut hash) = (0u64, Sha256::new());
            while !stop.load(Ordering::Relaxed) {
                if sent - echoed.load(Ordering::Relaxed) > IN_FLIGHT {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
                to.write_all(&chunk).await.expect("written into the tunnel");
                hash.update(&chunk);
                sent += chunk.len() as u64;
            }
            let _ = total_tx.send(Some(sent));
            // The write half stays open until the echo is read: no half-close over SSM.
            (hash.finalize(), to)
        }
    });
    let reading = tokio::spawn({
        let echoed = echoed.clone();
        async move {
            let (mut hash, mut buf) = (Sha256::new(), vec![0; 64 * 1024]);
            loop {
                let total = *total_rx.borrow_and_update();
                if total == Some(echoed.load(Ordering::Relaxed)) {
                    return hash.finalize();
                }
                tokio::select! {
                    read = from.read(&mut buf) => {
                        let n = read.expect("the echo reads");
                        assert!(n > 0, "the tunnel ended after {} bytes", echoed.load(Ordering::Relaxed));
                        hash.update(&buf[..n]);
                        echoed.fetch_add(n as u64, Ordering::Relaxed);
                    }
                    _ = total_rx.changed() => {}
                }
            }
        }
    });

    // Data flows until the session has resumed after the rotation, and a while longer.
    let started = Instant::now();
    let rotation = ROTATION / CLOCK_FACTOR;
    let patience = rotation * 3;
    let mut resumed_at = None;
    loop {
        assert!(
            started.elapsed() < patience,
            "no resume within {patience:?} (rotation after {rotation:?}); {} bytes echoed",
            echoed.load(Ordering::Relaxed)
        );
        assert!(!reading.is_finished(), "the echo stopped");
        let now_echoed = echoed.load(Ordering::Relaxed);
        match resumed_at {
            None if resumes() >= 1 => resumed_at = Some(now_echoed),
            Some(at) if now_echoed >= at + AFTER_RESUME => break,
            _ => {}
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (sent, _write_half) = tokio::time::timeout(Duration::from_secs(30), writing)
        .await
        .expect("the writer stops")
        .expect("the writer");
    let received = tokio::time::timeout(Duration::from_secs(30), reading)
        .await
        .expect("the echo completes")
        .expect("the reader");
    let total = echoed.load(Ordering::Relaxed);
    eprintln!(
        "{total} bytes echoed in {:.1?}, {} resume(s)",
        started.elapsed(),
        resumes()
    );
    assert_eq!(sent, received, "the echo differs from what was sent");
    assert!(resumes() >= 1);

    // One session throughout, resumed with credentials renewed after the first ones expired.
    let starts = sim.signed_calls("StartSession");
    let resumed = sim.signed_calls("ResumeSession");
    assert_eq!(starts.len(), 1, "{starts:?}");
    let start = &starts[0];
    let first_resume = resumed.first().expect("a ResumeSession call");
    let original_expiry = start
        .credentials_expire
        .expect("StartSession was signed with temporary (role) credentials");
    assert!(
        first_resume.at - start.at >= chrono::TimeDelta::from_std(rotation).expect("small"),
        "the resume came with the rotation, not before: {start:?} then {first_resume:?}"
    );
    assert!(
        original_expiry < first_resume.at,
        "the session's original credentials had expired when it resumed: {start:?} then {first_resume:?}"
    );
    assert_ne!(
        first_resume.access_key_id, start.access_key_id,
        "ResumeSession was signed with renewed credentials"
    );
    assert!(
        first_resume
            .credentials_expire
            .is_some_and(|expiry| expiry > first_resume.at),
        "the renewed credentials were current: {first_resume:?}"
    );
    assert!(tunnels.close(id));
}
