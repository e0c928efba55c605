//! The smux v1 client fed arbitrary agent bytes, split anywhere, interleaved with the calls a
//! driver makes (open, write, close, drain, keepalive timers).
//!
//! Properties: nothing panics; `handle_input` never claims more bytes than it was offered;
//! `poll_output` never returns more than asked for; stream data only ever arrives for a
//! stream the client opened.

#![no_main]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use arbitrary::Arbitrary;
use bastionless_core::ssm::mux::{MuxClient, MuxConfig, MuxEvent, StreamId};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, Arbitrary)]
enum Step {
    Input(Vec<u8>),
    Open,
    Write { stream: u8, data: Vec<u8> },
    Close { stream: u8 },
    Output { max: u16 },
    Events { count: u8 },
    Advance { millis: u16 },
}

#[derive(Debug, Arbitrary)]
struct Run {
    keepalive: bool,
    steps: Vec<Step>,
}

fuzz_target!(|run: Run| {
    let mut now = Instant::now();
    let mut client = MuxClient::new(MuxConfig::for_agent(run.keepalive), now);
    let mut opened: Vec<StreamId> = Vec::new();
    let mut ids = BTreeSet::new();
    for step in run.steps {
        match step {
            Step::Input(bytes) => {
                let taken = client.handle_input(&bytes);
                assert!(taken <= bytes.len());
            }
            Step::Open => {
                if let Ok(id) = client.open_stream() {
                    ids.insert(id.get());
                    opened.push(id);
                }
            }
            Step::Write { stream, data } => {
                if let Some(&id) = opened.get(usize::from(stream)) {
                    if let Ok(taken) = client.write(id, &data) {
                        assert!(taken <= data.len());
                    }
                }
            }
            Step::Close { stream } => {
                if let Some(&id) = opened.get(usize::from(stream)) {
                    client.close(id);
                }
            }
            Step::Output { max } => {
                if let Some(chunk) = client.poll_output(usize::from(max)) {
                    assert!(!chunk.is_empty() && chunk.len() <= usize::from(max));
                }
            }
            Step::Events { count } => {
                for _ in 0..count {
                    match client.poll_event() {
                        Some(MuxEvent::StreamData { id, .. } | MuxEvent::StreamClosed { id }) => {
                            assert!(ids.contains(&id.get()), "event for unopened {id}");
                        }
                        Some(MuxEvent::Closed(_)) => {}
                        None => break,
                    }
                }
            }
            Step::Advance { millis } => {
                now += Duration::from_millis(u64::from(millis) * 100);
                if client
                    .poll_timeout()
                    .is_some_and(|deadline| deadline <= now)
                {
                    client.handle_timeout(now);
                }
            }
        }
    }
});
