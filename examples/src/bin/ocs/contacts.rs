//! `ocs contacts ...`: the server-stored contact list (OCS dialect):
//! list it, add, remove and move contacts, add, rename and remove groups.
//! Each command signs in, waits for the list, makes the change, prints
//! the list as the server now has it, and signs out.

use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::{Value, json};

use ocs_core::driver::{Client, ClientEvent};
use ocs_core::presence::ContactList;
use ocs_core::presence_agent::PresenceEvent;
use ocs_examples::{CliError, emit};

use crate::signin::{SignIn, sign_out, signed_in};

/// Options of `ocs contacts`.
#[derive(Debug, Args)]
pub(crate) struct ContactsArgs {
    #[command(flatten)]
    sign_in: SignIn,
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, Subcommand)]
enum Action {
    /// Print the list: groups, and contacts with their group names.
    List,
    /// Add a contact to a group (default: the default group "~") and
    /// watch it; a listed contact is added to that group as well.
    Add {
        /// The contact, e.g. sip:bob@contoso.com.
        uri: String,
        /// The group's name.
        #[arg(long)]
        group: Option<String>,
    },
    /// Remove a contact.
    Remove {
        /// The contact.
        uri: String,
    },
    /// Move a contact into one group, out of all others.
    Move {
        /// The contact.
        uri: String,
        /// The group's name.
        #[arg(long)]
        to: String,
    },
    /// Create a group.
    GroupAdd {
        /// Its name.
        name: String,
    },
    /// Rename a group.
    GroupRename {
        /// The current name.
        name: String,
        /// The new name.
        new_name: String,
    },
    /// Delete a group (its contacts stay in their other groups).
    GroupRemove {
        /// Its name.
        name: String,
    },
}

/// The list as JSON: `{"delta_num","groups":[{"id","name"}],
/// "contacts":[{"uri","name","groups":[NAME...]}]}`.
pub(crate) fn list_json(l: &ContactList) -> Value {
    json!({
        "delta_num": l.delta_num,
        "groups": l.groups.iter().map(|g| json!({"id": g.id, "name": &*g.name})).collect::<Vec<_>>(),
        "contacts": l.contacts.iter().map(|c| json!({
            "uri": &*c.uri,
            "name": c.name.as_deref(),
            "groups": c.groups.iter()
                .map(|id| l.group(*id).map_or_else(|| id.to_string(), |g| g.name.to_string()))
                .collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

fn quiet(_: &ClientEvent) -> Result<(), CliError> {
    Ok(())
}

/// Waits for the list after sign-in (10 s at most).
async fn list_known(c: &mut Client) -> Result<(), CliError> {
    let wait = async {
        while let Some(e) = c.next_event().await {
            match e {
                ClientEvent::Presence(PresenceEvent::ContactList(_)) => return Ok(()),
                ClientEvent::Stopped => break,
                _ => {}
            }
        }
        Err(CliError::Failed(
            "the client stopped before the contact list arrived".into(),
        ))
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .map_err(|_| CliError::Failed("no contact list from the server within 10 s".into()))?
}

pub(crate) async fn run(a: ContactsArgs) -> Result<(), CliError> {
    let mut c =
        Client::start(a.sign_in.client_config()?).map_err(|e| CliError::Failed(e.to_string()))?;
    signed_in(&mut c, quiet).await?;
    let result = async {
        list_known(&mut c).await?;
        let done = match &a.action {
            Action::List => Ok(None),
            Action::Add { uri, group } => c.add_contact(uri, group.as_deref()).await.map(|()| None),
            Action::Remove { uri } => c.remove_contact(uri).await.map(|()| None),
            Action::Move { uri, to } => c.move_contact(uri, to).await.map(|()| None),
            Action::GroupAdd { name } => c.add_group(name).await.map(Some),
            Action::GroupRename { name, new_name } => {
                c.rename_group(name, new_name).await.map(|()| None)
            }
            Action::GroupRemove { name } => c.remove_group(name).await.map(|()| None),
        };
        let group_id = done.map_err(|e| CliError::Failed(e.to_string()))?;
        let list = c
            .contact_list()
            .await
            .map_err(|e| CliError::Failed(e.to_string()))?
            .unwrap_or_default();
        let mut out = list_json(&list);
        if let Some(id) = group_id {
            out["new_group_id"] = json!(id);
        }
        emit(out)
    }
    .await;
    sign_out(&mut c, quiet).await?;
    result
}
