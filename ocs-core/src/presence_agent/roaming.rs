//! Our own roaming-self subscription (OCS): the publication versions and
//! containers, refreshed before they expire.

use super::*;

impl PresenceAgent {
    pub(super) fn subscribe_roaming_self(&mut self, ep: &mut Endpoint, now: Instant) {
        let mut req = ep.new_request(Method::Subscribe, &self.cfg.aor);
        for (n, v) in [
            ("Event", "vnd-microsoft-roaming-self"),
            ("Accept", "application/vnd-microsoft-roaming-self+xml"),
            ("Supported", "com.microsoft.autoextend"),
            ("Supported", "ms-benotify"),
            ("Proxy-Require", "ms-benotify"),
            ("Supported", "ms-piggyback-first-notify"),
        ] {
            req.push_header(n, v);
        }
        req.set_body(
            "application/vnd-microsoft-roaming-self+xml",
            ROAMING_SELF_BODY.as_bytes().to_vec(),
        );
        let copy = Box::new(req.clone());
        self.submit(ep, req, Pending::RoamingSelf { req: copy }, now);
    }

    /// Starts roaming-self (0) or roaming-contacts (1) afresh after its
    /// refresh failed; the other subscriptions are left alone.
    pub(super) fn restart_roaming(&mut self, ep: &mut Endpoint, which: usize, now: Instant) {
        self.roaming_refresh[which] = None;
        if which == 0 {
            self.roaming_self = None;
            self.subscribe_roaming_self(ep, now);
        } else {
            self.roaming_contacts = None;
            self.subscribe_roaming_contacts(ep, now);
        }
    }

    /// When to refresh a self-subscription the server granted in `resp`:
    /// 120 s before it expires (as SIPE does), or at nine tenths of a
    /// lifetime of 240 s or less.
    pub(super) fn refresh_time(&self, resp: &Message, now: Instant) -> Option<Instant> {
        let life = resp.expires().ok().flatten().unwrap_or(self.cfg.expires);
        if life == 0 {
            return None;
        }
        let life = Duration::from_secs(u64::from(life));
        let early = if life > Duration::from_secs(240) {
            Duration::from_secs(120)
        } else {
            life / 10
        };
        Some(now + life - early)
    }

    /// Sends the in-dialog refresh of roaming-self (0) or roaming-contacts
    /// (1) when it is due.
    pub(super) fn refresh_roaming(&mut self, ep: &mut Endpoint, now: Instant) {
        for which in 0..2 {
            if self.roaming_refresh[which].is_none_or(|t| t > now) {
                continue;
            }
            self.roaming_refresh[which] = None;
            let epid = ep.epid_param();
            let contact = ep.contact();
            let (event, accept) = if which == 0 {
                (
                    "vnd-microsoft-roaming-self",
                    "application/vnd-microsoft-roaming-self+xml",
                )
            } else {
                ("vnd-microsoft-roaming-contacts", ROAMING_CONTACTS_CT)
            };
            let dialog = if which == 0 {
                self.roaming_self.as_mut()
            } else {
                self.roaming_contacts.as_mut()
            };
            let Some(d) = dialog else { continue };
            let mut req = d.request(Method::Subscribe, epid.as_deref());
            req.push_header(HeaderName::Event, event);
            req.push_header(HeaderName::Accept, accept);
            if let Some(c) = contact {
                req.push_header(HeaderName::Contact, c);
            }
            self.submit(ep, req, Pending::RoamingRefresh { which }, now);
        }
    }

    /// The answer to a roaming-self/roaming-contacts refresh: a refused one
    /// starts that subscription afresh.
    pub(super) fn on_roaming_refresh_final(
        &mut self,
        ep: &mut Endpoint,
        which: usize,
        resp: &Message,
        now: Instant,
    ) {
        let code = resp.status().unwrap_or(0);
        if (200..300).contains(&code) {
            self.roaming_refresh[which] = self.refresh_time(resp, now);
        } else {
            // The server forgot the dialog (481) or refused: start
            // that subscription afresh.
            self.restart_roaming(ep, which, now);
        }
    }

    /// The answer to the roaming-self SUBSCRIBE: the dialog and the
    /// publication versions; what waited for them goes out.
    pub(super) fn on_roaming_self_final(
        &mut self,
        ep: &mut Endpoint,
        req: Box<Message>,
        resp: &Message,
        now: Instant,
    ) {
        let code = resp.status().unwrap_or(0);
        if (200..300).contains(&code) {
            self.roaming_self = Dialog::from_uac(&req, resp).ok();
            self.roaming_refresh[0] = self.refresh_time(resp, now);
            self.learn_versions(resp.body());
        }
        // Without the versions (roaming-self refused) publications
        // go out anyway and meet the server's 409 if need be.
        if code >= 200 && !self.versions_known {
            self.versions_known = true;
            self.publish_after_versions(ep, now);
        }
    }
}
