//! Codec benchmarks: our simd-json tape walk and encoder against a serde_json baseline,
//! for a client put, a get reply, and appends of 1, 16 and 128 entries (32-character keys
//! and 32-hex-character values, like the simulator's).
//!
//! Run: `cargo bench --bench codec -- --warm-up-time 1 --measurement-time 3`
//!
//! Every decode routine first copies the datagram into a reused buffer (ours parses in
//! place, so it needs a fresh copy; the baselines pay the same copy to stay comparable).
//! Two more decoders appear in the put and 16-entry groups to justify the tape walk:
//! simd-json's serde path (same derive structs as the baseline, tape and buffers reused)
//! and simd-json's `BorrowedValue`.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use raft::NodeId;
use raft::{AppendEntries, AsEntryRef, Command, CommandRef, Entry, Log, LogIndex, Message, Term};
use replica::codec::{Body, Datagram, Decoder, encode, encode_raft};
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize};
use simd_json::prelude::*;

// ---------------------------------------------------------------------------------------
// The serde baseline: one flat borrowed struct for every type, the fastest serde shape
// (an internally tagged enum would buffer every field and could not borrow).

#[derive(Deserialize)]
struct InDatagram<'a> {
    src: &'a str,
    dst: &'a str,
    leader: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
    #[serde(rename = "MID", borrow, default)]
    mid: Option<&'a str>,
    #[serde(borrow, default)]
    key: Option<&'a str>,
    #[serde(borrow, default)]
    value: Option<&'a str>,
    #[serde(default)]
    term: Option<u64>,
    #[serde(default)]
    pli: Option<u64>,
    #[serde(default)]
    plt: Option<u64>,
    #[serde(default)]
    commit: Option<u64>,
    #[serde(default)]
    ts: Option<u64>,
    #[serde(borrow, default)]
    entries: Option<Vec<InEntry<'a>>>,
}

/// `[term]` or `[term,"key","value"]`.
struct InEntry<'a>(#[allow(dead_code)] Term, #[allow(dead_code)] CommandRef<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for InEntry<'a> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = InEntry<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("[term] or [term,key,value]")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let term: u64 = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(0, &self))?;
                let command = match seq.next_element::<&'de str>()? {
                    None => CommandRef::Noop,
                    Some(key) => {
                        let value = seq
                            .next_element()?
                            .ok_or_else(|| de::Error::invalid_length(2, &self))?;
                        CommandRef::Put { key, value }
                    }
                };
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(de::Error::invalid_length(4, &self));
                }
                Ok(InEntry(Term(term), command))
            }
        }
        deserializer.deserialize_seq(EntryVisitor)
    }
}

/// What a decoder must do beyond parsing: check the IDs. Returns something to black_box.
fn check_ids(d: &InDatagram<'_>) -> Option<(NodeId, NodeId, NodeId)> {
    Some((
        NodeId::parse(d.src)?,
        NodeId::parse(d.dst)?,
        NodeId::parse(d.leader)?,
    ))
}

#[derive(Serialize)]
struct OutDatagram<'a, E: Serialize> {
    src: &'a str,
    dst: &'a str,
    leader: &'a str,
    #[serde(rename = "type")]
    ty: &'a str,
    #[serde(rename = "MID", skip_serializing_if = "Option::is_none")]
    mid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    term: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pli: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    plt: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    commit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    entries: Option<&'a [E]>,
}

/// Serializes a log entry as `[term]`, `[term,"key","value"]` or `[term,"members"]`.
struct OutEntry(Entry);

impl Serialize for OutEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entry = self.0.as_entry_ref();
        match entry.command {
            CommandRef::Noop => {
                let mut seq = serializer.serialize_seq(Some(1))?;
                seq.serialize_element(&entry.term.0)?;
                seq.end()
            }
            CommandRef::Membership(text) => {
                let mut seq = serializer.serialize_seq(Some(2))?;
                seq.serialize_element(&entry.term.0)?;
                seq.serialize_element(text)?;
                seq.end()
            }
            CommandRef::Put { key, value } => {
                let mut seq = serializer.serialize_seq(Some(3))?;
                seq.serialize_element(&entry.term.0)?;
                seq.serialize_element(key)?;
                seq.serialize_element(value)?;
                seq.end()
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fixtures.

const CLIENT: NodeId = NodeId(0x15);
const LEADER: NodeId = NodeId(2);
const MID: &str = "4GAZQ1M2X9T7B3C5";
const KEY: &str = "Kq3xY7pLm2Vn8RtZ4bWc6HdJ9fGs1AeU";
const VALUE: &str = "8f14e45fceea167a5a36dedd4bea2543";

fn put() -> Datagram<'static> {
    Datagram {
        src: CLIENT,
        dst: LEADER,
        leader: NodeId::UNKNOWN,
        body: Body::Put {
            mid: MID,
            key: KEY,
            value: VALUE,
        },
    }
}

fn get_reply() -> Datagram<'static> {
    Datagram {
        src: LEADER,
        dst: CLIENT,
        leader: LEADER,
        body: Body::Ok {
            mid: MID,
            value: Some(VALUE),
        },
    }
}

fn log(count: usize) -> Vec<OutEntry> {
    (0..count)
        .map(|i| {
            OutEntry(Entry {
                term: Term(12),
                command: Command::Put {
                    key: format!("{KEY:.24}{i:08}").into(),
                    value: format!("{:032x}", (i as u128 + 1) * 0x9E37_79B9_7F4A_7C15).into(),
                },
            })
        })
        .collect()
}

fn append<E>(entries: E) -> Message<E> {
    Message::AppendEntries(AppendEntries {
        term: Term(12),
        prev_log_index: LogIndex(104_857),
        prev_log_term: Term(12),
        leader_commit: LogIndex(104_850),
        sent_at_us: 1_754_000_123_456,
        ack_requested: true,
        entries,
    })
}

fn hex(id: NodeId) -> [u8; 4] {
    id.to_hex()
}

fn as_str(bytes: &[u8; 4]) -> &str {
    std::str::from_utf8(bytes).expect("hex is ASCII")
}

/// The serde_json encode of a client datagram.
fn serde_client<'a>(ids: &'a [[u8; 4]; 3], d: &Datagram<'a>) -> OutDatagram<'a, OutEntry> {
    let (ty, mid, key, value) = match d.body {
        Body::Put { mid, key, value } => ("put", Some(mid), Some(key), Some(value)),
        Body::Ok { mid, value } => ("ok", Some(mid), None, value),
        _ => unreachable!("only puts and get replies are benchmarked"),
    };
    OutDatagram {
        src: as_str(&ids[0]),
        dst: as_str(&ids[1]),
        leader: as_str(&ids[2]),
        ty,
        mid,
        key,
        value,
        term: None,
        pli: None,
        plt: None,
        commit: None,
        ts: None,
        entries: None,
    }
}

fn serde_append<'a>(ids: &'a [[u8; 4]; 3], entries: &'a [OutEntry]) -> OutDatagram<'a, OutEntry> {
    OutDatagram {
        src: as_str(&ids[0]),
        dst: as_str(&ids[1]),
        leader: as_str(&ids[2]),
        ty: "ae",
        mid: None,
        key: None,
        value: None,
        term: Some(12),
        pli: Some(104_857),
        plt: Some(12),
        commit: Some(104_850),
        ts: Some(1_754_000_123_456),
        entries: Some(entries),
    }
}

// ---------------------------------------------------------------------------------------
// Decoders under test.

/// simd-json's serde path over a reused tape and buffers.
struct SimdSerde {
    buffers: simd_json::Buffers,
    tape: Option<simd_json::Tape<'static>>,
}

impl SimdSerde {
    fn decode_into<R>(&mut self, input: &mut [u8], f: impl FnOnce(&InDatagram<'_>) -> R) -> R {
        let mut tape = self.tape.take().expect("tape is returned after every use");
        let result = match simd_json::fill_tape(input, &mut self.buffers, &mut tape) {
            Ok(()) => {
                let mut deserializer = simd_json::Deserializer::from_tape(tape);
                let parsed = InDatagram::deserialize(&mut deserializer);
                let result = f(&parsed.expect("bench input is valid"));
                tape = deserializer.into_tape();
                result
            }
            Err(e) => panic!("bench input is valid: {e}"),
        };
        self.tape = Some(tape.reset());
        result
    }
}

fn borrowed_value_decode(input: &mut [u8], buffers: &mut simd_json::Buffers) -> Option<usize> {
    let value = simd_json::to_borrowed_value_with_buffers(input, buffers).ok()?;
    NodeId::parse(value.get_str("src")?)?;
    NodeId::parse(value.get_str("dst")?)?;
    NodeId::parse(value.get_str("leader")?)?;
    let ty = value.get_str("type")?;
    if ty == "ae" {
        let mut n = 0;
        for field in ["term", "pli", "plt", "commit", "ts"] {
            n += value.get_u64(field)? as usize;
        }
        for entry in value.get_array("entries")? {
            n += entry.get_idx(0)?.as_u64()? as usize;
            if let Some(key) = entry.get_idx(1) {
                n += key.as_str()?.len() + entry.get_idx(2)?.as_str()?.len();
            }
        }
        Some(n)
    } else {
        Some(value.get_str("MID")?.len() + value.get_str("key").map_or(0, str::len))
    }
}

// ---------------------------------------------------------------------------------------
// Benchmarks.

fn decode_group(c: &mut Criterion, name: &str, input: &[u8], alternatives: bool) {
    let mut group = c.benchmark_group(format!("decode/{name}"));
    group.throughput(criterion::Throughput::Bytes(input.len() as u64));
    let mut buf = input.to_vec();

    let mut decoder = Decoder::new();
    group.bench_function(BenchmarkId::new("ours_simd_tape", input.len()), |b| {
        b.iter(|| {
            buf.copy_from_slice(input);
            let datagram = decoder.decode(black_box(&mut buf)).expect("valid");
            black_box(&datagram);
        })
    });

    group.bench_function(BenchmarkId::new("serde_json", input.len()), |b| {
        b.iter(|| {
            buf.copy_from_slice(input);
            let parsed: InDatagram<'_> = serde_json::from_slice(black_box(&buf)).expect("valid");
            black_box(check_ids(&parsed));
            black_box((&parsed.ty, &parsed.mid, &parsed.key, &parsed.value));
            black_box((
                &parsed.term,
                &parsed.pli,
                &parsed.plt,
                &parsed.commit,
                &parsed.ts,
            ));
            black_box(&parsed.entries);
        })
    });

    if alternatives {
        let mut simd_serde = SimdSerde {
            buffers: simd_json::Buffers::new(input.len()),
            tape: Some(simd_json::Tape(Vec::new())),
        };
        group.bench_function(BenchmarkId::new("simd_serde_derive", input.len()), |b| {
            b.iter(|| {
                buf.copy_from_slice(input);
                simd_serde.decode_into(black_box(&mut buf), |parsed| {
                    black_box(check_ids(parsed));
                    black_box((&parsed.ty, &parsed.mid, &parsed.key, &parsed.value));
                    black_box(&parsed.entries);
                })
            })
        });

        let mut buffers = simd_json::Buffers::new(input.len());
        group.bench_function(BenchmarkId::new("simd_borrowed_value", input.len()), |b| {
            b.iter(|| {
                buf.copy_from_slice(input);
                black_box(borrowed_value_decode(black_box(&mut buf), &mut buffers)).expect("valid")
            })
        });
    }
    group.finish();
}

fn bench_decode(c: &mut Criterion) {
    let mut out = Vec::new();
    encode(&mut out, &put());
    decode_group(c, "client_put", &out, true);
    encode(&mut out, &get_reply());
    decode_group(c, "get_reply", &out, false);
    for count in [1, 16, 128] {
        let entries: Vec<Entry> = log(count).into_iter().map(|e| e.0).collect();
        encode_raft(
            &mut out,
            NodeId(0),
            NodeId(1),
            NodeId(0),
            &append(entries.as_slice()),
        );
        decode_group(c, &format!("append_{count}"), &out, count == 16);
    }
}

fn encode_client(c: &mut Criterion, name: &str, datagram: Datagram<'static>) {
    let mut group = c.benchmark_group(format!("encode/{name}"));
    let mut out = Vec::with_capacity(1024);
    group.bench_function("ours", |b| {
        b.iter(|| {
            encode(&mut out, black_box(&datagram));
            black_box(&out);
        })
    });
    group.bench_function("serde_json", |b| {
        b.iter(|| {
            let d = black_box(&datagram);
            let ids = [hex(d.src), hex(d.dst), hex(d.leader)];
            out.clear();
            serde_json::to_writer(&mut out, &serde_client(&ids, d)).expect("writes to a Vec");
            black_box(&out);
        })
    });
    group.finish();
}

fn bench_encode(c: &mut Criterion) {
    encode_client(c, "client_put", put());
    encode_client(c, "get_reply", get_reply());
    for count in [1, 16, 128] {
        let serde_entries = log(count);
        // Encoded from a log, read in place, as the leader does.
        let mut leader_log = Log::new();
        for entry in log(count) {
            leader_log.append(entry.0.as_entry_ref());
        }
        let message = append(leader_log.entries());
        let mut group = c.benchmark_group(format!("encode/append_{count}"));
        let mut out = Vec::with_capacity(64 * 1024);
        group.bench_function("ours", |b| {
            b.iter(|| {
                encode_raft(
                    &mut out,
                    NodeId(0),
                    NodeId(1),
                    NodeId(0),
                    black_box(&message),
                );
                black_box(&out);
            })
        });
        group.bench_function("serde_json", |b| {
            b.iter(|| {
                let ids = [hex(NodeId(0)), hex(NodeId(1)), hex(NodeId(0))];
                out.clear();
                let d = serde_append(&ids, black_box(&serde_entries));
                serde_json::to_writer(&mut out, &d).expect("writes to a Vec");
                black_box(&out);
            })
        });
        group.finish();
    }
}

criterion_group!(benches, bench_decode, bench_encode);
criterion_main!(benches);
