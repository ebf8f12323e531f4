//! Arbitrary bytes from a client into the WebSocket frame decoder, as if they arrived on a
//! connection: never a panic, never a frame over the limit, and every call either takes bytes
//! off the buffer or asks for more than it has.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use parley::engineio::frame::{Decoded, decode_client_frame};

const MAX_PAYLOAD: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut buffer = BytesMut::from(data);
    loop {
        let before = buffer.len();
        match decode_client_frame(&mut buffer, MAX_PAYLOAD) {
            Ok(Decoded::Frame(frame)) => {
                assert!(frame.payload.len() <= MAX_PAYLOAD);
                assert!(buffer.len() < before, "a frame must consume bytes");
            }
            Ok(Decoded::NeedMore(total)) => {
                assert!(total > buffer.len());
                assert_eq!(buffer.len(), before, "asking for more must not consume");
                break;
            }
            Err(_) => break,
        }
    }
});
