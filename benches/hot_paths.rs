//! Criterion micro-benchmarks for parley's hot pure paths: Socket.IO and Engine.IO codecs,
//! message records (rmp-serde), and a history page read from a real redb file.
//!
//! Run: `cargo bench --bench hot_paths`. CI only builds them (`cargo bench --no-run`).

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use parley::clock::Timestamp;
use parley::engineio::packet::{decode_payload, encode_payload};
use parley::ids::{ClientId, MessageSeq, UserId};
use parley::socketio;
use parley::store::records::Visibility;
use parley::store::records::{MessageRecord, decode, encode};
use parley::store::{Admission, NewMessage, Store};

const EVENT: &str = r#"2["message:send",{"roomId":42,"content":"Hello everyone, the deploy is done and the dashboards look green.","clientId":"123e4567-e89b-12d3-a456-426614174000"}]"#;

fn socketio_codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("socketio");
    group.throughput(Throughput::Bytes(EVENT.len() as u64));
    group.bench_function("decode_event", |b| {
        b.iter(|| socketio::decode(black_box(EVENT)))
    });
    let packet = socketio::decode(EVENT).expect("decodes");
    group.bench_function("encode_event", |b| {
        b.iter(|| socketio::encode(black_box(&packet)))
    });
    let message_json = r#"{"roomId":42,"seq":1001,"senderId":7,"content":"Hello everyone","createdAt":"2026-11-23T13:16:35.123Z","editedAt":null,"deleted":false,"replyTo":null,"attachments":[],"clientId":null}"#;
    group.bench_function("encode_broadcast", |b| {
        b.iter(|| socketio::encode_event("message:new", &[black_box(message_json)], Some("12345")))
    });
    group.finish();
}

fn engineio_payload(c: &mut Criterion) {
    let packets: Vec<String> = (0..32)
        .map(|i| format!("42[\"message:new\",{{\"seq\":{i}}}]"))
        .collect();
    let body = encode_payload(packets.iter().map(String::as_str));
    let mut group = c.benchmark_group("engineio");
    group.throughput(Throughput::Bytes(body.len() as u64));
    group.bench_function("decode_payload_32", |b| {
        b.iter(|| decode_payload(black_box(&body)))
    });
    group.bench_function("encode_payload_32", |b| {
        b.iter(|| encode_payload(black_box(&packets).iter().map(String::as_str)))
    });
    group.finish();
}

fn message_record(c: &mut Criterion) {
    let record = MessageRecord {
        sender: UserId(7),
        created_at: Timestamp(1_795_440_995_123),
        body: "Hello everyone, the deploy is done and the dashboards look green.".into(),
        attachments: Vec::new(),
        reply_to: Some(MessageSeq(1000)),
        edited_at: None,
        deleted: false,
        client_id: Some(ClientId(0x123e_4567_e89b_12d3_a456_4266_1417_4000)),
    };
    let bytes = encode(&record).expect("encode");
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode_message", |b| b.iter(|| encode(black_box(&record))));
    group.bench_function("decode_message", |b| {
        b.iter(|| decode::<MessageRecord>(black_box(&bytes)))
    });
    group.finish();
}

fn history_page(c: &mut Criterion) {
    const MESSAGES: u64 = 20_000;
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("parley.redb")).expect("open");
    let room = runtime.block_on(async {
        let (user, _) = store
            .create_user("bench".into(), "Bench".into(), "x".into(), Admission::Open)
            .await
            .expect("user");
        let (room, _) = store
            .create_room("bench".into(), Visibility::Public, None, user)
            .await
            .expect("room");
        // Concurrent sends so the writer groups them, as it does under load.
        let mut pending = Vec::new();
        for i in 0..MESSAGES {
            let store = store.clone();
            pending.push(tokio::spawn(async move {
                store
                    .append_message(NewMessage {
                        room,
                        sender: user,
                        body: format!("message number {i} with some ordinary chat text in it"),
                        client_id: None,
                        reply_to: None,
                    })
                    .await
                    .map(|_| ())
            }));
            if pending.len() >= 512 {
                for task in pending.drain(..) {
                    task.await.expect("join").expect("append");
                }
            }
        }
        for task in pending {
            task.await.expect("join").expect("append");
        }
        room
    });
    let mut group = c.benchmark_group("history");
    group.throughput(Throughput::Elements(50));
    let mut cursor = MESSAGES;
    group.bench_function("page_of_50_at_varying_cursors", |b| {
        b.iter(|| {
            // Walk cursors across the room so pages are not all the same one.
            cursor = if cursor <= 100 {
                MESSAGES
            } else {
                cursor - 977
            };
            let snapshot = store.snapshot().expect("snapshot");
            let page = snapshot
                .messages_before(room, MessageSeq(black_box(cursor)), 50)
                .expect("page");
            black_box(page.len())
        })
    });
    group.finish();
    runtime.block_on(store.close());
}

criterion_group!(
    benches,
    socketio_codec,
    engineio_payload,
    message_record,
    history_page
);
criterion_main!(benches);
