//! Requests from the other side: INVITE (a new session, glare), MESSAGE,
//! INFO (typing) and BYE, answered within their session, and DisableIM's
//! refusals.

use super::*;

impl Messaging {
    pub(super) fn reply(
        ep: &mut Endpoint,
        id: IncomingId,
        req: &Message,
        code: u16,
        tag: &str,
        extra: &[(HeaderName, &str)],
        now: Instant,
    ) {
        if req.method() == Some(&Method::Benotify) {
            return;
        }
        if let Ok(mut r) = builder::response(req, code, None, Some(tag)) {
            for (n, v) in extra {
                r.insert_header(r.header_count() - 1, n.clone(), *v);
            }
            ep.respond(id, r, now);
        }
    }

    pub(super) fn sender(req: &Message) -> String {
        req.from().map(|f| uri_key(f.uri_text)).unwrap_or_default()
    }

    pub(super) fn on_request(
        &mut self,
        ep: &mut Endpoint,
        id: IncomingId,
        req: &Message,
        now: Instant,
    ) {
        let from = Self::sender(req);
        let tag = ep.new_tag();
        let method = req.method().cloned();
        // DisableIM: decline IM, tell the app (the seed's observed behaviour).
        if self.cfg.disable_im.is_some() && matches!(method, Some(Method::Invite | Method::Message))
        {
            Self::reply(
                ep,
                id,
                req,
                IM_DISABLED_STATUS,
                &tag,
                &[(
                    HeaderName::MsClientDiagnostics,
                    IM_DISABLED_CLIENT_DIAGNOSTICS,
                )],
                now,
            );
            self.events.push_back(ImEvent::RefusedByPolicy { from });
            return;
        }
        match method {
            Some(Method::Invite) => self.on_invite(ep, id, req, &from, &tag, now),
            Some(Method::Message) => {
                if let Some(t) = typing::parse_typing(
                    req.header(HeaderName::ContentType).unwrap_or("text/plain"),
                    req.body(),
                ) {
                    let active = matches!(t, Ok(TypingState::Active));
                    Self::reply(ep, id, req, 200, &tag, &[], now);
                    self.events.push_back(ImEvent::Typing { from, active });
                    return;
                }
                match ImContent::from_message(req) {
                    Ok(content) => {
                        Self::reply(ep, id, req, 200, &tag, &[], now);
                        if let Some(s) = self.sessions.get_mut(&from) {
                            s.last_activity = now;
                        }
                        self.events.push_back(ImEvent::Received { from, content });
                    }
                    Err(e) => {
                        let code = e.status();
                        let accept = (code == 415).then_some((HeaderName::Accept, MESSAGE_ACCEPT));
                        Self::reply(ep, id, req, code, &tag, accept.as_slice(), now);
                    }
                }
            }
            Some(Method::Info) => {
                let state = typing::parse_keyboard_activity(req.body());
                Self::reply(ep, id, req, 200, &tag, &[], now);
                if let Ok(s) = state {
                    self.events.push_back(ImEvent::Typing {
                        from,
                        active: s == TypingState::Active,
                    });
                }
            }
            Some(Method::Bye) => {
                Self::reply(ep, id, req, 200, &tag, &[], now);
                let key = self
                    .sessions
                    .iter()
                    .find(|(_, s)| s.dialog.as_ref().is_some_and(|d| d.matches_incoming(req)))
                    .map(|(k, _)| k.clone());
                if let Some(k) = key
                    && let Some(s) = self.sessions.remove(&k)
                {
                    self.close(ep, &k, s, true, now);
                }
            }
            _ => Self::reply(ep, id, req, 405, &tag, &[], now),
        }
    }

    pub(super) fn on_invite(
        &mut self,
        ep: &mut Endpoint,
        id: IncomingId,
        req: &Message,
        from: &str,
        tag: &str,
        now: Instant,
    ) {
        let media = match Sdp::parse(req.body()) {
            Ok(s) => sdp::message_media(&s),
            Err(_) => {
                Self::reply(ep, id, req, 400, tag, &[], now);
                return;
            }
        };
        if media.is_none() {
            Self::reply(
                ep,
                id,
                req,
                488,
                tag,
                &[(
                    HeaderName::MsClientDiagnostics,
                    "52063;reason=\"Unsupported session description\"",
                )],
                now,
            );
            return;
        }
        // The first message rides in ms-text-format.
        let first = match req.header("ms-text-format") {
            Some(v) => match MsTextFormat::parse(v).ok().and_then(|f| f.content().ok()) {
                Some(c) => Some(c),
                None => {
                    Self::reply(ep, id, req, 400, tag, &[], now);
                    return;
                }
            },
            None => None,
        };
        let self_uri = req.to().map(|t| t.uri_text.to_owned()).unwrap_or_default();
        let port = ep.local().map(|l| l.addr.port()).unwrap_or(5060);
        let answer = sdp::build_answer(local_ip(ep), port, &self_uri);
        let Ok(mut ok) = builder::response(req, 200, None, Some(tag)) else {
            return;
        };
        let at = ok.header_count() - 1;
        if let Some(c) = ep.contact() {
            ok.insert_header(at, HeaderName::Contact, c);
        }
        if first.is_some() {
            ok.insert_header(
                ok.header_count() - 1,
                HeaderName::Supported,
                "ms-text-format",
            );
        }
        ok.insert_header(
            ok.header_count() - 1,
            HeaderName::Supported,
            "com.microsoft.rtc-multiparty",
        );
        ok.set_body("application/sdp", answer.into_bytes());
        let dialog = Dialog::from_uas(req, tag).ok();
        ep.respond(id, ok, now);
        // Both sides invited at once (glare): keep the peer's session and
        // move our waiting messages onto it, so none is lost.
        let carried = match self.sessions.remove(from) {
            Some(Session {
                state:
                    SessionState::Inviting {
                        first,
                        first_text,
                        queued,
                        ..
                    },
                ..
            }) => std::iter::once((first, first_text)).chain(queued).collect(),
            _ => Vec::new(),
        };
        self.sessions.insert(
            from.to_owned(),
            Session {
                dialog,
                state: SessionState::Up,
                last_activity: now,
            },
        );
        if let Some(content) = first {
            self.events.push_back(ImEvent::Received {
                from: from.to_owned(),
                content,
            });
        }
        for (mid, text) in carried {
            self.send_in_dialog(ep, from, mid, &text, now);
        }
    }
}
