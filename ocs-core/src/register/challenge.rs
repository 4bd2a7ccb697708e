//! Answering challenges: the NTLM (MS-SIPAE) handshake with its security
//! association, a host mechanism (Kerberos, SSPI), Digest for REGISTER and
//! for other requests, and asking the app for credentials.

use super::*;
use crate::error::{AuthFailure, Misbehavior};
use crate::log::log;

/// The fields of the REGISTER credentials that end a handshake.
struct AuthFields<'a> {
    scheme: Scheme,
    realm: &'a str,
    targetname: &'a str,
    opaque: &'a str,
    gssapi_data: Option<&'a str>,
    version: u32,
}

impl Registration {
    /// Answers a Digest challenge (401/407) to one of our other requests
    /// (a proxy such as Kamailio challenges PUBLISH, SUBSCRIBE and MESSAGE):
    /// the header to add to the resent request, or `None` when the
    /// challenge can't be answered (no credentials, not Digest).
    pub fn authorize_request(
        &mut self,
        req: &Message,
        challenge: &Message,
    ) -> Option<(HeaderName, String)> {
        let (list, header) = match challenge.status()? {
            401 => (
                challenge.www_authenticate().ok()?,
                HeaderName::Authorization,
            ),
            407 => (
                challenge.proxy_authenticate().ok()?,
                HeaderName::ProxyAuthorization,
            ),
            _ => return None,
        };
        let c = list.iter().find(|c| c.is_scheme("Digest"))?;
        let ch = DigestChallenge::from_header(&AuthHeader::from_typed(c)).ok()?;
        let answer = self.digest_for(req, &ch, 1)?;
        // Remember it: later requests carry credentials up front (with the
        // nonce count going up) instead of costing a 407 round trip each.
        self.request_digest = Some((header.clone(), ch, 1));
        Some((header, answer))
    }

    /// Credentials for a new request from the last challenge a proxy sent,
    /// with the next nonce count; `None` before any challenge.
    pub fn preauthorize(&mut self, req: &Message) -> Option<(HeaderName, String)> {
        let (header, ch, nc) = self.request_digest.take()?;
        let nc = nc + 1;
        let answer = self.digest_for(req, &ch, nc);
        self.request_digest = Some((header.clone(), ch, nc));
        answer.map(|a| (header, a))
    }

    pub(super) fn digest_for(
        &mut self,
        req: &Message,
        ch: &DigestChallenge,
        nc: u32,
    ) -> Option<String> {
        let creds = self.creds.clone()?;
        let cnonce = self.rng.hex(16);
        let method = req.method()?.as_str().to_owned();
        let uri = req.request_uri()?.to_owned();
        ch.respond(&creds.username, &creds.password, &method, &uri, &cnonce, nc)
            .ok()
            .map(|a| a.to_header_value())
    }

    pub(super) fn digest_value(&mut self, challenge: &DigestChallenge, nc: u32) -> Option<String> {
        let creds = self.creds.clone()?;
        let cnonce = self.rng.hex(16);
        let uri = registrar_uri(&self.cfg.aor);
        challenge
            .respond(
                &creds.username,
                &creds.password,
                "REGISTER",
                &uri,
                &cnonce,
                nc,
            )
            .ok()
            .map(|a| a.to_header_value())
    }

    pub(super) fn push_with_auth(&mut self, header: HeaderName, value: String) {
        let expires = if self.state == RegState::Unregistering {
            Some(0)
        } else {
            self.cfg.expires
        };
        let Some(msg) = self.next_register(expires, Some((header, value))) else {
            return;
        };
        self.in_flight = true;
        self.requests.push_back(msg);
    }

    /// Queues the REGISTER that ends a handshake: with `sign`, built once
    /// to learn its signature buffer, then given crand/cnum/response from
    /// the new association (NTLM from version 3 on, TLS-DSK always).
    fn push_register_signed(
        &mut self,
        f: &AuthFields<'_>,
        header: HeaderName,
        sa: &mut SecurityAssociation,
        sign: bool,
    ) -> Result<(), crate::sip::ParseError> {
        let value = |signature: Option<SignatureParams<'_>>| {
            SipAuthorization {
                scheme: f.scheme.clone(),
                realm: f.realm,
                targetname: f.targetname,
                opaque: Some(f.opaque),
                gssapi_data: f.gssapi_data,
                version: Some(f.version),
                signature,
            }
            .to_header_value(FieldOrder::OfficeCommunicator)
        };
        self.push_with_auth(header.clone(), value(None));
        if !sign {
            return Ok(());
        }
        let Some(mut req) = self.requests.pop_back() else {
            return Ok(());
        };
        let crand = self.rng.hex(8);
        let (cnum, sig) = sa.signature_for(&req, &crand)?;
        req.set_header(
            header,
            value(Some(SignatureParams {
                crand: &crand,
                cnum,
                response: &sig,
            })),
        );
        self.requests.push_back(req);
        Ok(())
    }

    pub(super) fn on_challenge(&mut self, resp: &Message, code: u16, now: Instant) {
        let (challenges, header) = if code == 401 {
            (resp.www_authenticate(), HeaderName::Authorization)
        } else {
            (resp.proxy_authenticate(), HeaderName::ProxyAuthorization)
        };
        let challenges: Vec<AuthHeader> = match challenges {
            Ok(c) => c.iter().map(AuthHeader::from_typed).collect(),
            Err(e) => {
                return self.fail(Error::auth(
                    AuthFailure::BadChallenge,
                    format!("malformed challenge: {e}"),
                ));
            }
        };
        if challenges.is_empty() {
            return self.fail(Error::auth(
                AuthFailure::BadChallenge,
                format!("{code} without a challenge"),
            ));
        }
        log!(
            DEBUG,
            "{code} challenge offers {}",
            challenges
                .iter()
                .map(|c| match c.get("version") {
                    Some(v) => format!("{} version {v}", c.scheme.as_str()),
                    None => c.scheme.as_str().to_owned(),
                })
                .collect::<Vec<_>>()
                .join(", ")
        );
        let offered_all: Vec<String> = challenges
            .iter()
            .map(|c| c.scheme.as_str().to_owned())
            .collect();
        // The host asked for one scheme: the others are not answered.
        let challenges: Vec<AuthHeader> = match &self.cfg.only_scheme {
            Some(only) => {
                let kept: Vec<AuthHeader> = challenges
                    .iter()
                    .filter(|c| c.scheme.as_str().eq_ignore_ascii_case(only))
                    .cloned()
                    .collect();
                if kept.is_empty() {
                    return self.fail(Error::auth(
                        AuthFailure::NoUsableScheme,
                        format!(
                            "the server offers {} and {only} was asked for",
                            offered_all.join(", ")
                        ),
                    ));
                }
                kept
            }
            None => challenges,
        };
        let ntlm = challenges.iter().find(|c| c.scheme == Scheme::Ntlm);
        let digest = challenges.iter().find(|c| c.scheme == Scheme::Digest);
        // A signed refresh answered with a challenge: the association is
        // gone (server restart); start over unsigned (PROTOCOL.md a.6).
        if matches!(self.auth, AuthState::NtlmAuthenticated)
            && ntlm.is_some_and(|c| c.get("gssapi-data").is_none())
            && self.registered_once
            && self.sa_since.is_some_and(|t| t < now)
            && self.state == RegState::Registered
        {
            self.sa = None;
            self.auth = AuthState::None;
        }
        let offered = offered_all;
        let host = self.authenticator.as_ref().map(|a| a.scheme().to_owned());
        // Lync's order: the host's mechanism (TLS-DSK with a certificate,
        // Kerberos with a ticket) when offered, then NTLM, then Digest.
        // Recorded from the challenge that starts a handshake; the later
        // ones of the same handshake offer only the scheme under way.
        let why = |c: &AuthHeader, reason: String| {
            let fresh = c.get("gssapi-data").is_none_or(str::is_empty);
            fresh.then(|| {
                format!(
                    "{} (offered: {}): {reason}",
                    c.scheme.as_str(),
                    offered.join(", ")
                )
            })
        };
        // Lync provisions a TLS-DSK certificate when the server names its
        // provisioning service and the host has none fresh enough.
        if let Some(c) = challenges
            .iter()
            .find(|c| c.scheme.as_str().eq_ignore_ascii_case("TLS-DSK"))
            && let Some(uri) = c.get("sts-uri")
        {
            self.sts_uri = Some(uri.to_owned());
            let fresh = c.get("gssapi-data").is_none_or(str::is_empty);
            if self.cfg.provision_certificates
                && fresh
                && self.provision_error.is_none()
                && !self.certificate_usable(now)
            {
                self.auth_choice = why(
                    c,
                    "no certificate fresh enough: provisioning one from the service the challenge names".into(),
                );
                return self.need_certificate(uri.to_owned());
            }
        }
        if let Some(scheme) = &host
            && let Some(c) = challenges
                .iter()
                .find(|c| c.scheme.as_str().eq_ignore_ascii_case(scheme))
        {
            if let Some(w) = why(
                c,
                "the host's credential for it is configured, and it comes first".into(),
            ) {
                self.auth_choice = Some(w);
            }
            return self.on_external_challenge(c, header, now);
        }
        let without_host = match &host {
            Some(s) => format!("; the configured {s} credential is not offered"),
            None => String::new(),
        };
        if let Some(c) = ntlm {
            if let Some(w) = why(
                c,
                format!("the first offered scheme with a password{without_host}"),
            ) {
                self.auth_choice = Some(w);
            }
            return self.on_ntlm_challenge(c, header, now);
        }
        if let Some(c) = digest {
            if let Some(w) = why(c, format!("the only offered scheme we speak{without_host}")) {
                self.auth_choice = Some(w);
            }
            return self.on_digest_challenge(c, header, now);
        }
        let provisioning = match &self.provision_error {
            Some(e) => format!("; certificate provisioning failed: {e}"),
            None => String::new(),
        };
        self.fail(Error::auth(
            AuthFailure::NoUsableScheme,
            format!(
                "no supported authentication scheme (offered: {}){provisioning}",
                offered.join(", ")
            ),
        ));
    }

    /// Whether the host's TLS-DSK certificate has at least
    /// [`CERT_RENEW_BEFORE`] left.
    fn certificate_usable(&self, now: Instant) -> bool {
        let Some(a) = &self.authenticator else {
            return false;
        };
        if !a.scheme().eq_ignore_ascii_case("TLS-DSK") {
            return false;
        }
        match a.valid_until() {
            Some(until) => until
                .duration_since(self.wall_now(now))
                .is_ok_and(|left| left >= CERT_RENEW_BEFORE),
            None => true,
        }
    }

    /// Sign-in waits for the host to provision a certificate.
    fn need_certificate(&mut self, sts_uri: String) {
        self.state = RegState::WaitingForCredentials;
        self.sa = None;
        self.auth = AuthState::None;
        self.events.push_back(RegistrationEvent::CertificateNeeded {
            sts_uri,
            renewal: false,
        });
    }

    pub(super) fn need_credentials(&mut self, realm: &str, reason: CredentialsReason) {
        self.state = RegState::WaitingForCredentials;
        self.sa = None;
        self.auth = AuthState::None;
        self.events.push_back(RegistrationEvent::CredentialsNeeded {
            realm: realm.to_owned(),
            reason,
        });
    }

    pub(super) fn on_ntlm_challenge(&mut self, c: &AuthHeader, header: HeaderName, now: Instant) {
        let realm = c.get("realm").unwrap_or("").to_owned();
        let targetname = c.get("targetname").unwrap_or("").to_owned();
        let version: u32 = c.get("version").and_then(|v| v.parse().ok()).unwrap_or(2);
        let Some(creds) = self.creds.clone() else {
            return self.need_credentials(&realm, CredentialsReason::Missing);
        };
        match (c.get("gssapi-data"), &self.auth) {
            (Some(token), AuthState::NtlmStarted) if !token.is_empty() => {
                let Some(opaque) = c.get("opaque").map(str::to_owned) else {
                    return self.fail(Error::auth(
                        AuthFailure::BadChallenge,
                        "NTLM challenge without opaque",
                    ));
                };
                let challenge = match ChallengeMessage::from_base64(token) {
                    Ok(ch) => ch,
                    Err(e) => {
                        return self.fail(Error::misbehaved(
                            Misbehavior::BadDocument,
                            format!("bad NTLM CHALLENGE: {e}"),
                        ));
                    }
                };
                let wall = self.wall_now(now);
                let params = AuthenticateParams {
                    user: &creds.username,
                    domain: &creds.domain,
                    password: &creds.password,
                    workstation: &self.cfg.workstation,
                    flags: ntlm::flags::OC_CONNECTIONLESS,
                    version: ntlm::VERSION_5_2_3790,
                    client_challenge: self.secret.bytes(),
                    timestamp: filetime(wall),
                    random_session_key: self.secret.bytes(),
                };
                let auth = match ntlm::build_authenticate(&challenge, &params) {
                    Ok(a) => a,
                    Err(e) => {
                        return self
                            .fail(Error::auth(AuthFailure::Mechanism, format!("NTLM: {e}")));
                    }
                };
                let gssapi = auth.to_base64();
                let mut sa = SecurityAssociation::new(
                    auth.security_context(),
                    &realm,
                    &targetname,
                    Some(&opaque),
                    version,
                    header.clone(),
                );
                // From version 3 on, the REGISTER carrying AUTHENTICATE is
                // signed with the new keys too.
                let fields = AuthFields {
                    scheme: Scheme::Ntlm,
                    realm: &realm,
                    targetname: &targetname,
                    opaque: &opaque,
                    gssapi_data: Some(&gssapi),
                    version,
                };
                if let Err(e) = self.push_register_signed(&fields, header, &mut sa, version >= 3) {
                    return self.fail(Error::Parse(e));
                }
                self.sa = Some(sa);
                self.sa_since = Some(now);
                self.auth = AuthState::NtlmAuthenticated;
            }
            (_, AuthState::NtlmAuthenticated) if self.state != RegState::Registered => {
                // Our AUTHENTICATE was refused: wrong credentials.
                self.need_credentials(&realm, CredentialsReason::Rejected);
            }
            (_, AuthState::NtlmStarted) => {
                self.fail(Error::misbehaved(
                    Misbehavior::BadAnswer,
                    "NTLM challenge without a CHALLENGE token",
                ));
            }
            _ => {
                // First round: connectionless NTLM starts with an empty token.
                let value = SipAuthorization {
                    scheme: Scheme::Ntlm,
                    realm: &realm,
                    targetname: &targetname,
                    opaque: None,
                    gssapi_data: Some(""),
                    version: (version > 2).then_some(version),
                    signature: None,
                }
                .to_header_value(FieldOrder::OfficeCommunicator);
                self.sa = None;
                self.auth = AuthState::NtlmStarted;
                self.push_with_auth(header, value);
            }
        }
    }

    pub(super) fn on_external_challenge(
        &mut self,
        c: &AuthHeader,
        header: HeaderName,
        now: Instant,
    ) {
        let realm = c.get("realm").unwrap_or("").to_owned();
        let targetname = c.get("targetname").unwrap_or("").to_owned();
        let version: u32 = c.get("version").and_then(|v| v.parse().ok()).unwrap_or(2);
        let input = match c.get("gssapi-data").filter(|t| !t.is_empty()) {
            Some(t) => match base64::engine::general_purpose::STANDARD.decode(t) {
                Ok(b) => Some(b),
                Err(e) => {
                    return self.fail(Error::misbehaved(
                        Misbehavior::BadDocument,
                        format!("bad gssapi-data: {e}"),
                    ));
                }
            },
            None => None,
        };
        // Continue the context under way, or start a new one.
        let (mut ctx, rounds) = match std::mem::replace(&mut self.auth, AuthState::None) {
            AuthState::External { ctx, rounds, .. } if input.is_some() => (ctx, rounds + 1),
            AuthState::External { .. } | AuthState::ExternalAuthenticated
                if self.state != RegState::Registered =>
            {
                // A fresh challenge after our token: the server refused it.
                return self.need_credentials(&realm, CredentialsReason::Rejected);
            }
            _ => {
                let Some(a) = self.authenticator.as_mut() else {
                    return;
                };
                match a.start(&targetname) {
                    Ok(ctx) => (ctx, 0),
                    Err(e) => {
                        return self.fail(Error::auth(
                            AuthFailure::Mechanism,
                            format!("{}: {e}", c.scheme.as_str()),
                        ));
                    }
                }
            }
        };
        if rounds > 8 {
            return self.fail(Error::auth(
                AuthFailure::Mechanism,
                format!("{} handshake did not finish in 8 rounds", c.scheme.as_str()),
            ));
        }
        let token = match ctx.step(input.as_deref()) {
            Ok(t) => t,
            Err(e) => {
                return self.fail(Error::auth(
                    AuthFailure::Mechanism,
                    format!("{}: {e}", c.scheme.as_str()),
                ));
            }
        };
        if token.is_empty() && ctx.is_complete() {
            return self.sign_after_handshake(c, ctx, header, realm, targetname, version, now);
        }
        let b64 = base64::engine::general_purpose::STANDARD.encode(&token);
        let value = SipAuthorization {
            scheme: c.scheme.clone(),
            realm: &realm,
            targetname: &targetname,
            opaque: c.get("opaque"),
            gssapi_data: Some(&b64),
            version: (version > 2).then_some(version),
            signature: None,
        }
        .to_header_value(FieldOrder::OfficeCommunicator);
        self.sa = None;
        self.auth = AuthState::External {
            ctx,
            header: header.clone(),
            realm,
            targetname,
            version,
            rounds,
        };
        self.push_with_auth(header, value);
    }

    /// A mechanism whose handshake ended on our side with the server's
    /// last flight (TLS-DSK): the association is up under the challenge's
    /// `opaque`, and the next REGISTER is signed with it (MS-SIPAE 4.4
    /// step 7: `version` and crand/cnum/response, no gssapi-data). The
    /// server's 200 OK must then verify.
    #[allow(clippy::too_many_arguments)]
    fn sign_after_handshake(
        &mut self,
        c: &AuthHeader,
        ctx: Box<dyn MechanismContext>,
        header: HeaderName,
        realm: String,
        targetname: String,
        version: u32,
        now: Instant,
    ) {
        let Some(opaque) = c.get("opaque").map(str::to_owned) else {
            return self.fail(Error::auth(
                AuthFailure::BadChallenge,
                format!("{} challenge without opaque", c.scheme.as_str()),
            ));
        };
        let mut sa = SecurityAssociation::external(
            ctx,
            c.scheme.as_str(),
            &realm,
            &targetname,
            Some(&opaque),
            version,
            header.clone(),
        );
        let fields = AuthFields {
            scheme: c.scheme.clone(),
            realm: &realm,
            targetname: &targetname,
            opaque: &opaque,
            gssapi_data: None,
            version,
        };
        if let Err(e) = self.push_register_signed(&fields, header, &mut sa, true) {
            return self.fail(Error::Parse(e));
        }
        self.sa = Some(sa);
        self.sa_since = Some(now);
        self.auth = AuthState::ExternalAuthenticated;
    }

    /// The 200 OK ending a host mechanism's handshake: its
    /// Authentication-Info names the association and proves the server.
    pub(super) fn finish_external(&mut self, resp: &Message, now: Instant) -> Result<(), Error> {
        let AuthState::External {
            ctx,
            header,
            realm,
            targetname,
            version,
            ..
        } = std::mem::replace(&mut self.auth, AuthState::None)
        else {
            return Ok(());
        };
        let info = resp.authentication_info().ok().flatten().ok_or_else(|| {
            Error::misbehaved(
                Misbehavior::BadSignature,
                "200 OK without Authentication-Info",
            )
        })?;
        let opaque = info.params.get("opaque").map(|o| o.into_owned());
        let sa = SecurityAssociation::external(
            ctx,
            info.scheme,
            &realm,
            &targetname,
            opaque.as_deref(),
            version,
            header,
        );
        match sa.verify(resp) {
            Ok(true) => {}
            Ok(false) => {
                return Err(Error::misbehaved(
                    Misbehavior::BadSignature,
                    "200 OK is not signed",
                ));
            }
            Err(e) => {
                return Err(Error::misbehaved(
                    Misbehavior::BadSignature,
                    format!("200 OK signature: {e}"),
                ));
            }
        }
        self.sa = Some(sa);
        self.sa_since = Some(now);
        self.auth = AuthState::ExternalAuthenticated;
        Ok(())
    }

    pub(super) fn on_digest_challenge(
        &mut self,
        c: &AuthHeader,
        header: HeaderName,
        _now: Instant,
    ) {
        let challenge = match DigestChallenge::from_header(c) {
            Ok(ch) => ch,
            Err(e) => {
                return self.fail(Error::auth(
                    AuthFailure::BadChallenge,
                    format!("malformed Digest challenge: {e}"),
                ));
            }
        };
        if self.creds.is_none() {
            return self.need_credentials(&challenge.realm, CredentialsReason::Missing);
        }
        // A second challenge for the same nonce without stale=true means the
        // credentials are wrong (RFC 3261 §22.2: don't loop).
        if let AuthState::Digest { answered_nonce, .. } = &self.auth
            && !challenge.stale
            && (*answered_nonce == challenge.nonce || self.state != RegState::Registered)
        {
            let realm = challenge.realm.clone();
            return self.need_credentials(&realm, CredentialsReason::Rejected);
        }
        let Some(value) = self.digest_value(&challenge, 1) else {
            return self.fail(Error::auth(
                AuthFailure::BadChallenge,
                "Digest challenge not answerable (qop)",
            ));
        };
        self.auth = AuthState::Digest {
            header: header.clone(),
            answered_nonce: challenge.nonce.clone(),
            challenge,
            nc: 1,
        };
        self.push_with_auth(header, value);
    }
}
