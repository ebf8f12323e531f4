//! Session tokens: 32 random bytes (base64url on the wire), of which only the sha256 is
//! stored; and where a request carries one (the `Authorization: Bearer` header or the session
//! cookie), so HTTP routes and socket handshakes find it the same way.
//!
//! Must not: touch the store, or know more of HTTP than the header names it reads.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hyper::header::{self, HeaderMap};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// The name of the HttpOnly cookie that carries a browser's session token.
pub const SESSION_COOKIE: &str = "parley_session";

/// A fresh random token and its stored form: `(token for the client, sha256 for the store)`.
pub fn new_token() -> (String, [u8; 32]) {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    (URL_SAFE_NO_PAD.encode(bytes), Sha256::digest(bytes).into())
}

/// The stored form of a token a client presented, or `None` if it cannot be one of ours.
pub fn token_hash(token: &str) -> Option<[u8; 32]> {
    if token.len() != 43 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let bytes: [u8; 32] = bytes.try_into().ok()?;
    Some(Sha256::digest(bytes).into())
}

/// Where a request's session token came from. A cookie is sent by the browser on its own, so
/// cookie-authenticated writes get an Origin check that a bearer token does not need.
pub enum TokenSource {
    Bearer,
    Cookie,
}

/// The session token: `Authorization: Bearer …` first, then the session cookie.
pub fn session_token(headers: &HeaderMap) -> Option<(String, TokenSource)> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().ok()?;
        let (scheme, token) = value.split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| (token.trim().to_owned(), TokenSource::Bearer));
    }
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((name, token)) = pair.trim().split_once('=')
                && name == SESSION_COOKIE
                && !token.is_empty()
            {
                return Some((token.to_owned(), TokenSource::Cookie));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    #[test]
    fn token_hash_matches_only_our_tokens() {
        let (token, hash) = new_token();
        assert_eq!(token.len(), 43);
        assert_eq!(token_hash(&token), Some(hash));
        assert_eq!(token_hash("short"), None);
        assert_eq!(token_hash(&"!".repeat(43)), None);
    }

    #[test]
    fn tokens_from_bearer_or_cookie() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; parley_session=tok"),
        );
        assert_eq!(session_token(&h).map(|t| t.0).as_deref(), Some("tok"));
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer xyz"),
        );
        assert_eq!(session_token(&h).map(|t| t.0).as_deref(), Some("xyz"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic xyz"));
        assert!(session_token(&h).is_none());
    }
}
