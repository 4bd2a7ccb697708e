//! The commands of a running client: [`ClientHandle`] sends them to the
//! client's task, which hands them to the session.

use tokio::sync::{mpsc, oneshot};

use crate::addressbook::Entry;
use crate::diag::Snapshot;
use crate::error::Misbehavior;
use crate::error::{Error, Provenance};
use crate::messaging::MessageId;
use crate::presence::ContactList;
use crate::presence::model::{Availability, State};
use crate::presence_agent::{ContactRequest, Meeting, PublishId, WatchId};
use crate::register::Credentials;

/// One command, carried to the client's task.
#[derive(Debug)]
pub(super) enum Command {
    SignOut,
    NetworkChanged,
    SetCredentials(Credentials),
    SendIm {
        to: String,
        text: String,
        reply: oneshot::Sender<Result<Pending<MessageId, ()>, Error>>,
    },
    Typing {
        to: String,
        active: bool,
    },
    EndSession(String),
    SetDisableIm(Option<Provenance>),
    Publish {
        what: Publish,
        reply: oneshot::Sender<Result<Pending<PublishId, State>, Error>>,
    },
    Watch {
        uri: String,
        reply: oneshot::Sender<Result<Pending<WatchId, ()>, Error>>,
    },
    Unwatch(String),
    ReleaseWatch(WatchId),
    Diagnostics(oneshot::Sender<Snapshot>),
    ReloadCustomStates,
    SearchAddressBook {
        query: String,
        limit: usize,
        reply: oneshot::Sender<Vec<Entry>>,
    },
    DownloadAddressBook,
    ContactList(oneshot::Sender<Option<ContactList>>),
    ChangeContacts {
        request: ContactRequest,
        reply: oneshot::Sender<Result<Option<u32>, Error>>,
    },
}

/// A command the client has taken: its id now, its outcome when it ends.
/// The outcome is also reported as the command's outcome event
/// ([`ImEvent::Delivered`](crate::messaging::ImEvent::Delivered) /
/// [`Failed`](crate::messaging::ImEvent::Failed),
/// [`PresenceEvent::Published`](crate::presence_agent::PresenceEvent::Published) /
/// [`PublishFailed`](crate::presence_agent::PresenceEvent::PublishFailed),
/// [`PresenceEvent::Watching`](crate::presence_agent::PresenceEvent::Watching) /
/// [`WatchFailed`](crate::presence_agent::PresenceEvent::WatchFailed));
/// dropping it changes nothing.
#[derive(Debug)]
pub struct Pending<I, T> {
    /// The command's id, as its outcome event carries it.
    pub id: I,
    pub(super) outcome: oneshot::Receiver<Result<T, Error>>,
}

impl<I, T> Pending<I, T> {
    /// Waits for the outcome: `Ok` with what the command achieved (the
    /// state watchers see for a presence command), or why it failed
    /// ([`Error::NotDelivered`] for an IM, [`Error::Stopped`] when the
    /// client stopped first).
    pub async fn outcome(self) -> Result<T, Error> {
        self.outcome.await.unwrap_or(Err(Error::Stopped))
    }
}

/// One presence command: what to publish.
#[derive(Debug)]
pub(super) enum Publish {
    Idle(std::time::Duration),
    InCall(bool),
    InMeeting(Option<Meeting>),
    Reset,
    Note(Option<String>),
    Status {
        state: State,
        note: Option<String>,
    },
    CustomState {
        availability: Availability,
        lcid: u32,
        text: String,
        note: Option<String>,
    },
}

/// The commands of a running [`Client`](super::Client), cloneable and usable from any
/// task while the client's owner reads its events: a host can wait for a
/// contact-list change or a diagnostics snapshot without holding up the
/// event loop. [`Client`](super::Client) derefs to it, so `client.send_im(…)` works too.
/// Commands to a client that has stopped fail or are ignored.
#[derive(Debug, Clone)]
pub struct ClientHandle {
    /// Boxed: a channel allocates room for 32 of its messages at a time,
    /// and a `Command` by value made that 2.6 KB per client.
    pub(super) cmds: mpsc::UnboundedSender<Box<Command>>,
}

impl ClientHandle {
    /// True once the client has stopped: commands are refused
    /// ([`Error::Stopped`]) or ignored.
    pub fn is_stopped(&self) -> bool {
        self.cmds.is_closed()
    }

    /// Sends a command that answers and waits for the answer; a client
    /// that has stopped answers [`Error::Stopped`].
    fn send(&self, c: Command) -> Result<(), mpsc::error::SendError<Box<Command>>> {
        self.cmds.send(Box::new(c))
    }

    async fn ask<T>(&self, make: impl FnOnce(oneshot::Sender<T>) -> Command) -> Result<T, Error> {
        let (reply, rx) = oneshot::channel();
        self.send(make(reply)).map_err(|_| Error::Stopped)?;
        rx.await.map_err(|_| Error::Stopped)
    }

    /// A presence command; the id ends in one
    /// [`PresenceEvent::Published`](crate::presence_agent::PresenceEvent::Published) or [`PresenceEvent::PublishFailed`](crate::presence_agent::PresenceEvent::PublishFailed).
    async fn publish(&self, what: Publish) -> Result<Pending<PublishId, State>, Error> {
        self.ask(|reply| Command::Publish { what, reply }).await?
    }

    /// Un-registers and stops; [`ClientEvent::Stopped`](crate::client::ClientEvent::Stopped) follows.
    pub fn sign_out(&self) {
        let _ = self.send(Command::SignOut);
    }

    /// The network changed: reconnect and re-register now.
    pub fn network_changed(&self) {
        let _ = self.send(Command::NetworkChanged);
    }

    /// Credentials after [`RegistrationEvent::CredentialsNeeded`](crate::register::RegistrationEvent::CredentialsNeeded).
    pub fn set_credentials(&self, creds: Credentials) {
        let _ = self.send(Command::SetCredentials(creds));
    }

    /// Sends an instant message. The id ends in exactly one
    /// [`crate::messaging::ImEvent::Delivered`] or [`crate::messaging::ImEvent::Failed`]; an immediate refusal
    /// (DisableIM, not signed in) is returned as an error.
    pub async fn send_im(&self, to: &str, text: &str) -> Result<Pending<MessageId, ()>, Error> {
        self.ask(|reply| Command::SendIm {
            to: to.to_owned(),
            text: text.to_owned(),
            reply,
        })
        .await?
    }

    /// Tells `to` we are (or stopped) typing.
    pub fn send_typing(&self, to: &str, active: bool) {
        let _ = self.send(Command::Typing {
            to: to.to_owned(),
            active,
        });
    }

    /// Ends the IM session with `to`.
    pub fn end_im_session(&self, to: &str) {
        let _ = self.send(Command::EndSession(to.to_owned()));
    }

    /// Publishes our status (and note). Appear offline ([`State::Offline`])
    /// is refused unless the EnableAppearOffline policy allows it. The id
    /// ends in one [`PresenceEvent::Published`](crate::presence_agent::PresenceEvent::Published) or
    /// [`PresenceEvent::PublishFailed`](crate::presence_agent::PresenceEvent::PublishFailed).
    pub async fn set_status(
        &self,
        state: State,
        note: Option<&str>,
    ) -> Result<Pending<PublishId, State>, Error> {
        self.publish(Publish::Status {
            state,
            note: note.map(str::to_owned),
        })
        .await
    }

    /// Publishes a custom state: availability plus our text for `lcid`.
    pub async fn set_custom_state(
        &self,
        availability: Availability,
        lcid: u32,
        text: &str,
        note: Option<&str>,
    ) -> Result<Pending<PublishId, State>, Error> {
        self.publish(Publish::CustomState {
            availability,
            lcid,
            text: text.to_owned(),
            note: note.map(str::to_owned),
        })
        .await
    }

    /// Starts watching a contact's presence; the id ends in one
    /// [`PresenceEvent::Watching`](crate::presence_agent::PresenceEvent::Watching) or
    /// [`PresenceEvent::WatchFailed`](crate::presence_agent::PresenceEvent::WatchFailed).
    /// A URI that is not a SIP URI is refused ([`Error::ApiMisuse`]).
    pub async fn watch(&self, uri: &str) -> Result<Pending<WatchId, ()>, Error> {
        self.ask(|reply| Command::Watch {
            uri: uri.to_owned(),
            reply,
        })
        .await?
    }

    /// Reports how long the user has been idle (no keyboard or mouse
    /// input); call it whenever the host's idle time changes, and with zero
    /// on input. Crossing Communicator's thresholds (inactive after 5
    /// minutes, away after 20) publishes the machine state; otherwise the
    /// id ends at once.
    pub async fn set_idle(
        &self,
        idle: std::time::Duration,
    ) -> Result<Pending<PublishId, State>, Error> {
        self.publish(Publish::Idle(idle)).await
    }

    /// Reports a meeting from the host's calendar (free/busy data, e.g.
    /// from an Outlook add-in); `None` when it is over. Watchers see "in a
    /// meeting" (busy) while it lasts.
    pub async fn set_in_meeting(
        &self,
        meeting: Option<Meeting>,
    ) -> Result<Pending<PublishId, State>, Error> {
        self.publish(Publish::InMeeting(meeting)).await
    }

    /// Reports that a call started (`true`) or ended: "on the phone" is
    /// shown while it lasts.
    pub async fn set_in_call(&self, in_call: bool) -> Result<Pending<PublishId, State>, Error> {
        self.publish(Publish::InCall(in_call)).await
    }

    /// "Reset status": drops the manual state so the automatic one shows
    /// again.
    pub async fn reset_status(&self) -> Result<Pending<PublishId, State>, Error> {
        self.publish(Publish::Reset).await
    }

    /// Changes the note and keeps the state set last (online when none
    /// was set).
    pub async fn set_note(&self, note: Option<&str>) -> Result<Pending<PublishId, State>, Error> {
        self.publish(Publish::Note(note.map(str::to_owned))).await
    }

    /// Releases the watch `id` asked for: the contact is unwatched once no
    /// other watch (and not the contact list) holds it; a watch still
    /// waiting for the server ends [`Error::Cancelled`].
    pub fn release_watch(&self, id: WatchId) {
        let _ = self.send(Command::ReleaseWatch(id));
    }

    /// Stops watching a contact, whoever asked for the watch.
    pub fn unwatch(&self, uri: &str) {
        let _ = self.send(Command::Unwatch(uri.to_owned()));
    }

    /// Loads `CustomStateURL` again (Communicator only loads it at
    /// sign-in). The result arrives as [`ClientEvent::CustomStates`](crate::client::ClientEvent::CustomStates) or
    /// [`ClientEvent::CustomStatesFailed`](crate::client::ClientEvent::CustomStatesFailed); a load still running is
    /// cancelled.
    pub fn reload_custom_states(&self) {
        let _ = self.send(Command::ReloadCustomStates);
    }

    /// Up to `limit` address-book entries whose name, a word of it, e-mail
    /// address, SIP URI or phone number starts with `query` (empty until
    /// the book is read from the folder or downloaded).
    pub async fn search_address_book(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Entry>, Error> {
        self.ask(|reply| Command::SearchAddressBook {
            query: query.to_owned(),
            limit,
            reply,
        })
        .await
    }

    /// The server-stored contact list (OCS), once the server sent it after
    /// sign-in (`None` before, and in the standard dialect).
    pub async fn contact_list(&self) -> Result<Option<ContactList>, Error> {
        self.ask(Command::ContactList).await
    }

    /// Changes the contact list and waits for the server's answer.
    async fn change_contacts(&self, request: ContactRequest) -> Result<Option<u32>, Error> {
        self.ask(|reply| Command::ChangeContacts { request, reply })
            .await?
    }

    /// Adds a contact to a group (`None`: the default group) and watches
    /// it. A contact already in the list is added to that group as well.
    pub async fn add_contact(&self, uri: &str, group: Option<&str>) -> Result<(), Error> {
        self.change_contacts(ContactRequest::Add {
            uri: uri.to_owned(),
            group: group.map(str::to_owned),
        })
        .await
        .map(drop)
    }

    /// Removes a contact from the list and stops watching it.
    pub async fn remove_contact(&self, uri: &str) -> Result<(), Error> {
        self.change_contacts(ContactRequest::Remove {
            uri: uri.to_owned(),
        })
        .await
        .map(drop)
    }

    /// Moves a contact into `to_group`, out of every other group.
    pub async fn move_contact(&self, uri: &str, to_group: &str) -> Result<(), Error> {
        self.change_contacts(ContactRequest::Move {
            uri: uri.to_owned(),
            to_group: to_group.to_owned(),
        })
        .await
        .map(drop)
    }

    /// Creates a group; returns the id the server gave it.
    pub async fn add_group(&self, name: &str) -> Result<u32, Error> {
        self.change_contacts(ContactRequest::AddGroup {
            name: name.to_owned(),
        })
        .await?
        .ok_or_else(|| {
            Error::misbehaved(
                Misbehavior::BadAnswer,
                "addGroup answered without a group id",
            )
        })
    }

    /// Renames a group.
    pub async fn rename_group(&self, name: &str, new_name: &str) -> Result<(), Error> {
        self.change_contacts(ContactRequest::RenameGroup {
            name: name.to_owned(),
            new_name: new_name.to_owned(),
        })
        .await
        .map(drop)
    }

    /// Deletes a group; its contacts stay in their other groups.
    pub async fn remove_group(&self, name: &str) -> Result<(), Error> {
        self.change_contacts(ContactRequest::RemoveGroup {
            name: name.to_owned(),
        })
        .await
        .map(drop)
    }

    /// Downloads the address book now instead of at the scheduled time
    /// (Communicator has no such button; the seed's workaround is
    /// `GalDownloadInitialDelay` = 0).
    pub fn download_address_book(&self) {
        let _ = self.send(Command::DownloadAddressBook);
    }

    /// The configuration snapshot (`ocs diag`): server, registration,
    /// provisioning, address book, custom states and the effective policy.
    pub async fn diagnostics(&self) -> Result<Snapshot, Error> {
        self.ask(Command::Diagnostics).await
    }

    /// Applies the effective DisableIM policy (`None` allows IM).
    pub fn set_disable_im(&self, provenance: Option<Provenance>) {
        let _ = self.send(Command::SetDisableIm(provenance));
    }
}
