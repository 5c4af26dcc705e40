//! KMIP's binary encoding, TTLV (Tag, Type, Length, Value; KMIP 1.4 §9.1, KMIP 2.1 §9.1),
//! as pure functions over bytes: no socket, no allocation beyond the decoded value.
//!
//! Decoding is strict, because a key manager's parser is an attack surface: every length
//! must match its type, padding must be zero, text must be UTF-8, a structure's length must
//! be exactly its children's, the message size and nesting depth are bounded, and no input
//! panics (property tests and a fuzz target check that). Anything else is a [`TtlvError`]
//! naming the offset, which the KMIP door answers with a KMIP error or a closed connection.

/// Item types (KMIP 1.4 §9.1.1.2, 2.0 for Date-Time Extended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemType {
    Structure = 0x01,
    Integer = 0x02,
    LongInteger = 0x03,
    BigInteger = 0x04,
    Enumeration = 0x05,
    Boolean = 0x06,
    TextString = 0x07,
    ByteString = 0x08,
    DateTime = 0x09,
    Interval = 0x0A,
    DateTimeExtended = 0x0B,
}

impl ItemType {
    fn from_byte(b: u8) -> Option<Self> {
        use ItemType::*;
        Some(match b {
            0x01 => Structure,
            0x02 => Integer,
            0x03 => LongInteger,
            0x04 => BigInteger,
            0x05 => Enumeration,
            0x06 => Boolean,
            0x07 => TextString,
            0x08 => ByteString,
            0x09 => DateTime,
            0x0A => Interval,
            0x0B => DateTimeExtended,
            _ => return None,
        })
    }
}

/// Byte-string and big-integer contents: they may be key material, so they are wiped when
/// dropped.
pub type Bytes = zeroize::Zeroizing<Vec<u8>>;

/// A decoded value. `Debug` shows byte strings and big integers by length only, because
/// they may be key material.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    Structure(Vec<Item>),
    Integer(i32),
    LongInteger(i64),
    /// Two's complement, big-endian, a multiple of 8 bytes (sign-extended).
    BigInteger(Bytes),
    Enumeration(u32),
    Boolean(bool),
    TextString(String),
    ByteString(Bytes),
    /// Seconds since the Unix epoch.
    DateTime(i64),
    /// Seconds.
    Interval(u32),
    /// Microseconds since the Unix epoch.
    DateTimeExtended(i64),
}

impl std::fmt::Debug for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Structure(items) => f.debug_list().entries(items).finish(),
            Value::Integer(x) => write!(f, "Integer({x})"),
            Value::LongInteger(x) => write!(f, "LongInteger({x})"),
            Value::BigInteger(b) => write!(f, "BigInteger(<{} bytes>)", b.len()),
            Value::Enumeration(x) => write!(f, "Enumeration(0x{x:08X})"),
            Value::Boolean(x) => write!(f, "Boolean({x})"),
            Value::TextString(s) => write!(f, "TextString({s:?})"),
            Value::ByteString(b) => write!(f, "ByteString(<{} bytes>)", b.len()),
            Value::DateTime(x) => write!(f, "DateTime({x})"),
            Value::Interval(x) => write!(f, "Interval({x})"),
            Value::DateTimeExtended(x) => write!(f, "DateTimeExtended({x})"),
        }
    }
}

impl Value {
    /// Byte-string value from bytes.
    pub fn bytes(b: impl Into<Vec<u8>>) -> Value {
        Value::ByteString(Bytes::new(b.into()))
    }

    /// The item type of this value.
    pub fn item_type(&self) -> ItemType {
        match self {
            Value::Structure(_) => ItemType::Structure,
            Value::Integer(_) => ItemType::Integer,
            Value::LongInteger(_) => ItemType::LongInteger,
            Value::BigInteger(_) => ItemType::BigInteger,
            Value::Enumeration(_) => ItemType::Enumeration,
            Value::Boolean(_) => ItemType::Boolean,
            Value::TextString(_) => ItemType::TextString,
            Value::ByteString(_) => ItemType::ByteString,
            Value::DateTime(_) => ItemType::DateTime,
            Value::Interval(_) => ItemType::Interval,
            Value::DateTimeExtended(_) => ItemType::DateTimeExtended,
        }
    }
}

/// One TTLV item: a 3-byte tag and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// `0x42xxxx` for KMIP tags, `0x54xxxx` for extensions.
    pub tag: u32,
    pub value: Value,
}

impl Item {
    pub fn new(tag: u32, value: Value) -> Self {
        Item { tag, value }
    }
}

/// Why bytes are not a valid TTLV item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid TTLV at byte {offset}: {problem}")]
pub struct TtlvError {
    pub offset: usize,
    pub problem: String,
}

fn err<T>(offset: usize, problem: impl Into<String>) -> Result<T, TtlvError> {
    Err(TtlvError {
        offset,
        problem: problem.into(),
    })
}

/// Bounds on what a decoder accepts.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest whole message, in bytes.
    pub max_message: usize,
    /// Deepest nesting of structures.
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message: 16 * 1024 * 1024,
            max_depth: 32,
        }
    }
}

fn padded(n: usize) -> usize {
    n.div_ceil(8) * 8
}

/// The total size of the item whose first 8 bytes are `head` (for framing a stream: read
/// 8 bytes, then the rest). Refuses a size beyond the limits before anything is read.
pub fn item_size(head: &[u8; 8], limits: &Limits) -> Result<usize, TtlvError> {
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    let total = 8usize.saturating_add(padded(len));
    if total > limits.max_message {
        return err(
            4,
            format!("item of {total} bytes exceeds {}", limits.max_message),
        );
    }
    Ok(total)
}

/// Decodes exactly one item that fills `bytes`.
pub fn decode(bytes: &[u8], limits: &Limits) -> Result<Item, TtlvError> {
    if bytes.len() > limits.max_message {
        return err(
            0,
            format!(
                "message of {} bytes exceeds {}",
                bytes.len(),
                limits.max_message
            ),
        );
    }
    let (item, used) = decode_at(bytes, 0, 0, limits)?;
    if used != bytes.len() {
        return err(used, "bytes follow the item");
    }
    Ok(item)
}

fn decode_at(
    b: &[u8],
    at: usize,
    depth: usize,
    limits: &Limits,
) -> Result<(Item, usize), TtlvError> {
    if depth > limits.max_depth {
        return err(at, format!("nesting deeper than {}", limits.max_depth));
    }
    let Some(head) = b.get(at..at + 8) else {
        return err(at, "truncated item header");
    };
    let tag = u32::from_be_bytes([0, head[0], head[1], head[2]]);
    if head[0] != 0x42 && head[0] != 0x54 {
        return err(
            at,
            format!("tag {tag:06X} is neither a KMIP (42xxxx) nor an extension (54xxxx) tag"),
        );
    }
    let Some(ty) = ItemType::from_byte(head[3]) else {
        return err(at + 3, format!("unknown item type {:02X}", head[3]));
    };
    let len = u32::from_be_bytes([head[4], head[5], head[6], head[7]]) as usize;
    let start = at + 8;
    let end = start.checked_add(padded(len)).filter(|e| *e <= b.len());
    let Some(end) = end else {
        return err(
            at + 4,
            format!("length {len} runs past the end of the message"),
        );
    };
    let v = &b[start..start + len];
    let pad = &b[start + len..end];
    if pad.iter().any(|x| *x != 0) {
        return err(start + len, "padding is not zero");
    }
    let fixed = |n: usize| -> Result<(), TtlvError> {
        if len != n {
            return err(at + 4, format!("{ty:?} must have length {n}, not {len}"));
        }
        Ok(())
    };
    let value = match ty {
        ItemType::Structure => {
            let mut items = Vec::new();
            let mut p = start;
            while p < start + len {
                let (child, next) = decode_at(&b[..start + len], p, depth + 1, limits)?;
                items.push(child);
                p = next;
            }
            Value::Structure(items)
        }
        ItemType::Integer => {
            fixed(4)?;
            Value::Integer(i32::from_be_bytes(v.try_into().expect("4 bytes")))
        }
        ItemType::LongInteger => {
            fixed(8)?;
            Value::LongInteger(i64::from_be_bytes(v.try_into().expect("8 bytes")))
        }
        ItemType::BigInteger => {
            if len == 0 || !len.is_multiple_of(8) {
                return err(
                    at + 4,
                    format!("a Big Integer's length is a multiple of 8, not {len}"),
                );
            }
            Value::BigInteger(Bytes::new(v.to_vec()))
        }
        ItemType::Enumeration => {
            fixed(4)?;
            Value::Enumeration(u32::from_be_bytes(v.try_into().expect("4 bytes")))
        }
        ItemType::Boolean => {
            fixed(8)?;
            match u64::from_be_bytes(v.try_into().expect("8 bytes")) {
                0 => Value::Boolean(false),
                1 => Value::Boolean(true),
                x => return err(start, format!("a Boolean is 0 or 1, not {x}")),
            }
        }
        ItemType::TextString => match std::str::from_utf8(v) {
            Ok(s) => Value::TextString(s.to_string()),
            Err(e) => return err(start + e.valid_up_to(), "a Text String is not UTF-8"),
        },
        ItemType::ByteString => Value::ByteString(Bytes::new(v.to_vec())),
        ItemType::DateTime => {
            fixed(8)?;
            Value::DateTime(i64::from_be_bytes(v.try_into().expect("8 bytes")))
        }
        ItemType::Interval => {
            fixed(4)?;
            Value::Interval(u32::from_be_bytes(v.try_into().expect("4 bytes")))
        }
        ItemType::DateTimeExtended => {
            fixed(8)?;
            Value::DateTimeExtended(i64::from_be_bytes(v.try_into().expect("8 bytes")))
        }
    };
    Ok((Item { tag, value }, end))
}

/// Encodes an item (and its children). The buffer is wiped when dropped, since a response
/// may carry key material.
pub fn encode(item: &Item) -> Bytes {
    let mut out = Bytes::new(Vec::with_capacity(256));
    encode_into(item, &mut out);
    out
}

fn encode_into(item: &Item, out: &mut Vec<u8>) {
    let t = item.tag.to_be_bytes();
    out.extend_from_slice(&t[1..4]);
    out.push(item.value.item_type() as u8);
    let len_at = out.len();
    out.extend_from_slice(&[0; 4]);
    let start = out.len();
    match &item.value {
        Value::Structure(items) => {
            for i in items {
                encode_into(i, out);
            }
        }
        Value::Integer(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::LongInteger(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::BigInteger(b) => {
            // Sign-extend to a multiple of 8 bytes.
            let fill = if b.first().is_some_and(|x| x & 0x80 != 0) {
                0xFF
            } else {
                0
            };
            let n = padded(b.len().max(1));
            out.extend(std::iter::repeat_n(fill, n - b.len()));
            out.extend_from_slice(b);
        }
        Value::Enumeration(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::Boolean(x) => out.extend_from_slice(&(*x as u64).to_be_bytes()),
        Value::TextString(s) => out.extend_from_slice(s.as_bytes()),
        Value::ByteString(b) => out.extend_from_slice(b),
        Value::DateTime(x) | Value::DateTimeExtended(x) => out.extend_from_slice(&x.to_be_bytes()),
        Value::Interval(x) => out.extend_from_slice(&x.to_be_bytes()),
    }
    let len = (out.len() - start) as u32;
    out[len_at..len_at + 4].copy_from_slice(&len.to_be_bytes());
    let pad = padded(len as usize) - len as usize;
    out.extend(std::iter::repeat_n(0u8, pad));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '|')
            .collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// The encoding examples of KMIP 1.4 §9.1.2, both ways.
    #[test]
    fn spec_examples() {
        let t = 0x420020;
        let cases = [
            (Value::Integer(8), "42 00 20 | 02 | 00 00 00 04 | 00 00 00 08 00 00 00 00"),
            (
                Value::LongInteger(123456789000000000),
                "42 00 20 | 03 | 00 00 00 08 | 01 B6 9B 4B A5 74 92 00",
            ),
            (
                Value::BigInteger(Bytes::new(hex("03 FD 35 EB 6B C2 DF 46 18 08 00 00"))),
                "42 00 20 | 04 | 00 00 00 10 | 00 00 00 00 03 FD 35 EB 6B C2 DF 46 18 08 00 00",
            ),
            (Value::Enumeration(255), "42 00 20 | 05 | 00 00 00 04 | 00 00 00 FF 00 00 00 00"),
            (Value::Boolean(true), "42 00 20 | 06 | 00 00 00 08 | 00 00 00 00 00 00 00 01"),
            (
                Value::TextString("Hello World".into()),
                "42 00 20 | 07 | 00 00 00 0B | 48 65 6C 6C 6F 20 57 6F 72 6C 64 00 00 00 00 00",
            ),
            (
                Value::bytes(vec![1, 2, 3]),
                "42 00 20 | 08 | 00 00 00 03 | 01 02 03 00 00 00 00 00",
            ),
            (
                // Friday, March 14, 2008, 11:56:40 GMT
                Value::DateTime(0x47DA67F8),
                "42 00 20 | 09 | 00 00 00 08 | 00 00 00 00 47 DA 67 F8",
            ),
            (
                // 10 days
                Value::Interval(864000),
                "42 00 20 | 0A | 00 00 00 04 | 00 0D 2F 00 00 00 00 00",
            ),
            (
                Value::Structure(vec![
                    Item::new(0x420004, Value::Enumeration(254)),
                    Item::new(0x420005, Value::Integer(255)),
                ]),
                "42 00 20 | 01 | 00 00 00 20 | 42 00 04 | 05 | 00 00 00 04 | 00 00 00 FE 00 00 00 00 | 42 00 05 | 02 | 00 00 00 04 | 00 00 00 FF 00 00 00 00",
            ),
        ];
        for (v, bytes) in cases {
            let item = Item::new(t, v);
            let b = hex(bytes);
            assert_eq!(*encode(&item), b, "{item:?}");
            let mut back = decode(&b, &Limits::default()).unwrap();
            if let Value::BigInteger(x) = &mut back.value {
                // Decoding keeps the sign extension.
                assert_eq!(x.len(), 16);
                *x = Bytes::new(x[4..].to_vec());
            }
            assert_eq!(back, item);
        }
    }

    #[test]
    fn strict_rules() {
        let l = Limits::default();
        let bad = [
            ("42 00 20 02 00 00 00 08 00 00 00 00 00 00 00 08", "not 8"),
            ("42 00 20 02 00 00 00 04 00 00 00 08 00 00 00 01", "padding"),
            ("42 00 20 06 00 00 00 08 00 00 00 00 00 00 00 02", "Boolean"),
            ("42 00 20 07 00 00 00 02 FF FE 00 00 00 00 00 00", "UTF-8"),
            ("42 00 20 0C 00 00 00 00", "unknown item type"),
            ("43 00 20 02 00 00 00 04 00 00 00 08 00 00 00 00", "neither"),
            (
                "42 00 20 08 00 00 00 09 00 00 00 00 00 00 00 00",
                "runs past",
            ),
            ("42 00 20 02 00 00", "truncated"),
            (
                "42 00 20 04 00 00 00 04 00 00 00 01 00 00 00 00",
                "multiple of 8",
            ),
            // A structure whose length cuts its child.
            (
                "42 00 20 01 00 00 00 08 42 00 04 05 00 00 00 04 00 00 00 FE 00 00 00 00",
                "runs past",
            ),
        ];
        for (h, want) in bad {
            let e = decode(&hex(h), &l).unwrap_err();
            assert!(e.to_string().contains(want), "{h}: {e}");
        }
        // Trailing bytes, a message over the limit, nesting over the limit.
        let mut b = encode(&Item::new(0x420020, Value::Integer(1)));
        b.extend_from_slice(&[0; 8]);
        assert!(decode(&b, &l).unwrap_err().to_string().contains("follow"));
        let small = Limits {
            max_message: 15,
            max_depth: 32,
        };
        assert!(decode(&encode(&Item::new(0x420020, Value::Integer(1))), &small).is_err());
        let mut deep = Item::new(0x420020, Value::Integer(1));
        for _ in 0..40 {
            deep = Item::new(0x420020, Value::Structure(vec![deep]));
        }
        assert!(decode(&encode(&deep), &l)
            .unwrap_err()
            .to_string()
            .contains("nesting"));
        let head: [u8; 8] = hex("42 00 78 01 7F FF FF FF").try_into().unwrap();
        assert!(item_size(&head, &l).is_err());
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            any::<i32>().prop_map(Value::Integer),
            any::<i64>().prop_map(Value::LongInteger),
            proptest::collection::vec(any::<u8>(), 1..4)
                .prop_map(|v| Value::BigInteger(Bytes::new(
                    [vec![0u8; 8 - v.len() % 8], v].concat()
                )))
                .prop_filter(
                    "canonical",
                    |v| matches!(v, Value::BigInteger(b) if b.len() % 8 == 0)
                ),
            any::<u32>().prop_map(Value::Enumeration),
            any::<bool>().prop_map(Value::Boolean),
            ".{0,20}".prop_map(Value::TextString),
            proptest::collection::vec(any::<u8>(), 0..40).prop_map(Value::bytes),
            any::<i64>().prop_map(Value::DateTime),
            any::<u32>().prop_map(Value::Interval),
            any::<i64>().prop_map(Value::DateTimeExtended),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            proptest::collection::vec(
                (0x420001u32..0x420100, inner).prop_map(|(t, v)| Item::new(t, v)),
                0..6,
            )
            .prop_map(Value::Structure)
        })
    }

    proptest! {
        #[test]
        fn round_trip(tag in 0x420001u32..0x42FFFF, v in value()) {
            let item = Item::new(tag, v);
            let b = encode(&item);
            prop_assert_eq!(b.len() % 8, 0);
            prop_assert_eq!(decode(&b, &Limits::default()).unwrap(), item);
        }

        #[test]
        fn no_input_panics(b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode(&b, &Limits::default());
        }

        #[test]
        fn every_truncation_is_refused(tag in 0x420001u32..0x42FFFF, v in value(), cut in 0usize..1000) {
            let b = encode(&Item::new(tag, v));
            let cut = cut % b.len();
            prop_assert!(decode(&b[..cut], &Limits::default()).is_err());
        }
    }
}
