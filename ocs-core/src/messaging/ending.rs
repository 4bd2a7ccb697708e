//! How sessions and outstanding messages end: at sign-out (BYE, then
//! what is still unanswered fails) and when the connection drops.

use super::*;

impl Messaging {
    /// The session has ended (signed out, failed, out of time): every
    /// message without an outcome fails ([`FailureReason::SignedOut`]) and
    /// the sessions are forgotten.
    pub fn settle_all(&mut self) {
        self.ending = true;
        self.abandon_pending();
        self.forget_sessions(FailureReason::SignedOut, "the client stopped", false);
    }

    /// Every session is forgotten without a BYE (the connection or the
    /// client is gone): messages waiting for an invitation fail with
    /// `reason`, and each session's end is reported.
    fn forget_sessions(&mut self, reason: FailureReason, detail: &str, by_peer: bool) {
        let sessions: Vec<(String, Session)> = self.sessions.drain().collect();
        for (uri, s) in sessions {
            if let SessionState::Inviting { first, queued, .. } = s.state {
                self.fail(first, reason, detail);
                for (q, _) in queued {
                    self.fail(q, reason, detail);
                }
            }
            self.events
                .push_back(ImEvent::SessionEnded { uri, by_peer });
        }
    }

    /// Sign-out, first step: every established session gets its BYE;
    /// messages still queued behind an invitation fail
    /// ([`FailureReason::SignedOut`]); messages on the wire (and the
    /// invitations) wait for their answers. [`Messaging::is_quiet`] says
    /// when none is left; new messages are refused from now on.
    pub fn end_all(&mut self, ep: &mut Endpoint, now: Instant) {
        self.ending = true;
        let keys: Vec<String> = self.sessions.keys().cloned().collect();
        for k in keys {
            let Some(mut s) = self.sessions.remove(&k) else {
                continue;
            };
            match &mut s.state {
                SessionState::Inviting { queued, .. } => {
                    for (id, _) in std::mem::take(queued) {
                        self.fail(
                            id,
                            FailureReason::SignedOut,
                            "signed out before the session was set up",
                        );
                    }
                    // The invitation's answer settles its message.
                    self.sessions.insert(k, s);
                }
                SessionState::Up => self.close(ep, &k, s, false, now),
            }
        }
    }

    /// True when no request of the IM layer waits for an answer.
    pub fn is_quiet(&self) -> bool {
        self.pending.is_empty()
    }

    /// Sign-out gives up waiting: every message without an answer fails
    /// ([`FailureReason::SignedOut`]); late answers are ignored.
    pub fn abandon_pending(&mut self) {
        let pending: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        for p in pending {
            match p {
                Pending::Message { id, .. } => self.fail(
                    id,
                    FailureReason::SignedOut,
                    "signed out before the server answered",
                ),
                Pending::Invite { peer, .. } => {
                    if let Some(Session {
                        state: SessionState::Inviting { first, queued, .. },
                        ..
                    }) = self.sessions.remove(&peer)
                    {
                        self.fail(
                            first,
                            FailureReason::SignedOut,
                            "signed out before the server answered",
                        );
                        for (q, _) in queued {
                            self.fail(
                                q,
                                FailureReason::SignedOut,
                                "signed out before the server answered",
                            );
                        }
                    }
                }
                Pending::Other => {}
            }
        }
    }

    /// Every outstanding message fails: the connection dropped. Sessions
    /// are forgotten (the dialogs died with it).
    pub fn handle_connection_lost(&mut self) {
        let pending: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        for p in pending {
            if let Pending::Message { id, .. } = p {
                self.fail(
                    id,
                    FailureReason::ServiceUnavailable,
                    "the connection dropped before the server answered; it may or may not have been delivered",
                );
            }
        }
        self.forget_sessions(FailureReason::ServiceUnavailable, "connection lost", true);
    }
}
