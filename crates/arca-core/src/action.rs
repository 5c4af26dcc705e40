//! Every action any door can perform, and every operation the audit trail records: one
//! closed, typed set.
//!
//! Authorization (the role table and key policies), the approval gate and the audit trail
//! all name an action by this type, never by a string, so that a new action cannot be
//! reachable through one of them and unknown to another: adding a variant forces a decision
//! on its category, and the exhaustive matches in the tests (the access matrix) fail to
//! compile until the new action is covered. Strings appear only at the edges: the names in
//! stored key policies, approval rules and audit records, parsed with [`Action::parse`].

use crate::access::Category;

macro_rules! actions {
    ($( $(#[$doc:meta])* $variant:ident => $category:ident, )*) => {
        /// An action of the service or an operation of the audit trail.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $( $(#[$doc])* $variant, )*
        }

        impl Action {
            /// Every action, in declaration order.
            pub const ALL: &'static [Action] = &[ $( Action::$variant, )* ];

            /// The name in key policies, approval rules and the audit trail (AWS's where AWS
            /// has the operation).
            pub const fn name(self) -> &'static str {
                match self {
                    $( Action::$variant => stringify!($variant), )*
                }
            }

            /// The family of the action: what roles are granted. [`Category::Recorded`] is an
            /// operation the trail records but no caller can be granted (authentication,
            /// things the server does by itself, refusals made before any operation).
            pub const fn category(self) -> Category {
                match self {
                    $( Action::$variant => Category::$category, )*
                }
            }
        }
    };
}

actions! {
    // key use
    Encrypt => KeyUse,
    Decrypt => KeyUse,
    ReEncryptFrom => KeyUse,
    ReEncryptTo => KeyUse,
    /// A re-encryption as a whole (authorised as ReEncryptFrom on the source key and
    /// ReEncryptTo on the destination).
    ReEncrypt => Recorded,
    GenerateDataKey => KeyUse,
    GenerateDataKeyWithoutPlaintext => KeyUse,
    GenerateDataKeyPair => KeyUse,
    GenerateDataKeyPairWithoutPlaintext => KeyUse,
    Sign => KeyUse,
    Verify => KeyUse,
    GenerateMac => KeyUse,
    VerifyMac => KeyUse,
    Encapsulate => KeyUse,
    Decapsulate => KeyUse,
    GetPublicKey => KeyUse,
    /// KMIP Obtain Lease: leave for a client to go on using an object it holds (granted
    /// like a use of the key, so a key policy that keeps a principal from using the key
    /// keeps it from the lease too).
    ObtainLease => KeyUse,
    ExportKey => KeyUse,
    GenerateRandom => Random,
    /// A digest of data the caller sends (KMIP's Hash): keyless, like random bytes.
    Hash => Random,
    // key metadata
    DescribeKey => KeyRead,
    ListKeys => KeyRead,
    GetKeyHistory => KeyRead,
    ListAliases => KeyRead,
    GetKeyPolicy => KeyRead,
    ListKeyPolicyVersions => KeyRead,
    ListGrants => KeyRead,
    // key management
    CreateKey => KeyManage,
    UpdateKey => KeyManage,
    DisableKeyProtection => KeyManage,
    CreateAlias => KeyManage,
    UpdateAlias => KeyManage,
    DeleteAlias => KeyManage,
    RotateKey => KeyManage,
    ActivateKey => KeyManage,
    SuspendKey => KeyManage,
    ResumeKey => KeyManage,
    DeactivateKey => KeyManage,
    ReportKeyCompromise => KeyManage,
    ArchiveKey => KeyManage,
    RecoverKey => KeyManage,
    ScheduleKeyDestruction => KeyManage,
    CancelKeyDestruction => KeyManage,
    PutKeyPolicy => KeyManage,
    CreateGrant => KeyManage,
    RevokeGrant => KeyManage,
    RetireGrant => KeyManage,
    GetParametersForImport => KeyManage,
    ImportKeyMaterial => KeyManage,
    DeleteImportedKeyMaterial => KeyManage,
    /// A lifecycle request whose action could not be read (a refused request body).
    Lifecycle => Recorded,
    // identity
    CreatePrincipal => Identity,
    ListPrincipals => Identity,
    DescribePrincipal => Identity,
    UpdatePrincipal => Identity,
    CreateApiToken => Identity,
    ListApiTokens => Identity,
    RevokeApiToken => Identity,
    /// An AWS access key pair (authorised as CreateApiToken or CreateOwnCredential).
    CreateAwsCredential => Identity,
    /// Authorised as ListApiTokens (or one's own).
    ListAwsCredentials => Identity,
    /// Authorised as RevokeApiToken (or one's own).
    RevokeAwsCredential => Identity,
    CreateBinding => Identity,
    ListBindings => Identity,
    DeleteBinding => Identity,
    GetTenantSettings => Identity,
    UpdateTenantSettings => Identity,
    // audit and approvals
    ListAudit => AuditRead,
    ExportAudit => AuditRead,
    AuditUsageReport => AuditRead,
    AuditUsageSeries => AuditRead,
    CheckpointAudit => AuditRead,
    VerifyAudit => AuditRead,
    GetDestructionReceipt => AuditRead,
    /// Seals the trail up to a signed checkpoint and writes that segment to a file of the
    /// archive directory (also done by the retention task).
    ArchiveAudit => AuditRead,
    /// Lists the archived segments of the trail.
    ListAuditSegments => AuditRead,
    ListApprovals => ApprovalRead,
    DescribeApproval => ApprovalRead,
    Approve => ApprovalVote,
    Deny => ApprovalVote,
    /// A gated action became an approval request.
    RequestApproval => Recorded,
    // system
    CreateTenant => System,
    ListTenants => System,
    DescribeTenant => System,
    DisableTenant => System,
    EnableTenant => System,
    DeleteTenant => System,
    ReadMetrics => System,
    Backup => System,
    Seal => System,
    StartRootRekey => System,
    CancelRootRekey => System,
    AssignTrustAnchor => System,
    ListTrustAnchors => System,
    WithdrawTrustAnchor => System,
    /// Deletes archived segments of the trail from the store (also done by the retention
    /// task): the store then starts after them.
    PruneAudit => System,
    // every principal, about itself
    WhoAmI => SelfService,
    /// KMIP Query: which operations and objects the server offers (also XKS
    /// GetHealthStatus, AWS DescribeCustomKeyStores and Google's KACLS `status`, the same
    /// kind of question).
    QueryServer => SelfService,
    /// KMIP Discover Versions: which protocol versions the server speaks.
    DiscoverVersions => SelfService,
    /// KMIP Log: a client's message for the server's records.
    LogMessage => SelfService,
    /// KMIP Interop: the conformance harness's bracket around a test case.
    Interop => SelfService,
    CreateSession => SelfService,
    RefreshSession => SelfService,
    Logout => SelfService,
    ExecuteApproval => SelfService,
    CancelApproval => SelfService,
    /// An API token or access key for oneself, within the life of the credential in use.
    CreateOwnCredential => SelfService,
    // recorded only: custody, the server's own doings, authentication, door refusals
    /// A custodian's share at unseal (the share is the credential).
    Unseal => Recorded,
    /// A custodian's share for a rekey.
    SubmitRootRekeyShare => Recorded,
    /// A rekey's completion: the root key shared anew.
    ReshareRootKey => Recorded,
    /// A rekey's completion: a new root key.
    RotateRootKey => Recorded,
    InitRootKey => Recorded,
    RestoreBackup => Recorded,
    StartServer => Recorded,
    StopServer => Recorded,
    /// The trail takes events again after the store was unreachable; its detail says how
    /// many events of the outage were not stored (`events_not_stored`).
    ResumeAudit => Recorded,
    /// A credential was presented (recorded when refused).
    Authenticate => Recorded,
    /// A session ended by the server (a spent refresh token came back).
    RevokeSession => Recorded,
    /// The lifecycle task's own transitions (activation and deactivation dates, due
    /// destructions, rotations).
    LifecycleTask => Recorded,
    /// A binding of an older data directory moved to its tenant-scoped form at start.
    MigrateBinding => Recorded,
    /// The server is about to sign an audit checkpoint (see
    /// [`crate::audit::CHECKPOINT_OPERATION`]).
    SignAuditCheckpoint => Recorded,
    /// A REST request refused before any operation (routing, framing, body limit).
    HttpRequest => Recorded,
    /// A KMIP request refused before any operation (decoding, version, unknown operation).
    KmipRequest => Recorded,
    /// An AWS-door request refused before any operation.
    AwsRequest => Recorded,
    /// An XKS request refused before any operation.
    XksRequest => Recorded,
}

impl Action {
    /// The action of a name, exactly as [`Action::name`] writes it.
    pub fn parse(name: &str) -> Option<Action> {
        Action::ALL.iter().copied().find(|a| a.name() == name)
    }

    /// Whether a tenant's quorum rule may name this action: what hands out a key, changes
    /// who may use one, or changes who is who.
    pub const fn approvable(self) -> bool {
        use Action::*;
        matches!(
            self,
            ScheduleKeyDestruction
                | ExportKey
                | PutKeyPolicy
                | DisableKeyProtection
                | DeactivateKey
                | ReportKeyCompromise
                | SuspendKey
                | DeleteTenant
                | DisableTenant
                | UpdateTenantSettings
                // Identity changes: without these under quorum, whoever manages identities
                // could make puppet approvers and approve their own requests.
                | CreatePrincipal
                | UpdatePrincipal
                | CreateApiToken
                | CreateBinding
                | AssignTrustAnchor
                | WithdrawTrustAnchor
                // Grants are policy changes: a rule on PutKeyPolicy covers them too.
                | CreateGrant
                | RevokeGrant
                | RetireGrant
                // Deletes audit records from the store (they stay in the archive files).
                | PruneAudit
        )
    }

    /// The kind of state an action changes, when that differs from the action itself: a
    /// rule that names the kind covers every action of it, whatever API shape reaches the
    /// state (AWS's CreateGrant writes a key policy version exactly as PutKeyPolicy does, so
    /// a quorum on PutKeyPolicy that CreateGrant escaped would be no quorum).
    pub const fn approval_kind(self) -> Option<Action> {
        match self {
            Action::CreateGrant | Action::RevokeGrant | Action::RetireGrant => {
                Some(Action::PutKeyPolicy)
            }
            _ => None,
        }
    }
}

impl std::fmt::Display for Action {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_parse_back() {
        let mut names: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n, "a name is used twice");
        for a in Action::ALL {
            assert_eq!(Action::parse(a.name()), Some(*a));
        }
        assert_eq!(Action::parse("encrypt"), None);
    }

    #[test]
    fn only_grantable_actions_are_approvable() {
        for a in Action::ALL {
            if a.approvable() {
                assert_ne!(a.category(), Category::Recorded, "{a}");
            }
            if let Some(k) = a.approval_kind() {
                assert!(k.approvable() && a.approvable(), "{a}");
            }
        }
    }
}
