//! Matching messages to transactions (RFC 3261 §17.1.3, §17.2.3) and
//! driving many of them at once.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::client::{ClientEvent, ClientTransaction};
use super::server::{ServerEvent, ServerTransaction};
use super::{Reliability, TimerConfig, TxFailure};
use crate::sip::{Message, Method, ParseError};

/// Identifies a transaction inside a [`Transactions`] table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TxId(pub u64);

/// Events from the table, tagged with their transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxEvent {
    /// Send bytes for this transaction (the owner knows where: the
    /// request's destination for client transactions, the request's
    /// source for server transactions).
    Transmit {
        /// The transaction.
        id: TxId,
        /// Bytes to send.
        bytes: Vec<u8>,
    },
    /// The ACK for a non-2xx final response of a client INVITE
    /// transaction: finish it (sign it), send it to the request's
    /// destination and report the bytes with [`Transactions::ack_sent`].
    Ack {
        /// The transaction.
        id: TxId,
        /// The ACK.
        ack: Message,
    },
    /// A response for the TU of a client transaction.
    Response {
        /// The transaction.
        id: TxId,
        /// The response.
        response: Message,
    },
    /// A transaction failed.
    Failed {
        /// The transaction.
        id: TxId,
        /// Why.
        failure: TxFailure,
    },
    /// The ACK for a non-2xx final response of a server INVITE arrived.
    Acknowledged {
        /// The transaction.
        id: TxId,
    },
    /// A transaction ended and was removed from the table.
    Terminated {
        /// The transaction.
        id: TxId,
    },
}

/// What became of an incoming message.
#[derive(Debug)]
#[non_exhaustive]
pub enum Incoming {
    /// A new request; a server transaction `id` was created and the TU
    /// must answer it with [`Transactions::send_response`].
    Request {
        /// The new server transaction.
        id: TxId,
        /// The request.
        request: Message,
    },
    /// An ACK that matches no server transaction: the ACK for a 2xx, for
    /// the dialog layer (§17.1.1.3).
    Ack(Message),
    /// A response matched a client transaction; see the events.
    Matched,
    /// A retransmission absorbed by its transaction.
    Absorbed,
    /// A response with no client transaction, e.g. a retransmitted 2xx to
    /// an INVITE; the TU may need it (§13.2.2.4), otherwise drop it.
    StrayResponse(Message),
    /// A new request while [`Transactions::max_server_transactions`] are
    /// live: no transaction was made. Answer it without one (503 with
    /// Retry-After), so a flood cannot hold memory for 32 s per request.
    Overloaded(Message),
}

/// How many server transactions a table holds at most by default. Over
/// UDP a non-INVITE server transaction lives 32 s after its answer (Timer
/// J) to absorb retransmissions; 4,096 of them (about 2 KB each) bound a
/// flood of 10,000 requests a second to about 8 MB.
pub const DEFAULT_MAX_SERVER_TRANSACTIONS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    /// RFC 3261 branch: (branch, sent-by, method with ACK folded to INVITE).
    Branch(String, String, String),
    /// RFC 2543 peers without the magic cookie.
    Legacy(String, u32, String, String, String),
}

fn method_key(m: &str) -> String {
    if m == "ACK" {
        "INVITE".to_owned()
    } else {
        m.to_owned()
    }
}

fn server_key(req: &Message, method: &str) -> Result<Key, ParseError> {
    let via = req.top_via()?;
    let sent_by = match via.port {
        Some(p) => format!("{}:{p}", via.host),
        None => via.host.to_string(),
    }
    .to_ascii_lowercase();
    match via.branch() {
        Some(b) if b.starts_with("z9hG4bK") => {
            Ok(Key::Branch(b.to_owned(), sent_by, method_key(method)))
        }
        _ => {
            let cseq = req.cseq()?;
            Ok(Key::Legacy(
                req.call_id()?.to_owned(),
                cseq.seq,
                req.from()?.tag().unwrap_or("").to_owned(),
                via.to_string(),
                method_key(method),
            ))
        }
    }
}

/// A table of client and server transactions sharing one clock.
#[derive(Debug)]
pub struct Transactions {
    cfg: TimerConfig,
    next: u64,
    clients: HashMap<TxId, ClientTransaction>,
    client_keys: HashMap<(String, String), TxId>,
    servers: HashMap<TxId, ServerTransaction>,
    server_keys: HashMap<Key, TxId>,
    events: VecDeque<TxEvent>,
    max_servers: usize,
}

impl Default for Transactions {
    fn default() -> Self {
        Transactions::new(TimerConfig::default())
    }
}

impl Transactions {
    /// An empty table with the given timers.
    pub fn new(cfg: TimerConfig) -> Self {
        Transactions {
            cfg,
            next: 0,
            clients: HashMap::new(),
            client_keys: HashMap::new(),
            servers: HashMap::new(),
            server_keys: HashMap::new(),
            events: VecDeque::new(),
            max_servers: DEFAULT_MAX_SERVER_TRANSACTIONS,
        }
    }

    /// How many server transactions may be live at once (default
    /// [`DEFAULT_MAX_SERVER_TRANSACTIONS`]); new requests beyond it come
    /// back as [`Incoming::Overloaded`].
    pub fn set_max_server_transactions(&mut self, n: usize) {
        self.max_servers = n;
    }

    /// See [`Transactions::set_max_server_transactions`].
    pub fn max_server_transactions(&self) -> usize {
        self.max_servers
    }

    /// Number of live transactions.
    pub fn len(&self) -> usize {
        self.clients.len() + self.servers.len()
    }

    /// True when no transaction is live.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A client transaction.
    pub fn client(&self, id: TxId) -> Option<&ClientTransaction> {
        self.clients.get(&id)
    }

    /// A server transaction.
    pub fn server(&self, id: TxId) -> Option<&ServerTransaction> {
        self.servers.get(&id)
    }

    /// Starts a client transaction for `request` (which must carry a top Via
    /// with a branch and a CSeq).
    pub fn send_request(
        &mut self,
        request: Message,
        reliability: Reliability,
        now: Instant,
    ) -> Result<TxId, ParseError> {
        let branch = request.top_via()?.branch().unwrap_or_default().to_owned();
        let method = request.cseq()?.method.to_owned();
        let id = self.alloc();
        self.client_keys.insert((branch, method), id);
        self.clients.insert(
            id,
            ClientTransaction::new(request, reliability, self.cfg, now),
        );
        self.drain_client(id);
        Ok(id)
    }

    /// Sends a response on a server transaction. Returns false when the
    /// transaction is gone or already answered finally.
    pub fn send_response(&mut self, id: TxId, response: &Message, now: Instant) -> bool {
        let ok = match self.servers.get_mut(&id) {
            Some(tx) => tx.send_response(response, now),
            None => false,
        };
        self.drain_server(id);
        ok
    }

    /// The ACK of [`TxEvent::Ack`] went out as `wire` (a transaction that
    /// has ended already needs nothing).
    pub fn ack_sent(&mut self, id: TxId, wire: Vec<u8>) {
        if let Some(tx) = self.clients.get_mut(&id) {
            tx.ack_sent(wire);
        }
    }

    /// Tells the INVITE server transaction `id` that the ACK for its 2xx
    /// arrived.
    pub fn handle_2xx_ack(&mut self, id: TxId) {
        if let Some(tx) = self.servers.get_mut(&id) {
            tx.handle_2xx_ack();
        }
        self.drain_server(id);
    }

    /// The INVITE server transaction a CANCEL refers to (§9.2).
    pub fn invite_for_cancel(&self, cancel: &Message) -> Option<TxId> {
        let key = server_key(cancel, "INVITE").ok()?;
        self.server_keys.get(&key).copied()
    }

    /// Routes an incoming, already validated message.
    pub fn handle_message(
        &mut self,
        msg: Message,
        reliability: Reliability,
        now: Instant,
    ) -> Result<Incoming, ParseError> {
        if msg.is_response() {
            let via = msg.top_via()?;
            let branch = via.branch().unwrap_or_default().to_owned();
            let method = msg.cseq()?.method.to_owned();
            let Some(&id) = self.client_keys.get(&(branch, method)) else {
                return Ok(Incoming::StrayResponse(msg));
            };
            if let Some(tx) = self.clients.get_mut(&id) {
                tx.handle_response(msg, now);
            }
            self.drain_client(id);
            return Ok(Incoming::Matched);
        }
        let method = msg
            .method()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_default();
        let key = server_key(&msg, &method)?;
        if let Some(&id) = self.server_keys.get(&key) {
            let absorbed = match self.servers.get_mut(&id) {
                Some(tx) => {
                    let invite_2xx_ack =
                        method == "ACK" && tx.state() != super::ServerState::Completed;
                    if invite_2xx_ack {
                        false
                    } else {
                        tx.handle_request(&msg, now);
                        true
                    }
                }
                None => false,
            };
            self.drain_server(id);
            if absorbed {
                return Ok(Incoming::Absorbed);
            }
            return Ok(Incoming::Ack(msg));
        }
        if msg.method() == Some(&Method::Ack) {
            return Ok(Incoming::Ack(msg));
        }
        if msg.method() == Some(&Method::Benotify) {
            // MS-SIP: a BENOTIFY is never answered (nor retransmitted), so
            // a transaction for it would never end: each one used to stay
            // in the table for the life of the connection.
            let id = self.alloc();
            return Ok(Incoming::Request { id, request: msg });
        }
        if self.servers.len() >= self.max_servers {
            return Ok(Incoming::Overloaded(msg));
        }
        let id = self.alloc();
        self.server_keys.insert(key, id);
        self.servers.insert(
            id,
            ServerTransaction::new(msg.clone(), reliability, self.cfg, now),
        );
        Ok(Incoming::Request { id, request: msg })
    }

    /// The transport to a client transaction's destination failed.
    pub fn handle_transport_error(&mut self, id: TxId) {
        if let Some(tx) = self.clients.get_mut(&id) {
            tx.handle_transport_error();
            self.drain_client(id);
        } else if let Some(tx) = self.servers.get_mut(&id) {
            tx.handle_transport_error();
            self.drain_server(id);
        }
    }

    /// Forgets every transaction, with no events: the connection they
    /// belonged to is gone and their owners have been told so. Keeping
    /// them would retransmit a request on the next connection (over UDP,
    /// a new socket), where a server that lost its state (a restart) takes
    /// it as new: an IM already reported failed would be delivered again.
    pub fn abandon_all(&mut self) {
        self.clients.clear();
        self.client_keys.clear();
        self.servers.clear();
        self.server_keys.clear();
        self.events.clear();
    }

    /// Gives up on client transaction `id` as if its timeout (Timer B/F)
    /// had fired: it fails with [`TxFailure::Timeout`] and ends. The owner's
    /// own, shorter deadline for one request.
    pub fn time_out(&mut self, id: TxId) {
        if let Some(tx) = self.clients.get_mut(&id) {
            tx.time_out();
            self.drain_client(id);
        }
    }

    /// Advances every transaction's timers up to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<TxId> = self
            .clients
            .iter()
            .filter(|(_, t)| t.poll_timeout().is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(tx) = self.clients.get_mut(&id) {
                tx.handle_timeout(now);
            }
            self.drain_client(id);
        }
        let due: Vec<TxId> = self
            .servers
            .iter()
            .filter(|(_, t)| t.poll_timeout().is_some_and(|at| at <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            if let Some(tx) = self.servers.get_mut(&id) {
                tx.handle_timeout(now);
            }
            self.drain_server(id);
        }
    }

    /// The earliest deadline of any transaction.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.clients
            .values()
            .filter_map(ClientTransaction::poll_timeout)
            .chain(
                self.servers
                    .values()
                    .filter_map(ServerTransaction::poll_timeout),
            )
            .min()
    }

    /// The next event.
    pub fn poll_event(&mut self) -> Option<TxEvent> {
        let e = crate::queue::take_next(&mut self.events);
        if e.is_none() {
            self.release_idle_memory();
        }
        e
    }

    /// Frees the tables' storage once they are empty. A signed-in client
    /// is idle almost all the time, but the maps (and the event queue,
    /// see [`crate::queue::take_next`]) kept the capacity of their busiest
    /// moment (sign-in): about 3.4 KB per client, a seventh of its heap,
    /// at 10,000 clients in one process.
    fn release_idle_memory(&mut self) {
        crate::queue::release_if_empty(&mut self.clients);
        crate::queue::release_if_empty(&mut self.client_keys);
        crate::queue::release_if_empty(&mut self.servers);
        crate::queue::release_if_empty(&mut self.server_keys);
    }

    fn alloc(&mut self) -> TxId {
        self.next += 1;
        TxId(self.next)
    }

    fn drain_client(&mut self, id: TxId) {
        let Some(tx) = self.clients.get_mut(&id) else {
            return;
        };
        let mut done = false;
        while let Some(e) = tx.poll_event() {
            self.events.push_back(match e {
                ClientEvent::Transmit(bytes) => TxEvent::Transmit { id, bytes },
                ClientEvent::Ack(ack) => TxEvent::Ack { id, ack },
                ClientEvent::Response(response) => TxEvent::Response { id, response },
                ClientEvent::Failed(failure) => TxEvent::Failed { id, failure },
                ClientEvent::Terminated => {
                    done = true;
                    TxEvent::Terminated { id }
                }
            });
        }
        if done {
            self.clients.remove(&id);
            self.client_keys.retain(|_, v| *v != id);
        }
    }

    fn drain_server(&mut self, id: TxId) {
        let Some(tx) = self.servers.get_mut(&id) else {
            return;
        };
        let mut done = false;
        while let Some(e) = tx.poll_event() {
            self.events.push_back(match e {
                ServerEvent::Transmit(bytes) => TxEvent::Transmit { id, bytes },
                ServerEvent::Acknowledged => TxEvent::Acknowledged { id },
                ServerEvent::Failed(failure) => TxEvent::Failed { id, failure },
                ServerEvent::Terminated => {
                    done = true;
                    TxEvent::Terminated { id }
                }
            });
        }
        if done {
            self.servers.remove(&id);
            self.server_keys.retain(|_, v| *v != id);
        }
    }
}
