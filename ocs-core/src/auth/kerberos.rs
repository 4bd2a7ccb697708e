//! Kerberos sign-in (MS-SIPAE 3.2.5 with `Kerberos`) through the system's
//! GSSAPI (MIT or Heimdal, by libgssapi): the client's [`Authenticator`]
//! and the server's acceptor the embedded server uses.
//!
//! The exchange is one leg: the server's challenge names the service
//! (`targetname="sip/pool.contoso.com"`), the client's REGISTER carries
//! the AP-REQ in `gssapi-data`, and the server's 200 OK, signed with the
//! session key, proves the server (no AP-REP is asked for). Signatures are
//! GSS MIC tokens over the MS-SIPAE signature buffer.
//!
//! The client's ticket comes from the user's credential cache (`kinit`, a
//! desktop logon, `KRB5CCNAME`) or from a password
//! ([`KerberosAuthenticator::with_password`], MIT's
//! `gss_acquire_cred_with_password`). The KDC is found as the system's
//! Kerberos configuration says (`KRB5_CONFIG`).

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use libgssapi::context::{ClientCtx, CtxFlags, SecurityContext, ServerCtx};
use libgssapi::credential::{Cred, CredUsage};
use libgssapi::name::Name;
use libgssapi::oid::{GSS_MECH_KRB5, GSS_NT_HOSTBASED_SERVICE, GSS_NT_KRB5_PRINCIPAL, OidSet};

use super::mechanism::{Authenticator, MechanismContext};

fn err(what: &str) -> impl Fn(libgssapi::error::Error) -> String + '_ {
    move |e| format!("Kerberos: {what}: {e}")
}

fn krb5() -> Result<OidSet, String> {
    let mut s = OidSet::new();
    s.add(GSS_MECH_KRB5).map_err(err("mechanism set"))?;
    Ok(s)
}

/// The GSS name of the service a challenge's `targetname` names:
/// `sip/pool.contoso.com` is the host-based service `sip@pool.contoso.com`
/// (MS-SIPAE: the target is the targetname with the `sip/` service).
fn service_name(targetname: &str) -> Result<Name, String> {
    let host = targetname.strip_prefix("sip/").unwrap_or(targetname);
    if host.is_empty() || host.contains(['/', '@']) {
        return Err(format!("Kerberos: targetname {targetname:?} names no host"));
    }
    Name::new(
        format!("sip@{host}").as_bytes(),
        Some(GSS_NT_HOSTBASED_SERVICE),
    )
    .map_err(err("service name"))
}

/// The client's Kerberos credential: a ticket from the credential cache,
/// or one got with a password. `Debug` shows no password.
#[derive(Clone)]
pub struct KerberosAuthenticator {
    principal: Option<String>,
    password: Option<String>,
}

impl std::fmt::Debug for KerberosAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KerberosAuthenticator")
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl KerberosAuthenticator {
    /// The default credential cache's ticket (`kinit`, a desktop logon,
    /// `KRB5CCNAME`).
    pub fn from_cache() -> KerberosAuthenticator {
        KerberosAuthenticator {
            principal: None,
            password: None,
        }
    }

    /// A ticket for `principal` (`alice@CONTOSO.COM`) got with `password`
    /// from the KDC when a context starts; the cache is not touched.
    pub fn with_password(principal: &str, password: &str) -> KerberosAuthenticator {
        KerberosAuthenticator {
            principal: Some(principal.to_owned()),
            password: Some(password.to_owned()),
        }
    }

    fn credential(&self) -> Result<Cred, String> {
        let mechs = krb5()?;
        match (&self.principal, &self.password) {
            (Some(p), Some(pw)) => {
                let name = Name::new(p.as_bytes(), Some(GSS_NT_KRB5_PRINCIPAL))
                    .map_err(err("principal"))?;
                Cred::acquire_with_password(
                    Some(&name),
                    pw,
                    None,
                    CredUsage::Initiate,
                    Some(&mechs),
                )
                .map_err(err("getting a ticket with the password"))
            }
            _ => Cred::acquire(None, None, CredUsage::Initiate, Some(&mechs))
                .map_err(err("no ticket in the credential cache")),
        }
    }
}

impl Authenticator for KerberosAuthenticator {
    fn scheme(&self) -> &str {
        "Kerberos"
    }

    fn start(&mut self, targetname: &str) -> Result<Box<dyn MechanismContext>, String> {
        let cred = self.credential()?;
        let target = service_name(targetname)?;
        let ctx = ClientCtx::new(
            Some(cred),
            target,
            CtxFlags::GSS_C_INTEG_FLAG,
            Some(GSS_MECH_KRB5),
        );
        Ok(Box::new(GssContext {
            ctx: Mutex::new(ctx),
            started: wall(),
        }))
    }
}

/// The server's side: accepts a client's AP-REQ for `targetname` with the
/// service's key from the keytab (`KRB5_KTNAME`); returns the client's
/// principal (`alice@CONTOSO.COM`) and the context that signs and
/// verifies for the association.
pub fn accept(
    targetname: &str,
    token: &[u8],
) -> Result<(String, Box<dyn MechanismContext>), String> {
    let mechs = krb5()?;
    let name = service_name(targetname)?;
    let cred = Cred::acquire(Some(&name), None, CredUsage::Accept, Some(&mechs))
        .map_err(err("the service's key"))?;
    let mut ctx = ServerCtx::new(Some(cred));
    ctx.step(token, None).map_err(err("the client's AP-REQ"))?;
    if !ctx.is_complete() {
        return Err("Kerberos: the client asked for more than one round".into());
    }
    let principal = ctx
        .source_name()
        .map_err(err("the client's name"))?
        .to_string();
    Ok((
        principal,
        Box::new(GssContext {
            ctx: Mutex::new(ctx),
            started: wall(),
        }),
    ))
}

/// A GSS security context as an MS-SIPAE mechanism. GSSAPI contexts are not
/// shareable across threads at once; the mutex gives `verify` the `&mut`
/// GSSAPI wants.
struct GssContext<C: SecurityContext + Send> {
    ctx: Mutex<C>,
    started: SystemTime,
}

/// Drives a client context one step (the server's is driven by
/// [`accept`]).
trait Step {
    fn step_once(&mut self, input: Option<&[u8]>) -> Result<Vec<u8>, String>;
}

impl Step for ClientCtx {
    fn step_once(&mut self, input: Option<&[u8]>) -> Result<Vec<u8>, String> {
        match self.step(input, None) {
            Ok(Some(tok)) => Ok(tok.to_vec()),
            Ok(None) => Ok(Vec::new()),
            Err(e) => Err(err("starting the context")(e)),
        }
    }
}

impl Step for ServerCtx {
    fn step_once(&mut self, _input: Option<&[u8]>) -> Result<Vec<u8>, String> {
        Ok(Vec::new())
    }
}

impl<C: SecurityContext + Step + Send> MechanismContext for GssContext<C> {
    fn step(&mut self, input: Option<&[u8]>) -> Result<Vec<u8>, String> {
        self.ctx
            .get_mut()
            .map_err(|_| "Kerberos: context poisoned".to_owned())?
            .step_once(input)
    }

    fn valid_until(&self) -> Option<SystemTime> {
        let ctx = self.ctx.lock().ok()?;
        let left: Duration = ctx.lifetime().ok()?;
        Some(self.started + left)
    }

    fn sign(&mut self, buffer: &[u8]) -> Result<Vec<u8>, String> {
        let ctx = self
            .ctx
            .get_mut()
            .map_err(|_| "Kerberos: context poisoned".to_owned())?;
        ctx.get_mic(buffer)
            .map(|b| b.to_vec())
            .map_err(err("signing"))
    }

    fn verify(&self, buffer: &[u8], signature: &[u8]) -> Result<(), String> {
        let mut ctx = self
            .ctx
            .lock()
            .map_err(|_| "Kerberos: context poisoned".to_owned())?;
        ctx.verify_mic(buffer, signature)
            .map_err(err("the signature does not verify"))
    }
}

/// The wall clock, for the ticket's end (GSSAPI gives what is left).
#[allow(clippy::disallowed_methods)]
fn wall() -> SystemTime {
    SystemTime::now()
}
