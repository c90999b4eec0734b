//! Access control. Machines use API tokens: random, shown once, stored as SHA-256 digests
//! (`sha256:<hex>` in `api_tokens`), presented as `Authorization: Bearer <token>`. People log
//! in to the portal with a name and password (`[[users]]`, PBKDF2-hashed): a login gives an
//! `HttpOnly`, `SameSite=Strict` session cookie.

use crate::ApiError;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
pub use flowsight_collector::config::PasswordHash;
use ring::rand::SecureRandom;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// PBKDF2 iterations of new password hashes (OWASP's 2023 figure for PBKDF2-HMAC-SHA256).
pub const DEFAULT_ITERATIONS: u32 = 600_000;

/// Hashes a password for `[[users]]`: `pbkdf2-sha256$<iterations>$<salt>$<hash>`, with a
/// random 16-byte salt (RFC 8018 s5.2, HMAC-SHA256).
pub fn hash_password(password: &str, iterations: u32) -> Result<String, ring::error::Unspecified> {
    let mut salt = [0u8; 16];
    ring::rand::SystemRandom::new().fill(&mut salt)?;
    let mut out = [0u8; 32];
    let n = std::num::NonZeroU32::new(iterations.max(1)).ok_or(ring::error::Unspecified)?;
    ring::pbkdf2::derive(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        n,
        &salt,
        password.as_bytes(),
        &mut out,
    );
    Ok(format!(
        "pbkdf2-sha256${iterations}${}${}",
        crate::hex(&salt),
        crate::hex(&out)
    ))
}

/// Whether `password` matches `h` (ring compares in constant time).
pub fn verify_password(h: &PasswordHash, password: &str) -> bool {
    let Some(n) = std::num::NonZeroU32::new(h.iterations) else {
        return false;
    };
    ring::pbkdf2::verify(
        ring::pbkdf2::PBKDF2_HMAC_SHA256,
        n,
        &h.salt,
        password.as_bytes(),
        &h.hash,
    )
    .is_ok()
}

/// The session cookie's name.
pub const COOKIE: &str = "flowsight_session";
/// How long a login lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most (the oldest go first): memory stays bounded whoever logs in.
const MAX_SESSIONS: usize = 10_000;
/// Login attempts per name within a minute before the server answers 429 (a success clears
/// the count). Known and unknown names are counted alike, so the answers do not tell them
/// apart.
const MAX_FAILURES: u32 = 10;
/// Names whose attempts are counted at once; beyond that, new names share one count.
const MAX_COUNTED_NAMES: usize = 10_000;
/// Password checks running at once; more are answered 429 at once rather than queued, so
/// guessing cannot take the collector's cores.
const MAX_VERIFYING: usize = 2;

struct Session {
    user: String,
    expires: Instant,
}

/// Who may use the server: API tokens for machines, users (login sessions) for people.
/// Without either, everything is open (`serve` allows that on loopback only).
pub struct Access {
    tokens: Vec<[u8; 32]>,
    users: Vec<(String, PasswordHash)>,
    // Keyed by the SHA-256 of the session id, so the table holds no usable secret.
    sessions: Mutex<HashMap<[u8; 32], Session>>,
    failures: Mutex<HashMap<String, (Instant, u32)>>,
    verifying: std::sync::atomic::AtomicUsize,
}

impl std::fmt::Debug for Access {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Access")
            .field("tokens", &self.tokens.len())
            .field("users", &self.users.len())
            .finish_non_exhaustive()
    }
}

/// Who a request is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials are configured.
    Open,
    /// A valid API token.
    Token,
    /// A logged-in user.
    User(String),
}

impl Access {
    /// Access with these token digests and users.
    pub fn new(tokens: Vec<[u8; 32]>, users: Vec<(String, PasswordHash)>) -> Access {
        Access {
            tokens,
            users,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            verifying: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// Whether requests need credentials.
    pub fn required(&self) -> bool {
        !self.tokens.is_empty() || !self.users.is_empty()
    }

    /// Whether people can log in.
    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    /// Who sent `headers`, if anyone valid.
    pub fn principal(&self, headers: &HeaderMap) -> Option<Principal> {
        if !self.required() {
            return Some(Principal::Open);
        }
        if let Some(t) = bearer(headers) {
            let d = token_digest(t);
            // Every stored digest is compared, whichever matches.
            if self.tokens.iter().fold(false, |m, s| m | same(&d, s)) {
                return Some(Principal::Token);
            }
        }
        let id = session_cookie(headers)?;
        let d = token_digest(id);
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        match s.get(&d) {
            Some(x) if x.expires > Instant::now() => Some(Principal::User(x.user.clone())),
            Some(_) => {
                s.remove(&d);
                None
            }
            None => None,
        }
    }

    /// Checks a login; on success returns a new session id for the cookie.
    pub fn login(&self, user: &str, password: &str) -> Result<String, LoginError> {
        use std::sync::atomic::Ordering;
        // The attempt is counted before the (slow) check, under one lock: parallel requests
        // cannot all slip under the limit.
        let bucket: String = user.chars().take(64).collect();
        {
            let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            f.retain(|_, (t, _)| now.duration_since(*t) < Duration::from_secs(60));
            let key = if f.len() >= MAX_COUNTED_NAMES && !f.contains_key(&bucket) {
                "\u{0}overflow".to_string()
            } else {
                bucket.clone()
            };
            let e = f.entry(key).or_insert((now, 0));
            if e.1 >= MAX_FAILURES {
                return Err(LoginError::TooMany);
            }
            e.1 += 1;
        }
        if self.verifying.fetch_add(1, Ordering::SeqCst) >= MAX_VERIFYING {
            self.verifying.fetch_sub(1, Ordering::SeqCst);
            return Err(LoginError::Busy);
        }
        let ok = match self.users.iter().find(|(n, _)| n == user) {
            Some((_, h)) => verify_password(h, password),
            None => {
                // As slow as a real check: response times do not tell which names exist.
                if let Some((_, h)) = self.users.first() {
                    let _ = verify_password(h, "\u{0}not a password");
                }
                false
            }
        };
        self.verifying.fetch_sub(1, Ordering::SeqCst);
        if !ok {
            return Err(LoginError::Wrong);
        }
        self.failures
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&bucket);
        let mut b = [0u8; 32];
        ring::rand::SystemRandom::new()
            .fill(&mut b)
            .map_err(|_| LoginError::Random)?;
        let id = crate::hex(&b);
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        s.retain(|_, x| x.expires > now);
        if s.len() >= MAX_SESSIONS
            && let Some(oldest) = s.iter().min_by_key(|(_, x)| x.expires).map(|(k, _)| *k)
        {
            s.remove(&oldest);
        }
        s.insert(
            token_digest(&id),
            Session {
                user: user.to_string(),
                expires: now + SESSION_TTL,
            },
        );
        Ok(id)
    }

    /// Ends the session of `headers`, if any.
    pub fn logout(&self, headers: &HeaderMap) {
        if let Some(id) = session_cookie(headers) {
            let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            s.remove(&token_digest(id));
        }
    }
}

/// Why a login failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    /// Unknown user or wrong password (not told apart).
    Wrong,
    /// Too many attempts for this name in the last minute.
    TooMany,
    /// Other password checks are running.
    Busy,
    /// The OS random source failed.
    Random,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        // The scheme is case-insensitive (RFC 7235 s2.1).
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim())
}

fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
        .filter(|v| v.len() == 64)
}

/// Paths anyone may fetch: the portal's page and assets (they hold no flow data) and the
/// login routes.
fn public(path: &str) -> bool {
    matches!(path, "/api/v1/login" | "/api/v1/logout" | "/api/v1/session")
        || !(path.starts_with("/api/") || path == "/api" || path == "/metrics")
}

/// Middleware: with credentials configured, an API request needs a valid bearer token or a
/// login session.
pub(crate) async fn require_auth(
    State(access): State<Arc<Access>>,
    req: Request,
    next: Next,
) -> Response {
    if !access.required() || public(req.uri().path()) {
        return next.run(req).await;
    }
    if access.principal(req.headers()).is_some() {
        return next.run(req).await;
    }
    let message = if bearer(req.headers()).is_some() {
        "the bearer token is not one of the configured api_tokens"
    } else if session_cookie(req.headers()).is_some() {
        "the login session has expired: log in again"
    } else {
        "this server requires credentials: send `Authorization: Bearer <token>` (tokens are made with `flowsight token new`) or log in to the portal"
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

    #[test]
    fn pbkdf2_matches_rfc_7914_vector() {
        // RFC 7914 s11: PBKDF2-HMAC-SHA256, P="passwd", S="salt", c=1, first 32 bytes.
        let h = PasswordHash {
            iterations: 1,
            salt: b"salt".to_vec(),
            hash: flowsight_collector::config::parse_hex::<32>(
                "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc",
            )
            .unwrap(),
        };
        assert!(verify_password(&h, "passwd"));
        assert!(!verify_password(&h, "passwe"));
    }

    #[test]
    fn hashed_passwords_parse_verify_and_log_in() {
        let line = hash_password("s3cret pass", 10_000).unwrap();
        let h = PasswordHash::parse(&line).unwrap();
        assert_eq!(h.iterations, 10_000);
        assert!(verify_password(&h, "s3cret pass"));
        assert!(!verify_password(&h, "s3cret pas"));
        let a = Access::new(Vec::new(), vec![("alice".into(), h)]);
        assert!(a.required());
        assert_eq!(a.login("alice", "nope"), Err(LoginError::Wrong));
        assert_eq!(a.login("bob", "s3cret pass"), Err(LoginError::Wrong));
        let id = a.login("alice", "s3cret pass").unwrap();
        let mut hm = HeaderMap::new();
        hm.insert(
            header::COOKIE,
            format!("x=1; {COOKIE}={id}").parse().unwrap(),
        );
        assert_eq!(a.principal(&hm), Some(Principal::User("alice".into())));
        a.logout(&hm);
        assert_eq!(a.principal(&hm), None);
    }

    #[test]
    fn repeated_failures_are_refused_for_a_minute() {
        let h = PasswordHash::parse(&hash_password("pw", 10_000).unwrap()).unwrap();
        let a = Access::new(Vec::new(), vec![("alice".into(), h)]);
        // A success clears the count.
        for _ in 0..MAX_FAILURES - 1 {
            assert_eq!(a.login("alice", "bad"), Err(LoginError::Wrong));
        }
        assert!(a.login("alice", "pw").is_ok());
        for _ in 0..MAX_FAILURES {
            assert_eq!(a.login("alice", "bad"), Err(LoginError::Wrong));
        }
        // Even the right password waits now: guessing is capped at 10 a minute.
        assert_eq!(a.login("alice", "pw"), Err(LoginError::TooMany));
        // Unknown names are limited alike (a 429 does not reveal that a name exists), and
        // each name has its own count.
        for _ in 0..MAX_FAILURES {
            assert_eq!(a.login("mallory", "x"), Err(LoginError::Wrong));
        }
        assert_eq!(a.login("mallory", "x"), Err(LoginError::TooMany));
        assert_eq!(a.login("bob", "x"), Err(LoginError::Wrong));
    }

    #[test]
    fn portal_pages_are_public_api_routes_are_not() {
        for p in [
            "/",
            "/top",
            "/assets/app.js",
            "/api/v1/login",
            "/api/v1/session",
        ] {
            assert!(public(p), "{p}");
        }
        for p in [
            "/api/v1/top",
            "/api/v1/flows",
            "/metrics",
            "/api/v1/nope",
            "/api",
        ] {
            assert!(!public(p), "{p}");
        }
    }
}
