//! HTTP: the three endpoints on axum, their refusals and audit lines. The accept loop that serves
//! them is in [`crate::listener`].

use crate::Limits;
use crate::appraise::{Appraiser, Guest};
use crate::audit::{Audit, Event, evidence_mark, session_tag};
use crate::rules::{self, Grant, Rules};
use crate::session::{MAX_SESSION_ID_LEN, SessionError, SessionLimits, Sessions};
use crate::stats::Stats;
use crate::store::{ResourceStore, StoreError};
use crate::token::TokenSigner;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use axum::routing::{get, post};
use snpkit_kbs::message::{
    self, Challenge, ErrorInformation, MAX_ATTESTATION_LEN, MAX_REQUEST_LEN,
};
use snpkit_kbs::{PROTOCOL_VERSION, ResourcePath, SESSION_COOKIE, TEE_SNP};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_rustls::rustls;

/// A response header on replies to emulated guests (ASCII: header values are).
pub const EMULATED_HEADER: &str = "snpkit-evidence";
pub const EMULATED_HEADER_VALUE: &str = "EMULATED - NOT HARDWARE-BACKED";

/// The broker's shared state.
#[derive(Debug)]
pub struct Inner {
    pub(crate) appraiser: Appraiser,
    pub(crate) sessions: Sessions<Guest>,
    pub(crate) rules: Option<Rules>,
    pub(crate) store: ResourceStore,
    pub(crate) audit: Audit,
    pub(crate) signer: TokenSigner,
    pub(crate) limits: Limits,
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    pub(crate) stats: Stats,
}

impl Inner {
    pub(crate) fn new(
        appraiser: Appraiser,
        rules: Option<Rules>,
        store: ResourceStore,
        audit: Audit,
        limits: Limits,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Inner {
        Inner {
            appraiser,
            sessions: Sessions::new(SessionLimits {
                nonce_ttl: limits.nonce_ttl,
                session_ttl: limits.session_ttl,
                max_sessions: limits.max_sessions,
            }),
            rules,
            store,
            audit,
            signer: TokenSigner::generate(),
            limits,
            tls,
            stats: Stats::default(),
        }
    }
}

/// A refusal: status, Trustee's problem type and what to do.
#[derive(Debug)]
struct Problem {
    status: StatusCode,
    kind: &'static str,
    detail: String,
}

fn problem(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Problem {
    Problem {
        status,
        kind,
        detail: detail.into(),
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

impl Problem {
    fn response(&self) -> Response<Body> {
        let info = ErrorInformation::new(self.kind, self.detail.clone());
        json_response(self.status, serde_json::to_vec(&info).unwrap_or_default())
    }
}

/// The connection's peer, put on every request by the accept loop.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

fn peer_of(req: &Request<Body>) -> Option<String> {
    req.extensions().get::<Peer>().map(|p| p.0.to_string())
}

/// The `kbs-session-id` cookie, if exactly one value is given.
fn session_cookie(headers: &HeaderMap) -> Result<String, Problem> {
    let mut found: Option<String> = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            let Some((name, v)) = pair.trim().split_once('=') else {
                continue;
            };
            if name.trim() != SESSION_COOKIE {
                continue;
            }
            let v = v.trim();
            if v.is_empty() || v.len() > MAX_SESSION_ID_LEN {
                return Err(problem(
                    StatusCode::UNAUTHORIZED,
                    "TokenNotFound",
                    "the kbs-session-id cookie is empty or too long",
                ));
            }
            if found.as_deref().is_some_and(|f| f != v) {
                return Err(problem(
                    StatusCode::UNAUTHORIZED,
                    "TokenNotFound",
                    "two different kbs-session-id cookies: send one",
                ));
            }
            found = Some(v.to_owned());
        }
    }
    found.ok_or_else(|| {
        problem(
            StatusCode::UNAUTHORIZED,
            "TokenNotFound",
            "no kbs-session-id cookie: POST /kbs/v0/auth first and send its cookie back",
        )
    })
}

/// Read a request body of at most `max` bytes within the request deadline.
async fn read_body(req: Request<Body>, max: usize, deadline: Duration) -> Result<Bytes, Problem> {
    let too_large = || {
        problem(
            StatusCode::PAYLOAD_TOO_LARGE,
            "SerdeError",
            format!("the body is more than the {max} bytes allowed here"),
        )
    };
    if let Some(len) = req.headers().get(header::CONTENT_LENGTH)
        && len
            .to_str()
            .ok()
            .and_then(|l| l.parse::<u64>().ok())
            .is_none_or(|l| l > max as u64)
    {
        return Err(too_large());
    }
    match tokio::time::timeout(deadline, axum::body::to_bytes(req.into_body(), max)).await {
        Err(_) => Err(problem(
            StatusCode::REQUEST_TIMEOUT,
            "SerdeError",
            format!("the body did not arrive within {deadline:?}"),
        )),
        Ok(Err(_)) => Err(too_large()),
        Ok(Ok(b)) => Ok(b),
    }
}

fn session_error(e: SessionError) -> Problem {
    match e {
        SessionError::Full(_) => problem(
            StatusCode::SERVICE_UNAVAILABLE,
            "AttestationError",
            e.to_string(),
        ),
        _ => problem(StatusCode::UNAUTHORIZED, "AttestationError", e.to_string()),
    }
}

fn cookie_header(state: &Inner, id: &str, ttl: Duration) -> HeaderValue {
    let secure = if state.tls.is_some() { "; Secure" } else { "" };
    let text = format!(
        "{SESSION_COOKIE}={id}; Path=/kbs; Max-Age={}; HttpOnly{secure}",
        ttl.as_secs().max(1)
    );
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn record(state: &Inner, event: Event) -> bool {
    if let Err(e) = state.audit.record(event) {
        tracing::error!("cannot write the audit log: {e}");
        return false;
    }
    true
}

async fn auth(state: Arc<Inner>, req: Request<Body>) -> Response<Body> {
    let peer = peer_of(&req);
    let result = async {
        let body = read_body(req, MAX_REQUEST_LEN, state.limits.request_timeout).await?;
        let request = message::parse_request(&body).map_err(|e| problem(StatusCode::UNAUTHORIZED, "SerdeError", error_chain(&e)))?;
        if request.version != PROTOCOL_VERSION {
            return Err(problem(
                StatusCode::UNAUTHORIZED,
                "AttestationError",
                format!("KBS protocol version {:?} is not {PROTOCOL_VERSION}, the one this broker speaks", request.version),
            ));
        }
        if request.tee != TEE_SNP {
            return Err(problem(StatusCode::UNAUTHORIZED, "AttestationError", format!("tee {:?} is not served here: this broker judges only \"snp\" evidence", request.tee)));
        }
        state.sessions.challenge(Instant::now()).map_err(session_error)
    }
    .await;
    match result {
        Ok((id, nonce)) => {
            let body = serde_json::to_vec(&Challenge {
                nonce,
                extra_params: serde_json::json!({}),
            })
            .unwrap_or_default();
            record(
                &state,
                Event {
                    event: "auth",
                    decision: "allow",
                    peer,
                    session: Some(session_tag(&id)),
                    ..Event::default()
                },
            );
            let mut r = json_response(StatusCode::OK, body);
            r.headers_mut().insert(
                header::SET_COOKIE,
                cookie_header(&state, &id, state.limits.nonce_ttl),
            );
            r
        }
        Err(p) => {
            record(
                &state,
                Event {
                    event: "auth",
                    decision: "deny",
                    peer,
                    reason: Some(p.detail.clone()),
                    ..Event::default()
                },
            );
            p.response()
        }
    }
}

/// An error and its sources in one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

async fn attest(state: Arc<Inner>, req: Request<Body>) -> Response<Body> {
    let peer = peer_of(&req);
    let mut ev = Event {
        event: "attest",
        decision: "deny",
        peer,
        ..Event::default()
    };
    let id = match session_cookie(req.headers()) {
        Ok(id) => id,
        Err(p) => {
            ev.reason = Some(p.detail.clone());
            record(&state, ev);
            return p.response();
        }
    };
    ev.session = Some(session_tag(&id));
    // The nonce is spent by any attempt, whatever follows.
    let nonce = match state.sessions.take_nonce(&id, Instant::now()) {
        Ok(n) => n,
        Err(e) => {
            let p = session_error(e);
            ev.reason = Some(p.detail.clone());
            record(&state, ev);
            return p.response();
        }
    };
    let parsed = match read_body(req, MAX_ATTESTATION_LEN, state.limits.request_timeout).await {
        Ok(body) => message::parse_attestation(&body)
            .map_err(|e| problem(StatusCode::UNAUTHORIZED, "SerdeError", error_chain(&e))),
        Err(p) => Err(p),
    };
    let attestation = match parsed {
        Ok(a) => a,
        Err(p) => {
            state.sessions.forget(&id);
            ev.reason = Some(p.detail.clone());
            record(&state, ev);
            return p.response();
        }
    };
    let worker = state.clone();
    let appraisal = tokio::task::spawn_blocking(move || {
        worker.appraiser.appraise(
            &attestation,
            &nonce,
            worker.rules.as_ref(),
            time::OffsetDateTime::now_utc(),
        )
    })
    .await;
    let appraisal = match appraisal {
        Ok(a) => a,
        Err(_) => {
            state.sessions.forget(&id);
            let p = problem(
                StatusCode::INTERNAL_SERVER_ERROR,
                "AttestationError",
                "the appraisal stopped unexpectedly",
            );
            ev.reason = Some(p.detail.clone());
            record(&state, ev);
            return p.response();
        }
    };
    Stats::add(&state.stats.verify_ns, appraisal.verify_time);
    Stats::add(&state.stats.endorse_ns, appraisal.endorse_time);
    ev.verify_ms = Some(appraisal.verify_time.as_secs_f64() * 1000.0);
    ev.measurement = appraisal.claimed_measurement.map(hex::encode);
    if let Some(v) = &appraisal.verdict {
        ev.emulated = Some(v.emulated);
        ev.evidence = Some(evidence_mark(v.emulated));
        ev.failed_checks = v
            .failed()
            .filter(|c| c.evaluated)
            .map(|c| c.name.clone())
            .collect();
    }
    match appraisal.result {
        Ok(guest) => {
            let token = state.signer.issue(&guest, state.limits.session_ttl);
            ev.decision = "allow";
            ev.configs = guest.configs.clone();
            ev.measured_by = Some(guest.measured_by.to_string());
            let emulated = guest.emulated;
            state.sessions.attest(&id, guest, Instant::now());
            state.stats.attestations.fetch_add(1, Ordering::Relaxed);
            if !record(&state, ev) {
                state.sessions.forget(&id);
                return problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "AttestationError",
                    "the broker cannot write its audit log",
                )
                .response();
            }
            let body = serde_json::to_vec(&message::AttestationToken { token }).unwrap_or_default();
            let mut r = json_response(StatusCode::OK, body);
            r.headers_mut().insert(
                header::SET_COOKIE,
                cookie_header(&state, &id, state.limits.session_ttl),
            );
            if emulated {
                r.headers_mut().insert(
                    EMULATED_HEADER,
                    HeaderValue::from_static(EMULATED_HEADER_VALUE),
                );
            }
            r
        }
        Err(reason) => {
            state.sessions.forget(&id);
            ev.reason = Some(reason.clone());
            record(&state, ev);
            problem(StatusCode::UNAUTHORIZED, "AttestationError", reason).response()
        }
    }
}

async fn resource(state: Arc<Inner>, req: Request<Body>) -> Response<Body> {
    let peer = peer_of(&req);
    let mut ev = Event {
        event: "resource",
        decision: "deny",
        peer,
        ..Event::default()
    };
    // Keep only what is needed: the request (its body type) is not Sync, and this future must be Send.
    let (parts, _) = req.into_parts();
    let raw_path = parts.uri.path().to_owned();
    let headers = parts.headers;
    let outcome = async {
        let id = session_cookie(&headers)?;
        ev.session = Some(session_tag(&id));
        let attested = state.sessions.attested(&id, Instant::now()).map_err(session_error)?;
        let guest = &attested.guest;
        ev.emulated = Some(guest.emulated);
        ev.evidence = Some(evidence_mark(guest.emulated));
        ev.measurement = Some(hex::encode(guest.measurement));
        ev.configs = guest.configs.clone();
        let tail = raw_path.strip_prefix(message::PATH_RESOURCE_PREFIX).unwrap_or_default();
        let name = ResourcePath::from_url_path(tail).map_err(|e| problem(StatusCode::NOT_FOUND, "InvalidRequestPath", e.to_string()))?;
        ev.resource = Some(name.to_string());
        if let Some(rules) = &state.rules {
            let who = rules::Guest {
                configs: &guest.configs,
                measurement: &guest.measurement,
                signers: &guest.signers,
            };
            match rules.decide(&name, &who) {
                Grant::Rule { path, by } => ev.rule = Some(format!("{path} (by {by})")),
                Grant::NoRules => {}
                Grant::Refused { matching_rules, reasons } => {
                    let why = if reasons.is_empty() { String::new() } else { format!(": {}", reasons.join("; ")) };
                    return Err(problem(
                        StatusCode::FORBIDDEN,
                        "PolicyDeny",
                        format!("no rule of {} grants {name} to this guest ({matching_rules} rules name the resource){why}", rules.source().display()),
                    ));
                }
            }
        }
        let store = state.store.clone();
        let wanted = name.clone();
        let bytes = tokio::task::spawn_blocking(move || store.read(&wanted))
            .await
            .map_err(|_| problem(StatusCode::INTERNAL_SERVER_ERROR, "PluginInternalError", "reading the resource stopped unexpectedly"))?
            .map_err(|e| match e {
                StoreError::NotFound(_) => problem(StatusCode::NOT_FOUND, "InvalidRequestPath", e.to_string()),
                StoreError::Escapes(_) => problem(StatusCode::FORBIDDEN, "PolicyDeny", e.to_string()),
                _ => {
                    tracing::error!("{}", error_chain(&e));
                    problem(StatusCode::INTERNAL_SERVER_ERROR, "PluginInternalError", format!("resource {name} cannot be served; the broker's operator can see why"))
                }
            })?;
        let sealed = snpkit_kbs::jwe::seal(&guest.key, &bytes)
            .map_err(|e| problem(StatusCode::INTERNAL_SERVER_ERROR, "JweError", e.to_string()))?;
        Ok((sealed, bytes.len(), guest.emulated))
    }
    .await;
    match outcome {
        Ok((sealed, len, emulated)) => {
            ev.decision = "allow";
            ev.bytes = Some(len);
            if !record(&state, ev) {
                return problem(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "PluginInternalError",
                    "the broker cannot write its audit log, so it releases nothing",
                )
                .response();
            }
            state.stats.releases.fetch_add(1, Ordering::Relaxed);
            let mut r = json_response(StatusCode::OK, sealed);
            if emulated {
                r.headers_mut().insert(
                    EMULATED_HEADER,
                    HeaderValue::from_static(EMULATED_HEADER_VALUE),
                );
            }
            r
        }
        Err(p) => {
            ev.reason = Some(p.detail.clone());
            record(&state, ev);
            p.response()
        }
    }
}

async fn not_found(req: Request<Body>) -> Response<Body> {
    problem(
        StatusCode::NOT_FOUND,
        "InvalidRequestPath",
        format!(
            "no endpoint {}; this broker serves {} , {} and {}<repo>/<type>/<tag>",
            req.uri().path(),
            message::PATH_AUTH,
            message::PATH_ATTEST,
            message::PATH_RESOURCE_PREFIX
        ),
    )
    .response()
}

fn timed<F, Fut>(
    state: Arc<Inner>,
    f: F,
) -> impl Fn(
    Request<Body>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response<Body>> + Send>>
+ Clone
+ Send
+ Sync
+ 'static
where
    F: Fn(Arc<Inner>, Request<Body>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Response<Body>> + Send + 'static,
{
    move |req| {
        let state = state.clone();
        let f = f.clone();
        Box::pin(async move {
            let start = Instant::now();
            let r = f(state.clone(), req).await;
            Stats::add(&state.stats.handler_ns, start.elapsed());
            r
        })
    }
}

pub(crate) fn router(state: Arc<Inner>) -> Router {
    Router::new()
        .route(message::PATH_AUTH, post(timed(state.clone(), auth)))
        .route(message::PATH_ATTEST, post(timed(state.clone(), attest)))
        .route(
            &format!("{}{{*rest}}", message::PATH_RESOURCE_PREFIX),
            get(timed(state, resource)),
        )
        .fallback(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(header::COOKIE, HeaderValue::from_str(c).expect("ascii"));
        }
        h
    }

    #[test]
    fn the_session_cookie_is_found_once_among_others() {
        assert_eq!(
            session_cookie(&headers(&["a=1; kbs-session-id=abc; b=2"])).expect("found"),
            "abc"
        );
        assert_eq!(
            session_cookie(&headers(&["kbs-session-id=abc", "kbs-session-id=abc"]))
                .expect("same twice"),
            "abc"
        );
        assert!(session_cookie(&headers(&["kbs-session-id=abc; kbs-session-id=def"])).is_err());
        assert!(session_cookie(&headers(&["other=1"])).is_err());
        assert!(
            session_cookie(&headers(&[&format!("kbs-session-id={}", "a".repeat(200))])).is_err()
        );
        assert!(session_cookie(&headers(&["kbs-session-id="])).is_err());
    }
}
