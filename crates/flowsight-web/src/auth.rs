//! API tokens: random, shown once, stored as SHA-256 digests (`sha256:<hex>` in
//! `api_tokens`), presented as `Authorization: Bearer <token>`.

use crate::ApiError;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ring::rand::SecureRandom;

/// The SHA-256 digest of a token, as stored in the configuration.
pub fn token_digest(token: &str) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The configuration line form of a digest: `sha256:<64 hex digits>`.
pub fn digest_line(d: &[u8; 32]) -> String {
    format!("sha256:{}", crate::hex(d))
}

/// A new random token (256 bits from the OS, `fst_` and 64 hex digits).
pub fn new_token() -> Result<String, ring::error::Unspecified> {
    let mut b = [0u8; 32];
    ring::rand::SystemRandom::new().fill(&mut b)?;
    Ok(format!("fst_{}", crate::hex(&b)))
}

/// Compares digests without an early exit (no timing hint of how much matched).
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Middleware: with tokens configured, a request needs a valid bearer token.
pub(crate) async fn require_token(
    State(tokens): State<std::sync::Arc<Vec<[u8; 32]>>>,
    req: Request,
    next: Next,
) -> Response {
    if tokens.is_empty() {
        return next.run(req).await;
    }
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme is case-insensitive (RFC 7235 s2.1).
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim());
    let ok = presented.is_some_and(|t| {
        let d = token_digest(t);
        // Every stored digest is compared, whichever matches.
        tokens.iter().fold(false, |m, s| m | same(&d, s))
    });
    if ok {
        return next.run(req).await;
    }
    let message = if presented.is_some() {
        "the bearer token is not one of the configured api_tokens"
    } else {
        "this server requires an API token: send `Authorization: Bearer <token>` (tokens are made with `flowsight token new`)"
    };
    let mut r = ApiError::server(401, "unauthorized", message).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"flowsight\""),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_a_known_string() {
        // SHA-256("abc"), FIPS 180-2 appendix B.1.
        assert_eq!(
            digest_line(&token_digest("abc")),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn tokens_are_random_and_long() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
        assert!(same(&token_digest(&a), &token_digest(&a)));
        assert!(!same(&token_digest(&a), &token_digest(&b)));
    }
}
