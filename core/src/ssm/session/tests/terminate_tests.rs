//! Ending sessions we started: the TerminateSession flag, its bounded wait, the API call.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::fake::{Destination, FakeService, Scenario};
use super::{INSTANCE, config, eventually};
use crate::ssm::proto::PortForwarding;
use crate::ssm::session::{PortSession, SessionEnd, SessionError, SessionState};

#[tokio::test(start_paused = true)]
async fn closing_sends_the_terminate_flag_waits_for_its_ack_then_calls_the_api() {
    let (service, connector) = FakeService::in_memory(Scenario::new(Destination::Discard));
    let session = PortSession::start(service.api(), INSTANCE, 80, None, config(connector))
        .await
        .unwrap();
    let session_id = session.session_id().to_owned();
    let mut stream = session.open_stream().await.unwrap();
    stream.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
    let mut states = session.state();

    let started = tokio::time::Instant::now();
    session.close().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "an acknowledged flag needs no wait"
    );

    let record = service.record(&session_id);
    assert!(record.violations.is_empty(), "{:?}", record.violations);
    assert_eq!(record.flags, vec![2]);
    assert_eq!(record.terminate_calls, 1);
    assert_eq!(
        *states.borrow_and_update(),
        SessionState::Closed(SessionEnd::Terminated)
    );
    let mut rest = Vec::new();
    assert_eq!(stream.read_to_end(&mut rest).await.unwrap(), 0);
}

#[tokio::test(start_paused = true)]
async fn closing_waits_only_briefly_for_an_agent_that_no_longer_answers() {
    let mut scenario = Scenario::new(Destination::Discard);
    scenario.deaf_agent = true;
    let (service, connector) = FakeService::in_memory(scenario);
    let mut config = config(connector);
    config.terminate_wait = Duration::from_secs(2);
    let session = PortSession::start(service.api(), INSTANCE, 80, None, config)
        .await
        .unwrap();
    let session_id = session.session_id().to_owned();

    let started = tokio::time::Instant::now();
    session.close().await.unwrap();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_millis(2100),
        "{took:?}"
    );
    let record = service.record(&session_id);
    assert!(record.flags.is_empty(), "the agent heard nothing");
    assert_eq!(record.terminate_calls, 1);
}

#[tokio::test(start_paused = true)]
async fn dropping_the_handle_ends_the_session_too() {
    let (service, connector) = FakeService::in_memory(Scenario::new(Destination::Discard));
    let session = PortSession::start(service.api(), INSTANCE, 80, None, config(connector))
        .await
        .unwrap();
    let session_id = session.session_id().to_owned();
    drop(session);
    eventually(Duration::from_secs(5), || {
        service.record(&session_id).terminate_calls == 1
    })
    .await;
    assert_eq!(service.record(&session_id).flags, vec![2]);
}

#[tokio::test(start_paused = true)]
async fn an_agent_too_old_for_the_flag_is_terminated_through_the_api_alone() {
    let mut scenario = Scenario::new(Destination::Discard);
    scenario.agent_version = "2.3.722.0";
    let (service, connector) = FakeService::in_memory(scenario);
    let session = PortSession::start(service.api(), INSTANCE, 80, None, config(connector))
        .await
        .unwrap();
    assert_eq!(
        session.mode(),
        PortForwarding::Basic {
            terminate_flag_supported: false
        }
    );
    let session_id = session.session_id().to_owned();
    let started = tokio::time::Instant::now();
    session.close().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(100),
        "no flag, no wait"
    );
    let record = service.record(&session_id);
    assert!(record.flags.is_empty());
    assert_eq!(record.terminate_calls, 1);
}

#[tokio::test(start_paused = true)]
async fn a_session_whose_agent_never_answers_fails_to_start_and_is_terminated() {
    let mut scenario = Scenario::new(Destination::Discard);
    scenario.absent_agent = true;
    let (service, connector) = FakeService::in_memory(scenario);
    let started = tokio::time::Instant::now();
    let error = PortSession::start(service.api(), INSTANCE, 80, None, config(connector))
        .await
        .unwrap_err();
    assert_eq!(started.elapsed(), Duration::from_secs(10));
    assert!(
        matches!(&error, SessionError::OpenTimeout { waiting_for, .. } if waiting_for.contains("handshake")),
        "{error}"
    );
    let session_id = "tester-00000000000000001";
    eventually(Duration::from_secs(5), || {
        service.record(session_id).terminate_calls == 1
    })
    .await;
}
