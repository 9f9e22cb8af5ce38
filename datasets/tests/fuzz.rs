//! Property-based fuzzing of the corpus readers (issue 14, bar: a fuzz target for every parser
//! of user input). Whatever bytes a user uploads, `datasets::open` and its iterator return
//! `Ok` / `Err` and end; they never panic.
//! Inputs are random bytes and random near-miss documents built from the formats' own tokens,
//! plain and gzip'd (whole and truncated), under every file name the detector looks at and every
//! explicit format. Bounded (256 cases per property; `PROPTEST_CASES` raises it for a longer
//! run) so that it runs with the ordinary `cargo test`.

use proptest::prelude::*;
use std::io::Write;

/// Pieces of the supported formats, so random documents often get past the first check.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\n",
    "\r\n",
    " ",
    "\\",
    "\\u0000",
    "\\ud800",
    "null",
    "true",
    "0",
    "-1",
    "1e999",
    "\"text\"",
    "\"response\"",
    "\"output\"",
    "\"completion\"",
    "\"prompt\"",
    "\"instruction\"",
    "\"id\"",
    "\"model\"",
    "\"generator\"",
    "\"question_id\"",
    "\"model_id\"",
    "\"choices\"",
    "\"turns\"",
    "\"conversations\"",
    "\"from\"",
    "\"value\"",
    "\"gpt\"",
    "\"human\"",
    "\"messages\"",
    "\"role\"",
    "\"assistant\"",
    "\"content\"",
    "\"message\"",
    "\"request\"",
    "\"body\"",
    "\"x\"",
    "\"\"",
    "text,prompt,id,model\n",
    "a,b,c\n",
    "\"a\"\"b\"",
    "\u{3000}",
    "\u{b}",
    "\u{feff}",
    "\u{fffd}",
];

const NAMES: &[&str] = &[
    "in.jsonl",
    "in.json",
    "in.csv",
    "in.txt",
    "model_outputs.json",
    "samples.jsonl",
    "in.jsonl.gz",
    "in.json.gz",
    "in.csv.gz",
    "in",
    "in.gz",
];

fn formats() -> Vec<Option<datasets::Format>> {
    use datasets::Format::*;
    vec![
        None,
        Some(Jsonl),
        Some(AlpacaEval),
        Some(FastChat),
        Some(ShareGpt),
        Some(OpenAiChat),
        Some(Csv { column: "text".into(), prompt_column: Some("prompt".into()) }),
        Some(Bench),
    ]
}

fn document() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..2048),
        proptest::collection::vec(proptest::sample::select(TOKENS), 0..200)
            .prop_map(|t| t.concat().into_bytes()),
        // A valid document with a random byte changed.
        (proptest::collection::vec(0usize..TOKENS.len(), 0..50), any::<u8>(), any::<usize>())
            .prop_map(|(ix, b, at)| {
                let mut d = br#"{"text": "a reply", "prompt": "q", "model": "m"}"#.to_vec();
                d.push(b'\n');
                d.extend(ix.iter().flat_map(|&i| TOKENS[i].bytes()));
                let at = at % d.len();
                d[at] = b;
                d
            }),
    ]
}

fn gzip(d: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(d).unwrap();
    gz.finish().unwrap()
}

/// Open and read everything (at most 10,000 records: a few KB of input cannot make more
/// unless the reader loops).
fn read_all(path: &std::path::Path, format: Option<datasets::Format>, input: &[u8]) {
    let Ok(it) = datasets::open(path, format) else { return };
    let mut n = 0;
    for rec in it {
        n += 1;
        assert!(n <= 10_000, "the reader does not end on {} input bytes", input.len());
        drop(rec);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn readers_never_panic(
        doc in document(),
        name in proptest::sample::select(NAMES),
        gz in 0u8..3,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let bytes = match gz {
            0 => doc.clone(),
            1 => gzip(&doc),
            _ => { let g = gzip(&doc); g[..g.len() / 2].to_vec() } // truncated stream
        };
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        for f in formats() {
            read_all(&path, f, &bytes);
        }
    }

    /// A directory of them (FastChat reads every `*.jsonl` in name order; a bench directory
    /// its `samples.jsonl`).
    #[test]
    fn directories_never_panic(a in document(), b in document()) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.jsonl"), &a).unwrap();
        std::fs::write(dir.path().join("samples.jsonl"), &b).unwrap();
        for f in formats() {
            read_all(dir.path(), f, &a);
        }
    }
}

/// Served-log import: `read_answers` (with and without an account filter), the per-account
/// summary and the time parser on random input: `Ok` / `Err`, never a panic.
fn served_doc() -> impl Strategy<Value = Vec<u8>> {
    let fields = proptest::sample::select(
        &[
            "\"account\"",
            "\"user\"",
            "\"created\"",
            "\"created_at\"",
            "\"timestamp\"",
            "\"2023-05-01T12:00:00Z\"",
            "\"2023-05-01 12:00:00+02:00\"",
            "\"9999-99-99T99:99:99Z\"",
            "1700000000",
            "-9223372036854775808",
            "1e308",
            "\"acct\"",
        ][..],
    );
    prop_oneof![
        document(),
        proptest::collection::vec(prop_oneof![proptest::sample::select(TOKENS), fields], 0..200)
            .prop_map(|t| t.concat().into_bytes()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn served_log_import_never_panics(doc in served_doc(), name in proptest::sample::select(NAMES)) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, &doc).unwrap();
        for account in [None, Some("acct")] {
            if let Ok(a) = datasets::read_answers(&path, None, account) {
                let s = datasets::summarize(&a);
                prop_assert!(s.iter().map(|x| x.answers).sum::<usize>() == a.len());
            }
        }
    }

    #[test]
    fn time_parser_never_panics(s in "\\PC{0,40}", t in "[0-9:T .+Zz-]{0,32}") {
        let _ = datasets::served::parse_rfc3339(&s);
        let _ = datasets::served::parse_rfc3339(&t);
    }
}
