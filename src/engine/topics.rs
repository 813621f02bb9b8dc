//! Publish/subscribe: which connections are subscribed to which topic, and
//! the frames of one publish, built once for all of them.
//!
//! A connection's share of a publish is one of three (see `Shared`): the
//! plain frame, the same for everyone; a frame compressed with no context,
//! the same for every connection with the same deflate parameters; or, with
//! context takeover, a frame of its own, which its encoder makes (on the
//! pool when it is big), in order with its other sends.

use std::rc::Rc;

use super::connection::Published;
use super::idmap::{IdMap, IdSet};
use super::outq::Chunk;
use crate::core::deflate::{Deflater, Params};
use crate::core::frame::write_header;
use crate::core::sender::Shared;

/// Frames at least this long are shared by the queues instead of copied.
const SHARE_MIN: usize = 1024;

#[derive(Default)]
pub struct Topics {
    members: IdMap<IdSet>,
    /// Deflaters for messages compressed once for many, by parameters;
    /// with no context takeover each message starts from a reset state.
    deflaters: Vec<(Params, Deflater)>,
    /// Where shared frames go, one after another (see `Chunk`).
    chunk: Option<Rc<Chunk>>,
}

impl Topics {
    /// Adds connection `conn` to `topic`; false when it was there already.
    pub fn join(&mut self, topic: u32, conn: u32) -> bool {
        self.members.entry(topic).or_default().insert(conn)
    }

    pub fn leave(&mut self, topic: u32, conn: u32) -> bool {
        let Some(set) = self.members.get_mut(&topic) else { return false };
        let was = set.remove(&conn);
        if set.is_empty() {
            self.members.remove(&topic);
        }
        was
    }

    /// The members of `topic`, taken out while a publish goes through them
    /// (`put_back` returns them).
    pub fn take(&mut self, topic: u32) -> Option<IdSet> {
        self.members.remove(&topic)
    }

    /// Returns what `take` took, with the members that joined meanwhile.
    pub fn put_back(&mut self, topic: u32, mut set: IdSet) {
        if let Some(joined) = self.members.remove(&topic) {
            set.extend(joined);
        }
        if !set.is_empty() {
            self.members.insert(topic, set);
        }
    }

    /// Compresses `payload` as one whole message with no context.
    fn deflate(&mut self, params: Params, payload: &[u8], out: &mut Vec<u8>) {
        if !self.deflaters.iter().any(|(k, _)| *k == params) {
            self.deflaters.push((params, Deflater::new(params, true)));
        }
        if let Some((_, d)) = self.deflaters.iter_mut().find(|(k, _)| *k == params) {
            d.deflate(payload, true, out);
        }
    }
}

/// The frames of one publish, made the first time a member needs each.
pub struct Frames<'a> {
    payload: &'a [u8],
    opcode: u8,
    plain: Option<Published>,
    deflated: Vec<(Params, Published)>,
}

impl<'a> Frames<'a> {
    pub fn new(payload: &'a [u8], opcode: u8) -> Self {
        Frames { payload, opcode, plain: None, deflated: Vec::new() }
    }

    /// The frame for `kind` (not `Shared::Own`, which the connection makes).
    pub fn get(&mut self, kind: Shared, topics: &mut Topics) -> Option<&Published> {
        match kind {
            Shared::Plain => {
                let (payload, opcode) = (self.payload, self.opcode);
                Some(self.plain.get_or_insert_with(|| published(payload, opcode, false, &mut topics.chunk)))
            }
            Shared::Deflated(params) => {
                if !self.deflated.iter().any(|(k, _)| *k == params) {
                    let mut z = Vec::new();
                    topics.deflate(params, self.payload, &mut z);
                    self.deflated.push((params, published(&z, self.opcode, true, &mut topics.chunk)));
                }
                self.deflated.iter().find(|(k, _)| *k == params).map(|(_, f)| f)
            }
            Shared::Own => None,
        }
    }
}

/// An unmasked, final frame of `payload`; a big one in `chunk`.
fn published(payload: &[u8], opcode: u8, rsv1: bool, chunk: &mut Option<Rc<Chunk>>) -> Published {
    let mut head = Vec::with_capacity(10);
    write_header(&mut head, true, rsv1, opcode, payload.len(), None);
    if head.len() + payload.len() >= SHARE_MIN {
        // Written straight into the chunk the queues share.
        Published::Shared(Chunk::share(chunk, &[&head, payload]))
    } else {
        head.extend_from_slice(payload);
        Published::Copied(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::deflate::Inflater;
    use crate::core::frame::OP_TEXT;

    #[test]
    fn membership_survives_a_publish_that_took_it() {
        let mut t = Topics::default();
        assert!(t.join(1, 10));
        assert!(!t.join(1, 10));
        let set = t.take(1).unwrap_or_default();
        t.join(1, 11);
        t.put_back(1, set);
        assert_eq!(t.take(1).map(|s| s.len()), Some(2));
        assert!(!t.leave(1, 10));
    }

    #[test]
    fn frames_are_built_once_per_kind() {
        let mut t = Topics::default();
        let text = vec![b'a'; 2000];
        let mut f = Frames::new(&text, OP_TEXT);
        let plain = match f.get(Shared::Plain, &mut t) {
            Some(Published::Shared(frame)) => frame.bytes().as_ptr(),
            _ => std::ptr::null(),
        };
        assert!(matches!(f.get(Shared::Plain, &mut t), Some(Published::Shared(frame)) if frame.bytes().len() == 2004 && frame.bytes().as_ptr() == plain));
        // The same compressed bytes twice in a row: no context carried over.
        for _ in 0..2 {
            let mut f = Frames::new(&text, OP_TEXT);
            let Some(Published::Copied(frame)) = f.get(Shared::Deflated(Params::new(15, 6, -1, -1)), &mut t) else { panic!("a small frame") };
            assert_eq!(frame[0], 0xc1);
            let mut out = vec![];
            let mut inf = Inflater::new(15, true);
            inf.inflate(&frame[2..], true, &mut out, 0).unwrap_or_default();
            assert_eq!(out, text);
        }
        assert!(f.get(Shared::Own, &mut t).is_none());
    }
}
