//! Whole vs chunked upload. A chunked upload is announced first (name, size, SHA-256 of the
//! whole file), then sent as chunks, each a `PUT` at the byte offset the server has acknowledged
//! so far; after an interruption the client asks the server for that offset and resumes there.
//! When the last byte arrives the server hashes what it assembled and says whether it matches.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The largest file either kind of upload accepts (a 413 beyond).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Chunk sizes a chunked upload may use.
pub const MIN_CHUNK_BYTES: u64 = 1024;
pub const MAX_CHUNK_BYTES: u64 = 1024 * 1024;
/// Longest file name kept.
pub const MAX_NAME_CHARS: usize = 200;

/// Names one chunked upload on the server.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct UploadId(pub String);

/// `POST /api/uploads`: announces a chunked upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewUpload {
    pub name: String,
    /// Size of the whole file in bytes.
    pub size: u64,
    /// SHA-256 of the whole file, lower-case hex, as the client computed it.
    pub sha256: String,
}

impl NewUpload {
    /// The first problem with this announcement, if any, naming the field.
    pub fn validate(&self) -> Result<(), String> {
        validate_name(&self.name)?;
        validate_sha256(&self.sha256)?;
        if self.size == 0 || self.size > MAX_FILE_BYTES {
            return Err(format!(
                "size must be between 1 and {MAX_FILE_BYTES} bytes, got {}",
                self.size
            ));
        }
        Ok(())
    }
}

/// `POST /api/uploads/whole?name=…&sha256=…`: the whole file in one request body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct WholeQuery {
    pub name: String,
    pub sha256: String,
}

/// `PUT /api/uploads/{id}?offset=N`: where this chunk starts in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema, utoipa::IntoParams))]
#[cfg_attr(feature = "openapi", into_params(parameter_in = Query))]
pub struct ChunkQuery {
    pub offset: u64,
}

/// What the server holds of an upload: every answer of the upload endpoints.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadState {
    /// `None` for a whole upload, which is not kept for resuming.
    pub id: Option<UploadId>,
    pub name: String,
    pub size: u64,
    /// Bytes acknowledged so far: the offset the next chunk must start at.
    pub received: u64,
    /// Once every byte is in: the SHA-256 of what the server assembled, and whether it equals
    /// the one the client announced.
    pub sha256: Option<String>,
    pub sha256_matches: Option<bool>,
}

impl UploadState {
    pub fn complete(&self) -> bool {
        self.received == self.size
    }
}

/// SHA-256 of `bytes`, lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn validate_name(name: &str) -> Result<(), String> {
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS || name.chars().any(char::is_control) {
        return Err(format!(
            "name must be 1 to {MAX_NAME_CHARS} characters without control characters"
        ));
    }
    Ok(())
}

pub fn validate_sha256(hex: &str) -> Result<(), String> {
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err("sha256 must be 64 lower-case hex digits".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_a_known_text() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn announcements_are_checked_field_by_field() {
        let ok = NewUpload {
            name: "a.bin".into(),
            size: 10,
            sha256: sha256_hex(b"x"),
        };
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: fn(&mut NewUpload)| {
            let mut u = ok.clone();
            f(&mut u);
            u.validate().unwrap_err()
        };
        assert!(bad(|u| u.size = 0).contains("size"));
        assert!(bad(|u| u.size = MAX_FILE_BYTES + 1).contains("size"));
        assert!(bad(|u| u.name = String::new()).contains("name"));
        assert!(bad(|u| u.name = "a\nb".into()).contains("name"));
        assert!(bad(|u| u.sha256 = "ABC".into()).contains("sha256"));
        assert!(bad(|u| u.sha256 = u.sha256.to_uppercase()).contains("sha256"));
    }
}
