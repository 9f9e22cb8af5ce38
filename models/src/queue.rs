//! text-embeddings-inference style serving on CPU.
//!
//! ```text
//! submit() --try_send--> [bounded channel] --> tokenizer workers (N threads)
//!                                                   | prepare()
//!                                                   v
//!                                   [queue] --batch under token budget--> model thread --> reply
//! ```
//!
//! Backpressure: at most `capacity` requests are in flight (waiting for a
//! tokenizer, tokenized and queued, or in the running batch); beyond that
//! [`InferenceQueue::submit`] fails at once with [`ModelError::Overloaded`].
//! Replies go through a callback ([`InferenceQueue::submit_with`]; wire a
//! `tokio::sync::oneshot::Sender` into it for async code) or a
//! [`Pending`] handle (a `std::sync::mpsc` receiver).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{ModelError, Result};

/// A model that can sit behind an [`InferenceQueue`].
pub trait BatchModel: Send + Sync + 'static {
    /// What callers submit (a text, or a text with a prompt).
    type Request: Send + 'static;
    /// Tokenized request.
    type Input: Send + 'static;
    type Output: Send + 'static;
    /// Tokenize one request (runs on tokenizer worker threads).
    fn prepare(&self, req: &Self::Request) -> Result<Self::Input>;
    /// Token count of a prepared input (for the batch token budget).
    fn cost(input: &Self::Input) -> usize;
    /// Run one batch (runs on the model thread); one output per input, in order.
    fn run(&self, inputs: &[Self::Input]) -> Result<Vec<Self::Output>>;
}

/// Queue settings.
#[derive(Debug, Clone)]
pub struct QueueConfig {
    /// Tokenizer worker threads (default 1).
    pub tokenizer_workers: usize,
    /// Maximum requests in flight before `Overloaded` (default 512).
    pub capacity: usize,
    /// Padded-token budget of one batch: `batch_len × longest` (default 4096).
    pub max_batch_tokens: usize,
    /// Maximum requests in one batch (default 64).
    pub max_batch_size: usize,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self { tokenizer_workers: 1, capacity: 512, max_batch_tokens: 4096, max_batch_size: 64 }
    }
}

type Reply<O> = Box<dyn FnOnce(Result<O>) + Send>;

struct Job<M: BatchModel> {
    req: M::Request,
    reply: Reply<M::Output>,
}

struct Ready<M: BatchModel> {
    input: M::Input,
    reply: Reply<M::Output>,
}

struct Shared<M: BatchModel> {
    queue: Mutex<VecDeque<Ready<M>>>,
    ready: Condvar,
    stop: AtomicBool,
    in_flight: AtomicUsize,
}

/// Handle to one submitted request.
pub struct Pending<O> {
    rx: Receiver<Result<O>>,
}

impl<O> Pending<O> {
    /// Block until the result arrives.
    pub fn wait(self) -> Result<O> {
        self.rx.recv().unwrap_or(Err(ModelError::Closed))
    }

    /// Wait at most `timeout`; `None` if not ready yet.
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<O>> {
        match self.rx.recv_timeout(timeout) {
            Ok(r) => Some(r),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => Some(Err(ModelError::Closed)),
        }
    }

    /// Non-blocking poll.
    pub fn try_get(&self) -> Option<Result<O>> {
        match self.rx.try_recv() {
            Ok(r) => Some(r),
            Err(mpsc::TryRecvError::Empty) => None,
            Err(mpsc::TryRecvError::Disconnected) => Some(Err(ModelError::Closed)),
        }
    }
}

/// Tokenizer workers + batching queue + model thread around a [`BatchModel`].
/// Dropping it stops the threads after the queued work is done.
pub struct InferenceQueue<M: BatchModel> {
    tx: Option<SyncSender<Job<M>>>,
    shared: Arc<Shared<M>>,
    model: Arc<M>,
    capacity: usize,
    threads: Vec<JoinHandle<()>>,
}

impl<M: BatchModel> InferenceQueue<M> {
    pub fn new(model: M, cfg: QueueConfig) -> Self {
        Self::from_arc(Arc::new(model), cfg)
    }

    pub fn from_arc(model: Arc<M>, cfg: QueueConfig) -> Self {
        let capacity = cfg.capacity.max(1);
        let (tx, rx) = mpsc::sync_channel::<Job<M>>(capacity);
        let rx = Arc::new(Mutex::new(rx));
        let shared = Arc::new(Shared {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            stop: AtomicBool::new(false),
            in_flight: AtomicUsize::new(0),
        });
        let mut threads = Vec::new();
        for i in 0..cfg.tokenizer_workers.max(1) {
            let (rx, shared, model) = (rx.clone(), shared.clone(), model.clone());
            let h = std::thread::Builder::new()
                .name(format!("models-tokenizer-{i}"))
                .spawn(move || loop {
                    let job = match rx.lock() {
                        Ok(r) => r.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    match model.prepare(&job.req) {
                        Ok(input) => {
                            if let Ok(mut q) = shared.queue.lock() {
                                q.push_back(Ready { input, reply: job.reply });
                            }
                            shared.ready.notify_one();
                        }
                        Err(e) => {
                            shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                            (job.reply)(Err(e));
                        }
                    }
                })
                .expect("spawn tokenizer thread");
            threads.push(h);
        }
        let (shared2, model2) = (shared.clone(), model.clone());
        let h = std::thread::Builder::new()
            .name("models-inference".into())
            .spawn(move || model_loop(&*model2, &shared2, &cfg))
            .expect("spawn model thread");
        threads.push(h);
        Self { tx: Some(tx), shared, model, capacity, threads }
    }

    /// The wrapped model (e.g. for synchronous calls).
    pub fn model(&self) -> &Arc<M> {
        &self.model
    }

    /// Requests currently in flight.
    pub fn in_flight(&self) -> usize {
        self.shared.in_flight.load(Ordering::SeqCst)
    }

    /// Submit a request; `reply` is called once with the result (from a
    /// worker thread — keep it cheap, e.g. send on a channel).
    pub fn submit_with(
        &self,
        req: impl Into<M::Request>,
        reply: impl FnOnce(Result<M::Output>) + Send + 'static,
    ) -> Result<()> {
        let tx = self.tx.as_ref().ok_or(ModelError::Closed)?;
        let prev = self.shared.in_flight.fetch_add(1, Ordering::SeqCst);
        if prev >= self.capacity {
            self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
            return Err(ModelError::Overloaded { capacity: self.capacity });
        }
        let job = Job { req: req.into(), reply: Box::new(reply) };
        match tx.try_send(job) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                Err(match e {
                    TrySendError::Full(_) => ModelError::Overloaded { capacity: self.capacity },
                    TrySendError::Disconnected(_) => ModelError::Closed,
                })
            }
        }
    }

    /// Submit a request and get a [`Pending`] handle; fails at once with
    /// [`ModelError::Overloaded`] when the queue is full.
    pub fn submit(&self, req: impl Into<M::Request>) -> Result<Pending<M::Output>> {
        let (tx, rx) = mpsc::channel();
        self.submit_with(req, move |r| {
            let _ = tx.send(r);
        })?;
        Ok(Pending { rx })
    }

    /// Submit everything, waiting for room whenever the queue is full, and
    /// collect the results in order. (Under contention with other submitters
    /// an item may still come back as `Overloaded`.)
    pub fn run_all<R: Into<M::Request>>(
        &self,
        reqs: impl IntoIterator<Item = R>,
    ) -> Vec<Result<M::Output>> {
        let mut pending = Vec::new();
        for r in reqs {
            while self.in_flight() >= self.capacity {
                std::thread::sleep(Duration::from_millis(1));
            }
            let (tx, rx) = mpsc::channel();
            let tx2 = tx.clone();
            if let Err(e) = self.submit_with(r, move |res| {
                let _ = tx.send(res);
            }) {
                let _ = tx2.send(Err(e));
            }
            pending.push(Pending { rx });
        }
        pending.into_iter().map(Pending::wait).collect()
    }
}

fn model_loop<M: BatchModel>(model: &M, shared: &Shared<M>, cfg: &QueueConfig) {
    loop {
        let batch: Vec<Ready<M>> = {
            let Ok(mut q) = shared.queue.lock() else { return };
            while q.is_empty() {
                if shared.stop.load(Ordering::SeqCst) {
                    return;
                }
                q = match shared.ready.wait_timeout(q, Duration::from_millis(50)) {
                    Ok((q, _)) => q,
                    Err(_) => return,
                };
            }
            // FIFO, grow the batch while the padded size fits the budget.
            let mut batch = Vec::new();
            let mut longest = 0usize;
            while let Some(front) = q.front() {
                let c = M::cost(&front.input).max(1);
                let new_longest = longest.max(c);
                if !batch.is_empty()
                    && (batch.len() >= cfg.max_batch_size
                        || new_longest * (batch.len() + 1) > cfg.max_batch_tokens)
                {
                    break;
                }
                longest = new_longest;
                batch.push(q.pop_front().expect("front exists"));
            }
            batch
        };
        let (inputs, replies): (Vec<M::Input>, Vec<Reply<M::Output>>) =
            batch.into_iter().map(|r| (r.input, r.reply)).unzip();
        let n = replies.len();
        match model.run(&inputs) {
            Ok(outs) if outs.len() == n => {
                for (reply, out) in replies.into_iter().zip(outs) {
                    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                    reply(Ok(out));
                }
            }
            _ => {
                // isolate the failing request(s): rerun one by one
                for (input, reply) in inputs.iter().zip(replies) {
                    let r = model.run(std::slice::from_ref(input)).and_then(|mut v| {
                        v.pop().ok_or_else(|| ModelError::Input("model returned no output".into()))
                    });
                    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
                    reply(r);
                }
            }
        }
    }
}

impl<M: BatchModel> Drop for InferenceQueue<M> {
    fn drop(&mut self) {
        // closing the channel stops the tokenizer workers once it is drained
        self.tx.take();
        let model_thread = self.threads.pop();
        for h in self.threads.drain(..) {
            let _ = h.join();
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.ready.notify_all();
        if let Some(h) = model_thread {
            let _ = h.join();
        }
    }
}
