//! The server-stored contact list (OCS): roaming-contacts, contactDelta,
//! and the SOAP changes sent one at a time.

use super::*;
use crate::error::{Misbehavior, Misuse};

impl PresenceAgent {
    /// The contact list, once the server sent it (OCS).
    pub fn contact_list(&self) -> Option<&ContactList> {
        self.contacts.as_ref()
    }

    /// Asks for a change to the server-stored contact list (OCS only). It
    /// is sent when the list is known and earlier changes are done, and
    /// ends in exactly one [`PresenceEvent::ContactListChanged`] or
    /// [`PresenceEvent::ContactListChangeFailed`] with the returned id.
    pub fn change_contacts(
        &mut self,
        ep: &mut Endpoint,
        request: ContactRequest,
        now: Instant,
    ) -> Result<ContactOpId, Error> {
        if self.cfg.dialect != Dialect::Ocs {
            return Err(Error::misuse(
                Misuse::NotSupported,
                "the standard dialect has no server-stored contact list",
            ));
        }
        let empty = |s: &str| s.trim().is_empty();
        let bad = match &request {
            ContactRequest::Add { uri, .. }
            | ContactRequest::Remove { uri }
            | ContactRequest::Move { uri, .. } => empty(uri),
            ContactRequest::AddGroup { name } | ContactRequest::RemoveGroup { name } => empty(name),
            ContactRequest::RenameGroup { name, new_name } => empty(name) || empty(new_name),
        };
        if bad {
            return Err(Error::misuse(
                Misuse::BadArgument,
                format!("empty URI or group name in {request:?}"),
            ));
        }
        if let Some(e) = &self.contacts_refused {
            return Err(e.clone());
        }
        self.next_contact_op += 1;
        let id = ContactOpId(self.next_contact_op);
        self.contact_queue.push_back(QueuedChange {
            id,
            request,
            retried: false,
        });
        self.pump_contacts(ep, now);
        Ok(id)
    }

    /// Reads the contact list again in a new subscription, ending the old
    /// one (Expires: 0) so the server does not keep both alive.
    pub(super) fn reread_contacts(&mut self, ep: &mut Endpoint, now: Instant) {
        self.contacts_stale = true;
        if let Some(mut d) = self.roaming_contacts.take() {
            let epid = ep.epid_param();
            let mut req = d.request(Method::Subscribe, epid.as_deref());
            req.push_header(HeaderName::Event, "vnd-microsoft-roaming-contacts");
            req.push_header(HeaderName::Expires, "0");
            self.submit(ep, req, Pending::Other, now);
        }
        self.roaming_refresh[1] = None;
        self.subscribe_roaming_contacts(ep, now);
    }

    pub(super) fn subscribe_roaming_contacts(&mut self, ep: &mut Endpoint, now: Instant) {
        self.contacts_refused = None;
        let mut req = ep.new_request(Method::Subscribe, &self.cfg.aor);
        for (n, v) in [
            ("Event", "vnd-microsoft-roaming-contacts"),
            ("Accept", ROAMING_CONTACTS_CT),
            ("Supported", "com.microsoft.autoextend"),
            ("Supported", "ms-benotify"),
            ("Proxy-Require", "ms-benotify"),
            ("Supported", "ms-piggyback-first-notify"),
        ] {
            req.push_header(n, v);
        }
        let copy = Box::new(req.clone());
        self.submit(ep, req, Pending::RoamingContacts { req: copy }, now);
    }

    /// Turns a request into the SOAP operation against the current list.
    pub(super) fn resolve(list: &ContactList, r: &ContactRequest) -> Result<ContactOp, Error> {
        let group = |name: &str| {
            list.group_named(name).map(|g| g.id).ok_or_else(|| {
                Error::misuse(
                    Misuse::BadArgument,
                    format!("no group named {name:?} in the contact list"),
                )
            })
        };
        let not_default = |name: &str| {
            if name == DEFAULT_GROUP {
                Err(Error::misuse(
                    Misuse::BadArgument,
                    "the default group \"~\" cannot be renamed or deleted",
                ))
            } else {
                Ok(())
            }
        };
        Ok(match r {
            ContactRequest::Add { uri, group: g } => {
                let gid = match g {
                    Some(name) => group(name)?,
                    None => list.default_group().map(|g| g.id).ok_or_else(|| {
                        Error::misuse(
                            Misuse::WrongState,
                            "the contact list has no group to add to",
                        )
                    })?,
                };
                let (name, mut groups) = match list.contact(uri) {
                    Some(c) => (c.name.as_deref().map(str::to_owned), c.groups.clone()),
                    None => (None, Vec::new()),
                };
                if !groups.contains(&gid) {
                    groups.push(gid);
                }
                ContactOp::SetContact {
                    uri: with_sip(uri).into(),
                    name,
                    groups,
                    subscribed: true,
                }
            }
            ContactRequest::Remove { uri } => {
                let c = list.contact(uri).ok_or_else(|| {
                    Error::misuse(
                        Misuse::BadArgument,
                        format!("{uri} is not in the contact list"),
                    )
                })?;
                ContactOp::DeleteContact {
                    uri: c.uri.to_string(),
                }
            }
            ContactRequest::Move { uri, to_group } => {
                let c = list.contact(uri).ok_or_else(|| {
                    Error::misuse(
                        Misuse::BadArgument,
                        format!("{uri} is not in the contact list"),
                    )
                })?;
                ContactOp::SetContact {
                    uri: c.uri.to_string(),
                    name: c.name.as_deref().map(str::to_owned),
                    groups: vec![group(to_group)?],
                    subscribed: c.subscribed,
                }
            }
            ContactRequest::AddGroup { name } => {
                if list.group_named(name).is_some() {
                    return Err(Error::misuse(
                        Misuse::BadArgument,
                        format!("a group named {name:?} exists already"),
                    ));
                }
                ContactOp::AddGroup { name: name.clone() }
            }
            ContactRequest::RenameGroup { name, new_name } => {
                not_default(name)?;
                ContactOp::ModifyGroup {
                    id: group(name)?,
                    name: new_name.clone(),
                }
            }
            ContactRequest::RemoveGroup { name } => {
                not_default(name)?;
                ContactOp::DeleteGroup { id: group(name)? }
            }
        })
    }

    /// Sends the next queued change when the list is known and nothing is
    /// on the wire.
    pub(super) fn pump_contacts(&mut self, ep: &mut Endpoint, now: Instant) {
        while !self.contact_in_flight && !self.contacts_stale {
            let Some(list) = &self.contacts else { return };
            let Some(change) = self.contact_queue.pop_front() else {
                return;
            };
            let op = match Self::resolve(list, &change.request) {
                Ok(op) => op,
                Err(error) => {
                    self.events
                        .push_back(PresenceEvent::ContactListChangeFailed {
                            id: change.id,
                            error,
                        });
                    continue;
                }
            };
            let delta = list.delta_num.unwrap_or(0);
            let mut req = ep.new_request(Method::Service, &self.cfg.aor);
            req.set_body(SOAP_CT, op.soap(delta).into_bytes());
            self.contact_in_flight = true;
            self.submit(
                ep,
                req,
                Pending::ContactChange {
                    change,
                    op,
                    sent: delta,
                },
                now,
            );
        }
    }

    /// A roaming-contacts document arrived (200 OK or NOTIFY).
    pub(super) fn on_contacts_doc(&mut self, ep: &mut Endpoint, body: &[u8], now: Instant) {
        if body.is_empty() {
            return;
        }
        match parse_roaming_contacts(body) {
            Ok(RoamingContacts::Full(l)) => {
                self.contacts = Some(l);
                self.contacts_stale = false;
            }
            Ok(RoamingContacts::Delta(d)) => {
                let Some(list) = &mut self.contacts else {
                    return;
                };
                if list.delta_num.is_some_and(|n| d.delta_num <= n) {
                    // Our own change, already applied when it was accepted.
                    return;
                }
                if !list.apply(&d) && !self.contacts_stale {
                    // A change was missed: fetch the whole list again.
                    self.reread_contacts(ep, now);
                }
            }
            Err(e) if self.contacts.is_none() => {
                // The list itself is unreadable: nothing can be resolved.
                self.contacts_unavailable(Error::misbehaved(
                    Misbehavior::BadDocument,
                    format!("the server's contact list does not parse: {e}"),
                ));
                return;
            }
            Err(_) => return,
        }
        if let Some(l) = &self.contacts {
            self.events
                .push_back(PresenceEvent::ContactList(Box::new(l.clone())));
        }
        self.pump_contacts(ep, now);
    }

    /// The contact list cannot arrive (the subscription failed or was
    /// refused): every waiting change fails with `error`, and the list is
    /// asked for again at the next sign-in.
    pub(super) fn contacts_unavailable(&mut self, error: Error) {
        self.contacts_refused = Some(error.clone());
        self.contacts_stale = false;
        self.contact_in_flight = false;
        for c in std::mem::take(&mut self.contact_queue) {
            self.events
                .push_back(PresenceEvent::ContactListChangeFailed {
                    id: c.id,
                    error: error.clone(),
                });
        }
    }

    /// A roaming-contacts NOTIFY that overtook the 200 OK to our SUBSCRIBE
    /// (RFC 6665 §4.1.2.4): it creates the subscription's dialog.
    pub(super) fn adopt_early_contacts_notify(&mut self, req: &Message) -> bool {
        if self.roaming_contacts.is_some() {
            return false;
        }
        let (Ok(cid), Some(our_tag)) = (
            req.call_id(),
            req.to().ok().and_then(|t| t.tag().map(str::to_owned)),
        ) else {
            return false;
        };
        let Some(cseq) = self.pending.values().find_map(|p| match p {
            Pending::RoamingContacts { req: sub } => {
                let same_call = sub.call_id().ok() == Some(cid);
                let same_tag = sub.from().ok().and_then(|f| f.tag().map(str::to_owned))
                    == Some(our_tag.clone());
                (same_call && same_tag).then(|| sub.cseq().map(|c| c.seq).unwrap_or(1))
            }
            _ => None,
        }) else {
            return false;
        };
        let Ok(mut dialog) = Dialog::from_uas(req, &our_tag) else {
            return false;
        };
        dialog.local_cseq = cseq;
        self.roaming_contacts = Some(dialog);
        true
    }

    /// The answer to the roaming-contacts SUBSCRIBE: the dialog and the list.
    pub(super) fn on_roaming_contacts_final(
        &mut self,
        ep: &mut Endpoint,
        req: Box<Message>,
        resp: &Message,
        now: Instant,
    ) {
        let code = resp.status().unwrap_or(0);
        if (200..300).contains(&code) {
            self.roaming_contacts = Dialog::from_uac(&req, resp).ok();
            self.roaming_refresh[1] = self.refresh_time(resp, now);
            self.on_contacts_doc(ep, resp.body(), now);
        } else {
            // No list: queued changes cannot be resolved.
            self.contacts_unavailable(Error::rejected(resp));
        }
    }

    /// The answer to a contact-list change: applied, retried once against a
    /// re-read list after a 409, or failed.
    pub(super) fn on_contact_change_final(
        &mut self,
        ep: &mut Endpoint,
        change: QueuedChange,
        op: ContactOp,
        sent: u32,
        resp: &Message,
        now: Instant,
    ) {
        let code = resp.status().unwrap_or(0);
        self.contact_in_flight = false;
        if (200..300).contains(&code) {
            let group_id = match op {
                ContactOp::AddGroup { .. } => parse_add_group_response(resp.body()).ok(),
                _ => None,
            };
            // Without the new group's id the change cannot be applied
            // here; the server's contactDelta will bring it.
            let exact = !matches!(op, ContactOp::AddGroup { .. }) || group_id.is_some();
            if let Some(l) = &mut self.contacts
                && l.delta_num.unwrap_or(0) <= sent
                && exact
            {
                // The server's contactDelta has not arrived yet (it
                // may come before or after this answer): apply the
                // change as the server did; the delta is then
                // skipped as already known.
                op.apply_to(l, group_id);
                l.delta_num = Some(sent.wrapping_add(1));
                self.events
                    .push_back(PresenceEvent::ContactList(Box::new(l.clone())));
            }
            match &change.request {
                ContactRequest::Add { uri, .. } => {
                    self.start_watch(ep, key(&with_sip(uri)), None, now)
                }
                ContactRequest::Remove { uri } => self.unwatch(ep, &with_sip(uri), now),
                _ => {}
            }
            self.events.push_back(PresenceEvent::ContactListChanged {
                id: change.id,
                op,
                group_id,
            });
        } else if code == 409 && !change.retried {
            // The list changed under us (another endpoint): fetch it
            // again, then retry against the new version.
            self.contact_queue.push_front(QueuedChange {
                retried: true,
                ..change
            });
            self.reread_contacts(ep, now);
        } else {
            self.events
                .push_back(PresenceEvent::ContactListChangeFailed {
                    id: change.id,
                    error: Error::rejected(resp),
                });
        }
        self.pump_contacts(ep, now);
    }
}
