//! Usage limits (KMIP's Usage Limits): the protection a key may still apply, spent before
//! each protecting use.
//!
//! Every protecting use (an encryption in any shape, a signature, a MAC, a wrap, an
//! encapsulation) gets its version through [`Service::ready_to_protect`], which spends the
//! use's cost from the key's budget first. The budget is written to the store (with the
//! key's revision checked, so concurrent uses on several nodes never spend the same units
//! twice) before the material is touched: a crash after the write loses units, never gives
//! them back. A key without a limit costs nothing: no write, no read.

use arca_core::lifecycle::Use;
use arca_core::{Error, Result};

use crate::cache::KeyEntry;
use crate::crypto_ops::Ready;
use crate::{Note, Service};

impl Service {
    /// A version ready to protect `bytes` bytes: the lifecycle checked for
    /// [`Use::Protect`] ([`Service::ready`]), then the key's usage limit spent. The one way
    /// a protecting use gets its version.
    pub(crate) async fn ready_to_protect(
        &self,
        door: arca_core::access::Door,
        e: &KeyEntry,
        bytes: usize,
        op: &str,
        note: &mut Note,
    ) -> Result<Ready> {
        let r = self.ready(door, e, None, Use::Protect, op, note).await?;
        self.spend_usage(e, bytes, op, note).await?;
        Ok(r)
    }

    /// Takes one use of `bytes` bytes from the key's usage limit, if it has one; refuses
    /// (`NotPermitted`, KMIP's Permission Denied) when what is left does not cover it.
    async fn spend_usage(
        &self,
        e: &KeyEntry,
        bytes: usize,
        op: &str,
        note: &mut Note,
    ) -> Result<()> {
        if e.key.usage_limits.is_none() {
            return Ok(());
        }
        let key = self
            .update_key_racing(&e.key, &e.versions, |key| {
                let Some(mut limit) = key.usage_limits else {
                    return Ok(false);
                };
                let cost = limit.cost(bytes);
                if limit.remaining < cost {
                    note.set("usage_limits_remaining", limit.remaining);
                    return Err(Error::NotPermitted {
                        message: format!(
                            "key {} has used up its usage limit: {} of {} {} remain and this {op} needs {cost}",
                            key.id,
                            limit.remaining,
                            limit.total,
                            unit_name(limit.unit),
                        ),
                    });
                }
                limit.remaining -= cost;
                key.usage_limits = Some(limit);
                Ok(true)
            })
            .await?;
        if let Some(l) = key.usage_limits {
            note.set("usage_limits_remaining", l.remaining);
        }
        Ok(())
    }
}

fn unit_name(u: arca_core::model::UsageUnit) -> &'static str {
    match u {
        arca_core::model::UsageUnit::Byte => "bytes",
        arca_core::model::UsageUnit::Object => "uses",
    }
}
