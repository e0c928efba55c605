//! Port sessions over loopback: bytes intact through mux and basic forwarding.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::fake::{Destination, FakeService, Scenario, echo_server};
use super::{INSTANCE, config, echo, eventually, payload, sha256};
use crate::ssm::proto::PortForwarding;
use crate::ssm::session::api::SessionDocument;
use crate::ssm::session::{PortSession, SessionState, StreamError};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_streams_carry_every_byte_both_ways_through_the_mux() {
    let echo_addr = echo_server().await;
    let (service, connector) =
        FakeService::on_loopback(Scenario::new(Destination::Tcp(echo_addr))).await;
    let session = PortSession::start(service.api(), INSTANCE, 5432, None, config(connector))
        .await
        .unwrap();
    assert_eq!(
        session.mode(),
        PortForwarding::Mux {
            smux_keepalive: false
        }
    );
    assert_eq!(session.stats().state, SessionState::Open);

    const SIZE: usize = 2 * 1024 * 1024;
    let mut transfers = Vec::new();
    for seed in 0..4u8 {
        let stream = session.open_stream().await.unwrap();
        let data = payload(seed, SIZE);
        let digest = sha256(&data);
        transfers.push(tokio::spawn(async move {
            (digest, sha256(&echo(stream, data).await))
        }));
    }
    for transfer in transfers {
        let (sent, echoed) = transfer.await.unwrap();
        assert_eq!(sent, echoed);
    }

    let stats = session.stats();
    assert_eq!(stats.bytes_sent, 4 * SIZE as u64);
    assert_eq!(stats.bytes_received, 4 * SIZE as u64);
    assert_eq!(stats.resumes, 0);
    eventually(Duration::from_secs(5), || session.stats().open_streams == 0).await;
    let session_id = session.session_id().to_owned();
    session.close().await.unwrap();

    let record = service.record(&session_id);
    assert!(record.violations.is_empty(), "{:?}", record.violations);
    assert!(record.client_bytes > 4 * SIZE, "smux framing adds bytes");
    assert_eq!(record.flags, vec![2]);
    assert_eq!(record.tokens, vec!["token-1-0"]);
    assert_eq!(
        service.started()[0].document,
        SessionDocument::PortForwarding { port: 5432 }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_agent_forwards_one_connection_at_a_time() {
    let echo_addr = echo_server().await;
    let mut scenario = Scenario::new(Destination::Tcp(echo_addr));
    scenario.agent_version = "3.0.196.0";
    let (service, connector) = FakeService::on_loopback(scenario).await;
    let remote = Some("db.internal".to_owned());
    let session = PortSession::start(service.api(), INSTANCE, 5432, remote, config(connector))
        .await
        .unwrap();
    assert_eq!(
        session.mode(),
        PortForwarding::Basic {
            terminate_flag_supported: true
        }
    );

    let first = session.open_stream().await.unwrap();
    assert_eq!(session.open_stream().await.unwrap_err(), StreamError::Busy);
    let data = payload(7, 300 * 1024);
    assert_eq!(echo(first, data.clone()).await, data);

    // The close reached the agent as DisconnectToPort; the next connection gets a fresh
    // destination connection and nothing of the old one.
    let session_id = session.session_id().to_owned();
    eventually(Duration::from_secs(5), || {
        service.record(&session_id).flags == vec![1]
    })
    .await;
    let mut second = session.open_stream().await.unwrap();
    second.write_all(b"second connection").await.unwrap();
    let mut answer = [0u8; 17];
    second.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"second connection");
    drop(second);

    session.close().await.unwrap();
    let record = service.record(&session_id);
    assert!(record.violations.is_empty(), "{:?}", record.violations);
    assert_eq!(record.flags, vec![1, 1, 2]);
    assert_eq!(
        service.started()[0].document,
        SessionDocument::PortForwardingToRemoteHost {
            host: "db.internal".into(),
            port: 5432
        }
    );
}
