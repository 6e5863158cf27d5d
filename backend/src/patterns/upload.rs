//! Whole vs chunked upload.
//!
//! - `POST /api/uploads/whole?name=&sha256=`: the whole file in one body; answered once every
//!   byte is in, with the server's SHA-256 of it.
//! - `POST /api/uploads` announces a chunked upload (name, size, SHA-256) → 201 with its id.
//!   `PUT /api/uploads/{id}?offset=N` appends one chunk, only at the offset the server has
//!   acknowledged so far (409 otherwise, naming the expected offset), so a chunk sent twice or
//!   out of order never corrupts the file. `GET /api/uploads/{id}` tells an interrupted client
//!   where to resume. After the last byte the server hashes what it assembled and says whether
//!   it matches. `DELETE /api/uploads/{id}` forgets it.
//!
//! Uploads live in memory: bounded in number and in total bytes, and forgotten after a while.

use protocol::ApiError;
use std::time::Duration;

use axum::{
    Json,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State, rejection::BytesRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use protocol::upload::{
    ChunkQuery, MAX_CHUNK_BYTES, MAX_FILE_BYTES, NewUpload, UploadId, UploadState, WholeQuery,
    sha256_hex, validate_name, validate_sha256,
};

use utoipa_axum::{
    router::{OpenApiRouter, UtoipaMethodRouterExt},
    routes,
};

use crate::{
    AppState,
    error::AppError,
    extract::{AppJson, AppQuery},
    server::{
        expiring::{CLASS_CLIENTS, Expiring, Locked, WhenFull},
        rate_limit::Client,
    },
    trace::Phases,
};

/// Chunked uploads one client may have kept at once: a finished one is kept until the page
/// leaves (or [`UPLOAD_TTL`]), so a learner can run the demo many times in a row; the bytes
/// ([`BYTES_PER_CLIENT`]) are what bounds memory.
pub const UPLOADS_PER_CLIENT: usize = 16;
/// Chunked uploads kept at once: every client's share for [`CLASS_CLIENTS`] clients (768).
pub const MAX_UPLOADS: usize = UPLOADS_PER_CLIENT * CLASS_CLIENTS;
/// Bytes one client's kept uploads may announce together: one file of the largest size.
pub const BYTES_PER_CLIENT: u64 = MAX_FILE_BYTES;
/// Bytes all kept uploads may announce together (memory, not a multiple of the share): two
/// abusers' whole shares (32 MiB) and thirty learners' 3 MiB each (the demo's image is
/// 512 KiB by default) fit in it.
pub const MAX_TOTAL_BYTES: u64 = 128 * 1024 * 1024;
/// An upload is forgotten this long after its last chunk.
pub const UPLOAD_TTL: Duration = Duration::from_secs(10 * 60);

struct Upload {
    name: String,
    size: u64,
    expected_sha256: String,
    bytes: Vec<u8>,
    /// Set once complete.
    sha256: Option<String>,
}

impl Upload {
    fn state(&self, id: &UploadId) -> UploadState {
        UploadState {
            id: Some(id.clone()),
            name: self.name.clone(),
            size: self.size,
            received: self.bytes.len() as u64,
            sha256_matches: self.sha256.as_ref().map(|s| *s == self.expected_sha256),
            sha256: self.sha256.clone(),
        }
    }
}

/// Every chunked upload in progress, bounded and expiring. Cheap to clone.
#[derive(Clone)]
pub struct UploadStore {
    /// Every upload, touched by each chunk appended: forgotten [`UPLOAD_TTL`] after its last
    /// (unless `--store-ttl` says otherwise); beyond [`UPLOADS_PER_CLIENT`] for its client or
    /// [`MAX_UPLOADS`], new ones are refused, never another's evicted. Its
    /// lock is held for a chunk's memcpy (and the final hash), never across an await.
    uploads: Expiring<UploadId, Upload>,
}

impl Default for UploadStore {
    fn default() -> Self {
        UploadStore {
            uploads: Expiring::new(UPLOAD_TTL)
                .bounded(MAX_UPLOADS, WhenFull::Refuse)
                .shared(UPLOADS_PER_CLIENT, "uploads"),
        }
    }
}

impl UploadStore {
    /// The same store, forgetting uploads untouched for `ttl`.
    pub fn with_ttl(mut self, ttl: Duration) -> UploadStore {
        self.uploads = self.uploads.with_ttl(ttl);
        self
    }

    /// The uploads, the expired ones forgotten first (so they count toward no bound).
    fn lock(&self) -> Locked<'_, UploadId, Upload> {
        let mut uploads = self.uploads.lock();
        uploads.prune();
        uploads
    }

    /// Forgets expired uploads (the periodic sweep calls it).
    pub fn prune(&self) {
        drop(self.lock());
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(announce))
        .routes(routes!(whole).layer(DefaultBodyLimit::max(MAX_FILE_BYTES as usize)))
        .routes(
            routes!(status, chunk, forget).layer(DefaultBodyLimit::max(MAX_CHUNK_BYTES as usize)),
        )
}

/// 128 random bits: the id grants access to the upload, so it must not be guessable.
fn new_upload_id() -> UploadId {
    UploadId(format!("u{:032x}", rand::random::<u128>()))
}

fn body_or_413(
    body: Result<Bytes, BytesRejection>,
    limit: u64,
    what: &str,
) -> Result<Bytes, AppError> {
    body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            AppError::PayloadTooLarge(format!("{what} is over the {limit}-byte limit"))
        }
        status => AppError::from_rejection(status, e.body_text()),
    })
}

#[utoipa::path(post, path = "/uploads/whole", tag = "upload", params(WholeQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "Received and hashed", body = UploadState),
        (status = 413, description = "File over 16 MiB", body = ApiError), (status = 422, description = "Bad name or sha256, or an empty file", body = ApiError)))]
async fn whole(
    query: Result<AppQuery<WholeQuery>, AppError>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let AppQuery(query) = query?;
    validate_name(&query.name).map_err(AppError::Unprocessable)?;
    validate_sha256(&query.sha256).map_err(AppError::Unprocessable)?;
    let body = body_or_413(body, MAX_FILE_BYTES, "the file")?;
    if body.is_empty() {
        return Err(AppError::Unprocessable("the file is empty".into()));
    }
    let mut phases = Phases::default();
    let sha256 = phases.time("hash", || sha256_hex(&body));
    let state = UploadState {
        id: None,
        name: query.name,
        size: body.len() as u64,
        received: body.len() as u64,
        sha256_matches: Some(sha256 == query.sha256),
        sha256: Some(sha256),
    };
    Ok(phases.attach(Json(state).into_response()))
}

#[utoipa::path(post, path = "/uploads", tag = "upload", request_body = NewUpload,
    responses((status = 201, description = "Announced", body = UploadState),
        (status = 400, description = "Malformed JSON", body = ApiError), (status = 413, description = "Body too large", body = ApiError), (status = 415, description = "Content-Type is not application/json", body = ApiError),
        (status = 422, description = "Wrong field types, a bad name, size or sha256", body = ApiError),
        (status = 429, description = "This client holds as many uploads or upload bytes as it may, or the server does (Retry-After)", body = ApiError)))]
async fn announce(
    State(state): State<AppState>,
    Client(client): Client,
    AppJson(new): AppJson<NewUpload>,
) -> Result<Response, AppError> {
    new.validate().map_err(AppError::Unprocessable)?;
    let mut uploads = state.uploads.lock();
    if let Some(client) = client {
        let held: u64 = uploads.held_by(client).map(|u| u.size).sum();
        if held + new.size > BYTES_PER_CLIENT {
            return Err(refused(
                format!(
                    "one client may announce {} of uploads at once; you hold {} and announce {} more: forget one (DELETE /api/uploads/{{id}}) or",
                    mib(BYTES_PER_CLIENT),
                    mib(held),
                    mib(new.size)
                ),
                uploads.retry_after(Some(client)),
            ));
        }
    }
    let announced: u64 = uploads.values().map(|u| u.size).sum();
    if announced + new.size > MAX_TOTAL_BYTES {
        return Err(refused(
            format!(
                "the server holds {} of uploads already, as many as it keeps:",
                mib(announced)
            ),
            uploads.retry_after(None),
        ));
    }
    let id = new_upload_id();
    let upload = Upload {
        name: new.name,
        size: new.size,
        expected_sha256: new.sha256,
        bytes: Vec::new(),
        sha256: None,
    };
    let answer = upload.state(&id);
    uploads.insert_for(client, id, upload)?;
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// A 429 whose message ends "… retry in N s".
fn refused(why: String, retry_after: Duration) -> AppError {
    let seconds = retry_after.as_secs_f64().ceil().max(1.0) as u64;
    AppError::RateLimited {
        message: format!("{why} retry in {seconds} s"),
        retry_after: Duration::from_secs(seconds),
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn unknown(id: &str) -> AppError {
    AppError::NotFound(format!("no upload {id:?}: unknown or expired"))
}

#[utoipa::path(get, path = "/uploads/{id}", tag = "upload",
    params(("id" = String, Path, description = "Upload id")),
    responses((status = 200, description = "What the server holds", body = UploadState),
        (status = 404, description = "Unknown or expired upload", body = ApiError)))]
async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<UploadState>, AppError> {
    let id = UploadId(id);
    let uploads = state.uploads.lock();
    let upload = uploads.get(&id).ok_or_else(|| unknown(&id.0))?;
    Ok(Json(upload.state(&id)))
}

#[utoipa::path(delete, path = "/uploads/{id}", tag = "upload",
    params(("id" = String, Path, description = "Upload id")),
    responses((status = 204, description = "Forgotten"), (status = 404, description = "Unknown or expired upload", body = ApiError)))]
async fn forget(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    match state.uploads.lock().remove(&UploadId(id.clone())) {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(unknown(&id)),
    }
}

#[utoipa::path(put, path = "/uploads/{id}", tag = "upload",
    params(("id" = String, Path, description = "Upload id"), ChunkQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 200, description = "Chunk appended", body = UploadState),
        (status = 404, description = "Unknown or expired upload", body = ApiError), (status = 409, description = "Wrong offset, or complete already", body = ApiError),
        (status = 413, description = "Chunk over 1 MiB or past the announced size", body = ApiError), (status = 422, description = "offset not a number, or an empty chunk", body = ApiError)))]
async fn chunk(
    State(state): State<AppState>,
    Path(id): Path<String>,
    query: Result<AppQuery<ChunkQuery>, AppError>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    let id = UploadId(id);
    let AppQuery(ChunkQuery { offset }) = query?;
    // The whole chunk has arrived (or the request failed) before anything is kept: an
    // interrupted chunk leaves the upload as it was.
    let body = body_or_413(body, MAX_CHUNK_BYTES, "a chunk")?;
    let mut phases = Phases::default();
    let answer = {
        let mut uploads = state.uploads.lock();
        let upload = uploads.get_mut(&id).ok_or_else(|| unknown(&id.0))?;
        let received = upload.bytes.len() as u64;
        if upload.sha256.is_some() {
            return Err(AppError::Conflict(format!(
                "upload {} is complete already",
                id.0
            )));
        }
        if offset != received {
            return Err(AppError::Conflict(format!(
                "chunk at offset {offset}, but the server has {received} bytes: send offset {received}"
            )));
        }
        if body.is_empty() {
            return Err(AppError::Unprocessable("an empty chunk".into()));
        }
        if received + body.len() as u64 > upload.size {
            return Err(AppError::PayloadTooLarge(format!(
                "this chunk ends at byte {}, past the announced size {}",
                received + body.len() as u64,
                upload.size
            )));
        }
        phases.time("append", || upload.bytes.extend_from_slice(&body));
        if upload.bytes.len() as u64 == upload.size {
            let sha = phases.time("hash", || sha256_hex(&upload.bytes));
            upload.sha256 = Some(sha);
        }
        let answer = upload.state(&id);
        uploads.touch(&id);
        answer
    };
    Ok(phases.attach(Json(answer).into_response()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untouched_uploads_expire_on_the_sweep() {
        let store = UploadStore::default().with_ttl(Duration::from_millis(40));
        store
            .lock()
            .insert_for(
                None,
                UploadId("u1".into()),
                Upload {
                    name: "a".into(),
                    size: 1,
                    expected_sha256: String::new(),
                    bytes: Vec::new(),
                    sha256: None,
                },
            )
            .unwrap();
        assert_eq!(store.len(), 1);
        std::thread::sleep(Duration::from_millis(60));
        store.prune();
        assert_eq!(store.uploads.len(), 0);
    }
}
