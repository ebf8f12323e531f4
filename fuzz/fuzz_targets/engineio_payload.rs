//! Arbitrary text into the Engine.IO polling payload decoder: never a panic, and every packet
//! it accepts round-trips through its text form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley::engineio::packet::{Packet, decode_payload};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(packets) = decode_payload(text) {
        for packet in packets {
            assert_eq!(Packet::decode(&packet.encode()), Ok(packet));
        }
    }
});
