//! Publishing our own presence: the user's state and note, custom states,
//! idle/call/meeting states from the host, reset; OCS SERVICE publications
//! with roaming-self's versions, standard PUBLISH with SIP-ETag.

use super::*;
use crate::error::Misuse;
use crate::log::log;

impl PresenceAgent {
    /// Applies a changed EnableAppearOffline policy to the running client:
    /// when it no longer allows appearing offline while we do, the state
    /// from before goes out again (or, without one, the automatic state).
    pub fn apply_appear_offline_policy(
        &mut self,
        ep: &mut Endpoint,
        allowed: Result<Provenance, Provenance>,
        now: Instant,
    ) {
        self.cfg.appear_offline = allowed;
        let offline = self
            .status
            .as_ref()
            .is_some_and(|s| s.availability.state() == State::Offline);
        if offline && self.cfg.appear_offline.is_err() {
            match self.before_offline.take() {
                Some(st) => {
                    self.status = Some(st);
                    self.publish(ep, now, 0, Vec::new());
                }
                None => {
                    self.reset(ep, now, Vec::new());
                }
            }
        }
    }

    /// Publishes a standard state with an optional note. Appear offline
    /// ([`State::Offline`]) needs the EnableAppearOffline policy. The id
    /// ends in one [`PresenceEvent::Published`] or
    /// [`PresenceEvent::PublishFailed`].
    pub fn set_status(
        &mut self,
        ep: &mut Endpoint,
        state: State,
        note: Option<&str>,
        now: Instant,
    ) -> Result<PublishId, Error> {
        if state == State::Offline
            && let Err(p) = &self.cfg.appear_offline
        {
            return Err(Error::PolicyDenied {
                policy: "EnableAppearOffline".into(),
                provenance: p.clone(),
            });
        }
        let previous = self.status.take();
        if state == State::Offline {
            // Kept so a policy that forbids appearing offline later can
            // bring it back.
            if previous
                .as_ref()
                .is_some_and(|p| p.availability.state() != State::Offline)
            {
                self.before_offline = previous;
            }
        } else {
            self.before_offline = None;
        }
        self.status = Some(Status {
            availability: state.availability(),
            note: note.map(str::to_owned),
            custom: None,
        });
        let id = self.next_publish_id();
        self.publish(ep, now, 0, vec![id]);
        Ok(id)
    }

    fn next_publish_id(&mut self) -> PublishId {
        self.next_publish += 1;
        PublishId(self.next_publish)
    }

    /// Changes the note (`None`: no note) and keeps the state set last
    /// (standard or custom; online when none was set).
    pub fn set_note(&mut self, ep: &mut Endpoint, note: Option<&str>, now: Instant) -> PublishId {
        let mut status = self.status.take().unwrap_or(Status {
            availability: State::Online.availability(),
            note: None,
            custom: None,
        });
        status.note = note.map(str::to_owned);
        self.status = Some(status);
        let id = self.next_publish_id();
        self.publish(ep, now, 0, vec![id]);
        id
    }

    /// Publishes a custom state (online/busy/do-not-disturb availability
    /// with our own text for `lcid`).
    pub fn set_custom_state(
        &mut self,
        ep: &mut Endpoint,
        availability: Availability,
        lcid: u32,
        text: &str,
        note: Option<&str>,
        now: Instant,
    ) -> PublishId {
        self.status = Some(Status {
            availability,
            note: note.map(str::to_owned),
            custom: Some((lcid, text.to_owned())),
        });
        let id = self.next_publish_id();
        self.publish(ep, now, 0, vec![id]);
        id
    }

    /// The host reports how long the user has been idle (no keyboard or
    /// mouse input). Crossing Communicator's thresholds publishes the
    /// machine state: inactive after 5 minutes, away after 20, active again
    /// on input. OCS publishes machineState (containers 2 and 3) and the
    /// server aggregates it with the manual state; the standard dialect has
    /// no machine state, so an "online" user is published as inactive or
    /// away instead. When no threshold was crossed nothing goes out and
    /// the id ends at once in [`PresenceEvent::Published`].
    pub fn set_idle(&mut self, ep: &mut Endpoint, idle: Duration, now: Instant) -> PublishId {
        let id = self.next_publish_id();
        let a = machine_availability(idle);
        if a == self.machine {
            self.published(vec![id], self.shown_state());
        } else {
            let before = self.pidf_doc();
            self.machine = a;
            self.automatic_state_changed(ep, Extra::Machine, before, id, now);
        }
        id
    }

    /// Something the host reports (idle time, a call, a meeting) changed:
    /// OCS publishes its own category; the standard dialect re-publishes
    /// only when the PIDF document it shows is different from `before`.
    pub(super) fn automatic_state_changed(
        &mut self,
        ep: &mut Endpoint,
        kind: Extra,
        before: Option<String>,
        id: PublishId,
        now: Instant,
    ) {
        if self.cfg.dialect == Dialect::Ocs {
            self.publish_extra(ep, kind, now, 0, vec![id]);
        } else if self.pidf_doc() != before {
            self.publish(ep, now, 0, vec![id]);
        } else {
            // The document watchers see is the same: nothing to send.
            self.published(vec![id], self.shown_state());
        }
    }

    /// The host reports that a call started or ended ("picking up the
    /// phone changes the status when a PBX is coupled"). OCS publishes a
    /// phoneState (on-the-phone) while the call is up and deletes it after;
    /// the standard dialect shows an online or idle user as busy meanwhile.
    pub fn set_in_call(&mut self, ep: &mut Endpoint, in_call: bool, now: Instant) -> PublishId {
        let id = self.next_publish_id();
        if in_call == self.in_call {
            self.published(vec![id], self.shown_state());
        } else {
            let before = self.pidf_doc();
            self.in_call = in_call;
            self.automatic_state_changed(ep, Extra::Phone, before, id, now);
        }
        id
    }

    /// The host reports a meeting from its calendar (`None`: the meeting
    /// is over). OCS publishes calendarState "in-a-meeting" (busy, in
    /// containers 2 and 3) and deletes it afterwards; the standard dialect
    /// publishes busy with the RPID activity `meeting` while the manual
    /// state is online.
    pub fn set_in_meeting(
        &mut self,
        ep: &mut Endpoint,
        meeting: Option<Meeting>,
        now: Instant,
    ) -> PublishId {
        let id = self.next_publish_id();
        if meeting == self.meeting {
            self.published(vec![id], self.shown_state());
        } else {
            let before = self.pidf_doc();
            self.meeting = meeting;
            self.automatic_state_changed(ep, Extra::Calendar, before, id, now);
        }
        id
    }

    /// "Reset status": drops the manual state so the automatic one (from
    /// idle times, calls and the calendar) shows again. OCS deletes the
    /// userState publications (expires="0"); the standard dialect removes
    /// its PUBLISH (Expires: 0). Ends in [`PresenceEvent::Published`] with
    /// the state now shown, or [`PresenceEvent::PublishFailed`].
    pub fn reset_status(&mut self, ep: &mut Endpoint, now: Instant) -> PublishId {
        let id = self.next_publish_id();
        self.reset(ep, now, vec![id]);
        id
    }

    fn reset(&mut self, ep: &mut Endpoint, now: Instant, ids: Vec<PublishId>) {
        self.status = None;
        if self.cfg.dialect == Dialect::Ocs {
            self.publish_extra(ep, Extra::Reset, now, 0, ids);
            return;
        }
        self.publish_refresh_at = None;
        let Some(tag) = self.etag.take() else {
            // Nothing is published: already reset.
            self.published_or_report(ids, State::Offline);
            return;
        };
        let mut req = ep.new_request(Method::Publish, &self.cfg.aor);
        req.push_header(HeaderName::Event, "presence");
        req.push_header(HeaderName::Expires, "0");
        req.push_header(HeaderName::SipIfMatch, tag);
        self.submit(ep, req, Pending::Removed { ids }, now);
    }

    /// Success for each command in `ids` (nothing when there is none).
    pub(super) fn published(&mut self, ids: Vec<PublishId>, state: State) {
        for id in ids {
            self.events.push_back(PresenceEvent::Published {
                id: Some(id),
                state,
            });
        }
    }

    /// Success for each command in `ids`, or one event without an id for
    /// a publication the client made by itself.
    fn published_or_report(&mut self, ids: Vec<PublishId>, state: State) {
        if ids.is_empty() {
            self.events
                .push_back(PresenceEvent::Published { id: None, state });
        }
        self.published(ids, state);
    }

    /// Failure for each command in `ids`, or one event without an id for
    /// a publication the client made by itself.
    pub(super) fn publish_failed(&mut self, ids: Vec<PublishId>, error: Error) {
        if ids.is_empty() {
            self.events
                .push_back(PresenceEvent::PublishFailed { id: None, error });
            return;
        }
        for id in ids {
            self.events.push_back(PresenceEvent::PublishFailed {
                id: Some(id),
                error: error.clone(),
            });
        }
    }

    /// What watchers see now, as far as we know it (OCS aggregates on the
    /// server): the manual state, else busy in a call or meeting, else the
    /// machine state.
    pub(super) fn shown_state(&self) -> State {
        match &self.status {
            Some(_) if self.cfg.dialect != Dialect::Ocs => {
                self.pidf_state().unwrap_or(State::Online)
            }
            Some(s) => s.availability.state(),
            None if self.in_call || self.meeting.is_some() => State::Busy,
            None => self.machine.state(),
        }
    }

    /// The ids deferred for `slot` (the manual state: `None`).
    fn take_deferred(&mut self, slot: Option<Extra>) -> Vec<PublishId> {
        let (take, keep) = std::mem::take(&mut self.deferred)
            .into_iter()
            .partition(|(s, _)| *s == slot);
        self.deferred = keep;
        take.into_iter().map(|(_, id)| id).collect()
    }

    fn state_publication_in_flight(&self) -> bool {
        self.pending
            .values()
            .any(|p| matches!(p, Pending::Publish { .. }))
    }

    /// After a state publication was answered (or failed): the state set
    /// while it was on the wire goes out now, for every id that waited.
    pub(super) fn publish_waiting(&mut self, ep: &mut Endpoint, now: Instant) {
        if !self.state_waiting || !self.versions_known || self.state_publication_in_flight() {
            return;
        }
        self.state_waiting = false;
        let ids = self.take_deferred(None);
        self.publish(ep, now, 0, ids);
    }

    /// What goes out once roaming-self has told us the versions after a
    /// sign-in, each publication once.
    pub(super) fn publish_after_versions(&mut self, ep: &mut Endpoint, now: Instant) {
        // Like OC, this endpoint's device and machine state go out at
        // sign-in (they expire with the endpoint).
        self.publish_extra(ep, Extra::Device, now, 0, Vec::new());
        let ids = self.take_deferred(Some(Extra::Machine));
        self.publish_extra(ep, Extra::Machine, now, 0, ids);
        // Endpoint publications lapse with the old endpoint: a call or
        // meeting still going on (or just over) is published again.
        for kind in [Extra::Phone, Extra::Calendar] {
            let ids = self.take_deferred(Some(kind));
            let active = match kind {
                Extra::Phone => self.in_call,
                _ => self.meeting.is_some(),
            };
            if active {
                self.publish_extra(ep, kind, now, 0, ids);
            } else {
                // Its endpoint publication lapsed with the old endpoint.
                self.published(ids, self.shown_state());
            }
        }
        // The user's own state, set before or during sign-in.
        let reset = std::mem::take(&mut self.reset_waiting);
        // What waited for a publication lost with the connection goes out
        // here too.
        self.state_waiting = false;
        let mut ids = self.take_deferred(None);
        ids.extend(self.take_deferred(Some(Extra::Reset)));
        ids.sort();
        if self.status.is_some() {
            self.publish(ep, now, 0, ids);
        } else if reset {
            self.publish_extra(ep, Extra::Reset, now, 0, ids);
        } else {
            self.published(ids, self.shown_state());
        }
    }

    pub(super) fn publish(
        &mut self,
        ep: &mut Endpoint,
        now: Instant,
        attempt: u32,
        ids: Vec<PublishId>,
    ) {
        if !self.versions_known {
            // Goes out once roaming-self has given the versions
            // (publish_after_versions).
            self.deferred.extend(ids.into_iter().map(|id| (None, id)));
            return;
        }
        if attempt == 0 && self.state_publication_in_flight() {
            // One state publication on the wire at a time, as Communicator
            // does: two at once carry the same versions (OCS answers the
            // second 409) or entity tag, and a host changing the state in
            // a loop would otherwise hold a transaction per change. The
            // newest state goes out when the one on the wire is answered
            // (publish_waiting); these ids end with it.
            self.state_waiting = true;
            self.deferred.extend(ids.into_iter().map(|id| (None, id)));
            return;
        }
        let Some(st) = self.status.clone() else {
            self.published(ids, self.shown_state());
            return;
        };
        let mut sent = Vec::new();
        let req = if self.cfg.dialect == Dialect::Ocs {
            let mut body = PublishBody::new(&self.cfg.aor);
            let custom: Vec<CustomActivity<'_>> = st
                .custom
                .iter()
                .map(|(lcid, text)| CustomActivity { lcid: *lcid, text })
                .collect();
            for container in [2, 3] {
                let v = self.version("state", USER_STATE_INSTANCE, container);
                body.user_state(container, v, st.availability, None, &custom);
                sent.push((("state".to_owned(), USER_STATE_INSTANCE, container), v));
            }
            if let Some(note) = &st.note {
                for container in [200, 300, 400] {
                    let v = self.version("note", 0, container);
                    body.note(0, container, v, NoteKind::Personal, note);
                    sent.push((("note".to_owned(), 0, container), v));
                }
            }
            let mut req = ep.new_request(Method::Service, &self.cfg.aor);
            req.set_body(
                "application/msrtc-category-publish+xml",
                body.finish().into_bytes(),
            );
            req
        } else {
            // No machine state in PIDF: an idle "online" user shows as
            // inactive or away, as the OCS server's aggregation would.
            let doc = self.pidf_doc().unwrap_or_default();
            let mut req = ep.new_request(Method::Publish, &self.cfg.aor);
            req.push_header(HeaderName::Event, "presence");
            req.push_header(HeaderName::Expires, self.cfg.expires.to_string());
            if let Some(tag) = &self.etag {
                req.push_header(HeaderName::SipIfMatch, tag.clone());
            }
            req.set_body("application/pidf+xml", doc.into_bytes());
            req
        };
        let shows = self.shown_state();
        self.submit(
            ep,
            req,
            Pending::Publish {
                attempt,
                ids,
                shows,
                sent,
            },
            now,
        );
    }

    /// What the standard dialect publishes: the manual state, except that
    /// an idle "online" user shows the machine's inactive or away.
    pub(super) fn pidf_state(&self) -> Option<State> {
        let s = self.status.as_ref()?.availability.state();
        Some(if s != State::Online {
            s
        } else if self.in_call || self.meeting.is_some() {
            State::Busy
        } else if self.machine != Availability::ONLINE {
            self.machine.state()
        } else {
            s
        })
    }

    /// The PIDF document the standard dialect publishes now. Idle and call
    /// changes compare documents, not states: inactive and online print the
    /// same PIDF, and publishing it again would be wasted.
    pub(super) fn pidf_doc(&self) -> Option<String> {
        let state = self.pidf_state()?;
        let note = self.status.as_ref()?.note.as_deref();
        let mut doc = PidfPublish::for_state(&self.cfg.aor, &self.tuple, state, note);
        // A meeting that made an online user busy says so.
        let manual_online = self
            .status
            .as_ref()
            .is_some_and(|s| s.availability.state() == State::Online);
        if manual_online && !self.in_call && self.meeting.is_some() {
            doc.activities = &["busy", "meeting"];
        }
        Some(build_pidf(&doc))
    }

    /// The instance seed E from our epid (c.3), or none when the epid has
    /// no hex head to derive it from.
    pub(super) fn epid_e(ep: &Endpoint) -> Option<u32> {
        let p = ep.epid_param()?;
        epid_instance(p.strip_prefix("epid=")?)
    }

    /// The (category, instance, container) of each publication of `kind`,
    /// in body order (for 409 fault indexes and version bookkeeping).
    pub(super) fn extra_keys(kind: Extra, e: u32) -> Vec<(String, u32, u32)> {
        let instance = match kind {
            Extra::Machine => machine_state_instance(e),
            Extra::Phone => phone_voip_instance(e),
            Extra::Reset => USER_STATE_INSTANCE,
            Extra::Calendar => calendar_state_instance(e),
            Extra::Device => return vec![("device".to_owned(), device_instance(e), 2)],
        };
        [2, 3]
            .into_iter()
            .map(|c| ("state".to_owned(), instance, c))
            .collect()
    }

    /// Publishes (or deletes) one of the [`Extra`] publications in
    /// containers 2 and 3 (OCS).
    pub(super) fn publish_extra(
        &mut self,
        ep: &mut Endpoint,
        kind: Extra,
        now: Instant,
        attempt: u32,
        ids: Vec<PublishId>,
    ) {
        if !self.versions_known {
            // Machine, phone and calendar state are kept in fields and go
            // out with the versions (publish_after_versions); a reset is
            // remembered.
            if kind == Extra::Reset {
                self.reset_waiting = true;
            }
            self.deferred
                .extend(ids.into_iter().map(|id| (Some(kind), id)));
            return;
        }
        let Some(e) = Self::epid_e(ep) else {
            self.publish_failed(
                ids,
                Error::misuse(
                    Misuse::BadArgument,
                    "the epid has no hex head to derive publication instances from",
                ),
            );
            return;
        };
        let mut body = PublishBody::new(&self.cfg.aor);
        for (cat, instance, container) in Self::extra_keys(kind, e) {
            let v = self.version(&cat, instance, container);
            match kind {
                Extra::Machine => {
                    body.machine_state(instance, container, v, self.machine);
                }
                // SIPE's values for a call: 6500, between 6500 and 8999.
                Extra::Phone if self.in_call => {
                    body.phone_state(
                        instance,
                        container,
                        v,
                        Availability::BUSY,
                        "on-the-phone",
                        6500,
                        8999,
                    );
                }
                Extra::Phone => {
                    body.clear(&cat, instance, container, v, ExpireType::Endpoint);
                }
                Extra::Reset => {
                    body.clear(&cat, instance, container, v, ExpireType::Static);
                }
                Extra::Calendar => match &self.meeting {
                    Some(m) => {
                        body.calendar_state(
                            instance,
                            container,
                            v,
                            &self.cfg.aor,
                            &m.start,
                            Some(Availability::BUSY),
                            "in-a-meeting",
                            &m.subject,
                            &m.location,
                        );
                    }
                    None => {
                        body.clear(&cat, instance, container, v, ExpireType::Endpoint);
                    }
                },
                Extra::Device => {
                    let endpoint_id = ep
                        .epid_param()
                        .and_then(|p| p.strip_prefix("epid=").map(sip_instance_uuid))
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    body.device(
                        instance,
                        v,
                        &DeviceInfo {
                            endpoint_id: &endpoint_id,
                            uri: &self.cfg.aor,
                            timezone: &self.cfg.timezone,
                            machine_name: &self.cfg.machine_name,
                        },
                    );
                }
            }
        }
        let mut req = ep.new_request(Method::Service, &self.cfg.aor);
        req.set_body(
            "application/msrtc-category-publish+xml",
            body.finish().into_bytes(),
        );
        let shows = self.shown_state();
        self.submit(
            ep,
            req,
            Pending::Extra {
                kind,
                attempt,
                ids,
                shows,
            },
            now,
        );
    }

    pub(super) fn version(&self, cat: &str, instance: u32, container: u32) -> u32 {
        self.versions
            .get(&(cat.to_owned(), instance, container))
            .copied()
            .unwrap_or(0)
    }

    pub(super) fn learn_versions(&mut self, body: &[u8]) {
        if let Ok(rs) = parse_roaming_self(body) {
            for p in rs.publications {
                self.versions
                    .insert((p.name.to_string(), p.instance, p.container), p.version);
            }
        }
    }

    /// The (category, instance, container) of each publication in the order
    /// `publish` writes them, for 409 fault indexes.
    pub(super) fn publication_order(&self) -> Vec<(String, u32, u32)> {
        let mut v = vec![
            ("state".to_owned(), USER_STATE_INSTANCE, 2),
            ("state".to_owned(), USER_STATE_INSTANCE, 3),
        ];
        if self.status.as_ref().is_some_and(|s| s.note.is_some()) {
            for c in [200, 300, 400] {
                v.push(("note".to_owned(), 0, c));
            }
        }
        v
    }

    /// The answer to the standard dialect's PUBLISH with Expires: 0 (reset).
    pub(super) fn on_removed_final(&mut self, ids: Vec<PublishId>, resp: &Message) {
        let code = resp.status().unwrap_or(0);
        // 412: the server had already forgotten it; same outcome.
        if (200..300).contains(&code) || code == 412 {
            self.published_or_report(ids, State::Offline);
        } else {
            self.publish_failed(ids, Error::rejected(resp));
        }
    }

    /// The answer to an OCS machine/phone/calendar/device/reset publication:
    /// versions learned, or a 409 retried with the server's versions.
    pub(super) fn on_extra_final(
        &mut self,
        ep: &mut Endpoint,
        kind: Extra,
        attempt: u32,
        (ids, shows): (Vec<PublishId>, State),
        resp: &Message,
        now: Instant,
    ) {
        let code = resp.status().unwrap_or(0);
        let Some(e) = Self::epid_e(ep) else {
            return;
        };
        let keys = Self::extra_keys(kind, e);
        if (200..300).contains(&code) {
            self.learn_versions(resp.body());
            for k in keys {
                *self.versions.entry(k).or_insert(0) += 1;
            }
            if kind == Extra::Reset {
                // What others see now: the automatic state.
                self.published_or_report(ids, shows);
            } else {
                self.published(ids, shows);
            }
        } else if code == 409 && attempt < 3 {
            if let Ok(f) = parse_fault(resp.body()) {
                for op in f.operations {
                    if let (Some(k), Some(v)) = (
                        keys.get(op.index.saturating_sub(1) as usize),
                        op.cur_version,
                    ) {
                        self.versions.insert(k.clone(), v);
                    }
                }
            }
            self.publish_extra(ep, kind, now, attempt + 1, ids);
        } else {
            self.publish_failed(ids, Error::rejected(resp));
        }
    }

    /// The answer to our state publication: versions (OCS) or the entity
    /// tag and refresh time (standard) learned; 409 and 412 retried.
    pub(super) fn on_publish_final(
        &mut self,
        ep: &mut Endpoint,
        attempt: u32,
        (ids, shows, sent): (Vec<PublishId>, State, SentVersions),
        resp: &Message,
        now: Instant,
    ) {
        let code = resp.status().unwrap_or(0);
        if (200..300).contains(&code) {
            if self.cfg.dialect == Dialect::Ocs {
                self.learn_versions(resp.body());
                // The server stored version + 1 for each publication. Not
                // "+= 1": the roaming-self notification of this very
                // publication may have come first and told us already.
                for (k, v) in sent {
                    let have = self.versions.entry(k).or_insert(0);
                    *have = (*have).max(v + 1);
                }
            } else {
                self.etag = resp.sip_etag().map(str::to_owned);
                let life = resp
                    .expires()
                    .ok()
                    .flatten()
                    .unwrap_or(self.cfg.expires)
                    .max(2);
                let life = Duration::from_secs(u64::from(life));
                self.publish_refresh_at =
                    Some(now + life - (life / 10).max(Duration::from_secs(1)));
            }
            if self.status.is_some() {
                self.published_or_report(ids, shows);
            } else {
                self.published(ids, shows);
            }
        } else if code == 409 && attempt < 3 {
            // WrongDelta: adopt the server's versions and retry.
            log!(
                DEBUG,
                "publication conflict (409): retrying with the server's versions"
            );
            if let Ok(f) = parse_fault(resp.body()) {
                let order = self.publication_order();
                for op in f.operations {
                    if let (Some(k), Some(v)) = (
                        order.get(op.index.saturating_sub(1) as usize),
                        op.cur_version,
                    ) {
                        self.versions.insert(k.clone(), v);
                    }
                }
            }
            self.publish(ep, now, attempt + 1, ids);
        } else if code == 412 && attempt < 3 {
            // The server forgot our entity tag: publish in full.
            self.etag = None;
            self.publish(ep, now, attempt + 1, ids);
        } else if code == 500 && attempt < 3 {
            // A passing server error (Kamailio's presence store answers
            // "database is locked" now and then, most often just after a
            // restart): try again rather than leave the state unpublished
            // until it next changes. 503 is left alone: an overloaded
            // server is not asked again at once.
            log!(DEBUG, "publication refused with 500: trying again");
            self.publish(ep, now, attempt + 1, ids);
        } else {
            self.publish_failed(ids, Error::rejected(resp));
        }
    }
}
