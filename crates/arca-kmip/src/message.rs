//! Request and response messages (KMIP 1.4 §7, KMIP 2.1 §8): headers, batch items, result
//! status and reason, and small accessors for reading payloads.
//!
//! Payloads stay [`Item`] trees: each operation reads the fields it knows with the accessors
//! here and says which field is wrong when one is. A parse failure is a [`Failure`] with the
//! result reason the specification names (usually Invalid Message or Invalid Field), so the
//! door can answer it in KMIP rather than drop the connection.

use crate::enums::{result_reason, result_status};
use crate::tags;
use crate::ttlv::{Bytes, Item, Value};

/// A protocol version (major, minor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ProtocolVersion {
    pub major: i32,
    pub minor: i32,
}

impl ProtocolVersion {
    pub const fn new(major: i32, minor: i32) -> Self {
        ProtocolVersion { major, minor }
    }

    /// True for KMIP 2.0 and later, whose payloads carry `Attributes` structures instead of
    /// 1.x `TemplateAttribute`s and `Attribute` name/value pairs.
    pub fn is_v2(self) -> bool {
        self.major >= 2
    }

    pub fn to_item(self) -> Item {
        Item::new(
            tags::PROTOCOL_VERSION,
            Value::Structure(vec![
                Item::new(tags::PROTOCOL_VERSION_MAJOR, Value::Integer(self.major)),
                Item::new(tags::PROTOCOL_VERSION_MINOR, Value::Integer(self.minor)),
            ]),
        )
    }

    pub fn from_item(item: &Item) -> Result<Self, Failure> {
        Ok(ProtocolVersion {
            major: item.req(tags::PROTOCOL_VERSION_MAJOR)?.integer()?,
            minor: item.req(tags::PROTOCOL_VERSION_MINOR)?.integer()?,
        })
    }
}

impl std::fmt::Display for ProtocolVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// Why a message, or one batch item, failed: a Result Reason and a Result Message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// A [`result_reason`] value.
    pub reason: u32,
    pub message: String,
}

impl Failure {
    pub fn new(reason: u32, message: impl Into<String>) -> Self {
        Failure {
            reason,
            message: message.into(),
        }
    }

    /// Invalid Message: the message or payload does not have the specification's shape.
    pub fn invalid_message(message: impl Into<String>) -> Self {
        Failure::new(result_reason::INVALID_MESSAGE, message)
    }

    /// Invalid Field: a field is present but its value is not acceptable.
    pub fn invalid_field(message: impl Into<String>) -> Self {
        Failure::new(result_reason::INVALID_FIELD, message)
    }

    /// Operation Not Supported.
    pub fn not_supported(message: impl Into<String>) -> Self {
        Failure::new(result_reason::OPERATION_NOT_SUPPORTED, message)
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = crate::enum_name(result_reason::ALL, self.reason).unwrap_or("?");
        write!(f, "{name}: {}", self.message)
    }
}

fn label(tag: u32) -> String {
    crate::tag_label(tag)
}

/// Accessors that read payload fields and name the field when it is missing or mistyped.
impl Item {
    /// The first child with this tag, if this is a structure that has one.
    pub fn child(&self, tag: u32) -> Option<&Item> {
        match &self.value {
            Value::Structure(items) => items.iter().find(|i| i.tag == tag),
            _ => None,
        }
    }

    /// Every child with this tag, in order.
    pub fn children_with(&self, tag: u32) -> impl Iterator<Item = &Item> {
        self.items().iter().filter(move |i| i.tag == tag)
    }

    /// The children of a structure (empty for other values).
    pub fn items(&self) -> &[Item] {
        match &self.value {
            Value::Structure(items) => items,
            _ => &[],
        }
    }

    /// The child with this tag, or Invalid Message naming it.
    pub fn req(&self, tag: u32) -> Result<&Item, Failure> {
        self.child(tag).ok_or_else(|| {
            Failure::invalid_message(format!(
                "{} is missing from {}",
                label(tag),
                label(self.tag)
            ))
        })
    }

    fn wrong(&self, want: &str) -> Failure {
        Failure::invalid_message(format!("{} must be {want}", label(self.tag)))
    }

    pub fn integer(&self) -> Result<i32, Failure> {
        match self.value {
            Value::Integer(v) => Ok(v),
            _ => Err(self.wrong("an Integer")),
        }
    }

    pub fn long_integer(&self) -> Result<i64, Failure> {
        match self.value {
            Value::LongInteger(v) => Ok(v),
            _ => Err(self.wrong("a Long Integer")),
        }
    }

    pub fn enumeration(&self) -> Result<u32, Failure> {
        match self.value {
            Value::Enumeration(v) => Ok(v),
            _ => Err(self.wrong("an Enumeration")),
        }
    }

    pub fn boolean(&self) -> Result<bool, Failure> {
        match self.value {
            Value::Boolean(v) => Ok(v),
            _ => Err(self.wrong("a Boolean")),
        }
    }

    pub fn text(&self) -> Result<&str, Failure> {
        match &self.value {
            Value::TextString(v) => Ok(v),
            _ => Err(self.wrong("a Text String")),
        }
    }

    pub fn byte_string(&self) -> Result<&Bytes, Failure> {
        match &self.value {
            Value::ByteString(v) => Ok(v),
            _ => Err(self.wrong("a Byte String")),
        }
    }

    pub fn big_integer(&self) -> Result<&Bytes, Failure> {
        match &self.value {
            Value::BigInteger(v) => Ok(v),
            _ => Err(self.wrong("a Big Integer")),
        }
    }

    /// A Date-Time (or Date-Time Extended, truncated to seconds), in seconds since the epoch.
    pub fn date_time(&self) -> Result<i64, Failure> {
        match self.value {
            Value::DateTime(v) => Ok(v),
            Value::DateTimeExtended(v) => Ok(v.div_euclid(1_000_000)),
            _ => Err(self.wrong("a Date-Time")),
        }
    }

    pub fn interval(&self) -> Result<u32, Failure> {
        match self.value {
            Value::Interval(v) => Ok(v),
            _ => Err(self.wrong("an Interval")),
        }
    }

    /// A structure item.
    pub fn structure(tag: u32, items: Vec<Item>) -> Item {
        Item::new(tag, Value::Structure(items))
    }

    pub fn text_item(tag: u32, s: impl Into<String>) -> Item {
        Item::new(tag, Value::TextString(s.into()))
    }

    pub fn enum_item(tag: u32, v: u32) -> Item {
        Item::new(tag, Value::Enumeration(v))
    }

    pub fn int_item(tag: u32, v: i32) -> Item {
        Item::new(tag, Value::Integer(v))
    }
}

/// A request's header, as far as the server acts on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHeader {
    pub version: ProtocolVersion,
    /// The largest response the client accepts, in bytes.
    pub maximum_response_size: Option<i32>,
    /// Client Correlation Value (KMIP 1.4), echoed in the response.
    pub client_correlation: Option<String>,
    /// Batch Error Continuation Option: [`crate::enums::batch_error_continuation_option`].
    pub batch_error_continuation: Option<u32>,
    /// Batch Order Option.
    pub batch_order: Option<bool>,
    pub batch_count: i32,
}

/// One operation of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestBatchItem {
    /// An [`crate::enums::operation`] value.
    pub operation: u32,
    /// Unique Batch Item ID, required when a batch has more than one item.
    pub id: Option<Bytes>,
    /// The Request Payload structure (empty if absent).
    pub payload: Item,
}

/// A request message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub header: RequestHeader,
    pub items: Vec<RequestBatchItem>,
}

/// What the server could read of a request that it must refuse as a whole: the version to
/// answer in, and the failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    pub version: ProtocolVersion,
    pub failure: Failure,
}

/// The highest version this crate speaks, used to answer a message whose header cannot be
/// read.
pub const LATEST: ProtocolVersion = ProtocolVersion::new(2, 1);

/// Reads a decoded Request Message.
pub fn parse_request(item: &Item) -> Result<Request, RequestError> {
    let fail = |version, failure| RequestError { version, failure };
    if item.tag != tags::REQUEST_MESSAGE {
        return Err(fail(
            LATEST,
            Failure::invalid_message(format!("expected RequestMessage, got {}", label(item.tag))),
        ));
    }
    let header = item
        .req(tags::REQUEST_HEADER)
        .map_err(|f| fail(LATEST, f))?;
    let version = header
        .req(tags::PROTOCOL_VERSION)
        .and_then(ProtocolVersion::from_item)
        .map_err(|f| fail(LATEST, f))?;
    let read = || -> Result<Request, Failure> {
        let opt_int = |tag| header.child(tag).map(Item::integer).transpose();
        let h = RequestHeader {
            version,
            maximum_response_size: opt_int(tags::MAXIMUM_RESPONSE_SIZE)?,
            client_correlation: header
                .child(tags::CLIENT_CORRELATION_VALUE)
                .map(|i| i.text().map(str::to_owned))
                .transpose()?,
            batch_error_continuation: header
                .child(tags::BATCH_ERROR_CONTINUATION_OPTION)
                .map(Item::enumeration)
                .transpose()?,
            batch_order: header
                .child(tags::BATCH_ORDER_OPTION)
                .map(Item::boolean)
                .transpose()?,
            batch_count: header.req(tags::BATCH_COUNT)?.integer()?,
        };
        let mut items = Vec::new();
        for b in item.children_with(tags::BATCH_ITEM) {
            let operation = b.req(tags::OPERATION)?.enumeration()?;
            let id = b
                .child(tags::UNIQUE_BATCH_ITEM_ID)
                .map(|i| i.byte_string().cloned())
                .transpose()?;
            let payload = b
                .child(tags::REQUEST_PAYLOAD)
                .cloned()
                .unwrap_or_else(|| Item::structure(tags::REQUEST_PAYLOAD, vec![]));
            if !matches!(payload.value, Value::Structure(_)) {
                return Err(Failure::invalid_message(
                    "RequestPayload must be a Structure",
                ));
            }
            items.push(RequestBatchItem {
                operation,
                id,
                payload,
            });
        }
        if items.is_empty() {
            return Err(Failure::invalid_message("the request has no BatchItem"));
        }
        if h.batch_count != items.len() as i32 {
            return Err(Failure::invalid_message(format!(
                "BatchCount is {} but the request has {} BatchItems",
                h.batch_count,
                items.len()
            )));
        }
        if items.len() > 1 && items.iter().any(|i| i.id.is_none()) {
            return Err(Failure::invalid_message(
                "every BatchItem of a batch needs a UniqueBatchItemID",
            ));
        }
        Ok(Request { header: h, items })
    };
    read().map_err(|f| fail(version, f))
}

/// The outcome of one batch item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseBatchItem {
    pub operation: Option<u32>,
    pub id: Option<Bytes>,
    pub outcome: Outcome,
}

/// Success with a payload, failure, or undone (a later item of an Undo batch failed; the
/// payload is what the item answered before it was undone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success(Option<Item>),
    Failed(Failure),
    Undone(Option<Item>),
}

/// Builds a Response Message. (The request's Client Correlation Value is for the client's
/// and server's logs; servers do not echo it, as the OASIS test cases show.)
pub fn response(version: ProtocolVersion, now: i64, items: Vec<ResponseBatchItem>) -> Item {
    let header = vec![
        version.to_item(),
        Item::new(tags::TIME_STAMP, Value::DateTime(now)),
    ];
    let mut header = header;
    header.push(Item::int_item(tags::BATCH_COUNT, items.len() as i32));
    let mut body = vec![Item::structure(tags::RESPONSE_HEADER, header)];
    for b in items {
        let mut fields = Vec::new();
        if let Some(op) = b.operation {
            fields.push(Item::enum_item(tags::OPERATION, op));
        }
        if let Some(id) = b.id {
            fields.push(Item::new(tags::UNIQUE_BATCH_ITEM_ID, Value::ByteString(id)));
        }
        match b.outcome {
            Outcome::Success(payload) => {
                fields.push(Item::enum_item(tags::RESULT_STATUS, result_status::SUCCESS));
                if let Some(p) = payload {
                    fields.push(p);
                }
            }
            Outcome::Failed(f) => {
                fields.push(Item::enum_item(
                    tags::RESULT_STATUS,
                    result_status::OPERATION_FAILED,
                ));
                fields.push(Item::enum_item(
                    tags::RESULT_REASON,
                    reason_for_version(f.reason, version),
                ));
                fields.push(Item::text_item(tags::RESULT_MESSAGE, f.message));
            }
            Outcome::Undone(payload) => {
                fields.push(Item::enum_item(
                    tags::RESULT_STATUS,
                    result_status::OPERATION_UNDONE,
                ));
                if let Some(p) = payload {
                    fields.push(p);
                }
            }
        }
        body.push(Item::structure(tags::BATCH_ITEM, fields));
    }
    Item::structure(tags::RESPONSE_MESSAGE, body)
}

/// A Result Reason as a client of `version` knows it: KMIP 2.0 added reasons (Wrong Key
/// Lifecycle State, Object Not Found, ...) that 1.x clients cannot decode, so they get the
/// 1.x reason the 1.4 test cases expect for the same failure.
pub fn reason_for_version(reason: u32, version: ProtocolVersion) -> u32 {
    use crate::enums::result_reason as r;
    if version.is_v2() || reason <= r::OBJECT_ALREADY_EXISTS || reason == r::GENERAL_FAILURE {
        return reason;
    }
    match reason {
        r::WRONG_KEY_LIFECYCLE_STATE
        | r::ATTRIBUTE_READ_ONLY
        | r::READ_ONLY_ATTRIBUTE
        | r::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK => r::PERMISSION_DENIED,
        r::OBJECT_NOT_FOUND
        | r::OBJECT_DESTROYED
        | r::ATTRIBUTE_NOT_FOUND
        | r::ATTRIBUTE_INSTANCE_NOT_FOUND => r::ITEM_NOT_FOUND,
        r::NON_UNIQUE_NAME_ATTRIBUTE
        | r::INVALID_ATTRIBUTE
        | r::INVALID_ATTRIBUTE_VALUE
        | r::ILLEGAL_OBJECT_TYPE
        | r::INVALID_OBJECT_TYPE
        | r::UNSUPPORTED_ATTRIBUTE
        | r::ATTRIBUTE_SINGLE_VALUED => r::INVALID_FIELD,
        r::KEY_WRAP_TYPE_NOT_SUPPORTED
        | r::UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS
        | r::BAD_CRYPTOGRAPHIC_PARAMETERS => r::FEATURE_NOT_SUPPORTED,
        r::UNSUPPORTED_PROTOCOL_VERSION | r::CODEC_ERROR => r::INVALID_MESSAGE,
        _ => r::GENERAL_FAILURE,
    }
}

/// A response to a request that could not be read at all: one failed batch item.
pub fn error_response(now: i64, err: &RequestError) -> Item {
    response(
        err.version,
        now,
        vec![ResponseBatchItem {
            operation: None,
            id: None,
            outcome: Outcome::Failed(err.failure.clone()),
        }],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enums::operation;

    fn request(items: Vec<Item>, count: i32) -> Item {
        let mut body = vec![Item::structure(
            tags::REQUEST_HEADER,
            vec![
                ProtocolVersion::new(1, 4).to_item(),
                Item::int_item(tags::BATCH_COUNT, count),
            ],
        )];
        body.extend(items);
        Item::structure(tags::REQUEST_MESSAGE, body)
    }

    fn batch(op: u32, id: Option<u8>) -> Item {
        let mut f = vec![Item::enum_item(tags::OPERATION, op)];
        if let Some(id) = id {
            f.push(Item::new(
                tags::UNIQUE_BATCH_ITEM_ID,
                Value::bytes(vec![id]),
            ));
        }
        Item::structure(tags::BATCH_ITEM, f)
    }

    #[test]
    fn reads_requests_and_refuses_bad_batches() {
        let r = parse_request(&request(vec![batch(operation::QUERY, None)], 1)).unwrap();
        assert_eq!(r.header.version, ProtocolVersion::new(1, 4));
        assert_eq!(r.items[0].operation, operation::QUERY);
        assert_eq!(r.items[0].payload.items().len(), 0);

        let e = parse_request(&request(vec![batch(operation::QUERY, None)], 2)).unwrap_err();
        assert_eq!(e.version, ProtocolVersion::new(1, 4));
        assert_eq!(e.failure.reason, result_reason::INVALID_MESSAGE);
        assert!(e.failure.message.contains("BatchCount"), "{}", e.failure);

        let two = vec![
            batch(operation::QUERY, Some(1)),
            batch(operation::QUERY, None),
        ];
        let e = parse_request(&request(two, 2)).unwrap_err();
        assert!(e.failure.message.contains("UniqueBatchItemID"));

        let e = parse_request(&Item::int_item(tags::BATCH_COUNT, 1)).unwrap_err();
        assert_eq!(e.version, LATEST);
    }

    #[test]
    fn builds_responses() {
        let r = response(
            ProtocolVersion::new(2, 1),
            7,
            vec![
                ResponseBatchItem {
                    operation: Some(operation::GET),
                    id: None,
                    outcome: Outcome::Failed(Failure::new(result_reason::ITEM_NOT_FOUND, "no")),
                },
                ResponseBatchItem {
                    operation: Some(operation::QUERY),
                    id: None,
                    outcome: Outcome::Success(None),
                },
            ],
        );
        let h = r.req(tags::RESPONSE_HEADER).unwrap();
        assert_eq!(h.req(tags::BATCH_COUNT).unwrap().integer().unwrap(), 2);
        let items: Vec<_> = r.children_with(tags::BATCH_ITEM).collect();
        assert_eq!(
            items[0]
                .req(tags::RESULT_REASON)
                .unwrap()
                .enumeration()
                .unwrap(),
            result_reason::ITEM_NOT_FOUND
        );
        assert_eq!(
            items[1]
                .req(tags::RESULT_STATUS)
                .unwrap()
                .enumeration()
                .unwrap(),
            result_status::SUCCESS
        );
    }
}
