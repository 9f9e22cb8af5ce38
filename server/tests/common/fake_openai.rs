#![allow(dead_code)]
//! The fault-injecting OpenAI-compatible endpoint of the probe tests: `testkit::replay`
//! (the same server as `pedigree-dev replay-server`) on 127.0.0.1 port 0, on its own thread and
//! runtime so that it outlives any one test runtime and keeps answering while a child process
//! is killed and restarted.

use std::collections::HashMap;
use std::sync::Arc;
use testkit::replay::{Fault, Logged, Replay};

pub struct FakeOpenAi {
    /// Base URL to give the prober, e.g. `http://127.0.0.1:PORT/v1`.
    pub base: String,
    /// The allowlist entry of this server, `127.0.0.1:PORT`.
    pub entry: String,
    pub replay: Arc<Replay>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl FakeOpenAi {
    /// Serve `answers` (prompt → answer) as `model`, with `faults` scripted per prompt marker.
    pub fn start(
        model: &str,
        answers: HashMap<String, String>,
        faults: Vec<(&str, Vec<Fault>)>,
        latency_ms: u64,
    ) -> FakeOpenAi {
        let mut r = Replay::new(model, answers);
        r.faults = faults.into_iter().map(|(m, f)| (m.to_string(), f)).collect();
        r.latency_ms = latency_ms;
        Self::serve(r)
    }

    /// Serve a replay configured by the caller (e.g. with `variants`).
    pub fn serve(r: Replay) -> FakeOpenAi {
        let replay = Arc::new(r);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let r2 = replay.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(l.local_addr().unwrap()).unwrap();
                tokio::select! {
                    _ = testkit::replay::serve(l, r2) => {},
                    _ = stop_rx => {},
                }
            });
        });
        let addr = addr_rx.recv().unwrap();
        FakeOpenAi {
            base: format!("http://{addr}/v1"),
            entry: format!("127.0.0.1:{}", addr.port()),
            replay,
            stop: Some(stop),
        }
    }

    pub fn log(&self) -> Vec<Logged> {
        self.replay.log()
    }

    /// Requests per prompt.
    pub fn counts(&self) -> HashMap<String, usize> {
        let mut m = HashMap::new();
        for l in self.log() {
            *m.entry(l.prompt).or_default() += 1;
        }
        m
    }
}

impl Drop for FakeOpenAi {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}
