//! The pages a person opens in a browser, shipped inside the binary:
//! - `GET /`: the try-it page (`ui/index.html`, `ui/app.js`, `ui/app.css`):
//!   pick a model, drop images, see the top-5 and the timings;
//! - `GET /docs`: the API reference, Swagger UI (vendored from npm in
//!   `vendor/swagger-ui-dist`) rendering the served `openapi.yaml`;
//! - `GET /openapi.yaml`: the repository's spec, as built into this binary;
//! - `GET /ui/<file>`: the scripts and styles those pages load.
//!
//! Nothing is read from disk or fetched at run time. Every URL inside the
//! pages is relative, so they work behind a proxy under a path prefix.
//! `server.ui = false` leaves all of these routes out of the router.
//!
//! Every answer carries a restrictive Content-Security-Policy (scripts and
//! styles from this server only, no inline script anywhere, requests only to
//! this server) and `X-Content-Type-Options: nosniff`: if a label or model
//! name ever reached the page as markup, the browser still would not run it.

use axum::http::{header, HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

/// The try-it page and its assets: only our own files, images from the
/// user's own files (`blob:`, the thumbnails) and calls to this server.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' blob: data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// `/docs`: as [`PAGE_CSP`] without `blob:`. Swagger UI needs no
/// `'unsafe-inline'`: React sets its styles through the CSSOM, which
/// `style-src` does not govern, and tests/it/ui/ records no violation while
/// it renders, expands an operation and runs "Try it out". Its CSS draws
/// icons as `data:` SVGs.
const DOCS_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

const HTML: &str = "text/html; charset=utf-8";
const JAVASCRIPT: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
/// RFC 9512's media type for YAML.
const YAML: &str = "application/yaml";

/// One embedded file and the type it is served with.
#[derive(PartialEq, Eq)]
pub(super) struct Asset {
    content_type: &'static str,
    csp: &'static str,
    body: &'static [u8],
}

/// The type and size only: a route's `Debug` must not print 1.7 MB.
impl std::fmt::Debug for Asset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Asset")
            .field("content_type", &self.content_type)
            .field("bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

const fn asset(content_type: &'static str, body: &'static [u8]) -> Asset {
    Asset {
        content_type,
        csp: PAGE_CSP,
        body,
    }
}

pub(super) const PAGE: Asset = asset(HTML, include_bytes!("ui/index.html"));
pub(super) const DOCS: Asset = Asset {
    csp: DOCS_CSP,
    ..asset(HTML, include_bytes!("ui/docs.html"))
};
pub(super) const OPENAPI: Asset = asset(
    YAML,
    include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")),
);
pub(super) const APP_JS: Asset = asset(JAVASCRIPT, include_bytes!("ui/app.js"));
pub(super) const APP_CSS: Asset = asset(CSS, include_bytes!("ui/app.css"));
pub(super) const DOCS_JS: Asset = asset(JAVASCRIPT, include_bytes!("ui/docs.js"));
/// swagger-ui-dist 5.35.0 (vendor/swagger-ui-dist/README.md).
pub(super) const SWAGGER_JS: Asset = asset(
    JAVASCRIPT,
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/vendor/swagger-ui-dist/swagger-ui-bundle.js"
    )),
);
pub(super) const SWAGGER_CSS: Asset = asset(
    CSS,
    include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/vendor/swagger-ui-dist/swagger-ui.css"
    )),
);

/// The answer for `asset`: its bytes, type and security headers.
pub(super) fn serve(asset: &'static Asset) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(asset.csp),
            ),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            // The pages link nowhere; nothing about them needs to leave.
            (
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            ),
            // Files change with the binary, which has no version in these
            // URLs: a browser asks again rather than keeping a stale copy.
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                HeaderName::from_static("cross-origin-resource-policy"),
                HeaderValue::from_static("same-origin"),
            ),
        ],
        asset.body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pages keep the promises the CSP depends on.
    #[test]
    fn pages_have_no_inline_script_or_style_and_only_relative_urls() {
        for page in [&PAGE, &DOCS] {
            let html = std::str::from_utf8(page.body).unwrap();
            for forbidden in [
                "<style",
                " style=",
                "javascript:",
                "=\"/",
                "http:",
                "https:",
            ] {
                assert!(!html.contains(forbidden), "{forbidden:?} in a page");
            }
            assert!(!has_event_handler_attribute(html), "inline handler");
            // Every script is a file of ours.
            assert_eq!(
                html.matches("<script").count(),
                html.matches("<script src=\"ui/").count()
            );
        }
        for script in [&APP_JS, &DOCS_JS] {
            let js = std::str::from_utf8(script.body).unwrap();
            assert!(!js.contains("innerHTML"), "server text goes in as text");
            assert!(!js.contains("fetch(\"/"), "URLs stay relative");
        }
    }

    /// Whether `html` has an ` onsomething=` attribute (inline script).
    fn has_event_handler_attribute(html: &str) -> bool {
        html.match_indices(" on").any(|(at, _)| {
            let rest = &html[at + 3..];
            let name_len = rest.bytes().take_while(u8::is_ascii_lowercase).count();
            name_len > 0 && rest[name_len..].starts_with('=')
        })
    }

    #[test]
    fn the_handler_check_finds_handlers_and_not_prose() {
        assert!(has_event_handler_attribute("<img onerror=x>"));
        assert!(!has_event_handler_attribute("<p>sent on its own</p>"));
    }
}
