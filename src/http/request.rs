//! Reading requests: bodies under a size limit, JSON with the failing field named, query
//! strings, the Origin check and the client address. (The session token is found by
//! `auth::session_token`, shared with socket handshakes.)

use std::net::{IpAddr, SocketAddr};

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap};
use hyper::{Request, StatusCode};
use serde::de::DeserializeOwned;

use super::response::ApiError;

/// Largest request body any route accepts.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("request body is larger than {MAX_BODY_BYTES} bytes"),
    )
}

/// Reads the body as JSON of type `T`. Refuses a non-JSON content type (415: this also stops
/// cross-site HTML forms, which cannot send `application/json`), a body over the limit (413),
/// malformed JSON (400 `invalid_json`) and wrong types (400 `invalid_field`, naming it).
pub async fn json_body<T: DeserializeOwned>(request: Request<Incoming>) -> Result<T, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as JSON with Content-Type: application/json",
        ));
    }
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let mut body = request.into_body();
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        drain(&mut body).await;
        return Err(too_large());
    }
    let mut collected = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(frame) = frame else {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "request body could not be read",
            ));
        };
        if let Ok(data) = frame.into_data() {
            if collected.len() + data.len() > MAX_BODY_BYTES {
                drain(&mut body).await;
                return Err(too_large());
            }
            collected.extend_from_slice(&data);
        }
    }
    parse_json(&collected)
}

/// Most of an oversized body we read and throw away so the client gets its 413: closing a
/// socket with unread bytes makes the kernel send a reset, and the client never sees the
/// answer. Past this (or `DRAIN_TIME`), the connection is simply closed.
const DRAIN_BYTES: usize = 8 * 1024 * 1024;
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(5);

async fn drain(body: &mut Incoming) {
    let discard = async {
        let mut seen = 0usize;
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                seen += data.len();
                if seen > DRAIN_BYTES {
                    break;
                }
            }
        }
    };
    let _ = tokio::time::timeout(DRAIN_TIME, discard).await;
}

pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value: T = serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                // serde names a missing field only in its message: "missing field `content`".
                let missing = inner
                    .to_string()
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.split('`').next().map(str::to_owned));
                let path = match (&missing, path.as_str()) {
                    (Some(field), ".") => field.clone(),
                    (_, path) => path.to_owned(),
                };
                let mut error = ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_field",
                    if path == "." {
                        format!("request body: {inner}")
                    } else {
                        format!("{path}: {inner}")
                    },
                );
                error.field = known_field(&path);
                error
            }
            _ => ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_json",
                format!("request body is not valid JSON: {inner}"),
            ),
        }
    })?;
    deserializer.end().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_json",
            format!("request body is not valid JSON: {e}"),
        )
    })?;
    Ok(value)
}

/// `field` is `&'static str` on the wire type; map the paths our request types have.
fn known_field(path: &str) -> Option<&'static str> {
    const FIELDS: &[&str] = &[
        "username",
        "password",
        "displayName",
        "invite",
        "avatar",
        "currentPassword",
        "newPassword",
        "maxUses",
        "expiresInHours",
        "name",
        "visibility",
        "topic",
        "userId",
        "content",
        "clientId",
        "replyTo",
        "seq",
    ];
    FIELDS.iter().copied().find(|f| *f == path)
}

/// Query string pairs, percent-decoded (`+` is a space).
pub fn query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) => (decode(k), decode(v)),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// A query parameter as a number, or a 400 naming it.
pub fn query_number<T: std::str::FromStr>(
    pairs: &[(String, String)],
    name: &'static str,
) -> Result<Option<T>, ApiError> {
    match pairs.iter().find(|(k, _)| k == name) {
        None => Ok(None),
        Some((_, v)) => v.parse().map(Some).map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_query",
                format!("query parameter {name} must be a non-negative integer"),
            )
            .with_field(name)
        }),
    }
}

/// True when a browser says the request comes from a page on another origin than this host.
/// Requests without an `Origin` header (non-browser clients) pass.
pub fn foreign_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !origin_host.eq_ignore_ascii_case(host)
}

/// The client's address: the socket peer, or the first `X-Forwarded-For` entry when the
/// server is configured to trust a reverse proxy.
pub fn client_address(headers: &HeaderMap, peer: SocketAddr, trust_proxy: bool) -> IpAddr {
    if trust_proxy
        && let Some(forwarded) = headers
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse().ok())
    {
        return forwarded;
    }
    peer.ip()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn query_pairs_decode() {
        let pairs = query_pairs(Some("q=a%20b+c&limit=5&flag"));
        assert_eq!(pairs[0], ("q".into(), "a b c".into()));
        assert_eq!(
            query_number::<usize>(&pairs, "limit").ok().flatten(),
            Some(5)
        );
        assert!(query_number::<usize>(&[("limit".into(), "-1".into())], "limit").is_err());
    }

    #[test]
    fn json_errors_name_the_field() {
        #[derive(serde::Deserialize, Debug)]
        struct T {
            #[allow(dead_code)]
            content: String,
        }
        let err = parse_json::<T>(br#"{"content": 5}"#).expect_err("type error");
        assert_eq!((err.code, err.field), ("invalid_field", Some("content")));
        let err = parse_json::<T>(b"{}").expect_err("missing field");
        assert_eq!((err.code, err.field), ("invalid_field", Some("content")));
        let err = parse_json::<T>(b"{").expect_err("syntax error");
        assert_eq!(err.code, "invalid_json");
        let err = parse_json::<T>(br#"{"content":"a"} x"#).expect_err("trailing");
        assert_eq!(err.code, "invalid_json");
    }

    #[test]
    fn origin_check() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("chat.example:8080"));
        assert!(!foreign_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://chat.example:8080"),
        );
        assert!(!foreign_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(foreign_origin(&h));
        h.insert(header::ORIGIN, HeaderValue::from_static("null"));
        assert!(foreign_origin(&h));
    }
}
