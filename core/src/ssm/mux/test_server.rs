//! A small smux v1 server for tests, playing the agent's part (spec §7.3): it accepts any new
//! stream on SYN, collects PSH data per stream, answers a FIN with its own (as the agent's
//! `handleDataTransfer` does when its destination socket closes), and records anything a
//! correct client would not send.

use std::collections::BTreeMap;

use bytes::{Bytes, BytesMut};

use super::frame::{self, Command};

#[derive(Debug, Default)]
pub(crate) struct ServerStream {
    pub(crate) received: Vec<u8>,
    pub(crate) fin_received: bool,
    fin_sent: bool,
}

#[derive(Debug, Default)]
pub(crate) struct TestServer {
    inbound: BytesMut,
    output: BytesMut,
    pub(crate) streams: BTreeMap<u32, ServerStream>,
    pub(crate) nops: usize,
    pub(crate) violations: Vec<String>,
}

impl TestServer {
    pub(crate) fn handle_input(&mut self, data: &[u8]) {
        self.inbound.extend_from_slice(data);
        loop {
            let frame = match frame::decode(&mut self.inbound) {
                Ok(Some(frame)) => frame,
                Ok(None) => return,
                Err(error) => return self.violations.push(error.to_string()),
            };
            let id = frame.stream_id;
            match frame.command {
                Command::Syn => {
                    if id % 2 == 0 || id < 3 || self.streams.contains_key(&id) {
                        self.violations.push(format!("bad SYN for {id}"));
                    }
                    self.streams.entry(id).or_default();
                }
                Command::Psh => match self.streams.get_mut(&id) {
                    Some(stream) if !stream.fin_received => {
                        stream.received.extend_from_slice(&frame.data)
                    }
                    _ => self
                        .violations
                        .push(format!("PSH for closed or unknown {id}")),
                },
                Command::Fin => match self.streams.get_mut(&id) {
                    Some(stream) if !stream.fin_received => {
                        stream.fin_received = true;
                        if !stream.fin_sent {
                            stream.fin_sent = true;
                            frame::encode(&mut self.output, Command::Fin, id, &[]);
                        }
                    }
                    _ => self
                        .violations
                        .push(format!("FIN for closed or unknown {id}")),
                },
                Command::Nop => self.nops += 1,
            }
        }
    }

    /// Sends stream data in frames of at most 32 KiB, as smux does.
    pub(crate) fn write(&mut self, id: u32, data: &[u8]) {
        for chunk in data.chunks(32768) {
            frame::encode(&mut self.output, Command::Psh, id, chunk);
        }
    }

    /// Closes a stream from the server side (its destination connection ended).
    pub(crate) fn close(&mut self, id: u32) {
        let stream = self.streams.entry(id).or_default();
        if !stream.fin_sent {
            stream.fin_sent = true;
            frame::encode(&mut self.output, Command::Fin, id, &[]);
        }
    }

    pub(crate) fn take_output(&mut self, max: usize) -> Bytes {
        let take = max.min(self.output.len());
        self.output.split_to(take).freeze()
    }

    pub(crate) fn has_output(&self) -> bool {
        !self.output.is_empty()
    }
}
