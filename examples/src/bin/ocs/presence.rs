//! `ocs presence ...`: presence document tools.

use clap::Subcommand;
use ocs_core::presence::{
    DocumentKind, ParseOptions, Presence, ResourceUpdate, parse_notify_body, sniff, sniff_boundary,
};
use ocs_examples::{CliError, emit, read_input};
use serde_json::{Value, json};

#[derive(Debug, Subcommand)]
pub(crate) enum PresenceCommand {
    /// Parse a presence body (msrtc categories, multipart/related rlmi, or
    /// PIDF/RPID) and print a JSON array, one object per contact.
    Parse {
        /// The body file; absent or `-` reads stdin.
        file: Option<String>,
        /// The body's Content-Type (gives the multipart boundary); without
        /// it the kind is detected from the root element.
        #[arg(long)]
        content_type: Option<String>,
        /// The viewer's language for custom activity text.
        #[arg(long, default_value_t = 1033)]
        lcid: u32,
    },
}

pub(crate) fn run(cmd: PresenceCommand) -> Result<(), CliError> {
    match cmd {
        PresenceCommand::Parse {
            file,
            content_type,
            lcid,
        } => parse(file.as_deref(), content_type.as_deref(), lcid),
    }
}

fn parse(file: Option<&str>, content_type: Option<&str>, lcid: u32) -> Result<(), CliError> {
    let body = read_input(file)?;
    let ct = match content_type {
        Some(ct) => ct.to_owned(),
        None => match sniff(&body) {
            DocumentKind::Multipart => match sniff_boundary(&body) {
                Some(b) => format!("multipart/related; boundary=\"{b}\""),
                None => {
                    return Err(CliError::Failed(
                        "multipart body without a usable boundary; pass --content-type".into(),
                    ));
                }
            },
            DocumentKind::Categories => "application/msrtc-event-categories+xml".into(),
            DocumentKind::Pidf => "application/pidf+xml".into(),
            _ => String::new(),
        },
    };
    let updates = parse_notify_body(&body, &ct, &ParseOptions::default())
        .map_err(|e| CliError::Failed(e.to_string()))?;
    let out: Vec<Value> = updates.iter().map(|u| update_json(u, lcid)).collect();
    emit(Value::Array(out))
}

/// The JSON shape shared with `ocs watch`.
pub(crate) fn presence_json(p: &Presence, lcid: u32) -> Value {
    json!({
        "uri": &*p.uri,
        "availability": p.availability.map(|a| a.0),
        "state": p.state().as_str(),
        "activity": p.activity.as_deref(),
        "custom_text": p.any_custom_text(lcid),
        "note": p.note.as_ref().map(|n| &*n.text),
        "display_name": p.display_name(),
    })
}

fn update_json(u: &ResourceUpdate, lcid: u32) -> Value {
    let mut v = match &u.presence {
        Some(p) => presence_json(p, lcid),
        None => json!({
            "uri": &*u.uri,
            "availability": null,
            "state": "offline",
            "activity": null,
            "custom_text": null,
            "note": null,
            "display_name": null,
        }),
    };
    if let Value::Object(m) = &mut v {
        if m.get("uri").and_then(Value::as_str) == Some("") {
            m.insert("uri".into(), json!(&*u.uri));
        }
        if let Some(s) = &u.state {
            m.insert("subscription".into(), json!(s.as_str()));
        }
        if let Some(pool) = &u.pool_fqdn {
            m.insert("pool".into(), json!(&**pool));
        }
        if let Some(e) = &u.error {
            m.insert("error".into(), json!(e.to_string()));
        }
    }
    v
}
