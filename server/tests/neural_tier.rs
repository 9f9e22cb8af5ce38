//! Profiles with a neural tier through the HTTP API: scored with real MiniLM embeddings when
//! the weights are there, and refused with a 503 that names the missing file and the fetch
//! command when they are not. One test function: both halves set `PEDIGREE_MODELS_DIR`, which
//! is process-wide.

mod common;
use axum::http::Method;
use common::TestApp;
use detector::{FitOptions, LabeledText, Profile};

/// A small two-family corpus fitted with the embedding tier, embedded by the real model.
fn neural_profile(tier: &server::service::neural::NeuralTier) -> Profile {
    let topics = ["rivers", "bread", "chess", "volcanoes", "jazz", "tides", "bees", "glass"];
    let mut rows: Vec<(String, &str, &str, bool)> = Vec::new();
    for (i, t) in topics.iter().enumerate() {
        let calib = i % 2 == 1;
        rows.push((
            format!("Certainly! Here is an overview of {t}: they are fascinating and important."),
            "up-a",
            "openai",
            calib,
        ));
        rows.push((
            format!("Great question! {t} matter for many reasons, let me explain."),
            "up-b",
            "openai",
            calib,
        ));
        rows.push((format!("{t}? dunno, ask someone else lol"), "other-a", "other", calib));
        rows.push((format!("meh. {t} are whatever, not my thing"), "other-b", "other", calib));
    }
    let texts: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    let vecs = tier.vectors(&[detector::dense::TIER_EMBEDDING.into()], &texts).expect("embed");
    let lab = |c: bool| -> Vec<LabeledText> {
        rows.iter()
            .zip(&vecs)
            .filter(|(r, _)| r.3 == c)
            .map(|(r, v)| LabeledText {
                text: &r.0,
                model: r.1,
                family: r.2,
                dense: Some(v),
                prompt: None,
            })
            .collect()
    };
    let mut opts =
        FitOptions::lexical("neural-test", "openai", serde_json::json!({"fixture": true}));
    opts.dense_tiers = vec![detector::dense::TIER_EMBEDDING.into()];
    Profile::fit(&lab(false), &lab(true), &opts).expect("fit")
}

#[tokio::test]
async fn neural_profiles_score_with_weights_and_503_without() {
    let weights = models::ModelPaths::from_env_or_default();
    let Ok(tier) = server::service::neural::NeuralTier::load_from(&weights) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must fetch the model weights first (scripts/fetch-models.sh)"
        );
        eprintln!(
            "SKIPPED: model weights not found under {}; run scripts/fetch-models.sh",
            weights.minilm_dir.display()
        );
        return;
    };
    let bytes = neural_profile(&tier).to_bytes().unwrap();
    let body = serde_json::json!({"profile": "neural", "texts": [{"text": "Certainly! Here is an overview of maps: they are fascinating."}, {"text": "maps? dunno lol"}]});

    // With weights: 200, embeddings computed by the server's queue, the neural block in the evidence.
    let t = TestApp::new().await;
    let r = t
        .raw(
            Method::POST,
            "/v1/profiles?name=neural",
            Some(&t.admin),
            Some("application/octet-stream"),
            bytes.clone(),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = t.post_json("/v1/score", &t.analyst, body.clone()).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    let v = r.json();
    let res = v["results"].as_array().expect("results");
    assert!(res[0]["score"].as_f64().unwrap() > res[1]["score"].as_f64().unwrap(), "{v}");
    assert!(
        res[0]["evidence"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["label"] == "neural: minilm-embedding"),
        "{v}"
    );

    // Without weights: the same request is a 503 saying what is missing and how to fetch it;
    // lexical profiles keep working.
    let empty = tempfile::tempdir().unwrap();
    std::env::set_var("PEDIGREE_MODELS_DIR", empty.path());
    let t = TestApp::new().await;
    let r = t
        .raw(
            Method::POST,
            "/v1/profiles?name=neural",
            Some(&t.admin),
            Some("application/octet-stream"),
            bytes,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.text());
    let r = t.post_json("/v1/score", &t.analyst, body).await;
    assert_eq!(r.expect_error(503), "unavailable");
    let msg = r.json()["error"]["message"].as_str().unwrap().to_string();
    assert!(
        msg.contains("minilm-embedding")
            && msg.contains("fetch-models.sh")
            && msg.contains(&empty.path().display().to_string()),
        "{msg}"
    );
    let r = t
        .post_json("/v1/score", &t.analyst, serde_json::json!({"texts": [{"text": "hello there"}]}))
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text());
    std::env::remove_var("PEDIGREE_MODELS_DIR");
}
