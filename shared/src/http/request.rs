//! What every handler reads off a request the same way: request id, API key, query parameters.

use http::{HeaderMap, HeaderName};

use crate::ids::ApiKey;

/// The response header that names the request id, as logs do.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Header names that carry the API key (HTTP header names are case-insensitive).
const KEY_HEADERS: [HeaderName; 3] = [
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("api_key"),
    HeaderName::from_static("api-key"),
];

/// The key from the `X-API-KEY`/`api_key` header, else from the `api_key` query parameter.
pub fn api_key(headers: &HeaderMap, query: Option<&str>) -> Option<ApiKey> {
    KEY_HEADERS
        .iter()
        .find_map(|name| headers.get(name))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| query_param(query, "api_key"))
        .and_then(|raw| ApiKey::presented(&raw))
}

/// A missing Content-Type is read as JSON; anything else must say JSON. `Err` holds what was sent.
pub fn require_json(headers: &HeaderMap) -> Result<(), String> {
    let Some(raw) = headers.get(http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = raw.to_str().unwrap_or_default();
    let mime = text
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime == "application/json" || mime.ends_with("+json") {
        Ok(())
    } else {
        Err(text.to_owned())
    }
}

/// The first value of `name` in a URL query string, percent-decoded.
pub fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    url::form_urlencoded::parse(query?.as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The id a request is logged and answered under: API Gateway's (from the Lambda context) when
/// there is one, else a fresh one, so local mode's requests can be told apart too.
pub fn request_id(from_context: Option<&str>) -> String {
    from_context.filter(|id| !id.is_empty()).map_or_else(
        || {
            let mut buffer = uuid::Uuid::encode_buffer();
            let id = uuid::Uuid::new_v4().hyphenated().encode_lower(&mut buffer);
            id.to_owned()
        },
        str::to_owned,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_request_id_is_kept_and_a_missing_one_is_made_up() {
        assert_eq!(request_id(Some("gw-123")), "gw-123");
        let (a, b) = (request_id(Some("")), request_id(None));
        assert!(uuid::Uuid::parse_str(&a).is_ok() && uuid::Uuid::parse_str(&b).is_ok());
        assert_ne!(a, b);
    }

    #[test]
    fn header_wins_over_query_and_any_case_works() {
        let mut headers = HeaderMap::new();
        headers.insert("X-Api-Key", "from-header".parse().unwrap());
        let key = api_key(&headers, Some("api_key=from-query")).unwrap();
        assert_eq!(key.expose(), "from-header");
        let key = api_key(&HeaderMap::new(), Some("a=1&api_key=from%20query")).unwrap();
        assert_eq!(key.expose(), "from query");
        assert!(api_key(&HeaderMap::new(), None).is_none());
    }
}
