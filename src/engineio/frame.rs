//! WebSocket frames (RFC 6455 §5.2), both ways, as pure functions over buffers.
//!
//! Encoding: server frames are never masked, so a frame is a two-to-ten byte header and the
//! payload; the writer appends many to one buffer.
//!
//! Decoding: client frames are taken off the front of the connection's read buffer. We parse
//! them here rather than through fastwebsockets' reader because that reader keeps an 8 KiB
//! buffer per connection for the connection's whole life; ours starts at
//! [`INITIAL_READ_BUFFER`] and grows only while a large message is arriving, which is most of
//! an idle connection's memory.
//!
//! Reassembly: a message may arrive as several frames (§5.4); [`Reassembler`] joins them under
//! a total-size cap, so the reader hands whole messages up and nothing else.
//!
//! Must not: do I/O, or know Engine.IO.

use bytes::{Buf, BytesMut};
/// Re-exported because [`ClientFrame`] carries it, so callers (the fuzz targets) need no direct
/// dependency on fastwebsockets to build or match frames.
pub use fastwebsockets::OpCode;

/// What a connection's read buffer starts at (and goes back to after a large message).
pub const INITIAL_READ_BUFFER: usize = 256;
/// A read buffer larger than this is given back once it is empty.
pub const KEEP_READ_BUFFER: usize = 16 * 1024;
/// Control frames (close, ping, pong) carry at most this much (§5.5).
const MAX_CONTROL_PAYLOAD: usize = 125;

/// One client frame, unmasked.
#[derive(Debug, PartialEq, Eq)]
pub struct ClientFrame {
    pub fin: bool,
    pub opcode: OpCode,
    pub payload: Vec<u8>,
}

/// Why the bytes a client sent are not a frame we accept; the connection is closed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("reserved bits set (no extension was negotiated)")]
    ReservedBits,
    #[error("unknown opcode {0}")]
    UnknownOpcode(u8),
    #[error("client frames must be masked")]
    Unmasked,
    #[error("control frame fragmented or longer than 125 bytes")]
    BadControlFrame,
    #[error("frame of {0} bytes is over the limit")]
    TooLarge(u64),
}

/// The result of looking at the front of the read buffer.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    Frame(ClientFrame),
    /// Not a whole frame yet: the buffer must hold at least this many bytes in all.
    NeedMore(usize),
}

/// Takes one complete client frame off the front of `buffer` (removing its bytes), or says how
/// many bytes are needed. `max_payload` bounds a single frame's payload.
pub fn decode_client_frame(
    buffer: &mut BytesMut,
    max_payload: usize,
) -> Result<Decoded, FrameError> {
    if buffer.len() < 2 {
        return Ok(Decoded::NeedMore(2));
    }
    let (first, second) = (buffer[0], buffer[1]);
    if first & 0x70 != 0 {
        return Err(FrameError::ReservedBits);
    }
    let fin = first & 0x80 != 0;
    let opcode = match first & 0x0f {
        0x0 => OpCode::Continuation,
        0x1 => OpCode::Text,
        0x2 => OpCode::Binary,
        0x8 => OpCode::Close,
        0x9 => OpCode::Ping,
        0xA => OpCode::Pong,
        other => return Err(FrameError::UnknownOpcode(other)),
    };
    if second & 0x80 == 0 {
        return Err(FrameError::Unmasked);
    }
    let (length, length_bytes) = match second & 0x7f {
        126 => {
            if buffer.len() < 4 {
                return Ok(Decoded::NeedMore(4));
            }
            (u64::from(u16::from_be_bytes([buffer[2], buffer[3]])), 2)
        }
        127 => {
            if buffer.len() < 10 {
                return Ok(Decoded::NeedMore(10));
            }
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(&buffer[2..10]);
            (u64::from_be_bytes(bytes), 8)
        }
        short => (u64::from(short), 0),
    };
    let control = matches!(opcode, OpCode::Close | OpCode::Ping | OpCode::Pong);
    if control && (!fin || length > MAX_CONTROL_PAYLOAD as u64) {
        return Err(FrameError::BadControlFrame);
    }
    let length = match usize::try_from(length) {
        Ok(length) if length <= max_payload => length,
        _ => return Err(FrameError::TooLarge(length)),
    };
    let header = 2 + length_bytes + 4;
    let total = header + length;
    if buffer.len() < total {
        return Ok(Decoded::NeedMore(total));
    }
    let mut mask = [0u8; 4];
    mask.copy_from_slice(&buffer[header - 4..header]);
    buffer.advance(header);
    let mut payload = buffer.split_to(length).to_vec();
    for (i, byte) in payload.iter_mut().enumerate() {
        *byte ^= mask[i & 3];
    }
    Ok(Decoded::Frame(ClientFrame {
        fin,
        opcode,
        payload,
    }))
}

/// Appends one final (unfragmented) frame.
pub fn encode(buffer: &mut Vec<u8>, opcode: OpCode, payload: &[u8]) {
    buffer.push(0x80 | opcode as u8);
    let len = payload.len();
    if len < 126 {
        buffer.push(len as u8);
    } else if let Ok(short) = u16::try_from(len) {
        buffer.push(126);
        buffer.extend_from_slice(&short.to_be_bytes());
    } else {
        buffer.push(127);
        buffer.extend_from_slice(&(len as u64).to_be_bytes());
    }
    buffer.extend_from_slice(payload);
}

/// A close frame's payload: status code and a reason, cut to fit a control frame (125 bytes).
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    payload
}

/// A whole message put back together from its frames.
#[derive(Debug, PartialEq, Eq)]
pub enum Assembled {
    Text(Vec<u8>),
    Binary(Vec<u8>),
}

impl Assembled {
    fn payload_mut(&mut self) -> &mut Vec<u8> {
        match self {
            Assembled::Text(payload) | Assembled::Binary(payload) => payload,
        }
    }
}

/// Why a sequence of data frames is not a message we accept; the connection is closed.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReassemblyError {
    #[error("continuation frame with no fragmented message open")]
    ContinuationWithoutStart,
    #[error("new data frame while a fragmented message is open")]
    Interleaved,
    #[error("message of {0} bytes is over the limit")]
    TooLarge(usize),
    /// The caller's mistake, not the client's: see [`Reassembler`].
    #[error("{0:?} is a control frame, not part of a message")]
    NotData(OpCode),
}

/// Joins fragmented data frames into messages, at most `max_message` bytes each.
///
/// Control frames are not its business: RFC 6455 lets them arrive between the fragments of a
/// message, and the reader must answer a ping at once rather than after the message ends, so
/// the reader handles close, ping and pong itself and passes only Text, Binary and
/// Continuation frames here. A control frame passed anyway is refused with
/// [`ReassemblyError::NotData`] and leaves an open message as it was.
///
/// After any other error the open message is dropped and the next frame starts afresh; the
/// reader closes the connection on the first error, so this only keeps the type simple to
/// reason about.
#[derive(Debug)]
pub struct Reassembler {
    max_message: usize,
    /// The fragmented message being collected, if any.
    open: Option<Assembled>,
}

impl Reassembler {
    pub fn new(max_message: usize) -> Reassembler {
        Reassembler {
            max_message,
            open: None,
        }
    }

    /// Whether a fragmented message has started and not yet ended.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Takes one data frame: the message it completes, `None` if the message goes on, or why
    /// the sequence is refused.
    pub fn push(&mut self, frame: ClientFrame) -> Result<Option<Assembled>, ReassemblyError> {
        let ClientFrame {
            fin,
            opcode,
            payload,
        } = frame;
        let message = match opcode {
            OpCode::Text | OpCode::Binary => {
                if self.open.take().is_some() {
                    return Err(ReassemblyError::Interleaved);
                }
                // The frame decoder already bounds one frame by the same limit; checked again
                // so the cap holds for any caller.
                if payload.len() > self.max_message {
                    return Err(ReassemblyError::TooLarge(payload.len()));
                }
                if opcode == OpCode::Text {
                    Assembled::Text(payload)
                } else {
                    Assembled::Binary(payload)
                }
            }
            OpCode::Continuation => {
                let Some(mut message) = self.open.take() else {
                    return Err(ReassemblyError::ContinuationWithoutStart);
                };
                let collected = message.payload_mut();
                // Checked before the buffer grows: a client must not make us hold more than
                // the cap, even briefly.
                let total = collected.len().saturating_add(payload.len());
                if total > self.max_message {
                    return Err(ReassemblyError::TooLarge(total));
                }
                collected.extend_from_slice(&payload);
                message
            }
            OpCode::Close | OpCode::Ping | OpCode::Pong => {
                return Err(ReassemblyError::NotData(opcode));
            }
        };
        if fin {
            return Ok(Some(message));
        }
        self.open = Some(message);
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame, as a browser would send it.
    fn client_frame(first: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut out = vec![first];
        let len = payload.len();
        if len < 126 {
            out.push(0x80 | len as u8);
        } else if let Ok(short) = u16::try_from(len) {
            out.push(0x80 | 126);
            out.extend_from_slice(&short.to_be_bytes());
        } else {
            out.push(0x80 | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
        out
    }

    fn frame(buffer: &mut BytesMut, max: usize) -> ClientFrame {
        match decode_client_frame(buffer, max) {
            Ok(Decoded::Frame(frame)) => frame,
            other => panic!("expected a frame, got {other:?}"),
        }
    }

    #[test]
    fn decodes_every_length_form_and_unmasks() {
        for len in [0usize, 5, 125, 126, 300, 65_535, 65_536, 70_000] {
            let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let mut buffer = BytesMut::from(&client_frame(0x82, &payload, [1, 2, 3, 4])[..]);
            let got = frame(&mut buffer, 1 << 20);
            assert_eq!(
                (got.fin, got.opcode, got.payload.len()),
                (true, OpCode::Binary, len)
            );
            assert_eq!(got.payload, payload, "length {len}");
            assert!(buffer.is_empty());
        }
    }

    #[test]
    fn a_frame_arriving_byte_by_byte_waits_and_says_how_much_it_needs() {
        let bytes = client_frame(0x81, &[b'4'; 300], [9, 8, 7, 6]);
        let mut buffer = BytesMut::new();
        for (i, byte) in bytes.iter().enumerate() {
            buffer.extend_from_slice(&[*byte]);
            match decode_client_frame(&mut buffer, 1 << 20).expect("valid so far") {
                Decoded::NeedMore(n) => {
                    assert!(n > buffer.len() && n <= bytes.len(), "at byte {i}: {n}")
                }
                Decoded::Frame(f) => {
                    assert_eq!(i, bytes.len() - 1);
                    assert_eq!(f.payload, vec![b'4'; 300]);
                }
            }
        }
        assert!(buffer.is_empty());
    }

    #[test]
    fn two_frames_in_one_read_come_out_one_at_a_time() {
        let mut bytes = client_frame(0x01, b"4hel", [1, 1, 1, 1]);
        bytes.extend(client_frame(0x80, b"lo", [2, 2, 2, 2]));
        bytes.extend(client_frame(0x89, b"", [3, 3, 3, 3]));
        let mut buffer = BytesMut::from(&bytes[..]);
        let a = frame(&mut buffer, 100);
        let b = frame(&mut buffer, 100);
        let c = frame(&mut buffer, 100);
        assert_eq!(
            (a.fin, a.opcode, a.payload.as_slice()),
            (false, OpCode::Text, &b"4hel"[..])
        );
        assert_eq!(
            (b.fin, b.opcode, b.payload.as_slice()),
            (true, OpCode::Continuation, &b"lo"[..])
        );
        assert_eq!((c.opcode, c.payload.len()), (OpCode::Ping, 0));
        assert_eq!(
            decode_client_frame(&mut buffer, 100),
            Ok(Decoded::NeedMore(2))
        );
    }

    #[test]
    fn refuses_what_a_server_must_refuse() {
        let refuse =
            |bytes: Vec<u8>, max: usize| decode_client_frame(&mut BytesMut::from(&bytes[..]), max);
        assert_eq!(
            refuse(vec![0x81, 0x02, b'h', b'i'], 100),
            Err(FrameError::Unmasked)
        );
        assert_eq!(
            refuse(client_frame(0xC1, b"x", [0; 4]), 100),
            Err(FrameError::ReservedBits)
        );
        assert_eq!(
            refuse(client_frame(0x83, b"x", [0; 4]), 100),
            Err(FrameError::UnknownOpcode(3))
        );
        assert_eq!(
            refuse(client_frame(0x09, b"", [0; 4]), 100),
            Err(FrameError::BadControlFrame)
        );
        assert_eq!(
            refuse(client_frame(0x88, &[0; 126], [0; 4]), 1000),
            Err(FrameError::BadControlFrame)
        );
        assert_eq!(
            refuse(client_frame(0x82, &[0; 101], [0; 4]), 100),
            Err(FrameError::TooLarge(101))
        );
        // The limit is checked from the header alone, before the payload is buffered.
        let mut huge = vec![0x82, 0x80 | 127];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(refuse(huge, 1 << 20), Err(FrameError::TooLarge(u64::MAX)));
    }

    #[test]
    fn lengths_use_the_right_form() {
        let mut b = Vec::new();
        encode(&mut b, OpCode::Text, b"hi");
        assert_eq!(b, [0x81, 2, b'h', b'i']);
        b.clear();
        encode(&mut b, OpCode::Binary, &[0u8; 300]);
        assert_eq!(&b[..4], &[0x82, 126, 1, 44]);
        assert_eq!(b.len(), 4 + 300);
        b.clear();
        encode(&mut b, OpCode::Text, &vec![b'x'; 70_000]);
        assert_eq!(&b[..2], &[0x81, 127]);
        assert_eq!(
            u64::from_be_bytes(b[2..10].try_into().expect("8 bytes")),
            70_000
        );
    }

    #[test]
    fn close_payloads_fit_a_control_frame() {
        let p = close_payload(1000, &"é".repeat(100));
        assert!(p.len() <= 125);
        assert_eq!(&p[..2], &[0x03, 0xe8]);
        assert!(std::str::from_utf8(&p[2..]).is_ok());
    }

    fn data(fin: bool, opcode: OpCode, payload: &[u8]) -> ClientFrame {
        ClientFrame {
            fin,
            opcode,
            payload: payload.to_vec(),
        }
    }

    #[test]
    fn unfragmented_messages_pass_straight_through() {
        let mut r = Reassembler::new(100);
        assert_eq!(
            r.push(data(true, OpCode::Text, b"4hello")),
            Ok(Some(Assembled::Text(b"4hello".to_vec())))
        );
        assert_eq!(
            r.push(data(true, OpCode::Binary, &[0, 1, 255])),
            Ok(Some(Assembled::Binary(vec![0, 1, 255])))
        );
        assert_eq!(
            r.push(data(true, OpCode::Text, b"")),
            Ok(Some(Assembled::Text(Vec::new())))
        );
        assert!(!r.is_open());
    }

    #[test]
    fn fragments_are_joined_in_order_keeping_the_first_frames_type() {
        let mut r = Reassembler::new(100);
        assert_eq!(r.push(data(false, OpCode::Text, b"4he")), Ok(None));
        assert!(r.is_open());
        assert_eq!(r.push(data(false, OpCode::Continuation, b"")), Ok(None));
        assert_eq!(r.push(data(false, OpCode::Continuation, b"ll")), Ok(None));
        assert_eq!(
            r.push(data(true, OpCode::Continuation, b"o")),
            Ok(Some(Assembled::Text(b"4hello".to_vec())))
        );
        assert!(!r.is_open());

        assert_eq!(r.push(data(false, OpCode::Binary, &[1])), Ok(None));
        assert_eq!(
            r.push(data(true, OpCode::Continuation, &[2, 3])),
            Ok(Some(Assembled::Binary(vec![1, 2, 3])))
        );
        // Each message is independent of the one before.
        assert_eq!(
            r.push(data(true, OpCode::Text, b"4x")),
            Ok(Some(Assembled::Text(b"4x".to_vec())))
        );
    }

    #[test]
    fn the_cap_is_on_the_whole_message_and_inclusive() {
        let mut r = Reassembler::new(10);
        assert_eq!(r.push(data(false, OpCode::Binary, &[0; 4])), Ok(None));
        assert_eq!(r.push(data(false, OpCode::Continuation, &[0; 4])), Ok(None));
        assert_eq!(
            r.push(data(true, OpCode::Continuation, &[0; 2])),
            Ok(Some(Assembled::Binary(vec![0; 10])))
        );

        assert_eq!(r.push(data(false, OpCode::Text, &[b'a'; 4])), Ok(None));
        assert_eq!(
            r.push(data(false, OpCode::Continuation, &[b'a'; 6])),
            Ok(None)
        );
        assert_eq!(
            r.push(data(true, OpCode::Continuation, b"a")),
            Err(ReassemblyError::TooLarge(11))
        );
        assert!(!r.is_open(), "a refused message is dropped");

        // An unfragmented message is held to the same cap.
        assert_eq!(
            r.push(data(true, OpCode::Text, &[b'a'; 10])),
            Ok(Some(Assembled::Text(vec![b'a'; 10])))
        );
        assert_eq!(
            r.push(data(true, OpCode::Binary, &[0; 11])),
            Err(ReassemblyError::TooLarge(11))
        );
        assert_eq!(
            r.push(data(false, OpCode::Binary, &[0; 11])),
            Err(ReassemblyError::TooLarge(11))
        );
    }

    #[test]
    fn a_continuation_needs_a_message_to_continue() {
        let mut r = Reassembler::new(100);
        for fin in [true, false] {
            assert_eq!(
                r.push(data(fin, OpCode::Continuation, b"x")),
                Err(ReassemblyError::ContinuationWithoutStart)
            );
        }
        // Not after a message that has ended either.
        assert_eq!(r.push(data(false, OpCode::Text, b"4a")), Ok(None));
        assert!(matches!(
            r.push(data(true, OpCode::Continuation, b"b")),
            Ok(Some(_))
        ));
        assert_eq!(
            r.push(data(true, OpCode::Continuation, b"c")),
            Err(ReassemblyError::ContinuationWithoutStart)
        );
    }

    #[test]
    fn a_new_data_frame_inside_a_fragmented_message_is_refused() {
        for (opcode, fin) in [
            (OpCode::Text, true),
            (OpCode::Text, false),
            (OpCode::Binary, true),
            (OpCode::Binary, false),
        ] {
            let mut r = Reassembler::new(100);
            assert_eq!(r.push(data(false, OpCode::Text, b"4a")), Ok(None));
            assert_eq!(
                r.push(data(fin, opcode, b"b")),
                Err(ReassemblyError::Interleaved),
                "{opcode:?} fin={fin}"
            );
            assert!(!r.is_open());
        }
    }

    #[test]
    fn control_frames_are_the_readers_business_and_leave_a_message_alone() {
        let mut r = Reassembler::new(100);
        assert_eq!(r.push(data(false, OpCode::Text, b"4a")), Ok(None));
        for opcode in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
            assert_eq!(
                r.push(data(true, opcode, b"")),
                Err(ReassemblyError::NotData(opcode))
            );
            assert!(r.is_open());
        }
        assert_eq!(
            r.push(data(true, OpCode::Continuation, b"b")),
            Ok(Some(Assembled::Text(b"4ab".to_vec())))
        );
    }
}
