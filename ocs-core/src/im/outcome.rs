//! What a final response to an IM (INVITE or MESSAGE) means for the
//! sender (PROTOCOL.md e.4, SIPE `sipe_user_present_message_undelivered`),
//! and the refusal our client sends when IM is disabled by policy.
//!
//! | response | [`FailureReason`] |
//! |---|---|
//! | 606 + `Warning: 309 …` | [`BlockedByPolicy`](FailureReason::BlockedByPolicy) |
//! | our DisableIM refusal ([`is_im_disabled_refusal`]) | [`BlockedByPolicy`](FailureReason::BlockedByPolicy), `recipient_im_disabled` |
//! | 500, 503, 504, 603 | [`ServiceUnavailable`](FailureReason::ServiceUnavailable) |
//! | 486 | [`DoNotDisturb`](FailureReason::DoNotDisturb) |
//! | 415 | [`UnsupportedType`](FailureReason::UnsupportedType) |
//! | 408, 480 | [`Offline`](FailureReason::Offline) |
//! | 481 | [`DialogGone`](FailureReason::DialogGone) |
//! | any other 3xx–6xx | [`Offline`](FailureReason::Offline) |
//!
//! [`TimedOut`](FailureReason::TimedOut) is for the case with no final
//! response at all (the transaction timed out); the session layer reports
//! it directly.

use crate::error::Diagnostics;
use crate::sip::Message;

/// Status our client answers an IM INVITE or MESSAGE with when the
/// effective policy `DisableIM` is 1.
///
/// Which code Office Communicator 2007 R2 uses is not known (PROTOCOL.md
/// e.4, open question 8). 403 Forbidden says what happened — the request
/// was understood and refused, retrying will not help — and, together with
/// [`IM_DISABLED_CLIENT_DIAGNOSTICS`], lets another ocs client show "this
/// contact cannot receive IM". SIPE and OC show 403 as "not delivered".
pub const IM_DISABLED_STATUS: u16 = 403;

/// The `ms-client-diagnostics` id of our DisableIM refusal. Our own choice,
/// not a documented Microsoft id: the 52000s are where clients put their
/// own ids (52063 unsupported SDP, 52017 encryption mismatch), and 52094 is
/// not known to be used by OC or Lync.
pub const IM_DISABLED_DIAGNOSTIC_ID: u32 = 52094;

/// The reason text of our DisableIM refusal.
pub const IM_DISABLED_REASON: &str = "Instant messaging is disabled by policy";

/// The `ms-client-diagnostics` header value of our DisableIM refusal:
/// `52094;reason="Instant messaging is disabled by policy"`.
pub const IM_DISABLED_CLIENT_DIAGNOSTICS: &str =
    "52094;reason=\"Instant messaging is disabled by policy\"";

/// Why an IM was not delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureReason {
    /// The recipient is offline or could not be reached (408, 480 and any
    /// failure not listed below). Try again later.
    Offline,
    /// The recipient does not want to be disturbed (486).
    DoNotDisturb,
    /// The recipient does not support this type of message (415): resend
    /// as `text/plain`.
    UnsupportedType,
    /// A policy blocked the message: the server's (606 + Warning 309, e.g.
    /// hyperlinks or file transfer not allowed) or the recipient's
    /// DisableIM ([`DeliveryFailure::recipient_im_disabled`]).
    BlockedByPolicy,
    /// The service is not available (500, 503, 504, 603). Try again later.
    ServiceUnavailable,
    /// No final response arrived in time (the transaction timed out).
    TimedOut,
    /// The session no longer exists at the other end (481): start a new
    /// one.
    DialogGone,
    /// Not a failure response (no status, or below 300): a caller bug.
    Other,
    /// We signed out before it was delivered (it was waiting for its
    /// session, or the server had not answered when sign-out gave up).
    SignedOut,
}

impl FailureReason {
    /// A short English description, as SIPE shows it.
    pub fn description(self) -> &'static str {
        match self {
            FailureReason::Offline => "recipient is offline or cannot be reached",
            FailureReason::DoNotDisturb => "recipient does not want to be disturbed",
            FailureReason::UnsupportedType => "recipient does not support this type of message",
            FailureReason::BlockedByPolicy => "message blocked by policy",
            FailureReason::ServiceUnavailable => "service not available",
            FailureReason::TimedOut => "no response in time",
            FailureReason::DialogGone => "the conversation ended at the other side",
            FailureReason::Other => "not delivered",
            FailureReason::SignedOut => "signed out before it was delivered",
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.description())
    }
}

/// The table of PROTOCOL.md e.4 on a status code and the Warning codes of
/// the response.
pub fn reason_for(status: u16, warning_codes: &[u16]) -> FailureReason {
    match status {
        606 if warning_codes.contains(&309) => FailureReason::BlockedByPolicy,
        500 | 503 | 504 | 603 => FailureReason::ServiceUnavailable,
        486 => FailureReason::DoNotDisturb,
        415 => FailureReason::UnsupportedType,
        408 | 480 => FailureReason::Offline,
        481 => FailureReason::DialogGone,
        300..=699 => FailureReason::Offline,
        _ => FailureReason::Other,
    }
}

/// True for the statuses after which SIPE drops the IM session (408, 480,
/// 481): the next message needs a new INVITE.
pub fn ends_session(status: u16) -> bool {
    matches!(status, 408 | 480 | 481)
}

/// An undelivered IM, from its final response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryFailure {
    /// Why, per [`reason_for`].
    pub reason: FailureReason,
    /// The status code.
    pub status: u16,
    /// True when the recipient's client refused because IM is disabled by
    /// its policy ([`is_im_disabled_refusal`]): the contact cannot receive
    /// IM at all, so the app can mark it.
    pub recipient_im_disabled: bool,
    /// The most specific explanation the response carries (ms-diagnostics,
    /// ms-client-diagnostics, Warning).
    pub diagnostics: Option<Diagnostics>,
}

/// Classifies a final response to an IM INVITE or MESSAGE: `None` when it
/// is not a failure (a request, a provisional or a 2xx response).
pub fn classify(resp: &Message) -> Option<DeliveryFailure> {
    let status = resp.status()?;
    if status < 300 {
        return None;
    }
    let warning_codes: Vec<u16> = resp
        .warnings()
        .map(|w| w.iter().map(|w| w.code).collect())
        .unwrap_or_default();
    let recipient_im_disabled = is_im_disabled_refusal(resp);
    let reason = if recipient_im_disabled {
        FailureReason::BlockedByPolicy
    } else {
        reason_for(status, &warning_codes)
    };
    Some(DeliveryFailure {
        reason,
        status,
        recipient_im_disabled,
        diagnostics: Diagnostics::from_message(resp),
    })
}

/// True when `resp` is a DisableIM refusal as our client sends it: a
/// failure response whose `ms-client-diagnostics` (or `ms-diagnostics`, in
/// case a server copies it) has id [`IM_DISABLED_DIAGNOSTIC_ID`]. The
/// status is not checked, so a proxy that rewrites it does not hide the
/// refusal.
pub fn is_im_disabled_refusal(resp: &Message) -> bool {
    if resp.status().is_none_or(|s| s < 400) {
        return false;
    }
    let id = |d: Result<Option<crate::sip::MsDiagnostics<'_>>, _>| {
        d.ok().flatten().map(|d| d.code) == Some(IM_DISABLED_DIAGNOSTIC_ID)
    };
    id(resp.ms_client_diagnostics()) || id(resp.ms_diagnostics())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, extra: &str) -> Message {
        let raw = format!(
            "SIP/2.0 {status} Whatever\r\nVia: SIP/2.0/TLS 10.0.0.5:5061;branch=z9hG4bK1\r\nFrom: <sip:alice@contoso.com>;tag=1\r\nTo: <sip:bob@contoso.com>;tag=2\r\nCall-ID: c1\r\nCSeq: 2 MESSAGE\r\n{extra}Content-Length: 0\r\n\r\n"
        );
        Message::parse(raw.as_bytes()).expect("response parses")
    }

    fn reason(status: u16, extra: &str) -> FailureReason {
        classify(&response(status, extra))
            .expect("a failure")
            .reason
    }

    #[test]
    fn table_rows() {
        use FailureReason as R;
        let w309 = "Warning: 309 ocs.contoso.com \"Hyperlinks are not allowed\"\r\n";
        assert_eq!(reason(606, w309), R::BlockedByPolicy);
        assert_eq!(reason(606, ""), R::Offline);
        assert_eq!(
            reason(606, "Warning: 310 ocs.contoso.com \"x\", 309 ocs \"y\"\r\n"),
            R::BlockedByPolicy
        );
        for s in [500, 503, 504, 603] {
            assert_eq!(reason(s, ""), R::ServiceUnavailable, "{s}");
        }
        assert_eq!(reason(486, ""), R::DoNotDisturb);
        assert_eq!(reason(415, "Accept: text/plain\r\n"), R::UnsupportedType);
        assert_eq!(reason(408, ""), R::Offline);
        assert_eq!(reason(480, ""), R::Offline);
        assert_eq!(reason(481, ""), R::DialogGone);
        for s in [302, 403, 404, 488, 501, 600, 699] {
            assert_eq!(reason(s, ""), R::Offline, "{s}");
        }
        assert_eq!(reason(403, w309), R::Offline);
        assert_eq!(reason_for(200, &[]), R::Other);
        assert_eq!(reason_for(0, &[]), R::Other);
        assert!(ends_session(481) && ends_session(408) && ends_session(480));
        assert!(!ends_session(486));
    }

    #[test]
    fn not_failures() {
        assert_eq!(classify(&response(200, "")), None);
        assert_eq!(classify(&response(180, "")), None);
        let req = Message::parse(b"MESSAGE sip:b@x SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK2\r\nFrom: <sip:a@x>;tag=1\r\nTo: <sip:b@x>\r\nCall-ID: c\r\nCSeq: 1 MESSAGE\r\nContent-Length: 0\r\n\r\n").expect("request");
        assert_eq!(classify(&req), None);
        assert!(!is_im_disabled_refusal(&req));
    }

    #[test]
    fn diagnostics_are_kept() {
        let f = classify(&response(
            503,
            "ms-diagnostics: 1;reason=\"Service unavailable\";source=\"ocs.contoso.com\"\r\n",
        ))
        .expect("failure");
        assert_eq!(f.status, 503);
        assert!(!f.recipient_im_disabled);
        let d = f.diagnostics.expect("diagnostics");
        assert_eq!(
            (d.code, d.reason.as_deref()),
            (Some(1), Some("Service unavailable"))
        );
        // Malformed Warning and diagnostics do not hide the status.
        assert_eq!(
            reason(486, "Warning: nonsense\r\nms-diagnostics: x\r\n"),
            FailureReason::DoNotDisturb
        );
    }

    #[test]
    fn im_disabled_refusal_round_trip() {
        let header = format!("ms-client-diagnostics: {IM_DISABLED_CLIENT_DIAGNOSTICS}\r\n");
        let resp = response(IM_DISABLED_STATUS, &header);
        assert!(is_im_disabled_refusal(&resp));
        let f = classify(&resp).expect("failure");
        assert_eq!(f.reason, FailureReason::BlockedByPolicy);
        assert!(f.recipient_im_disabled);
        let d = f.diagnostics.expect("diagnostics");
        assert_eq!(d.code, Some(IM_DISABLED_DIAGNOSTIC_ID));
        assert_eq!(d.reason.as_deref(), Some(IM_DISABLED_REASON));
        assert_eq!(d.header, "ms-client-diagnostics");
        // Recognised by id whatever the status; not from other ids.
        assert!(is_im_disabled_refusal(&response(415, &header)));
        assert!(!is_im_disabled_refusal(&response(
            488,
            "ms-client-diagnostics: 52063;reason=\"Unsupported session description\"\r\n"
        )));
        assert!(!is_im_disabled_refusal(&response(403, "")));
        assert!(!is_im_disabled_refusal(&response(200, &header)));
        assert!(IM_DISABLED_CLIENT_DIAGNOSTICS.starts_with(&IM_DISABLED_DIAGNOSTIC_ID.to_string()));
        assert!(IM_DISABLED_CLIENT_DIAGNOSTICS.contains(IM_DISABLED_REASON));
        assert_eq!(
            FailureReason::BlockedByPolicy.to_string(),
            "message blocked by policy"
        );
    }
}
