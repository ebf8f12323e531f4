//! Arbitrary sequences of client frames (opcode, fin, payload) into the fragment reassembler:
//! never a panic, never a message over the cap, every answer the one the rules in RFC 6455
//! §5.4 call for, and a well-formed fragmented message comes out as the concatenation of its
//! fragments (or is refused once, and only once, its running total passes the cap).
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley::engineio::frame::{Assembled, ClientFrame, OpCode, Reassembler, ReassemblyError};

/// Small, so that inputs of a few hundred bytes reach it often.
const CAP: usize = 64;

const OPCODES: [OpCode; 6] = [
    OpCode::Continuation,
    OpCode::Text,
    OpCode::Binary,
    OpCode::Close,
    OpCode::Ping,
    OpCode::Pong,
];

fuzz_target!(|data: &[u8]| {
    arbitrary_sequence(data);
    well_formed_message(data);
});

fn message(binary: bool, payload: Vec<u8>) -> Assembled {
    if binary {
        Assembled::Binary(payload)
    } else {
        Assembled::Text(payload)
    }
}

fn frame(fin: bool, opcode: OpCode, payload: &[u8]) -> ClientFrame {
    ClientFrame {
        fin,
        opcode,
        payload: payload.to_vec(),
    }
}

/// Each frame is a header byte (opcode in the low bits, fin in the top bit), a length byte and
/// that many payload bytes (fewer if the input runs out). A plain model of the rules predicts
/// every answer; errors do not stop the run, so what follows one is checked too.
fn arbitrary_sequence(data: &[u8]) {
    let mut reassembler = Reassembler::new(CAP);
    // The model: the open message's type (binary?) and bytes so far.
    let mut open: Option<(bool, Vec<u8>)> = None;
    let mut rest = data;
    while let [header, length, tail @ ..] = rest {
        let opcode = OPCODES[usize::from(header & 0x0f) % OPCODES.len()];
        let fin = header & 0x80 != 0;
        let take = usize::from(*length).min(tail.len());
        let (payload, tail) = tail.split_at(take);
        rest = tail;

        let expected = match opcode {
            OpCode::Close | OpCode::Ping | OpCode::Pong => Err(ReassemblyError::NotData(opcode)),
            OpCode::Text | OpCode::Binary => {
                if open.take().is_some() {
                    Err(ReassemblyError::Interleaved)
                } else if payload.len() > CAP {
                    Err(ReassemblyError::TooLarge(payload.len()))
                } else if fin {
                    Ok(Some(message(opcode == OpCode::Binary, payload.to_vec())))
                } else {
                    open = Some((opcode == OpCode::Binary, payload.to_vec()));
                    Ok(None)
                }
            }
            OpCode::Continuation => match open.take() {
                None => Err(ReassemblyError::ContinuationWithoutStart),
                Some((_, so_far)) if so_far.len() + payload.len() > CAP => {
                    Err(ReassemblyError::TooLarge(so_far.len() + payload.len()))
                }
                Some((binary, mut so_far)) => {
                    so_far.extend_from_slice(payload);
                    if fin {
                        Ok(Some(message(binary, so_far)))
                    } else {
                        open = Some((binary, so_far));
                        Ok(None)
                    }
                }
            },
        };
        let got = reassembler.push(frame(fin, opcode, payload));
        if let Ok(Some(Assembled::Text(bytes) | Assembled::Binary(bytes))) = &got {
            assert!(bytes.len() <= CAP, "a message over the cap came out");
        }
        assert_eq!(got, expected, "{opcode:?} fin={fin} len={}", payload.len());
        assert_eq!(reassembler.is_open(), open.is_some());
    }
}

/// The input as one message, cut into fragments whose sizes come from the input's own bytes
/// (empty fragments included), with a ping between some of them as a browser may send.
fn well_formed_message(data: &[u8]) {
    let Some((&first, whole)) = data.split_first() else {
        return;
    };
    let binary = first & 1 != 0;
    let opcode = if binary { OpCode::Binary } else { OpCode::Text };
    let mut reassembler = Reassembler::new(CAP);
    let mut sizes = data.iter().map(|b| usize::from(b % 8)).cycle();
    let mut offset = 0;
    let mut frames = 0;
    loop {
        // Bounded so that a run of empty fragments cannot go on for ever.
        let size = if frames > 2 * whole.len() {
            whole.len() - offset
        } else {
            sizes.next().unwrap_or(1).min(whole.len() - offset)
        };
        let fragment = &whole[offset..offset + size];
        let fin = offset + size == whole.len();
        let this_opcode = if frames == 0 {
            opcode
        } else {
            OpCode::Continuation
        };
        let got = reassembler.push(frame(fin, this_opcode, fragment));
        offset += size;
        frames += 1;
        if offset > CAP {
            assert_eq!(got, Err(ReassemblyError::TooLarge(offset)));
            assert!(!reassembler.is_open());
            return;
        }
        if fin {
            assert_eq!(got, Ok(Some(message(binary, whole.to_vec()))));
            assert!(!reassembler.is_open());
            return;
        }
        assert_eq!(got, Ok(None));
        if fragment.first().is_some_and(|b| b & 1 != 0) {
            assert_eq!(
                reassembler.push(frame(true, OpCode::Ping, b"")),
                Err(ReassemblyError::NotData(OpCode::Ping))
            );
        }
    }
}
