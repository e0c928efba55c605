//! Property tests: an [`MuxClient`] and the smux [`TestServer`] exchange random data on several
//! streams through a link that splits the byte stream at random points, with small buffers and
//! an application that sometimes stops reading. Every stream must carry exactly its bytes both
//! ways, and closes from either side must reach the other.

use std::num::NonZeroU16;
use std::time::Instant;

use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::client::{MuxClient, MuxConfig, MuxEvent, StreamId, WriteError};
use super::test_server::TestServer;

const MAX_STEPS: usize = 100_000;

struct Pump {
    rng: StdRng,
    client: MuxClient,
    server: TestServer,
    /// Server output the client has not taken yet.
    to_client: Vec<u8>,
    stall: f64,
    received: Vec<Vec<u8>>,
    closed_by_server: Vec<bool>,
    ids: Vec<StreamId>,
}

impl Pump {
    /// Moves bytes both ways in random pieces and lets the application read (unless stalled).
    fn step(&mut self) -> Result<(), TestCaseError> {
        let max = self.rng.random_range(1..3000);
        if let Some(chunk) = self.client.poll_output(max) {
            self.server.handle_input(&chunk);
        }
        let available = self.server.take_output(usize::MAX);
        self.to_client.extend_from_slice(&available);
        if !self.to_client.is_empty() {
            let piece = self.rng.random_range(1..=self.to_client.len().min(3000));
            let taken = self.client.handle_input(&self.to_client[..piece]);
            self.to_client.drain(..taken);
        }
        if !self.rng.random_bool(self.stall) {
            while let Some(event) = self.client.poll_event() {
                let index = |id: StreamId| self.ids.iter().position(|&known| known == id);
                match event {
                    MuxEvent::StreamData { id, data } => {
                        let i = index(id)
                            .ok_or_else(|| TestCaseError::fail("data for an unknown stream"))?;
                        self.received[i].extend_from_slice(&data);
                    }
                    MuxEvent::StreamClosed { id } => {
                        let i = index(id)
                            .ok_or_else(|| TestCaseError::fail("close of an unknown stream"))?;
                        prop_assert!(!self.closed_by_server[i], "stream closed twice");
                        self.closed_by_server[i] = true;
                    }
                    MuxEvent::Closed(reason) => prop_assert!(false, "session closed: {reason}"),
                }
            }
        }
        prop_assert!(
            self.server.violations.is_empty(),
            "{:?}",
            self.server.violations
        );
        Ok(())
    }

    /// Nothing left to move in either direction (`send_buffer` free means no client output).
    fn quiet(&self, send_buffer: usize) -> bool {
        self.to_client.is_empty()
            && !self.server.has_output()
            && self.client.send_capacity() == send_buffer
    }
}

fn run(
    seed: u64,
    streams: Vec<(Vec<u8>, Vec<u8>)>,
    frame_size: u16,
    receive_buffer: usize,
    send_buffer: usize,
    stall: f64,
) -> Result<(), TestCaseError> {
    let config = MuxConfig {
        max_frame_size: NonZeroU16::new(frame_size).unwrap(),
        max_receive_buffer: receive_buffer,
        max_send_buffer: send_buffer,
        ..MuxConfig::for_agent(false)
    };
    let mut client = MuxClient::new(config, Instant::now());
    let ids: Vec<StreamId> = streams
        .iter()
        .map(|_| client.open_stream().unwrap())
        .collect();
    let mut pump = Pump {
        rng: StdRng::seed_from_u64(seed),
        client,
        server: TestServer::default(),
        to_client: Vec::new(),
        stall,
        received: vec![Vec::new(); streams.len()],
        closed_by_server: vec![false; streams.len()],
        ids,
    };
    let mut client_written = vec![0; streams.len()];
    let mut server_written = vec![0; streams.len()];

    let mut delivered = false;
    for _ in 0..MAX_STEPS {
        for (i, (to_server, to_client)) in streams.iter().enumerate() {
            let id = pump.ids[i];
            if client_written[i] < to_server.len() {
                let end = to_server
                    .len()
                    .min(client_written[i] + pump.rng.random_range(1..5000));
                match pump.client.write(id, &to_server[client_written[i]..end]) {
                    Ok(taken) => client_written[i] += taken,
                    Err(WriteError::Full) => {}
                    Err(other) => prop_assert!(false, "write failed: {other}"),
                }
            }
            if server_written[i] < to_client.len() && pump.rng.random_bool(0.3) {
                let end = to_client
                    .len()
                    .min(server_written[i] + pump.rng.random_range(1..5000));
                pump.server
                    .write(id.get(), &to_client[server_written[i]..end]);
                server_written[i] = end;
            }
        }
        pump.step()?;
        delivered = streams
            .iter()
            .enumerate()
            .all(|(i, (to_server, to_client))| {
                pump.server
                    .streams
                    .get(&pump.ids[i].get())
                    .map(|s| s.received.len())
                    == Some(to_server.len())
                    && pump.received[i].len() == to_client.len()
            });
        if delivered {
            break;
        }
    }
    prop_assert!(delivered, "data did not get through");
    for (i, (to_server, to_client)) in streams.iter().enumerate() {
        prop_assert_eq!(&pump.server.streams[&pump.ids[i].get()].received, to_server);
        prop_assert_eq!(&pump.received[i], to_client);
    }

    // Even streams are closed by the client, odd ones by the server.
    for (i, &id) in pump.ids.clone().iter().enumerate() {
        if i % 2 == 0 {
            pump.client.close(id);
        } else {
            pump.server.close(id.get());
        }
    }
    for _ in 0..MAX_STEPS {
        pump.step()?;
        let all_closed = pump
            .ids
            .iter()
            .all(|id| pump.server.streams[&id.get()].fin_received);
        if all_closed && pump.quiet(send_buffer) {
            break;
        }
    }
    pump.stall = 0.0;
    pump.step()?;
    for (i, &id) in pump.ids.iter().enumerate() {
        prop_assert!(
            pump.server.streams[&id.get()].fin_received,
            "{id} not closed at the server"
        );
        prop_assert_eq!(
            pump.closed_by_server[i],
            i % 2 == 1,
            "close event for {}",
            id
        );
        prop_assert_eq!(pump.client.write(id, b"x"), Err(WriteError::UnknownStream));
    }
    Ok(())
}

fn frame_size() -> impl Strategy<Value = u16> {
    prop_oneof![1u16..64, 64u16..4096, Just(32768u16)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn mux_streams_carry_their_bytes_intact_both_ways_over_a_chunk_splitting_link(
        seed in any::<u64>(),
        streams in proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 0..12_000), proptest::collection::vec(any::<u8>(), 0..12_000)),
            1..5,
        ),
        frame_size in frame_size(),
        receive_buffer in 1usize..40_000,
        send_buffer in 1usize..40_000,
        stall in 0.0..0.7f64,
    ) {
        run(seed, streams, frame_size, receive_buffer, send_buffer, stall)?;
    }
}

#[test]
fn large_transfers_on_many_streams_get_through_tiny_buffers() {
    let streams: Vec<_> = (0..6u8)
        .map(|s| {
            let data: Vec<u8> = (0..70_000u32)
                .map(|i| (i as u8).wrapping_mul(s + 1))
                .collect();
            (data.clone(), data)
        })
        .collect();
    run(9, streams, 32768, 1000, 1000, 0.5).unwrap();
}
