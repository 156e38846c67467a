//! Fuzzes the binlog row decoder (and the binary JSON renderer) with arbitrary table layouts and
//! rows-event bytes: every input must decode or fail with an error, never panic or hang.
//! The input format is described in `decode_input.rs` (shared with a proptest smoke test).
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("../decode_input.rs");

fuzz_target!(|data: &[u8]| {
    decode_input(data);
});
