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
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
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

/// A strong validator of `body` (FNV-1a, 64 bits): browsers revalidate every load and get
/// 304 while the file is unchanged, so an upgrade is picked up at once and the 1 MB of
/// ECharts is not sent again.
fn etag(body: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in body {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    format!("\"{h:016x}\"")
}

fn serve(path: &str, if_none_match: Option<&HeaderValue>) -> Option<Response> {
    static TAGS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let a = find(path)?;
    let (body, tag): (Vec<u8>, String) = match std::env::var_os("FLOWSIGHT_PORTAL_DIR") {
        Some(dir) => {
            let b = std::fs::read(std::path::Path::new(&dir).join(path)).ok()?;
            let t = etag(&b);
            (b, t)
        }
        None => {
            let tags = TAGS.get_or_init(|| ASSETS.iter().map(|a| etag(a.body)).collect());
            let i = ASSETS.iter().position(|x| x.path == a.path)?;
            (a.body.to_vec(), tags[i].clone())
        }
    };
    let fresh = if_none_match
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    let mut r = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (StatusCode::OK, body).into_response()
    };
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&tag) {
        h.insert(header::ETAG, v);
    }
    Some(r)
}

/// `GET /assets/{path}`.
pub(crate) async fn asset(Path(path): Path<String>, headers: HeaderMap) -> Response {
    if path == "index.html" {
        return crate::not_found().await.into_response();
    }
    match serve(&path, headers.get(header::IF_NONE_MATCH)) {
        Some(r) => r,
        None => crate::not_found().await.into_response(),
    }
}

/// Any other path: the app's page for GETs outside `/api` and `/metrics`, a JSON 404 for
/// the rest.
pub(crate) async fn page_or_not_found(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let p = uri.path();
    let api = p == "/api" || p.starts_with("/api/") || p == "/metrics";
    if !api
        && (method == Method::GET || method == Method::HEAD)
        && let Some(r) = serve("index.html", headers.get(header::IF_NONE_MATCH))
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
    fn unchanged_assets_are_not_sent_again() {
        let r = serve("app.js", None).unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        let tag = r.headers().get(header::ETAG).unwrap().clone();
        assert_eq!(
            serve("app.js", Some(&tag)).unwrap().status(),
            StatusCode::NOT_MODIFIED
        );
        let other = HeaderValue::from_static("\"0000000000000000\"");
        assert_eq!(
            serve("app.js", Some(&other)).unwrap().status(),
            StatusCode::OK
        );
        // FNV-1a 64 of "a" (the published test vector).
        assert_eq!(etag(b"a"), "\"af63dc4c8601ec8c\"");
    }

    #[test]
    fn the_world_map_names_countries_by_iso_code() {
        let m = std::str::from_utf8(find("vendor/world/world.geo.json").unwrap().body).unwrap();
        for cc in ["\"iso2\":\"US\"", "\"iso2\":\"DE\"", "\"iso2\":\"BR\""] {
            assert!(m.contains(cc), "{cc}");
        }
    }
}
