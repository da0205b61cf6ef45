//! One command from a client: answered at once, handed to the core, redirected, or held
//! while no leader is known.
//!
//! Which node serves what:
//! - Commands on keys and `DBSIZE` are served by the leader only: its reads are
//!   linearizable (the core answers from its lease, or after a round that proves it still
//!   leads), its writes are answered once committed, and persisted with a data dir.
//! - A node that knows another leader answers `-MOVED <slot> <leader's client address>`
//!   without proposing anything, so a client may send the command again anywhere.
//! - A node that knows no leader holds the command (and the connection's later ones, to
//!   keep their order) for up to [`LEADER_WAIT_MS_MAX`], as the replica holds requests
//!   for an election, then answers `-CLUSTERDOWN`; one not yet added to the cluster
//!   answers `-CLUSTERDOWN` at once.
//! - A write the leader proposed and lost leadership before seeing committed is answered
//!   `-TIMEOUT`: it may still commit. Never `-TRYAGAIN`, which clients retry blindly.
//! - Everything else (`PING`, `INFO`, `CLUSTER ...`, `CLIENT ...`) is answered by any
//!   node from what it knows.

use crate::cluster_file::ClusterFile;
use crate::hash_slot::hash_slot;
use crate::info;
use crate::port::connection::{Awaited, Connection, Failure, Owed};
use crate::resp::reply;
use crate::value;
use raft::NodeId;
use raft::time::{Span, Time};
use raft::{ClientRequest, CommandRef, MembershipChange, Node, Operation, Role};

/// How long a command waits for a leader to be known before `-CLUSTERDOWN`: an election
/// (the longest election timeout, 1.4 s, and a round of votes) with room to spare.
pub const LEADER_WAIT_MS_MAX: u64 = 2_000;
/// Bytes in a key, at most. The core's own limit is set to what these bytes can take
/// once stored (`value`).
pub const KEY_BYTES_MAX: usize = 1_024;
/// Bytes in a value, at most; also the longest bulk string a request may hold.
pub const VALUE_BYTES_MAX: usize = 4_096;
/// Keys in one `MGET`, `DEL` or `EXISTS`, at most (with the name, the arguments a
/// command may have): bounds one reply to `MGET_KEYS_MAX * VALUE_BYTES_MAX`.
pub const COMMAND_KEYS_MAX: usize = 256;

/// The client id the core sees for every request of the port; replies are routed by the
/// request's MID, which names the connection and the request.
pub const PORT_CLIENT: NodeId = NodeId(0xFFFE);

/// What the port knows beyond one connection.
pub struct Context<'a> {
    pub me: NodeId,
    pub cluster: &'a ClusterFile,
    /// Where the connection sits in the port, which the MIDs name.
    pub connection: usize,
    pub generation: u32,
    pub info: &'a info::Counters,
    pub durable: bool,
    pub started_at: Time,
    pub mid: &'a mut String,
    /// TEST ONLY: a node that is not the leader answers `GET` from its own state machine,
    /// without a read index or lease, so it may miss writes already acknowledged: the
    /// stale read kvnemesis must catch (`kvstore serve --unsafe-local-reads`).
    pub unsafe_local_reads: bool,
}

/// What became of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dispatched {
    /// Answered, or handed to the core: the next command may be taken.
    Taken,
    /// Held until a leader is known: it stays in the input, first in line.
    Held,
    /// Waits for the connection's commands of the other kind (read or write) to be
    /// answered: it stays in the input, first in line.
    Ordered,
}

pub fn dispatch(
    conn: &mut Connection,
    args: &[&[u8]],
    node: &mut Node,
    now: Time,
    cx: &mut Context<'_>,
) -> Dispatched {
    let Some((&name, rest)) = args.split_first() else {
        return Dispatched::Taken;
    };
    let is = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());
    if !(conn.authenticated || is("AUTH") || is("HELLO") || is("QUIT")) {
        conn.error("NOAUTH Authentication required.");
        return Dispatched::Taken;
    }
    let arity = |ok: bool, conn: &mut Connection| {
        if !ok {
            let lower = String::from_utf8_lossy(name).to_ascii_lowercase();
            conn.error(&format!(
                "ERR wrong number of arguments for '{lower}' command"
            ));
        }
        ok
    };
    if is("GET") {
        if arity(rest.len() == 1, conn) {
            return keyed(conn, rest, Awaited::Get, node, now, cx);
        }
    } else if is("SET") {
        if rest.len() > 2 {
            conn.error("ERR SET options (EX, PX, NX, XX, GET, KEEPTTL, ...) are not supported");
        } else if arity(rest.len() == 2, conn) {
            return keyed(conn, rest, Awaited::Set, node, now, cx);
        }
    } else if is("DEL") || is("UNLINK") {
        if arity(!rest.is_empty(), conn) {
            return keyed(conn, rest, Awaited::Del { existed: 0 }, node, now, cx);
        }
    } else if is("EXISTS") {
        if arity(!rest.is_empty(), conn) {
            return keyed(conn, rest, Awaited::Exists, node, now, cx);
        }
    } else if is("MGET") {
        if arity(!rest.is_empty(), conn) {
            return keyed(conn, rest, Awaited::Mget, node, now, cx);
        }
    } else if is("DBSIZE") {
        if arity(rest.is_empty(), conn) {
            return keyed(conn, &[b""], Awaited::Dbsize, node, now, cx);
        }
    } else if is("CLUSTER") && is_sub(rest, "TRANSFER") {
        if arity(rest.len() == 2, conn) {
            return transfer(conn, rest[1], node, now, cx);
        }
    } else if is("CLUSTER") && is_sub(rest, "ADDNODE") {
        if arity(rest.len() == 4, conn) {
            return add_node(conn, &rest[1..], node, now, cx);
        }
    } else if is("CLUSTER") && is_sub(rest, "DELNODE") {
        if arity(rest.len() == 2, conn) {
            let Some(id) = parse_node_id(rest[1]) else {
                unknown_node(conn, rest[1]);
                return Dispatched::Taken;
            };
            return change_membership(conn, MembershipChange::Remove { id }, node, now, cx);
        }
    } else {
        answer_locally(conn, name, rest, node, now, cx);
    }
    Dispatched::Taken
}

/// `CLUSTER TRANSFER <id>`: the leader hands its leadership to node `id` (its id in the
/// cluster file, or the 40-digit one `CLUSTER NODES` shows), answered `+OK` once that
/// node leads; a follower redirects, as for a write.
fn transfer(
    conn: &mut Connection,
    id: &[u8],
    node: &mut Node,
    now: Time,
    cx: &mut Context<'_>,
) -> Dispatched {
    let Some(target) =
        parse_node_id(id).filter(|&id| node.membership().contains(id) || id == cx.me)
    else {
        unknown_node(conn, id);
        return Dispatched::Taken;
    };
    let mid = match operator_request(conn, node, now, cx) {
        Ok(mid) => mid,
        Err(dispatched) => return dispatched,
    };
    node.transfer_leadership(now, target, PORT_CLIENT, &mid);
    owe_operator(conn, Awaited::Transfer { target });
    Dispatched::Taken
}

/// `CLUSTER ADDNODE <id> <peer host:port> <client host:port>`: the leader adds a node
/// started with `kvstore serve --join` as a learner, answered `+OK` once that change is
/// committed; the leader makes it a voter itself once it has caught up.
fn add_node(
    conn: &mut Connection,
    args: &[&[u8]],
    node: &mut Node,
    now: Time,
    cx: &mut Context<'_>,
) -> Dispatched {
    let Some(id) = parse_node_id(args[0]) else {
        unknown_node(conn, args[0]);
        return Dispatched::Taken;
    };
    let address = |a: &[u8]| {
        std::str::from_utf8(a)
            .ok()
            .and_then(|t| t.parse::<std::net::SocketAddr>().ok())
    };
    let (Some(peer), Some(client)) = (address(args[1]), address(args[2])) else {
        conn.error("ERR CLUSTER ADDNODE <id> <peer host:port> <client host:port>: an address is not host:port");
        return Dispatched::Taken;
    };
    let change = MembershipChange::AddLearner {
        id,
        address: crate::members::address_text(peer, client).into(),
    };
    change_membership(conn, change, node, now, cx)
}

/// A membership change by the leader (a follower redirects, as for a write): refused at
/// once with the core's reason, or answered once committed.
fn change_membership(
    conn: &mut Connection,
    change: MembershipChange,
    node: &mut Node,
    now: Time,
    cx: &mut Context<'_>,
) -> Dispatched {
    let mid = match operator_request(conn, node, now, cx) {
        Ok(mid) => mid,
        Err(dispatched) => return dispatched,
    };
    match node.change_membership(now, change, PORT_CLIENT, &mid) {
        Ok(()) => owe_operator(conn, Awaited::Membership),
        Err(refused) => {
            conn.writes_in_flight -= 1;
            conn.error(&format!("ERR membership change refused: {refused}"));
        }
    }
    Dispatched::Taken
}

/// Routes an operator's command as a write: its MID (the connection's next request,
/// counted as a write in flight), or how it was dispatched if it was answered or waits.
fn operator_request(
    conn: &mut Connection,
    node: &Node,
    now: Time,
    cx: &mut Context<'_>,
) -> Result<String, Dispatched> {
    if let Some(dispatched) = route_to_leader(conn, node, now, cx, 0) {
        return Err(dispatched);
    }
    if conn.reads_in_flight > 0 {
        conn.waits_for_order = true;
        return Err(Dispatched::Ordered);
    }
    conn.writes_in_flight += 1;
    Ok(format!(
        "{}.{}.{}",
        cx.connection, cx.generation, conn.next_request
    ))
}

/// The answer owed for the operator's request `operator_request` counted.
fn owe_operator(conn: &mut Connection, what: Awaited) {
    conn.owed
        .push_back(crate::port::connection::Place::Waiting(Owed {
            first_request: conn.next_request,
            what,
            missing: 1,
            slot: 0,
            failure: None,
            count: 0,
            values: Vec::new(),
        }));
    conn.next_request += 1;
}

fn is_sub(rest: &[&[u8]], word: &str) -> bool {
    rest.first()
        .is_some_and(|s| s.eq_ignore_ascii_case(word.as_bytes()))
}

/// A node id as `CLUSTER NODES` shows it (40 hexadecimal digits) or as the cluster file
/// gives it (decimal).
fn parse_node_id(text: &[u8]) -> Option<NodeId> {
    let text = std::str::from_utf8(text).ok()?;
    let number = if text.len() == 40 {
        u16::from_str_radix(&text[36..], 16)
            .ok()
            .filter(|_| text[..36].bytes().all(|b| b == b'0'))?
    } else {
        text.parse().ok()?
    };
    Some(NodeId(number)).filter(|id| !id.is_broadcast())
}

fn unknown_node(conn: &mut Connection, id: &[u8]) {
    let shown: String = String::from_utf8_lossy(id).chars().take(64).collect();
    conn.error(&format!(
        "ERR unknown node {shown}: not a member of the cluster"
    ));
}

/// Why a transfer to `target` was answered `fail`; `leader` is who leads now, if known.
pub fn transfer_failed(target: NodeId, leader: NodeId) -> String {
    let now = if leader == NodeId::UNKNOWN {
        "no leader is known yet".to_owned()
    } else {
        format!("node {} leads", leader.0)
    };
    format!(
        "ERR leadership transfer to node {} did not complete (it did not win within an election timeout, or another node did; a transfer is already under way, or the node is not a voter); {now}",
        target.0
    )
}

/// A command on keys: checked, then served by the leader, redirected or held.
fn keyed(
    conn: &mut Connection,
    keys_and_value: &[&[u8]],
    what: Awaited,
    node: &mut Node,
    now: Time,
    cx: &mut Context<'_>,
) -> Dispatched {
    let keys = match what {
        Awaited::Set => &keys_and_value[..1],
        _ => keys_and_value,
    };
    if keys.len() > COMMAND_KEYS_MAX {
        conn.error(&format!(
            "ERR too many keys in one command (at most {COMMAND_KEYS_MAX})"
        ));
        return Dispatched::Taken;
    }
    if keys.iter().any(|k| k.len() > KEY_BYTES_MAX) {
        conn.error(&format!("ERR key too long (at most {KEY_BYTES_MAX} bytes)"));
        return Dispatched::Taken;
    }
    let slot = hash_slot(keys[0]);
    if cx.unsafe_local_reads && matches!(what, Awaited::Get) && node.role() != Role::Leader {
        let key = value::to_core(keys[0]);
        let read = value::value_from_core(node.kv().get(node.log(), &key)).map(|v| v.into_owned());
        conn.answer(|out| reply::bulk(out, read.as_deref()));
        return Dispatched::Taken;
    }
    if let Some(dispatched) = route_to_leader(conn, node, now, cx, slot) {
        return dispatched;
    }
    // A connection's commands take effect in the order it sent them, as in Redis: a read
    // pipelined after a write must see it, and a write after a read must not be seen by
    // it. The core orders writes by their log positions and serves reads at once or at
    // a later commit index, so reads and writes are never in flight together: a command
    // of the other kind waits until those in flight are answered.
    let in_flight_other = if what.is_write() {
        conn.reads_in_flight
    } else {
        conn.writes_in_flight
    };
    if in_flight_other > 0 {
        conn.waits_for_order = true;
        return Dispatched::Ordered;
    }
    if what.is_write() {
        conn.writes_in_flight += 1;
    } else {
        conn.reads_in_flight += 1;
    }
    let mut owed = Owed {
        first_request: conn.next_request,
        what,
        missing: keys.len(),
        slot,
        failure: None,
        count: 0,
        values: Vec::new(),
    };
    if matches!(what, Awaited::Get | Awaited::Mget | Awaited::Exists) {
        owed.values.resize(keys.len(), None);
    }
    let mut existed = 0;
    for (i, key) in keys.iter().enumerate() {
        let key = value::to_core(key);
        let operation = match what {
            Awaited::Set => Operation::Put {
                key: &key,
                value: &value::value_to_core(keys_and_value[1]),
            },
            Awaited::Del { .. } => {
                existed += u32::from(existed_before_proposal(node, &key));
                Operation::Put {
                    key: &key,
                    value: "",
                }
            }
            _ => Operation::Get { key: &key },
        };
        let request = owed.first_request + i as u64;
        cx.mid.clear();
        use std::fmt::Write;
        let _ = write!(cx.mid, "{}.{}.{request}", cx.connection, cx.generation);
        node.handle_client_request(
            now,
            ClientRequest {
                client: PORT_CLIENT,
                mid: cx.mid,
                operation,
            },
        );
    }
    if let Awaited::Del { .. } = what {
        owed.what = Awaited::Del { existed };
    }
    conn.next_request += keys.len() as u64;
    conn.owed
        .push_back(crate::port::connection::Place::Waiting(owed));
    Dispatched::Taken
}

/// A node that does not lead answers a command for the leader itself: `-MOVED` to the
/// leader it knows, held while it knows none (up to `LEADER_WAIT_MS_MAX`), then
/// `-CLUSTERDOWN`. `None` on the leader: the command is its to serve.
fn route_to_leader(
    conn: &mut Connection,
    node: &Node,
    now: Time,
    cx: &Context<'_>,
    slot: u16,
) -> Option<Dispatched> {
    if node.role() == Role::Leader {
        conn.held_since = None;
        return None;
    }
    let leader = node.leader();
    if leader != NodeId::UNKNOWN && leader != cx.me {
        conn.held_since = None;
        conn.error(&moved(cx.cluster, node, leader, slot));
        return Some(Dispatched::Taken);
    }
    if !node.membership().contains(cx.me) {
        // Not added yet (`serve --join`): no leader will speak to it before an operator
        // adds it, so a client is better told at once to ask another node.
        conn.held_since = None;
        conn.error(CLUSTERDOWN_NOT_A_MEMBER);
        return Some(Dispatched::Taken);
    }
    let since = *conn.held_since.get_or_insert(now);
    if now.since(since) < Span::from_millis(LEADER_WAIT_MS_MAX) {
        return Some(Dispatched::Held);
    }
    conn.held_since = None;
    conn.error(CLUSTERDOWN);
    Some(Dispatched::Taken)
}

/// Whether `key` has a value just before the entry this leader is about to append for
/// it: the latest put to it among the entries not yet applied (the leader's whole log
/// from its last applied entry, committed or not), else the state machine. Sound because
/// if the new entry commits, every entry before it in this leader's log commits with it
/// and nothing else comes between (Log Matching, §5.3); if it does not commit, the client
/// is told the outcome is unknown and the count means nothing. Scans the unapplied
/// entries, at most the core's pending puts and an apply batch.
pub fn existed_before_proposal(node: &Node, key: &str) -> bool {
    let log = node.log();
    let applied = node.last_applied();
    let mut i = log.last_index();
    while i > applied {
        if let Some(entry) = log.get(i)
            && let CommandRef::Put { key: k, value: v } = entry.command
            && k == key
        {
            return value::exists(v);
        }
        i = i.prev();
    }
    value::exists(node.kv().get(log, key))
}

pub const CLUSTERDOWN: &str = "CLUSTERDOWN no leader";
pub const CLUSTERDOWN_NOT_A_MEMBER: &str =
    "CLUSTERDOWN this node is not a member of the cluster (yet): ask another";
pub const TIMEOUT: &str = "TIMEOUT leadership was lost before the write was known to commit: it may or may not have taken effect";

/// `MOVED <slot> <host:port>` naming `leader`'s client address.
pub fn moved(cluster: &ClusterFile, node: &Node, leader: NodeId, slot: u16) -> String {
    match crate::members::client_address(cluster, node, leader) {
        Some(client) => format!("MOVED {slot} {client}"),
        // A leader whose address is unknown: only one outside both the file and the
        // membership, which no correct leader is.
        None => CLUSTERDOWN.to_owned(),
    }
}

/// The reply to a command whose answers are all in.
pub fn encode_owed(owed: &Owed, out: &mut Vec<u8>) {
    if let Some((_, error)) = &owed.failure {
        reply::error(out, error);
        return;
    }
    match owed.what {
        Awaited::Get => reply::bulk(out, owed.values[0].as_deref()),
        Awaited::Mget => {
            reply::array(out, owed.values.len());
            for value in &owed.values {
                reply::bulk(out, value.as_deref());
            }
        }
        Awaited::Exists => {
            let n = owed.values.iter().filter(|v| v.is_some()).count();
            reply::integer(out, n as i64);
        }
        Awaited::Set => reply::ok(out),
        Awaited::Del { existed } => reply::integer(out, i64::from(existed)),
        Awaited::Dbsize => reply::integer(out, owed.count as i64),
        Awaited::Transfer { .. } | Awaited::Membership => reply::ok(out),
    }
}

/// Records a failed answer: the reply becomes `error`, an unknown outcome winning.
pub fn fail(owed: &mut Owed, failure: Failure, error: String) {
    let keep = matches!(owed.failure, Some((Failure::OutcomeUnknown, _)));
    if !keep && (owed.failure.is_none() || failure == Failure::OutcomeUnknown) {
        owed.failure = Some((failure, error));
    }
}

/// Commands any node answers from what it knows.
fn answer_locally(
    conn: &mut Connection,
    name: &[u8],
    rest: &[&[u8]],
    node: &Node,
    now: Time,
    cx: &mut Context<'_>,
) {
    let is = |word: &str| name.eq_ignore_ascii_case(word.as_bytes());
    let sub = |i: usize, word: &str| {
        rest.get(i)
            .is_some_and(|a| a.eq_ignore_ascii_case(word.as_bytes()))
    };
    if is("PING") {
        match rest {
            [] => conn.answer(|out| reply::simple(out, "PONG")),
            [message] => conn.answer(|out| reply::bulk(out, Some(message))),
            _ => conn.error("ERR wrong number of arguments for 'ping' command"),
        }
    } else if is("ECHO") {
        match rest {
            [message] => conn.answer(|out| reply::bulk(out, Some(message))),
            _ => conn.error("ERR wrong number of arguments for 'echo' command"),
        }
    } else if is("QUIT") {
        conn.answer(reply::ok);
        conn.closing = true;
    } else if is("SELECT") {
        match rest {
            [b"0"] => conn.answer(reply::ok),
            [_] => conn.error("ERR DB index is out of range"),
            _ => conn.error("ERR wrong number of arguments for 'select' command"),
        }
    } else if is("AUTH") {
        auth(conn, rest, cx.cluster);
    } else if is("HELLO") {
        hello(conn, rest, node, cx);
    } else if is("CLIENT") {
        client(
            conn,
            rest,
            sub(0, "SETNAME"),
            sub(0, "SETINFO"),
            sub(0, "ID"),
            sub(0, "GETNAME"),
        );
    } else if is("COMMAND") {
        if sub(0, "COUNT") {
            conn.answer(|out| reply::integer(out, 0));
        } else {
            // No command table is published: clients then fall back to their own
            // (redis-cli loses hints, nothing else).
            conn.answer(|out| reply::array(out, 0));
        }
    } else if is("CONFIG") {
        if sub(0, "GET") && rest.len() >= 2 {
            let pairs = info::config_get(&rest[1..], cx.durable);
            conn.answer(|out| {
                reply::array(out, pairs.len() * 2);
                for (name, value) in &pairs {
                    reply::bulk(out, Some(name.as_bytes()));
                    reply::bulk(out, Some(value.as_bytes()));
                }
            });
        } else {
            conn.error("ERR only CONFIG GET is supported");
        }
    } else if is("INFO") {
        let text = info::info(rest, node, cx, now);
        conn.answer(|out| reply::bulk(out, Some(text.as_bytes())));
    } else if is("CLUSTER") {
        info::cluster(conn, rest, node, cx);
    } else if is("READONLY") || is("READWRITE") {
        // Cluster clients send these to replicas; every read here goes to the leader.
        conn.answer(reply::ok);
    } else {
        let shown: String = String::from_utf8_lossy(name).chars().take(64).collect();
        conn.error(&format!("ERR unknown command '{shown}'"));
    }
}

fn auth(conn: &mut Connection, rest: &[&[u8]], cluster: &ClusterFile) {
    let (user, password) = match rest {
        [password] => (None, *password),
        [user, password] => (Some(*user), *password),
        _ => {
            conn.error("ERR wrong number of arguments for 'auth' command");
            return;
        }
    };
    match check_password(cluster, user, password) {
        Ok(()) => {
            conn.authenticated = true;
            conn.answer(reply::ok);
        }
        Err(error) => conn.error(error),
    }
}

const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";

/// `requirepass`: only the default user exists.
fn check_password(
    cluster: &ClusterFile,
    user: Option<&[u8]>,
    password: &[u8],
) -> Result<(), &'static str> {
    let Some(expected) = &cluster.requirepass else {
        return Err(
            "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?",
        );
    };
    let user_ok = user.is_none_or(|u| u.eq_ignore_ascii_case(b"default"));
    if user_ok && constant_time_eq(expected.as_bytes(), password) {
        Ok(())
    } else {
        Err(WRONGPASS)
    }
}

/// Compares without stopping at the first difference, so the time taken says nothing of
/// where a guess went wrong.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `HELLO [2 [AUTH user password] [SETNAME name]]`: RESP2 only.
fn hello(conn: &mut Connection, rest: &[&[u8]], node: &Node, cx: &mut Context<'_>) {
    if let Some(version) = rest.first()
        && *version != b"2"
    {
        conn.error("NOPROTO unsupported protocol version");
        return;
    }
    let mut name = None;
    let mut i = 1;
    while i < rest.len() {
        let option = rest[i];
        if option.eq_ignore_ascii_case(b"AUTH") && i + 2 < rest.len() {
            if let Err(error) = check_password(cx.cluster, Some(rest[i + 1]), rest[i + 2]) {
                conn.error(error);
                return;
            }
            conn.authenticated = true;
            i += 3;
        } else if option.eq_ignore_ascii_case(b"SETNAME") && i + 1 < rest.len() {
            name = Some(rest[i + 1].to_vec());
            i += 2;
        } else {
            conn.error("ERR syntax error in HELLO option");
            return;
        }
    }
    if !conn.authenticated {
        conn.error("NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time");
        return;
    }
    if name.is_some() {
        conn.name = name;
    }
    let role = if node.role() == Role::Leader {
        "master"
    } else {
        "replica"
    };
    let client_id = conn.client_id;
    conn.answer(|out| {
        reply::array(out, 14);
        for (name, value) in [("server", "redis"), ("version", info::REDIS_VERSION)] {
            reply::bulk(out, Some(name.as_bytes()));
            reply::bulk(out, Some(value.as_bytes()));
        }
        reply::bulk(out, Some(b"proto"));
        reply::integer(out, 2);
        reply::bulk(out, Some(b"id"));
        reply::integer(out, client_id as i64);
        reply::bulk(out, Some(b"mode"));
        reply::bulk(out, Some(b"cluster"));
        reply::bulk(out, Some(b"role"));
        reply::bulk(out, Some(role.as_bytes()));
        reply::bulk(out, Some(b"modules"));
        reply::array(out, 0);
    });
}

fn client(
    conn: &mut Connection,
    rest: &[&[u8]],
    setname: bool,
    setinfo: bool,
    id: bool,
    getname: bool,
) {
    if setname && rest.len() == 2 {
        if rest[1].iter().any(|&b| b <= b' ' || b > b'~') {
            conn.error("ERR Client names cannot contain spaces, newlines or special characters.");
        } else {
            conn.name = (!rest[1].is_empty()).then(|| rest[1].to_vec());
            conn.answer(reply::ok);
        }
    } else if setinfo && rest.len() == 3 {
        conn.answer(reply::ok);
    } else if id && rest.len() == 1 {
        let client_id = conn.client_id;
        conn.answer(|out| reply::integer(out, client_id as i64));
    } else if getname && rest.len() == 1 {
        let name = conn.name.clone();
        conn.answer(|out| reply::bulk(out, name.as_deref()));
    } else {
        conn.error("ERR unknown CLIENT subcommand or wrong number of arguments (supported: SETNAME, GETNAME, SETINFO, ID)");
    }
}
