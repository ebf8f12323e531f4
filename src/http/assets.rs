//! The web client's files: everything under `assets/`, embedded into release builds with
//! rust-embed and read from disk by debug builds (rust-embed's own behaviour without its
//! `debug-embed` feature), so an edit to `assets/` shows on the next reload. Owns turning a
//! request path into a file, the content type, revalidation (ETag, `If-None-Match` → 304),
//! `Cache-Control`, gzip (compressed once per file, then cached), HEAD, and the security
//! headers of HTML pages.
//!
//! Must not: serve anything that is not a file under `assets/` (no directory listings, no
//! dotfiles, nothing reached through `..`), or shadow an API route: `http::handle` asks it
//! only about paths the route table does not know.

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Mutex, OnceLock};

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use rust_embed::RustEmbed;

use super::response::{ApiError, Body};

#[derive(RustEmbed)]
#[folder = "assets/"]
struct Assets;

/// The page a browser gets at `/`.
const INDEX: &str = "index.html";

/// Files at most this big are sent as they are: gzip's framing and the extra round of
/// decompression buy nothing on a response that fits in a packet or two.
const GZIP_MIN_BYTES: usize = 1024;

/// Longest request path looked up at all; nothing in `assets/` comes near it.
const MAX_PATH_BYTES: usize = 512;

/// The policy for every HTML page: the client is module files only (no inline script or
/// style, no `eval`), talks to its own origin only (REST and `/socket.io/`, whose WebSocket
/// URL `'self'` covers), and may not be framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// What a file is served as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Kind {
    content_type: &'static str,
    /// Text-like: worth gzipping. Images, fonts and audio are compressed already.
    compressible: bool,
}

const fn kind(content_type: &'static str, compressible: bool) -> Kind {
    Kind {
        content_type,
        compressible,
    }
}

/// Content type by extension (lowercase). Anything not listed is `application/octet-stream`,
/// which with `nosniff` a browser will neither render nor run.
fn kind_of(key: &str) -> Kind {
    let extension = key
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "html" | "htm" => kind("text/html; charset=utf-8", true),
        "js" | "mjs" => kind("text/javascript; charset=utf-8", true),
        "css" => kind("text/css; charset=utf-8", true),
        "json" | "map" => kind("application/json", true),
        "webmanifest" => kind("application/manifest+json", true),
        "txt" => kind("text/plain; charset=utf-8", true),
        "svg" => kind("image/svg+xml", true),
        "wasm" => kind("application/wasm", true),
        "ico" => kind("image/x-icon", true),
        "png" => kind("image/png", false),
        "jpg" | "jpeg" => kind("image/jpeg", false),
        "gif" => kind("image/gif", false),
        "webp" => kind("image/webp", false),
        "avif" => kind("image/avif", false),
        "woff2" => kind("font/woff2", false),
        "woff" => kind("font/woff", false),
        "mp3" => kind("audio/mpeg", false),
        "ogg" | "oga" => kind("audio/ogg", false),
        "wav" => kind("audio/wav", true),
        _ => kind("application/octet-stream", false),
    }
}

/// The embedded-file key a request path names, or `None` for a path that cannot name one.
///
/// rust-embed's lookup is already confined to `assets/` (a table lookup in release builds, a
/// canonicalised path checked against the folder in debug builds), but a path is refused here
/// before it gets that far when it is anything but plain: percent-decoding must give UTF-8
/// with no `..` or `.` segment, no empty segment, no dotfile, no backslash, NUL or other
/// control character, and only `A-Z a-z 0-9 - _ . ~ @ +` within segments.
fn asset_key(path: &str) -> Option<String> {
    if path == "/" {
        return Some(INDEX.to_owned());
    }
    if path.len() > MAX_PATH_BYTES {
        return None;
    }
    let raw = path.strip_prefix('/')?;
    let decoded = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .ok()?;
    let plain_segment = |segment: &str| {
        !segment.is_empty()
            && !segment.starts_with('.')
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.~@+".contains(&b))
    };
    if decoded.split('/').all(plain_segment) {
        Some(decoded.into_owned())
    } else {
        None
    }
}

/// Whether an `If-None-Match` value names `etag` (a quoted strong tag such as `"abc"`): `*`,
/// or a comma-separated list of entity tags compared weakly (a `W/` prefix is ignored), as
/// RFC 9110 asks for `If-None-Match` on GET and HEAD.
fn none_match(if_none_match: &str, etag: &str) -> bool {
    let mut rest = if_none_match.trim_start();
    while !rest.is_empty() {
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if let Some(after) = rest.strip_prefix('*') {
            let after = after.trim_start();
            if after.is_empty() || after.starts_with(',') {
                return true;
            }
            return false; // `*` with more after it is not a valid list: match nothing.
        }
        let tag = rest.strip_prefix("W/").unwrap_or(rest);
        let Some(opaque) = tag.strip_prefix('"') else {
            return false;
        };
        let Some(end) = opaque.find('"') else {
            return false;
        };
        // `end + 2`: both quotes, so `candidate` is the tag exactly as sent.
        let candidate = &tag[..end + 2];
        if candidate == etag {
            return true;
        }
        rest = &tag[end + 2..];
    }
    false
}

/// Whether `Accept-Encoding` allows gzip: `gzip` (or `x-gzip`) with a non-zero q, or `*` with
/// a non-zero q when gzip is not listed by name. No header, or an empty one, means identity.
fn accepts_gzip(accept_encoding: &str) -> bool {
    let mut named = None;
    let mut wildcard = None;
    for item in accept_encoding.split(',') {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let mut q_positive = true;
        for param in parts {
            if let Some((name, value)) = param.split_once('=')
                && name.trim().eq_ignore_ascii_case("q")
            {
                q_positive = value.trim().parse::<f32>().is_ok_and(|q| q > 0.0);
            }
        }
        if coding.eq_ignore_ascii_case("gzip") || coding.eq_ignore_ascii_case("x-gzip") {
            named = Some(named.unwrap_or(false) || q_positive);
        } else if coding == "*" {
            wildcard = Some(q_positive);
        }
    }
    named.or(wildcard).unwrap_or(false)
}

fn header_values(headers: &HeaderMap, name: header::HeaderName) -> Vec<&str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

fn bytes_of(data: Cow<'static, [u8]>) -> Bytes {
    match data {
        Cow::Borrowed(slice) => Bytes::from_static(slice),
        Cow::Owned(vec) => Bytes::from(vec),
    }
}

/// Gzipped bodies by the file's sha256, so each file is compressed once per process (and in a
/// debug build once per version of the file). `None`: gzip did not make it smaller.
type GzipCache = Mutex<HashMap<[u8; 32], Option<Bytes>>>;

fn gzip_cache() -> &'static GzipCache {
    static CACHE: OnceLock<GzipCache> = OnceLock::new();
    CACHE.get_or_init(GzipCache::default)
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 3), Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}

/// The gzipped form of a file, from the cache or compressed now (outside the lock: another
/// request for the same file at the same moment may compress it too, which is harmless).
fn gzipped(hash: [u8; 32], data: &[u8]) -> Option<Bytes> {
    if let Ok(cache) = gzip_cache().lock()
        && let Some(cached) = cache.get(&hash)
    {
        return cached.clone();
    }
    let compressed = match gzip(data) {
        Ok(bytes) if bytes.len() < data.len() => Some(Bytes::from(bytes)),
        Ok(_) => None,
        Err(e) => {
            tracing::warn!(error = %e, "gzip failed; sending the file uncompressed");
            return None;
        }
    };
    if let Ok(mut cache) = gzip_cache().lock() {
        cache.insert(hash, compressed.clone());
    }
    compressed
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Serves the embedded file `path` names. `None` when it names none (the caller answers with
/// the usual JSON 404); 405 for a file asked for with a method other than GET or HEAD.
pub fn serve(method: &Method, path: &str, headers: &HeaderMap) -> Option<Response<Body>> {
    let Some(key) = asset_key(path) else {
        tracing::debug!(%path, "static path refused");
        return None;
    };
    let file = Assets::get(&key)?;
    if method != Method::GET && method != Method::HEAD {
        let mut error = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{method} is not allowed on {path}; use GET, HEAD"),
        );
        error.allow = Some("GET, HEAD".to_owned());
        return Some(error.into_response());
    }

    let kind = kind_of(&key);
    let hash = file.metadata.sha256_hash();
    let data = bytes_of(file.data);
    let tag = hex(&hash[..16]);
    let identity_etag = format!("\"{tag}\"");
    let gzip_etag = format!("\"{tag}-gzip\"");
    // Only here does the answer depend on Accept-Encoding, so only here do caches need Vary.
    let varies = kind.compressible && data.len() > GZIP_MIN_BYTES;
    let compressed = if varies
        && header_values(headers, header::ACCEPT_ENCODING)
            .iter()
            .any(|v| accepts_gzip(v))
    {
        gzipped(hash, &data)
    } else {
        None
    };
    let is_gzip = compressed.is_some();
    let current = if is_gzip { &gzip_etag } else { &identity_etag };

    // A 304 names the tag the client already holds: either representation is current, since
    // both are the same file.
    let held = header_values(headers, header::IF_NONE_MATCH)
        .iter()
        .find_map(|value| {
            [current, &identity_etag, &gzip_etag]
                .into_iter()
                .find(|candidate| none_match(value, candidate))
        });
    let (status, etag, body) = match held {
        Some(held) => (StatusCode::NOT_MODIFIED, held, None),
        None => (StatusCode::OK, current, Some(compressed.unwrap_or(data))),
    };
    let mut response = Response::new(super::body::empty());
    *response.status_mut() = status;
    let out = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag) {
        out.insert(header::ETAG, value);
    }
    // File names carry no content hash, so a browser may not keep using its copy on its own
    // say-so after a deploy: `no-cache` lets it store the file but makes it revalidate every
    // use, which costs one 304 round trip and never serves a stale client.
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if varies {
        out.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    }
    if kind.content_type.starts_with("text/html") {
        out.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        );
        out.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
    }
    let Some(body) = body else {
        return Some(response);
    };
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(kind.content_type),
    );
    if is_gzip {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    if method == Method::GET {
        *response.body_mut() = super::body::full(body);
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_paths_map_to_keys_and_weird_ones_are_refused() {
        assert_eq!(asset_key("/").as_deref(), Some("index.html"));
        assert_eq!(asset_key("/index.html").as_deref(), Some("index.html"));
        assert_eq!(
            asset_key("/js/realtime.js").as_deref(),
            Some("js/realtime.js")
        );
        assert_eq!(asset_key("/app%2Ecss").as_deref(), Some("app.css"));
        for bad in [
            "",
            "index.html",
            "/..",
            "/../Cargo.toml",
            "/js/../../Cargo.toml",
            "/%2e%2e/Cargo.toml",
            "/%2E%2E/Cargo.toml",
            "/js/..%2f..%2fCargo.toml",
            "/js/%2e%2e%2f%2e%2e%2fCargo.toml",
            "/..\\Cargo.toml",
            "/js%5c..%5c..%5cCargo.toml",
            "/index.html%00",
            "/index.html%00.js",
            "/js/",
            "//etc/passwd",
            "/js//realtime.js",
            "/./index.html",
            "/.git/config",
            "/js/.hidden",
            "/%ff%fe",
            "/%252e%252e/Cargo.toml",
            "/a b",
            "/C:/Windows",
        ] {
            assert_eq!(asset_key(bad), None, "{bad:?}");
        }
        assert_eq!(asset_key(&format!("/{}", "a".repeat(MAX_PATH_BYTES))), None);
    }

    #[test]
    fn if_none_match_lists_wildcards_and_weak_tags() {
        let etag = "\"abc\"";
        assert!(none_match("\"abc\"", etag));
        assert!(none_match("W/\"abc\"", etag));
        assert!(none_match("\"x\", \"abc\"", etag));
        assert!(none_match("\"x\",W/\"abc\" , \"y\"", etag));
        assert!(none_match("*", etag));
        assert!(none_match(" * ", etag));
        assert!(!none_match("\"abcd\"", etag));
        assert!(!none_match("\"ABC\"", etag));
        assert!(!none_match("abc", etag));
        assert!(!none_match("", etag));
        assert!(!none_match("\"abc", etag));
        assert!(
            !none_match("w/\"abc\"", etag),
            "the W/ prefix is case-sensitive"
        );
        // A comma inside a foreign tag does not split it.
        assert!(!none_match("\"x,\"abc\"\"", etag));
        assert!(!none_match("*abc", etag));
    }

    #[test]
    fn accept_encoding_allows_gzip_only_with_positive_q() {
        for yes in [
            "gzip",
            "GZip",
            "gzip, deflate, br",
            "br;q=1.0, gzip;q=0.5",
            "x-gzip",
            "*",
            "identity, *;q=0.1",
            "gzip;q=0, gzip;q=1",
        ] {
            assert!(accepts_gzip(yes), "{yes:?}");
        }
        for no in [
            "",
            "identity",
            "br, deflate",
            "gzip;q=0",
            "gzip; q=0.000",
            "gzip;q=0, *",
            "*;q=0",
            "gzip;q=nonsense",
            "gzipper",
        ] {
            assert!(!accepts_gzip(no), "{no:?}");
        }
    }

    #[test]
    fn content_types_by_extension() {
        let of = |key: &str| kind_of(key).content_type;
        assert_eq!(of("index.html"), "text/html; charset=utf-8");
        assert_eq!(of("js/main.js"), "text/javascript; charset=utf-8");
        assert_eq!(of("js/lib.mjs"), "text/javascript; charset=utf-8");
        assert_eq!(of("app.css"), "text/css; charset=utf-8");
        assert_eq!(of("i18n/zh.json"), "application/json");
        assert_eq!(of("manifest.webmanifest"), "application/manifest+json");
        assert_eq!(of("icon.svg"), "image/svg+xml");
        assert_eq!(of("icon.PNG"), "image/png");
        assert_eq!(of("favicon.ico"), "image/x-icon");
        assert_eq!(of("fonts/inter.woff2"), "font/woff2");
        assert_eq!(of("README"), "application/octet-stream");
        assert_eq!(of("archive.tar.gz"), "application/octet-stream");
        assert!(kind_of("app.css").compressible);
        assert!(!kind_of("icon.png").compressible);
        assert!(!kind_of("fonts/inter.woff2").compressible);
    }

    #[test]
    fn the_client_files_are_there_and_gzip_is_computed_once() {
        let index = Assets::get(INDEX).expect("assets/index.html");
        assert!(!index.data.is_empty());
        let module = Assets::get("js/realtime.js").expect("assets/js/realtime.js");
        let hash = module.metadata.sha256_hash();
        let first = gzipped(hash, &module.data).expect("the module gzips smaller");
        let second = gzipped(hash, &module.data).expect("cached");
        assert_eq!(
            first.as_ptr(),
            second.as_ptr(),
            "the second call reuses the bytes"
        );
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&first[..]), &mut plain)
            .expect("gunzip");
        assert_eq!(plain, &module.data[..]);
        assert!(Assets::get("../Cargo.toml").is_none());
    }
}
