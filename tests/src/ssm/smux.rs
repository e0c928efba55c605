//! xtaci/smux **protocol v1** frames, as the agent's smux server reads and writes them over the
//! data channel's byte stream in mux port forwarding (spec §7.3).
//!
//! A frame is an 8-byte little-endian header — version (1), command, data length (u16),
//! stream id (u32) — and, for PSH, the data. Frame boundaries have nothing to do with message
//! boundaries: [`FrameReader`] takes the byte stream in whatever pieces it arrives. A wrong
//! version or an unknown command (UPD, 4, is v2 only) is a protocol error that ends the smux
//! session, as in smux.

/// smux protocol version 1.
const VERSION: u8 = 1;
const HEADER_LEN: usize = 8;

/// smux `DefaultConfig().MaxFrameSize`: the largest PSH payload smux writes.
pub const MAX_FRAME_SIZE: usize = 32768;

/// An smux command (§7.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Open a stream.
    Syn,
    /// Close a stream (a full close: v1 has no half-close).
    Fin,
    /// Stream data.
    Psh,
    /// Keepalive.
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
}

/// One frame read from the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub command: Command,
    pub stream_id: u32,
    pub data: Vec<u8>,
}

/// Why the smux session died.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SmuxError {
    #[error("smux frame with protocol version {0}; only version 1 is spoken here")]
    Version(u8),
    #[error("smux frame with unknown command {0}")]
    Command(u8),
}

/// Reassembles frames from the byte stream.
#[derive(Debug, Default)]
pub struct FrameReader {
    buffer: Vec<u8>,
}

impl FrameReader {
    /// Adds bytes from the data channel.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buffer.extend_from_slice(bytes);
    }

    /// The next complete frame, if one has arrived.
    pub fn next_frame(&mut self) -> Result<Option<Frame>, SmuxError> {
        let Some(header) = self.buffer.first_chunk::<HEADER_LEN>() else {
            return Ok(None);
        };
        if header[0] != VERSION {
            return Err(SmuxError::Version(header[0]));
        }
        let command = match header[1] {
            0 => Command::Syn,
            1 => Command::Fin,
            2 => Command::Psh,
            3 => Command::Nop,
            other => return Err(SmuxError::Command(other)),
        };
        let length = usize::from(u16::from_le_bytes([header[2], header[3]]));
        let stream_id = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if self.buffer.len() < HEADER_LEN + length {
            return Ok(None);
        }
        let data = self.buffer[HEADER_LEN..HEADER_LEN + length].to_vec();
        self.buffer.drain(..HEADER_LEN + length);
        Ok(Some(Frame {
            command,
            stream_id,
            data,
        }))
    }
}

/// Appends one frame to `out`. PSH data longer than [`MAX_FRAME_SIZE`] is split over several
/// frames, as smux's `Stream.Write` does.
pub fn write_frame(out: &mut Vec<u8>, command: Command, stream_id: u32, data: &[u8]) {
    if data.is_empty() {
        write_header(out, command, stream_id, 0);
        return;
    }
    for chunk in data.chunks(MAX_FRAME_SIZE) {
        write_header(out, command, stream_id, chunk.len());
        out.extend_from_slice(chunk);
    }
}

fn write_header(out: &mut Vec<u8>, command: Command, stream_id: u32, length: usize) {
    out.push(VERSION);
    out.push(command.code());
    out.extend_from_slice(&u16::try_from(length).unwrap_or(u16::MAX).to_le_bytes());
    out.extend_from_slice(&stream_id.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_split_anywhere_are_reassembled() {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, Command::Syn, 3, &[]);
        write_frame(&mut bytes, Command::Psh, 3, b"hello");
        write_frame(&mut bytes, Command::Fin, 3, &[]);
        write_frame(&mut bytes, Command::Nop, 0, &[]);
        assert_eq!(&bytes[..8], &[1, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(&bytes[8..16], &[1, 2, 5, 0, 3, 0, 0, 0]);
        let mut reader = FrameReader::default();
        let mut frames = Vec::new();
        for byte in &bytes {
            reader.push(std::slice::from_ref(byte));
            while let Some(frame) = reader.next_frame().expect("valid") {
                frames.push(frame);
            }
        }
        let commands: Vec<_> = frames.iter().map(|f| (f.command, f.stream_id)).collect();
        assert_eq!(
            commands,
            [
                (Command::Syn, 3),
                (Command::Psh, 3),
                (Command::Fin, 3),
                (Command::Nop, 0)
            ]
        );
        assert_eq!(frames[1].data, b"hello");
    }

    #[test]
    fn long_data_is_split_into_max_size_frames() {
        let mut bytes = Vec::new();
        write_frame(&mut bytes, Command::Psh, 5, &vec![7; MAX_FRAME_SIZE + 10]);
        let mut reader = FrameReader::default();
        reader.push(&bytes);
        let first = reader.next_frame().expect("valid").expect("a frame");
        let second = reader.next_frame().expect("valid").expect("a frame");
        assert_eq!((first.data.len(), second.data.len()), (MAX_FRAME_SIZE, 10));
        assert_eq!(reader.next_frame(), Ok(None));
    }

    #[test]
    fn a_wrong_version_or_command_is_a_protocol_error() {
        let mut reader = FrameReader::default();
        reader.push(&[2, 0, 0, 0, 3, 0, 0, 0]);
        assert_eq!(reader.next_frame(), Err(SmuxError::Version(2)));
        let mut reader = FrameReader::default();
        reader.push(&[1, 4, 0, 0, 3, 0, 0, 0]);
        assert_eq!(reader.next_frame(), Err(SmuxError::Command(4)));
    }
}
