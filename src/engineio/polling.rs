//! The HTTP long-polling transport: the handshake GET that opens a session, the long GET that
//! carries the outbox to the client, and the POST that carries the client's packets in.
//!
//! Must not: keep state of its own between requests (everything a later request needs is on
//! the `Session`, so any request may land on any connection), or leave a GET waiting past the
//! session's close or upgrade.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header;
use hyper::{Request, Response, StatusCode};

use super::packet::{self, Packet};
use super::session;
use super::{
    Body, CloseReason, Engine, Handler, Handshake, Outgoing, Transport, status, text_response,
};

/// How long a GET that meets an upgrade in progress waits for the client's `5` before it
/// answers `6` (the reference server checks every 100 ms).
const UPGRADE_SETTLE: Duration = Duration::from_millis(100);

impl<H: Handler> Engine<H> {
    pub(super) async fn handshake(
        self: &Arc<Self>,
        request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let session = self.register(Transport::Polling);
        let open = self.open_packet(&session.sid, &["websocket"]);
        self.handler
            .on_open(
                &session,
                Handshake {
                    headers: request.headers().clone(),
                    peer,
                },
            )
            .await;
        text_response(open, "text/plain; charset=UTF-8")
    }

    pub(super) async fn poll(self: &Arc<Self>, sid: &str) -> Response<Body> {
        let Some(session) = self.lookup(sid).or_else(|| self.final_poll(sid)) else {
            return status(StatusCode::BAD_REQUEST, "session id unknown");
        };
        if session.transport() == Transport::WebSocket {
            // Refused, but the upgraded session carries on.
            return status(StatusCode::BAD_REQUEST, "session was upgraded to websocket");
        }
        if !session.begin_poll() {
            // The waiting GET answers `1`; this one is refused.
            self.close(&session, CloseReason::DuplicatePoll);
            return status(StatusCode::BAD_REQUEST, "overlapping polling requests");
        }
        let mut answer = session.wait_poll().await;
        if matches!(answer, session::PollAnswer::Noop)
            && session.wait_upgraded(UPGRADE_SETTLE).await
        {
            // The client finished the upgrade while this GET was in flight: polling is over.
            session.end_poll();
            return status(StatusCode::BAD_REQUEST, "session was upgraded to websocket");
        }
        if matches!(answer, session::PollAnswer::Noop) && session.close_reason().is_some() {
            answer = session::PollAnswer::Closed(CloseReason::TransportClose, Vec::new());
        }
        session.end_poll();
        let texts = |packets: Vec<Outgoing>| -> Vec<String> {
            packets
                .iter()
                .map(|p| match p {
                    Outgoing::Text(bytes) => String::from_utf8_lossy(bytes).into_owned(),
                    Outgoing::Binary(bytes) => Packet::Binary(bytes.clone()).encode(),
                })
                .collect()
        };
        let body = match answer {
            session::PollAnswer::Packets(packets) => {
                packet::encode_payload(texts(packets).iter().map(String::as_str))
            }
            session::PollAnswer::Noop => Packet::Noop.encode(),
            session::PollAnswer::Closed(_, queued) if !queued.is_empty() => {
                // What was queued before the close goes out on its own, and the close on the
                // next GET (`final_poll`): a client that read both from one payload would see
                // the transport close before the packets it decodes later (socket.io-client
                // defers them a tick), so "io server disconnect" would become a reconnect.
                packet::encode_payload(texts(queued).iter().map(String::as_str))
            }
            session::PollAnswer::Closed(reason, _) => {
                self.forget(&session);
                if reason == CloseReason::ClientClose {
                    Packet::Noop.encode()
                } else {
                    Packet::Close.encode()
                }
            }
        };
        text_response(body, "text/plain; charset=UTF-8")
    }

    pub(super) async fn post(
        self: &Arc<Self>,
        request: Request<Incoming>,
        sid: &str,
    ) -> Response<Body> {
        let Some(session) = self.lookup(sid) else {
            return status(StatusCode::BAD_REQUEST, "session id unknown");
        };
        let limit = self.config.max_payload;
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            self.close(&session, CloseReason::ProtocolError);
            return status(StatusCode::PAYLOAD_TOO_LARGE, "payload too large");
        }
        let body = match http_body_util::Limited::new(request.into_body(), limit)
            .collect()
            .await
        {
            Ok(collected) => collected.to_bytes(),
            Err(_) => {
                self.close(&session, CloseReason::ProtocolError);
                return status(StatusCode::PAYLOAD_TOO_LARGE, "payload too large");
            }
        };
        let packets = match std::str::from_utf8(&body)
            .ok()
            .and_then(|text| packet::decode_payload(text).ok())
        {
            Some(packets) => packets,
            None => {
                tracing::debug!(sid, "malformed polling payload");
                self.close(&session, CloseReason::ProtocolError);
                return status(StatusCode::BAD_REQUEST, "bad request");
            }
        };
        for packet in packets {
            if !self.dispatch(&session, packet).await {
                return status(StatusCode::BAD_REQUEST, "bad request");
            }
        }
        text_response("ok".into(), "text/html; charset=UTF-8")
    }
}
