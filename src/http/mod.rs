//! The HTTP face of parley: routes a request to its handler, turns every failure into
//! `{error:{code,message}}`, and hands any path the route table does not know to `assets`
//! (the web client's files).
//!
//! Must not: decide who may do what (that is `chat`) or touch redb.

mod api;
mod assets;
pub mod body;
mod metrics;
pub mod openapi;
pub mod request;
pub mod response;
pub mod routes;

use std::net::SocketAddr;

use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

use crate::app::App;
use response::{ApiError, Body};
use routes::{RouteMatch, resolve};

/// Where Socket.IO clients connect (their default path).
pub const SOCKET_IO_PATH: &str = "/socket.io/";

/// Whether a browser page on `Origin` may open a realtime connection: its own origin, or one
/// listed in `allowed_origins`. Clients that send no Origin (not browsers) pass.
fn origin_allowed(app: &App, headers: &hyper::HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    !request::foreign_origin(headers)
        || app
            .config()
            .allowed_origins
            .iter()
            .any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin))
}

pub async fn handle(app: &App, request: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    if path == SOCKET_IO_PATH || path == SOCKET_IO_PATH.trim_end_matches('/') {
        if !origin_allowed(app, request.headers()) {
            tracing::info!(%peer, "realtime handshake from a foreign origin refused");
            return ApiError::new(
                StatusCode::FORBIDDEN,
                "bad_origin",
                "this origin may not open realtime connections",
            )
            .into_response();
        }
        // Engine.IO answers with whole buffers of its own type; box them like every body.
        let response = app
            .realtime()
            .handle(request, peer)
            .await
            .map(body::from_full);
        app.count_request(SOCKET_IO_PATH, response.status().as_u16());
        return response;
    }
    let mut route_label = "unmatched";
    let mut response = match resolve(&method, &path) {
        RouteMatch::Found(route, params) => {
            route_label = route.path;
            api::handle(app, route, params, request, peer)
                .await
                .unwrap_or_else(ApiError::into_response)
        }
        RouteMatch::MethodNotAllowed(allowed) => {
            let allow = allowed
                .iter()
                .map(Method::as_str)
                .collect::<Vec<_>>()
                .join(", ");
            let mut error = ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("{method} is not allowed on {path}; use {allow}"),
            );
            error.allow = Some(allow);
            error.into_response()
        }
        RouteMatch::BadParam(name) => ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_path",
            format!("{name} must be a positive integer id"),
        )
        .with_field(name)
        .into_response(),
        // Only what the API does not know can be a file: the API's paths (and its 404s and
        // 405s) stay exactly as they are whatever `assets/` holds.
        RouteMatch::NotFound => match assets::serve(&method, &path, request.headers()) {
            Some(response) => {
                route_label = "static";
                response
            }
            None => ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route for {method} {path}"),
            )
            .into_response(),
        },
    };
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    tracing::debug!(%method, %path, status = response.status().as_u16(), "request");
    app.count_request(route_label, response.status().as_u16());
    response
}
