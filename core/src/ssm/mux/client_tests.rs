//! Unit tests of [`MuxClient`]: exact frames out, events for hand-built frames in, keepalive
//! with a fake clock.

use std::num::NonZeroU16;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::client::{
    Keepalive, MuxClient, MuxCloseReason, MuxConfig, MuxEvent, OpenError, StreamId, WriteError,
};
use super::frame::FrameError;
use super::test_server::TestServer;

fn config() -> MuxConfig {
    MuxConfig::for_agent(false)
}

fn all_output(client: &mut MuxClient) -> Vec<u8> {
    std::iter::from_fn(|| client.poll_output(usize::MAX))
        .flatten()
        .collect()
}

fn events(client: &mut MuxClient) -> Vec<MuxEvent> {
    std::iter::from_fn(|| client.poll_event()).collect()
}

fn psh(id: u32, data: &[u8]) -> Vec<u8> {
    let mut frame = vec![1, 2];
    frame.extend_from_slice(&(data.len() as u16).to_le_bytes());
    frame.extend_from_slice(&id.to_le_bytes());
    frame.extend_from_slice(data);
    frame
}

fn fin(id: u32) -> Vec<u8> {
    let mut frame = vec![1, 1, 0, 0];
    frame.extend_from_slice(&id.to_le_bytes());
    frame
}

fn data(id: StreamId, bytes: &'static [u8]) -> MuxEvent {
    MuxEvent::StreamData {
        id,
        data: Bytes::from_static(bytes),
    }
}

#[test]
fn the_first_stream_is_3_and_each_open_sends_a_syn() {
    let mut client = MuxClient::new(config(), Instant::now());
    assert_eq!(client.open_stream().map(StreamId::get), Ok(3));
    assert_eq!(client.open_stream().map(StreamId::get), Ok(5));
    assert_eq!(
        all_output(&mut client),
        [1, 0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 5, 0, 0, 0]
    );
}

#[test]
fn opening_fails_once_stream_ids_run_out() {
    let mut client = MuxClient::new(config(), Instant::now());
    client.skip_stream_ids_for_test(u32::MAX - 2);
    assert_eq!(client.open_stream().map(StreamId::get), Ok(u32::MAX));
    assert_eq!(client.open_stream(), Err(OpenError::StreamIdsExhausted));
}

#[test]
fn writes_are_cut_into_frames_of_at_most_the_frame_size() {
    let mut client = MuxClient::new(
        MuxConfig {
            max_frame_size: NonZeroU16::new(3).unwrap(),
            ..config()
        },
        Instant::now(),
    );
    let id = client.open_stream().unwrap();
    all_output(&mut client);
    assert_eq!(client.write(id, b"abcdefg"), Ok(7));
    let mut expected = psh(3, b"abc");
    expected.extend(psh(3, b"def"));
    expected.extend(psh(3, b"g"));
    assert_eq!(all_output(&mut client), expected);
}

#[test]
fn poll_output_hands_out_no_more_than_asked_and_splits_frames() {
    let mut client = MuxClient::new(config(), Instant::now());
    let id = client.open_stream().unwrap();
    client.write(id, b"hello").unwrap();
    let mut pieces = Vec::new();
    while let Some(piece) = client.poll_output(5) {
        assert!(piece.len() <= 5);
        pieces.extend_from_slice(&piece);
    }
    let mut expected = vec![1, 0, 0, 0, 3, 0, 0, 0];
    expected.extend(psh(3, b"hello"));
    assert_eq!(pieces, expected);
    assert_eq!(client.poll_output(0), None);
}

#[test]
fn a_full_send_buffer_pushes_back_until_output_is_taken() {
    let mut client = MuxClient::new(
        MuxConfig {
            max_send_buffer: 20,
            ..config()
        },
        Instant::now(),
    );
    let id = client.open_stream().unwrap();
    assert_eq!(client.write(id, &[7; 30]), Ok(12));
    assert_eq!(client.send_capacity(), 0);
    assert_eq!(client.write(id, b"x"), Err(WriteError::Full));
    assert_eq!(client.poll_output(usize::MAX).map(|syn| syn.len()), Some(8));
    assert_eq!(
        client.send_capacity(),
        0,
        "the frame header counts against the buffer too"
    );
    assert_eq!(
        client.poll_output(usize::MAX).map(|psh| psh.len()),
        Some(20)
    );
    assert_eq!(client.send_capacity(), 20);
    assert_eq!(client.write(id, &[7; 30]), Ok(20));
}

#[test]
fn input_split_at_every_byte_is_reassembled_into_stream_data() {
    let mut client = MuxClient::new(config(), Instant::now());
    let id = client.open_stream().unwrap();
    let mut input = psh(3, b"hello");
    input.extend(psh(3, b" world"));
    for byte in &input {
        assert_eq!(client.handle_input(std::slice::from_ref(byte)), 1);
    }
    assert_eq!(
        events(&mut client),
        [data(id, b"hello"), data(id, b" world")]
    );
}

#[test]
fn a_fin_from_the_agent_closes_the_stream_entirely_and_is_answered() {
    let mut client = MuxClient::new(config(), Instant::now());
    let id = client.open_stream().unwrap();
    all_output(&mut client);
    client.handle_input(&fin(3));
    assert_eq!(events(&mut client), [MuxEvent::StreamClosed { id }]);
    assert_eq!(all_output(&mut client), fin(3));
    assert_eq!(client.write(id, b"late"), Err(WriteError::UnknownStream));
    client.handle_input(&fin(3));
    client.handle_input(&psh(3, b"late"));
    assert!(
        events(&mut client).is_empty(),
        "a second FIN and late data are ignored"
    );
}

#[test]
fn closing_sends_fin_after_data_already_written() {
    let mut client = MuxClient::new(config(), Instant::now());
    let id = client.open_stream().unwrap();
    all_output(&mut client);
    client.write(id, b"bye").unwrap();
    client.close(id);
    client.close(id);
    let mut expected = psh(3, b"bye");
    expected.extend(fin(3));
    assert_eq!(all_output(&mut client), expected);
    client.handle_input(&psh(3, b"after close"));
    assert!(events(&mut client).is_empty());
}

#[test]
fn a_stream_opened_by_the_agent_is_refused_with_a_fin() {
    let mut client = MuxClient::new(config(), Instant::now());
    client.handle_input(&[1, 0, 0, 0, 2, 0, 0, 0]);
    assert!(events(&mut client).is_empty());
    assert_eq!(all_output(&mut client), fin(2));
}

#[test]
fn an_unknown_command_or_version_ends_the_session() {
    let mut client = MuxClient::new(config(), Instant::now());
    let id = client.open_stream().unwrap();
    client.handle_input(&[1, 4, 0, 0, 0, 0, 0, 0]);
    assert_eq!(
        events(&mut client),
        [MuxEvent::Closed(MuxCloseReason::Protocol(
            FrameError::Command(4)
        ))]
    );
    assert!(client.is_closed());
    assert_eq!(client.write(id, b"x"), Err(WriteError::Closed));
    assert_eq!(client.open_stream(), Err(OpenError::Closed));
    assert_eq!(client.handle_input(b"anything"), 8);
    assert_eq!(client.poll_output(100), None);

    let mut other = MuxClient::new(config(), Instant::now());
    other.handle_input(&[2, 2, 0, 0, 3, 0, 0, 0]);
    assert_eq!(
        events(&mut other),
        [MuxEvent::Closed(MuxCloseReason::Protocol(
            FrameError::Version(2)
        ))]
    );
}

#[test]
fn a_full_receive_buffer_stops_taking_input_until_events_are_taken() {
    let mut client = MuxClient::new(
        MuxConfig {
            max_receive_buffer: 4,
            ..config()
        },
        Instant::now(),
    );
    client.open_stream().unwrap();
    let input: Vec<u8> = (0..20_000).flat_map(|_| psh(3, b"abcd")).collect();
    let mut offset = 0;
    loop {
        match client.handle_input(&input[offset..]) {
            0 => break,
            taken => offset += taken,
        }
    }
    // One 12-byte frame was parsed into an event; the rest waits, at most one maximal frame.
    assert_eq!(offset, 12 + 8 + 65535);
    let mut received = Vec::new();
    loop {
        match client.poll_event() {
            Some(MuxEvent::StreamData { data, .. }) => received.extend_from_slice(&data),
            Some(other) => panic!("unexpected {other:?}"),
            None if offset < input.len() => offset += client.handle_input(&input[offset..]),
            None => break,
        }
    }
    assert_eq!(received.len(), 80_000);
    assert!(received.chunks(4).all(|chunk| chunk == b"abcd"));
}

#[test]
fn keepalive_sends_a_nop_every_interval() {
    let start = Instant::now();
    let mut client = MuxClient::new(MuxConfig::for_agent(true), start);
    assert_eq!(client.poll_timeout(), Some(start + Duration::from_secs(10)));
    client.handle_timeout(start + Duration::from_secs(10));
    assert_eq!(all_output(&mut client), [1, 3, 0, 0, 0, 0, 0, 0]);
    assert_eq!(client.poll_timeout(), Some(start + Duration::from_secs(20)));
}

#[test]
fn keepalive_closes_the_session_after_a_timeout_without_frames() {
    let start = Instant::now();
    let mut client = MuxClient::new(MuxConfig::for_agent(true), start);
    for second in [10, 20] {
        client.handle_timeout(start + Duration::from_secs(second));
    }
    client.handle_input(&[1, 3, 0, 0, 0, 0, 0, 0]);
    client.handle_timeout(start + Duration::from_secs(30));
    assert!(
        !client.is_closed(),
        "a NOP from the agent counts as a frame"
    );
    client.handle_timeout(start + Duration::from_secs(60));
    assert_eq!(
        events(&mut client),
        [MuxEvent::Closed(MuxCloseReason::KeepaliveTimeout)]
    );
    assert_eq!(client.poll_timeout(), None);
}

#[test]
fn keepalive_does_not_time_out_while_our_own_receive_buffer_is_full() {
    let start = Instant::now();
    let mut client = MuxClient::new(
        MuxConfig {
            max_receive_buffer: 2,
            ..MuxConfig::for_agent(true)
        },
        start,
    );
    client.open_stream().unwrap();
    client.handle_input(&psh(3, b"full"));
    client.handle_timeout(start + Duration::from_secs(30));
    client.handle_timeout(start + Duration::from_secs(60));
    assert!(!client.is_closed());
}

#[test]
fn without_keepalive_there_are_no_timers_and_no_nops() {
    let start = Instant::now();
    let mut client = MuxClient::new(config(), start);
    assert_eq!(client.poll_timeout(), None);
    client.handle_timeout(start + Duration::from_secs(3600));
    assert!(!client.is_closed());
    assert_eq!(client.poll_output(100), None);
}

#[test]
fn the_default_keepalive_matches_smux() {
    assert_eq!(
        Keepalive::default(),
        Keepalive {
            interval: Duration::from_secs(10),
            timeout: Duration::from_secs(30)
        }
    );
    assert_eq!(MuxConfig::for_agent(false).keepalive, None);
    assert_eq!(MuxConfig::for_agent(true).max_frame_size.get(), 32768);
}

#[test]
fn the_test_server_sees_what_the_client_meant() {
    let mut client = MuxClient::new(config(), Instant::now());
    let mut server = TestServer::default();
    let a = client.open_stream().unwrap();
    let b = client.open_stream().unwrap();
    client.write(a, b"to a").unwrap();
    client.write(b, b"to b").unwrap();
    client.close(a);
    server.handle_input(&all_output(&mut client));
    assert_eq!(server.streams[&3].received, b"to a");
    assert!(server.streams[&3].fin_received);
    assert_eq!(server.streams[&5].received, b"to b");
    server.write(5, b"from b");
    client.handle_input(&server.take_output(usize::MAX));
    assert_eq!(events(&mut client), [data(b, b"from b")]);
    assert!(server.violations.is_empty(), "{:?}", server.violations);
}

mod robustness {
    use super::*;
    use proptest::prelude::*;

    fn input() -> impl Strategy<Value = Vec<u8>> {
        let frame = (
            0u8..5,
            0u32..9,
            proptest::collection::vec(any::<u8>(), 0..20),
        )
            .prop_map(|(command, id, data)| {
                let mut frame = vec![1, command];
                frame.extend_from_slice(&(data.len() as u16).to_le_bytes());
                frame.extend_from_slice(&id.to_le_bytes());
                frame.extend(data);
                frame
            });
        prop_oneof![
            4 => frame,
            1 => proptest::collection::vec(any::<u8>(), 0..16),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn arbitrary_agent_bytes_never_panic_and_our_output_stays_valid_smux(
            pieces in proptest::collection::vec((input(), any::<bool>()), 0..40),
        ) {
            let start = Instant::now();
            let mut client = MuxClient::new(
                MuxConfig { max_receive_buffer: 16, ..MuxConfig::for_agent(true) },
                start,
            );
            let ids = [client.open_stream().unwrap(), client.open_stream().unwrap()];
            let mut server = TestServer::default();
            for (step, (bytes, take_events)) in pieces.into_iter().enumerate() {
                client.handle_input(&bytes);
                if take_events {
                    events(&mut client);
                }
                for id in ids {
                    let _ = client.write(id, b"data");
                }
                if step % 7 == 3 {
                    client.close(ids[step % 2]);
                }
                client.handle_timeout(start + Duration::from_secs(10 * step as u64));
                server.handle_input(&all_output(&mut client));
            }
            let malformed: Vec<_> = server.violations.iter().filter(|v| !v.contains("closed or unknown")).collect();
            prop_assert!(malformed.is_empty(), "{:?}", malformed);
        }
    }
}
