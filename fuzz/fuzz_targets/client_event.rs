//! Arbitrary text, read as a Socket.IO event array (`["name", arg, …]`), into
//! `ClientEvent::parse`: it must never panic, and every refusal must carry one of the codes
//! the ack documents (never an empty code or message).
#![no_main]

use libfuzzer_sys::fuzz_target;
use parley::realtime::ClientEvent;

const CODES: &[&str] = &["invalid_payload", "unknown_event", "invalid_status"];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The name is tried both as given and as one of the known events, so the payload parsers
    // are reached without the fuzzer having to guess a name first.
    let (name, json) = match text.split_once('\n') {
        Some((name, json)) => (name, json),
        None => ("message:send", text),
    };
    let Ok(value) = serde_json::from_str::<serde_json::Value>(json) else {
        return;
    };
    let args = match value {
        serde_json::Value::Array(items) => items,
        other => vec![other],
    };
    for name in [
        name,
        "message:send",
        "message:edit",
        "message:delete",
        "room:read",
        "typing:start",
        "presence:set",
        "sync",
    ] {
        if let Err(error) = ClientEvent::parse(name, &args) {
            assert!(CODES.contains(&error.code()), "code {}", error.code());
            assert!(!error.public_message().is_empty());
        }
    }
});
