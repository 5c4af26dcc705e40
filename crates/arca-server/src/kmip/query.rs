//! KMIP operations about the server rather than an object: Discover Versions (its
//! answer; the dispatch asks the service first), Query, and RNG Retrieve.

use arca_kmip::enums::{operation as op, query_function};
use arca_kmip::message::ProtocolVersion;
use arca_kmip::{tags, Failure, Item, Value};
use arca_service::api::RandomRequest;

use super::ops::{failure, payload, Ctx, OpResult, OBJECT_TYPES, OPERATIONS, VERSIONS};

impl Ctx<'_> {
    /// Query: the operations (those this client's version defines), object types and
    /// server information Arca reports; other functions are answered with nothing.
    pub(super) async fn query(&self, p: &Item) -> OpResult {
        self.svc
            .query_server(self.caller()?)
            .await
            .map_err(failure)?;
        let mut out = Vec::new();
        for f in p.children_with(tags::QUERY_FUNCTION) {
            match f.enumeration()? {
                query_function::QUERY_OPERATIONS => out.extend(
                    OPERATIONS
                        .iter()
                        .filter(|o| **o <= last_operation(self.version))
                        .map(|o| Item::enum_item(tags::OPERATION, *o)),
                ),
                query_function::QUERY_OBJECTS => out.extend(
                    OBJECT_TYPES
                        .iter()
                        .map(|o| Item::enum_item(tags::OBJECT_TYPE, *o)),
                ),
                query_function::QUERY_SERVER_INFORMATION => {
                    out.push(Item::text_item(tags::VENDOR_IDENTIFICATION, "Arca"));
                    out.push(Item::structure(
                        tags::SERVER_INFORMATION,
                        vec![Item::text_item(
                            tags::SERVER_NAME,
                            format!("Arca KMS {}", env!("CARGO_PKG_VERSION")),
                        )],
                    ));
                }
                // Functions Arca has nothing to say for are answered with nothing.
                _ => {}
            }
        }
        Ok(payload(out))
    }

    /// RNG Retrieve: random bytes from the service (which bounds the length).
    pub(super) async fn rng_retrieve(&mut self, p: &Item) -> OpResult {
        let n = p.req(tags::DATA_LENGTH)?.integer()?;
        if n <= 0 {
            return Err(Failure::invalid_field("DataLength must be positive"));
        }
        let r = self
            .svc
            .generate_random(
                self.caller()?,
                RandomRequest {
                    number_of_bytes: n as u32,
                },
            )
            .await
            .map_err(failure)?;
        Ok(payload(vec![Item::new(
            tags::DATA,
            Value::ByteString(r.random.0.clone()),
        )]))
    }
}

/// The highest Operation value a protocol version defines: a client of that version cannot
/// decode later ones, so Query names only those.
fn last_operation(v: ProtocolVersion) -> u32 {
    match (v.major, v.minor) {
        (1, 0) => op::POLL,
        (1, 1) => op::DISCOVER_VERSIONS,
        (1, 2) | (1, 3) => op::JOIN_SPLIT_KEY,
        (1, _) => op::EXPORT,
        _ => u32::MAX,
    }
}

/// Discover Versions: the versions Arca speaks that the client listed (all of them if it
/// listed none), in Arca's order of preference.
pub(super) fn discover_versions(p: &Item) -> Item {
    let asked: Vec<ProtocolVersion> = p
        .children_with(tags::PROTOCOL_VERSION)
        .filter_map(|i| ProtocolVersion::from_item(i).ok())
        .collect();
    payload(
        VERSIONS
            .iter()
            .filter(|v| asked.is_empty() || asked.contains(v))
            .map(|v| v.to_item())
            .collect(),
    )
}
