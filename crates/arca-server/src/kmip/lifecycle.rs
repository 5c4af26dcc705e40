//! KMIP's lifecycle operations: Activate, Revoke, Destroy, Archive and Recover, each one
//! move of the service's lifecycle (whose rules decide) answered with the id; and Check,
//! whether an object would serve a usage now.

use arca_core::model::DeactivationReason;
use arca_core::Error;
use arca_kmip::enums::{result_reason as reason, revocation_reason_code};
use arca_kmip::{tags, Failure, Item, Value};
use arca_service::LifecycleAction;

use super::attrs::{self, Extras};
use super::ops::{failure, payload, uid_item, Ctx, OpResult};

impl Ctx<'_> {
    /// Activate. A suspended key is Pre-Active to a KMIP client (it serves nothing and can
    /// be made to serve again), so Activate on it resumes it, under the `ResumeKey` rules.
    pub(super) async fn activate(&mut self, p: &Item) -> OpResult {
        let id = self.target(p)?;
        match self
            .svc
            .lifecycle(self.caller()?, &id, None, LifecycleAction::Activate, None)
            .await
        {
            Err(Error::WrongState {
                state: arca_core::model::KeyState::Suspended,
                ..
            }) => self.move_to(id, LifecycleAction::Resume, None).await,
            r => {
                r.map_err(failure)?;
                self.placeholder = Some(id.clone());
                Ok(payload(vec![uid_item(&id)]))
            }
        }
    }

    /// Activate, Destroy, Archive, Recover: one lifecycle move, answered with the id.
    pub(super) async fn simple_move(&mut self, p: &Item, action: LifecycleAction) -> OpResult {
        let id = self.target(p)?;
        self.move_to(id, action, None).await
    }

    /// One lifecycle move of an object, with a reason for its history.
    async fn move_to(
        &mut self,
        id: String,
        action: LifecycleAction,
        reason: Option<String>,
    ) -> OpResult {
        self.svc
            .lifecycle(self.caller()?, &id, None, action, reason)
            .await
            .map_err(failure)?;
        self.placeholder = Some(id.clone());
        Ok(payload(vec![uid_item(&id)]))
    }

    /// Check: would the object serve this usage now? Fails with Incompatible
    /// Cryptographic Usage Mask when the mask asks for more than the object allows.
    pub(super) async fn check(&mut self, p: &Item) -> OpResult {
        let id = self.target(p)?;
        let info = self.describe(&id).await?;
        if let Some(m) = p.child(tags::CRYPTOGRAPHIC_USAGE_MASK) {
            let want = m.integer()? as u32;
            let have = attrs::usage_mask_of(&info, &Extras::of(&info)) as u32;
            if want & !have != 0 {
                return Err(Failure::new(
                    reason::INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK,
                    format!(
                        "the object's usage mask 0x{have:X} does not allow 0x{:X}",
                        want & !have
                    ),
                ));
            }
        }
        self.placeholder = Some(id.clone());
        Ok(payload(vec![uid_item(&id)]))
    }

    /// Revoke: compromise when the reason says so, else deactivation (superseded or
    /// revoked), with the Revocation Message as the reason on record. The Revocation Reason
    /// and, for a compromise, the Compromise Occurrence Date are kept as the object's
    /// attributes, in the same change as the move.
    pub(super) async fn revoke(&mut self, p: &Item) -> OpResult {
        let id = self.target(p)?;
        let rr = p.req(tags::REVOCATION_REASON)?;
        let code = rr.req(tags::REVOCATION_REASON_CODE)?.enumeration()?;
        let message = rr
            .child(tags::REVOCATION_MESSAGE)
            .map(|m| m.text().map(str::to_owned))
            .transpose()?;
        let compromised = matches!(
            code,
            revocation_reason_code::KEY_COMPROMISE | revocation_reason_code::CA_COMPROMISE
        );
        let occurred = match p.child(tags::COMPROMISE_OCCURRENCE_DATE) {
            Some(d) if compromised => Some(d.date_time()?),
            Some(_) => return Err(Failure::invalid_field(
                "CompromiseOccurrenceDate is only for a Key Compromise or CA Compromise revocation",
            )),
            None => None,
        };
        let mut kept = serde_json::json!({"revocation_reason": code});
        if let Some(m) = &message {
            kept["revocation_message"] = m.clone().into();
        }
        if let Some(t) = occurred {
            kept["compromise_occurrence_date"] = t.into();
        }
        let action = match code {
            revocation_reason_code::KEY_COMPROMISE | revocation_reason_code::CA_COMPROMISE => {
                LifecycleAction::ReportCompromise
            }
            revocation_reason_code::SUPERSEDED => {
                LifecycleAction::Deactivate(DeactivationReason::Superseded)
            }
            _ => LifecycleAction::Deactivate(DeactivationReason::Revoked),
        };
        self.svc
            .lifecycle_annotated(
                self.caller()?,
                &id,
                None,
                action,
                message,
                Some(serde_json::json!({ "kmip": kept })),
            )
            .await
            .map_err(failure)?;
        self.placeholder = Some(id.clone());
        Ok(payload(vec![uid_item(&id)]))
    }

    /// Obtain Lease: the service grants the lease (authorised like a use of the object,
    /// refused when the object serves nothing); the answer is the Lease Time and the
    /// object's Last Change Date.
    pub(super) async fn obtain_lease(&mut self, p: &Item) -> OpResult {
        let id = self.target(p)?;
        let (info, secs) = self
            .svc
            .obtain_lease(self.caller()?, &id)
            .await
            .map_err(failure)?;
        self.placeholder = Some(id.clone());
        Ok(payload(vec![
            uid_item(&id),
            Item::new(tags::LEASE_TIME, Value::Interval(secs)),
            Item::new(
                tags::LAST_CHANGE_DATE,
                Value::DateTime(info.updated_at.timestamp()),
            ),
        ]))
    }
}
