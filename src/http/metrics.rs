//! `GET /metrics`: gathers each layer's counters into Prometheus text. Readable with the
//! configured bearer token, or, when none is set, by loopback clients only.

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::request::client_address;
use super::response::{ApiError, Body};
use crate::app::App;
use crate::metrics::Exposition;

fn allowed(app: &App, request: &Request<Incoming>, peer: SocketAddr) -> bool {
    match &app.config().metrics_token {
        Some(expected) => request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes())),
        // Behind a reverse proxy on the same host every request comes from loopback: with
        // trust_proxy the forwarded client address is what counts.
        None => client_address(request.headers(), peer, app.config().trust_proxy).is_loopback(),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn respond(
    app: &App,
    request: &Request<Incoming>,
    peer: SocketAddr,
) -> Result<Response<Body>, ApiError> {
    if !allowed(app, request, peer) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "metrics need the metrics token (or a loopback client when none is configured)",
        ));
    }
    let mut out = Exposition::default();
    let store = app.chat().store();
    let stats = store.stats();
    let (polling, websocket) = app.realtime().transport_counts();
    out.labelled(
        "parley_connections",
        "gauge",
        "Open realtime connections by transport.",
        "transport",
        &[
            ("polling".into(), polling as u64),
            ("websocket".into(), websocket as u64),
        ],
    );
    let rooms = store.snapshot().and_then(|s| s.room_count()).unwrap_or(0);
    out.gauge("parley_rooms", "Rooms, group and direct.", rooms);
    out.counter(
        "parley_messages_persisted_total",
        "Messages committed to the store since start.",
        stats.messages_persisted.get(),
    );
    let realtime = app.realtime().handler.stats();
    out.counter(
        "parley_fanout_deliveries_total",
        "Room broadcasts handed to a connection's queue.",
        realtime.fanout_deliveries.get(),
    );
    out.counter(
        "parley_lagging_disconnects_total",
        "Connections closed because their outbound queue was full.",
        realtime.lagging_disconnects.get(),
    );
    out.counter(
        "parley_attach_store_reads_total",
        "Socket attaches so far behind live fanout that the actor read the store for them.",
        realtime.attach_store_reads.get(),
    );
    out.counter(
        "parley_commits_total",
        "Store write transactions committed.",
        stats.commits.get(),
    );
    out.counter(
        "parley_failed_batches_total",
        "Write batches that did not commit.",
        stats.failed_batches.get(),
    );
    out.histogram(
        "parley_commit_batch_size",
        "Writes per committed transaction.",
        &stats.batch_size,
    );
    out.histogram(
        "parley_commit_seconds",
        "Time to run and commit one batch, fsync included.",
        &stats.commit_seconds,
    );
    let requests: Vec<(Vec<(&str, String)>, u64)> = app
        .request_counts()
        .into_iter()
        .map(|((route, status), count)| {
            (
                vec![("route", route.to_owned()), ("status", status.to_string())],
                count,
            )
        })
        .collect();
    out.multi_labelled(
        "parley_http_requests_total",
        "counter",
        "HTTP requests answered, by route pattern and status.",
        &requests,
    );
    let mut response = Response::new(super::body::full(out.finish()));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(response)
}
