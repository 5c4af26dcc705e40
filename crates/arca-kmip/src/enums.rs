//! KMIP enumerations and masks (KMIP 1.0-2.0 §"Enumerations"; XML value names).

#![allow(missing_docs)]

/// `AdjustmentType` values.
pub mod adjustment_type {
    pub const INCREMENT: u32 = 0x00000001;
    pub const DECREMENT: u32 = 0x00000002;
    pub const NEGATE: u32 = 0x00000003;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Increment"),
        (0x00000002, "Decrement"),
        (0x00000003, "Negate"),
    ];
}

/// `AlternativeNameType` values.
pub mod alternative_name_type {
    pub const UNINTERPRETED_TEXT_STRING: u32 = 0x00000001;
    pub const URI: u32 = 0x00000002;
    pub const OBJECT_SERIAL_NUMBER: u32 = 0x00000003;
    pub const EMAIL_ADDRESS: u32 = 0x00000004;
    pub const DNS_NAME: u32 = 0x00000005;
    pub const X500_DISTINGUISHED_NAME: u32 = 0x00000006;
    pub const IP_ADDRESS: u32 = 0x00000007;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "UninterpretedTextString"),
        (0x00000002, "Uri"),
        (0x00000003, "ObjectSerialNumber"),
        (0x00000004, "EmailAddress"),
        (0x00000005, "DnsName"),
        (0x00000006, "X500DistinguishedName"),
        (0x00000007, "IpAddress"),
    ];
}

/// `AsynchronousIndicator` values.
pub mod asynchronous_indicator {
    pub const MANDATORY: u32 = 0x00000001;
    pub const OPTIONAL: u32 = 0x00000002;
    pub const PROHIBITED: u32 = 0x00000003;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Mandatory"),
        (0x00000002, "Optional"),
        (0x00000003, "Prohibited"),
    ];
}

/// `AttestationType` values.
pub mod attestation_type {
    pub const TPM_QUOTE: u32 = 0x00000001;
    pub const TCG_INTEGRITY_REPORT: u32 = 0x00000002;
    pub const SAML_ASSERTION: u32 = 0x00000003;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "TpmQuote"),
        (0x00000002, "TcgIntegrityReport"),
        (0x00000003, "SamlAssertion"),
    ];
}

/// `AuthenticationSuite` values.
pub mod authentication_suite {
    pub const BASIC: u32 = 0x00000001;
    pub const TLS12: u32 = 0x00000002;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[(0x00000001, "Basic"), (0x00000002, "Tls12")];
}

/// `BatchErrorContinuationOption` values.
pub mod batch_error_continuation_option {
    pub const CONTINUE: u32 = 0x00000001;
    pub const STOP: u32 = 0x00000002;
    pub const UNDO: u32 = 0x00000003;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Continue"),
        (0x00000002, "Stop"),
        (0x00000003, "Undo"),
    ];
}

/// `BlockCipherMode` values.
pub mod block_cipher_mode {
    pub const CBC: u32 = 0x00000001;
    pub const ECB: u32 = 0x00000002;
    pub const PCBC: u32 = 0x00000003;
    pub const CFB: u32 = 0x00000004;
    pub const OFB: u32 = 0x00000005;
    pub const CTR: u32 = 0x00000006;
    pub const CMAC: u32 = 0x00000007;
    pub const CCM: u32 = 0x00000008;
    pub const GCM: u32 = 0x00000009;
    pub const CBC_MAC: u32 = 0x0000000A;
    pub const XTS: u32 = 0x0000000B;
    pub const AES_KEY_WRAP_PADDING: u32 = 0x0000000C;
    pub const NIST_KEY_WRAP: u32 = 0x0000000D;
    pub const X9_102_AESKW: u32 = 0x0000000E;
    pub const X9_102_TDKW: u32 = 0x0000000F;
    pub const X9_102_AKW1: u32 = 0x00000010;
    pub const X9_102_AKW2: u32 = 0x00000011;
    pub const AEAD: u32 = 0x00000012;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "CBC"),
        (0x00000002, "ECB"),
        (0x00000003, "Pcbc"),
        (0x00000004, "Cfb"),
        (0x00000005, "Ofb"),
        (0x00000006, "Ctr"),
        (0x00000007, "Cmac"),
        (0x00000008, "Ccm"),
        (0x00000009, "GCM"),
        (0x0000000A, "CbcMac"),
        (0x0000000B, "XTS"),
        (0x0000000C, "AesKeyWrapPadding"),
        (0x0000000D, "NISTKeyWrap"),
        (0x0000000E, "X9102Aeskw"),
        (0x0000000F, "X9102Tdkw"),
        (0x00000010, "X9102Akw1"),
        (0x00000011, "X9102Akw2"),
        (0x00000012, "AEAD"),
    ];
}

/// `CancellationResult` values.
pub mod cancellation_result {
    pub const CANCELED: u32 = 0x00000001;
    pub const UNABLE_TO_CANCEL: u32 = 0x00000002;
    pub const COMPLETED: u32 = 0x00000003;
    pub const FAILED: u32 = 0x00000004;
    pub const UNAVAILABLE: u32 = 0x00000005;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Canceled"),
        (0x00000002, "UnableToCancel"),
        (0x00000003, "Completed"),
        (0x00000004, "Failed"),
        (0x00000005, "Unavailable"),
    ];
}

/// `CertificateRequestType` values.
pub mod certificate_request_type {
    pub const CRMF: u32 = 0x00000001;
    pub const PKCS10: u32 = 0x00000002;
    pub const PEM: u32 = 0x00000003;
    pub const PGP: u32 = 0x00000004;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Crmf"),
        (0x00000002, "Pkcs10"),
        (0x00000003, "Pem"),
        (0x00000004, "Pgp"),
    ];
}

/// `CertificateType` values.
pub mod certificate_type {
    pub const X_509: u32 = 0x00000001;
    pub const PGP: u32 = 0x00000002;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[(0x00000001, "X_509"), (0x00000002, "Pgp")];
}

/// `ClientRegistrationMethod` values.
pub mod client_registration_method {
    pub const UNSPECIFIED: u32 = 0x00000001;
    pub const SERVER_PREGENERATED: u32 = 0x00000002;
    pub const SERVER_ON_DEMAND: u32 = 0x00000003;
    pub const CLIENT_GENERATED: u32 = 0x00000004;
    pub const CLIENT_REGISTERED: u32 = 0x00000005;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Unspecified"),
        (0x00000002, "ServerPregenerated"),
        (0x00000003, "ServerOnDemand"),
        (0x00000004, "ClientGenerated"),
        (0x00000005, "ClientRegistered"),
    ];
}

/// `CredentialType` values.
pub mod credential_type {
    pub const USERNAME_AND_PASSWORD: u32 = 0x00000001;
    pub const DEVICE: u32 = 0x00000002;
    pub const ATTESTATION: u32 = 0x00000003;
    pub const ONE_TIME_PASSWORD: u32 = 0x00000004;
    pub const HASHED_PASSWORD: u32 = 0x00000005;
    pub const TICKET: u32 = 0x00000006;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "UsernameAndPassword"),
        (0x00000002, "Device"),
        (0x00000003, "Attestation"),
        (0x00000004, "OneTimePassword"),
        (0x00000005, "HashedPassword"),
        (0x00000006, "Ticket"),
    ];
}

/// `CryptographicAlgorithm` values.
pub mod cryptographic_algorithm {
    pub const DES: u32 = 0x00000001;
    pub const TRIPLE_DES: u32 = 0x00000002;
    pub const AES: u32 = 0x00000003;
    pub const RSA: u32 = 0x00000004;
    pub const DSA: u32 = 0x00000005;
    pub const ECDSA: u32 = 0x00000006;
    pub const HMAC_SHA1: u32 = 0x00000007;
    pub const HMAC_SHA224: u32 = 0x00000008;
    pub const HMAC_SHA256: u32 = 0x00000009;
    pub const HMAC_SHA384: u32 = 0x0000000A;
    pub const HMAC_SHA512: u32 = 0x0000000B;
    pub const HMAC_MD5: u32 = 0x0000000C;
    pub const DH: u32 = 0x0000000D;
    pub const ECDH: u32 = 0x0000000E;
    pub const ECMQV: u32 = 0x0000000F;
    pub const BLOWFISH: u32 = 0x00000010;
    pub const CAMELLIA: u32 = 0x00000011;
    pub const CAST5: u32 = 0x00000012;
    pub const IDEA: u32 = 0x00000013;
    pub const MARS: u32 = 0x00000014;
    pub const RC2: u32 = 0x00000015;
    pub const RC4: u32 = 0x00000016;
    pub const RC5: u32 = 0x00000017;
    pub const SKIPJACK: u32 = 0x00000018;
    pub const TWOFISH: u32 = 0x00000019;
    pub const EC: u32 = 0x0000001A;
    pub const ONE_TIME_PAD: u32 = 0x0000001B;
    pub const CHACHA20: u32 = 0x0000001C;
    pub const POLY1305: u32 = 0x0000001D;
    pub const CHACHA20_POLY1305: u32 = 0x0000001E;
    pub const SHA3_224: u32 = 0x0000001F;
    pub const SHA3_256: u32 = 0x00000020;
    pub const SHA3_384: u32 = 0x00000021;
    pub const SHA3_512: u32 = 0x00000022;
    pub const HMAC_SHA3_224: u32 = 0x00000023;
    pub const HMAC_SHA3_256: u32 = 0x00000024;
    pub const HMAC_SHA3_384: u32 = 0x00000025;
    pub const HMAC_SHA3_512: u32 = 0x00000026;
    pub const SHAKE_128: u32 = 0x00000027;
    pub const SHAKE_256: u32 = 0x00000028;
    pub const ARIA: u32 = 0x00000029;
    pub const SEED: u32 = 0x0000002A;
    pub const SM2: u32 = 0x0000002B;
    pub const SM3: u32 = 0x0000002C;
    pub const SM4: u32 = 0x0000002D;
    pub const GOST_R_34_10_2012: u32 = 0x0000002E;
    pub const GOST_R_34_11_2012: u32 = 0x0000002F;
    pub const GOST_R_34_13_2015: u32 = 0x00000030;
    pub const GOST_28147_89: u32 = 0x00000031;
    pub const XMSS: u32 = 0x00000032;
    pub const SPHINCS_256: u32 = 0x00000033;
    pub const MCELIECE: u32 = 0x00000034;
    pub const MCELIECE_6960119: u32 = 0x00000035;
    pub const MCELIECE_8192128: u32 = 0x00000036;
    pub const ED25519: u32 = 0x00000037;
    pub const ED448: u32 = 0x00000038;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Des"),
        (0x00000002, "DES3"),
        (0x00000003, "AES"),
        (0x00000004, "RSA"),
        (0x00000005, "DSA"),
        (0x00000006, "Ecdsa"),
        (0x00000007, "HmacSha1"),
        (0x00000008, "HmacSha224"),
        (0x00000009, "HMAC_SHA256"),
        (0x0000000A, "HmacSha384"),
        (0x0000000B, "HmacSha512"),
        (0x0000000C, "HmacMd5"),
        (0x0000000D, "Dh"),
        (0x0000000E, "Ecdh"),
        (0x0000000F, "Ecmqv"),
        (0x00000010, "Blowfish"),
        (0x00000011, "Camellia"),
        (0x00000012, "Cast5"),
        (0x00000013, "Idea"),
        (0x00000014, "Mars"),
        (0x00000015, "Rc2"),
        (0x00000016, "Rc4"),
        (0x00000017, "Rc5"),
        (0x00000018, "Skipjack"),
        (0x00000019, "Twofish"),
        (0x0000001A, "Ec"),
        (0x0000001B, "OneTimePad"),
        (0x0000001C, "ChaCha20"),
        (0x0000001D, "Poly1305"),
        (0x0000001E, "ChaCha20Poly1305"),
        (0x0000001F, "Sha3224"),
        (0x00000020, "Sha3256"),
        (0x00000021, "Sha3384"),
        (0x00000022, "Sha3512"),
        (0x00000023, "HmacSha3224"),
        (0x00000024, "HmacSha3256"),
        (0x00000025, "HmacSha3384"),
        (0x00000026, "HmacSha3512"),
        (0x00000027, "Shake128"),
        (0x00000028, "Shake256"),
        (0x00000029, "Aria"),
        (0x0000002A, "Seed"),
        (0x0000002B, "Sm2"),
        (0x0000002C, "Sm3"),
        (0x0000002D, "Sm4"),
        (0x0000002E, "GostR34102012"),
        (0x0000002F, "GostR34112012"),
        (0x00000030, "GostR34132015"),
        (0x00000031, "Gost2814789"),
        (0x00000032, "Xmss"),
        (0x00000033, "Sphincs256"),
        (0x00000034, "Mceliece"),
        (0x00000035, "Mceliece6960119"),
        (0x00000036, "Mceliece8192128"),
        (0x00000037, "Ed25519"),
        (0x00000038, "Ed448"),
    ];
}

/// `CryptographicUsageMask` values.
pub mod cryptographic_usage_mask {
    pub const SIGN: u32 = 0x00000001;
    pub const VERIFY: u32 = 0x00000002;
    pub const ENCRYPT: u32 = 0x00000004;
    pub const DECRYPT: u32 = 0x00000008;
    pub const WRAP_KEY: u32 = 0x00000010;
    pub const UNWRAP_KEY: u32 = 0x00000020;
    pub const EXPORT: u32 = 0x00000040;
    pub const MAC_GENERATE: u32 = 0x00000080;
    pub const MAC_VERIFY: u32 = 0x00000100;
    pub const DERIVE_KEY: u32 = 0x00000200;
    pub const CONTENT_COMMITMENT: u32 = 0x00000400;
    pub const KEY_AGREEMENT: u32 = 0x00000800;
    pub const CERTIFICATE_SIGN: u32 = 0x00001000;
    pub const CRL_SIGN: u32 = 0x00002000;
    pub const GENERATE_CRYPTOGRAM: u32 = 0x00004000;
    pub const VALIDATE_CRYPTOGRAM: u32 = 0x00008000;
    pub const TRANSLATE_ENCRYPT: u32 = 0x00010000;
    pub const TRANSLATE_DECRYPT: u32 = 0x00020000;
    pub const TRANSLATE_WRAP: u32 = 0x00040000;
    pub const TRANSLATE_UNWRAP: u32 = 0x00080000;
    pub const AUTHENTICATE: u32 = 0x00100000;
    pub const UNRESTRICTED: u32 = 0x00200000;
    pub const FPE_ENCRYPT: u32 = 0x00400000;
    pub const FPE_DECRYPT: u32 = 0x00800000;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Sign"),
        (0x00000002, "Verify"),
        (0x00000004, "Encrypt"),
        (0x00000008, "Decrypt"),
        (0x00000010, "WrapKey"),
        (0x00000020, "UnwrapKey"),
        (0x00000040, "Export"),
        (0x00000080, "MacGenerate"),
        (0x00000100, "MACVerify"),
        (0x00000200, "DeriveKey"),
        (0x00000400, "ContentCommitment"),
        (0x00000800, "KeyAgreement"),
        (0x00001000, "CertificateSign"),
        (0x00002000, "CrlSign"),
        (0x00004000, "GenerateCryptogram"),
        (0x00008000, "ValidateCryptogram"),
        (0x00010000, "TranslateEncrypt"),
        (0x00020000, "TranslateDecrypt"),
        (0x00040000, "TranslateWrap"),
        (0x00080000, "TranslateUnwrap"),
        (0x00100000, "Authenticate"),
        (0x00200000, "Unrestricted"),
        (0x00400000, "FpeEncrypt"),
        (0x00800000, "FpeDecrypt"),
    ];
}

/// `DRBGAlgorithm` values.
pub mod drbg_algorithm {
    pub const UNSPECIFIED: u32 = 0x00000001;
    pub const DUAL_EC: u32 = 0x00000002;
    pub const HASH: u32 = 0x00000003;
    pub const HMAC: u32 = 0x00000004;
    pub const CTR: u32 = 0x00000005;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Unspecified"),
        (0x00000002, "DualEc"),
        (0x00000003, "Hash"),
        (0x00000004, "Hmac"),
        (0x00000005, "Ctr"),
    ];
}

/// `DerivationMethod` values.
pub mod derivation_method {
    pub const PBKDF2: u32 = 0x00000001;
    pub const HASH: u32 = 0x00000002;
    pub const HMAC: u32 = 0x00000003;
    pub const ENCRYPT: u32 = 0x00000004;
    pub const NIST800_108_C: u32 = 0x00000005;
    pub const NIST800_108_F: u32 = 0x00000006;
    pub const NIST800_108_DPI: u32 = 0x00000007;
    pub const ASYMMETRIC_KEY: u32 = 0x00000008;
    pub const AWS_SIGNATURE_VERSION_4: u32 = 0x00000009;
    pub const HKDF: u32 = 0x0000000A;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Pbkdf2"),
        (0x00000002, "Hash"),
        (0x00000003, "Hmac"),
        (0x00000004, "Encrypt"),
        (0x00000005, "Nist800108C"),
        (0x00000006, "Nist800108F"),
        (0x00000007, "Nist800108Dpi"),
        (0x00000008, "AsymmetricKey"),
        (0x00000009, "AwsSignatureVersion4"),
        (0x0000000A, "Hkdf"),
    ];
}

/// `DestroyAction` values.
pub mod destroy_action {
    pub const UNSPECIFIED: u32 = 0x00000001;
    pub const KEY_MATERIAL_DELETED: u32 = 0x00000002;
    pub const KEY_MATERIAL_SHREDDED: u32 = 0x00000003;
    pub const METADATA_DELETED: u32 = 0x00000004;
    pub const METADATA_SHREDDED: u32 = 0x00000005;
    pub const DELETED: u32 = 0x00000006;
    pub const SHREDDED: u32 = 0x00000007;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Unspecified"),
        (0x00000002, "KeyMaterialDeleted"),
        (0x00000003, "KeyMaterialShredded"),
        (0x00000004, "MetadataDeleted"),
        (0x00000005, "MetadataShredded"),
        (0x00000006, "Deleted"),
        (0x00000007, "Shredded"),
    ];
}

/// `DigitalSignatureAlgorithm` values.
pub mod digital_signature_algorithm {
    pub const MD2_WITH_RSA_ENCRYPTION: u32 = 0x00000001;
    pub const MD5_WITH_RSA_ENCRYPTION: u32 = 0x00000002;
    pub const SHA1_WITH_RSA_ENCRYPTION: u32 = 0x00000003;
    pub const SHA224_WITH_RSA_ENCRYPTION: u32 = 0x00000004;
    pub const SHA256_WITH_RSA_ENCRYPTION: u32 = 0x00000005;
    pub const SHA384_WITH_RSA_ENCRYPTION: u32 = 0x00000006;
    pub const SHA512_WITH_RSA_ENCRYPTION: u32 = 0x00000007;
    pub const RSASSA_PSS: u32 = 0x00000008;
    pub const DSA_WITH_SHA1: u32 = 0x00000009;
    pub const DSA_WITH_SHA224: u32 = 0x0000000A;
    pub const DSA_WITH_SHA256: u32 = 0x0000000B;
    pub const ECDSA_WITH_SHA1: u32 = 0x0000000C;
    pub const ECDSA_WITH_SHA224: u32 = 0x0000000D;
    pub const ECDSA_WITH_SHA256: u32 = 0x0000000E;
    pub const ECDSA_WITH_SHA384: u32 = 0x0000000F;
    pub const ECDSA_WITH_SHA512: u32 = 0x00000010;
    pub const SHA3_256_WITH_RSA_ENCRYPTION: u32 = 0x00000011;
    pub const SHA3_384_WITH_RSA_ENCRYPTION: u32 = 0x00000012;
    pub const SHA3_512_WITH_RSA_ENCRYPTION: u32 = 0x00000013;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Md2WithRsaEncryption"),
        (0x00000002, "Md5WithRsaEncryption"),
        (0x00000003, "Sha1WithRsaEncryption"),
        (0x00000004, "Sha224WithRsaEncryption"),
        (0x00000005, "Sha256WithRsaEncryption"),
        (0x00000006, "Sha384WithRsaEncryption"),
        (0x00000007, "Sha512WithRsaEncryption"),
        (0x00000008, "RsassaPss"),
        (0x00000009, "DsaWithSha1"),
        (0x0000000A, "DsaWithSha224"),
        (0x0000000B, "DsaWithSha256"),
        (0x0000000C, "EcdsaWithSha1"),
        (0x0000000D, "EcdsaWithSha224"),
        (0x0000000E, "EcdsaWithSha256"),
        (0x0000000F, "EcdsaWithSha384"),
        (0x00000010, "EcdsaWithSha512"),
        (0x00000011, "Sha3256WithRsaEncryption"),
        (0x00000012, "Sha3384WithRsaEncryption"),
        (0x00000013, "Sha3512WithRsaEncryption"),
    ];
}

/// `EncodingOption` values.
pub mod encoding_option {
    pub const NO_ENCODING: u32 = 0x00000001;
    pub const TTLV_ENCODING: u32 = 0x00000002;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[(0x00000001, "NoEncoding"), (0x00000002, "TtlvEncoding")];
}

/// `EndpointRole` values.
pub mod endpoint_role {
    pub const CLIENT: u32 = 0x00000001;
    pub const SERVER: u32 = 0x00000002;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[(0x00000001, "Client"), (0x00000002, "Server")];
}

/// `FIPS186Variation` values.
pub mod fips186_variation {
    pub const UNSPECIFIED: u32 = 0x00000001;
    pub const GP_X_ORIGINAL: u32 = 0x00000002;
    pub const GP_X_CHANGE_NOTICE: u32 = 0x00000003;
    pub const X_ORIGINAL: u32 = 0x00000004;
    pub const X_CHANGE_NOTICE: u32 = 0x00000005;
    pub const K_ORIGINAL: u32 = 0x00000006;
    pub const K_CHANGE_NOTICE: u32 = 0x00000007;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Unspecified"),
        (0x00000002, "GpXOriginal"),
        (0x00000003, "GpXChangeNotice"),
        (0x00000004, "XOriginal"),
        (0x00000005, "XChangeNotice"),
        (0x00000006, "KOriginal"),
        (0x00000007, "KChangeNotice"),
    ];
}

/// `HashingAlgorithm` values.
pub mod hashing_algorithm {
    pub const MD2: u32 = 0x00000001;
    pub const MD4: u32 = 0x00000002;
    pub const MD5: u32 = 0x00000003;
    pub const SHA_1: u32 = 0x00000004;
    pub const SHA_224: u32 = 0x00000005;
    pub const SHA_256: u32 = 0x00000006;
    pub const SHA_384: u32 = 0x00000007;
    pub const SHA_512: u32 = 0x00000008;
    pub const RIPEMD_160: u32 = 0x00000009;
    pub const TIGER: u32 = 0x0000000A;
    pub const WHIRLPOOL: u32 = 0x0000000B;
    pub const SHA_512_224: u32 = 0x0000000C;
    pub const SHA_512_256: u32 = 0x0000000D;
    pub const SHA3_224: u32 = 0x0000000E;
    pub const SHA3_256: u32 = 0x0000000F;
    pub const SHA3_384: u32 = 0x00000010;
    pub const SHA3_512: u32 = 0x00000011;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Md2"),
        (0x00000002, "Md4"),
        (0x00000003, "Md5"),
        (0x00000004, "SHA_1"),
        (0x00000005, "Sha224"),
        (0x00000006, "SHA_256"),
        (0x00000007, "SHA_384"),
        (0x00000008, "SHA_512"),
        (0x00000009, "Ripemd160"),
        (0x0000000A, "Tiger"),
        (0x0000000B, "Whirlpool"),
        (0x0000000C, "Sha512224"),
        (0x0000000D, "Sha512256"),
        (0x0000000E, "Sha3224"),
        (0x0000000F, "Sha3256"),
        (0x00000010, "Sha3384"),
        (0x00000011, "Sha3512"),
    ];
}

/// `InteropFunction` values.
pub mod interop_function {
    pub const BEGIN: u32 = 0x00000001;
    pub const END: u32 = 0x00000002;
    pub const RESET: u32 = 0x00000003;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Begin"),
        (0x00000002, "End"),
        (0x00000003, "Reset"),
    ];
}

/// `KeyCompressionType` values.
pub mod key_compression_type {
    pub const EC_PUBLIC_KEY_TYPE_UNCOMPRESSED: u32 = 0x00000001;
    pub const EC_PUBLIC_KEY_TYPE_X9_62_COMPRESSED_PRIME: u32 = 0x00000002;
    pub const EC_PUBLIC_KEY_TYPE_X9_62_COMPRESSED_CHAR2: u32 = 0x00000003;
    pub const EC_PUBLIC_KEY_TYPE_X9_62_HYBRID: u32 = 0x00000004;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "EcPublicKeyTypeUncompressed"),
        (0x00000002, "EcPublicKeyTypeX962CompressedPrime"),
        (0x00000003, "EcPublicKeyTypeX962CompressedChar2"),
        (0x00000004, "EcPublicKeyTypeX962Hybrid"),
    ];
}

/// `KeyFormatType` values.
pub mod key_format_type {
    pub const RAW: u32 = 0x00000001;
    pub const OPAQUE: u32 = 0x00000002;
    pub const PKCS_1: u32 = 0x00000003;
    pub const PKCS_8: u32 = 0x00000004;
    pub const X_509: u32 = 0x00000005;
    pub const EC_PRIVATE_KEY: u32 = 0x00000006;
    pub const TRANSPARENT_SYMMETRIC_KEY: u32 = 0x00000007;
    pub const TRANSPARENT_DSA_PRIVATE_KEY: u32 = 0x00000008;
    pub const TRANSPARENT_DSA_PUBLIC_KEY: u32 = 0x00000009;
    pub const TRANSPARENT_RSA_PRIVATE_KEY: u32 = 0x0000000A;
    pub const TRANSPARENT_RSA_PUBLIC_KEY: u32 = 0x0000000B;
    pub const TRANSPARENT_DH_PRIVATE_KEY: u32 = 0x0000000C;
    pub const TRANSPARENT_DH_PUBLIC_KEY: u32 = 0x0000000D;
    pub const TRANSPARENT_ECDSA_PRIVATE_KEY: u32 = 0x0000000E;
    pub const TRANSPARENT_ECDSA_PUBLIC_KEY: u32 = 0x0000000F;
    pub const TRANSPARENT_ECDH_PRIVATE_KEY: u32 = 0x00000010;
    pub const TRANSPARENT_ECDH_PUBLIC_KEY: u32 = 0x00000011;
    pub const TRANSPARENT_ECMQV_PRIVATE_KEY: u32 = 0x00000012;
    pub const TRANSPARENT_ECMQV_PUBLIC_KEY: u32 = 0x00000013;
    pub const TRANSPARENT_EC_PRIVATE_KEY: u32 = 0x00000014;
    pub const TRANSPARENT_EC_PUBLIC_KEY: u32 = 0x00000015;
    pub const PKCS_12: u32 = 0x00000016;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Raw"),
        (0x00000002, "Opaque"),
        (0x00000003, "PKCS_1"),
        (0x00000004, "PKCS_8"),
        (0x00000005, "X_509"),
        (0x00000006, "EcPrivateKey"),
        (0x00000007, "TransparentSymmetricKey"),
        (0x00000008, "TransparentDSAPrivateKey"),
        (0x00000009, "TransparentDSAPublicKey"),
        (0x0000000A, "TransparentRSAPrivateKey"),
        (0x0000000B, "TransparentRSAPublicKey"),
        (0x0000000C, "TransparentDhPrivateKey"),
        (0x0000000D, "TransparentDhPublicKey"),
        (0x0000000E, "TransparentEcdsaPrivateKey"),
        (0x0000000F, "TransparentEcdsaPublicKey"),
        (0x00000010, "TransparentEcdhPrivateKey"),
        (0x00000011, "TransparentEcdhPublicKey"),
        (0x00000012, "TransparentEcmqvPrivateKey"),
        (0x00000013, "TransparentEcmqvPublicKey"),
        (0x00000014, "TransparentEcPrivateKey"),
        (0x00000015, "TransparentEcPublicKey"),
        (0x00000016, "Pkcs12"),
    ];
}

/// `KeyRoleType` values.
pub mod key_role_type {
    pub const BDK: u32 = 0x00000001;
    pub const CVK: u32 = 0x00000002;
    pub const DEK: u32 = 0x00000003;
    pub const MKAC: u32 = 0x00000004;
    pub const MKSMC: u32 = 0x00000005;
    pub const MKSMI: u32 = 0x00000006;
    pub const MKDAC: u32 = 0x00000007;
    pub const MKDN: u32 = 0x00000008;
    pub const MKCP: u32 = 0x00000009;
    pub const MKOTH: u32 = 0x0000000A;
    pub const KEK: u32 = 0x0000000B;
    pub const MAC_16609: u32 = 0x0000000C;
    pub const MAC_97971: u32 = 0x0000000D;
    pub const MAC_97972: u32 = 0x0000000E;
    pub const MAC_97973: u32 = 0x0000000F;
    pub const MAC_97974: u32 = 0x00000010;
    pub const MAC_97975: u32 = 0x00000011;
    pub const ZPK: u32 = 0x00000012;
    pub const PVKIBM: u32 = 0x00000013;
    pub const PVKPVV: u32 = 0x00000014;
    pub const PVKOTH: u32 = 0x00000015;
    pub const DUKPT: u32 = 0x00000016;
    pub const IV: u32 = 0x00000017;
    pub const TRKBK: u32 = 0x00000018;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Bdk"),
        (0x00000002, "Cvk"),
        (0x00000003, "Dek"),
        (0x00000004, "Mkac"),
        (0x00000005, "Mksmc"),
        (0x00000006, "Mksmi"),
        (0x00000007, "Mkdac"),
        (0x00000008, "Mkdn"),
        (0x00000009, "Mkcp"),
        (0x0000000A, "Mkoth"),
        (0x0000000B, "Kek"),
        (0x0000000C, "Mac16609"),
        (0x0000000D, "Mac97971"),
        (0x0000000E, "Mac97972"),
        (0x0000000F, "Mac97973"),
        (0x00000010, "Mac97974"),
        (0x00000011, "Mac97975"),
        (0x00000012, "Zpk"),
        (0x00000013, "Pvkibm"),
        (0x00000014, "Pvkpvv"),
        (0x00000015, "Pvkoth"),
        (0x00000016, "Dukpt"),
        (0x00000017, "Iv"),
        (0x00000018, "Trkbk"),
    ];
}

/// `KeyValueLocationType` values.
pub mod key_value_location_type {
    pub const UNINTERPRETED_TEXT_STRING: u32 = 0x00000001;
    pub const URI: u32 = 0x00000002;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[(0x00000001, "UninterpretedTextString"), (0x00000002, "Uri")];
}

/// `KeyWrapType` values.
pub mod key_wrap_type {
    pub const NOT_WRAPPED: u32 = 0x00000001;
    pub const AS_REGISTERED: u32 = 0x00000002;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[(0x00000001, "NotWrapped"), (0x00000002, "AsRegistered")];
}

/// `LinkType` values.
pub mod link_type {
    pub const CERTIFICATE_LINK: u32 = 0x00000101;
    pub const PUBLIC_KEY_LINK: u32 = 0x00000102;
    pub const PRIVATE_KEY_LINK: u32 = 0x00000103;
    pub const DERIVATION_BASE_OBJECT_LINK: u32 = 0x00000104;
    pub const DERIVED_KEY_LINK: u32 = 0x00000105;
    pub const REPLACEMENT_OBJECT_LINK: u32 = 0x00000106;
    pub const REPLACED_OBJECT_LINK: u32 = 0x00000107;
    pub const PARENT_LINK: u32 = 0x00000108;
    pub const CHILD_LINK: u32 = 0x00000109;
    pub const PREVIOUS_LINK: u32 = 0x0000010A;
    pub const NEXT_LINK: u32 = 0x0000010B;
    pub const PKCS12_CERTIFICATE_LINK: u32 = 0x0000010C;
    pub const PKCS12_PASSWORD_LINK: u32 = 0x0000010D;
    pub const WRAPPING_KEY_LINK: u32 = 0x0000010E;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000101, "CertificateLink"),
        (0x00000102, "PublicKeyLink"),
        (0x00000103, "PrivateKeyLink"),
        (0x00000104, "DerivationBaseObjectLink"),
        (0x00000105, "DerivedKeyLink"),
        (0x00000106, "ReplacementObjectLink"),
        (0x00000107, "ReplacedObjectLink"),
        (0x00000108, "ParentLink"),
        (0x00000109, "ChildLink"),
        (0x0000010A, "PreviousLink"),
        (0x0000010B, "NextLink"),
        (0x0000010C, "Pkcs12CertificateLink"),
        (0x0000010D, "Pkcs12PasswordLink"),
        (0x0000010E, "WrappingKeyLink"),
    ];
}

/// `MaskGenerator` values.
pub mod mask_generator {
    pub const MGF1: u32 = 0x00000001;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[(0x00000001, "MGF1")];
}

/// `NISTKeyType` values.
pub mod nist_key_type {
    pub const PRIVATE_SIGNATURE_KEY: u32 = 0x00000001;
    pub const PUBLIC_SIGNATURE_VERIFICATION_KEY: u32 = 0x00000002;
    pub const SYMMETRIC_AUTHENTICATION_KEY: u32 = 0x00000003;
    pub const PRIVATE_AUTHENTICATION_KEY: u32 = 0x00000004;
    pub const PUBLIC_AUTHENTICATION_KEY: u32 = 0x00000005;
    pub const SYMMETRIC_DATA_ENCRYPTION_KEY: u32 = 0x00000006;
    pub const SYMMETRIC_KEY_WRAPPING_KEY: u32 = 0x00000007;
    pub const SYMMETRIC_RANDOM_NUMBER_GENERATION_KEY: u32 = 0x00000008;
    pub const SYMMETRIC_MASTER_KEY: u32 = 0x00000009;
    pub const PRIVATE_KEY_TRANSPORT_KEY: u32 = 0x0000000A;
    pub const PUBLIC_KEY_TRANSPORT_KEY: u32 = 0x0000000B;
    pub const SYMMETRIC_KEY_AGREEMENT_KEY: u32 = 0x0000000C;
    pub const PRIVATE_STATIC_KEY_AGREEMENT_KEY: u32 = 0x0000000D;
    pub const PUBLIC_STATIC_KEY_AGREEMENT_KEY: u32 = 0x0000000E;
    pub const PRIVATE_EPHEMERAL_KEY_AGREEMENT_KEY: u32 = 0x0000000F;
    pub const PUBLIC_EPHEMERAL_KEY_AGREEMENT_KEY: u32 = 0x00000010;
    pub const SYMMETRIC_AUTHORIZATION_KEY: u32 = 0x00000011;
    pub const PRIVATE_AUTHORIZATION_KEY: u32 = 0x00000012;
    pub const PUBLIC_AUTHORIZATION_KEY: u32 = 0x00000013;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "PrivateSignatureKey"),
        (0x00000002, "PublicSignatureVerificationKey"),
        (0x00000003, "SymmetricAuthenticationKey"),
        (0x00000004, "PrivateAuthenticationKey"),
        (0x00000005, "PublicAuthenticationKey"),
        (0x00000006, "SymmetricDataEncryptionKey"),
        (0x00000007, "SymmetricKeyWrappingKey"),
        (0x00000008, "SymmetricRandomNumberGenerationKey"),
        (0x00000009, "SymmetricMasterKey"),
        (0x0000000A, "PrivateKeyTransportKey"),
        (0x0000000B, "PublicKeyTransportKey"),
        (0x0000000C, "SymmetricKeyAgreementKey"),
        (0x0000000D, "PrivateStaticKeyAgreementKey"),
        (0x0000000E, "PublicStaticKeyAgreementKey"),
        (0x0000000F, "PrivateEphemeralKeyAgreementKey"),
        (0x00000010, "PublicEphemeralKeyAgreementKey"),
        (0x00000011, "SymmetricAuthorizationKey"),
        (0x00000012, "PrivateAuthorizationKey"),
        (0x00000013, "PublicAuthorizationKey"),
    ];
}

/// `NameType` values.
pub mod name_type {
    pub const UNINTERPRETED_TEXT_STRING: u32 = 0x00000001;
    pub const URI: u32 = 0x00000002;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[(0x00000001, "UninterpretedTextString"), (0x00000002, "Uri")];
}

/// `ObjectGroupMember` values.
pub mod object_group_member {
    pub const GROUP_MEMBER_FRESH: u32 = 0x00000001;
    pub const GROUP_MEMBER_DEFAULT: u32 = 0x00000002;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "GroupMemberFresh"),
        (0x00000002, "GroupMemberDefault"),
    ];
}

/// `ObjectType` values.
pub mod object_type {
    pub const CERTIFICATE: u32 = 0x00000001;
    pub const SYMMETRIC_KEY: u32 = 0x00000002;
    pub const PUBLIC_KEY: u32 = 0x00000003;
    pub const PRIVATE_KEY: u32 = 0x00000004;
    pub const SPLIT_KEY: u32 = 0x00000005;
    pub const TEMPLATE: u32 = 0x00000006;
    pub const SECRET_DATA: u32 = 0x00000007;
    pub const OPAQUE_DATA: u32 = 0x00000008;
    pub const PGP_KEY: u32 = 0x00000009;
    pub const CERTIFICATE_REQUEST: u32 = 0x0000000A;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Certificate"),
        (0x00000002, "SymmetricKey"),
        (0x00000003, "PublicKey"),
        (0x00000004, "PrivateKey"),
        (0x00000005, "SplitKey"),
        (0x00000006, "Template"),
        (0x00000007, "SecretData"),
        (0x00000008, "OpaqueObject"),
        (0x00000009, "PGPKey"),
        (0x0000000A, "CertificateRequest"),
    ];
}

/// `OpaqueDataType` values.
pub mod opaque_data_type {
    pub const NONE: u32 = 0x80000000;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[(0x80000000, "None")];
}

/// `Operation` values.
pub mod operation {
    pub const CREATE: u32 = 0x00000001;
    pub const CREATE_KEY_PAIR: u32 = 0x00000002;
    pub const REGISTER: u32 = 0x00000003;
    pub const REKEY: u32 = 0x00000004;
    pub const DERIVE_KEY: u32 = 0x00000005;
    pub const CERTIFY: u32 = 0x00000006;
    pub const RECERTIFY: u32 = 0x00000007;
    pub const LOCATE: u32 = 0x00000008;
    pub const CHECK: u32 = 0x00000009;
    pub const GET: u32 = 0x0000000A;
    pub const GET_ATTRIBUTES: u32 = 0x0000000B;
    pub const GET_ATTRIBUTE_LIST: u32 = 0x0000000C;
    pub const ADD_ATTRIBUTE: u32 = 0x0000000D;
    pub const MODIFY_ATTRIBUTE: u32 = 0x0000000E;
    pub const DELETE_ATTRIBUTE: u32 = 0x0000000F;
    pub const OBTAIN_LEASE: u32 = 0x00000010;
    pub const GET_USAGE_ALLOCATION: u32 = 0x00000011;
    pub const ACTIVATE: u32 = 0x00000012;
    pub const REVOKE: u32 = 0x00000013;
    pub const DESTROY: u32 = 0x00000014;
    pub const ARCHIVE: u32 = 0x00000015;
    pub const RECOVER: u32 = 0x00000016;
    pub const VALIDATE: u32 = 0x00000017;
    pub const QUERY: u32 = 0x00000018;
    pub const CANCEL: u32 = 0x00000019;
    pub const POLL: u32 = 0x0000001A;
    pub const NOTIFY: u32 = 0x0000001B;
    pub const PUT: u32 = 0x0000001C;
    pub const REKEY_KEY_PAIR: u32 = 0x0000001D;
    pub const DISCOVER_VERSIONS: u32 = 0x0000001E;
    pub const ENCRYPT: u32 = 0x0000001F;
    pub const DECRYPT: u32 = 0x00000020;
    pub const SIGN: u32 = 0x00000021;
    pub const SIGNATURE_VERIFY: u32 = 0x00000022;
    pub const MAC: u32 = 0x00000023;
    pub const MAC_VERIFY: u32 = 0x00000024;
    pub const RNG_RETRIEVE: u32 = 0x00000025;
    pub const RNG_SEED: u32 = 0x00000026;
    pub const HASH: u32 = 0x00000027;
    pub const CREATE_SPLIT_KEY: u32 = 0x00000028;
    pub const JOIN_SPLIT_KEY: u32 = 0x00000029;
    pub const IMPORT: u32 = 0x0000002A;
    pub const EXPORT: u32 = 0x0000002B;
    pub const LOG: u32 = 0x0000002C;
    pub const LOGIN: u32 = 0x0000002D;
    pub const LOGOUT: u32 = 0x0000002E;
    pub const DELEGATED_LOGIN: u32 = 0x0000002F;
    pub const ADJUST_ATTRIBUTE: u32 = 0x00000030;
    pub const SET_ATTRIBUTE: u32 = 0x00000031;
    pub const SET_ENDPOINT_ROLE: u32 = 0x00000032;
    pub const PKCS_11: u32 = 0x00000033;
    pub const INTEROP: u32 = 0x00000034;
    pub const REPROVISION: u32 = 0x00000035;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Create"),
        (0x00000002, "CreateKeyPair"),
        (0x00000003, "Register"),
        (0x00000004, "ReKey"),
        (0x00000005, "DeriveKey"),
        (0x00000006, "Certify"),
        (0x00000007, "ReCertify"),
        (0x00000008, "Locate"),
        (0x00000009, "Check"),
        (0x0000000A, "Get"),
        (0x0000000B, "GetAttributes"),
        (0x0000000C, "GetAttributeList"),
        (0x0000000D, "AddAttribute"),
        (0x0000000E, "ModifyAttribute"),
        (0x0000000F, "DeleteAttribute"),
        (0x00000010, "ObtainLease"),
        (0x00000011, "GetUsageAllocation"),
        (0x00000012, "Activate"),
        (0x00000013, "Revoke"),
        (0x00000014, "Destroy"),
        (0x00000015, "Archive"),
        (0x00000016, "Recover"),
        (0x00000017, "Validate"),
        (0x00000018, "Query"),
        (0x00000019, "Cancel"),
        (0x0000001A, "Poll"),
        (0x0000001B, "Notify"),
        (0x0000001C, "Put"),
        (0x0000001D, "ReKeyKeyPair"),
        (0x0000001E, "DiscoverVersions"),
        (0x0000001F, "Encrypt"),
        (0x00000020, "Decrypt"),
        (0x00000021, "Sign"),
        (0x00000022, "SignatureVerify"),
        (0x00000023, "MAC"),
        (0x00000024, "MACVerify"),
        (0x00000025, "RNGRetrieve"),
        (0x00000026, "RNGSeed"),
        (0x00000027, "Hash"),
        (0x00000028, "CreateSplitKey"),
        (0x00000029, "JoinSplitKey"),
        (0x0000002A, "Import"),
        (0x0000002B, "Export"),
        (0x0000002C, "Log"),
        (0x0000002D, "Login"),
        (0x0000002E, "Logout"),
        (0x0000002F, "DelegatedLogin"),
        (0x00000030, "AdjustAttribute"),
        (0x00000031, "SetAttribute"),
        (0x00000032, "SetEndpointRole"),
        (0x00000033, "PKCS_11"),
        (0x00000034, "Interop"),
        (0x00000035, "Reprovision"),
    ];
}

/// `PaddingMethod` values.
pub mod padding_method {
    pub const NONE: u32 = 0x00000001;
    pub const OAEP: u32 = 0x00000002;
    pub const PKCS5: u32 = 0x00000003;
    pub const SSL3: u32 = 0x00000004;
    pub const ZEROS: u32 = 0x00000005;
    pub const ANSI_X923: u32 = 0x00000006;
    pub const ISO_10126: u32 = 0x00000007;
    pub const PKCS1V15: u32 = 0x00000008;
    pub const X931: u32 = 0x00000009;
    pub const PSS: u32 = 0x0000000A;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "None"),
        (0x00000002, "OAEP"),
        (0x00000003, "PKCS5"),
        (0x00000004, "Ssl3"),
        (0x00000005, "Zeros"),
        (0x00000006, "AnsiX923"),
        (0x00000007, "Iso10126"),
        (0x00000008, "Pkcs1v15"),
        (0x00000009, "X931"),
        (0x0000000A, "PSS"),
    ];
}

/// `ProtectionLevel` values.
pub mod protection_level {
    pub const HIGH: u32 = 0x00000001;
    pub const LOW: u32 = 0x00000002;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[(0x00000001, "High"), (0x00000002, "Low")];
}

/// `ProtectionStorageMask` values.
pub mod protection_storage_mask {
    pub const SOFTWARE: u32 = 0x00000001;
    pub const HARDWARE: u32 = 0x00000002;
    pub const ON_PROCESSOR: u32 = 0x00000004;
    pub const ON_SYSTEM: u32 = 0x00000008;
    pub const OFF_SYSTEM: u32 = 0x00000010;
    pub const HYPERVISOR: u32 = 0x00000020;
    pub const OPERATING_SYSTEM: u32 = 0x00000040;
    pub const CONTAINER: u32 = 0x00000080;
    pub const ON_PREMISES: u32 = 0x00000100;
    pub const OFF_PREMISES: u32 = 0x00000200;
    pub const SELF_MANAGED: u32 = 0x00000400;
    pub const OUTSOURCED: u32 = 0x00000800;
    pub const VALIDATED: u32 = 0x00001000;
    pub const SAME_JURISDICTION: u32 = 0x00002000;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Software"),
        (0x00000002, "Hardware"),
        (0x00000004, "OnProcessor"),
        (0x00000008, "OnSystem"),
        (0x00000010, "OffSystem"),
        (0x00000020, "Hypervisor"),
        (0x00000040, "OperatingSystem"),
        (0x00000080, "Container"),
        (0x00000100, "OnPremises"),
        (0x00000200, "OffPremises"),
        (0x00000400, "SelfManaged"),
        (0x00000800, "Outsourced"),
        (0x00001000, "Validated"),
        (0x00002000, "SameJurisdiction"),
    ];
}

/// `PutFunction` values.
pub mod put_function {
    pub const NEW: u32 = 0x00000001;
    pub const REPLACE: u32 = 0x00000002;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[(0x00000001, "New"), (0x00000002, "Replace")];
}

/// `QueryFunction` values.
pub mod query_function {
    pub const QUERY_OPERATIONS: u32 = 0x00000001;
    pub const QUERY_OBJECTS: u32 = 0x00000002;
    pub const QUERY_SERVER_INFORMATION: u32 = 0x00000003;
    pub const QUERY_APPLICATION_NAMESPACES: u32 = 0x00000004;
    pub const QUERY_EXTENSION_LIST: u32 = 0x00000005;
    pub const QUERY_EXTENSION_MAP: u32 = 0x00000006;
    pub const QUERY_ATTESTATION_TYPES: u32 = 0x00000007;
    pub const QUERY_RNGS: u32 = 0x00000008;
    pub const QUERY_VALIDATIONS: u32 = 0x00000009;
    pub const QUERY_PROFILES: u32 = 0x0000000A;
    pub const QUERY_CAPABILITIES: u32 = 0x0000000B;
    pub const QUERY_CLIENT_REGISTRATION_METHODS: u32 = 0x0000000C;
    pub const QUERY_DEFAULTS_INFORMATION: u32 = 0x0000000D;
    pub const QUERY_STORAGE_PROTECTION_MASKS: u32 = 0x0000000E;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "QueryOperations"),
        (0x00000002, "QueryObjects"),
        (0x00000003, "QueryServerInformation"),
        (0x00000004, "QueryApplicationNamespaces"),
        (0x00000005, "QueryExtensionList"),
        (0x00000006, "QueryExtensionMap"),
        (0x00000007, "QueryAttestationTypes"),
        (0x00000008, "QueryRngs"),
        (0x00000009, "QueryValidations"),
        (0x0000000A, "QueryProfiles"),
        (0x0000000B, "QueryCapabilities"),
        (0x0000000C, "QueryClientRegistrationMethods"),
        (0x0000000D, "QueryDefaultsInformation"),
        (0x0000000E, "QueryStorageProtectionMasks"),
    ];
}

/// `RNGAlgorithm` values.
pub mod rng_algorithm {
    pub const UNSPECIFIED: u32 = 0x00000001;
    pub const FIPS186_2: u32 = 0x00000002;
    pub const DRBG: u32 = 0x00000003;
    pub const NRBG: u32 = 0x00000004;
    pub const ANSI_X931: u32 = 0x00000005;
    pub const ANSI_X962: u32 = 0x00000006;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Unspecified"),
        (0x00000002, "Fips1862"),
        (0x00000003, "Drbg"),
        (0x00000004, "Nrbg"),
        (0x00000005, "ANSIX9_31"),
        (0x00000006, "AnsiX962"),
    ];
}

/// `RNGMode` values.
pub mod rng_mode {
    pub const UNSPECIFIED: u32 = 0x00000001;
    pub const SHARED_INSTANTIATION: u32 = 0x00000002;
    pub const NON_SHARED_INSTANTIATION: u32 = 0x00000003;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Unspecified"),
        (0x00000002, "SharedInstantiation"),
        (0x00000003, "NonSharedInstantiation"),
    ];
}

/// `RecommendedCurve` values.
pub mod recommended_curve {
    pub const P_192: u32 = 0x00000001;
    pub const K_163: u32 = 0x00000002;
    pub const B_163: u32 = 0x00000003;
    pub const P_224: u32 = 0x00000004;
    pub const K_233: u32 = 0x00000005;
    pub const B_233: u32 = 0x00000006;
    pub const P_256: u32 = 0x00000007;
    pub const K_283: u32 = 0x00000008;
    pub const B_283: u32 = 0x00000009;
    pub const P_384: u32 = 0x0000000A;
    pub const K_409: u32 = 0x0000000B;
    pub const B_409: u32 = 0x0000000C;
    pub const P_521: u32 = 0x0000000D;
    pub const K_571: u32 = 0x0000000E;
    pub const B_571: u32 = 0x0000000F;
    pub const SECP112R1: u32 = 0x00000010;
    pub const SECP112R2: u32 = 0x00000011;
    pub const SECP128R1: u32 = 0x00000012;
    pub const SECP128R2: u32 = 0x00000013;
    pub const SECP160K1: u32 = 0x00000014;
    pub const SECP160R1: u32 = 0x00000015;
    pub const SECP160R2: u32 = 0x00000016;
    pub const SECP191K1: u32 = 0x00000017;
    pub const SECP224K1: u32 = 0x00000018;
    pub const SECP256K1: u32 = 0x00000019;
    pub const SECT113R1: u32 = 0x0000001A;
    pub const SECT113R2: u32 = 0x0000001B;
    pub const SECT131R1: u32 = 0x0000001C;
    pub const SECT131R2: u32 = 0x0000001D;
    pub const SECT163R1: u32 = 0x0000001E;
    pub const SECT193R1: u32 = 0x0000001F;
    pub const SECT193R2: u32 = 0x00000020;
    pub const SECT239K1: u32 = 0x00000021;
    pub const ANSIX9P192V2: u32 = 0x00000022;
    pub const ANSIX9P192V3: u32 = 0x00000023;
    pub const ANSIX9P239V1: u32 = 0x00000024;
    pub const ANSIX9P239V2: u32 = 0x00000025;
    pub const ANSIX9P239V3: u32 = 0x00000026;
    pub const ANSIX9C2PNB163V1: u32 = 0x00000027;
    pub const ANSIX9C2PNB163V2: u32 = 0x00000028;
    pub const ANSIX9C2PNB163V3: u32 = 0x00000029;
    pub const ANSIX9C2PNB176V1: u32 = 0x0000002A;
    pub const ANSIX9C2TNB191V1: u32 = 0x0000002B;
    pub const ANSIX9C2TNB191V2: u32 = 0x0000002C;
    pub const ANSIX9C2TNB191V3: u32 = 0x0000002D;
    pub const ANSIX9C2PNB208W1: u32 = 0x0000002E;
    pub const ANSIX9C2TNB239V1: u32 = 0x0000002F;
    pub const ANSIX9C2TNB239V2: u32 = 0x00000030;
    pub const ANSIX9C2TNB239V3: u32 = 0x00000031;
    pub const ANSIX9C2PNB272W1: u32 = 0x00000032;
    pub const ANSIX9C2PNB304W1: u32 = 0x00000033;
    pub const ANSIX9C2TNB359V1: u32 = 0x00000034;
    pub const ANSIX9C2PNB368W1: u32 = 0x00000035;
    pub const ANSIX9C2TNB431R1: u32 = 0x00000036;
    pub const BRAINPOOLP160R1: u32 = 0x00000037;
    pub const BRAINPOOLP160T1: u32 = 0x00000038;
    pub const BRAINPOOLP192R1: u32 = 0x00000039;
    pub const BRAINPOOLP192T1: u32 = 0x0000003A;
    pub const BRAINPOOLP224R1: u32 = 0x0000003B;
    pub const BRAINPOOLP224T1: u32 = 0x0000003C;
    pub const BRAINPOOLP256R1: u32 = 0x0000003D;
    pub const BRAINPOOLP256T1: u32 = 0x0000003E;
    pub const BRAINPOOLP320R1: u32 = 0x0000003F;
    pub const BRAINPOOLP320T1: u32 = 0x00000040;
    pub const BRAINPOOLP384R1: u32 = 0x00000041;
    pub const BRAINPOOLP384T1: u32 = 0x00000042;
    pub const BRAINPOOLP512R1: u32 = 0x00000043;
    pub const BRAINPOOLP512T1: u32 = 0x00000044;
    pub const CURVE25519: u32 = 0x00000045;
    pub const CURVE448: u32 = 0x00000046;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "P192"),
        (0x00000002, "K163"),
        (0x00000003, "B163"),
        (0x00000004, "P224"),
        (0x00000005, "K233"),
        (0x00000006, "B233"),
        (0x00000007, "P256"),
        (0x00000008, "K283"),
        (0x00000009, "B283"),
        (0x0000000A, "P384"),
        (0x0000000B, "K409"),
        (0x0000000C, "B409"),
        (0x0000000D, "P521"),
        (0x0000000E, "K571"),
        (0x0000000F, "B571"),
        (0x00000010, "Secp112r1"),
        (0x00000011, "Secp112r2"),
        (0x00000012, "Secp128r1"),
        (0x00000013, "Secp128r2"),
        (0x00000014, "Secp160k1"),
        (0x00000015, "Secp160r1"),
        (0x00000016, "Secp160r2"),
        (0x00000017, "Secp191k1"),
        (0x00000018, "Secp224k1"),
        (0x00000019, "Secp256k1"),
        (0x0000001A, "Sect113r1"),
        (0x0000001B, "Sect113r2"),
        (0x0000001C, "Sect131r1"),
        (0x0000001D, "Sect131r2"),
        (0x0000001E, "Sect163r1"),
        (0x0000001F, "Sect193r1"),
        (0x00000020, "Sect193r2"),
        (0x00000021, "Sect239k1"),
        (0x00000022, "Ansix9p192v2"),
        (0x00000023, "Ansix9p192v3"),
        (0x00000024, "Ansix9p239v1"),
        (0x00000025, "Ansix9p239v2"),
        (0x00000026, "Ansix9p239v3"),
        (0x00000027, "Ansix9c2pnb163v1"),
        (0x00000028, "Ansix9c2pnb163v2"),
        (0x00000029, "Ansix9c2pnb163v3"),
        (0x0000002A, "Ansix9c2pnb176v1"),
        (0x0000002B, "Ansix9c2tnb191v1"),
        (0x0000002C, "Ansix9c2tnb191v2"),
        (0x0000002D, "Ansix9c2tnb191v3"),
        (0x0000002E, "Ansix9c2pnb208w1"),
        (0x0000002F, "Ansix9c2tnb239v1"),
        (0x00000030, "Ansix9c2tnb239v2"),
        (0x00000031, "Ansix9c2tnb239v3"),
        (0x00000032, "Ansix9c2pnb272w1"),
        (0x00000033, "Ansix9c2pnb304w1"),
        (0x00000034, "Ansix9c2tnb359v1"),
        (0x00000035, "Ansix9c2pnb368w1"),
        (0x00000036, "Ansix9c2tnb431r1"),
        (0x00000037, "Brainpoolp160r1"),
        (0x00000038, "Brainpoolp160t1"),
        (0x00000039, "Brainpoolp192r1"),
        (0x0000003A, "Brainpoolp192t1"),
        (0x0000003B, "Brainpoolp224r1"),
        (0x0000003C, "Brainpoolp224t1"),
        (0x0000003D, "Brainpoolp256r1"),
        (0x0000003E, "Brainpoolp256t1"),
        (0x0000003F, "Brainpoolp320r1"),
        (0x00000040, "Brainpoolp320t1"),
        (0x00000041, "Brainpoolp384r1"),
        (0x00000042, "Brainpoolp384t1"),
        (0x00000043, "Brainpoolp512r1"),
        (0x00000044, "Brainpoolp512t1"),
        (0x00000045, "Curve25519"),
        (0x00000046, "Curve448"),
    ];
}

/// `ResultReason` values.
pub mod result_reason {
    pub const ITEM_NOT_FOUND: u32 = 0x00000001;
    pub const RESPONSE_TOO_LARGE: u32 = 0x00000002;
    pub const AUTHENTICATION_NOT_SUCCESSFUL: u32 = 0x00000003;
    pub const INVALID_MESSAGE: u32 = 0x00000004;
    pub const OPERATION_NOT_SUPPORTED: u32 = 0x00000005;
    pub const MISSING_DATA: u32 = 0x00000006;
    pub const INVALID_FIELD: u32 = 0x00000007;
    pub const FEATURE_NOT_SUPPORTED: u32 = 0x00000008;
    pub const OPERATION_CANCELED_BY_REQUESTER: u32 = 0x00000009;
    pub const CRYPTOGRAPHIC_FAILURE: u32 = 0x0000000A;
    pub const ILLEGAL_OPERATION: u32 = 0x0000000B;
    pub const PERMISSION_DENIED: u32 = 0x0000000C;
    pub const OBJECT_ARCHIVED: u32 = 0x0000000D;
    pub const INDEX_OUT_OF_BOUNDS: u32 = 0x0000000E;
    pub const APPLICATION_NAMESPACE_NOT_SUPPORTED: u32 = 0x0000000F;
    pub const KEY_FORMAT_TYPE_NOT_SUPPORTED: u32 = 0x00000010;
    pub const KEY_COMPRESSION_TYPE_NOT_SUPPORTED: u32 = 0x00000011;
    pub const ENCODING_OPTION_ERROR: u32 = 0x00000012;
    pub const KEY_VALUE_NOT_PRESENT: u32 = 0x00000013;
    pub const ATTESTATION_REQUIRED: u32 = 0x00000014;
    pub const ATTESTATION_FAILED: u32 = 0x00000015;
    pub const SENSITIVE: u32 = 0x00000016;
    pub const NOT_EXTRACTABLE: u32 = 0x00000017;
    pub const OBJECT_ALREADY_EXISTS: u32 = 0x00000018;
    pub const INVALID_TICKET: u32 = 0x00000019;
    pub const USAGE_LIMIT_EXCEEDED: u32 = 0x0000001A;
    pub const NUMERIC_RANGE: u32 = 0x0000001B;
    pub const INVALID_DATA_TYPE: u32 = 0x0000001C;
    pub const READ_ONLY_ATTRIBUTE: u32 = 0x0000001D;
    pub const MULTI_VALUED_ATTRIBUTE: u32 = 0x0000001E;
    pub const UNSUPPORTED_ATTRIBUTE: u32 = 0x0000001F;
    pub const ATTRIBUTE_INSTANCE_NOT_FOUND: u32 = 0x00000020;
    pub const ATTRIBUTE_NOT_FOUND: u32 = 0x00000021;
    pub const ATTRIBUTE_READ_ONLY: u32 = 0x00000022;
    pub const ATTRIBUTE_SINGLE_VALUED: u32 = 0x00000023;
    pub const BAD_CRYPTOGRAPHIC_PARAMETERS: u32 = 0x00000024;
    pub const BAD_PASSWORD: u32 = 0x00000025;
    pub const CODEC_ERROR: u32 = 0x00000026;
    pub const ILLEGAL_OBJECT_TYPE: u32 = 0x00000028;
    pub const INCOMPATIBLE_CRYPTOGRAPHIC_USAGE_MASK: u32 = 0x00000029;
    pub const INTERNAL_SERVER_ERROR: u32 = 0x0000002A;
    pub const INVALID_ASYNCHRONOUS_CORRELATION_VALUE: u32 = 0x0000002B;
    pub const INVALID_ATTRIBUTE: u32 = 0x0000002C;
    pub const INVALID_ATTRIBUTE_VALUE: u32 = 0x0000002D;
    pub const INVALID_CORRELATION_VALUE: u32 = 0x0000002E;
    pub const INVALID_CSR: u32 = 0x0000002F;
    pub const INVALID_OBJECT_TYPE: u32 = 0x00000030;
    pub const KEY_WRAP_TYPE_NOT_SUPPORTED: u32 = 0x00000032;
    pub const MISSING_INITIALIZATION_VECTOR: u32 = 0x00000034;
    pub const NON_UNIQUE_NAME_ATTRIBUTE: u32 = 0x00000035;
    pub const OBJECT_DESTROYED: u32 = 0x00000036;
    pub const OBJECT_NOT_FOUND: u32 = 0x00000037;
    pub const NOT_AUTHORISED: u32 = 0x00000039;
    pub const SERVER_LIMIT_EXCEEDED: u32 = 0x0000003A;
    pub const UNKNOWN_ENUMERATION: u32 = 0x0000003B;
    pub const UNKNOWN_MESSAGE_EXTENSION: u32 = 0x0000003C;
    pub const UNKNOWN_TAG: u32 = 0x0000003D;
    pub const UNSUPPORTED_CRYPTOGRAPHIC_PARAMETERS: u32 = 0x0000003E;
    pub const UNSUPPORTED_PROTOCOL_VERSION: u32 = 0x0000003F;
    pub const WRAPPING_OBJECT_ARCHIVED: u32 = 0x00000040;
    pub const WRAPPING_OBJECT_DESTROYED: u32 = 0x00000041;
    pub const WRAPPING_OBJECT_NOT_FOUND: u32 = 0x00000042;
    pub const WRONG_KEY_LIFECYCLE_STATE: u32 = 0x00000043;
    pub const PROTECTION_STORAGE_UNAVAILABLE: u32 = 0x00000044;
    pub const PKCS11_CODEC_ERROR: u32 = 0x00000045;
    pub const PKCS11_INVALID_FUNCTION: u32 = 0x00000046;
    pub const PKCS11_INVALID_INTERFACE: u32 = 0x00000047;
    pub const GENERAL_FAILURE: u32 = 0x00000100;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "ItemNotFound"),
        (0x00000002, "ResponseTooLarge"),
        (0x00000003, "AuthenticationNotSuccessful"),
        (0x00000004, "InvalidMessage"),
        (0x00000005, "OperationNotSupported"),
        (0x00000006, "MissingData"),
        (0x00000007, "InvalidField"),
        (0x00000008, "FeatureNotSupported"),
        (0x00000009, "OperationCanceledByRequester"),
        (0x0000000A, "CryptographicFailure"),
        (0x0000000B, "IllegalOperation"),
        (0x0000000C, "PermissionDenied"),
        (0x0000000D, "ObjectArchived"),
        (0x0000000E, "IndexOutOfBounds"),
        (0x0000000F, "ApplicationNamespaceNotSupported"),
        (0x00000010, "KeyFormatTypeNotSupported"),
        (0x00000011, "KeyCompressionTypeNotSupported"),
        (0x00000012, "EncodingOptionError"),
        (0x00000013, "KeyValueNotPresent"),
        (0x00000014, "AttestationRequired"),
        (0x00000015, "AttestationFailed"),
        (0x00000016, "Sensitive"),
        (0x00000017, "NotExtractable"),
        (0x00000018, "ObjectAlreadyExists"),
        (0x00000019, "InvalidTicket"),
        (0x0000001A, "UsageLimitExceeded"),
        (0x0000001B, "NumericRange"),
        (0x0000001C, "InvalidDataType"),
        (0x0000001D, "ReadOnlyAttribute"),
        (0x0000001E, "MultiValuedAttribute"),
        (0x0000001F, "UnsupportedAttribute"),
        (0x00000020, "AttributeInstanceNotFound"),
        (0x00000021, "AttributeNotFound"),
        (0x00000022, "AttributeReadOnly"),
        (0x00000023, "AttributeSingleValued"),
        (0x00000024, "BadCryptographicParameters"),
        (0x00000025, "BadPassword"),
        (0x00000026, "CodecError"),
        (0x00000028, "IllegalObjectType"),
        (0x00000029, "IncompatibleCryptographicUsageMask"),
        (0x0000002A, "InternalServerError"),
        (0x0000002B, "InvalidAsynchronousCorrelationValue"),
        (0x0000002C, "InvalidAttribute"),
        (0x0000002D, "InvalidAttributeValue"),
        (0x0000002E, "InvalidCorrelationValue"),
        (0x0000002F, "InvalidCsr"),
        (0x00000030, "InvalidObjectType"),
        (0x00000032, "KeyWrapTypeNotSupported"),
        (0x00000034, "MissingInitializationVector"),
        (0x00000035, "NonUniqueNameAttribute"),
        (0x00000036, "ObjectDestroyed"),
        (0x00000037, "ObjectNotFound"),
        (0x00000039, "NotAuthorised"),
        (0x0000003A, "ServerLimitExceeded"),
        (0x0000003B, "UnknownEnumeration"),
        (0x0000003C, "UnknownMessageExtension"),
        (0x0000003D, "UnknownTag"),
        (0x0000003E, "UnsupportedCryptographicParameters"),
        (0x0000003F, "UnsupportedProtocolVersion"),
        (0x00000040, "WrappingObjectArchived"),
        (0x00000041, "WrappingObjectDestroyed"),
        (0x00000042, "WrappingObjectNotFound"),
        (0x00000043, "WrongKeyLifecycleState"),
        (0x00000044, "ProtectionStorageUnavailable"),
        (0x00000045, "Pkcs11CodecError"),
        (0x00000046, "Pkcs11InvalidFunction"),
        (0x00000047, "Pkcs11InvalidInterface"),
        (0x00000100, "GeneralFailure"),
    ];
}

/// `ResultStatus` values.
pub mod result_status {
    pub const SUCCESS: u32 = 0x00000000;
    pub const OPERATION_FAILED: u32 = 0x00000001;
    pub const OPERATION_PENDING: u32 = 0x00000002;
    pub const OPERATION_UNDONE: u32 = 0x00000003;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000000, "Success"),
        (0x00000001, "OperationFailed"),
        (0x00000002, "OperationPending"),
        (0x00000003, "OperationUndone"),
    ];
}

/// `RevocationReasonCode` values.
pub mod revocation_reason_code {
    pub const UNSPECIFIED: u32 = 0x00000001;
    pub const KEY_COMPROMISE: u32 = 0x00000002;
    pub const CA_COMPROMISE: u32 = 0x00000003;
    pub const AFFILIATION_CHANGED: u32 = 0x00000004;
    pub const SUPERSEDED: u32 = 0x00000005;
    pub const CESSATION_OF_OPERATION: u32 = 0x00000006;
    pub const PRIVILEGE_WITHDRAWN: u32 = 0x00000007;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Unspecified"),
        (0x00000002, "KeyCompromise"),
        (0x00000003, "CaCompromise"),
        (0x00000004, "AffiliationChanged"),
        (0x00000005, "Superseded"),
        (0x00000006, "CessationOfOperation"),
        (0x00000007, "PrivilegeWithdrawn"),
    ];
}

/// `SecretDataType` values.
pub mod secret_data_type {
    pub const PASSWORD: u32 = 0x00000001;
    pub const SEED: u32 = 0x00000002;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[(0x00000001, "Password"), (0x00000002, "Seed")];
}

/// `ShreddingAlgorithm` values.
pub mod shredding_algorithm {
    pub const UNSPECIFIED: u32 = 0x00000001;
    pub const CRYPTOGRAPHIC: u32 = 0x00000002;
    pub const UNSUPPORTED: u32 = 0x00000003;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Unspecified"),
        (0x00000002, "Cryptographic"),
        (0x00000003, "Unsupported"),
    ];
}

/// `SplitKeyMethod` values.
pub mod split_key_method {
    pub const XOR: u32 = 0x00000001;
    pub const POLYNOMIAL_SHARING_GF_2_16: u32 = 0x00000002;
    pub const POLYNOMIAL_SHARING_PRIME_FIELD: u32 = 0x00000003;
    pub const POLYNOMIAL_SHARING_GF_2_8: u32 = 0x00000004;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Xor"),
        (0x00000002, "PolynomialSharingGf216"),
        (0x00000003, "PolynomialSharingPrimeField"),
        (0x00000004, "PolynomialSharingGf28"),
    ];
}

/// `State` values.
pub mod state {
    pub const PRE_ACTIVE: u32 = 0x00000001;
    pub const ACTIVE: u32 = 0x00000002;
    pub const DEACTIVATED: u32 = 0x00000003;
    pub const COMPROMISED: u32 = 0x00000004;
    pub const DESTROYED: u32 = 0x00000005;
    pub const DESTROYED_COMPROMISED: u32 = 0x00000006;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "PreActive"),
        (0x00000002, "Active"),
        (0x00000003, "Deactivated"),
        (0x00000004, "Compromised"),
        (0x00000005, "Destroyed"),
        (0x00000006, "DestroyedCompromised"),
    ];
}

/// `StorageStatusMask` values.
pub mod storage_status_mask {
    pub const ONLINE_STORAGE: u32 = 0x00000001;
    pub const ARCHIVAL_STORAGE: u32 = 0x00000002;
    pub const DESTROYED_STORAGE: u32 = 0x00000004;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "OnlineStorage"),
        (0x00000002, "ArchivalStorage"),
        (0x00000004, "DestroyedStorage"),
    ];
}

/// `TicketType` values.
pub mod ticket_type {
    pub const LOGIN: u32 = 0x00000001;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[(0x00000001, "Login")];
}

/// `UnwrapMode` values.
pub mod unwrap_mode {
    pub const UNSPECIFIED: u32 = 0x00000001;
    pub const PROCESSED: u32 = 0x00000002;
    pub const NOT_PROCESSED: u32 = 0x00000003;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Unspecified"),
        (0x00000002, "Processed"),
        (0x00000003, "NotProcessed"),
    ];
}

/// `UsageLimitsUnit` values.
pub mod usage_limits_unit {
    pub const BYTE: u32 = 0x00000001;
    pub const OBJECT: u32 = 0x00000002;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[(0x00000001, "Byte"), (0x00000002, "Object")];
}

/// `ValidationAuthorityType` values.
pub mod validation_authority_type {
    pub const UNSPECIFIED: u32 = 0x00000001;
    pub const NIST_CMVP: u32 = 0x00000002;
    pub const COMMON_CRITERIA: u32 = 0x00000003;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Unspecified"),
        (0x00000002, "NistCmvp"),
        (0x00000003, "CommonCriteria"),
    ];
}

/// `ValidationType` values.
pub mod validation_type {
    pub const UNSPECIFIED: u32 = 0x00000001;
    pub const HARDWARE: u32 = 0x00000002;
    pub const SOFTWARE: u32 = 0x00000003;
    pub const FIRMWARE: u32 = 0x00000004;
    pub const HYBRID: u32 = 0x00000005;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Unspecified"),
        (0x00000002, "Hardware"),
        (0x00000003, "Software"),
        (0x00000004, "Firmware"),
        (0x00000005, "Hybrid"),
    ];
}

/// `ValidityIndicator` values.
pub mod validity_indicator {
    pub const VALID: u32 = 0x00000001;
    pub const INVALID: u32 = 0x00000002;
    pub const UNKNOWN: u32 = 0x00000003;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Valid"),
        (0x00000002, "Invalid"),
        (0x00000003, "Unknown"),
    ];
}

/// `WrappingMethod` values.
pub mod wrapping_method {
    pub const ENCRYPT: u32 = 0x00000001;
    pub const MAC_SIGN: u32 = 0x00000002;
    pub const ENCRYPT_THEN_MAC_SIGN: u32 = 0x00000003;
    pub const MAC_SIGN_THEN_ENCRYPT: u32 = 0x00000004;
    pub const TR_31: u32 = 0x00000005;
    /// (value, XML name) pairs.
    pub const ALL: &[(u32, &str)] = &[
        (0x00000001, "Encrypt"),
        (0x00000002, "MacSign"),
        (0x00000003, "EncryptThenMacSign"),
        (0x00000004, "MacSignThenEncrypt"),
        (0x00000005, "Tr31"),
    ];
}
