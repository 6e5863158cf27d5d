//! Every case of the bad-input table (`bench/src/bad_input.rs`, shared with the `bad-input`
//! binary that writes it into `bench/RESULTS.md`) against a real server: each gets its 4xx with
//! the JSON error body or its WebSocket close code, none hangs, and the server is still healthy
//! afterwards.

mod common;

use bench::bad_input;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_input_gets_a_clear_answer_and_the_server_stays_healthy() {
    let server = common::TestServer::start().await;
    let base = format!("http://{}", server.addr);
    let results = bad_input::run_all(&base).await;
    assert!(results.len() > 80, "only {} cases", results.len());
    let mismatches: Vec<String> = results
        .iter()
        .filter(|(_, outcome)| !outcome.ok)
        .map(|(case, outcome)| {
            format!(
                "{} | {} | expected {} | got {}",
                case.endpoint, case.input, case.expect, outcome.got
            )
        })
        .collect();
    assert!(
        mismatches.is_empty(),
        "{} of {} cases mismatched:\n{}",
        mismatches.len(),
        results.len(),
        mismatches.join("\n")
    );
    assert!(
        bad_input::healthy(&base).await,
        "the server answers /api/health afterwards"
    );
}
