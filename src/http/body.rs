//! HTTP bodies, both ways, without holding large ones whole in memory.
//!
//! Responses are one `Body` type that is either a whole buffer (`full`, `empty`) or a stream
//! from any async reader such as a file (`from_reader`), read chunk by chunk as the client
//! takes it. Requests can be read the same way: `LimitedBody` yields a body's chunks and
//! refuses it the moment it passes its cap, before buffering what is over (uploads stream to
//! disk through it; `request::json_body` keeps its own 64 KiB cap for JSON).
//!
//! Must not: know routes, JSON or what a body means.

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use tokio::io::AsyncRead;
use tokio_util::io::ReaderStream;

/// Every response body parley sends. Errors are I/O errors of a streamed source; hyper ends
/// the response (and the connection) when one happens mid-body.
pub type Body = UnsyncBoxBody<Bytes, std::io::Error>;

/// A whole-buffer body.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A `Full` body from a layer that does not know this type (Engine.IO).
pub fn from_full(body: Full<Bytes>) -> Body {
    body.map_err(|never| match never {}).boxed_unsync()
}

pub fn empty() -> Body {
    full(Bytes::new())
}

/// A body streamed from `reader` in chunks of `chunk_bytes`, so a large file costs one chunk
/// of memory however big it is.
pub fn from_reader<R>(reader: R, chunk_bytes: usize) -> Body
where
    R: AsyncRead + Send + 'static,
{
    use futures_util::StreamExt as _;
    let frames =
        ReaderStream::with_capacity(reader, chunk_bytes).map(|chunk| chunk.map(Frame::data));
    StreamBody::new(frames).boxed_unsync()
}

/// Why a streamed request body was refused.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("request body is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("request body could not be read: {0}")]
    Read(String),
}

/// Reads a request body chunk by chunk under a byte cap.
pub struct LimitedBody<B> {
    inner: B,
    limit: u64,
    read: u64,
}

impl<B> LimitedBody<B>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
    B::Error: std::fmt::Display,
{
    pub fn new(inner: B, limit: u64) -> LimitedBody<B> {
        LimitedBody {
            inner,
            limit,
            read: 0,
        }
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.read
    }

    /// The next chunk of data; `None` at the end. A chunk that would take the body over its
    /// limit is refused, not returned.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        loop {
            let Some(frame) = self.inner.frame().await else {
                return Ok(None);
            };
            let frame = frame.map_err(|e| BodyError::Read(e.to_string()))?;
            // Trailers carry no data: skip them.
            let Ok(data) = frame.into_data() else {
                continue;
            };
            let total = self.read.saturating_add(data.len() as u64);
            if total > self.limit {
                return Err(BodyError::TooLarge { limit: self.limit });
            }
            self.read = total;
            if !data.is_empty() {
                return Ok(Some(data));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;

    fn chunked(
        chunks: &[&'static [u8]],
    ) -> impl hyper::body::Body<Data = Bytes, Error = Infallible> + Unpin {
        let frames: Vec<Result<Frame<Bytes>, Infallible>> = chunks
            .iter()
            .map(|c| Ok(Frame::data(Bytes::from_static(c))))
            .collect();
        StreamBody::new(futures_util::stream::iter(frames))
    }

    #[tokio::test]
    async fn limited_body_yields_chunks_up_to_its_cap() {
        let mut body = LimitedBody::new(chunked(&[b"abc", b"", b"de"]), 5);
        assert_eq!(
            body.chunk().await.expect("ok").as_deref(),
            Some(&b"abc"[..])
        );
        assert_eq!(body.chunk().await.expect("ok").as_deref(), Some(&b"de"[..]));
        assert!(body.chunk().await.expect("ok").is_none());
        assert_eq!(body.bytes_read(), 5, "exactly the cap is fine");
    }

    #[tokio::test]
    async fn limited_body_refuses_the_chunk_that_passes_its_cap() {
        let mut body = LimitedBody::new(chunked(&[b"abc", b"def"]), 5);
        assert!(body.chunk().await.expect("first fits").is_some());
        let refused = body.chunk().await.expect_err("over the cap");
        assert!(matches!(refused, BodyError::TooLarge { limit: 5 }));
        assert_eq!(
            body.bytes_read(),
            3,
            "the refused chunk is not counted as read"
        );
    }

    #[tokio::test]
    async fn a_reader_streams_in_chunks_and_arrives_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let mut body = from_reader(std::io::Cursor::new(data.clone()), 8192);
        let mut got = Vec::new();
        let mut frames = 0;
        while let Some(frame) = body.frame().await {
            let chunk = frame.expect("no error").into_data().expect("data");
            assert!(chunk.len() <= 8192, "never more than one chunk at a time");
            got.extend_from_slice(&chunk);
            frames += 1;
        }
        assert_eq!(got, data);
        assert!(frames >= 100_000 / 8192);
        let whole = full("x").collect().await.expect("full").to_bytes();
        assert_eq!(&whole[..], b"x");
    }
}
