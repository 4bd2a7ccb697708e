//! The tokio driver (feature `tokio`): the only place that does I/O and
//! reads the clock. It owns one [`crate::endpoint::Endpoint`] in one task.

pub mod dns;

pub use dns::{DiscoveryError, Resolver};
