//! The built-in web UI: an expression browser (table and uPlot graph) and
//! status pages, bundled from `ui/` into `ui/dist` (see `ui/build.sh`) and
//! embedded in the binary, so serving it needs no files at run time.
//!
//! Contract: `/` redirects to `/graph`; `/graph` and `/status/{tsdb,flags,
//! rules,alerts}` answer the one page (the script reads the path);
//! `/static/*` answers the bundled script and style sheets. Everything
//! else is not the UI's.

use bytes::Bytes;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use hyper::{Response, StatusCode};

use crate::body::{full, ResponseBody};

const INDEX: &[u8] = include_bytes!("../../../ui/dist/index.html");
const APP_JS: &[u8] = include_bytes!("../../../ui/dist/app.js");
const APP_CSS: &[u8] = include_bytes!("../../../ui/dist/app.css");
const UPLOT_CSS: &[u8] = include_bytes!("../../../ui/dist/uplot.css");

/// The pages the UI answers with its one HTML page.
const PAGES: [&str; 6] = [
    "/graph",
    "/status/tsdb",
    "/status/blocks",
    "/status/flags",
    "/status/rules",
    "/status/alerts",
];

/// The UI's answer for `path`, or `None` when the path is not the UI's.
pub(crate) fn serve(path: &str) -> Option<Response<ResponseBody>> {
    let (body, kind): (&'static [u8], &str) = match path {
        "/" => {
            let mut r = full(StatusCode::FOUND, Bytes::new());
            r.headers_mut()
                .insert(LOCATION, HeaderValue::from_static("/graph"));
            return Some(r);
        }
        p if PAGES.contains(&p) => (INDEX, "text/html; charset=utf-8"),
        "/static/app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        "/static/app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "/static/uplot.css" => (UPLOT_CSS, "text/css; charset=utf-8"),
        _ => return None,
    };
    let mut r = full(StatusCode::OK, Bytes::from_static(body));
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_str(kind).ok()?);
    r.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Some(r)
}

#[cfg(test)]
mod tests {
    #[test]
    fn pages_assets_and_the_rest() {
        let r = super::serve("/").unwrap();
        assert_eq!(r.status(), 302);
        assert_eq!(r.headers()["location"], "/graph");
        for p in ["/graph", "/status/rules"] {
            let r = super::serve(p).unwrap();
            assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
        }
        assert!(super::serve("/static/app.js").is_some());
        assert!(super::serve("/static/nope.js").is_none());
        assert!(super::serve("/api/v1/query").is_none());
        assert!(super::INDEX.starts_with(b"<!doctype html>"));
        assert!(super::APP_JS.len() > 10_000, "the bundle holds uPlot");
    }
}
