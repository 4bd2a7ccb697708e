//! The tokio driver (feature `tokio`): the only place that does I/O and
//! reads the clock. One task owns one [`crate::endpoint::Endpoint`], its
//! connection (UDP, TCP or TLS via rustls) and its timers; commands go in
//! over a channel and events come out over another.

mod abstore;
mod addressbook;
mod autodiscover;
mod background;
mod certprov;
mod certstore;
mod client;
mod config;
mod conn;
mod customstates;
pub mod dns;
mod handle;
pub mod http;
#[cfg(feature = "sim")]
pub mod sim;
mod trace;

pub use abstore::{AbsStore, STATE_FILE};
pub use addressbook::{
    AddressBookConfig, DownloadError, Downloaded, MAX_ABS_FILE_BYTES, download, download_onto,
    load_stored,
};
pub use autodiscover::{AUTODISCOVER_REQUEST_TIMEOUT, AUTODISCOVER_TIMEOUT, autodiscover};
pub use certprov::{
    CERTPROV_TIMEOUT, ProvisionedCertificate, WebTicketProof, provision_certificate, web_ticket,
};
pub use certstore::{CertStore, RENEW_BEFORE};
pub use client::{AddressBookEvent, Client, ClientEvent};
pub use config::{
    AuthenticatorFactory, AutodiscoverSettings, CertificateSettings, ClientConfig,
    ClientConfigBuilder,
};
pub use conn::TlsSettings;
pub use customstates::{
    CUSTOM_STATES_TIMEOUT, CustomStatesError, FetchLimits, MAX_CUSTOM_STATES_BYTES,
    fetch_custom_states, fetch_custom_states_bytes,
};
pub use dns::{DiscoveryError, Resolver};
pub use handle::{ClientHandle, Pending};
pub use http::{HttpClient, SharedHttp};
pub use trace::{TraceConfig, TraceFormat};
