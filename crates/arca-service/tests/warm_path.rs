//! The hot path must not touch the database or re-unwrap a key on every request: a store
//! that counts its reads shows that, once a key is warm, encrypt, decrypt, sign and
//! authenticate read nothing (audit records are written in the background, not read).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use arca_core::model::{Key, KeyEvent, KeyVersion, Principal, Tenant};
use arca_core::Result;
use arca_crypto::SoftwareProvider;
use arca_service::api::*;
use arca_service::{Door, RequestMeta, Service, ServiceConfig, SystemClock};
use arca_store::{
    ApiToken, AuditEvent, AuditQuery, Checkpoint, KeyFilter, KeyStore, KeyWrite, Record,
    SqliteStore, StoredEvent, UsageRow,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use uuid::Uuid;
use zeroize::Zeroizing;

/// A real SQLite store that counts every read of keys, material, tenants and tokens.
struct Counting {
    inner: SqliteStore,
    reads: AtomicUsize,
}

impl Counting {
    fn read(&self) {
        self.reads.fetch_add(1, Ordering::SeqCst);
    }
}

#[async_trait]
impl KeyStore for Counting {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }
    async fn get_meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.read();
        self.inner.get_meta(name).await
    }
    async fn put_meta_if_absent(&self, name: &str, value: &[u8]) -> Result<bool> {
        self.inner.put_meta_if_absent(name, value).await
    }
    async fn replace_root_material(
        &self,
        t: &[(Uuid, Vec<u8>)],
        m: &[(String, Vec<u8>)],
        e: (&str, &[u8]),
        a: &[AuditEvent],
    ) -> Result<()> {
        self.inner.replace_root_material(t, m, e, a).await
    }
    async fn tenant_keks(&self) -> Result<Vec<(Uuid, Vec<u8>)>> {
        self.inner.tenant_keks().await
    }
    async fn create_tenant(&self, t: &Tenant, k: &[u8], au: &[AuditEvent]) -> Result<()> {
        self.inner.create_tenant(t, k, au).await
    }
    async fn get_tenant(&self, id: Uuid) -> Result<Option<(Tenant, Vec<u8>)>> {
        self.read();
        self.inner.get_tenant(id).await
    }
    async fn find_tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        self.read();
        self.inner.find_tenant_by_name(name).await
    }
    async fn create_principal(&self, p: &Principal, au: &[AuditEvent]) -> Result<()> {
        self.inner.create_principal(p, au).await
    }
    async fn get_principal(&self, id: Uuid) -> Result<Option<Principal>> {
        self.read();
        self.inner.get_principal(id).await
    }
    async fn update_tenant(&self, t: &Tenant, au: &[AuditEvent]) -> Result<()> {
        self.inner.update_tenant(t, au).await
    }
    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        self.read();
        self.inner.list_tenants().await
    }
    async fn find_principal(&self, t: Uuid, n: &str) -> Result<Option<Principal>> {
        self.read();
        self.inner.find_principal(t, n).await
    }
    async fn update_principal(&self, p: &Principal, au: &[AuditEvent]) -> Result<()> {
        self.inner.update_principal(p, au).await
    }
    async fn list_principals(&self, t: Uuid) -> Result<Vec<Principal>> {
        self.read();
        self.inner.list_principals(t).await
    }
    async fn list_tokens(&self, t: Uuid, p: Option<Uuid>) -> Result<Vec<ApiToken>> {
        self.read();
        self.inner.list_tokens(t, p).await
    }
    async fn revoke_token(
        &self,
        t: Uuid,
        id: &str,
        at: DateTime<Utc>,
        au: &[AuditEvent],
    ) -> Result<bool> {
        self.inner.revoke_token(t, id, at, au).await
    }
    async fn touch_token(&self, id: &str, at: DateTime<Utc>) -> Result<()> {
        self.inner.touch_token(id, at).await
    }
    async fn put_record(&self, r: &Record, e: Option<i64>, au: &[AuditEvent]) -> Result<()> {
        self.inner.put_record(r, e, au).await
    }
    async fn get_record(&self, k: &str, id: &str) -> Result<Option<Record>> {
        self.read();
        self.inner.get_record(k, id).await
    }
    async fn list_records(
        &self,
        k: &str,
        t: Option<Uuid>,
        p: &str,
        a: Option<&str>,
        l: u32,
    ) -> Result<Vec<Record>> {
        self.read();
        self.inner.list_records(k, t, p, a, l).await
    }
    async fn delete_record(&self, k: &str, id: &str, au: &[AuditEvent]) -> Result<()> {
        self.inner.delete_record(k, id, au).await
    }
    async fn create_token(&self, t: &ApiToken, au: &[AuditEvent]) -> Result<()> {
        self.inner.create_token(t, au).await
    }
    async fn get_token(&self, id: &str) -> Result<Option<ApiToken>> {
        self.read();
        self.inner.get_token(id).await
    }
    async fn write_key(&self, w: &KeyWrite) -> Result<()> {
        self.inner.write_key(w).await
    }
    async fn get_key(&self, t: Uuid, id: Uuid) -> Result<Option<Key>> {
        self.read();
        self.inner.get_key(t, id).await
    }
    async fn find_key(&self, t: Uuid, n: &str) -> Result<Option<Key>> {
        self.read();
        self.inner.find_key(t, n).await
    }
    async fn list_keys(&self, t: Uuid, f: &KeyFilter, a: Option<Uuid>, l: u32) -> Result<Vec<Key>> {
        self.read();
        self.inner.list_keys(t, f, a, l).await
    }
    async fn get_versions(&self, k: Uuid) -> Result<Vec<KeyVersion>> {
        self.read();
        self.inner.get_versions(k).await
    }
    async fn get_material(&self, k: Uuid, v: u32) -> Result<Option<Vec<u8>>> {
        self.read();
        self.inner.get_material(k, v).await
    }
    async fn history(&self, k: Uuid) -> Result<Vec<KeyEvent>> {
        self.read();
        self.inner.history(k).await
    }
    async fn count_keys_by_state(&self) -> Result<Vec<(String, i64)>> {
        self.inner.count_keys_by_state().await
    }
    async fn keys_due(&self, now: DateTime<Utc>, l: u32) -> Result<Vec<Key>> {
        self.inner.keys_due(now, l).await
    }
    async fn create_alias(&self, t: Uuid, a: &str, k: Uuid, au: &[AuditEvent]) -> Result<()> {
        self.inner.create_alias(t, a, k, au).await
    }
    async fn move_alias(&self, t: Uuid, a: &str, k: Uuid, au: &[AuditEvent]) -> Result<()> {
        self.inner.move_alias(t, a, k, au).await
    }
    async fn delete_alias(&self, t: Uuid, a: &str, au: &[AuditEvent]) -> Result<()> {
        self.inner.delete_alias(t, a, au).await
    }
    async fn list_aliases(&self, t: Uuid, k: Option<Uuid>) -> Result<Vec<(String, Uuid)>> {
        self.read();
        self.inner.list_aliases(t, k).await
    }
    async fn commit_audit(&self, r: &[arca_store::PreparedEvent]) -> Result<()> {
        self.inner.commit_audit(r).await
    }
    async fn sync_audit(&self) -> Result<()> {
        self.inner.sync_audit().await
    }
    async fn audit_head(&self) -> Result<Option<(u64, [u8; 32])>> {
        self.inner.audit_head().await
    }
    async fn read_audit(&self, after: u64, limit: u32) -> Result<Vec<StoredEvent>> {
        self.read();
        self.inner.read_audit(after, limit).await
    }
    async fn search_audit(&self, q: &AuditQuery) -> Result<Vec<StoredEvent>> {
        self.read();
        self.inner.search_audit(q).await
    }
    async fn audit_usage(
        &self,
        t: Option<Uuid>,
        k: Option<Uuid>,
        f: Option<DateTime<Utc>>,
    ) -> Result<Vec<UsageRow>> {
        self.read();
        self.inner.audit_usage(t, k, f).await
    }
    async fn audit_usage_series(
        &self,
        t: Uuid,
        k: Uuid,
        f: DateTime<Utc>,
        to: DateTime<Utc>,
        b: i64,
    ) -> Result<Vec<(i64, String, u64)>> {
        self.read();
        self.inner.audit_usage_series(t, k, f, to, b).await
    }
    async fn put_checkpoint(&self, c: &Checkpoint) -> Result<()> {
        self.inner.put_checkpoint(c).await
    }
    async fn list_checkpoints(&self, after: u64, limit: u32) -> Result<Vec<Checkpoint>> {
        self.inner.list_checkpoints(after, limit).await
    }
    async fn last_checkpoint(&self) -> Result<Option<Checkpoint>> {
        self.inner.last_checkpoint().await
    }
    async fn add_audit_segment(
        &self,
        s: &arca_store::AuditSegment,
        audit: &[AuditEvent],
    ) -> Result<()> {
        self.inner.add_audit_segment(s, audit).await
    }
    async fn list_audit_segments(&self) -> Result<Vec<arca_store::AuditSegment>> {
        self.inner.list_audit_segments().await
    }
    async fn prune_audit(
        &self,
        through: u64,
        at: chrono::DateTime<chrono::Utc>,
        audit: &[AuditEvent],
    ) -> Result<u64> {
        self.inner.prune_audit(through, at, audit).await
    }
    async fn snapshot(
        &self,
        each: &mut (dyn FnMut(arca_store::SnapshotRow) -> Result<()> + Send),
    ) -> Result<()> {
        self.inner.snapshot(each).await
    }
    async fn begin_restore(&self) -> Result<Box<dyn arca_store::RestoreTx>> {
        self.inner.begin_restore().await
    }
    async fn set_meta(&self, n: &str, v: &[u8]) -> Result<()> {
        self.inner.set_meta(n, v).await
    }
}

fn secret(b: &[u8]) -> Secret {
    Secret::new(Zeroizing::new(b.to_vec()))
}

fn enc(text: &'static str) -> EncryptRequest {
    EncryptRequest {
        plaintext: secret(text.as_bytes()),
        aad: None,
        encryption_context: Default::default(),
        encryption_algorithm: None,
    }
}

fn sign() -> SignRequest {
    SignRequest {
        message: secret(b"m"),
        message_type: Default::default(),
        signing_algorithm: None,
        pss_salt: None,
    }
}

fn dec(ciphertext: Bytes) -> DecryptRequest {
    DecryptRequest {
        ciphertext,
        aad: None,
        encryption_context: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn warm_requests_read_nothing_from_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Counting {
        inner: SqliteStore::open(&dir.path().join("arca.db"))
            .await
            .unwrap(),
        reads: AtomicUsize::new(0),
    });
    let svc = Service::new(
        store.clone(),
        Arc::new(SoftwareProvider),
        Arc::new(SystemClock),
        ServiceConfig::default(),
    );
    svc.unseal_dev(dir.path()).await.unwrap();
    let first = svc.ensure_default_tenant().await.unwrap().unwrap();
    let meta = || RequestMeta::new("t", "127.0.0.1", Door::Rest);
    let token = first.admin.unwrap().2.token.to_string();
    let admin = svc.authenticate(&token, meta()).await.unwrap();
    for (name, spec, usage) in [
        ("aes", "AES_256", "ENCRYPT_DECRYPT"),
        ("ec", "ECC_NIST_P256", "SIGN_VERIFY"),
    ] {
        let req: CreateKeyRequest = serde_json::from_value(
            serde_json::json!({"name": name, "spec": spec, "usage": [usage]}),
        )
        .unwrap();
        svc.create_key(&admin, req).await.unwrap();
    }

    // Warm up: first uses read the token, the key, its versions, material and the tenant KEK.
    let caller = svc.authenticate(&token, meta()).await.unwrap();
    let ct = svc
        .encrypt(&caller, "aes", enc("warm"))
        .await
        .unwrap()
        .ciphertext;
    svc.sign(&caller, "ec", sign()).await.unwrap();
    let warm = store.reads.load(Ordering::SeqCst);
    assert!(warm > 0, "the warm-up read the store");

    for _ in 0..50 {
        let caller = svc.authenticate(&token, meta()).await.unwrap();
        let c = svc
            .encrypt(&caller, "aes", enc("hot"))
            .await
            .unwrap()
            .ciphertext;
        assert_eq!(
            svc.decrypt(&caller, None, dec(c))
                .await
                .unwrap()
                .plaintext
                .expose(),
            b"hot"
        );
        svc.decrypt(&caller, Some("aes"), dec(ct.clone()))
            .await
            .unwrap();
        svc.sign(&caller, "ec", sign()).await.unwrap();
        svc.generate_data_key(&caller, "aes", GenerateDataKeyRequest::default(), true)
            .await
            .unwrap();
    }
    assert_eq!(
        store.reads.load(Ordering::SeqCst),
        warm,
        "a warm request read the store"
    );

    // A write invalidates: the next use reads the key again, and then it is warm again.
    svc.rotate_key(&caller, "aes", RotateRequest::default())
        .await
        .unwrap();
    let after_write = store.reads.load(Ordering::SeqCst);
    svc.encrypt(&caller, "aes", enc("x")).await.unwrap();
    let reread = store.reads.load(Ordering::SeqCst);
    assert!(reread > after_write, "the changed key was read again");
    svc.encrypt(&caller, "aes", enc("y")).await.unwrap();
    assert_eq!(
        store.reads.load(Ordering::SeqCst),
        reread,
        "and then it is warm again"
    );
}
