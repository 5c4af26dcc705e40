//! First start and every start after: the root of trust, the default tenant and its admin.

use std::path::Path;
use std::sync::Arc;

use arca_core::model::{Principal, Tenant};
use arca_core::{Error, Result};
use arca_crypto::DevUnsealFile;
use uuid::Uuid;

use crate::{IssuedToken, Service};

/// The store's name for the sealed root key.
const SEALED_ROOT: &str = "root.sealed.dev";
/// The name of the tenant created on first start.
pub const DEFAULT_TENANT: &str = "default";
/// The name of the admin principal created on first start.
pub const ADMIN_PRINCIPAL: &str = "admin";

/// What a first start created and must show once.
#[derive(Debug)]
pub struct FirstStart {
    pub tenant: Tenant,
    pub admin: Principal,
    pub token: IssuedToken,
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

    /// Creates the default tenant and its admin principal with a first API token, unless
    /// they exist. Returns what was created, so the caller can show the token once.
    pub async fn ensure_default_tenant(&self) -> Result<Option<FirstStart>> {
        if self
            .store
            .find_tenant_by_name(DEFAULT_TENANT)
            .await?
            .is_some()
        {
            return Ok(None);
        }
        let tenant = self.create_tenant_record(DEFAULT_TENANT).await?;
        let admin = Principal {
            id: Uuid::now_v7(),
            tenant_id: tenant.id,
            name: ADMIN_PRINCIPAL.to_string(),
            roles: vec!["admin".to_string()],
            created_at: self.now(),
        };
        self.store.create_principal(&admin).await?;
        let token = self.issue_token(&admin, "bootstrap", None).await?;
        tracing::info!(tenant = %tenant.id, principal = %admin.id, "created default tenant and admin principal");
        Ok(Some(FirstStart {
            tenant,
            admin,
            token,
        }))
    }

    /// Creates a tenant with a fresh KEK wrapped by the root of trust.
    pub async fn create_tenant_record(&self, name: &str) -> Result<Tenant> {
        let root = self.root()?;
        let kek = self.crypto.random(32)?;
        let wrapped = root.wrap(&kek)?;
        let tenant = Tenant {
            id: Uuid::now_v7(),
            name: name.to_string(),
            created_at: self.now(),
            disabled: false,
        };
        self.store.create_tenant(&tenant, &wrapped).await?;
        Ok(tenant)
    }

    /// Creates a principal in a tenant (identity management proper comes with roles).
    pub async fn create_principal_record(
        &self,
        tenant: Uuid,
        name: &str,
        roles: Vec<String>,
    ) -> Result<Principal> {
        let p = Principal {
            id: Uuid::now_v7(),
            tenant_id: tenant,
            name: name.to_string(),
            roles,
            created_at: self.now(),
        };
        self.store.create_principal(&p).await?;
        Ok(p)
    }
}
