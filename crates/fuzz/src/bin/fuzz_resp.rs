//! AFL++ harness for `fuzz::resp`: `cargo afl fuzz -i crates/fuzz/corpus/resp -o out
//! target/release/fuzz_resp` (see `docs/TESTING.md`).

fn main() {
    afl::fuzz!(|data: &[u8]| fuzz::resp(data));
}
