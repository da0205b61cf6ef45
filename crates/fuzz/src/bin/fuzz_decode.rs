//! AFL++ harness for `fuzz::decode`: `cargo afl fuzz -i crates/fuzz/corpus/decode -o out
//! target/release/fuzz_decode` (see `docs/TESTING.md`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        fuzz::decode(data);
    });
}
