//! The `Allow` header of the router's 405s: exactly the methods the
//! requested path accepts, read from [`ROUTES`].
//!
//! axum would list the methods of its own path, and `/v1/models/{model}`
//! (GET) and `/v1/models/{model}:predict` (POST) share one axum path (see
//! `Route::axum_path`), so its list for either would carry the other's
//! method too.

use axum::http::HeaderValue;

use super::ROUTES;

/// [`allowed_methods`] as a header value.
pub(super) fn allow_header(path: &str) -> HeaderValue {
    HeaderValue::from_str(&allowed_methods(path))
        .expect("Allow holds ROUTES' ASCII method names; this is a bug")
}

/// The `Allow` value for a request path: the methods of the documented
/// routes it matches, each GET followed by HEAD, in [`ROUTES`] order
/// (`"GET, HEAD"`, `"POST"`). Where several routes match, the most specific
/// ones win, as in the router: `/v1/models/m:predict` matches both
/// `{model}` and `{model}:predict`, and is only the latter. Empty when no
/// route matches (RFC 9110: the resource allows no methods).
pub(super) fn allowed_methods(path: &str) -> String {
    let matched: Vec<(usize, &'static str)> = ROUTES
        .iter()
        .filter_map(|route| specificity(route.path, path).map(|s| (s, route.method)))
        .collect();
    let Some(best) = matched.iter().map(|&(s, _)| s).max() else {
        return String::new();
    };
    let mut methods = Vec::new();
    for (s, method) in matched {
        if s == best && !methods.contains(&method) {
            methods.push(method);
            if method == "GET" {
                methods.push("HEAD");
            }
        }
    }
    methods.join(", ")
}

/// How many literal characters of `template` (an OpenAPI path such as
/// `/v2/models/{model}/ready`) `path` matched; `None` if it does not match.
fn specificity(template: &str, path: &str) -> Option<usize> {
    let mut templates = template.split('/');
    let mut segments = path.split('/');
    let mut literal = 0;
    loop {
        match (templates.next(), segments.next()) {
            (None, None) => return Some(literal),
            (Some(template), Some(segment)) => literal += match_segment(template, segment)?,
            _ => return None,
        }
    }
}

/// One path segment against one template segment: a literal matches
/// itself; `{name}` followed by a literal suffix (`{model}:predict`)
/// matches any non-empty segment ending in that suffix once
/// percent-decoded, as the handlers see it (`m%3Apredict` is `m:predict`).
/// Returns the literal characters matched.
fn match_segment(template: &str, segment: &str) -> Option<usize> {
    let Some((_, suffix)) = template
        .strip_prefix('{')
        .and_then(|rest| rest.split_once('}'))
    else {
        return (template == segment).then_some(template.len());
    };
    let decoded = percent_decode(segment);
    (!decoded.is_empty() && decoded.ends_with(suffix)).then_some(suffix.len())
}

/// `%XX` escapes decoded; a `%` not followed by two hex digits is kept.
fn percent_decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_merged_model_path_allows_only_its_own_method() {
        assert_eq!(allowed_methods("/v1/models/m"), "GET, HEAD");
        assert_eq!(allowed_methods("/v1/models/m:predict"), "POST");
        // As the predict handler splits it: an empty model is still predict.
        assert_eq!(allowed_methods("/v1/models/:predict"), "POST");
        assert_eq!(allowed_methods("/v1/models/m%3Apredict"), "POST");
        assert_eq!(
            allowed_methods("/v1/models/timm%2Fseresnext50_32x4d.gluon_in1k:predict"),
            "POST"
        );
        // Not the predict action: the GET handler takes it (and answers 404).
        assert_eq!(allowed_methods("/v1/models/m:explain"), "GET, HEAD");
    }

    #[test]
    fn other_paths_allow_their_documented_methods() {
        assert_eq!(allowed_methods("/healthz"), "GET, HEAD");
        assert_eq!(allowed_methods("/metrics"), "GET, HEAD");
        assert_eq!(allowed_methods("/v2"), "GET, HEAD");
        assert_eq!(allowed_methods("/v2/models/m"), "GET, HEAD");
        assert_eq!(allowed_methods("/v2/models/a:b/ready"), "GET, HEAD");
        assert_eq!(allowed_methods("/v2/models/m/infer"), "POST");
        assert_eq!(allowed_methods("/"), "GET, HEAD");
        assert_eq!(allowed_methods("/ui/app.js"), "GET, HEAD");
    }

    #[test]
    fn paths_no_route_serves_allow_nothing() {
        for path in [
            "//",
            "/nope",
            "/ui/nope.js",
            "/healthz/",
            "/v1/models/",
            "/v1/models/m/extra",
            "/v2/models/m/ready/extra",
            "/v2/models//ready",
            "/v2/models/m/READY",
        ] {
            assert_eq!(allowed_methods(path), "", "{path}");
        }
    }

    #[test]
    fn every_route_allows_its_method_on_its_own_path() {
        for route in ROUTES {
            let path = route.path.replace("{model}", "gluon_seresnext50_32x4d");
            let allow = allowed_methods(&path);
            let methods: Vec<&str> = allow.split(", ").collect();
            assert!(methods.contains(&route.method), "{route:?}: {allow:?}");
            assert_eq!(
                methods.contains(&"HEAD"),
                methods.contains(&"GET"),
                "{route:?}: {allow:?}"
            );
        }
    }

    #[test]
    fn percent_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(percent_decode("timm%2Fm%3apredict"), "timm/m:predict");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%FF"), "\u{FFFD}");
    }
}
