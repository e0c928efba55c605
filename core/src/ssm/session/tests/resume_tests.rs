//! Losing the WebSocket: resume with a fresh token and nothing lost, retries with backoff,
//! and the two ways resuming ends a session.

use std::collections::HashSet;
use std::io;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::fake::{CutStyle, Destination, FakeService, Scenario, echo_server};
use super::{INSTANCE, config, echo, eventually, payload, sha256};
use crate::ssm::session::{PortSession, ResumePolicy, SessionEnd, SessionState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_connections_resume_with_fresh_tokens_and_lose_or_repeat_nothing() {
    let echo_addr = echo_server().await;
    let mut scenario = Scenario::new(Destination::Tcp(echo_addr));
    scenario.cuts = vec![
        (1024 * 1024, CutStyle::Drop),
        (5 * 1024 * 1024, CutStyle::Bye),
    ];
    let (service, connector) = FakeService::on_loopback(scenario).await;
    let session = PortSession::start(service.api(), INSTANCE, 22, None, config(connector))
        .await
        .unwrap();
    let mut states = session.state();
    let resuming_seen = tokio::spawn(async move {
        let mut seen = false;
        while states.changed().await.is_ok() {
            seen |= matches!(*states.borrow(), SessionState::Resuming { .. });
        }
        seen
    });

    const SIZE: usize = 4 * 1024 * 1024;
    let mut transfers = Vec::new();
    for seed in 10..12u8 {
        let stream = session.open_stream().await.unwrap();
        let data = payload(seed, SIZE);
        let digest = sha256(&data);
        transfers.push(tokio::spawn(async move {
            (digest, sha256(&echo(stream, data).await))
        }));
    }
    for transfer in transfers {
        let (sent, echoed) = transfer.await.unwrap();
        assert_eq!(sent, echoed, "every byte arrives once, in order");
    }

    assert_eq!(session.stats().resumes, 2);
    let session_id = session.session_id().to_owned();
    session.close().await.unwrap();
    assert!(resuming_seen.await.unwrap());

    let record = service.record(&session_id);
    assert!(record.violations.is_empty(), "{:?}", record.violations);
    assert_eq!(record.tokens, vec!["token-1-0", "token-1-1", "token-1-2"]);
    assert_eq!(record.resume_calls, 2);
    assert_eq!(
        record.client_ids.iter().collect::<HashSet<_>>().len(),
        1,
        "one ClientId for the session's life"
    );
    assert_eq!(
        record.request_ids.iter().collect::<HashSet<_>>().len(),
        3,
        "a fresh RequestId per connection"
    );
}

#[tokio::test(start_paused = true)]
async fn transient_resume_failures_are_retried_with_growing_delays() {
    let mut scenario = Scenario::new(Destination::Discard);
    scenario.cuts = vec![(10_000, CutStyle::Drop)];
    scenario.resume_failures = 3;
    let (service, connector) = FakeService::in_memory(scenario);
    let mut config = config(connector);
    config.resume = ResumePolicy {
        first_delay: Duration::from_millis(400),
        max_delay: Duration::from_secs(10),
        give_up_after: Duration::from_secs(60),
    };
    let session = PortSession::start(service.api(), INSTANCE, 22, None, config)
        .await
        .unwrap();
    let session_id = session.session_id().to_owned();
    let mut states = session.state();
    let attempts = tokio::spawn(async move {
        let mut attempts = Vec::new();
        while states.changed().await.is_ok() {
            let state = states.borrow().clone();
            match state {
                SessionState::Resuming { attempt } => attempts.push(attempt),
                SessionState::Open if !attempts.is_empty() => return attempts,
                _ => {}
            }
        }
        attempts
    });

    let mut stream = session.open_stream().await.unwrap();
    let started = tokio::time::Instant::now();
    stream.write_all(&payload(3, 20_000)).await.unwrap();
    assert_eq!(attempts.await.unwrap(), vec![1, 2, 3, 4]);
    let waited = started.elapsed();
    // Three failures: waits of at least 200 + 400 + 800 ms (each jittered within its upper half).
    assert!(
        waited >= Duration::from_millis(1400) && waited < Duration::from_millis(3000),
        "{waited:?}"
    );
    eventually(Duration::from_secs(10), || {
        service.record(&session_id).client_bytes > 20_000
    })
    .await;
    let record = service.record(&session_id);
    assert_eq!(record.resume_calls, 4);
    assert_eq!(record.tokens, vec!["token-1-0", "token-1-1"]);
    drop(stream);
    session.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_resume_refused_for_expired_credentials_is_retried_until_they_are_renewed() {
    let mut scenario = Scenario::new(Destination::Discard);
    scenario.cuts = vec![(10_000, CutStyle::Bye)];
    scenario.resume_expired = 2;
    let (service, connector) = FakeService::in_memory(scenario);
    let session = PortSession::start(service.api(), INSTANCE, 22, None, config(connector))
        .await
        .unwrap();
    let session_id = session.session_id().to_owned();
    let mut stream = session.open_stream().await.unwrap();
    stream.write_all(&payload(4, 20_000)).await.unwrap();
    eventually(Duration::from_secs(30), || {
        service.record(&session_id).client_bytes >= 20_000
    })
    .await;
    let record = service.record(&session_id);
    assert_eq!(record.resume_calls, 3, "two refusals, then a token");
    assert_eq!(record.tokens, vec!["token-1-0", "token-1-1"]);
    assert_eq!(session.stats().resumes, 1);
    assert!(matches!(*session.state().borrow(), SessionState::Open));
    drop(stream);
    session.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_session_that_timed_out_ends_when_resume_returns_no_token() {
    let mut scenario = Scenario::new(Destination::Discard);
    scenario.cuts = vec![(1000, CutStyle::Bye)];
    scenario.resume_without_token = true;
    let (service, connector) = FakeService::in_memory(scenario);
    let session = PortSession::start(service.api(), INSTANCE, 22, None, config(connector))
        .await
        .unwrap();
    let mut stream = session.open_stream().await.unwrap();
    stream.write_all(&[0u8; 2000]).await.unwrap();
    let mut buffer = [0u8; 16];
    let error = stream.read(&mut buffer).await.unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::ConnectionAborted);
    let mut states = session.state();
    let end = states
        .wait_for(|state| matches!(state, SessionState::Closed(_)))
        .await
        .unwrap()
        .clone();
    assert_eq!(end, SessionState::Closed(SessionEnd::TimedOut));
    let record = service.record(session.session_id());
    assert_eq!(record.terminate_calls, 0, "the service already ended it");
    session.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn resuming_gives_up_when_its_budget_is_spent() {
    let mut scenario = Scenario::new(Destination::Discard);
    scenario.cuts = vec![(1000, CutStyle::Drop)];
    scenario.resume_failures = u32::MAX;
    let (service, connector) = FakeService::in_memory(scenario);
    let mut config = config(connector);
    config.resume.give_up_after = Duration::from_secs(20);
    let session = PortSession::start(service.api(), INSTANCE, 22, None, config)
        .await
        .unwrap();
    let mut stream = session.open_stream().await.unwrap();
    stream.write_all(&[0u8; 2000]).await.unwrap();
    let lost = tokio::time::Instant::now();
    let mut states = session.state();
    let end = states
        .wait_for(|state| matches!(state, SessionState::Closed(_)))
        .await
        .unwrap()
        .clone();
    let after = lost.elapsed();
    assert!(
        matches!(&end, SessionState::Closed(SessionEnd::ResumeFailed { error }) if error.contains("internal error")),
        "{end:?}"
    );
    assert!(
        after >= Duration::from_secs(20) && after < Duration::from_secs(21),
        "{after:?}"
    );
    let record = service.record(session.session_id());
    assert!(record.resume_calls > 10, "{}", record.resume_calls);
    assert_eq!(
        record.terminate_calls, 1,
        "best effort, in case it is still open"
    );
    session.close().await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_goes_silent_is_given_up_and_resumed() {
    let mut scenario = Scenario::new(Destination::Discard);
    scenario.cuts = vec![(4000, CutStyle::Freeze)];
    let (service, connector) = FakeService::in_memory(scenario);
    let session = PortSession::start(service.api(), INSTANCE, 22, None, config(connector))
        .await
        .unwrap();
    let session_id = session.session_id().to_owned();
    let mut stream = session.open_stream().await.unwrap();
    let data = payload(5, 10_000);
    let frozen_at = tokio::time::Instant::now();
    stream.write_all(&data).await.unwrap();
    // Everything arrives: the data plus the smux SYN and one PSH header.
    let expected = data.len() + 16;
    eventually(Duration::from_secs(200), || {
        service.record(&session_id).client_bytes >= expected
    })
    .await;
    let silent_for = frozen_at.elapsed();
    // Pings at 0, 30 and 60 s go unanswered; at 90 s the connection is given up.
    assert!(
        silent_for >= Duration::from_secs(90) && silent_for < Duration::from_secs(92),
        "{silent_for:?}"
    );
    assert_eq!(session.stats().resumes, 1);
    let record = service.record(&session_id);
    assert!(record.violations.is_empty(), "{:?}", record.violations);
    assert_eq!(record.client_bytes, expected);
    assert_eq!(record.tokens, vec!["token-1-0", "token-1-1"]);
    drop(stream);
    session.close().await.unwrap();
}
