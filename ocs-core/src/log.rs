//! The library's `tracing` output (feature `tracing`), in one place so the
//! rest of the crate needs no `cfg`: [`log!`] emits an event (a no-op
//! without the feature) and [`ClientSpan`] names a client's events (its
//! AOR and epid) so many clients in one process can be told apart.
//!
//! Rule for every call: never credentials, keys, tokens, message text or
//! presence notes (a test checks this at every level).

/// Emits a `tracing` event: `log!(Level, "format", args...)` or with
/// fields first, `log!(Level, id = 1100, "format", args...)`. Without the
/// `tracing` feature it compiles to nothing (its arguments are not
/// evaluated).
#[cfg(feature = "tracing")]
macro_rules! log {
    ($lvl:ident, $($rest:tt)+) => {
        ::tracing::event!(target: "ocs_core", ::tracing::Level::$lvl, $($rest)+)
    };
}

#[cfg(not(feature = "tracing"))]
macro_rules! log {
    ($lvl:ident, $($rest:tt)+) => {{}};
}

pub(crate) use log;

/// A client's span: `ocs_client{aor=… epid=…}`.
#[derive(Debug, Clone)]
pub(crate) struct ClientSpan {
    #[cfg(feature = "tracing")]
    span: tracing::Span,
}

impl ClientSpan {
    /// The span for one client.
    #[cfg_attr(not(feature = "tracing"), allow(unused_variables))]
    pub(crate) fn new(aor: &str, epid: &str) -> ClientSpan {
        ClientSpan {
            #[cfg(feature = "tracing")]
            span: tracing::info_span!(target: "ocs_core", "ocs_client", aor = %aor, epid = %epid),
        }
    }

    /// Enters the span until the guard drops: events below it (the
    /// registration's, presence's, ...) carry the client's AOR and epid.
    pub(crate) fn enter(&self) -> SpanGuard {
        SpanGuard {
            #[cfg(feature = "tracing")]
            _entered: self.span.clone().entered(),
        }
    }
}

/// While alive, the client's span is entered.
pub(crate) struct SpanGuard {
    #[cfg(feature = "tracing")]
    _entered: tracing::span::EnteredSpan,
}
