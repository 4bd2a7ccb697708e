//! What a REGISTER's success or redirect means: the GRUU, expiry, refresh
//! and re-authentication times, keep-alive, server capabilities; the
//! redirect target and its loop limit.

use super::*;
use crate::error::Misbehavior;

/// How long before a credential lapses the registration authenticates
/// again (MS-SIPAE 3.2.2: 5 minutes or more).
const CREDENTIAL_MARGIN: Duration = Duration::from_secs(5 * 60);
/// The shortest time between two authentications for a lapsing credential.
const MIN_REAUTH_INTERVAL: Duration = Duration::from_secs(60);

impl Registration {
    pub(super) fn on_success(&mut self, resp: &Message, now: Instant) {
        if matches!(self.auth, AuthState::External { .. }) {
            if let Err(e) = self.finish_external(resp, now) {
                return self.fail(e);
            }
        } else if let Some(sa) = &self.sa {
            // With an association, the 200 must carry a valid server signature.
            match sa.verify(resp) {
                Ok(true) => {}
                Ok(false) => {
                    return self.fail(Error::misbehaved(
                        Misbehavior::BadSignature,
                        "unsigned 200 OK after NTLM authentication",
                    ));
                }
                Err(e) => {
                    return self.fail(Error::misbehaved(
                        Misbehavior::BadSignature,
                        format!("200 OK signature: {e}"),
                    ));
                }
            }
        }
        let refresh = self.state == RegState::Registered;
        // MS-SIPREGE: a refresh that the server calls "added" means our
        // registration had been lost; start again.
        if refresh
            && resp.headers_named("presence-state").any(|h| {
                h.value.contains("register-action=\"added\"")
                    || h.value.contains("register-action=\"fixed\"")
            })
        {
            // Back off rather than loop if a server keeps saying so.
            self.schedule_retry(
                now,
                None,
                Error::misbehaved(
                    Misbehavior::BadAnswer,
                    "refresh answered register-action=added",
                ),
            );
            return;
        }
        // Our binding: the Contact with our +sip.instance, else the first.
        let instance = sip_instance_uuid(&self.cfg.epid);
        let mut expires = resp.expires().ok().flatten();
        let mut gruu = None;
        if let Ok(Contacts::List(list)) = resp.contacts() {
            let ours = list
                .iter()
                .find(|c| {
                    c.params
                        .get_unquoted("+sip.instance")
                        .is_some_and(|i| i.to_ascii_lowercase().contains(&instance))
                })
                .or(list.first());
            if let Some(c) = ours {
                if let Some(e) = c
                    .params
                    .get("expires")
                    .flatten()
                    .and_then(|e| e.parse().ok())
                {
                    expires = Some(e);
                }
                gruu = c.params.get_unquoted("gruu").map(|g| g.into_owned());
            }
        }
        if expires == Some(0) {
            // The server removed the binding it just confirmed: not a
            // registration. Back off instead of refreshing in a loop.
            self.schedule_retry(
                now,
                None,
                Error::misbehaved(Misbehavior::BadAnswer, "200 OK to REGISTER with expires 0"),
            );
            return;
        }
        let expires = expires
            .or(self.cfg.expires)
            .unwrap_or(3600)
            .clamp(1, 7 * 24 * 3600);
        self.expires = expires;
        self.gruu = gruu;
        self.keep_alive = resp
            .ms_keep_alive()
            .ok()
            .flatten()
            .and_then(|k| k.param_u32("timeout"))
            .filter(|t| *t > 0)
            .map(|t| Duration::from_secs(u64::from(t)));
        self.allow_events = resp
            .allow_events()
            .unwrap_or_default()
            .into_iter()
            .map(str::to_owned)
            .collect();
        self.remote_user = resp
            .header("ms-user-logon-data")
            .is_some_and(|v| v.eq_ignore_ascii_case("RemoteUser"));
        let life = Duration::from_secs(u64::from(expires));
        let margin = self.cfg.refresh_margin.min(life / 2);
        self.refresh_at = Some(now + life - margin);
        if let (Some(since), None) = (self.sa_since, self.reauth_at)
            && let Some(sa) = &self.sa
        {
            let mut at = since + self.cfg.sa_lifetime;
            // A certificate (TLS-DSK) that lapses sooner: authenticate
            // again 5 minutes before it does (MS-SIPAE 3.2.2).
            // Within the margin already: at its end (a new handshake with
            // the same certificate gains nothing; the app must supply a new
            // one). Never sooner than a minute, so a certificate about to
            // lapse cannot make the client authenticate without pause.
            if let Some(until) = sa.valid_until() {
                let left = until.duration_since(self.wall_now(now)).unwrap_or_default();
                let before = if left > CREDENTIAL_MARGIN {
                    left - CREDENTIAL_MARGIN
                } else {
                    left
                };
                at = at.min(now + before.max(MIN_REAUTH_INTERVAL));
            }
            self.reauth_at = Some(at);
        }
        // A provisioned certificate is renewed before it lapses, while the
        // session goes on (SIPE's rule: with an hour left).
        if self.cfg.provision_certificates
            && self.sts_uri.is_some()
            && self.renew_at.is_none()
            && let Some(a) = &self.authenticator
            && a.scheme().eq_ignore_ascii_case("TLS-DSK")
            && let Some(until) = a.valid_until()
        {
            let left = until.duration_since(self.wall_now(now)).unwrap_or_default();
            let wait = left.saturating_sub(CERT_RENEW_BEFORE);
            self.renew_at = Some(now + wait.max(MIN_REAUTH_INTERVAL));
        }
        self.state = RegState::Registered;
        self.registered_once = true;
        self.attempt = 0;
        self.challenges = 0;
        self.redirects.clear();
        let (auth_scheme, auth_version) = match (&self.auth, &self.sa) {
            (AuthState::NtlmAuthenticated | AuthState::ExternalAuthenticated, Some(sa)) => {
                (sa.scheme().to_owned(), sa.version())
            }
            (AuthState::Digest { .. }, _) => ("Digest".to_owned(), 0),
            _ => (String::new(), 0),
        };
        self.events.push_back(RegistrationEvent::Registered {
            gruu: self.gruu.clone(),
            expires,
            keep_alive: self.keep_alive,
            refresh,
            auth_scheme,
            auth_version,
        });
    }

    pub(super) fn on_redirect(&mut self, resp: &Message) {
        let target = match resp.contacts() {
            Ok(Contacts::List(list)) => list.first().and_then(|c| {
                let u = c.sip_uri()?;
                Some(Redirect {
                    host: u.host.to_string(),
                    port: u.port,
                    transport: if u.transport().is_some_and(|t| t.eq_ignore_ascii_case("tcp")) {
                        Transport::Tcp
                    } else {
                        Transport::Tls
                    },
                })
            }),
            _ => None,
        };
        if let Some(t) = &target {
            let shown = match t.port {
                Some(p) => format!("{}:{p}", t.host),
                None => t.host.clone(),
            };
            self.redirects.push(shown);
            if self.redirects.len() > self.cfg.max_redirects as usize {
                let chain = self.redirects.join(" -> ");
                self.redirects.clear();
                return self.fail(Error::misbehaved(
                    Misbehavior::RedirectLoop,
                    format!(
                        "redirect loop: more than {} redirects in a row ({chain})",
                        self.cfg.max_redirects
                    ),
                ));
            }
        }
        match target {
            Some(t) => {
                self.state = RegState::Done;
                self.sa = None;
                self.auth = AuthState::None;
                // The home pool authenticates us afresh: its challenges
                // are not the Director's.
                self.challenges = 0;
                self.timers_off();
                self.events.push_back(RegistrationEvent::Redirected(t));
            }
            None => self.fail(Error::misbehaved(
                Misbehavior::BadAnswer,
                "redirect without a usable Contact",
            )),
        }
    }
}
