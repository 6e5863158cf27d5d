//! Resuming the server's half of a trace after the trace socket reconnects: which messages the
//! page already holds, and where to ask the server to start again.
//!
//! The server sends one run's messages in `seq` order, each once per watch, so what the page
//! holds of a run is always in `seq` order and a message is new exactly when its `seq` is above
//! the highest held. A re-watch after a reconnect sends `after` = that highest `seq`; should the
//! server repeat anything anyway (an older server that ignores `after`), it is dropped here.

use protocol::trace::Message;

/// Whether `message` is one the page does not hold yet (`held`: the run's server messages, in
/// the order they came).
pub fn is_new(held: &[Message], message: &Message) -> bool {
    held.last()
        .is_none_or(|last| last.run != message.run || message.seq > last.seq)
}

/// The `after` to watch the run again with: the highest `seq` held, `None` when nothing is.
pub fn resume_after(held: &[Message]) -> Option<u64> {
    held.last().map(|last| last.seq)
}

#[cfg(test)]
mod tests {
    use protocol::trace::{Actor, Kind, Observer, RunId, Transport};

    use super::*;

    fn msg(run: &str, seq: u64) -> Message {
        Message {
            run: RunId(run.into()),
            seq,
            observer: Observer::Server,
            request_id: None,
            from: Actor::browser(),
            to: Actor::server(),
            kind: Kind::Request,
            transport: Transport::Http1,
            sent_us: None,
            recv_us: Some(0),
            connection: None,
            stream: None,
            label: "GET /".into(),
            bytes: None,
            status: None,
            detail: None,
        }
    }

    /// What the recorder does with each message the socket brings.
    fn receive(held: &mut Vec<Message>, incoming: impl IntoIterator<Item = Message>) {
        for m in incoming {
            if is_new(held, &m) {
                held.push(m);
            }
        }
    }

    #[test]
    fn a_backlog_sent_again_after_a_reconnect_is_not_appended_twice() {
        let mut held = Vec::new();
        receive(&mut held, (0..3).map(|s| msg("r", s)));
        assert_eq!(resume_after(&held), Some(2));
        // A server that replays the whole backlog, then goes on.
        receive(&mut held, (0..5).map(|s| msg("r", s)));
        let seqs: Vec<u64> = held.iter().map(|m| m.seq).collect();
        assert_eq!(seqs, [0, 1, 2, 3, 4]);
        assert_eq!(resume_after(&held), Some(4));
    }

    #[test]
    fn nothing_held_resumes_from_the_start() {
        assert_eq!(resume_after(&[]), None);
        assert!(is_new(&[], &msg("r", 0)));
    }

    #[test]
    fn a_repeat_in_the_middle_is_dropped_too() {
        let held = vec![msg("r", 0), msg("r", 1), msg("r", 2)];
        assert!(!is_new(&held, &msg("r", 1)));
        assert!(!is_new(&held, &msg("r", 2)));
        assert!(is_new(&held, &msg("r", 3)));
    }
}
