//! Arbitrary text into the Socket.IO decoder: it must never panic, and whatever it accepts
//! must encode back to something that decodes to the same packet.
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley::socketio;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(packet) = socketio::decode(text) {
        let again = socketio::encode(&packet);
        let reparsed = socketio::decode(&again).expect("an encoded packet decodes");
        assert_eq!(reparsed, packet);
        let _ = packet.event();
    }
});
