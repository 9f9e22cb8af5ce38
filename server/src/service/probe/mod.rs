//! Probe campaigns: send probe prompts to a suspect's OpenAI-compatible chat API, store the answers
//! as the suspect's samples, score them and update the verdict after every batch, and stop as
//! soon as the group-sequential test is confident (or the budget ends).
//!
//! - [`probesets`]: built-in identity / general probes and JSONL sets.
//! - [`allowlist`]: which `host:port` targets may be probed (admin-managed; internal addresses
//!   only when listed literally).
//! - [`client`]: the chat client (timeouts, retries with backoff + jitter honouring
//!   `Retry-After`, rate limit, streaming).
//! - the durable campaign runner (per-probe state in the store, at-most-once sending, resume) is a
//!   service: `service::campaigns`, and secrets (API keys of endpoints) are `service::secrets`.

pub mod allowlist;
pub mod client;
pub mod probesets;
pub mod retry_after;
