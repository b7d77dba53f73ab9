//! The session layer's decisions, without I/O: what an incoming MsgSeqNum means, how a ResendRequest is
//! answered from the store, and which message types exist. The gateway applies them (`gateway.rs`).

use crate::codec::{Builder, Message};
use std::collections::BTreeMap;

/// What to do with an incoming message given the next seq expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SeqCheck {
    /// The expected one: process it, then expect `seq + 1`.
    Process,
    /// A duplicate already processed (PossDupFlag=Y below the expected seq): ignore it.
    Duplicate,
    /// Lower than expected without PossDupFlag: a serious error; log out with this text.
    TooLow(String),
    /// Higher than expected: messages were lost; ask for `from..` (and do not process this one: the resend
    /// brings it again).
    Gap { from: u64 },
    /// No usable MsgSeqNum.
    Missing,
}

pub fn check_seq(message: &Message, next_in: u64) -> SeqCheck {
    let Some(seq) = message.seq_num() else { return SeqCheck::Missing };
    match seq.cmp(&next_in) {
        std::cmp::Ordering::Equal => SeqCheck::Process,
        std::cmp::Ordering::Greater => SeqCheck::Gap { from: next_in },
        std::cmp::Ordering::Less if message.poss_dup() => SeqCheck::Duplicate,
        std::cmp::Ordering::Less => {
            SeqCheck::TooLow(format!("MsgSeqNum too low, expecting {next_in} but received {seq}"))
        }
    }
}

/// One message of the answer to a ResendRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resend {
    /// An application message sent as `seq`, sent again with PossDupFlag=Y.
    Message { seq: u64, original: Vec<u8> },
    /// SequenceReset-GapFill sent as `seq` (PossDupFlag=Y) telling the peer the next seq is `new_seq`.
    GapFill { seq: u64, new_seq: u64 },
}

/// The answer to `ResendRequest(begin, end)` (`end` 0: everything sent so far) given the application messages
/// kept and the next outgoing seq: kept messages again, every other run of seqs as one gap fill.
pub fn plan_resend(sent: &BTreeMap<u64, Vec<u8>>, begin: u64, end: u64, next_out: u64) -> Vec<Resend> {
    let last = if end == 0 || end >= next_out { next_out.saturating_sub(1) } else { end };
    let mut plan = Vec::new();
    let mut gap_start: Option<u64> = None;
    let mut seq = begin.max(1);
    while seq <= last {
        match sent.get(&seq) {
            Some(bytes) => {
                if let Some(start) = gap_start.take() {
                    plan.push(Resend::GapFill { seq: start, new_seq: seq });
                }
                plan.push(Resend::Message { seq, original: bytes.clone() });
                seq += 1;
            }
            None => {
                gap_start.get_or_insert(seq);
                // Jump to the next kept message (or the end) at once: a gap of millions costs nothing.
                seq = sent.range(seq..).next().map_or(last + 1, |(next, _)| *next);
            }
        }
    }
    if let Some(start) = gap_start {
        plan.push(Resend::GapFill { seq: start, new_seq: last + 1 });
    }
    plan
}

/// A SequenceReset-GapFill body.
pub fn gap_fill(new_seq: u64) -> Builder {
    Builder::new("4").field(123, "Y").field(36, new_seq.to_string())
}

/// Admin messages of the session layer.
pub fn is_admin(msg_type: &str) -> bool {
    matches!(msg_type, "0" | "1" | "2" | "3" | "4" | "5" | "A")
}

/// Message types FIX 4.4 defines (anything else is an invalid MsgType, `SessionRejectReason` 11).
pub fn is_fix44_type(msg_type: &str) -> bool {
    const TWO_LETTER: &[&str] = &[
        "AA", "AB", "AC", "AD", "AE", "AF", "AG", "AH", "AI", "AJ", "AK", "AL", "AM", "AN", "AO", "AP", "AQ", "AR",
        "AS", "AT", "AU", "AV", "AW", "AX", "AY", "AZ", "BA", "BB", "BC", "BD", "BE", "BF", "BG", "BH",
    ];
    match msg_type.as_bytes() {
        [byte] => byte.is_ascii_digit() || (byte.is_ascii_alphabetic() && !matches!(byte, b'I' | b'O' | b'U')),
        _ => TWO_LETTER.contains(&msg_type),
    }
}

/// Tags every message must carry in its header.
pub const HEADER_REQUIRED: [u32; 5] = [35, 49, 56, 34, 52];

#[cfg(test)]
mod tests {
    use super::*;

    fn message(seq: u64, poss_dup: bool) -> Message {
        let mut fields = vec![(35, "0".to_owned()), (34, seq.to_string())];
        if poss_dup {
            fields.push((43, "Y".to_owned()));
        }
        Message { fields }
    }

    #[test]
    fn sequence_numbers_are_judged_the_standard_way() {
        assert_eq!(check_seq(&message(5, false), 5), SeqCheck::Process);
        assert_eq!(check_seq(&message(7, false), 5), SeqCheck::Gap { from: 5 });
        assert_eq!(check_seq(&message(3, true), 5), SeqCheck::Duplicate);
        assert!(
            matches!(check_seq(&message(3, false), 5), SeqCheck::TooLow(text) if text.contains("expecting 5 but received 3"))
        );
        assert_eq!(check_seq(&Message { fields: vec![(35, "0".into())] }, 1), SeqCheck::Missing);
    }

    #[test]
    fn a_resend_repeats_kept_messages_and_gap_fills_the_rest() {
        let sent: BTreeMap<u64, Vec<u8>> = [(3, b"c".to_vec()), (4, b"d".to_vec()), (7, b"g".to_vec())].into();
        assert_eq!(
            plan_resend(&sent, 1, 0, 10),
            vec![
                Resend::GapFill { seq: 1, new_seq: 3 },
                Resend::Message { seq: 3, original: b"c".to_vec() },
                Resend::Message { seq: 4, original: b"d".to_vec() },
                Resend::GapFill { seq: 5, new_seq: 7 },
                Resend::Message { seq: 7, original: b"g".to_vec() },
                Resend::GapFill { seq: 8, new_seq: 10 },
            ]
        );
        assert_eq!(plan_resend(&sent, 4, 4, 10), vec![Resend::Message { seq: 4, original: b"d".to_vec() }]);
        assert_eq!(plan_resend(&sent, 12, 0, 10), vec![]);
        assert_eq!(plan_resend(&BTreeMap::new(), 1, 1_000_000_000, 2_000_000_000).len(), 1);
    }

    proptest::proptest! {
        /// A resend answers every seq from `begin` to the last sent exactly once, in order: kept messages as
        /// they were, everything else inside gap fills that point at the next answered seq.
        #[test]
        fn a_resend_plan_covers_the_range_exactly(
            kept in proptest::collection::btree_set(1u64..200, 0..50),
            begin in 0u64..220,
            end in 0u64..220,
            next_out in 1u64..220,
        ) {
            let sent: BTreeMap<u64, Vec<u8>> = kept.iter().filter(|seq| **seq < next_out).map(|seq| (*seq, vec![1])).collect();
            let plan = plan_resend(&sent, begin, end, next_out);
            let last = if end == 0 || end >= next_out { next_out - 1 } else { end };
            let mut expected = begin.max(1);
            for step in &plan {
                match step {
                    Resend::Message { seq, .. } => {
                        proptest::prop_assert_eq!(*seq, expected);
                        proptest::prop_assert!(sent.contains_key(seq));
                        expected += 1;
                    }
                    Resend::GapFill { seq, new_seq } => {
                        proptest::prop_assert_eq!(*seq, expected);
                        proptest::prop_assert!(new_seq > seq);
                        proptest::prop_assert!((*seq..*new_seq).all(|gap| !sent.contains_key(&gap)));
                        expected = *new_seq;
                    }
                }
            }
            proptest::prop_assert_eq!(expected, last.max(begin.max(1) - 1) + 1);
        }

        /// Exactly one verdict per (seq, expected, PossDup), and only the expected seq is processed.
        #[test]
        fn sequence_verdicts_are_total(seq in 0u64..1_000, next_in in 1u64..1_000, poss_dup: bool) {
            let verdict = check_seq(&message(seq, poss_dup), next_in);
            match verdict {
                SeqCheck::Process => proptest::prop_assert_eq!(seq, next_in),
                SeqCheck::Gap { from } => proptest::prop_assert!(seq > next_in && from == next_in),
                SeqCheck::Duplicate => proptest::prop_assert!(seq < next_in && poss_dup),
                SeqCheck::TooLow(_) => proptest::prop_assert!(seq < next_in && !poss_dup),
                SeqCheck::Missing => proptest::prop_assert!(false, "a seq was given"),
            }
        }
    }

    #[test]
    fn message_types_are_recognized() {
        assert!(is_fix44_type("D") && is_fix44_type("AG") && is_fix44_type("0"));
        assert!(!is_fix44_type("ZZ") && !is_fix44_type("I") && !is_fix44_type(""));
    }
}
