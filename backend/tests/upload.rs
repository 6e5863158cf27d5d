//! Whole and chunked uploads with a real client: a chunked upload interrupted midway resumes
//! from the server's acknowledged offset and the checksum matches; chunks at the wrong offset,
//! past the size or for unknown uploads are refused without touching what is kept.

mod common;

use protocol::upload::{MAX_FILE_BYTES, NewUpload, UploadState, sha256_hex};
use reqwest::{Client, StatusCode};
use serde_json::Value;

fn file(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

async fn announce(client: &Client, server: &common::TestServer, bytes: &[u8]) -> UploadState {
    let response = client
        .post(server.url("/api/uploads"))
        .json(&NewUpload {
            name: "photo.bmp".into(),
            size: bytes.len() as u64,
            sha256: sha256_hex(bytes),
        })
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    response.json().await.unwrap()
}

async fn put_chunk(
    client: &Client,
    server: &common::TestServer,
    id: &str,
    offset: u64,
    chunk: &[u8],
) -> reqwest::Response {
    client
        .put(server.url(&format!("/api/uploads/{id}?offset={offset}")))
        .header("content-type", "application/octet-stream")
        .body(chunk.to_vec())
        .send()
        .await
        .unwrap()
}

/// What the server holds of upload `id` (`GET`: where a client resumes).
async fn held(client: &Client, server: &common::TestServer, id: &str) -> UploadState {
    client
        .get(server.url(&format!("/api/uploads/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn error_of(response: reqwest::Response) -> String {
    let body: Value = response.json().await.unwrap();
    body["error"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn an_interrupted_chunked_upload_resumes_from_the_servers_offset_and_the_checksum_matches() {
    let server = common::TestServer::start().await;
    let client = Client::new();
    let bytes = file(100_000);
    let created = announce(&client, &server, &bytes).await;
    let id = created.id.unwrap().0;
    assert_eq!(created.received, 0);

    // Three chunks of 16 KiB go in; then the client "loses" its place.
    let chunk = 16 * 1024;
    for i in 0..3 {
        let at = i * chunk;
        let response = put_chunk(&client, &server, &id, at as u64, &bytes[at..at + chunk]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let timing = response.headers()["server-timing"].to_str().unwrap();
        assert!(timing.starts_with("append;dur="), "{timing}");
    }
    // A chunk that was cut off in flight never reaches the handler; the server still says 48 KiB.
    let state = held(&client, &server, &id).await;
    assert_eq!(state.received, 3 * chunk as u64);
    assert_eq!(state.sha256, None);

    // Resume from there to the end.
    let mut offset = state.received as usize;
    let mut last = None;
    while offset < bytes.len() {
        let end = (offset + chunk).min(bytes.len());
        let response = put_chunk(&client, &server, &id, offset as u64, &bytes[offset..end]).await;
        assert_eq!(response.status(), StatusCode::OK);
        let state: UploadState = response.json().await.unwrap();
        assert_eq!(state.received, end as u64);
        offset = end;
        last = Some(state);
    }
    let done = last.unwrap();
    assert!(done.complete());
    assert_eq!(done.sha256.as_deref(), Some(sha256_hex(&bytes).as_str()));
    assert_eq!(done.sha256_matches, Some(true));

    // Complete is complete: a further chunk is a conflict.
    let again = put_chunk(&client, &server, &id, offset as u64, b"x").await;
    assert_eq!(again.status(), StatusCode::CONFLICT);

    // Forgotten on request.
    let gone = client
        .delete(server.url(&format!("/api/uploads/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), StatusCode::NO_CONTENT);
    let unknown = client
        .get(server.url(&format!("/api/uploads/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn wrong_chunks_are_refused_and_nothing_kept_is_corrupted() {
    let server = common::TestServer::start().await;
    let client = Client::new();
    let bytes = file(10_000);
    let id = announce(&client, &server, &bytes).await.id.unwrap().0;
    assert_eq!(
        put_chunk(&client, &server, &id, 0, &bytes[..4_000])
            .await
            .status(),
        StatusCode::OK
    );

    // Out of order (a gap), and a repeat of the first chunk: both 409, naming the offset to send.
    let gap = put_chunk(&client, &server, &id, 8_000, &bytes[8_000..]).await;
    assert_eq!(gap.status(), StatusCode::CONFLICT);
    assert!(error_of(gap).await.contains("send offset 4000"));
    let repeat = put_chunk(&client, &server, &id, 0, &bytes[..4_000]).await;
    assert_eq!(repeat.status(), StatusCode::CONFLICT);
    // Past the announced size: 413.
    let past = put_chunk(&client, &server, &id, 4_000, &file(7_000)).await;
    assert_eq!(past.status(), StatusCode::PAYLOAD_TOO_LARGE);
    // An unknown upload: 404. A bad offset: 422.
    assert_eq!(
        put_chunk(&client, &server, "u999-0", 0, b"x")
            .await
            .status(),
        StatusCode::NOT_FOUND
    );
    let bad_offset = client
        .put(server.url(&format!("/api/uploads/{id}?offset=-1")))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_offset.status(), StatusCode::UNPROCESSABLE_ENTITY);

    // The rest still goes in where it should, and the file is intact.
    let rest = put_chunk(&client, &server, &id, 4_000, &bytes[4_000..]).await;
    let state: UploadState = rest.json().await.unwrap();
    assert_eq!(state.sha256_matches, Some(true));
}

#[tokio::test]
async fn a_corrupted_file_is_reported_as_a_checksum_mismatch() {
    let server = common::TestServer::start().await;
    let client = Client::new();
    let bytes = file(5_000);
    let id = announce(&client, &server, &bytes).await.id.unwrap().0;
    let mut damaged = bytes.clone();
    damaged[2_500] ^= 0xff;
    let state: UploadState = put_chunk(&client, &server, &id, 0, &damaged)
        .await
        .json()
        .await
        .unwrap();
    assert!(state.complete());
    assert_eq!(state.sha256_matches, Some(false));
}

#[tokio::test]
async fn a_whole_upload_is_checked_and_bounded() {
    let server = common::TestServer::start().await;
    let client = Client::new();
    let bytes = file(300_000);
    let url = server.url(&format!(
        "/api/uploads/whole?name=a.bin&sha256={}",
        sha256_hex(&bytes)
    ));
    let response = client.post(&url).body(bytes.clone()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let state: UploadState = response.json().await.unwrap();
    assert_eq!((state.size, state.sha256_matches), (300_000, Some(true)));

    let too_big = vec![0u8; MAX_FILE_BYTES as usize + 1];
    let response = client.post(&url).body(too_big).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(error_of(response).await.contains("limit"));

    let bad = client
        .post(server.url("/api/uploads/whole?name=a.bin&sha256=nothex"))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let announce_bad = client
        .post(server.url("/api/uploads"))
        .json(&serde_json::json!({ "name": "a", "size": MAX_FILE_BYTES + 1, "sha256": sha256_hex(b"") }))
        .send()
        .await
        .unwrap();
    assert_eq!(announce_bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_chunk_cut_off_mid_body_is_not_kept() {
    use tokio::io::AsyncWriteExt;
    let server = common::TestServer::start().await;
    let client = Client::new();
    let bytes = file(40_000);
    let id = announce(&client, &server, &bytes).await.id.unwrap().0;
    assert_eq!(
        put_chunk(&client, &server, &id, 0, &bytes[..10_000])
            .await
            .status(),
        StatusCode::OK
    );

    // Announce a 10,000-byte chunk, send 3,000 bytes of it, then drop the connection.
    let addr = server
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "PUT /api/uploads/{id}?offset=10000 HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/octet-stream\r\ncontent-length: 10000\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&bytes[10_000..13_000]).await.unwrap();
    drop(tcp);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let state = held(&client, &server, &id).await;
    assert_eq!(
        state.received, 10_000,
        "the partial chunk left nothing behind"
    );
    let rest = put_chunk(&client, &server, &id, 10_000, &bytes[10_000..]).await;
    let done: UploadState = rest.json().await.unwrap();
    assert_eq!(done.sha256_matches, Some(true));
}
