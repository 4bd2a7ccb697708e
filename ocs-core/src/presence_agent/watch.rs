//! Watching contacts: (batched) SUBSCRIBE, notifications into the state
//! model, resubscription when the server moves a contact, and ending
//! every subscription at sign-out.

use super::*;
use crate::error::{Misbehavior, Misuse};
use crate::sip::SipUri;

impl PresenceAgent {
    /// Starts watching `uri` (a SIP URI; anything else is refused). The id
    /// ends in one [`PresenceEvent::Watching`] (at once when the contact is
    /// already watched) or [`PresenceEvent::WatchFailed`]. Before sign-in
    /// the watch waits for it.
    pub fn watch(&mut self, ep: &mut Endpoint, uri: &str, now: Instant) -> Result<WatchId, Error> {
        let k = key(uri);
        SipUri::parse(&k)
            .map_err(|e| Error::misuse(Misuse::BadArgument, format!("watch {uri:?}: {e}")))?;
        self.next_watch += 1;
        let id = WatchId(self.next_watch);
        self.start_watch(ep, k, Some(id), now);
        Ok(id)
    }

    /// Watches `k` (a key) for command `id`, or for the client itself
    /// (`None`: a contact added to the list).
    pub(super) fn start_watch(
        &mut self,
        ep: &mut Endpoint,
        k: String,
        id: Option<WatchId>,
        now: Instant,
    ) {
        match self.watches.get_mut(&k) {
            Some(w) => {
                w.holders.extend(id);
                w.listed |= id.is_none();
                match id {
                    Some(id) if w.dialog.is_some() => {
                        self.events
                            .push_back(PresenceEvent::Watching { id, uri: k });
                    }
                    _ => w.waiting.extend(id),
                }
            }
            None => {
                self.watches.insert(
                    k.clone(),
                    Watch {
                        dialog: None,
                        refresh_at: None,
                        waiting: id.into_iter().collect(),
                        holders: id.into_iter().collect(),
                        listed: id.is_none(),
                        resubscribes: 0,
                    },
                );
                if ep.registration().is_registered() {
                    self.subscribe(ep, &k, None, now);
                }
            }
        }
    }

    /// The watch of `uri` ended (refused, terminated, no answer): reported
    /// to the app, and the commands still waiting for it fail with
    /// `error`.
    pub(super) fn end_watch(&mut self, uri: &str, reason: String, error: Error) {
        let Some(w) = self.watches.remove(uri) else {
            return;
        };
        self.fail_watches(uri, w.waiting, &error);
        self.events.push_back(PresenceEvent::WatchEnded {
            uri: uri.to_owned(),
            reason,
        });
    }

    pub(super) fn fail_watches(&mut self, uri: &str, ids: Vec<WatchId>, error: &Error) {
        for id in ids {
            self.events.push_back(PresenceEvent::WatchFailed {
                id,
                uri: uri.to_owned(),
                error: error.clone(),
            });
        }
    }

    /// The watch of `uri` is set up: the commands waiting for it end.
    pub(super) fn watch_established(&mut self, uri: &str) {
        let Some(w) = self.watches.get_mut(uri) else {
            return;
        };
        for id in std::mem::take(&mut w.waiting) {
            self.events.push_back(PresenceEvent::Watching {
                id,
                uri: uri.to_owned(),
            });
        }
    }

    /// Releases the watch that command `id` asked for: the contact is
    /// unwatched when no other `watch` command (and not the contact list)
    /// holds it. A command still waiting for the server fails with
    /// [`Error::Cancelled`]. An id that holds nothing (any more) is ignored.
    pub fn release_watch(&mut self, ep: &mut Endpoint, id: WatchId, now: Instant) {
        let Some((uri, w)) = self
            .watches
            .iter_mut()
            .find(|(_, w)| w.holders.contains(&id))
        else {
            return;
        };
        let uri = uri.clone();
        w.holders.retain(|h| *h != id);
        let cancelled = w.waiting.contains(&id);
        w.waiting.retain(|h| *h != id);
        let last = w.holders.is_empty() && !w.listed;
        if cancelled {
            self.fail_watches(&uri, vec![id], &Error::Cancelled);
        }
        if last {
            self.unwatch(ep, &uri, now);
        }
    }

    /// Stops watching `uri` (SUBSCRIBE with Expires: 0), whoever holds the
    /// watch. `watch` commands still waiting for the server fail with
    /// [`Error::Cancelled`].
    pub fn unwatch(&mut self, ep: &mut Endpoint, uri: &str, now: Instant) {
        let k = key(uri);
        let Some(w) = self.watches.remove(&k) else {
            return;
        };
        self.fail_watches(&k, w.waiting, &Error::Cancelled);
        if let Some(mut d) = w.dialog {
            let mut req = d.request(Method::Subscribe, ep.epid_param().as_deref());
            req.push_header(HeaderName::Event, "presence");
            req.push_header(HeaderName::Expires, "0");
            if let Some(c) = ep.contact() {
                req.push_header(HeaderName::Contact, c);
            }
            self.submit(ep, req, Pending::Other, now);
        }
    }

    /// Sign-out: every watch and our own roaming subscriptions end
    /// (SUBSCRIBE with Expires: 0, once per subscription dialog), and
    /// nothing is refreshed any more. [`PresenceAgent::is_quiet`] says when
    /// the server has answered everything.
    pub fn end_all(&mut self, ep: &mut Endpoint, now: Instant) {
        let mut ended = std::collections::HashSet::new();
        let mut watches: Vec<(String, Watch)> = self.watches.drain().collect();
        watches.sort_by(|a, b| a.0.cmp(&b.0));
        for (uri, w) in &mut watches {
            let waiting = std::mem::take(&mut w.waiting);
            self.fail_watches(uri, waiting, &Error::Stopped);
        }
        let watches = watches.into_iter().map(|(_, w)| w);
        let roaming = [
            (self.roaming_self.take(), "vnd-microsoft-roaming-self"),
            (
                self.roaming_contacts.take(),
                "vnd-microsoft-roaming-contacts",
            ),
        ];
        let dialogs = watches
            .into_iter()
            .filter_map(|w| w.dialog.map(|d| (d, "presence")))
            .chain(roaming.into_iter().filter_map(|(d, e)| d.map(|d| (d, e))));
        for (mut d, event) in dialogs {
            let mut req = d.request(Method::Subscribe, ep.epid_param().as_deref());
            // A batched subscription carries many contacts in one dialog.
            if !ended.insert(req.call_id().map(str::to_owned).unwrap_or_default()) {
                continue;
            }
            req.push_header(HeaderName::Event, event);
            req.push_header(HeaderName::Expires, "0");
            if let Some(c) = ep.contact() {
                req.push_header(HeaderName::Contact, c);
            }
            self.submit(ep, req, Pending::Other, now);
        }
        self.roaming_refresh = [None, None];
        self.publish_refresh_at = None;
    }

    /// Subscribes to `uri`'s presence. `target` is where an OCS batched
    /// category subscription goes: our own URI normally, a pool or the
    /// contact itself when the server asked us to resubscribe there.
    pub(super) fn subscribe(
        &mut self,
        ep: &mut Endpoint,
        uri: &str,
        target: Option<&str>,
        now: Instant,
    ) {
        let req = if self.cfg.dialect == Dialect::Ocs {
            let target = target.unwrap_or(&self.cfg.aor).to_owned();
            let mut req = ep.new_request(Method::Subscribe, &target);
            for (n, v) in [
                ("Event", "presence"),
                (
                    "Accept",
                    "application/msrtc-event-categories+xml, application/rlmi+xml, multipart/related",
                ),
                ("Supported", "ms-benotify"),
                ("Proxy-Require", "ms-benotify"),
                ("Supported", "ms-piggyback-first-notify"),
                ("Require", "adhoclist, categoryList"),
                ("Supported", "eventlist"),
            ] {
                req.push_header(n, v);
            }
            let body = batch_subscribe_body(
                &self.cfg.aor,
                &[BatchResource {
                    uri,
                    context: false,
                }],
                &["calendarData", "contactCard", "note", "state"],
            );
            req.set_body("application/msrtc-adrl-categorylist+xml", body.into_bytes());
            req
        } else {
            let mut req = ep.new_request(Method::Subscribe, uri);
            req.push_header(HeaderName::Event, "presence");
            req.push_header(HeaderName::Accept, "application/pidf+xml");
            req.push_header(HeaderName::Expires, self.cfg.expires.to_string());
            req
        };
        let copy = Box::new(req.clone());
        self.submit(
            ep,
            req,
            Pending::Subscribe {
                uri: uri.to_owned(),
                req: copy,
            },
            now,
        );
    }

    pub(super) fn deliver(
        &mut self,
        ep: &mut Endpoint,
        body: &[u8],
        content_type: &str,
        now: Instant,
    ) {
        if body.is_empty() {
            return;
        }
        if content_type.to_ascii_lowercase().contains("pidf") {
            if let Ok(p) = parse_pidf(body) {
                let uri = p.uri.to_string();
                self.events.push_back(PresenceEvent::Changed {
                    uri: key(&uri),
                    presence: Box::new(p),
                });
            }
            return;
        }
        if let Ok(updates) = parse_notify_body(body, content_type, &ParseOptions::default()) {
            for u in updates {
                let uri = key(&u.uri);
                match u.state {
                    Some(InstanceState::Resubscribe) => {
                        self.resubscribe(ep, &uri, u.pool_fqdn.as_deref(), now);
                        continue;
                    }
                    Some(InstanceState::Terminated) => {
                        let reason = format!(
                            "subscription terminated by the server{}",
                            u.reason
                                .as_deref()
                                .map(|r| format!(" ({r})"))
                                .unwrap_or_default()
                        );
                        self.end_watch(&uri, reason.clone(), Error::ended_by_server(reason));
                        continue;
                    }
                    _ => {}
                }
                if let Some(p) = u.presence {
                    if let Some(w) = self.watches.get_mut(&uri) {
                        w.resubscribes = 0;
                    }
                    self.events.push_back(PresenceEvent::Changed {
                        uri,
                        presence: Box::new(p),
                    });
                }
            }
        }
    }

    /// The server moved a contact's subscription (MS-PRES rlmi
    /// `state="resubscribe"`): subscribe again, to the pool it names
    /// (Request-URI and To = the pool) or, without one, to the contact
    /// itself. Each watch keeps its own subscription, so the batch holds
    /// that one contact.
    pub(super) fn resubscribe(
        &mut self,
        ep: &mut Endpoint,
        uri: &str,
        pool: Option<&str>,
        now: Instant,
    ) {
        let Some(w) = self.watches.get_mut(uri) else {
            return;
        };
        if w.resubscribes >= MAX_RESUBSCRIBES {
            let reason = format!(
                "the server asked to resubscribe {} times in a row without a notification",
                MAX_RESUBSCRIBES + 1
            );
            self.end_watch(
                uri,
                reason.clone(),
                Error::misbehaved(Misbehavior::BadAnswer, reason),
            );
            return;
        }
        w.resubscribes += 1;
        w.dialog = None;
        w.refresh_at = None;
        let target = match pool {
            Some(p) if !p.trim().is_empty() => {
                let p = p.trim();
                if p.starts_with("sip:") || p.starts_with("sips:") {
                    p.to_owned()
                } else {
                    format!("sip:{p}")
                }
            }
            _ => uri.to_owned(),
        };
        self.subscribe(ep, uri, Some(&target), now);
    }

    /// Matches a NOTIFY to a SUBSCRIBE still waiting for its answer and
    /// creates the watch's dialog from it.
    pub(super) fn adopt_early_notify(&mut self, req: &Message) -> Option<String> {
        let cid = req.call_id().ok()?;
        let our_tag = req.to().ok()?.tag()?.to_owned();
        let (uri, cseq) = self.pending.values().find_map(|p| match p {
            Pending::Subscribe { uri, req: sub } => {
                let same_call = sub.call_id().ok() == Some(cid);
                let same_tag = sub.from().ok().and_then(|f| f.tag().map(str::to_owned))
                    == Some(our_tag.clone());
                (same_call && same_tag)
                    .then(|| (uri.clone(), sub.cseq().map(|c| c.seq).unwrap_or(1)))
            }
            _ => None,
        })?;
        let mut dialog = Dialog::from_uas(req, &our_tag).ok()?;
        dialog.local_cseq = cseq;
        let w = self.watches.get_mut(&uri)?;
        if w.dialog.is_none() {
            w.dialog = Some(dialog);
        }
        self.watch_established(&uri);
        Some(uri)
    }

    /// The answer to a watch's SUBSCRIBE: the dialog, its refresh time and
    /// the first notification OCS piggy-backs; a refusal ends the watch.
    pub(super) fn on_subscribe_final(
        &mut self,
        ep: &mut Endpoint,
        uri: String,
        req: Box<Message>,
        resp: &Message,
        now: Instant,
    ) {
        let code = resp.status().unwrap_or(0);
        if (200..300).contains(&code) && !self.watches.contains_key(&uri) {
            // Unwatched while the SUBSCRIBE was on its way: end the
            // subscription the server has just made, or it would live on
            // there with nobody to refresh or end it.
            if let Ok(mut d) = Dialog::from_uac(&req, resp) {
                let mut bye = d.request(Method::Subscribe, ep.epid_param().as_deref());
                bye.push_header(HeaderName::Event, "presence");
                bye.push_header(HeaderName::Expires, "0");
                if let Some(c) = ep.contact() {
                    bye.push_header(HeaderName::Contact, c);
                }
                self.submit(ep, bye, Pending::Other, now);
            }
            return;
        }
        if (200..300).contains(&code) {
            let dialog = Dialog::from_uac(&req, resp).ok().map(|mut d| {
                // Keep what an early NOTIFY already taught us.
                if let Some(old) = self.watches.get(&uri).and_then(|w| w.dialog.as_ref()) {
                    d.remote_cseq = old.remote_cseq;
                }
                d
            });
            let life = resp
                .expires()
                .ok()
                .flatten()
                .unwrap_or(self.cfg.expires)
                .max(2);
            let life = Duration::from_secs(u64::from(life));
            if let Some(w) = self.watches.get_mut(&uri) {
                w.dialog = dialog;
                w.refresh_at = Some(now + life - (life / 10).max(Duration::from_secs(1)));
            }
            self.watch_established(&uri);
            // OCS piggy-backs the first notification in the 200 OK.
            let ct = resp
                .header(HeaderName::ContentType)
                .unwrap_or("")
                .to_owned();
            self.deliver(ep, resp.body(), &ct, now);
        } else {
            let reason = format!("{code} {}", resp.reason().unwrap_or(""));
            self.end_watch(&uri, reason, Error::rejected(resp));
        }
    }
}
