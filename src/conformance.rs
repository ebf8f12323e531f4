//! The reference behaviour the official Engine.IO and Socket.IO protocol test suites expect
//! of a server (`test-suite/` in socketio/engine.io-protocol and socketio/socket.io-protocol),
//! on parley's own Engine.IO implementation: `parley protocol-conformance` serves it on
//! 127.0.0.1:3000, where the suites look.
//!
//! `/engine.io/` echoes every message. `/socket.io/` has namespaces `/` and `/custom`, emits
//! `auth` with the handshake data on connect, answers `message` with `message-back` and acks
//! `message-with-ack`, binary attachments included. Nothing here is used by the chat server.

use std::collections::HashSet;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::engineio::{
    self, CloseReason, Engine, EngineConfig, Handshake, Message, Outgoing, Session,
};
use crate::socketio::{self, Packet, PacketKind};

fn suite_config() -> EngineConfig {
    EngineConfig {
        ping_interval: Duration::from_millis(300),
        ping_timeout: Duration::from_millis(200),
        max_payload: 1_000_000,
        // The suites' clients lose a frame that arrives in the same read as the one before.
        coalesce_writes: false,
        ..EngineConfig::default()
    }
}

/// Echoes every message back as it came.
pub struct Echo;

impl engineio::Handler for Echo {
    type State = ();

    async fn on_open(&self, _: &Arc<Session<()>>, _: Handshake) {}

    async fn on_message(&self, session: &Arc<Session<()>>, message: Message) {
        let _ = session.push(match message {
            Message::Text(text) => Outgoing::Text(Bytes::from(format!("4{text}"))),
            Message::Binary(bytes) => Outgoing::Binary(bytes),
        });
    }

    async fn on_close(&self, _: &Arc<Session<()>>, _: CloseReason) {}
}

#[derive(Default)]
pub struct SuiteState {
    namespaces: HashSet<String>,
    /// A binary event or ack waiting for its attachments.
    pending: Option<(Packet, Vec<Bytes>)>,
}

/// The Socket.IO suite's reference application.
pub struct SocketSuite {
    engine: std::sync::OnceLock<std::sync::Weak<Engine<SocketSuite>>>,
}

fn send(session: &Session<SuiteState>, packet: &Packet, attachments: &[Bytes]) {
    let _ = session.push(Outgoing::Text(Bytes::from(format!(
        "4{}",
        socketio::encode(packet)
    ))));
    for attachment in attachments {
        let _ = session.push(Outgoing::Binary(attachment.clone()));
    }
}

impl SocketSuite {
    fn close(&self, session: &Arc<Session<SuiteState>>) {
        if let Some(engine) = self.engine.get().and_then(std::sync::Weak::upgrade) {
            engine.close(session, CloseReason::ProtocolError);
        }
    }

    fn handle(
        &self,
        session: &Session<SuiteState>,
        state: &mut SuiteState,
        packet: Packet,
        attachments: Vec<Bytes>,
    ) {
        let binary = !attachments.is_empty();
        match packet.kind {
            PacketKind::Connect => {
                if packet.namespace != "/" && packet.namespace != "/custom" {
                    let refusal = Packet {
                        kind: PacketKind::ConnectError,
                        namespace: packet.namespace,
                        ack_id: None,
                        data: Some(json!({"message": "Invalid namespace"})),
                        attachments: 0,
                    };
                    return send(session, &refusal, &[]);
                }
                state.namespaces.insert(packet.namespace.clone());
                let sid = session.sid.clone() + &packet.namespace;
                let connect = Packet {
                    kind: PacketKind::Connect,
                    namespace: packet.namespace.clone(),
                    ack_id: None,
                    data: Some(json!({"sid": sid})),
                    attachments: 0,
                };
                send(session, &connect, &[]);
                let auth = Packet {
                    kind: PacketKind::Event,
                    namespace: packet.namespace,
                    ack_id: None,
                    data: Some(json!(["auth", packet.data.unwrap_or_else(|| json!({}))])),
                    attachments: 0,
                };
                send(session, &auth, &[]);
            }
            PacketKind::Disconnect => {
                state.namespaces.remove(&packet.namespace);
            }
            PacketKind::Event | PacketKind::BinaryEvent if packet.namespace == "/" => {
                let Some(Value::Array(items)) = packet.data else {
                    return;
                };
                let mut items = items.into_iter();
                let name = items.next();
                let args: Vec<Value> = items.collect();
                match (name.as_ref().and_then(Value::as_str), packet.ack_id) {
                    (Some("message"), _) => {
                        let mut data = vec![json!("message-back")];
                        data.extend(args);
                        let reply = Packet {
                            kind: if binary {
                                PacketKind::BinaryEvent
                            } else {
                                PacketKind::Event
                            },
                            namespace: "/".into(),
                            ack_id: None,
                            data: Some(Value::Array(data)),
                            attachments: attachments.len() as u32,
                        };
                        send(session, &reply, &attachments);
                    }
                    (Some("message-with-ack"), Some(id)) => {
                        let reply = Packet {
                            kind: if binary {
                                PacketKind::BinaryAck
                            } else {
                                PacketKind::Ack
                            },
                            namespace: "/".into(),
                            ack_id: Some(id),
                            data: Some(Value::Array(args)),
                            attachments: attachments.len() as u32,
                        };
                        send(session, &reply, &attachments);
                    }
                    _ => {}
                }
            }
            _ => {}
        }
    }
}

impl engineio::Handler for SocketSuite {
    type State = SuiteState;

    async fn on_open(&self, _: &Arc<Session<SuiteState>>, _: Handshake) {}

    async fn on_message(&self, session: &Arc<Session<SuiteState>>, message: Message) {
        let mut state = session.state.lock().await;
        match message {
            Message::Binary(bytes) => {
                let Some((packet, mut collected)) = state.pending.take() else {
                    return self.close(session);
                };
                collected.push(bytes);
                if collected.len() < packet.attachments as usize {
                    state.pending = Some((packet, collected));
                } else {
                    self.handle(session, &mut state, packet, collected);
                }
            }
            Message::Text(text) => match socketio::decode(&text) {
                Ok(packet) if packet.attachments > 0 => state.pending = Some((packet, Vec::new())),
                Ok(packet) => self.handle(session, &mut state, packet, Vec::new()),
                Err(_) => self.close(session),
            },
        }
    }

    async fn on_close(&self, _: &Arc<Session<SuiteState>>, _: CloseReason) {}
}

/// Serves `/engine.io/` (echo) and `/socket.io/` (the Socket.IO suite's application) until
/// the process is stopped.
pub async fn serve(listen: SocketAddr) -> std::io::Result<()> {
    let echo = Engine::new(suite_config(), Echo);
    let suite = Engine::new(
        suite_config(),
        SocketSuite {
            engine: std::sync::OnceLock::new(),
        },
    );
    let _ = suite.handler.engine.set(Arc::downgrade(&suite));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    tracing::info!(addr = %listener.local_addr()?, "protocol conformance server listening on {listen}");
    loop {
        let (stream, peer) = listener.accept().await?;
        let (echo, suite) = (Arc::clone(&echo), Arc::clone(&suite));
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let (echo, suite) = (Arc::clone(&echo), Arc::clone(&suite));
                async move {
                    let mut response = if request.uri().path().starts_with("/engine.io") {
                        echo.handle(request, peer).await
                    } else {
                        suite.handle(request, peer).await
                    };
                    // The suites can also run in a browser from another origin.
                    response.headers_mut().insert(
                        hyper::header::ACCESS_CONTROL_ALLOW_ORIGIN,
                        hyper::header::HeaderValue::from_static("*"),
                    );
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}
