//! The first WebSocket frame on every (re)connection (spec §2): a *text* frame that
//! authenticates the data channel with the session token. The WebSocket upgrade itself carries
//! no credentials. Nothing answers it; the next frame is already protocol traffic.

use serde::Serialize;
use uuid::Uuid;

use super::handshake::CLIENT_VERSION;

/// The OpenDataChannel input, serialized in Go field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct OpenDataChannel {
    message_schema_version: &'static str,
    request_id: String,
    token_value: String,
    client_id: String,
    client_version: &'static str,
}

impl OpenDataChannel {
    /// `request_id` must be fresh for every connection attempt; `client_id` is generated once per
    /// client and reused on reconnects; `token_value` comes from StartSession or ResumeSession.
    pub fn new(token_value: &str, request_id: Uuid, client_id: Uuid) -> Self {
        OpenDataChannel {
            message_schema_version: "1.0",
            request_id: request_id.hyphenated().to_string(),
            token_value: token_value.to_owned(),
            client_id: client_id.hyphenated().to_string(),
            client_version: CLIENT_VERSION,
        }
    }

    /// The compact JSON to send as the text frame.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("a struct of strings always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_data_channel_is_compact_json_in_go_field_order() {
        let open = OpenDataChannel::new(
            "tok\"en",
            "3fa85f64-5717-4562-b3fc-2c963f66afa6".parse().unwrap(),
            "7c9e6679-7425-40de-944b-e07fc1f90ae7".parse().unwrap(),
        );
        assert_eq!(
            open.to_text(),
            r#"{"MessageSchemaVersion":"1.0","RequestId":"3fa85f64-5717-4562-b3fc-2c963f66afa6","TokenValue":"tok\"en","ClientId":"7c9e6679-7425-40de-944b-e07fc1f90ae7","ClientVersion":"1.2.650.0"}"#
        );
    }
}
