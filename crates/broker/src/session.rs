//! Sessions, keyed by the `kbs-session-id` cookie.
//!
//! ```text
//! auth ──▶ Challenged{nonce, expires} ──attest──▶ InFlight ──pass──▶ Attested{guest, expires}
//!                                                          └─fail──▶ (removed)
//! ```
//! The nonce is single-use: `attest` takes it out whatever the outcome, so a second `attest` on
//! the same cookie (a replay, or a retry) finds none. A nonce lives `nonce_ttl`, an attested
//! session `session_ttl`. The table is bounded: when it is full, expired entries are purged, and
//! if that frees nothing the `auth` is refused (503) rather than memory growing without bound.

use rand_core::{OsRng, RngCore};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest cookie value looked up (ours are 64 hex digits).
pub const MAX_SESSION_ID_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SessionError {
    #[error(
        "no session has this cookie (unknown, or forgotten after it expired): start again with /kbs/v0/auth"
    )]
    Unknown,
    #[error("the challenge expired: its nonce lives {0:?}; start again with /kbs/v0/auth")]
    Expired(Duration),
    #[error("this session's nonce was already used: each challenge answers one attestation")]
    NonceUsed,
    #[error("this session has not attested: POST /kbs/v0/attest first")]
    NotAttested,
    #[error("this session's attestation expired (it lives {0:?}): attest again")]
    AttestationExpired(Duration),
    #[error("the broker has {0} open sessions, its limit: try again shortly")]
    Full(usize),
}

/// What an attested session may ask for: the verified facts about its guest.
#[derive(Debug)]
pub struct Attested<G> {
    pub guest: G,
    pub expires: Instant,
}

#[derive(Debug)]
enum State<G> {
    Challenged { nonce: String, expires: Instant },
    InFlight { expires: Instant },
    Attested(Arc<Attested<G>>),
}

impl<G> State<G> {
    fn expires(&self) -> Instant {
        match self {
            State::Challenged { expires, .. } | State::InFlight { expires } => *expires,
            State::Attested(a) => a.expires,
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub nonce_ttl: Duration,
    pub session_ttl: Duration,
    pub max_sessions: usize,
}

#[derive(Debug)]
pub struct Sessions<G> {
    table: Mutex<HashMap<String, State<G>>>,
    limits: SessionLimits,
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    OsRng.fill_bytes(&mut b);
    hex::encode(b)
}

/// A fresh nonce: 32 random bytes in standard base64, as Trustee makes them.
pub fn new_nonce() -> String {
    use base64::Engine;
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    base64::engine::general_purpose::STANDARD.encode(b)
}

impl<G> Sessions<G> {
    pub fn new(limits: SessionLimits) -> Sessions<G> {
        Sessions {
            table: Mutex::new(HashMap::new()),
            limits,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, State<G>>> {
        // A panic while holding the lock leaves a consistent map (every update is one insert or
        // remove), so carry on with it.
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// A new session with a fresh nonce: `(cookie, nonce)`.
    pub fn challenge(&self, now: Instant) -> Result<(String, String), SessionError> {
        let mut t = self.lock();
        if t.len() >= self.limits.max_sessions {
            t.retain(|_, s| s.expires() > now);
            if t.len() >= self.limits.max_sessions {
                return Err(SessionError::Full(t.len()));
            }
        }
        let id = random_hex(32);
        let nonce = new_nonce();
        t.insert(
            id.clone(),
            State::Challenged {
                nonce: nonce.clone(),
                expires: now + self.limits.nonce_ttl,
            },
        );
        Ok((id, nonce))
    }

    /// Take the session's nonce for an attestation; it can never be taken again.
    pub fn take_nonce(&self, id: &str, now: Instant) -> Result<String, SessionError> {
        let mut t = self.lock();
        let Some(state) = t.get_mut(id) else {
            return Err(SessionError::Unknown);
        };
        match state {
            // A second attempt must not disturb what the first achieved.
            State::InFlight { .. } | State::Attested(_) => Err(SessionError::NonceUsed),
            State::Challenged { expires, .. } if *expires <= now => {
                t.remove(id);
                Err(SessionError::Expired(self.limits.nonce_ttl))
            }
            State::Challenged { expires, .. } => {
                let expires = *expires;
                match std::mem::replace(state, State::InFlight { expires }) {
                    State::Challenged { nonce, .. } => Ok(nonce),
                    // Matched as Challenged just above.
                    _ => Err(SessionError::NonceUsed),
                }
            }
        }
    }

    /// The attestation passed: the session may now ask for resources.
    pub fn attest(&self, id: &str, guest: G, now: Instant) -> Arc<Attested<G>> {
        let a = Arc::new(Attested {
            guest,
            expires: now + self.limits.session_ttl,
        });
        self.lock()
            .insert(id.to_owned(), State::Attested(a.clone()));
        a
    }

    /// The attestation failed: forget the session.
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    /// The attested guest of a session.
    pub fn attested(&self, id: &str, now: Instant) -> Result<Arc<Attested<G>>, SessionError> {
        let mut t = self.lock();
        match t.get(id) {
            None => Err(SessionError::Unknown),
            Some(State::Attested(a)) if a.expires > now => Ok(a.clone()),
            Some(State::Attested(_)) => {
                t.remove(id);
                Err(SessionError::AttestationExpired(self.limits.session_ttl))
            }
            Some(_) => Err(SessionError::NotAttested),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sessions(max: usize) -> Sessions<u32> {
        Sessions::new(SessionLimits {
            nonce_ttl: Duration::from_secs(10),
            session_ttl: Duration::from_secs(100),
            max_sessions: max,
        })
    }

    #[test]
    fn a_nonce_is_taken_once() {
        let s = sessions(10);
        let now = Instant::now();
        let (id, nonce) = s.challenge(now).expect("room");
        assert_eq!(nonce.len(), 44);
        assert_eq!(s.take_nonce(&id, now), Ok(nonce));
        assert_eq!(s.take_nonce(&id, now), Err(SessionError::NonceUsed));
        s.attest(&id, 7, now);
        assert_eq!(s.take_nonce(&id, now), Err(SessionError::NonceUsed));
        assert_eq!(s.attested(&id, now).expect("attested").guest, 7);
        assert_eq!(s.take_nonce("other", now), Err(SessionError::Unknown));
    }

    #[test]
    fn nonces_and_sessions_expire() {
        let s = sessions(10);
        let now = Instant::now();
        let (id, _) = s.challenge(now).expect("room");
        assert_eq!(s.attested(&id, now).err(), Some(SessionError::NotAttested));
        let later = now + Duration::from_secs(11);
        assert_eq!(
            s.take_nonce(&id, later),
            Err(SessionError::Expired(Duration::from_secs(10)))
        );
        assert_eq!(s.take_nonce(&id, later), Err(SessionError::Unknown));
        let (id, _) = s.challenge(now).expect("room");
        s.take_nonce(&id, now).expect("fresh");
        s.attest(&id, 1, now);
        assert!(s.attested(&id, now + Duration::from_secs(99)).is_ok());
        assert_eq!(
            s.attested(&id, now + Duration::from_secs(101)).err(),
            Some(SessionError::AttestationExpired(Duration::from_secs(100)))
        );
    }

    #[test]
    fn the_table_is_bounded_and_purges_expired_entries() {
        let s = sessions(2);
        let now = Instant::now();
        s.challenge(now).expect("1");
        s.challenge(now).expect("2");
        assert_eq!(s.challenge(now).err(), Some(SessionError::Full(2)));
        // Once the first two expired, there is room again.
        s.challenge(now + Duration::from_secs(11)).expect("purged");
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn a_failed_attestation_forgets_the_session() {
        let s = sessions(10);
        let now = Instant::now();
        let (id, _) = s.challenge(now).expect("room");
        s.take_nonce(&id, now).expect("fresh");
        s.forget(&id);
        assert_eq!(s.attested(&id, now).err(), Some(SessionError::Unknown));
    }
}
