//! The smux fuzz target's properties (`fuzz/fuzz_targets/smux_frames.rs`), run
//! deterministically in `cargo test`: a seeded generator writes what an agent could send —
//! valid v1 frames for open, unknown and closed streams with any length, bad versions and
//! commands, garbage — split at random points, interleaved with the driver's calls.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::client::{MuxClient, MuxConfig, MuxEvent, StreamId};
use super::frame::{self, Command};

/// Agent bytes: mostly frames that parse, sometimes with a wrong version, an unknown command,
/// or a header whose length promises more than follows.
fn agent_bytes(rng: &mut StdRng, opened: &[StreamId]) -> Vec<u8> {
    let mut out = BytesMut::new();
    for _ in 0..rng.random_range(1..6) {
        let stream = match (rng.random_range(0..4), opened.is_empty()) {
            (0, _) | (_, true) => rng.random::<u32>(),
            _ => opened[rng.random_range(0..opened.len())].get(),
        };
        let command =
            [Command::Syn, Command::Fin, Command::Psh, Command::Nop][rng.random_range(0..4)];
        let mut data = vec![0u8; rng.random_range(0..2_000)];
        rng.fill(&mut data[..]);
        frame::encode(&mut out, command, stream, &data);
    }
    let mut bytes = out.to_vec();
    match rng.random_range(0..20) {
        0 => bytes[0] = rng.random(),
        1 => bytes[1] = rng.random_range(4..=255),
        2 => bytes.truncate(rng.random_range(0..bytes.len())),
        3 => {
            let mut garbage = vec![0u8; rng.random_range(0..64)];
            rng.fill(&mut garbage[..]);
            bytes.extend_from_slice(&garbage);
        }
        _ => {}
    }
    bytes
}

#[test]
fn a_client_fed_generated_agent_bytes_never_panics_and_keeps_its_invariants() {
    for seed in 0..300u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut now = Instant::now();
        let mut client = MuxClient::new(MuxConfig::for_agent(rng.random_bool(0.5)), now);
        let mut opened: Vec<StreamId> = Vec::new();
        let mut ids = BTreeSet::new();
        let mut pending: Vec<u8> = Vec::new();
        for _ in 0..120 {
            match rng.random_range(0..8) {
                0 => {
                    if let Ok(id) = client.open_stream() {
                        ids.insert(id.get());
                        opened.push(id);
                    }
                }
                1 if !opened.is_empty() => {
                    let id = opened[rng.random_range(0..opened.len())];
                    let data = vec![7u8; rng.random_range(0..100_000)];
                    if let Ok(taken) = client.write(id, &data) {
                        assert!(taken <= data.len());
                    }
                }
                2 if !opened.is_empty() => client.close(opened[rng.random_range(0..opened.len())]),
                3 => {
                    let max = rng.random_range(0..70_000);
                    if let Some(chunk) = client.poll_output(max) {
                        assert!(!chunk.is_empty() && chunk.len() <= max);
                    }
                }
                4 => {
                    while let Some(event) = client.poll_event() {
                        if let MuxEvent::StreamData { id, .. } | MuxEvent::StreamClosed { id } =
                            event
                        {
                            assert!(
                                ids.contains(&id.get()),
                                "seed {seed}: event for unopened {id}"
                            );
                        }
                    }
                }
                5 => {
                    now += Duration::from_secs(rng.random_range(0..15));
                    if client.poll_timeout().is_some_and(|at| at <= now) {
                        client.handle_timeout(now);
                    }
                }
                _ => {
                    pending.extend(agent_bytes(&mut rng, &opened));
                    // Offered in pieces split anywhere, the rest kept, as the driver does.
                    let split = rng.random_range(0..=pending.len());
                    let taken = client.handle_input(&pending[..split]);
                    assert!(taken <= split);
                    pending.drain(..taken);
                }
            }
        }
    }
}
