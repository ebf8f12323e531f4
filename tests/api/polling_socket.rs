//! A Socket.IO socket over raw Engine.IO long-polling, for tests that need a signed-in socket
//! without the Node client: sign in, emit with an ack, and read what the server sends.

use std::time::Duration;

use serde_json::Value;

use crate::common::*;

pub struct PollingSocket<'a> {
    srv: &'a TestServer,
    pub sid: String,
    /// Packets read while waiting for something else, in order.
    pub heard: Vec<String>,
}

fn url(srv: &TestServer, sid: Option<&str>) -> String {
    match sid {
        Some(sid) => srv.url(&format!("/socket.io/?EIO=4&transport=polling&sid={sid}")),
        None => srv.url("/socket.io/?EIO=4&transport=polling"),
    }
}

impl<'a> PollingSocket<'a> {
    /// Opens an Engine.IO session (no Socket.IO CONNECT yet).
    pub async fn open(srv: &'a TestServer) -> PollingSocket<'a> {
        let open = srv
            .client()
            .get(url(srv, None))
            .send()
            .await
            .expect("handshake")
            .text()
            .await
            .expect("handshake body");
        let open: Value =
            serde_json::from_str(open.strip_prefix('0').expect("open packet")).expect("open json");
        PollingSocket {
            srv,
            sid: open["sid"].as_str().expect("sid").to_owned(),
            heard: Vec::new(),
        }
    }

    /// Signs in with `token` (or none): `Ok` on CONNECT, `Err(code)` on CONNECT_ERROR.
    pub async fn connect(srv: &'a TestServer, token: Option<&str>) -> Result<Self, String> {
        let mut socket = PollingSocket::open(srv).await;
        let auth = match token {
            Some(token) => format!(r#"40{{"token":"{token}"}}"#),
            None => "40".to_owned(),
        };
        assert_eq!(socket.post(auth).await, 200);
        let answer = socket
            .next_matching(|p| p.starts_with("40") || p.starts_with("44"))
            .await;
        match answer.strip_prefix("44") {
            None => Ok(socket),
            Some(refusal) => {
                let refusal: Value = serde_json::from_str(refusal).expect("connect_error json");
                Err(refusal["data"]["code"].as_str().unwrap_or("?").to_owned())
            }
        }
    }

    pub async fn post(&self, body: String) -> u16 {
        self.srv
            .client()
            .post(url(self.srv, Some(&self.sid)))
            .header("content-type", "text/plain;charset=UTF-8")
            .body(body)
            .send()
            .await
            .expect("post")
            .status()
            .as_u16()
    }

    /// One GET: its status and the packets it carried.
    pub async fn poll(&self) -> (u16, Vec<String>) {
        let response = self
            .srv
            .client()
            .get(url(self.srv, Some(&self.sid)))
            .send()
            .await
            .expect("poll");
        let status = response.status().as_u16();
        let body = response.text().await.expect("poll body");
        (status, body.split('\x1e').map(str::to_owned).collect())
    }

    /// Polls until a packet satisfies `wanted` (others are kept in `heard`); answers pings.
    pub async fn next_matching(&mut self, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            assert!(
                tokio::time::Instant::now() < deadline,
                "nothing matching within 10 s; heard {:?}",
                self.heard
            );
            let (status, packets) = self.poll().await;
            assert_eq!(status, 200, "poll failed; heard {:?}", self.heard);
            let mut found = None;
            for packet in packets {
                if packet == "2" {
                    self.post("3".to_owned()).await;
                } else if found.is_none() && wanted(&packet) {
                    found = Some(packet);
                } else {
                    self.heard.push(packet);
                }
            }
            if let Some(packet) = found {
                return packet;
            }
        }
    }

    /// Emits `event` with `payload` and ack id `id`; returns the ack's body.
    pub async fn emit_ack(&mut self, id: u64, event: &str, payload: &Value) -> Value {
        let packet = format!("42{id}{}", serde_json::json!([event, payload]));
        assert_eq!(self.post(packet).await, 200, "emit {event}");
        let prefix = format!("43{id}[");
        let ack = self.next_matching(|p| p.starts_with(&prefix)).await;
        let mut args: Vec<Value> =
            serde_json::from_str(&ack[prefix.len() - 1..]).expect("ack json");
        args.swap_remove(0)
    }
}
