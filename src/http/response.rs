//! Responses: JSON bodies, the `{error:{code,message}}` shape, cookies, and the one place
//! where a `ChatError` becomes an HTTP status.

use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};
use serde::Serialize;

use crate::auth::SESSION_COOKIE;
use crate::chat::ChatError;

pub use super::body::Body;
use super::body::full;

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub field: Option<&'static str>,
    pub retry_after: Option<u64>,
    /// For 405: the methods the path does accept.
    pub allow: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
            allow: None,
        }
    }

    pub fn with_field(mut self, field: &'static str) -> ApiError {
        self.field = Some(field);
        self
    }

    pub fn into_response(self) -> Response<Body> {
        #[derive(Serialize)]
        struct Wire<'a> {
            error: Inner<'a>,
        }
        #[derive(Serialize)]
        struct Inner<'a> {
            code: &'a str,
            message: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            field: Option<&'a str>,
        }
        let mut response = json(
            self.status,
            &Wire {
                error: Inner {
                    code: self.code,
                    message: &self.message,
                    field: self.field,
                },
            },
        );
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(allow) = self.allow.and_then(|a| HeaderValue::from_str(&a).ok()) {
            response.headers_mut().insert(header::ALLOW, allow);
        }
        response
    }
}

impl From<ChatError> for ApiError {
    fn from(e: ChatError) -> ApiError {
        let status = match &e {
            ChatError::Unauthenticated | ChatError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ChatError::AccountDisabled
            | ChatError::RegistrationClosed
            | ChatError::InvalidInvite
            | ChatError::Forbidden(_)
            | ChatError::NotMember => StatusCode::FORBIDDEN,
            ChatError::NotFound(_) => StatusCode::NOT_FOUND,
            ChatError::Invalid { .. } => StatusCode::BAD_REQUEST,
            ChatError::UsernameTaken
            | ChatError::AlreadyMember
            | ChatError::MessageDeleted
            | ChatError::ClientIdConflict => StatusCode::CONFLICT,
            ChatError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ChatError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ChatError::Internal(detail) => {
                tracing::error!(error = %detail, "internal error");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        let mut error = ApiError::new(status, e.code(), e.public_message());
        match e {
            ChatError::Invalid { field, .. } => error.field = Some(field),
            // Forms show this next to the username input.
            ChatError::UsernameTaken => error.field = Some("username"),
            _ => {}
        }
        if let ChatError::RateLimited { retry_after_secs } = e {
            error.retry_after = Some(retry_after_secs);
        }
        error
    }
}

pub fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    match serde_json::to_vec(value) {
        Ok(bytes) => with_json_headers(Response::new(full(bytes)), status),
        Err(e) => {
            tracing::error!(error = %e, "response does not serialize");
            let body = br#"{"error":{"code":"internal","message":"internal error"}}"#;
            with_json_headers(
                Response::new(full(Bytes::from_static(body))),
                StatusCode::INTERNAL_SERVER_ERROR,
            )
        }
    }
}

fn with_json_headers(mut response: Response<Body>, status: StatusCode) -> Response<Body> {
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(super::body::empty());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The session cookie: HttpOnly (scripts cannot read it), SameSite=Lax (not sent on
/// cross-site POSTs), whole-site path.
pub fn set_session_cookie(response: &mut Response<Body>, token: &str, max_age_secs: i64) {
    let cookie =
        format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

pub fn clear_session_cookie(response: &mut Response<Body>) {
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}
