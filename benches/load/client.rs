//! A minimal Engine.IO v4 / Socket.IO v5 client over raw WebSocket frames, and the
//! long-polling variant, written for load: one task per connection, no JSON parsing on the hot
//! path (bench messages are recognised by their content prefix), and every read cancel-safe
//! (`read_buf` into a buffer, then frames are parsed out of it), so a connection task can
//! `select!` between the socket, its send schedule and the phase of the run.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use crate::stats::{self, SendCounters, now_ns};

/// Where the run is; every connection task watches it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Phase {
    /// Connecting, provisioning: answer pings, count nothing.
    Setup,
    /// Scheduled senders send; `start_ns` is the shared start on the harness clock.
    Run { start_ns: u64 },
    /// Stop sending (drain: keep receiving).
    Drain,
    /// Close and report.
    Stop,
}

/// How a connection sends bench messages.
pub enum SendPlan {
    None,
    /// Open loop: one message every `interval_ns` from `start + offset_ns` until `stop_after_ns`
    /// after the start. Messages sent in the first `warmup_ns` are marked warm-up (counted for
    /// loss, left out of latency).
    Schedule {
        room: u64,
        offset_ns: u64,
        interval_ns: u64,
        stop_after_ns: u64,
        warmup_ns: u64,
    },
    /// Closed loop: a driver sends commands and waits for each ack.
    Commands(mpsc::Receiver<Command>),
}

pub struct Command {
    pub room: u64,
    /// Whether this message counts for latency.
    pub measured: bool,
    pub acked: oneshot::Sender<bool>,
}

/// What one connection saw, returned when it stops.
#[derive(Default, Debug)]
pub struct ConnReport {
    /// Bench messages received (measured and warm-up).
    pub received: u64,
    pub pings: u64,
    /// Why the connection ended before `Phase::Stop`, if it did.
    pub failed: Option<String>,
}

#[derive(Clone)]
pub struct Endpoint {
    pub server: SocketAddr,
    /// The `Host` header value.
    pub host: String,
}

/// The loopback source address number `k` (127.0.0.2, 127.0.0.3, …), so that tens of
/// thousands of connections are not limited by one address's ephemeral ports.
pub fn source_addr(k: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x7f00_0002 + (k % 0x00ff_fff0))
}

pub async fn tcp_connect(source: Ipv4Addr, server: SocketAddr) -> Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    if server.ip().is_loopback() {
        socket
            .bind(SocketAddr::new(source.into(), 0))
            .with_context(|| format!("cannot bind {source}"))?;
    }
    let stream = socket
        .connect(server)
        .await
        .with_context(|| format!("cannot connect to {server} from {source}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The CONNECT packet's auth payload: parley reads `token`; the peer joins `rooms`.
pub fn connect_packet(token: &str, rooms: &[u64]) -> String {
    let auth = serde_json::json!({ "token": token, "rooms": rooms });
    format!("40{auth}")
}

fn send_packet(room: u64, ack_id: u64, ts: u64, tag: u64, seq: u64, measured: bool) -> String {
    let mark = if measured { 'm' } else { 'w' };
    format!(
        "42{ack_id}[\"message:send\",{{\"roomId\":{room},\"content\":\"b {ts} {tag} {seq} {mark}\",\"clientId\":\"{tag:016x}{seq:016x}\"}}]"
    )
}

/// A bench message's send time and whether it is measured, from a `message:new` event
/// packet (Socket.IO part, after the Engine.IO `4`). None for anything else.
fn bench_message(packet: &str) -> Option<(u64, bool)> {
    let rest = packet.strip_prefix("2[\"message:new\",")?;
    let at = rest.find("\"content\":\"b ")?;
    let content = &rest[at + 13..];
    let end = content.find(' ')?;
    let ts: u64 = content[..end].parse().ok()?;
    let close = content.find('"')?;
    let measured = content[..close].ends_with(" m");
    Some((ts, measured))
}

/// The outcome of the client-visible part of one Engine.IO packet.
enum Seen {
    Nothing,
    Open,
    Ping,
    Connected,
    ConnectError(String),
    Closed(String),
    Ack { id: u64, ok: bool, text: String },
}

/// Handles one Engine.IO text packet: bench deliveries are recorded here.
fn on_packet(packet: &str, report: &mut ConnReport, counting: bool) -> Seen {
    let Some(kind) = packet.as_bytes().first() else {
        return Seen::Nothing;
    };
    match kind {
        b'0' => Seen::Open,
        b'1' => Seen::Closed("engine.io close".into()),
        b'2' => Seen::Ping,
        b'4' => {
            let sio = &packet[1..];
            match sio.as_bytes().first() {
                Some(b'2') => {
                    if counting && let Some((ts, measured)) = bench_message(sio) {
                        report.received += 1;
                        let now = now_ns();
                        stats::record_delivery(measured.then(|| now.saturating_sub(ts)));
                    }
                    Seen::Nothing
                }
                Some(b'3') => {
                    let digits = sio[1..].bytes().take_while(u8::is_ascii_digit).count();
                    let id = sio[1..1 + digits].parse().unwrap_or(u64::MAX);
                    let body = &sio[1 + digits..];
                    Seen::Ack {
                        id,
                        ok: body.starts_with("[{\"ok\":true"),
                        text: body.chars().take(200).collect(),
                    }
                }
                Some(b'0') => Seen::Connected,
                Some(b'4') => Seen::ConnectError(sio.chars().take(300).collect()),
                Some(b'1') => Seen::Closed("socket.io disconnect".into()),
                _ => Seen::Nothing,
            }
        }
        _ => Seen::Nothing,
    }
}

// ---------------------------------------------------------------------------------------------
// WebSocket

/// A client-side WebSocket: server frames are unmasked, ours are masked (RFC 6455).
pub struct Ws {
    stream: TcpStream,
    buf: BytesMut,
    /// A fragmented message being reassembled.
    partial: Vec<u8>,
    mask_state: u32,
    out: Vec<u8>,
}

pub enum Frame {
    Text(Bytes),
    Ping(Bytes),
    Close,
}

impl Ws {
    pub async fn connect(source: Ipv4Addr, endpoint: &Endpoint) -> Result<Ws> {
        let mut stream = tcp_connect(source, endpoint.server).await?;
        let request = format!(
            "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            endpoint.host
        );
        stream.write_all(request.as_bytes()).await?;
        let mut buf = BytesMut::with_capacity(4096);
        let header_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            if buf.len() > 16 * 1024 {
                bail!("handshake response too long");
            }
            if stream.read_buf(&mut buf).await? == 0 {
                bail!("connection closed during the WebSocket handshake");
            }
        };
        let head = String::from_utf8_lossy(&buf[..header_end]).into_owned();
        if !head.starts_with("HTTP/1.1 101") {
            bail!(
                "WebSocket handshake refused: {}",
                head.lines().next().unwrap_or("")
            );
        }
        buf.advance(header_end);
        let mask_state = (source_seed(source) ^ stream.local_addr()?.port() as u32) | 1;
        Ok(Ws {
            stream,
            buf,
            partial: Vec::new(),
            mask_state,
            out: Vec::with_capacity(256),
        })
    }

    /// Parses one complete frame out of the buffer, if there is one.
    fn parse(&mut self) -> Result<Option<Frame>> {
        loop {
            let b = &self.buf[..];
            if b.len() < 2 {
                return Ok(None);
            }
            let fin = b[0] & 0x80 != 0;
            let opcode = b[0] & 0x0f;
            if b[1] & 0x80 != 0 {
                bail!("server sent a masked frame");
            }
            let (len, header) = match b[1] & 0x7f {
                126 => {
                    if b.len() < 4 {
                        return Ok(None);
                    }
                    (u16::from_be_bytes([b[2], b[3]]) as usize, 4)
                }
                127 => {
                    if b.len() < 10 {
                        return Ok(None);
                    }
                    let mut n = [0u8; 8];
                    n.copy_from_slice(&b[2..10]);
                    (u64::from_be_bytes(n) as usize, 10)
                }
                n => (n as usize, 2),
            };
            if b.len() < header + len {
                self.buf.reserve(header + len - b.len());
                return Ok(None);
            }
            self.buf.advance(header);
            let payload = self.buf.split_to(len).freeze();
            match opcode {
                0x1 | 0x2 if fin => return Ok(Some(Frame::Text(payload))),
                0x1 | 0x2 => self.partial = payload.to_vec(),
                0x0 => {
                    self.partial.extend_from_slice(&payload);
                    if fin {
                        let whole = Bytes::from(std::mem::take(&mut self.partial));
                        return Ok(Some(Frame::Text(whole)));
                    }
                }
                0x8 => return Ok(Some(Frame::Close)),
                0x9 => return Ok(Some(Frame::Ping(payload))),
                _ => {} // pong or reserved: ignore
            }
        }
    }

    /// The next frame; cancel-safe (a cancelled read loses nothing).
    pub async fn next(&mut self) -> Result<Frame> {
        loop {
            if let Some(frame) = self.parse()? {
                return Ok(frame);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                bail!("connection closed by the server");
            }
        }
    }

    fn encode(&mut self, opcode: u8, payload: &[u8]) {
        self.mask_state ^= self.mask_state << 13;
        self.mask_state ^= self.mask_state >> 17;
        self.mask_state ^= self.mask_state << 5;
        let mask = self.mask_state.to_be_bytes();
        self.out.push(0x80 | opcode);
        match payload.len() {
            n if n < 126 => self.out.push(0x80 | n as u8),
            n if n <= u16::MAX as usize => {
                self.out.push(0x80 | 126);
                self.out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                self.out.push(0x80 | 127);
                self.out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        self.out.extend_from_slice(&mask);
        self.out.extend(
            payload
                .iter()
                .enumerate()
                .map(|(i, byte)| byte ^ mask[i % 4]),
        );
    }

    pub async fn send_text(&mut self, text: &str) -> Result<()> {
        self.encode(0x1, text.as_bytes());
        self.flush().await
    }

    async fn send_pong(&mut self, payload: &[u8]) -> Result<()> {
        self.encode(0xA, payload);
        self.flush().await
    }

    async fn flush(&mut self) -> Result<()> {
        self.stream.write_all(&self.out).await?;
        self.out.clear();
        Ok(())
    }
}

fn source_seed(source: Ipv4Addr) -> u32 {
    u32::from(source).wrapping_mul(0x9e37_79b9)
}

/// Opens a WebSocket, waits for the Engine.IO open packet, signs the Socket.IO socket in
/// and waits for its CONNECT answer.
pub async fn connect_socket(
    source: Ipv4Addr,
    endpoint: &Endpoint,
    token: &str,
    rooms: &[u64],
) -> Result<Ws> {
    let mut ws = Ws::connect(source, endpoint).await?;
    let mut scratch = ConnReport::default();
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(60), ws.next())
            .await
            .context("no answer within 60 s while connecting")??;
        match frame {
            Frame::Text(bytes) => {
                let text = std::str::from_utf8(&bytes)?;
                match on_packet(text, &mut scratch, false) {
                    Seen::Open => ws.send_text(&connect_packet(token, rooms)).await?,
                    Seen::Ping => ws.send_text("3").await?,
                    Seen::Connected => return Ok(ws),
                    Seen::ConnectError(e) => bail!("socket.io connect refused: {e}"),
                    Seen::Closed(why) => bail!("closed while connecting: {why}"),
                    _ => {}
                }
            }
            Frame::Ping(payload) => ws.send_pong(&payload).await?,
            Frame::Close => bail!("WebSocket closed while connecting"),
        }
    }
}

/// Drives one connected socket until `Phase::Stop`: answers pings, records deliveries and
/// acks, and sends on its plan.
pub async fn run_socket(
    mut ws: Ws,
    tag: u64,
    mut plan: SendPlan,
    mut phase: watch::Receiver<Phase>,
    counters: Arc<SendCounters>,
    counting: bool,
) -> ConnReport {
    let mut report = ConnReport::default();
    let result = drive(
        &mut ws,
        tag,
        &mut plan,
        &mut phase,
        &counters,
        counting,
        &mut report,
    )
    .await;
    if let Err(e) = result {
        report.failed = Some(format!("{e:#}"));
    }
    report
}

struct Pending {
    sent_ns: u64,
    measured: bool,
    reply: Option<oneshot::Sender<bool>>,
}

async fn drive(
    ws: &mut Ws,
    tag: u64,
    plan: &mut SendPlan,
    phase: &mut watch::Receiver<Phase>,
    counters: &SendCounters,
    counting: bool,
    report: &mut ConnReport,
) -> Result<()> {
    let mut pending: HashMap<u64, Pending> = HashMap::new();
    let mut next_ack = 0u64;
    let mut seq = 0u64;
    let mut current = *phase.borrow_and_update();
    let far = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    // The deadline of the next scheduled send (far away when none is due).
    let next_due = |current: Phase, seq: u64, plan: &SendPlan| -> Option<u64> {
        match (current, plan) {
            (
                Phase::Run { start_ns },
                SendPlan::Schedule {
                    offset_ns,
                    interval_ns,
                    stop_after_ns,
                    ..
                },
            ) => {
                let at = offset_ns + seq * interval_ns;
                (at < *stop_after_ns).then_some(start_ns + at)
            }
            _ => None,
        }
    };
    loop {
        let due = next_due(current, seq, plan);
        let sleep_until = match due {
            Some(at) => {
                let now = now_ns();
                tokio::time::Instant::now() + Duration::from_nanos(at.saturating_sub(now))
            }
            None => far,
        };
        let commands = match plan {
            SendPlan::Commands(rx) => Some(rx),
            _ => None,
        };
        let has_commands = commands.is_some();
        tokio::select! {
            frame = ws.next() => {
                match frame? {
                    Frame::Text(bytes) => {
                        let text = std::str::from_utf8(&bytes)?;
                        match on_packet(text, report, counting) {
                            Seen::Ping => {
                                report.pings += 1;
                                ws.send_text("3").await?;
                            }
                            Seen::Ack { id, ok, text } => {
                                if let Some(p) = pending.remove(&id) {
                                    if ok {
                                        counters.acked_ok.fetch_add(1, Ordering::Relaxed);
                                        if p.measured {
                                            stats::record_ack(now_ns().saturating_sub(p.sent_ns));
                                        }
                                    } else {
                                        counters.acked_err.fetch_add(1, Ordering::Relaxed);
                                        *counters.last_error.lock().expect("error slot") = Some(text);
                                    }
                                    if let Some(reply) = p.reply {
                                        let _ = reply.send(ok);
                                    }
                                }
                            }
                            Seen::Closed(why) => bail!("server closed the socket: {why}"),
                            Seen::ConnectError(e) => bail!("connect error: {e}"),
                            _ => {}
                        }
                    }
                    Frame::Ping(payload) => ws.send_pong(&payload).await?,
                    Frame::Close => bail!("server sent a WebSocket close"),
                }
            }
            changed = phase.changed() => {
                if changed.is_err() {
                    return Ok(());
                }
                current = *phase.borrow_and_update();
                if current == Phase::Stop {
                    return Ok(());
                }
            }
            () = tokio::time::sleep_until(sleep_until), if due.is_some() => {
                if let SendPlan::Schedule { room, offset_ns, interval_ns, warmup_ns, .. } = plan {
                    let measured = offset_ns.saturating_add(seq * *interval_ns) >= *warmup_ns;
                    let ts = now_ns();
                    let id = next_ack;
                    next_ack += 1;
                    ws.send_text(&send_packet(*room, id, ts, tag, seq, measured)).await?;
                    counters.sent.fetch_add(1, Ordering::Relaxed);
                    pending.insert(id, Pending { sent_ns: ts, measured, reply: None });
                    seq += 1;
                }
            }
            command = async { commands.expect("guarded").recv().await }, if has_commands => {
                match command {
                    Some(command) => {
                        let ts = now_ns();
                        let id = next_ack;
                        next_ack += 1;
                        ws.send_text(&send_packet(command.room, id, ts, tag, seq, command.measured)).await?;
                        counters.sent.fetch_add(1, Ordering::Relaxed);
                        pending.insert(id, Pending { sent_ns: ts, measured: command.measured, reply: Some(command.acked) });
                        seq += 1;
                    }
                    None => *plan = SendPlan::None,
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP (keep-alive connections for history, seeding and long-polling)

pub struct Http {
    sender: SendRequest<Full<Bytes>>,
    host: String,
}

pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

impl Http {
    pub async fn connect(source: Ipv4Addr, endpoint: &Endpoint) -> Result<Http> {
        let stream = tcp_connect(source, endpoint.server).await?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .context("HTTP handshake")?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Http {
            sender,
            host: endpoint.host.clone(),
        })
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Response> {
        let mut builder = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host);
        if let Some(token) = token {
            builder = builder.header("authorization", format!("Bearer {token}"));
        }
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        let request = builder.body(Full::new(body))?;
        self.sender.ready().await.context("HTTP connection lost")?;
        let response = self.sender.send_request(request).await?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Response { status, body })
    }

    pub async fn get(&mut self, path: &str, token: Option<&str>) -> Result<Response> {
        self.request("GET", path, token, None, Bytes::new()).await
    }
}

/// A long-polling Socket.IO client: one keep-alive connection that alternates a pending GET
/// with the POSTs it owes (the pong). Returns once signed in.
pub struct Polling {
    http: Http,
    sid: String,
}

const SEPARATOR: char = '\u{1e}';

impl Polling {
    pub async fn connect(
        source: Ipv4Addr,
        endpoint: &Endpoint,
        token: &str,
        rooms: &[u64],
    ) -> Result<Polling> {
        let mut http = Http::connect(source, endpoint).await?;
        let open = http
            .get("/socket.io/?EIO=4&transport=polling", None)
            .await?;
        let text = std::str::from_utf8(&open.body)?;
        if open.status != 200 || !text.starts_with('0') {
            bail!("polling handshake refused: {} {text}", open.status);
        }
        let handshake: serde_json::Value = serde_json::from_str(&text[1..])?;
        let sid = handshake["sid"]
            .as_str()
            .ok_or_else(|| anyhow!("no sid in {text}"))?
            .to_owned();
        let mut polling = Polling { http, sid };
        polling.post(&connect_packet(token, rooms)).await?;
        let mut scratch = ConnReport::default();
        loop {
            for packet in polling.poll().await? {
                match on_packet(&packet, &mut scratch, false) {
                    Seen::Connected => return Ok(polling),
                    Seen::Ping => polling.post("3").await?,
                    Seen::ConnectError(e) => bail!("socket.io connect refused: {e}"),
                    Seen::Closed(why) => bail!("closed while connecting: {why}"),
                    _ => {}
                }
            }
        }
    }

    async fn post(&mut self, body: &str) -> Result<()> {
        let path = format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid);
        let response = self
            .http
            .request(
                "POST",
                &path,
                None,
                Some("text/plain;charset=UTF-8"),
                Bytes::from(body.to_owned()),
            )
            .await?;
        if response.status != 200 {
            bail!(
                "polling POST answered {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            );
        }
        Ok(())
    }

    async fn poll(&mut self) -> Result<Vec<String>> {
        let path = format!("/socket.io/?EIO=4&transport=polling&sid={}", self.sid);
        let response = self.http.get(&path, None).await?;
        if response.status != 200 {
            bail!(
                "polling GET answered {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body)
            );
        }
        let text = std::str::from_utf8(&response.body)?;
        Ok(text.split(SEPARATOR).map(str::to_owned).collect())
    }

    /// Receives until `Phase::Stop`.
    pub async fn run(mut self, mut phase: watch::Receiver<Phase>) -> ConnReport {
        let mut report = ConnReport::default();
        if let Err(e) = self.drive(&mut phase, &mut report).await {
            report.failed = Some(format!("{e:#}"));
        }
        report
    }

    async fn drive(
        &mut self,
        phase: &mut watch::Receiver<Phase>,
        report: &mut ConnReport,
    ) -> Result<()> {
        loop {
            // The pending GET is never dropped on a phase change (hyper would lose what it
            // carries); only Stop abandons it.
            let packets = {
                let poll = self.poll();
                tokio::pin!(poll);
                loop {
                    tokio::select! {
                        packets = &mut poll => break packets?,
                        changed = phase.changed() => {
                            if changed.is_err() || *phase.borrow_and_update() == Phase::Stop {
                                return Ok(());
                            }
                        }
                    }
                }
            };
            for packet in packets {
                match on_packet(&packet, report, true) {
                    Seen::Ping => {
                        report.pings += 1;
                        self.post("3").await?;
                    }
                    Seen::Closed(why) => bail!("server closed the session: {why}"),
                    _ => {}
                }
            }
        }
    }
}
