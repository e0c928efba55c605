//! Property tests: a client [`DataChannel`] and the [`TestAgent`] exchange random data both ways
//! through a link that loses, duplicates, delays (and so reorders) frames and sometimes cuts the
//! connection, after which both sides are told they reconnected. Whatever the link does, each
//! side must receive exactly the bytes the other sent, in order, and the agent must never see
//! client data before the handshake completed.

use std::num::{NonZeroU16, NonZeroUsize};
use std::time::{Duration, Instant};

use bytes::Bytes;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::channel::{ChannelConfig, DataChannel};
use super::event::Event;
use super::test_agent::TestAgent;

const MAX_STEPS: usize = 400_000;
const AGENT_RESEND: Duration = Duration::from_millis(50);

#[derive(Debug, Clone)]
struct Conditions {
    loss: f64,
    duplication: f64,
    max_delay_ms: u64,
    cut: f64,
    app_stall: f64,
}

fn conditions() -> impl Strategy<Value = Conditions> {
    (
        0.0..0.3f64,
        0.0..0.2f64,
        0u64..40,
        0.0..0.004f64,
        0.0..0.6f64,
    )
        .prop_map(
            |(loss, duplication, max_delay_ms, cut, app_stall)| Conditions {
                loss,
                duplication,
                max_delay_ms,
                cut,
                app_stall,
            },
        )
}

/// Frames on their way in one direction, each with its delivery time.
#[derive(Default)]
struct Link {
    in_flight: Vec<(Instant, Bytes)>,
}

impl Link {
    fn send(&mut self, frame: Bytes, now: Instant, rng: &mut StdRng, conditions: &Conditions) {
        if rng.random_bool(conditions.loss) {
            return;
        }
        let copies = if rng.random_bool(conditions.duplication) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let delay = Duration::from_millis(rng.random_range(0..=conditions.max_delay_ms));
            self.in_flight.push((now + delay, frame.clone()));
        }
    }

    fn next_delivery(&self) -> Option<Instant> {
        self.in_flight.iter().map(|(at, _)| *at).min()
    }

    fn due(&mut self, now: Instant) -> Vec<Bytes> {
        let (due, later): (Vec<_>, Vec<_>) =
            self.in_flight.drain(..).partition(|(at, _)| *at <= now);
        self.in_flight = later;
        due.into_iter().map(|(_, frame)| frame).collect()
    }
}

fn run(
    seed: u64,
    conditions: &Conditions,
    port_session: bool,
    client_data: &[u8],
    agent_data: &[u8],
) -> Result<(), TestCaseError> {
    let mut rng = StdRng::seed_from_u64(seed);
    let start = Instant::now();
    let mut now = start;
    let config = ChannelConfig {
        max_payload: NonZeroU16::new(700).unwrap(),
        send_buffer: 3000,
        max_in_flight: NonZeroUsize::new(8).unwrap(),
        receive_buffer: 1500,
        max_early: 16,
        ack_timeout: Duration::from_secs(3600),
        rng_seed: seed,
    };
    let mut client = DataChannel::new(config, start, 1_700_000_000_000);
    let mut agent = if port_session {
        TestAgent::port(
            "3.1.1732.0",
            json!({"type": "LocalPortForwarding"}),
            start,
            AGENT_RESEND,
        )
    } else {
        TestAgent::shell(AGENT_RESEND)
    };
    agent.send_output(agent_data);
    let (mut to_agent, mut to_client) = (Link::default(), Link::default());
    let mut written = 0;
    let mut client_received = Vec::new();
    let mut ready = false;

    for _ in 0..MAX_STEPS {
        if written < client_data.len() {
            let end = client_data.len().min(written + rng.random_range(1..=2000));
            if let Ok(taken) = client.send_data(&client_data[written..end]) {
                written += taken;
            }
        }
        let stalled = rng.random_bool(conditions.app_stall);
        if !stalled {
            while let Some(event) = client.poll_event() {
                match event {
                    Event::HandshakeComplete(_) if port_session => ready = true,
                    Event::NoHandshake if !port_session => ready = true,
                    Event::Output(data) => {
                        prop_assert!(ready, "output before the session was ready");
                        client_received.extend_from_slice(&data);
                    }
                    other => prop_assert!(false, "unexpected event {other:?}"),
                }
            }
        }
        while let Some(frame) = client.poll_transmit(now) {
            to_agent.send(frame, now, &mut rng, conditions);
        }
        while let Some(frame) = agent.poll_transmit(now) {
            to_client.send(frame, now, &mut rng, conditions);
        }
        if rng.random_bool(conditions.cut) {
            to_agent.in_flight.clear();
            to_client.in_flight.clear();
            now += Duration::from_millis(rng.random_range(1..500));
            client.reconnected(now);
            agent.reconnected(now);
            continue;
        }
        let done = written == client_data.len()
            && agent.received.len() == client_data.len()
            && client_received.len() == agent_data.len()
            && agent.all_acknowledged()
            && client.unacknowledged() == 0;
        if done {
            prop_assert!(agent.violations.is_empty(), "{:?}", agent.violations);
            prop_assert_eq!(&agent.received[..], client_data);
            prop_assert_eq!(&client_received[..], agent_data);
            if port_session {
                prop_assert!(agent.response.is_some());
            }
            return Ok(());
        }

        let app_busy = stalled || written < client_data.len();
        let timers = [
            to_agent.next_delivery(),
            to_client.next_delivery(),
            client.poll_timeout(),
            agent.next_timeout(),
            app_busy.then(|| now + Duration::from_millis(1)),
        ];
        let next = timers
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(now + Duration::from_millis(1));
        now = now.max(next);

        for frame in to_agent.due(now) {
            agent.handle(&frame, now);
        }
        for frame in to_client.due(now) {
            prop_assert_eq!(client.handle_incoming(&frame, now), Ok(()));
        }
        if client.poll_timeout().is_some_and(|at| at <= now) {
            client.handle_timeout(now);
        }
        agent.handle_timeout(now);
        prop_assert!(agent.violations.is_empty(), "{:?}", agent.violations);
    }
    Err(TestCaseError::fail(format!(
        "no convergence: client wrote {written}/{}, agent got {}, client got {}/{}",
        client_data.len(),
        agent.received.len(),
        client_received.len(),
        agent_data.len()
    )))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn port_session_bytes_arrive_intact_and_in_order_through_a_lossy_link_with_reconnects(
        seed in any::<u64>(),
        conditions in conditions(),
        client_data in proptest::collection::vec(any::<u8>(), 0..6000),
        agent_data in proptest::collection::vec(any::<u8>(), 0..6000),
    ) {
        run(seed, &conditions, true, &client_data, &agent_data)?;
    }

    #[test]
    fn shell_session_bytes_arrive_intact_and_in_order_through_a_lossy_link_with_reconnects(
        seed in any::<u64>(),
        conditions in conditions(),
        client_data in proptest::collection::vec(any::<u8>(), 0..3000),
        agent_data in proptest::collection::vec(any::<u8>(), 1..3000),
    ) {
        run(seed, &conditions, false, &client_data, &agent_data)?;
    }
}

#[test]
fn a_perfect_link_delivers_both_ways() {
    let perfect = Conditions {
        loss: 0.0,
        duplication: 0.0,
        max_delay_ms: 0,
        cut: 0.0,
        app_stall: 0.0,
    };
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    run(1, &perfect, true, &data, &data).unwrap();
}

#[test]
fn a_harsh_link_with_frequent_cuts_still_delivers_both_ways() {
    let harsh = Conditions {
        loss: 0.3,
        duplication: 0.2,
        max_delay_ms: 60,
        cut: 0.01,
        app_stall: 0.5,
    };
    let data: Vec<u8> = (0..8_000u32).map(|i| (i % 253) as u8).collect();
    for seed in 0..4 {
        run(seed, &harsh, true, &data, &data).unwrap();
    }
}
