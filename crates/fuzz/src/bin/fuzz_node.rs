//! AFL++ harness for `fuzz::node`: `cargo afl fuzz -i crates/fuzz/corpus/node -o out
//! target/release/fuzz_node` (see `docs/TESTING.md`).

fn main() {
    afl::fuzz!(|data: &[u8]| {
        fuzz::node(data);
    });
}
