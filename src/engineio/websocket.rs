//! The WebSocket transport: the upgrade (a fresh session, or a probe for a polling one), then
//! per socket a reader task and a writer task.
//!
//! fastwebsockets does the HTTP upgrade handshake; frames are ours (`frame.rs`): the reader
//! task parses client frames from a small buffer that grows only while a large message
//! arrives (fastwebsockets' reader holds 8 KiB per connection for good), forwards the pongs it
//! owes to the writer task, and has `frame::Reassembler` collect fragments with a total-size
//! cap. Server frames are unmasked, so the writer encodes them itself and writes everything
//! queued in one buffer with one write.
//!
//! Must not: write to the socket anywhere but in the writer task (the reader asks it through
//! `Control`, so frames never interleave), or parse frames and join fragments itself
//! (`frame.rs` does that, purely, where it can be tested and fuzzed).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Bytes, BytesMut};
use fastwebsockets::OpCode;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::packet::Packet;
use super::{
    Body, CloseReason, Engine, Handler, Handshake, Outgoing, Session, Transport, frame, status,
};

impl<H: Handler> Engine<H> {
    pub(super) async fn websocket(
        self: &Arc<Self>,
        mut request: Request<Incoming>,
        peer: SocketAddr,
        sid: Option<String>,
    ) -> Response<Body> {
        if !fastwebsockets::upgrade::is_upgrade_request(&request) {
            return status(StatusCode::BAD_REQUEST, "expected a websocket upgrade");
        }
        let existing = match &sid {
            Some(sid) => match self.lookup(sid) {
                Some(session) if session.attach_websocket() => Some(session),
                // A second socket for a session that has one: accept it and close it at once,
                // as the reference server does (a 400 here surfaces as an error in clients).
                Some(_) => return reject_websocket(request),
                None => return status(StatusCode::BAD_REQUEST, "session id unknown"),
            },
            None => None,
        };
        let headers = request.headers().clone();
        let (response, upgrade) = match fastwebsockets::upgrade::upgrade(&mut request) {
            Ok(pair) => pair,
            Err(e) => {
                if let Some(session) = &existing {
                    session.upgrade_abandoned();
                }
                return status(
                    StatusCode::BAD_REQUEST,
                    &format!("bad websocket request: {e}"),
                );
            }
        };
        let engine = Arc::clone(self);
        self.live_websockets.fetch_add(1, Ordering::AcqRel);
        tokio::spawn(async move {
            match upgrade.await {
                Ok(ws) => {
                    engine
                        .run_websocket(ws, existing, Handshake { headers, peer })
                        .await
                }
                Err(e) => {
                    tracing::debug!(error = %e, "websocket upgrade failed");
                    if let Some(session) = existing {
                        session.upgrade_abandoned();
                    }
                }
            }
            if engine.live_websockets.fetch_sub(1, Ordering::AcqRel) == 1 {
                engine.websockets_done.notify_waiters();
            }
        });
        response.map(|_| Full::new(Bytes::new()))
    }

    async fn run_websocket(
        self: &Arc<Self>,
        ws: fastwebsockets::WebSocket<hyper_util::rt::TokioIo<hyper::upgrade::Upgraded>>,
        existing: Option<Arc<Session<H::State>>>,
        handshake: Handshake,
    ) {
        let (read_half, mut write_half) = tokio::io::split(ws.into_inner());
        // Replies the reader owes (pong, close echo), probe answers and wake-ups.
        let (control, mut control_rx) = mpsc::channel::<Control>(16);

        let probing = existing.is_some();
        let session = match existing {
            Some(session) => session,
            None => {
                let session = self.register(Transport::WebSocket);
                let open = self.open_packet(&session.sid, &[]);
                if control
                    .send(Control::Frame(OpCode::Text, open.into_bytes()))
                    .await
                    .is_err()
                {
                    return;
                }
                self.handler.on_open(&session, handshake).await;
                session
            }
        };

        let reader_task = tokio::spawn({
            let engine = Arc::clone(self);
            let session = Arc::clone(&session);
            let control = control.clone();
            async move {
                let reason = engine
                    .read_websocket(read_half, &session, control.clone(), probing)
                    .await;
                if probing && session.transport() != Transport::WebSocket {
                    // The probe never completed: polling carries on.
                    session.upgrade_abandoned();
                } else {
                    engine.close(&session, reason);
                }
                // Either way this socket is done: have the writer close it.
                let _ = control
                    .send(Control::Frame(
                        OpCode::Close,
                        frame::close_payload(1000, reason.as_str()),
                    ))
                    .await;
            }
        });

        // The writer: control frames first, then everything queued, one write per wake-up.
        let mut buffer = Vec::new();
        let mut closing = false;
        let on_websocket =
            |session: &Session<H::State>| session.transport() == Transport::WebSocket;
        while !closing {
            tokio::select! {
                biased;
                control_message = control_rx.recv() => match control_message {
                    Some(Control::Frame(opcode, payload)) => {
                        closing = opcode == OpCode::Close;
                        if closing && on_websocket(&session) {
                            // Whatever the session queued (acks, a disconnect) goes out first.
                            encode_outbox(&mut buffer, session.drain());
                        }
                        frame::encode(&mut buffer, opcode, &payload);
                    }
                    Some(Control::Wake) => {}
                    None => closing = true,
                },
                () = session.wait_ws(), if on_websocket(&session) => {
                    for packet in session.drain() {
                        encode_outgoing(&mut buffer, &packet);
                        if !self.config.coalesce_writes {
                            if write_half.write_all(&buffer).await.is_err() {
                                break;
                            }
                            buffer.clear();
                        }
                    }
                    if let Some(reason) = session.close_reason() {
                        if !matches!(reason, CloseReason::ClientClose | CloseReason::TransportClose) {
                            // Tell the Engine.IO client it is over before the socket closes.
                            frame::encode(&mut buffer, OpCode::Text, Packet::Close.encode().as_bytes());
                        }
                        frame::encode(&mut buffer, OpCode::Close, &frame::close_payload(1000, reason.as_str()));
                        closing = true;
                    }
                },
                () = session.closed.cancelled(), if !on_websocket(&session) => {
                    // The polling session this socket was probing for has closed.
                    frame::encode(&mut buffer, OpCode::Close, &frame::close_payload(1000, "session closed"));
                    closing = true;
                },
            }
            // Pick up whatever else is already waiting, so one write carries it all.
            while let Ok(message) = control_rx.try_recv() {
                if let Control::Frame(opcode, payload) = message {
                    closing |= opcode == OpCode::Close;
                    frame::encode(&mut buffer, opcode, &payload);
                }
            }
            if !buffer.is_empty() {
                if write_half.write_all(&buffer).await.is_err() {
                    break;
                }
                buffer.clear();
                // Idle connections should not keep a burst-sized buffer.
                if buffer.capacity() > 64 * 1024 {
                    buffer = Vec::new();
                }
            }
        }
        let _ = write_half.shutdown().await;
        reader_task.abort();
        if !probing || session.transport() == Transport::WebSocket {
            self.close(&session, CloseReason::TransportClose);
        }
    }

    /// Reads frames until the socket or session ends; returns why. Pings are answered through
    /// the writer; a close ends the loop (the writer's close frame is the echo).
    async fn read_websocket<R>(
        self: &Arc<Self>,
        mut stream: R,
        session: &Arc<Session<H::State>>,
        control: mpsc::Sender<Control>,
        mut probing: bool,
    ) -> CloseReason
    where
        R: tokio::io::AsyncRead + Unpin,
    {
        let max = self.config.max_payload;
        let mut buffer = BytesMut::with_capacity(frame::INITIAL_READ_BUFFER);
        let mut reassembler = frame::Reassembler::new(max);
        loop {
            let frame = match frame::decode_client_frame(&mut buffer, max) {
                Ok(frame::Decoded::Frame(frame)) => frame,
                Ok(frame::Decoded::NeedMore(total)) => {
                    if buffer.is_empty() && buffer.capacity() > frame::KEEP_READ_BUFFER {
                        // A large message has passed: an idle connection keeps a small buffer.
                        buffer = BytesMut::with_capacity(frame::INITIAL_READ_BUFFER);
                    }
                    buffer.reserve(total.saturating_sub(buffer.len()).max(64));
                    match stream.read_buf(&mut buffer).await {
                        Ok(0) | Err(_) => return CloseReason::TransportClose,
                        Ok(_) => continue,
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "websocket frame refused");
                    return CloseReason::ProtocolError;
                }
            };
            let message = match frame.opcode {
                OpCode::Close => return CloseReason::TransportClose,
                OpCode::Ping => {
                    let pong = Control::Frame(OpCode::Pong, frame.payload);
                    if control.send(pong).await.is_err() {
                        return CloseReason::TransportClose;
                    }
                    continue;
                }
                OpCode::Pong => continue,
                OpCode::Text | OpCode::Binary | OpCode::Continuation => {
                    match reassembler.push(frame) {
                        Ok(Some(message)) => message,
                        Ok(None) => continue,
                        Err(e) => {
                            tracing::debug!(error = %e, "websocket message refused");
                            return CloseReason::ProtocolError;
                        }
                    }
                }
            };
            let packet = match message {
                frame::Assembled::Binary(payload) => Packet::Binary(Bytes::from(payload)),
                frame::Assembled::Text(payload) => match String::from_utf8(payload)
                    .ok()
                    .and_then(|t| Packet::decode(&t).ok())
                {
                    Some(packet) => packet,
                    None => return CloseReason::ProtocolError,
                },
            };
            if probing {
                match packet {
                    Packet::Ping(data) if data == "probe" => {
                        session.probe_answered();
                        let answer = Control::Frame(OpCode::Text, b"3probe".to_vec());
                        if control.send(answer).await.is_err() {
                            return CloseReason::TransportClose;
                        }
                    }
                    Packet::Upgrade if session.transport() == Transport::Upgrading => {
                        session.upgraded();
                        probing = false;
                        let _ = control.send(Control::Wake).await;
                    }
                    _ => return CloseReason::ProtocolError,
                }
                continue;
            }
            if !self.dispatch(session, packet).await {
                return CloseReason::ProtocolError;
            }
            if session.close_reason().is_some() {
                return CloseReason::ClientClose;
            }
        }
    }
}

/// Appends one queued packet as a WebSocket frame.
fn encode_outgoing(buffer: &mut Vec<u8>, packet: &Outgoing) {
    match packet {
        Outgoing::Text(bytes) => frame::encode(buffer, OpCode::Text, bytes),
        Outgoing::Binary(bytes) => frame::encode(buffer, OpCode::Binary, bytes),
    }
}

fn encode_outbox(buffer: &mut Vec<u8>, packets: Vec<Outgoing>) {
    for packet in &packets {
        encode_outgoing(buffer, packet);
    }
}

/// Completes a WebSocket handshake and closes the socket straight away.
fn reject_websocket(mut request: Request<Incoming>) -> Response<Body> {
    match fastwebsockets::upgrade::upgrade(&mut request) {
        Ok((response, upgrade)) => {
            tokio::spawn(async move {
                if let Ok(ws) = upgrade.await {
                    let mut stream = ws.into_inner();
                    let mut buffer = Vec::new();
                    frame::encode(
                        &mut buffer,
                        OpCode::Close,
                        &frame::close_payload(1008, "session already has a websocket"),
                    );
                    let _ = stream.write_all(&buffer).await;
                    let _ = stream.shutdown().await;
                }
            });
            response.map(|_| Full::new(Bytes::new()))
        }
        Err(e) => status(
            StatusCode::BAD_REQUEST,
            &format!("bad websocket request: {e}"),
        ),
    }
}

/// What the reader (and setup) tell the WebSocket writer.
enum Control {
    /// A frame to send before anything queued: a pong or close the reader owes, `3probe`, the
    /// open packet.
    Frame(OpCode, Vec<u8>),
    /// The session switched to this socket: start draining its outbox.
    Wake,
}
