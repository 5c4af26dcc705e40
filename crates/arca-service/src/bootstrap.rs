//! First start and every start after: the root of trust, the default tenant and its admin.

use std::path::Path;
use std::sync::Arc;

use arca_core::access::{Effect, Role, Statement, TenantSettings};
use arca_core::model::{Principal, Tenant};
use arca_core::{Error, Result};
use arca_crypto::DevUnsealFile;

use crate::{Actor, Door, IssuedToken, RequestMeta, Service};

/// The request meta of what the server does by itself at first start.
pub(crate) fn first_start_meta() -> RequestMeta {
    RequestMeta::new(
        format!("first-start-{}", uuid::Uuid::now_v7()),
        "local",
        Door::System,
    )
}

/// The store's name for the sealed root key.
pub(crate) const SEALED_ROOT: &str = "root.sealed.dev";
/// The name of the tenant created on first start.
pub const DEFAULT_TENANT: &str = "default";
/// The name of the admin principal created on first start.
pub const ADMIN_PRINCIPAL: &str = "admin";

/// What a first start created and must show once.
#[derive(Debug)]
pub struct FirstStart {
    /// The default tenant, its admin and the admin's token.
    pub admin: Option<(Tenant, Principal, IssuedToken)>,
    /// The first system operator (tenants, server) and its token.
    pub operator: Option<(Principal, IssuedToken)>,
}

impl Service {
    /// Dev mode: unseals with the unseal-key file in `data_dir`, creating the root key and
    /// the file on first start. Refuses to start if the store has a sealed root but the file
    /// is missing or wrong (it never replaces a root key).
    pub async fn unseal_dev(&self, data_dir: &Path) -> Result<()> {
        let file = DevUnsealFile::in_dir(data_dir);
        let root = match self.store.get_meta(SEALED_ROOT).await? {
            Some(sealed) => file.open(&sealed)?,
            None => {
                if file.path.exists() {
                    return Err(Error::Unavailable {
                        message: format!(
                            "{} exists but the store has no sealed root key; refusing to overwrite it",
                            file.path.display()
                        ),
                    });
                }
                let (root, sealed) = file.create()?;
                if !self.store.put_meta_if_absent(SEALED_ROOT, &sealed).await? {
                    return Err(Error::conflict(
                        "another process created the root key at the same time",
                    ));
                }
                let mut d = serde_json::Map::new();
                d.insert("custody".into(), "dev".into());
                self.record_server_event("InitRootKey", d).await;
                root
            }
        };
        tracing::warn!(
            "DEV MODE: the root key is sealed by the unseal-key file {}; anyone who can read it and the store can read every key. Use Shamir custody or an HSM in production.",
            file.path.display()
        );
        self.unseal_with(Arc::new(root));
        Ok(())
    }

    /// First start: creates the system tenant with its operator, and the default tenant
    /// with its admin, each with a first API token, unless they exist. Returns what was
    /// created, so the caller can show the tokens once.
    ///
    /// The default tenant is made for a developer's laptop: it allows combined roles, its
    /// admin holds tenant-admin, crypto-user and auditor, and its default key policy grants
    /// crypto-users the use of new keys. Tenants created later start strict (one role per
    /// principal, nobody uses a key until its policy says so).
    pub async fn ensure_default_tenant(&self) -> Result<Option<FirstStart>> {
        let operator = self.ensure_system_tenant().await?;
        self.migrate_bindings().await?;
        if self
            .store
            .find_tenant_by_name(DEFAULT_TENANT)
            .await?
            .is_some()
        {
            // An older data directory: only the system tenant was missing.
            return Ok(operator.map(|operator| FirstStart {
                admin: None,
                operator: Some(operator),
            }));
        }
        let settings = TenantSettings {
            allow_multiple_roles: true,
            default_key_policy: vec![Statement {
                sid: Some("crypto-users-use-new-keys".into()),
                effect: Effect::Allow,
                principals: vec!["role:crypto-user".into()],
                actions: vec!["*".into()],
                conditions: Default::default(),
                grant: None,
            }],
            ..Default::default()
        };
        let meta = first_start_meta();
        let by = Actor::Server(&meta);
        let tenant = self
            .create_tenant_record(DEFAULT_TENANT, settings, false, &by)
            .await?;
        let admin = self
            .create_principal_record(
                tenant.id,
                ADMIN_PRINCIPAL,
                vec![Role::TenantAdmin, Role::CryptoUser, Role::Auditor],
                &by,
            )
            .await?;
        let token = self.issue_token(&admin, "bootstrap", None, &by).await?;
        tracing::info!(tenant = %tenant.id, principal = %admin.id, "created default tenant and admin principal");
        Ok(Some(FirstStart {
            admin: Some((tenant, admin, token)),
            operator,
        }))
    }
}
