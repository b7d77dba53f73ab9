//! Byte layout of segment files and records (see the crate documentation for the full picture).

use crate::Hash;

/// First bytes of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"OTCDJNL1";
/// Version of the segment and record layout; bumped on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;
/// magic (8) + version (4) + first_seq (8) + crc32c (4).
pub const SEGMENT_HEADER_LEN: usize = 24;
/// Marks the start of every record header ("OTCR" when read as bytes).
pub const RECORD_MAGIC: u32 = u32::from_le_bytes(*b"OTCR");
/// magic (4) + payload_len (4) + seq (8) + chain hash (32) + payload crc32c (4) + header crc32c (4).
pub const RECORD_HEADER_LEN: usize = 56;

/// Offset of the header checksum inside a record header: it covers every byte before it.
const RECORD_HEADER_CRC_OFFSET: usize = RECORD_HEADER_LEN - 4;
/// Offset of the seq field inside a record header.
pub(crate) const RECORD_SEQ_OFFSET: usize = 8;

/// File name of the segment whose first record has `first_seq`.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.seg")
}

/// Inverse of [`segment_file_name`]; `None` for anything that is not a segment file.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

pub(crate) fn encode_segment_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut bytes = [0u8; SEGMENT_HEADER_LEN];
    bytes[0..8].copy_from_slice(&SEGMENT_MAGIC);
    bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    bytes[12..20].copy_from_slice(&first_seq.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[..20]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    bytes
}

/// Validates a segment header and returns the first_seq it declares, or why it is invalid.
pub(crate) fn decode_segment_header(bytes: &[u8; SEGMENT_HEADER_LEN]) -> Result<u64, String> {
    let stored_crc = read_u32(bytes, 20);
    if crc32c::crc32c(&bytes[..20]) != stored_crc {
        return Err("segment header checksum mismatch".to_string());
    }
    if bytes[0..8] != SEGMENT_MAGIC {
        return Err("bad segment magic".to_string());
    }
    let version = read_u32(bytes, 8);
    if version != FORMAT_VERSION {
        return Err(format!("unsupported segment format version {version}"));
    }
    Ok(read_u64(bytes, 12))
}

/// The decoded, checksum-verified fixed part of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RecordHeader {
    pub payload_len: u32,
    pub seq: u64,
    pub hash: Hash,
    pub payload_crc: u32,
}

impl RecordHeader {
    pub fn for_payload(seq: u64, hash: Hash, payload: &[u8]) -> Self {
        let payload_len = u32::try_from(payload.len()).expect("payload length was checked against u32 limit");
        Self { payload_len, seq, hash, payload_crc: crc32c::crc32c(payload) }
    }

    pub fn encode(&self) -> [u8; RECORD_HEADER_LEN] {
        let mut bytes = [0u8; RECORD_HEADER_LEN];
        bytes[0..4].copy_from_slice(&RECORD_MAGIC.to_le_bytes());
        bytes[4..8].copy_from_slice(&self.payload_len.to_le_bytes());
        bytes[8..16].copy_from_slice(&self.seq.to_le_bytes());
        bytes[16..48].copy_from_slice(&self.hash);
        bytes[48..52].copy_from_slice(&self.payload_crc.to_le_bytes());
        let crc = crc32c::crc32c(&bytes[..RECORD_HEADER_CRC_OFFSET]);
        bytes[RECORD_HEADER_CRC_OFFSET..].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Checks the header checksum first: until it matches, no field (not even the length) can
    /// be trusted.
    pub fn decode(bytes: &[u8; RECORD_HEADER_LEN]) -> Result<Self, &'static str> {
        let stored_crc = read_u32(bytes, RECORD_HEADER_CRC_OFFSET);
        if crc32c::crc32c(&bytes[..RECORD_HEADER_CRC_OFFSET]) != stored_crc {
            return Err("header checksum mismatch");
        }
        if read_u32(bytes, 0) != RECORD_MAGIC {
            return Err("bad record magic");
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&bytes[16..48]);
        Ok(Self {
            payload_len: read_u32(bytes, 4),
            seq: read_u64(bytes, RECORD_SEQ_OFFSET),
            hash,
            payload_crc: read_u32(bytes, 48),
        })
    }

    pub fn record_len(&self) -> usize {
        RECORD_HEADER_LEN + self.payload_len as usize
    }
}

/// The seq stored in the record header at the start of `record_bytes` (no validation).
pub(crate) fn peek_record_seq(record_bytes: &[u8]) -> u64 {
    read_u64(record_bytes, RECORD_SEQ_OFFSET)
}

fn read_u32(bytes: &[u8], offset: usize) -> u32 {
    let mut field = [0u8; 4];
    field.copy_from_slice(&bytes[offset..offset + 4]);
    u32::from_le_bytes(field)
}

fn read_u64(bytes: &[u8], offset: usize) -> u64 {
    let mut field = [0u8; 8];
    field.copy_from_slice(&bytes[offset..offset + 8]);
    u64::from_le_bytes(field)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_round_trip() {
        assert_eq!(segment_file_name(1201), "00000000000000001201.seg");
        assert_eq!(parse_segment_file_name("00000000000000001201.seg"), Some(1201));
        assert_eq!(parse_segment_file_name("1201.seg"), None);
        assert_eq!(parse_segment_file_name("0000000000000000120a.seg"), None);
        assert_eq!(parse_segment_file_name("00000000000000001201.snap"), None);
    }

    #[test]
    fn segment_header_round_trips_and_detects_flips() {
        let bytes = encode_segment_header(42);
        assert_eq!(decode_segment_header(&bytes), Ok(42));
        for index in 0..SEGMENT_HEADER_LEN {
            let mut damaged = bytes;
            damaged[index] ^= 0x01;
            assert!(decode_segment_header(&damaged).is_err(), "flip at {index}");
        }
    }

    #[test]
    fn record_header_round_trips_and_detects_flips() {
        let header = RecordHeader::for_payload(9, [7u8; 32], b"payload");
        let bytes = header.encode();
        assert_eq!(RecordHeader::decode(&bytes), Ok(header));
        assert_eq!(peek_record_seq(&bytes), 9);
        assert_eq!(header.record_len(), RECORD_HEADER_LEN + 7);
        for index in 0..RECORD_HEADER_LEN {
            let mut damaged = bytes;
            damaged[index] ^= 0x80;
            assert!(RecordHeader::decode(&damaged).is_err(), "flip at {index}");
        }
    }
}
