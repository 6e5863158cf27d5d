//! Serves the built frontend; unknown paths get `index.html` so deep links survive a reload.

use std::path::Path;

use tower_http::services::{ServeDir, ServeFile};

pub fn service(dist: &Path) -> ServeDir<ServeFile> {
    ServeDir::new(dist).fallback(ServeFile::new(dist.join("index.html")))
}
