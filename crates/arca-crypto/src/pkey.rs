//! The one owner of an aws-lc `EVP_PKEY` for the modules that reach below aws-lc-rs
//! ([`crate::rsa_params`] for RSA, [`crate::dsa`] for DSA): parsing PKCS#8 or
//! SubjectPublicKeyInfo DER into a key of one type, encoding it back, and freeing it.
//! aws-lc keeps a private key's numbers in `BIGNUM`s it clears when the key is freed; the
//! DER this module hands out is in zeroizing buffers, and aws-lc's copy is cleansed.

use std::os::raw::c_int;

use aws_lc_sys as sys;
use zeroize::Zeroizing;

/// An owned `EVP_PKEY`, never null, freed on drop.
pub(crate) struct Pkey(*mut sys::EVP_PKEY);

impl Drop for Pkey {
    fn drop(&mut self) {
        // SAFETY: the pointer is an EVP_PKEY this value owns (never null: checked when
        // made), freed once, here; aws-lc clears the private numbers as it frees them.
        unsafe { sys::EVP_PKEY_free(self.0) }
    }
}

/// Clears this thread's aws-lc error queue after a failure this module reports as `None`.
fn clear_errors() {
    // SAFETY: clears this thread's aws-lc error queue; no pointers involved.
    unsafe { sys::ERR_clear_error() };
}

impl Pkey {
    /// Takes ownership of `p`, a key aws-lc allocated for the caller; `None` if null.
    pub(crate) fn from_owned(p: *mut sys::EVP_PKEY) -> Option<Pkey> {
        (!p.is_null()).then_some(Pkey(p))
    }

    /// Parses PKCS#8 (`private`) or SubjectPublicKeyInfo DER; `None` unless `der` is
    /// exactly one key whose type is `id` (`EVP_PKEY_RSA`, `EVP_PKEY_DSA`, ...).
    pub(crate) fn parse(der: &[u8], private: bool, id: c_int) -> Option<Pkey> {
        let mut cbs = sys::CBS {
            data: der.as_ptr(),
            len: der.len(),
        };
        // SAFETY: `cbs` reads `der`, which outlives the call; aws-lc copies what it parses
        // into a new EVP_PKEY we own (or returns NULL).
        let p = unsafe {
            if private {
                sys::EVP_parse_private_key(&mut cbs)
            } else {
                sys::EVP_parse_public_key(&mut cbs)
            }
        };
        let Some(key) = Pkey::from_owned(p) else {
            clear_errors();
            return None;
        };
        // SAFETY: `key.0` is a live EVP_PKEY; `cbs.len` is what is left unread of `der`.
        let matches = unsafe { sys::EVP_PKEY_id(key.0) } == id && cbs.len == 0;
        matches.then_some(key)
    }

    /// The key, for aws-lc calls; valid while `self` lives.
    pub(crate) fn as_ptr(&self) -> *mut sys::EVP_PKEY {
        self.0
    }

    /// The key as PKCS#8 (`private`) or SubjectPublicKeyInfo DER; `None` if aws-lc cannot
    /// encode it (a public-only key asked for PKCS#8, say).
    pub(crate) fn marshal(&self, private: bool) -> Option<Zeroizing<Vec<u8>>> {
        // SAFETY: CBB is a plain struct; zeroed is the state CBB_init expects to overwrite.
        let mut cbb: sys::CBB = unsafe { std::mem::zeroed() };
        let mut ptr: *mut u8 = std::ptr::null_mut();
        let mut len = 0usize;
        // SAFETY: `cbb` is initialised before use and `self.0` is a live EVP_PKEY; on
        // success CBB_finish hands us its buffer (ptr, len), on any failure CBB_cleanup
        // releases what `cbb` holds (a no-op if CBB_init itself failed).
        let ok = unsafe {
            sys::CBB_init(&mut cbb, 256) == 1
                && if private {
                    sys::EVP_marshal_private_key(&mut cbb, self.0) == 1
                } else {
                    sys::EVP_marshal_public_key(&mut cbb, self.0) == 1
                }
                && sys::CBB_finish(&mut cbb, &mut ptr, &mut len) == 1
        };
        if !ok {
            // SAFETY: `cbb` was zeroed or initialised above and not handed over.
            unsafe { sys::CBB_cleanup(&mut cbb) };
            clear_errors();
            return None;
        }
        // SAFETY: (ptr, len) is the buffer CBB_finish returned: copied, cleansed (it may
        // hold a private key) and freed once, with aws-lc's allocator.
        let out = unsafe {
            let out = Zeroizing::new(std::slice::from_raw_parts(ptr, len).to_vec());
            std::ptr::write_bytes(ptr, 0, len);
            sys::OPENSSL_free(ptr.cast());
            out
        };
        Some(out)
    }
}
