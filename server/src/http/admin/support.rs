//! What the admin handlers share: versions as `ETag`/`If-Match`, bounded pages and opaque
//! cursors, ids from paths.
use super::problem::Problem;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use uuid::Uuid;

/// Items per page unless the caller asks for another number.
pub const DEFAULT_PAGE: u64 = 50;
/// Most items per page, whatever the caller asks.
pub const MAX_PAGE: u64 = 200;

/// The strong entity tag of a row version: `"7"`.
pub fn etag(version: i64) -> String {
    format!("\"{version}\"")
}

/// A response with the `ETag` of `version`.
pub fn with_etag(mut response: HttpResponseBuilder, version: i64) -> HttpResponseBuilder {
    if let Ok(value) = HeaderValue::from_str(&etag(version)) {
        response.insert_header((header::ETAG, value));
    }
    response
}

/// Marks a response that holds a secret as never to be stored.
pub fn no_store(response: &mut HttpResponseBuilder) {
    response
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .insert_header((header::PRAGMA, HeaderValue::from_static("no-cache")));
}

/// The version an update replaces, from `If-Match` (RFC 9110 §13.1.1): required (428
/// without); `*` means whatever is current (`None`). A tag that is not a version of ours
/// matches nothing: the update is then refused as stale.
pub fn if_match(req: &HttpRequest) -> Result<Option<i64>, Problem> {
    let value = req
        .headers()
        .get(header::IF_MATCH)
        .ok_or(Problem::PreconditionRequired)?
        .to_str()
        .unwrap_or_default()
        .trim();
    if value == "*" {
        return Ok(None);
    }
    let version = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .and_then(|v| v.parse::<i64>().ok());
    // i64::MIN is never a version: the conditional write then finds the row moved on.
    Ok(Some(version.unwrap_or(i64::MIN)))
}

/// `limit` and `cursor` of a listing.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 200 (default 50; more is cut to 200).
    pub limit: Option<u64>,
    /// Where to continue: `next` of the previous page.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The page size asked for, bounded.
    pub fn size(&self) -> Result<u64, Problem> {
        match self.limit {
            None => Ok(DEFAULT_PAGE),
            Some(0) => Err(Problem::bad_request("limit must be at least 1")),
            Some(limit) => Ok(limit.min(MAX_PAGE)),
        }
    }
}

/// An opaque cursor for a position that is a string.
pub fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

/// The position of a cursor [`encode_cursor`] made; 400 for anything else.
pub fn decode_cursor(cursor: &str) -> Result<String, Problem> {
    URL_SAFE_NO_PAD
        .decode(cursor)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(|| Problem::bad_request("the cursor is not one this API gave"))
}

/// The id in a path: anything that is not one names nothing.
pub fn path_uuid(raw: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(raw).map_err(|_| Problem::not_found("no such resource"))
}

/// 204 No Content.
pub fn no_content() -> HttpResponse {
    HttpResponse::NoContent().finish()
}

/// Deserializes a member that may be absent (`None`), `null` (`Some(None)`) or a value.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}
