//! The one presence model both dialects map into.
//!
//! The OCS dialect carries an availability number (PROTOCOL.md c.4); the
//! standard dialect (PIDF/RPID) carries open/closed plus activities, which
//! are mapped onto the same numbers, so callers only ever see [`State`].

use std::fmt;

/// An OCS availability number (`<availability>` in a `state` category).
///
/// Ranges (OCS 2007 docs; PROTOCOL.md c.4):
///
/// | range | [`State`] |
/// |---|---|
/// | 3000–4499 | online |
/// | 4500–5999 | inactive |
/// | 6000–7499 | busy |
/// | 7500–8999 | busy-idle |
/// | 9000–11999 | do-not-disturb |
/// | 12000–14999 | be-right-back |
/// | 15000–17999 | away |
/// | ≥ 18000, or no state at all | offline |
///
/// Values below 3000 are treated as offline, as SIPE does (Lync 2010 docs
/// start "available" at 0, the OCS 2007 docs at 3000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Availability(pub u32);

impl Availability {
    /// What OC publishes for "Available".
    pub const ONLINE: Availability = Availability(3500);
    /// What OC's machineState publishes after 5 idle minutes.
    pub const INACTIVE: Availability = Availability(5000);
    /// What OC publishes for "Busy".
    pub const BUSY: Availability = Availability(6500);
    /// The start of the busy-idle range (OC never publishes it itself).
    pub const BUSY_IDLE: Availability = Availability(7500);
    /// What OC publishes for "Do not disturb".
    pub const DO_NOT_DISTURB: Availability = Availability(9500);
    /// What OC publishes for "Be right back".
    pub const BE_RIGHT_BACK: Availability = Availability(12500);
    /// What OC publishes for "Away".
    pub const AWAY: Availability = Availability(15500);
    /// What OC publishes for "Offline" / appear offline.
    pub const OFFLINE: Availability = Availability(18500);

    /// The state this number falls in.
    pub fn state(self) -> State {
        match self.0 {
            3000..=4499 => State::Online,
            4500..=5999 => State::Inactive,
            6000..=7499 => State::Busy,
            7500..=8999 => State::BusyIdle,
            9000..=11999 => State::DoNotDisturb,
            12000..=14999 => State::BeRightBack,
            15000..=17999 => State::Away,
            _ => State::Offline,
        }
    }
}

impl fmt::Display for Availability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<State> for Availability {
    fn from(s: State) -> Availability {
        s.availability()
    }
}

/// A presence state, as a user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Available.
    Online,
    /// Available but idle.
    Inactive,
    /// Busy.
    Busy,
    /// Busy and idle.
    BusyIdle,
    /// Do not disturb.
    DoNotDisturb,
    /// Be right back.
    BeRightBack,
    /// Away.
    Away,
    /// Offline (or appearing offline, or no state known).
    Offline,
}

impl State {
    /// Every state, in availability order.
    pub const ALL: [State; 8] = [
        State::Online,
        State::Inactive,
        State::Busy,
        State::BusyIdle,
        State::DoNotDisturb,
        State::BeRightBack,
        State::Away,
        State::Offline,
    ];

    /// The value OC publishes for this state (3500, 5000, 6500, 7500, 9500,
    /// 12500, 15500, 18500).
    pub fn availability(self) -> Availability {
        match self {
            State::Online => Availability::ONLINE,
            State::Inactive => Availability::INACTIVE,
            State::Busy => Availability::BUSY,
            State::BusyIdle => Availability::BUSY_IDLE,
            State::DoNotDisturb => Availability::DO_NOT_DISTURB,
            State::BeRightBack => Availability::BE_RIGHT_BACK,
            State::Away => Availability::AWAY,
            State::Offline => Availability::OFFLINE,
        }
    }

    /// The kebab-case name (`do-not-disturb`), as the CLI prints it.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Online => "online",
            State::Inactive => "inactive",
            State::Busy => "busy",
            State::BusyIdle => "busy-idle",
            State::DoNotDisturb => "do-not-disturb",
            State::BeRightBack => "be-right-back",
            State::Away => "away",
            State::Offline => "offline",
        }
    }

    /// Parses [`State::as_str`] names (ASCII case-insensitive).
    pub fn from_name(s: &str) -> Option<State> {
        State::ALL
            .into_iter()
            .find(|st| st.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a note is the personal note or the out-of-office note.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum NoteKind {
    /// `type="personal"` (the default).
    Personal,
    /// `type="OOF"`: the out-of-office note (from Exchange via Outlook).
    OutOfOffice,
}

/// A contact's note. When several note publications arrive, the newest
/// `publishTime` wins (SIPE); a newest publication without a body clears it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Personal or out-of-office.
    pub kind: NoteKind,
    /// The text.
    pub text: Box<str>,
}

/// Custom activity text for one language (`<custom LCID="1033">`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomText {
    /// The Windows language id (1033 = en-US); absent counts as 1033.
    pub lcid: u32,
    /// The text.
    pub text: Box<str>,
}

/// Phone state: the contact is on a call (published by the host's phone
/// integration or the PBX coupling as a `phoneState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneState {
    /// The availability the phone state asks for (6500 in a call, 9500 when
    /// presenting), if given.
    pub availability: Option<Availability>,
    /// The activity token (`on-the-phone`, `in-a-conference`).
    pub activity: Option<Box<str>>,
}

/// Calendar state: the contact is in a meeting, from free/busy data.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CalendarState {
    /// The availability the calendar asks for (6500 busy, 9500 ...).
    pub availability: Option<Availability>,
    /// The activity token (`in-a-meeting`, `out-of-office`).
    pub activity: Option<Box<str>>,
    /// `meetingSubject`.
    pub meeting_subject: Option<Box<str>>,
    /// `meetingLocation`.
    pub meeting_location: Option<Box<str>>,
}

/// A phone number on the contact card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone {
    /// `work`, `mobile`, `home`, `other`, `custom1`...
    pub kind: Box<str>,
    /// The `tel:` URI.
    pub uri: Option<Box<str>>,
    /// The number as shown.
    pub display: Option<Box<str>>,
}

/// The contact card (category `contactCard`; several instances merge).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContactCard {
    /// `identity/name/displayName`.
    pub display_name: Option<Box<str>>,
    /// `identity/email` (or `email`).
    pub email: Option<Box<str>>,
    /// Job title.
    pub title: Option<Box<str>>,
    /// Company.
    pub company: Option<Box<str>>,
    /// Phone numbers with their types.
    pub phones: Vec<Phone>,
    /// `automaton` = true: a bot (SIPE stops re-subscribing it).
    pub automaton: bool,
}

/// A category kept as received: its name and the XML of the whole
/// `<category>` element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawCategory {
    /// The category name (`calendarData`, `userProperties`, ...).
    pub name: Box<str>,
    /// The `<category>` element as it appeared in the document.
    pub xml: Box<str>,
}

/// One contact's presence, merged from the categories of a notification
/// (or from a PIDF document).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Presence {
    /// The contact's SIP URI.
    pub uri: Box<str>,
    /// The availability (aggregateState, else userState, else
    /// machineState, else legacyInterop); `None` when none was published.
    pub availability: Option<Availability>,
    /// The activity token (`in-a-meeting`, `on-the-phone`, ...).
    pub activity: Option<Box<str>>,
    /// Custom activity text per language (shown instead of the token).
    pub custom: Vec<CustomText>,
    /// The winning note, if any.
    pub note: Option<Note>,
    /// Phone state while a call is up.
    pub phone: Option<PhoneState>,
    /// Calendar state while in a meeting.
    pub calendar: Option<CalendarState>,
    /// The `state/device` value (`Mobile`, `PC`, ...).
    pub device: Option<Box<str>>,
    /// `state/@lastActive` as written (an xs:dateTime).
    pub last_active: Option<Box<str>>,
    /// The contact card, if published.
    pub card: Option<Box<ContactCard>>,
    /// Categories not mapped into the fields above (`calendarData`,
    /// `userProperties`, unknown names), kept as received.
    pub raw_categories: Vec<RawCategory>,
    /// The whole source document, when asked for
    /// ([`ParseOptions::keep_document`](super::ParseOptions)).
    pub document: Option<Box<str>>,
}

impl Presence {
    /// The state derived from [`availability`](Self::availability)
    /// (offline when absent).
    pub fn state(&self) -> State {
        self.availability
            .map_or(State::Offline, Availability::state)
    }

    /// The custom text to show for `lcid`: the text for that LCID; `None`
    /// when that language has none (the plain state shows, as in
    /// Communicator).
    pub fn custom_text(&self, lcid: u32) -> Option<&str> {
        self.custom
            .iter()
            .find(|c| c.lcid == lcid)
            .map(|c| &*c.text)
    }

    /// The custom text in any language: `lcid`'s, else 1033's, else the
    /// first. For display when the viewer's language is unknown.
    pub fn any_custom_text(&self, lcid: u32) -> Option<&str> {
        self.custom_text(lcid)
            .or_else(|| self.custom_text(1033))
            .or_else(|| self.custom.first().map(|c| &*c.text))
    }

    /// Whether the contact is on a mobile device (`state/device` = Mobile).
    pub fn is_mobile(&self) -> bool {
        self.device
            .as_deref()
            .is_some_and(|d| d.eq_ignore_ascii_case("mobile"))
    }

    /// Whether a phone call is up.
    pub fn is_on_the_phone(&self) -> bool {
        self.phone.is_some()
            || matches!(
                self.activity.as_deref(),
                Some("on-the-phone" | "in-a-conference")
            )
    }

    /// Whether the calendar (or the activity) says "in a meeting".
    pub fn is_in_a_meeting(&self) -> bool {
        self.activity.as_deref() == Some("in-a-meeting")
            || self
                .calendar
                .as_ref()
                .is_some_and(|c| c.activity.as_deref() == Some("in-a-meeting"))
    }

    /// The display name from the contact card.
    pub fn display_name(&self) -> Option<&str> {
        self.card.as_ref().and_then(|c| c.display_name.as_deref())
    }

    /// Approximate heap bytes held by this value (for the ≤ 2 KB per
    /// contact budget): string and vector payloads, not allocator
    /// overhead.
    pub fn heap_size(&self) -> usize {
        fn s(x: &Option<Box<str>>) -> usize {
            x.as_ref().map_or(0, |b| b.len())
        }
        let mut n = self.uri.len() + s(&self.activity) + s(&self.device) + s(&self.last_active);
        n += self.custom.capacity() * std::mem::size_of::<CustomText>();
        n += self.custom.iter().map(|c| c.text.len()).sum::<usize>();
        n += self.note.as_ref().map_or(0, |x| x.text.len());
        if let Some(p) = &self.phone {
            n += s(&p.activity);
        }
        if let Some(c) = &self.calendar {
            n += std::mem::size_of::<CalendarState>();
            n += s(&c.activity) + s(&c.meeting_subject) + s(&c.meeting_location);
        }
        if let Some(c) = &self.card {
            n += std::mem::size_of::<ContactCard>();
            n += s(&c.display_name) + s(&c.email) + s(&c.title) + s(&c.company);
            n += c.phones.capacity() * std::mem::size_of::<Phone>();
            n += c
                .phones
                .iter()
                .map(|p| p.kind.len() + s(&p.uri) + s(&p.display))
                .sum::<usize>();
        }
        n += self.raw_categories.capacity() * std::mem::size_of::<RawCategory>();
        n += self
            .raw_categories
            .iter()
            .map(|r| r.name.len() + r.xml.len())
            .sum::<usize>();
        n += s(&self.document);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_and_published_values() {
        let cases = [
            (0, State::Offline),
            (2999, State::Offline),
            (3000, State::Online),
            (4499, State::Online),
            (4500, State::Inactive),
            (5999, State::Inactive),
            (6000, State::Busy),
            (7499, State::Busy),
            (7500, State::BusyIdle),
            (8999, State::BusyIdle),
            (9000, State::DoNotDisturb),
            (11999, State::DoNotDisturb),
            (12000, State::BeRightBack),
            (14999, State::BeRightBack),
            (15000, State::Away),
            (17999, State::Away),
            (18000, State::Offline),
            (u32::MAX, State::Offline),
        ];
        for (v, st) in cases {
            assert_eq!(Availability(v).state(), st, "{v}");
        }
        let published: Vec<u32> = State::ALL.iter().map(|s| s.availability().0).collect();
        assert_eq!(
            published,
            [3500, 5000, 6500, 7500, 9500, 12500, 15500, 18500]
        );
        for s in State::ALL {
            assert_eq!(s.availability().state(), s);
            assert_eq!(State::from_name(s.as_str()), Some(s));
        }
        assert_eq!(Presence::default().state(), State::Offline);
    }
}
