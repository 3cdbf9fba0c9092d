//! The bearer-token check every route goes through when a token is configured.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use crate::Shared;

pub(crate) async fn require_token(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &shared.config.token else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    // Constant time in the token's bytes, so timing tells a client nothing about how
    // much of a guess was right (only whether its length was).
    let allowed = presented.is_some_and(|presented| bool::from(presented.as_bytes().ct_eq(token.as_bytes())));
    if allowed {
        return next.run(request).await;
    }
    let mut refused = (
        StatusCode::UNAUTHORIZED,
        "a valid `Authorization: Bearer` token is required (iii SDKs send III_TOKEN)\n",
    )
        .into_response();
    refused.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    refused
}
