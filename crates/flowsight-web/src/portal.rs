//! The portal: a single-page app (plain JavaScript, no build step) embedded in the binary,
//! with vendored Apache ECharts and a Natural Earth world map (`portal/vendor/README.md`).
//!
//! Pages are addressed by path (`/top?dimension=dstport`, `/host/10.0.0.1`): every path that
//! is neither an API route nor an asset gets `index.html`, and the app reads its state from
//! the URL, so links can be shared and the back button works.
//!
//! Setting `FLOWSIGHT_PORTAL_DIR` to the `portal/` directory serves the files from disk
//! instead (for working on the portal without rebuilding).

use axum::extract::Path;
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

struct Asset {
    path: &'static str,
    body: &'static [u8],
    mime: &'static str,
}

macro_rules! asset {
    ($path:literal, $mime:literal) => {
        Asset {
            path: $path,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/portal/", $path)),
            mime: $mime,
        }
    };
}

/// Everything the portal loads. `index.html` is the page; the rest is under `/assets/`.
static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!(
        "vendor/echarts/echarts.min.js",
        "text/javascript; charset=utf-8"
    ),
    asset!("vendor/world/world.geo.json", "application/json"),
];

fn find(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

fn serve(path: &str) -> Option<Response> {
    let a = find(path)?;
    let body: Vec<u8> = match std::env::var_os("FLOWSIGHT_PORTAL_DIR") {
        Some(dir) => std::fs::read(std::path::Path::new(&dir).join(path)).ok()?,
        None => a.body.to_vec(),
    };
    // The vendored libraries change with flowsight's version only; the app's own files may
    // change with any build, so browsers check them again after a few minutes.
    let cache = if path.starts_with("vendor/") {
        "public, max-age=86400"
    } else if path == "index.html" {
        "no-cache"
    } else {
        "public, max-age=300"
    };
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    Some(r)
}

/// `GET /assets/{path}`.
pub(crate) async fn asset(Path(path): Path<String>) -> Response {
    if path == "index.html" {
        return crate::not_found().await.into_response();
    }
    match serve(&path) {
        Some(r) => r,
        None => crate::not_found().await.into_response(),
    }
}

/// Any other path: the app's page for GETs outside `/api` and `/metrics`, a JSON 404 for
/// the rest.
pub(crate) async fn page_or_not_found(method: Method, uri: Uri) -> Response {
    let p = uri.path();
    let api = p == "/api" || p.starts_with("/api/") || p == "/metrics";
    if !api
        && (method == Method::GET || method == Method::HEAD)
        && let Some(r) = serve("index.html")
    {
        return r;
    }
    crate::not_found().await.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_index_names_is_embedded() {
        let index = std::str::from_utf8(find("index.html").unwrap().body).unwrap();
        for a in ASSETS.iter().filter(|a| a.path != "index.html") {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
            if !a.path.ends_with(".json") {
                assert!(
                    index.contains(&format!("/assets/{}", a.path)),
                    "index.html does not load {}",
                    a.path
                );
            }
        }
    }

    #[test]
    fn the_world_map_names_countries_by_iso_code() {
        let m = std::str::from_utf8(find("vendor/world/world.geo.json").unwrap().body).unwrap();
        for cc in ["\"iso2\":\"US\"", "\"iso2\":\"DE\"", "\"iso2\":\"BR\""] {
            assert!(m.contains(cc), "{cc}");
        }
    }
}
