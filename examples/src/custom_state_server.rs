//! The `custom-state-server` example: serves `customStates` XML (the
//! `CustomStateURL` file, PROTOCOL.md d) generated per request, per user
//! or per group, from a small text configuration.
//!
//! Routes (GET only):
//! - `/states.xml` — the `[default]` states; `?user=NAME` or `?group=NAME`
//!   pick a user's or a group's states;
//! - `/users/NAME.xml` — a user's states: their `[user NAME]` section, else
//!   the first `[group ...]` listing them as a member, else `[default]`;
//! - `/groups/NAME.xml` — a group's states (404 when there is no such
//!   group).
//!
//! A user name may be given as `alice`, `alice@contoso.com` or
//! `sip:alice@contoso.com`; names compare case-insensitively.
//!
//! The configuration format (a trivial line format, so the example needs
//! no configuration parser):
//!
//! ```text
//! # comment
//! [default]
//! 1 online 1033 Working from home
//! 1 online 1031 Arbeite von zu Hause
//! [group support]
//! members = alice, bob
//! 2 do-not-disturb 1033 On a support call
//! [user carol]
//! 1 busy 1033 Visiting the Oslo office
//! ```
//!
//! A state line is `ID AVAILABILITY LCID TEXT`; lines with the same ID in
//! one section are that state's languages.

use std::convert::Infallible;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// One `customState` line: ID, availability, LCID, text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateLine {
    /// `ID` (1–4).
    pub id: u32,
    /// `availability` as written (online, busy, do-not-disturb).
    pub availability: String,
    /// The activity's LCID.
    pub lcid: u32,
    /// The activity text.
    pub text: String,
}

/// A named set of states.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Section {
    /// The group's members (lower-case user names); empty for users and
    /// the default.
    pub members: Vec<String>,
    /// The state lines in file order.
    pub states: Vec<StateLine>,
}

/// The parsed configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Config {
    /// `[default]`.
    pub default: Section,
    /// `[group NAME]` sections in file order (lower-case names).
    pub groups: Vec<(String, Section)>,
    /// `[user NAME]` sections in file order (lower-case names).
    pub users: Vec<(String, Section)>,
}

/// A configuration line that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct ConfigError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

enum Target {
    Default,
    Group(usize),
    User(usize),
}

/// Parses the configuration text.
pub fn parse_config(text: &str) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    let mut target = Target::Default;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let err = |message: String| ConfigError {
            line: i + 1,
            message,
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(inner) = line.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| err("a section header ends with ]".into()))?
                .trim();
            let (kind, name) = inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
            let name = name.trim().to_lowercase();
            target = match (kind, name.is_empty()) {
                ("default", true) => Target::Default,
                ("group", false) => {
                    cfg.groups.push((name, Section::default()));
                    Target::Group(cfg.groups.len() - 1)
                }
                ("user", false) => {
                    cfg.users.push((user_key(&name), Section::default()));
                    Target::User(cfg.users.len() - 1)
                }
                _ => {
                    return Err(err(format!(
                        "unknown section [{inner}]: use [default], [group NAME] or [user NAME]"
                    )));
                }
            };
            continue;
        }
        let section = match target {
            Target::Default => &mut cfg.default,
            Target::Group(g) => &mut cfg.groups[g].1,
            Target::User(u) => &mut cfg.users[u].1,
        };
        if let Some(list) = line
            .strip_prefix("members")
            .and_then(|r| r.trim_start().strip_prefix('='))
        {
            if !matches!(target, Target::Group(_)) {
                return Err(err("members = ... belongs in a [group NAME] section".into()));
            }
            section.members.extend(
                list.split(',')
                    .map(|m| user_key(m.trim()))
                    .filter(|m| !m.is_empty()),
            );
            continue;
        }
        let mut parts = line.splitn(4, char::is_whitespace);
        let (Some(id), Some(avail), Some(lcid), Some(text)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(err("expected ID AVAILABILITY LCID TEXT".into()));
        };
        let id = id
            .parse()
            .map_err(|_| err(format!("ID \"{id}\" is not a number")))?;
        let lcid = lcid
            .parse()
            .map_err(|_| err(format!("LCID \"{lcid}\" is not a number")))?;
        section.states.push(StateLine {
            id,
            availability: avail.to_owned(),
            lcid,
            text: text.trim().to_owned(),
        });
    }
    Ok(cfg)
}

/// `sip:Alice@contoso.com` → `alice`.
fn user_key(s: &str) -> String {
    let s = s.trim();
    let s = s
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("sip:"))
        .map_or(s, |_| &s[4..]);
    s.split('@').next().unwrap_or("").to_lowercase()
}

impl Config {
    /// A user's section: `[user NAME]`, else their first group, else
    /// `[default]`.
    pub fn for_user(&self, user: &str) -> &Section {
        let key = user_key(user);
        if let Some((_, s)) = self.users.iter().find(|(n, _)| *n == key) {
            return s;
        }
        if let Some((_, s)) = self.groups.iter().find(|(_, g)| g.members.contains(&key)) {
            return s;
        }
        &self.default
    }

    /// A group's section.
    pub fn for_group(&self, group: &str) -> Option<&Section> {
        let key = group.trim().to_lowercase();
        self.groups.iter().find(|(n, _)| *n == key).map(|(_, s)| s)
    }
}

fn escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// The `customStates` document for a section (09/2009 namespace; states
/// in order of first appearance, their languages grouped).
pub fn render(section: &Section) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<customStates xmlns=\"http://schemas.microsoft.com/09/2009/communicator/customStates\">\n",
    );
    let mut ids: Vec<u32> = Vec::new();
    for l in &section.states {
        if !ids.contains(&l.id) {
            ids.push(l.id);
        }
    }
    for id in ids {
        let lines: Vec<_> = section.states.iter().filter(|l| l.id == id).collect();
        let avail = lines.first().map_or("", |l| l.availability.as_str());
        let _ = write!(out, "  <customState ID=\"{id}\" availability=\"");
        escape(avail, &mut out);
        out.push_str("\">\n");
        for l in lines {
            let _ = write!(out, "    <activity LCID=\"{}\">", l.lcid);
            escape(&l.text, &mut out);
            out.push_str("</activity>\n");
        }
        out.push_str("  </customState>\n");
    }
    out.push_str("</customStates>\n");
    out
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' if i + 2 < b.len()
                && (b[i + 1] as char).is_ascii_hexdigit()
                && (b[i + 2] as char).is_ascii_hexdigit() =>
            {
                let h = (b[i + 1] as char).to_digit(16).unwrap_or(0);
                let l = (b[i + 2] as char).to_digit(16).unwrap_or(0);
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The answer to one request: status and body (XML or a plain-text
/// error). Exposed for tests.
pub fn answer(cfg: &Config, method: &str, path: &str, query: Option<&str>) -> (u16, String) {
    if method != "GET" && method != "HEAD" {
        return (405, "only GET\n".into());
    }
    let param = |name: &str| {
        query?.split('&').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            (k == name).then(|| percent_decode(v))
        })
    };
    let section = if path == "/states.xml" || path == "/" {
        if let Some(u) = param("user") {
            Some(cfg.for_user(&u))
        } else if let Some(g) = param("group") {
            cfg.for_group(&g)
        } else {
            Some(&cfg.default)
        }
    } else if let Some(u) = path
        .strip_prefix("/users/")
        .and_then(|r| r.strip_suffix(".xml"))
    {
        Some(cfg.for_user(&percent_decode(u)))
    } else if let Some(g) = path
        .strip_prefix("/groups/")
        .and_then(|r| r.strip_suffix(".xml"))
    {
        cfg.for_group(&percent_decode(g))
    } else {
        None
    };
    match section {
        Some(s) => (200, render(s)),
        None => (404, "no such user, group or path\n".into()),
    }
}

async fn handle(
    cfg: Arc<Config>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = if req.method() == Method::HEAD {
        "HEAD"
    } else if req.method() == Method::GET {
        "GET"
    } else {
        "OTHER"
    };
    let (status, body) = answer(&cfg, method, req.uri().path(), req.uri().query());
    let ctype = if status == 200 {
        "text/xml; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    let body = if method == "HEAD" {
        Bytes::new()
    } else {
        Bytes::from(body)
    };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(ctype) {
        resp.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    Ok(resp)
}

/// Serves HTTP/1.1 on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, cfg: Arc<Config>) -> std::io::Result<()> {
    loop {
        let (stream, _peer): (_, SocketAddr) = listener.accept().await?;
        let cfg = cfg.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| handle(cfg.clone(), req));
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = include_str!("../custom-state-server.conf");

    #[test]
    fn sample_config_is_valid_for_everyone() {
        let cfg = parse_config(SAMPLE).expect("sample parses");
        let mut sections = vec![&cfg.default];
        sections.extend(cfg.groups.iter().map(|(_, s)| s));
        sections.extend(cfg.users.iter().map(|(_, s)| s));
        for s in sections {
            let xml = render(s);
            ocs_core::customstates::validate(xml.as_bytes())
                .unwrap_or_else(|v| panic!("{xml}\n{v:?}"));
        }
    }

    #[test]
    fn per_user_and_group() {
        let cfg = parse_config(
            "[default]\n1 online 1033 Home\n[group Support]\nmembers = Alice, sip:bob@contoso.com\n2 busy 1033 On <call> & \"x\"\n2 busy 1031 Am Telefon\n[user carol]\n3 do-not-disturb 1033 Away\n",
        )
        .expect("parses");
        let (s, body) = answer(
            &cfg,
            "GET",
            "/states.xml",
            Some("user=sip%3Abob%40contoso.com"),
        );
        assert_eq!(s, 200);
        assert!(
            body.contains("On &lt;call&gt; &amp; &quot;x&quot;"),
            "{body}"
        );
        assert!(body.contains("LCID=\"1031\""), "{body}");
        let st = ocs_core::customstates::validate(body.as_bytes()).expect("valid");
        assert_eq!(st.states[0].id, 2);
        assert_eq!(st.states[0].texts.len(), 2);
        let (_, body) = answer(&cfg, "GET", "/users/ALICE.xml", None);
        assert!(body.contains("ID=\"2\""), "{body}");
        let (_, body) = answer(&cfg, "GET", "/users/carol.xml", None);
        assert!(body.contains("ID=\"3\""), "{body}");
        let (_, body) = answer(&cfg, "GET", "/users/dave.xml", None);
        assert!(body.contains("Home"), "default: {body}");
        let (s, body) = answer(&cfg, "GET", "/groups/support.xml", None);
        assert_eq!(s, 200, "{body}");
        assert_eq!(answer(&cfg, "GET", "/groups/none.xml", None).0, 404);
        assert_eq!(
            answer(&cfg, "GET", "/states.xml", Some("group=none")).0,
            404
        );
        assert_eq!(answer(&cfg, "GET", "/etc/passwd", None).0, 404);
        assert_eq!(answer(&cfg, "POST", "/states.xml", None).0, 405);
    }

    #[test]
    fn config_errors_name_the_line() {
        for (text, line) in [
            ("[default]\n1 online\n", 2),
            ("\n[oops]\n", 2),
            ("[user x]\nmembers = a\n", 2),
            ("x online 1033 t\n", 1),
            ("1 online en 1033 t\n", 1),
            ("[group g\n", 1),
        ] {
            let e = parse_config(text).expect_err(text);
            assert_eq!(e.line, line, "{text}: {e}");
        }
    }

    #[test]
    fn percent_decoding_never_panics() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%"), "%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("a+b%40c"), "a b@c");
        assert_eq!(percent_decode("%C3%A4"), "ä");
    }
}
