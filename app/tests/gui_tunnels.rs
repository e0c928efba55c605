//! The tunnels panel following a Session Manager tunnel through a lost data channel: a port
//! forward opened from the host menu carries sshd's banner, the simulator cuts the session's
//! WebSocket (as a network failure would), and the panel shows the tunnel resuming, then open
//! again with one resume — while the same local connection keeps working — and the round-trip
//! time Session Manager's acknowledgements measure.

#[path = "support/gui.rs"]
mod gui_support;

use bastionless::ui::BastionlessApp;
use bastionless_core::engine::{Engine, EngineConfig};
use bastionless_core::profiles::AwsFiles;
use bastionless_core::tunnel::TunnelState;
use bastionless_sim::{FaultRule, Scenario, Simulator};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT as _, Queryable};
use gui_support::{TIMEOUT, shown, step_until};
use std::io::{Read, Write};
use std::time::Duration;

/// Reads until `want` bytes arrived (or the peer stopped sending).
fn read_some(stream: &mut std::net::TcpStream, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buffer = [0u8; 4096];
    while got.len() < want {
        match stream.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buffer[..n]),
        }
    }
    got
}

#[test]
fn a_cut_session_shows_resuming_then_one_resume_and_keeps_its_connection() {
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let sim = runtime
        .block_on(Simulator::start(Scenario::demo()))
        .expect("simulator starts");
    assert!(
        sim.login_user().is_some(),
        "OpenSSH's sshd is needed for the instances' port 22 (see TEST-HARNESS.md)"
    );
    let files = AwsFiles::at(sim.config_file(), sim.credentials_file());
    let engine = Engine::start(EngineConfig::new(files)).expect("engine starts");
    let snapshot = engine.wait_until(TIMEOUT, |s| !s.refreshing);
    assert!(!snapshot.refreshing, "the inventory did not finish");
    let mut harness = Harness::builder()
        .with_size([1400.0, 420.0 + 30.0 * snapshot.hosts.len() as f32])
        .build_eframe(|cc| BastionlessApp::new(engine, &cc.egui_ctx));
    harness.run();

    harness.get_by_label("app-ssm-1").click_secondary();
    harness.run();
    harness.get_by_label("Forward port…").click();
    harness.run();
    let field = harness.get_by_role_and_label(Role::TextInput, "Port on the host");
    field.focus();
    field.type_text("22");
    harness.run();
    harness
        .get_by_role_and_label(Role::Button, "Forward")
        .click();
    step_until(&mut harness, "the tunnel listening", |h| {
        h.state()
            .engine()
            .snapshot()
            .tunnels
            .iter()
            .any(|t| t.local_addr().is_some())
    });
    let addr = harness.state().engine().snapshot().tunnels[0]
        .local_addr()
        .expect("bound");

    let mut local = std::net::TcpStream::connect(addr).expect("the listener accepts");
    local
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("a read timeout");
    let banner = read_some(&mut local, 4);
    assert!(
        banner.starts_with(b"SSH-"),
        "sshd's banner crossed the tunnel: {:?}",
        String::from_utf8_lossy(&banner)
    );
    step_until(&mut harness, "the tunnel open with no resumes", |h| {
        shown(h, "open") && shown(h, "no resumes")
    });

    // ResumeSession answers slowly, so a frame sees the tunnel while it is resuming.
    sim.inject(FaultRule {
        actions: vec!["ResumeSession".into()],
        latency_ms: 1500,
        ..FaultRule::default()
    });
    let sessions = sim.ssm_session_ids();
    assert_eq!(
        sessions.len(),
        1,
        "one session carries the tunnel: {sessions:?}"
    );
    assert!(
        sim.cut_data_channel(&sessions[0]),
        "the session had a data channel to cut"
    );
    step_until(&mut harness, "the panel showing the resume", |h| {
        shown(h, "resuming…")
    });
    assert!(matches!(
        harness.state().engine().snapshot().tunnels[0].state,
        TunnelState::Resuming
    ));
    step_until(
        &mut harness,
        "the tunnel open again after one resume",
        |h| shown(h, "1 resume") && shown(h, "open"),
    );

    // The same local connection still reaches sshd: it answers our identification with its
    // key exchange offer.
    local
        .write_all(b"SSH-2.0-bastionless_test\r\n")
        .expect("the connection takes bytes");
    let kex = read_some(&mut local, 6);
    assert!(
        kex.len() >= 6,
        "sshd answered through the resumed session: {kex:?}"
    );
    step_until(&mut harness, "a measured round-trip time", |h| {
        h.query_all_by_label_contains("RTT ").any(|n| {
            let node = n.accesskit_node();
            node.value()
                .or_else(|| node.label())
                .is_some_and(|text| text.ends_with(" ms"))
        })
    });
    drop(local);
    drop(harness);
    runtime.block_on(sim.shutdown());
}
