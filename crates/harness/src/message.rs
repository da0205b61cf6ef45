//! Messages between cores in memory. A core's outgoing message names its entries by
//! position in its log (`EntrySpan`); a network that holds messages while the sender's
//! log may change (cut by a new leader, compacted) copies them out when they are sent.

use raft::time::Time;
use raft::{AsEntryRef, Dropped, Entry, EntryRef, Message, Node, NodeId, OutgoingMessage};

/// A message in flight, owning its entries (or a snapshot chunk's pairs).
pub type OwnedMessage = Message<Vec<Entry>>;

/// `message` as it leaves `sender`, its entries copied out. `None` for a chunk of a
/// snapshot that `sender` has replaced since: it is not sent.
pub fn copy_out(sender: &Node, message: OutgoingMessage) -> Option<OwnedMessage> {
    let entries = match message {
        Message::AppendEntries(m) => sender
            .log_entries(m.entries)
            .into_iter()
            .map(Entry::from_ref)
            .collect(),
        Message::InstallSnapshot(m) => sender
            .snapshot_pairs(m.last_index, m.pairs)?
            .into_iter()
            .map(Entry::from_ref)
            .collect(),
        _ => Vec::new(),
    };
    Some(message.with_entries(entries))
}

/// Hands `message` from `from` to `node`, as the event loop hands it a decoded datagram.
pub fn hand_in(
    node: &mut Node,
    now: Time,
    from: NodeId,
    message: &OwnedMessage,
) -> Result<(), Dropped> {
    let entries: Vec<EntryRef<'_>> = match message {
        Message::AppendEntries(m) => m.entries.iter().map(AsEntryRef::as_entry_ref).collect(),
        Message::InstallSnapshot(m) => m.pairs.iter().map(AsEntryRef::as_entry_ref).collect(),
        _ => Vec::new(),
    };
    node.handle_message(now, from, message.with_entries(&entries[..]))
}
