//! Pacing, measured where the service would measure it: arrival times of stream messages at
//! the fake service, on tokio's paused clock over in-memory pipes (so send time is arrival
//! time, and no wall clock is involved).

use std::num::{NonZeroU16, NonZeroU32};
use std::time::Duration;

use tokio::io::AsyncWriteExt;

use super::fake::{Destination, FakeService, Scenario};
use super::{INSTANCE, config, eventually, payload};
use crate::ssm::session::PortSession;
use crate::ssm::session::api::SessionDocument;
use crate::ssm::session::driver::Purpose;

/// The most messages that arrived in any half-open one-second window.
fn busiest_second(arrivals: &[tokio::time::Instant]) -> usize {
    let mut end = 0;
    let mut busiest = 0;
    for (start, first) in arrivals.iter().enumerate() {
        while end < arrivals.len() && arrivals[end] < *first + Duration::from_secs(1) {
            end += 1;
        }
        busiest = busiest.max(end - start);
    }
    busiest
}

#[tokio::test(start_paused = true)]
async fn stream_messages_keep_to_the_rate_limit_and_the_payload_size() {
    let (service, connector) = FakeService::in_memory(Scenario::new(Destination::Discard));
    let mut config = config(connector);
    config.max_messages_per_second = NonZeroU32::new(50).unwrap();
    config.channel.max_payload = NonZeroU16::new(256).unwrap();
    let session = PortSession::start_with(
        service.api(),
        INSTANCE,
        SessionDocument::Ssh { port: 22 },
        Purpose::Stdio,
        config,
    )
    .await
    .unwrap();
    let session_id = session.session_id().to_owned();
    let mut stream = session.open_stream().await.unwrap();

    const SIZE: usize = 40 * 1024;
    let started = tokio::time::Instant::now();
    stream.write_all(&payload(1, SIZE)).await.unwrap();
    eventually(Duration::from_secs(60), || {
        service.record(&session_id).client_bytes == SIZE
    })
    .await;
    let took = started.elapsed();

    let record = service.record(&session_id);
    assert!(record.violations.is_empty(), "{:?}", record.violations);
    let data_frames: Vec<_> = record.stream_frames.iter().skip(1).collect();
    assert!(data_frames.iter().all(|(_, len)| *len <= 256));
    assert!(data_frames.len() >= SIZE / 256, "{}", data_frames.len());
    let arrivals: Vec<_> = record.stream_frames.iter().map(|(at, _)| *at).collect();
    let busiest = busiest_second(&arrivals);
    assert!(busiest <= 50, "{busiest} messages in one second");
    assert!(
        busiest >= 45,
        "pacing should not waste the budget: {busiest}"
    );
    // 160 messages at 50 per second, less the initial burst of one.
    assert!(took >= Duration::from_millis(3150), "{took:?}");
    drop(stream);
    session.close().await.unwrap();
}
