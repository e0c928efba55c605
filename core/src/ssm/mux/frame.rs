//! smux protocol v1 framing (spec §7.3), as xtaci/smux 1.5.x reads and writes it.
//!
//! An 8-byte header — version, command, little-endian payload length (u16) and stream id
//! (u32) — followed by the payload for PSH only. Like smux, the length of a SYN, FIN or NOP is
//! ignored rather than skipped: only PSH consumes a body. An unknown command or version is a
//! protocol error that ends the session (smux has no way to resynchronise). UPD (4) is a v2
//! command and is therefore unknown here.

use bytes::{Buf, BufMut, Bytes, BytesMut};

pub(crate) const HEADER_LEN: usize = 8;
pub(crate) const VERSION: u8 = 1;

/// The v1 commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// Opens a stream.
    Syn,
    /// Closes a stream (entirely: v1 has no half-close).
    Fin,
    /// Carries stream data.
    Psh,
    /// Keepalive; carries nothing.
    Nop,
}

impl Command {
    fn code(self) -> u8 {
        match self {
            Command::Syn => 0,
            Command::Fin => 1,
            Command::Psh => 2,
            Command::Nop => 3,
        }
    }

    fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Command::Syn,
            1 => Command::Fin,
            2 => Command::Psh,
            3 => Command::Nop,
            _ => return None,
        })
    }
}

/// One decoded frame. `data` is empty except for PSH.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) command: Command,
    pub(crate) stream_id: u32,
    pub(crate) data: Bytes,
}

/// Why the byte stream cannot be parsed any further.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("smux frame has version {0}, expected 1")]
    Version(u8),
    #[error("smux frame has unknown command {0}")]
    Command(u8),
}

/// Appends one frame. `data` must fit the u16 length field; callers cut it to the frame size.
pub(crate) fn encode(out: &mut BytesMut, command: Command, stream_id: u32, data: &[u8]) {
    debug_assert!(data.len() <= usize::from(u16::MAX));
    out.reserve(HEADER_LEN + data.len());
    out.put_u8(VERSION);
    out.put_u8(command.code());
    out.put_u16_le(data.len() as u16);
    out.put_u32_le(stream_id);
    out.put_slice(data);
}

/// Takes one complete frame off the front of `buffer`, or returns `None` (consuming nothing)
/// if more bytes are needed. A header error consumes nothing either: the stream is dead.
pub(crate) fn decode(buffer: &mut BytesMut) -> Result<Option<Frame>, FrameError> {
    let Some(header) = buffer.get(..HEADER_LEN) else {
        return Ok(None);
    };
    if header[0] != VERSION {
        return Err(FrameError::Version(header[0]));
    }
    let command = Command::from_code(header[1]).ok_or(FrameError::Command(header[1]))?;
    let length = usize::from(u16::from_le_bytes([header[2], header[3]]));
    let stream_id = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let body = if command == Command::Psh { length } else { 0 };
    if buffer.len() < HEADER_LEN + body {
        return Ok(None);
    }
    buffer.advance(HEADER_LEN);
    let data = buffer.split_to(body).freeze();
    Ok(Some(Frame {
        command,
        stream_id,
        data,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_psh_frame_is_version_command_then_little_endian_length_and_stream_id() {
        let mut out = BytesMut::new();
        encode(&mut out, Command::Psh, 3, b"hi");
        assert_eq!(&out[..], &[1, 2, 2, 0, 3, 0, 0, 0, b'h', b'i']);
        encode(&mut out, Command::Nop, 0, b"");
        assert_eq!(&out[10..], &[1, 3, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn frames_decode_only_once_complete() {
        let mut buffer = BytesMut::from(&[1, 2, 3, 0, 5, 0, 0, 0, b'a', b'b'][..]);
        assert_eq!(decode(&mut buffer), Ok(None));
        assert_eq!(buffer.len(), 10);
        buffer.put_u8(b'c');
        assert_eq!(
            decode(&mut buffer),
            Ok(Some(Frame {
                command: Command::Psh,
                stream_id: 5,
                data: Bytes::from_static(b"abc")
            }))
        );
        assert!(buffer.is_empty());
    }

    #[test]
    fn the_length_of_non_data_frames_is_ignored_as_smux_does() {
        let mut buffer = BytesMut::from(&[1, 1, 9, 0, 7, 0, 0, 0, 1, 3, 0, 0, 0, 0, 0, 0][..]);
        assert_eq!(decode(&mut buffer).unwrap().unwrap().command, Command::Fin);
        assert_eq!(decode(&mut buffer).unwrap().unwrap().command, Command::Nop);
    }

    #[test]
    fn a_wrong_version_or_unknown_command_is_an_error() {
        assert_eq!(
            decode(&mut BytesMut::from(&[2, 0, 0, 0, 0, 0, 0, 0][..])),
            Err(FrameError::Version(2))
        );
        assert_eq!(
            decode(&mut BytesMut::from(&[1, 4, 0, 0, 0, 0, 0, 0][..])),
            Err(FrameError::Command(4))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut buffer = BytesMut::from(&bytes[..]);
            while let Ok(Some(_)) = decode(&mut buffer) {}
        }
    }
}
