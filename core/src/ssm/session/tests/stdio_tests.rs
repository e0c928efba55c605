//! `run_stdio` (AWS-StartSSHSession for ProxyCommand) over loopback.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::fake::{Destination, FakeService, Scenario, echo_server};
use super::{INSTANCE, config, payload};
use crate::ssm::session::api::SessionDocument;
use crate::ssm::session::run_stdio;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdin_reaches_the_port_and_the_answers_reach_stdout() {
    let echo_addr = echo_server().await;
    let (service, connector) =
        FakeService::on_loopback(Scenario::new(Destination::Tcp(echo_addr))).await;
    let (mut keyboard, stdin) = tokio::io::duplex(8 * 1024);
    let (stdout, mut screen) = tokio::io::duplex(8 * 1024);
    let session = tokio::spawn(run_stdio(
        service.api(),
        INSTANCE,
        22,
        stdin,
        stdout,
        config(connector),
    ));

    let data = payload(42, 512 * 1024);
    let expected = data.clone();
    let reader = tokio::spawn(async move {
        let mut echoed = vec![0u8; expected.len()];
        screen.read_exact(&mut echoed).await.unwrap();
        assert_eq!(echoed, expected);
        screen
    });
    keyboard.write_all(&data).await.unwrap();
    let mut screen = reader.await.unwrap();
    // ssh closes its end: stdin EOF ends the session.
    drop(keyboard);
    session.await.unwrap().unwrap();
    let mut rest = Vec::new();
    screen.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty());

    let started = service.started();
    assert_eq!(started[0].document, SessionDocument::Ssh { port: 22 });
    let session_id = "tester-00000000000000001";
    let record = service.record(session_id);
    assert!(record.violations.is_empty(), "{:?}", record.violations);
    assert_eq!(record.client_bytes, data.len());
    assert_eq!(record.flags, vec![2]);
    assert_eq!(record.terminate_calls, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_speaks_first_and_hangs_up_ends_the_session() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let sshd = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        socket
            .write_all(b"SSH-2.0-OpenSSH_9.6 too busy\r\n")
            .await
            .unwrap();
    });
    let (service, connector) =
        FakeService::on_loopback(Scenario::new(Destination::Tcp(sshd))).await;
    // stdin stays open: the instance side ends the session.
    let (_keyboard, stdin) = tokio::io::duplex(1024);
    let (stdout, mut screen) = tokio::io::duplex(1024);
    run_stdio(
        service.api(),
        INSTANCE,
        22,
        stdin,
        stdout,
        config(connector),
    )
    .await
    .unwrap();
    let mut banner = String::new();
    screen.read_to_string(&mut banner).await.unwrap();
    assert_eq!(banner, "SSH-2.0-OpenSSH_9.6 too busy\r\n");
    let record = service.record("tester-00000000000000001");
    assert!(record.violations.is_empty(), "{:?}", record.violations);
    assert_eq!(record.terminate_calls, 0, "the service ended it");
    assert!(record.flags.is_empty());
}
