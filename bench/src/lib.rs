//! Patternscope's benchmarks: a load client on this machine drives the real release backend
//! (started here as a child process on a free port, so its memory can be read) over real
//! connections, measures with one clock, and writes what it found to `bench/RESULTS.md`
//! together with the command that produced it. `make bench` runs them all.
//!
//! # Layout
//! - [`bad_input`]: the bad-input table (per endpoint: what is sent, what it must get) and the
//!   client that tries it; `backend/tests/bad_input.rs` and the `bad-input` binary share it.
//! - [`server`]: the backend under test as a child process: free port, raised file limit,
//!   resident memory from `/proc/<pid>/status`, killed when dropped.
//! - [`subscribers`]: pub/sub subscribers on WebSockets and event streams, each reporting when
//!   every delivery reached it.
//! - [`idle`]: connections that are only held: WebSockets and event streams to the bare axum
//!   baseline (`bare-axum`).
//! - [`long_polls`]: long polls parked on raw HTTP/1.1 connections, each answer timed and kept.
//! - [`wrk`]: request/response load from `wrk`, its figures parsed.
//! - [`soak`]: connections of every kind opened and closed for a while, then the server's
//!   memory, tasks and stores checked against a baseline (`make soak`).
//! - [`class`]: a class of learners through a TLS proxy, alone and beside abusers and a
//!   slowloris, each run checked against the server's trace (`make bench-class`).
//! - [`stats`]: percentiles and the per-publish "last subscriber" latency.
//! - [`results`]: machine facts, the markdown table, and the section of `RESULTS.md` each
//!   benchmark command owns.
#![forbid(unsafe_code)]

pub mod bad_input;
pub mod class;
pub mod idle;
pub mod long_polls;
pub mod results;
pub mod server;
pub mod soak;
pub mod stats;
pub mod subscribers;
pub mod wrk;

/// Raises this process's soft limit on open files to its hard limit (children inherit it, so the
/// server started afterwards gets it too) and returns the new soft limit.
pub fn raise_open_file_limit() -> anyhow::Result<u64> {
    Ok(rlimit::increase_nofile_limit(u64::MAX)?)
}

/// Like [`raise_open_file_limit`], but first lifts the hard limit to `need` when it is lower
/// and this process may (root with `CAP_SYS_RESOURCE`); otherwise the hard limit stays.
pub fn raise_open_file_limit_to(need: u64) -> anyhow::Result<u64> {
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    if hard < need && rlimit::setrlimit(rlimit::Resource::NOFILE, need, need).is_err() {
        eprintln!("bench: cannot raise the hard limit on open files from {hard} to {need}");
    }
    raise_open_file_limit()
}
