//! Encoding server WebSocket frames (RFC 6455 §5.2). Server frames are never masked, so a frame
//! is a two-to-ten byte header and the payload; the writer appends many to one buffer.

use fastwebsockets::OpCode;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
