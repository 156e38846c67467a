//! The cargo-fuzz harness (`fuzz/decode_input.rs`) run as a property test on stable: seed corpus
//! inputs decode, and random mutations of them (and random bytes) never panic.

use proptest::prelude::*;

include!("../fuzz/decode_input.rs");

fn seeds() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/decode_rows");
    let mut v: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .expect("seed corpus")
        .map(|e| std::fs::read(e.expect("entry").path()).expect("seed"))
        .collect();
    v.sort();
    v
}

#[test]
fn seed_corpus_decodes() {
    let seeds = seeds();
    assert!(seeds.len() >= 4, "seed corpus present");
    let rows: Vec<usize> = seeds.iter().map(|s| decode_input(s)).collect();
    assert!(
        rows.iter().all(|&r| r > 0),
        "every seed is a valid event that decodes rows: {rows:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn mutated_seeds_never_panic(pick in 0usize..16, flips in prop::collection::vec((any::<usize>(), any::<u8>()), 0..6), cut in any::<usize>()) {
        let seeds = seeds();
        let mut s = seeds[pick % seeds.len()].clone();
        for (at, b) in flips {
            if !s.is_empty() {
                let i = at % s.len();
                s[i] ^= b;
            }
        }
        let len = s.len();
        s.truncate(if len == 0 { 0 } else { cut % (len + 1) });
        decode_input(&s);
    }

    #[test]
    fn random_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..300)) {
        decode_input(&data);
    }
}
