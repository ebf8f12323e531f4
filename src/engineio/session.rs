//! One Engine.IO session: its outbox, which transport carries it, heartbeat bookkeeping and
//! close state. Shared by the transport tasks and by whoever sends to it (the hub).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
// tokio's clock rather than std's: the same at run time, and paused time in tests moves it, so
// the heartbeat's deadlines can be tested without real waits.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Something queued for the client: a complete Engine.IO text packet (`4…`, `2`, `6`) or a
/// binary message. Broadcasts share one `Bytes` between every subscriber.
#[derive(Clone, Debug)]
pub enum Outgoing {
    Text(Bytes),
    Binary(Bytes),
}

impl Outgoing {
    fn len(&self) -> usize {
        match self {
            Outgoing::Text(b) | Outgoing::Binary(b) => b.len(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CloseReason {
    /// The client sent a close packet or DISCONNECT.
    ClientClose,
    /// The transport went away (socket closed, network dropped).
    TransportClose,
    /// No pong within the ping timeout.
    PingTimeout,
    /// The outbox overflowed: the client reads slower than the room talks.
    Lagging,
    /// The client broke the protocol.
    ProtocolError,
    /// Two GETs at once on one polling session.
    DuplicatePoll,
    /// The server is shutting down.
    ServerShutdown,
    /// The application closed it (bad auth, abuse).
    Kicked,
}

impl CloseReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::ClientClose => "client namespace disconnect",
            CloseReason::TransportClose => "transport close",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::Lagging => "lagging: outbound queue full",
            CloseReason::ProtocolError => "parse error",
            CloseReason::DuplicatePoll => "duplicate poll",
            CloseReason::ServerShutdown => "server shutting down",
            CloseReason::Kicked => "server namespace disconnect",
        }
    }

    /// Whether a client that lost its session this way may recover it.
    pub fn recoverable(self) -> bool {
        matches!(
            self,
            CloseReason::TransportClose
                | CloseReason::PingTimeout
                | CloseReason::Lagging
                | CloseReason::ServerShutdown
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Polling,
    /// A WebSocket answered the probe; polling still carries traffic until the client sends `5`.
    Upgrading,
    WebSocket,
}

#[derive(Debug)]
pub struct PushError;

struct Inner {
    outbox: VecDeque<Outgoing>,
    outbox_bytes: usize,
    transport: Transport,
    /// A polling GET is waiting.
    poll_pending: bool,
    /// A WebSocket is attached (probing or upgraded).
    websocket_attached: bool,
    /// When the last ping was sent and no pong has come since.
    ping_unanswered_since: Option<Instant>,
    closed: Option<CloseReason>,
}

pub struct Session<S> {
    pub sid: String,
    /// The application's per-session state (the Socket.IO layer's).
    pub state: tokio::sync::Mutex<S>,
    inner: Mutex<Inner>,
    /// Wakes a waiting polling GET.
    poll_wake: Notify,
    /// Wakes the WebSocket writer.
    ws_wake: Notify,
    /// Wakes the heartbeat when a pong arrives, so the next ping is a full interval later.
    pong_wake: Notify,
    /// Cancelled when the session closes: stops the heartbeat and transport tasks.
    pub closed: CancellationToken,
    outbox_limit_bytes: usize,
    outbox_limit_packets: usize,
}

/// What a polling GET should answer.
pub enum PollAnswer {
    Packets(Vec<Outgoing>),
    /// The session closed while (or before) the GET waited: whatever was still queued, then
    /// `6` if the client asked for the close, `1` otherwise.
    Closed(CloseReason, Vec<Outgoing>),
    /// A WebSocket took over: answer `6` so the client can finish the upgrade.
    Noop,
}

impl<S: Default> Session<S> {
    pub fn new(
        sid: String,
        transport: Transport,
        outbox_limit_bytes: usize,
        outbox_limit_packets: usize,
    ) -> Session<S> {
        Session {
            sid,
            state: tokio::sync::Mutex::new(S::default()),
            inner: Mutex::new(Inner {
                outbox: VecDeque::new(),
                outbox_bytes: 0,
                transport,
                poll_pending: false,
                websocket_attached: transport == Transport::WebSocket,
                ping_unanswered_since: None,
                closed: None,
            }),
            poll_wake: Notify::new(),
            ws_wake: Notify::new(),
            pong_wake: Notify::new(),
            closed: CancellationToken::new(),
            outbox_limit_bytes,
            outbox_limit_packets,
        }
    }
}

impl<S> Session<S> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave it inconsistent (every critical
        // section is a few field updates), so a poisoned lock is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self, transport: Transport) {
        match transport {
            Transport::WebSocket => self.ws_wake.notify_one(),
            Transport::Polling | Transport::Upgrading => self.poll_wake.notify_one(),
        }
    }

    /// Queues a packet. `Err` means the session is closed or its outbox is full (the caller
    /// closes it as lagging).
    pub fn push(&self, packet: Outgoing) -> Result<(), PushError> {
        let transport = {
            let mut inner = self.lock();
            if inner.closed.is_some() {
                return Err(PushError);
            }
            if inner.outbox.len() >= self.outbox_limit_packets
                || inner.outbox_bytes + packet.len() > self.outbox_limit_bytes
            {
                return Err(PushError);
            }
            inner.outbox_bytes += packet.len();
            inner.outbox.push_back(packet);
            inner.transport
        };
        self.wake(transport);
        Ok(())
    }

    /// Takes everything queued, in order.
    pub fn drain(&self) -> Vec<Outgoing> {
        let mut inner = self.lock();
        inner.outbox_bytes = 0;
        inner.outbox.drain(..).collect()
    }

    /// Whether anything is queued for the client.
    pub fn has_queued(&self) -> bool {
        !self.lock().outbox.is_empty()
    }

    pub fn transport(&self) -> Transport {
        self.lock().transport
    }

    pub fn close_reason(&self) -> Option<CloseReason> {
        self.lock().closed
    }

    /// Marks the session closed. Returns true the first time only.
    pub fn mark_closed(&self, reason: CloseReason) -> bool {
        {
            let mut inner = self.lock();
            if inner.closed.is_some() {
                return false;
            }
            inner.closed = Some(reason);
        }
        self.closed.cancel();
        self.poll_wake.notify_one();
        self.ws_wake.notify_one();
        true
    }

    /// Records a ping sent now.
    pub fn ping_sent(&self) {
        let mut inner = self.lock();
        inner.ping_unanswered_since.get_or_insert_with(Instant::now);
    }

    pub fn pong_received(&self) {
        self.lock().ping_unanswered_since = None;
        self.pong_wake.notify_one();
    }

    /// Resolves when a pong arrives (or one arrived since the last call).
    pub async fn pong(&self) {
        self.pong_wake.notified().await;
    }

    /// True once a ping has gone unanswered for `timeout`.
    pub fn ping_overdue(&self, timeout: Duration) -> bool {
        self.lock()
            .ping_unanswered_since
            .is_some_and(|since| since.elapsed() >= timeout)
    }

    /// Starts a polling GET; `false` if one is already waiting.
    pub fn begin_poll(&self) -> bool {
        let mut inner = self.lock();
        if inner.poll_pending {
            return false;
        }
        inner.poll_pending = true;
        true
    }

    pub fn end_poll(&self) {
        self.lock().poll_pending = false;
    }

    /// Waits for something to answer a polling GET with.
    pub async fn wait_poll(&self) -> PollAnswer {
        loop {
            let notified = self.poll_wake.notified();
            {
                let mut inner = self.lock();
                if let Some(reason) = inner.closed {
                    inner.outbox_bytes = 0;
                    return PollAnswer::Closed(reason, inner.outbox.drain(..).collect());
                }
                if !inner.outbox.is_empty() {
                    inner.outbox_bytes = 0;
                    return PollAnswer::Packets(inner.outbox.drain(..).collect());
                }
                if inner.transport != Transport::Polling {
                    return PollAnswer::Noop;
                }
            }
            notified.await;
        }
    }

    /// Waits (at most `limit`) for an upgrade in progress to complete; true if it did.
    pub async fn wait_upgraded(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.poll_wake.notified();
                match self.transport() {
                    Transport::WebSocket => return true,
                    Transport::Polling => return false,
                    Transport::Upgrading => {}
                }
                if self.close_reason().is_some() {
                    return false;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.unwrap_or(false)
    }

    /// Waits until the WebSocket writer has something to send (or the session closed).
    pub async fn wait_ws(&self) {
        loop {
            let notified = self.ws_wake.notified();
            {
                let inner = self.lock();
                if inner.closed.is_some()
                    || (inner.transport == Transport::WebSocket && !inner.outbox.is_empty())
                {
                    return;
                }
            }
            notified.await;
        }
    }

    /// A WebSocket wants to attach for an upgrade; `false` if one already is.
    pub fn attach_websocket(&self) -> bool {
        let mut inner = self.lock();
        if inner.websocket_attached || inner.closed.is_some() {
            return false;
        }
        inner.websocket_attached = true;
        true
    }

    /// The WebSocket answered `3probe`: release a waiting GET with `6`.
    pub fn probe_answered(&self) {
        {
            let mut inner = self.lock();
            if inner.transport == Transport::Polling {
                inner.transport = Transport::Upgrading;
            }
        }
        self.poll_wake.notify_one();
    }

    /// The client sent `5`: from now on the WebSocket carries everything.
    pub fn upgraded(&self) {
        self.lock().transport = Transport::WebSocket;
        self.poll_wake.notify_one();
        self.ws_wake.notify_one();
    }

    /// The probing WebSocket went away before `5`: polling carries on.
    pub fn upgrade_abandoned(&self) {
        let mut inner = self.lock();
        if inner.transport == Transport::Upgrading {
            inner.transport = Transport::Polling;
        }
        inner.websocket_attached = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &'static str) -> Outgoing {
        Outgoing::Text(Bytes::from_static(s.as_bytes()))
    }

    #[test]
    fn outbox_is_bounded_and_closed_sessions_refuse() {
        let session: Session<()> = Session::new("s".into(), Transport::Polling, 10, 3);
        assert!(session.push(text("4a")).is_ok());
        assert!(session.push(text("4bbbbbbbbbb")).is_err(), "byte limit");
        assert!(session.push(text("4c")).is_ok());
        assert!(session.push(text("4d")).is_ok());
        assert!(session.push(text("4e")).is_err(), "packet limit");
        assert_eq!(session.drain().len(), 3);
        assert!(session.push(text("4f")).is_ok());
        assert!(session.mark_closed(CloseReason::Lagging));
        assert!(
            !session.mark_closed(CloseReason::Kicked),
            "first reason wins"
        );
        assert!(session.push(text("4g")).is_err());
        assert_eq!(session.close_reason(), Some(CloseReason::Lagging));
    }

    #[tokio::test]
    async fn a_waiting_poll_is_woken_by_a_push() {
        let session = std::sync::Arc::new(Session::<()>::new(
            "s".into(),
            Transport::Polling,
            1 << 20,
            100,
        ));
        assert!(session.begin_poll());
        assert!(!session.begin_poll(), "second concurrent GET is refused");
        let waiter = tokio::spawn({
            let session = session.clone();
            async move { session.wait_poll().await }
        });
        tokio::task::yield_now().await;
        session.push(text("4hi")).expect("push");
        match waiter.await.expect("join") {
            PollAnswer::Packets(p) => assert_eq!(p.len(), 1),
            _ => panic!("expected packets"),
        }
    }

    #[test]
    fn ping_bookkeeping() {
        let session: Session<()> = Session::new("s".into(), Transport::Polling, 100, 10);
        assert!(!session.ping_overdue(Duration::ZERO));
        session.ping_sent();
        assert!(session.ping_overdue(Duration::ZERO));
        session.pong_received();
        assert!(!session.ping_overdue(Duration::ZERO));
    }
}
