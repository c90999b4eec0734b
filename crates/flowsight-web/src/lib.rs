//! flowsight's northbound REST API, served by `flowsight serve` on its HTTP port.
//!
//! Every route lives under `/api/v1/` and is described by the OpenAPI 3 document at
//! `/api/v1/openapi.json`, generated from the handlers below ([`ApiDoc`]). Queries go through
//! the same [`Engine`] and filter language as `flowsight query`, so the API and the CLI give
//! the same numbers. Each query runs on a blocking thread under a budget ([`Budget`]): at most
//! a few at once and a time limit, so one heavy request cannot starve the collector.
//!
//! ```no_run
//! # async fn demo() {
//! let api = flowsight_web::Api::open("/var/lib/flowsight", None).unwrap();
//! let app = flowsight_web::router(api);
//! let l = tokio::net::TcpListener::bind("127.0.0.1:8080").await.unwrap();
//! axum::serve(l, app).await.unwrap();
//! # }
//! ```

pub mod auth;
mod error;
mod portal;

pub use error::{ApiError, ErrorBody};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query as Q, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use flowsight_collector::Shared;
use flowsight_query::aggregate::{AggOrder, parse_keys, parse_order};
use flowsight_query::engine::{
    Embedded, Engine, FlowKey, MAX_BUCKETS, Query, ScanInfo, TimeRange, flow_key,
};
use flowsight_query::filter::{Expr, parse};
use flowsight_query::stats::{Order, parse_spec};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use utoipa::{IntoParams, OpenApi, ToSchema};

/// Limits every query runs under.
#[derive(Debug, Clone)]
pub struct Budget {
    /// Queries running at once; more wait (within `timeout`) for a slot.
    pub concurrent: usize,
    /// Longest a query may take, waiting included.
    pub timeout: Duration,
    /// Most flows one flow-search page (JSON) returns.
    pub max_page: usize,
    /// Most flows one export (`format=ndjson|csv`) returns.
    pub max_export: usize,
    /// Most rows a top-N answers.
    pub max_top: usize,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            // One core stays with the collector on a two-core box.
            concurrent: 2,
            timeout: Duration::from_secs(15),
            max_page: 10_000,
            max_export: 1_000_000,
            max_top: 1_000,
        }
    }
}

/// What the handlers share: the query engine, the collector (when running inside `serve`),
/// and the budget.
#[derive(Clone)]
pub struct Api {
    engine: Arc<dyn Engine + Send + Sync>,
    collector: Option<Arc<Shared>>,
    budget: Budget,
    slots: Arc<tokio::sync::Semaphore>,
    // Exports being rendered and sent (after their scan released its slot).
    exports: Arc<tokio::sync::Semaphore>,
    access: Arc<auth::Access>,
    // The embedded engine, for the background prewarm (None over other engines).
    embedded: Option<Arc<Embedded>>,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api")
            .field("budget", &self.budget)
            .finish_non_exhaustive()
    }
}

impl Api {
    /// The API over the embedded store in `data` (and the collector's live state, if any).
    pub fn open(
        data: impl AsRef<std::path::Path>,
        collector: Option<Arc<Shared>>,
    ) -> Result<Api, flowsight_query::engine::QueryError> {
        // Dashboards repeat the same unfiltered queries: per-file results are cached.
        let e =
            Arc::new(Embedded::open(data)?.with_cache(flowsight_query::engine::DEFAULT_CACHE_ROWS));
        let mut api = Api::new(e.clone(), collector, Budget::default());
        api.embedded = Some(e);
        Ok(api)
    }

    /// Keeps the portal's standard panels over the last hour (the overview, top items,
    /// map and conversations; unfiltered) computed for every store file as it arrives, in
    /// a background thread at the lowest CPU priority, checking every `every`. A dashboard
    /// opened later answers from the per-file cache instead of scanning. The thread ends
    /// when the API is dropped. Without the embedded engine, does nothing.
    pub fn prewarm_in_background(&self, every: Duration) -> std::io::Result<()> {
        let Some(e) = &self.embedded else {
            return Ok(());
        };
        let weak = Arc::downgrade(e);
        let plan = portal_plan();
        std::thread::Builder::new()
            .name("fs-prewarm".into())
            .spawn(move || {
                lowest_priority();
                let mut failed = false;
                let mut warmed = Default::default();
                loop {
                    std::thread::sleep(every);
                    let Some(e) = weak.upgrade() else { break };
                    let now = now_ns();
                    let range = TimeRange {
                        since: now.saturating_sub(3600 * NS),
                        until: now + 60 * NS,
                    };
                    match e.prewarm(range, &plan, &mut warmed) {
                        Ok(n) => {
                            failed = false;
                            if n > 0 {
                                tracing::debug!(files = n, "prewarmed the portal's panels");
                            }
                        }
                        // Once per failure streak: the same error every few seconds is noise.
                        Err(err) if !failed => {
                            failed = true;
                            tracing::warn!(error = %err, "cannot prewarm the portal's panels; dashboards will scan instead");
                        }
                        Err(_) => {}
                    }
                }
            })
            .map(|_| ())
    }

    /// The API over any engine, with a budget.
    pub fn new(
        engine: Arc<dyn Engine + Send + Sync>,
        collector: Option<Arc<Shared>>,
        budget: Budget,
    ) -> Api {
        let slots = Arc::new(tokio::sync::Semaphore::new(budget.concurrent.max(1)));
        Api {
            engine,
            collector,
            budget,
            slots,
            exports: Arc::new(tokio::sync::Semaphore::new(EXPORTS_AT_ONCE)),
            access: Arc::new(auth::Access::new(Vec::new(), Vec::new())),
            embedded: None,
        }
    }

    /// Requires a bearer token whose SHA-256 digest is one of `digests` on every request
    /// (none: no authentication; `serve` only allows that on loopback).
    pub fn with_tokens(self, digests: Vec<[u8; 32]>) -> Api {
        self.with_access(digests, Vec::new())
    }

    /// Requires, on every API request, a bearer token whose SHA-256 digest is one of
    /// `digests` or the session cookie of one of `users` who logged in (neither: no
    /// authentication; `serve` only allows that on loopback).
    pub fn with_access(
        mut self,
        digests: Vec<[u8; 32]>,
        users: Vec<(String, auth::PasswordHash)>,
    ) -> Api {
        self.access = Arc::new(auth::Access::new(digests, users));
        self
    }

    /// Runs `f` (a store scan) on a blocking thread within the budget.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Engine) -> Result<T, ApiError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let over = || {
            ApiError::server(
                503,
                "budget_exceeded",
                format!(
                    "the query did not finish within {} s: narrow the time range or the filter",
                    self.budget.timeout.as_secs()
                ),
            )
        };
        let work =
            async {
                let permit =
                    self.slots.clone().acquire_owned().await.map_err(|_| {
                        ApiError::server(503, "busy", "the server is shutting down")
                    })?;
                let engine = self.engine.clone();
                tokio::task::spawn_blocking(move || {
                    // The slot is held until the scan ends, even past a timeout: the number of
                    // scans competing with the collector stays bounded.
                    let _permit = permit;
                    f(engine.as_ref())
                })
                .await
                .map_err(|e| ApiError::server(500, "internal", format!("query failed: {e}")))?
            };
        tokio::time::timeout(self.budget.timeout, work)
            .await
            .unwrap_or_else(|_| Err(over()))
    }
}

/// What the portal asks for over its default range (the last hour), unfiltered: the
/// panels of its overview, top items and map pages (see `portal/app.js`).
pub fn portal_plan() -> flowsight_query::engine::WarmPlan {
    let stats = [
        "srcip", "dstip", "dstport", "proto", "srcas", "dstas", "srcgeo", "dstgeo", "router",
        "inif",
    ]
    .iter()
    .filter_map(|d| parse_spec(d).ok().map(|(k, _)| k))
    .collect();
    // The portal asks for [now - 1 h, now + 1 min).
    let mut series = Vec::new();
    if let Ok((k, _)) = parse_spec("proto") {
        for span in [3600, 3660] {
            let b = auto_bucket(span * NS);
            if !series.contains(&(k, b)) {
                series.push((k, b));
            }
        }
    }
    flowsight_query::engine::WarmPlan {
        stats,
        series,
        aggregations: parse_keys("srcip,dstip")
            .map(|k| vec![(k, AggOrder::Bytes)])
            .unwrap_or_default(),
        starts: true,
    }
}

/// Lowers the calling thread's CPU priority to the least (threads it starts inherit it),
/// so background work yields to the collector.
#[allow(unsafe_code)] // two syscalls; no crate of the tree exposes them without new features
fn lowest_priority() {
    // Linux keeps nice values per thread: this one and the scan workers it starts.
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority take and return plain integers; no memory is shared.
    let failed = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, 19) != 0
    };
    #[cfg(not(target_os = "linux"))]
    let failed = false;
    if failed {
        tracing::debug!("cannot lower the prewarm thread's priority");
    }
}

/// The routes, behind the token check (when tokens are configured), with security headers
/// on every response.
pub fn router(api: Api) -> axum::Router {
    let access = api.access.clone();
    axum::Router::new()
        .route("/api/v1/login", axum::routing::post(login))
        .route("/api/v1/logout", axum::routing::post(logout))
        .route("/api/v1/session", get(session))
        .route("/api/v1/top", get(top))
        .route("/api/v1/timeseries", get(timeseries))
        .route("/api/v1/flows", get(flows))
        .route("/api/v1/exporters", get(exporters))
        .route("/api/v1/health", get(health))
        .route("/api/v1/version", get(version))
        .route("/api/v1/openapi.json", get(openapi))
        .route("/metrics", get(metrics))
        .route("/assets/{*path}", get(portal::asset))
        .fallback(portal::page_or_not_found)
        .layer(axum::middleware::from_fn_with_state(
            access,
            auth::require_auth,
        ))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(api)
}

async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    for (k, v) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        // Charts set inline styles from script; nothing else is inline or foreign.
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
             object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    ] {
        h.insert(k, HeaderValue::from_static(v));
    }
    // Data is never cached; the portal's versioned assets say otherwise themselves.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// A login.
#[derive(Debug, Deserialize, ToSchema)]
pub struct Login {
    /// User name (`[[users]]` in the configuration).
    pub username: String,
    /// Password.
    pub password: String,
}

/// Who the request is, and whether the server needs a login.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionInfo {
    /// Whether API requests need a token or a login.
    pub auth_required: bool,
    /// Whether people can log in (users are configured).
    pub login_available: bool,
    /// The logged-in user, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `open` (no credentials configured), `token`, `session`, or `none`.
    pub via: &'static str,
}

/// Logs a person in: sets the `flowsight_session` cookie (`HttpOnly`, `SameSite=Strict`,
/// 12 hours). Ten failures a minute for one name are answered 429.
#[utoipa::path(post, path = "/api/v1/login", request_body = Login,
    responses((status = 200, body = SessionInfo), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn login(
    State(api): State<Api>,
    headers: axum::http::HeaderMap,
    body: Result<axum::Json<Login>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let axum::Json(l) = body.map_err(|e| ApiError::param("body", e.body_text()))?;
    if !api.access.has_users() {
        return Err(ApiError::server(
            404,
            "no_users",
            "no users are configured: add [[users]] entries (`flowsight user add NAME`)",
        ));
    }
    let access = api.access.clone();
    let user = l.username.clone();
    // PBKDF2 takes a good fraction of a second by design: off the async threads.
    let r = tokio::task::spawn_blocking(move || access.login(&l.username, &l.password))
        .await
        .map_err(|e| ApiError::server(500, "internal", e.to_string()))?;
    match r {
        Ok(id) => {
            // Behind a TLS-terminating proxy the cookie is marked Secure as well.
            let https = headers
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"));
            let cookie = format!(
                "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
                auth::COOKIE,
                auth::SESSION_TTL.as_secs(),
                if https { "; Secure" } else { "" }
            );
            let mut resp = axum::Json(SessionInfo {
                auth_required: true,
                login_available: true,
                user: Some(user),
                via: "session",
            })
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                resp.headers_mut().insert(header::SET_COOKIE, v);
            }
            Ok(resp)
        }
        Err(auth::LoginError::Wrong) => Err(ApiError::server(
            401,
            "bad_login",
            "unknown user or wrong password",
        )),
        Err(auth::LoginError::TooMany) => Err(ApiError::server(
            429,
            "too_many_logins",
            "too many login attempts for this name: wait a minute",
        )),
        Err(auth::LoginError::Busy) => Err(ApiError::server(
            429,
            "login_busy",
            "other logins are being checked: try again in a second",
        )),
        Err(auth::LoginError::Random) => Err(ApiError::server(
            500,
            "internal",
            "the OS random source failed",
        )),
    }
}

/// Ends the login session and clears its cookie.
#[utoipa::path(post, path = "/api/v1/logout", responses((status = 204)))]
async fn logout(State(api): State<Api>, headers: axum::http::HeaderMap) -> Response {
    api.access.logout(&headers);
    (
        axum::http::StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            format!(
                "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
                auth::COOKIE
            ),
        )],
    )
        .into_response()
}

/// Whether a login is needed, and who the request is.
#[utoipa::path(get, path = "/api/v1/session", responses((status = 200, body = SessionInfo)))]
async fn session(
    State(api): State<Api>,
    headers: axum::http::HeaderMap,
) -> axum::Json<SessionInfo> {
    let p = api.access.principal(&headers);
    let (user, via) = match p {
        Some(auth::Principal::Open) => (None, "open"),
        Some(auth::Principal::Token) => (None, "token"),
        Some(auth::Principal::User(u)) => (Some(u), "session"),
        None => (None, "none"),
    };
    axum::Json(SessionInfo {
        auth_required: api.access.required(),
        login_available: api.access.has_users(),
        user,
        via,
    })
}

pub(crate) async fn not_found() -> ApiError {
    ApiError {
        status: 404,
        code: "not_found",
        message: "no such route: the API's routes are listed at /api/v1/openapi.json".into(),
        parameter: None,
        position: None,
    }
}

/// The OpenAPI document of this API.
#[derive(OpenApi, Debug)]
#[openapi(
    info(
        title = "flowsight API",
        description = "Flow search, top-N, time series, exporters and collector health. \
                       Filters use the filter language of `flowsight query` (docs/filters.md); \
                       times accept 2026-11-22T10:00:00Z, 1h (ago), now or Unix seconds."
    ),
    paths(
        top, timeseries, flows, exporters, health, version, openapi, metrics, login, logout,
        session
    )
)]
pub struct ApiDoc;

fn rejected(e: QueryRejection) -> ApiError {
    ApiError::param("query", e.body_text())
}

/// The filter and time range every query takes, compiled.
fn scope(
    filter: &Option<String>,
    since: &Option<String>,
    until: &Option<String>,
) -> Result<Query, ApiError> {
    {
        // Parsed untrimmed, so an error's position is the one in the text the client sent.
        let filter = match filter.as_deref() {
            None => Expr::Any,
            Some(f) if f.trim().is_empty() => Expr::Any,
            Some(f) => parse(f).map_err(|e| ApiError::filter(&e))?,
        };
        let now = now_ns();
        let mut range = TimeRange::ALL;
        if let Some(s) = since {
            range.since = flowsight_query::time::parse_point(s, now)
                .map_err(|e| ApiError::param("since", e))?;
        }
        if let Some(u) = until {
            range.until = flowsight_query::time::parse_point(u, now)
                .map_err(|e| ApiError::param("until", e))?;
        }
        if range.since >= range.until {
            return Err(ApiError::param(
                "until",
                "`until` must be later than `since`",
            ));
        }
        Ok(Query { filter, range })
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Flows, packets and bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct Counts {
    /// Flows.
    pub flows: u64,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

impl From<(u64, u64, u64)> for Counts {
    fn from((flows, packets, bytes): (u64, u64, u64)) -> Self {
        Counts {
            flows,
            packets,
            bytes,
        }
    }
}

/// How much of the store a query read.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ScanStats {
    /// Files read (the others were pruned by time).
    pub files_read: usize,
    /// Files in the store.
    pub files_total: usize,
    /// Rows read.
    pub rows_read: u64,
}

impl From<&ScanInfo> for ScanStats {
    fn from(r: &ScanInfo) -> Self {
        ScanStats {
            files_read: r.files_read,
            files_total: r.files_total,
            rows_read: r.rows_read,
        }
    }
}

/// Parameters of a top-N.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopParams {
    /// What to rank: any `-s` key of `flowsight query` (`srcip`, `dstport`, `proto`, `dstas`,
    /// `dstgeo`, ...), or several `-A` keys joined by commas for pairs (`srcip,dstip`).
    pub dimension: String,
    /// Order: `flows`, `packets`, `bytes` (default), `pps`, `bps` or `bpp`.
    pub metric: Option<String>,
    /// Rows (default 10, at most 1000).
    pub limit: Option<usize>,
    /// Filter in the `flowsight query` language, e.g. `proto tcp and dst port 443`.
    pub filter: Option<String>,
    /// Flows starting at or after this time (`2026-11-22T10:00:00Z`, `1h` ago, Unix seconds).
    pub since: Option<String>,
    /// Flows starting before this time.
    pub until: Option<String>,
}

/// One ranked value.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TopRow {
    /// The value (one entry per dimension), rendered as `flowsight query` renders it.
    pub key: Vec<String>,
    /// Flows.
    pub flows: u64,
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
    /// Packets per second over the value's time span.
    pub pps: u64,
    /// Bits per second over the value's time span.
    pub bps: u64,
    /// Bytes per packet.
    pub bpp: u64,
    /// Share of the total of the metric's unit (flows, packets or bytes), in percent.
    pub percent: f64,
}

/// A top-N answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TopResponse {
    /// The dimension asked for.
    pub dimension: String,
    /// The ranking metric.
    pub metric: String,
    /// Every matching flow.
    pub totals: Counts,
    /// The top values, best first.
    pub rows: Vec<TopRow>,
    /// Everything not in `rows` (for two-sided keys such as `ip`, a flow counts once per side).
    pub other: Counts,
    /// What the query read.
    pub scan: ScanStats,
}

fn unit_share(metric: &str, c: Counts, t: Counts) -> f64 {
    let (a, b) = match metric {
        "flows" => (c.flows, t.flows),
        "packets" | "pps" => (c.packets, t.packets),
        _ => (c.bytes, t.bytes),
    };
    if b == 0 {
        0.0
    } else {
        a as f64 * 100.0 / b as f64
    }
}

/// Top-N values of a dimension.
#[utoipa::path(get, path = "/api/v1/top", params(TopParams),
    responses((status = 200, body = TopResponse), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn top(
    State(api): State<Api>,
    p: Result<Q<TopParams>, QueryRejection>,
) -> Result<axum::Json<TopResponse>, ApiError> {
    let Q(p) = p.map_err(rejected)?;
    let q = scope(&p.filter, &p.since, &p.until)?;
    let metric = p.metric.as_deref().unwrap_or("bytes").to_ascii_lowercase();
    let limit = p.limit.unwrap_or(10);
    if limit == 0 || limit > api.budget.max_top {
        return Err(ApiError::param(
            "limit",
            format!("limit must be 1 to {}", api.budget.max_top),
        ));
    }
    let dim = p.dimension.trim().to_string();
    if dim.contains(',') || parse_spec(&dim).is_err() {
        // Pairs (and masked keys such as srcip4/24) are aggregations.
        let keys = parse_keys(&dim).map_err(|e| ApiError::param("dimension", e))?;
        let order = match parse_order(&metric) {
            Ok(o) if !matches!(o, AggOrder::Tstart | AggOrder::Tend) => o,
            _ => return Err(bad_metric(&metric)),
        };
        return api
            .run(move |e| {
                let (rows, tot, rep) = e.aggregate(&q, &keys, order, Some(limit))?;
                let totals = Counts::from((tot.flows, tot.packets, tot.bytes));
                let mut other = totals;
                let rows = rows
                    .into_iter()
                    .map(|r| {
                        let c = Counts::from((r.flows, r.packets, r.bytes));
                        other.flows -= c.flows.min(other.flows);
                        other.packets -= c.packets.min(other.packets);
                        other.bytes -= c.bytes.min(other.bytes);
                        TopRow {
                            pps: r.pps(),
                            bps: r.bps(),
                            bpp: r.bpp(),
                            percent: unit_share(&metric, c, totals),
                            key: r.key,
                            flows: r.flows,
                            packets: r.packets,
                            bytes: r.bytes,
                        }
                    })
                    .collect();
                Ok(axum::Json(TopResponse {
                    dimension: dim,
                    metric,
                    totals,
                    rows,
                    other,
                    scan: (&rep).into(),
                }))
            })
            .await;
    }
    let (key, _) = parse_spec(&dim).map_err(|e| ApiError::param("dimension", e))?;
    let (_, order) = parse_spec(&format!("{dim}/{metric}")).map_err(|_| bad_metric(&metric))?;
    api.run(move |e| {
        let (st, rep) = e.stat(&q, key, order, limit)?;
        let totals = Counts::from(st.totals);
        let rows = st
            .rows
            .iter()
            .map(|r| {
                let c = Counts::from((r.flows, r.packets, r.bytes));
                TopRow {
                    key: vec![r.value.clone()],
                    flows: r.flows,
                    packets: r.packets,
                    bytes: r.bytes,
                    pps: r.pps(),
                    bps: r.bps(),
                    bpp: r.bpp(),
                    percent: unit_share(&metric, c, totals),
                }
            })
            .collect();
        Ok(axum::Json(TopResponse {
            dimension: dim,
            metric,
            totals,
            rows,
            other: Counts::from(st.other),
            scan: (&rep).into(),
        }))
    })
    .await
}

fn bad_metric(m: &str) -> ApiError {
    ApiError::param(
        "metric",
        format!("unknown metric `{m}`: use flows, packets, bytes, pps, bps or bpp"),
    )
}

/// Parameters of a time series.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// What splits the traffic: any `-s` key (default `proto`).
    pub dimension: Option<String>,
    /// `flows`, `packets`, `bytes` (counts per bucket), `pps` or `bps` (default; rates per
    /// bucket). The top series are ranked by it over the whole range.
    pub metric: Option<String>,
    /// Series besides "other" (default 5, at most 50).
    pub k: Option<usize>,
    /// Bucket width (`10s`, `1m`, `5m`, `1h`, `1d`); by default chosen from the range so
    /// that it has about 240 buckets. The range defaults to the last hour, up to now.
    pub bucket: Option<String>,
    /// Filter in the `flowsight query` language, e.g. `proto tcp and dst port 443`.
    pub filter: Option<String>,
    /// Flows starting at or after this time (`2026-11-22T10:00:00Z`, `1h` ago, Unix seconds).
    pub since: Option<String>,
    /// Flows starting before this time.
    pub until: Option<String>,
}

/// One series of a time series.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeriesLine {
    /// The value this series is, or `other`.
    pub key: String,
    /// One value per bucket, in the metric's unit.
    pub values: Vec<f64>,
}

/// A time series answer.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SeriesResponse {
    /// The dimension.
    pub dimension: String,
    /// The metric of `values`.
    pub metric: String,
    /// Bucket width, seconds.
    pub bucket_s: u64,
    /// Start of each bucket, ns since the epoch.
    pub times_ns: Vec<u64>,
    /// The top series, then `other`.
    pub series: Vec<SeriesLine>,
    /// What the query read.
    pub scan: ScanStats,
}

const NS: u64 = 1_000_000_000;

fn parse_duration(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("`{s}` is not a duration: write 10s, 1m, 5m, 1h or 1d"))?;
    let mult = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{s}` is not a duration: write 10s, 1m, 5m, 1h or 1d"
            ));
        }
    };
    match n.checked_mul(mult * NS) {
        Some(0) | None => Err(format!("`{s}`: a bucket is 1s to a few days long")),
        Some(v) => Ok(v),
    }
}

/// A bucket giving about 240 points over `span_ns`, rounded up to a width people read easily.
fn auto_bucket(span_ns: u64) -> u64 {
    const STEPS: [u64; 12] = [
        10, 30, 60, 300, 600, 900, 1800, 3600, 10_800, 21_600, 43_200, 86_400,
    ];
    let want = span_ns / 240;
    STEPS
        .iter()
        .map(|s| s * NS)
        .find(|&s| s >= want)
        .unwrap_or(86_400 * NS)
}

/// Traffic over time, split by the top values of a dimension.
#[utoipa::path(get, path = "/api/v1/timeseries", params(SeriesParams),
    responses((status = 200, body = SeriesResponse), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn timeseries(
    State(api): State<Api>,
    p: Result<Q<SeriesParams>, QueryRejection>,
) -> Result<axum::Json<SeriesResponse>, ApiError> {
    let Q(p) = p.map_err(rejected)?;
    let q = scope(&p.filter, &p.since, &p.until)?;
    let dim = p.dimension.clone().unwrap_or_else(|| "proto".into());
    let metric = p.metric.as_deref().unwrap_or("bps").to_ascii_lowercase();
    let (key, _) = parse_spec(&dim).map_err(|e| ApiError::param("dimension", e))?;
    let (_, order) = parse_spec(&format!("{dim}/{metric}")).map_err(|_| bad_metric(&metric))?;
    if matches!(order, Order::Bpp) {
        return Err(ApiError::param(
            "metric",
            "bpp is not additive over buckets: use flows, packets, bytes, pps or bps",
        ));
    }
    let k = p.k.unwrap_or(5);
    if k > 50 {
        return Err(ApiError::param("k", "k must be 0 to 50"));
    }
    // A time series always has a closed range: up to now, and an hour back by default.
    let mut q = q;
    if q.range.until == u64::MAX {
        q.range.until = now_ns().max(q.range.since + 1);
    }
    if q.range.since == 0 {
        q.range.since = q.range.until.saturating_sub(3600 * NS);
    }
    let bucket = match &p.bucket {
        Some(b) => parse_duration(b).map_err(|e| ApiError::param("bucket", e))?,
        None => auto_bucket(q.range.until - q.range.since),
    };
    // Buckets are aligned to the epoch, as the engine counts them.
    let n = (q.range.until - 1) / bucket - q.range.since / bucket + 1;
    if n > MAX_BUCKETS as u64 {
        return Err(ApiError::param(
            "bucket",
            format!(
                "{n} buckets: at most {MAX_BUCKETS}; choose a longer bucket or a shorter range"
            ),
        ));
    }
    api.run(move |e| {
        let (s, rep) = e.series(&q, key, order, k, bucket)?;
        let secs = (bucket / NS).max(1) as f64;
        let value = |c: &(u64, u64, u64)| match metric.as_str() {
            "flows" => c.0 as f64,
            "packets" => c.1 as f64,
            "bytes" => c.2 as f64,
            "pps" => c.1 as f64 / secs,
            _ => c.2 as f64 * 8.0 / secs,
        };
        let mut names = s.names.clone();
        names.push("other".into());
        let series = names
            .into_iter()
            .enumerate()
            .map(|(i, key)| SeriesLine {
                key,
                values: s.buckets.iter().map(|b| value(&b[i])).collect(),
            })
            .collect();
        Ok(axum::Json(SeriesResponse {
            dimension: dim,
            metric,
            bucket_s: bucket / NS,
            times_ns: (0..s.buckets.len() as u64)
                .map(|i| s.start_ns + i * bucket)
                .collect(),
            series,
            scan: (&rep).into(),
        }))
    })
    .await
}

/// Parameters of a flow search.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FlowsParams {
    /// Flows per page (default 100; at most 10 000 as JSON, 1 000 000 as an export).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Columns to return, comma-separated schema names (default: all; docs/schema.md).
    pub columns: Option<String>,
    /// `json` (default, one page), `ndjson` or `csv` (exports).
    pub format: Option<String>,
    /// Filter in the `flowsight query` language, e.g. `proto tcp and dst port 443`.
    pub filter: Option<String>,
    /// Flows starting at or after this time (`2026-11-22T10:00:00Z`, `1h` ago, Unix seconds).
    pub since: Option<String>,
    /// Flows starting before this time.
    pub until: Option<String>,
}

/// A page of flows.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FlowsPage {
    /// Flows by start time, in goflow2's JSON layout (the columns asked for).
    #[schema(value_type = Vec<Object>)]
    pub flows: Vec<serde_json::Value>,
    /// Flows matching the filter and range, over all pages.
    pub matched: Counts,
    /// Pass as `cursor` for the next page; absent on the last one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// What the query read.
    pub scan: ScanStats,
}

/// Flow search: flows matching a filter and range, by start time, paginated or exported.
#[utoipa::path(get, path = "/api/v1/flows", params(FlowsParams),
    responses((status = 200, body = FlowsPage, description = "JSON page; with format=ndjson or csv, the flows as text"),
              (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn flows(
    State(api): State<Api>,
    p: Result<Q<FlowsParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Q(p) = p.map_err(rejected)?;
    let q = scope(&p.filter, &p.since, &p.until)?;
    let format = p.format.clone().unwrap_or_else(|| "json".into());
    let max = match format.as_str() {
        "json" => api.budget.max_page,
        "ndjson" | "csv" => api.budget.max_export,
        other => {
            return Err(ApiError::param(
                "format",
                format!("unknown format `{other}`: use json, ndjson or csv"),
            ));
        }
    };
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > max {
        return Err(ApiError::param(
            "limit",
            format!("limit must be 1 to {max} with format={format}"),
        ));
    }
    // Keyset pagination: the cursor is the last flow's place in the engine's total order,
    // and the next page starts strictly after it, so pages neither repeat nor skip a flow,
    // also while new flows arrive.
    let after: Option<FlowKey> = match &p.cursor {
        None => None,
        Some(c) => Some(parse_cursor(c).ok_or_else(|| {
            ApiError::param(
                "cursor",
                "not a cursor of this API: pass next_cursor as given",
            )
        })?),
    };
    let columns: Option<Vec<String>> = match &p.columns {
        None => None,
        Some(c) => {
            let mut v = Vec::new();
            for name in c.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                if !flowsight_schema::FIELDS.iter().any(|f| f.name == name) {
                    return Err(ApiError::param(
                        "columns",
                        format!(
                            "unknown column `{name}`: the columns are listed in docs/schema.md"
                        ),
                    ));
                }
                v.push(name.to_string());
            }
            Some(v)
        }
    };
    if format != "json" {
        // Exports stream: the flows are selected (and held, within max_export) by one scan,
        // then rendered and sent a few thousand rows at a time, so the text of a million
        // flows is never in memory at once and the client sees bytes early. At most
        // EXPORTS_AT_ONCE are rendered at a time, and a client that stops reading for
        // EXPORT_STALL is dropped: stalled downloads cannot pile up.
        let permit = tokio::time::timeout(api.budget.timeout, api.exports.clone().acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| {
                ApiError::server(
                    503,
                    "busy",
                    format!("{EXPORTS_AT_ONCE} exports are running: try again when one ends"),
                )
            })?;
        let cols = columns.clone();
        let (b, tot) = api
            .run(move |e| {
                let names: Option<Vec<&str>> = cols
                    .as_ref()
                    .map(|c| c.iter().map(String::as_str).collect());
                let (b, tot, _) = e.flows(&q, after.as_ref(), Some(limit), names.as_deref())?;
                Ok((b, tot))
            })
            .await?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        let rows = b.len();
        let csv = format == "csv";
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            render_export(&b, csv, columns, &tx);
        });
        let (mime, name) = if csv {
            (
                "text/csv; charset=utf-8",
                "attachment; filename=\"flows.csv\"",
            )
        } else {
            (
                "application/x-ndjson",
                "attachment; filename=\"flows.ndjson\"",
            )
        };
        let mut resp = (
            [
                (header::CONTENT_TYPE, mime),
                (header::CONTENT_DISPOSITION, name),
            ],
            axum::body::Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx)),
        )
            .into_response();
        // How many flows matched, and how many this export carries (fewer: raise `limit`,
        // or page with the flow search's cursors).
        for (k, v) in [
            ("x-flowsight-matched", tot.flows as usize),
            ("x-flowsight-exported", rows),
        ] {
            resp.headers_mut().insert(k, HeaderValue::from(v));
        }
        return Ok(resp);
    }
    api.run(move |e| {
        let names: Option<Vec<&str>> = columns
            .as_ref()
            .map(|c| c.iter().map(String::as_str).collect());
        let (b, tot, rep) = e.flows(&q, after.as_ref(), Some(limit), names.as_deref())?;
        let mut rows: Vec<serde_json::Value> = Vec::with_capacity(limit);
        let mut s = String::new();
        for r in b.iter() {
            s.clear();
            r.write_json(&mut s);
            let mut v: serde_json::Value = serde_json::from_str(&s)
                .map_err(|e| ApiError::server(500, "internal", e.to_string()))?;
            if let (Some(cols), Some(o)) = (&columns, v.as_object_mut()) {
                o.retain(|k, _| cols.iter().any(|c| c == k));
            }
            rows.push(v);
        }
        let next =
            (rows.len() == limit && !b.is_empty()).then(|| cursor(&flow_key(&b, b.len() - 1)));
        let matched = Counts::from((tot.flows, tot.packets, tot.bytes));
        Ok(axum::Json(FlowsPage {
            flows: rows,
            matched,
            next_cursor: next,
            scan: (&rep).into(),
        })
        .into_response())
    })
    .await
}

/// Rows rendered per chunk of an export.
const EXPORT_CHUNK: usize = 4096;
/// Exports rendered at once.
const EXPORTS_AT_ONCE: usize = 2;
/// How long an export waits for a client that stopped reading.
const EXPORT_STALL: Duration = Duration::from_secs(60);

type ChunkTx = tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>;

/// Sends one chunk; false when the client is gone or stalled.
fn send_chunk(tx: &ChunkTx, b: Vec<u8>) -> bool {
    let mut item = Ok(b);
    let start = std::time::Instant::now();
    loop {
        match tx.try_send(item) {
            Ok(()) => return true,
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return false,
            Err(tokio::sync::mpsc::error::TrySendError::Full(back)) => {
                if start.elapsed() > EXPORT_STALL {
                    return false;
                }
                item = back;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// Renders an export as NDJSON or CSV into `tx`, a chunk at a time; stops early when the
/// client goes away.
fn render_export(
    b: &flowsight_schema::FlowBatch,
    csv: bool,
    columns: Option<Vec<String>>,
    tx: &ChunkTx,
) {
    let cols: Vec<String> = columns.clone().unwrap_or_else(|| {
        flowsight_schema::FIELDS
            .iter()
            .filter(|f| !f.enrichment || !csv)
            .map(|f| f.name.to_string())
            .collect()
    });
    let mut out = String::new();
    if csv {
        out.push_str(&cols.join(","));
        out.push('\n');
    }
    let mut s = String::new();
    for (i, r) in b.iter().enumerate() {
        s.clear();
        r.write_json(&mut s);
        if !csv && columns.is_none() {
            out.push_str(&s);
        } else {
            let mut v = match serde_json::from_str::<serde_json::Value>(&s) {
                Ok(v) => v,
                Err(e) => {
                    // The transfer aborts visibly rather than ending without the row.
                    send_chunk(tx, Vec::new());
                    let _ = tx.try_send(Err(std::io::Error::other(e)));
                    return;
                }
            };
            if csv {
                let line: Vec<String> = cols
                    .iter()
                    .map(|c| match v.get(c) {
                        Some(serde_json::Value::String(s)) => {
                            flowsight_query::csv_field(s).into_owned()
                        }
                        Some(serde_json::Value::Null) | None => String::new(),
                        Some(x) => flowsight_query::csv_field(&x.to_string()).into_owned(),
                    })
                    .collect();
                out.push_str(&line.join(","));
            } else {
                if let Some(o) = v.as_object_mut() {
                    o.retain(|k, _| cols.iter().any(|c| c == k));
                }
                out.push_str(&v.to_string());
            }
        }
        out.push('\n');
        if (i + 1) % EXPORT_CHUNK == 0 && !send_chunk(tx, std::mem::take(&mut out).into_bytes()) {
            return;
        }
    }
    if !out.is_empty() {
        send_chunk(tx, out.into_bytes());
    }
}

/// Lowercase hex of `bytes` (cursor addresses, token digests).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<[u8; 16]> {
    flowsight_collector::config::parse_hex(s)
}

/// A cursor: `k` and the key's fields joined by `.` (addresses in hex).
fn cursor(k: &FlowKey) -> String {
    format!(
        "k{}.{}.{}.{}.{}.{}.{}.{}.{}.{}.{}.{}.{}.{}.{}",
        k.start_ns,
        k.end_ns,
        hex(&k.src_addr),
        hex(&k.dst_addr),
        k.src_port,
        k.dst_port,
        k.proto,
        k.bytes,
        k.packets,
        hex(&k.sampler),
        k.in_if,
        k.out_if,
        k.received_ns,
        k.sequence,
        k.tcp_flags
    )
}

fn parse_cursor(c: &str) -> Option<FlowKey> {
    let f: Vec<&str> = c.strip_prefix('k')?.split('.').collect();
    if f.len() != 15 {
        return None;
    }
    Some(FlowKey {
        start_ns: f[0].parse().ok()?,
        end_ns: f[1].parse().ok()?,
        src_addr: unhex(f[2])?,
        dst_addr: unhex(f[3])?,
        src_port: f[4].parse().ok()?,
        dst_port: f[5].parse().ok()?,
        proto: f[6].parse().ok()?,
        bytes: f[7].parse().ok()?,
        packets: f[8].parse().ok()?,
        sampler: unhex(f[9])?,
        in_if: f[10].parse().ok()?,
        out_if: f[11].parse().ok()?,
        received_ns: f[12].parse().ok()?,
        sequence: f[13].parse().ok()?,
        tcp_flags: f[14].parse().ok()?,
    })
}

/// One exporter's statistics (packets, records, decode errors, sequence loss, templates,
/// sampling, last seen), as `/metrics` counts them.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(value_type = Object)]
pub struct ExporterJson(serde_json::Value);

/// Every exporter seen since the collector started.
#[utoipa::path(get, path = "/api/v1/exporters",
    responses((status = 200, body = Vec<ExporterJson>)))]
async fn exporters(State(api): State<Api>) -> axum::Json<Vec<ExporterJson>> {
    let v = match &api.collector {
        Some(s) => s
            .exporters()
            .into_iter()
            .map(|(ip, e)| {
                let mut o = serde_json::to_value(&e).unwrap_or_default();
                o["address"] = serde_json::Value::String(ip.to_string());
                ExporterJson(o)
            })
            .collect(),
        None => Vec::new(),
    };
    axum::Json(v)
}

/// Health of the server.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: &'static str,
    /// flowsight's version.
    pub version: &'static str,
    /// Whether the collector runs in this process: `on` or `off`.
    pub collector: &'static str,
    /// `on` when enrichment sources are loaded, `off` otherwise (the portal says so).
    pub enrichment: &'static str,
    /// The loaded enrichment sources.
    pub enrichment_sources: Vec<String>,
}

/// Health, version and enrichment state.
#[utoipa::path(get, path = "/api/v1/health", responses((status = 200, body = Health)))]
async fn health(State(api): State<Api>) -> axum::Json<Health> {
    let (enrichment, sources) = match api.collector.as_ref().and_then(|c| c.enrich.as_ref()) {
        Some(e) => ("on", e.current().describe()),
        None => ("off", Vec::new()),
    };
    axum::Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        collector: if api.collector.is_some() { "on" } else { "off" },
        enrichment,
        enrichment_sources: sources,
    })
}

/// flowsight's version and the API's.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Version {
    /// flowsight's version.
    pub version: &'static str,
    /// The API version (the `/api/v1` prefix).
    pub api: &'static str,
}

/// Version.
#[utoipa::path(get, path = "/api/v1/version", responses((status = 200, body = Version)))]
async fn version() -> axum::Json<Version> {
    axum::Json(Version {
        version: env!("CARGO_PKG_VERSION"),
        api: "v1",
    })
}

/// This document.
#[utoipa::path(get, path = "/api/v1/openapi.json",
    responses((status = 200, description = "The OpenAPI 3 document of this API", content_type = "application/json")))]
async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        ApiDoc::openapi().to_json().unwrap_or_default(),
    )
        .into_response()
}

/// Prometheus metrics of the collector (text exposition format 0.0.4).
#[utoipa::path(get, path = "/metrics",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(api): State<Api>) -> Response {
    let body = api
        .collector
        .as_ref()
        .map(|s| s.render_prometheus())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let mut a = [0u8; 16];
        a[15] = 7;
        a[0] = 0xfe;
        let k = FlowKey {
            start_ns: 1,
            end_ns: 2,
            src_addr: a,
            dst_addr: [0xff; 16],
            src_port: 3,
            dst_port: 4,
            proto: 6,
            bytes: 1 << 40,
            packets: 9,
            sampler: a,
            in_if: 10,
            out_if: 11,
            received_ns: 12,
            sequence: 13,
            tcp_flags: 0x12,
        };
        assert_eq!(parse_cursor(&cursor(&k)), Some(k));
        for bad in ["", "k", "k1.2", "o100", &cursor(&k).replace(".6.", ".600.")] {
            assert_eq!(parse_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn buckets_and_durations() {
        assert_eq!(parse_duration("10s"), Ok(10 * NS));
        assert_eq!(parse_duration("5m"), Ok(300 * NS));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("7parsecs").is_err());
        assert!(parse_duration("99999999999999d").is_err());
        // An hour: 15 s would give 240 buckets; the next readable width is 30 s.
        assert_eq!(auto_bucket(3600 * NS), 30 * NS);
        assert_eq!(auto_bucket(240 * 86_400 * NS), 86_400 * NS);
    }
}
