"""boto3 against Arca's AWS-compatible door: the KMS API as an AWS application uses it.

Reads AWS_ENDPOINT_URL, AWS_CA_BUNDLE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
AWS_DEFAULT_REGION. Prints OK at the end; any failed check raises.
"""

import base64
import os

import boto3
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding

kms = boto3.client(
    "kms",
    endpoint_url=os.environ["AWS_ENDPOINT_URL"],
    verify=os.environ["AWS_CA_BUNDLE"],
    region_name=os.environ["AWS_DEFAULT_REGION"],
)


def refused(code, fn, **kw):
    """Calls fn and checks it fails with the AWS error `code`."""
    try:
        fn(**kw)
    except ClientError as e:
        got = e.response["Error"]["Code"]
        assert got == code, f"{fn.__name__}: expected {code}, got {got}: {e}"
        return e.response["Error"].get("Message", "")
    raise AssertionError(f"{fn.__name__} should have failed with {code}")


# Keys: a symmetric key with a description and tags, and an alias.
md = kms.create_key(
    Description="boto3 test key", Tags=[{"TagKey": "team", "TagValue": "blue"}]
)["KeyMetadata"]
key = md["KeyId"]
assert md["KeyState"] == "Enabled" and md["Enabled"], md
assert md["KeySpec"] == "SYMMETRIC_DEFAULT" and md["KeyUsage"] == "ENCRYPT_DECRYPT", md
assert md["Arn"].startswith("arn:aws:kms:us-east-1:") and md["Arn"].endswith(":key/" + key)
assert md["Origin"] == "AWS_KMS" and md["KeyManager"] == "CUSTOMER"
assert md["EncryptionAlgorithms"] == ["SYMMETRIC_DEFAULT"]
kms.create_alias(AliasName="alias/app-key", TargetKeyId=key)
assert kms.describe_key(KeyId="alias/app-key")["KeyMetadata"]["KeyId"] == key
assert kms.describe_key(KeyId=md["Arn"])["KeyMetadata"]["KeyId"] == key
aliases = kms.list_aliases(KeyId=key)["Aliases"]
assert [a["AliasName"] for a in aliases] == ["alias/app-key"], aliases
assert aliases[0]["AliasArn"].endswith(":alias/app-key")
refused("AlreadyExistsException", kms.create_alias, AliasName="alias/app-key", TargetKeyId=key)
refused("NotAuthorizedException", kms.create_alias, AliasName="alias/aws/s3", TargetKeyId=key)
refused("NotFoundException", kms.describe_key, KeyId="7b3d2a8e-0000-4000-8000-000000000000")
refused("NotFoundException", kms.describe_key, KeyId="alias/no-such-alias")

# Encryption with an encryption context, enforced on decrypt.
ctx = {"tenant": "acme", "purpose": "test"}
ct = kms.encrypt(KeyId="alias/app-key", Plaintext=b"attack at dawn", EncryptionContext=ctx)
assert ct["KeyId"] == md["Arn"] and ct["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
blob = ct["CiphertextBlob"]
pt = kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
assert pt["Plaintext"] == b"attack at dawn" and pt["KeyId"] == md["Arn"], pt
assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx, KeyId=key)["Plaintext"] == b"attack at dawn"
refused("InvalidCiphertextException", kms.decrypt, CiphertextBlob=blob, EncryptionContext={"tenant": "other"})
refused("InvalidCiphertextException", kms.decrypt, CiphertextBlob=blob)
refused("InvalidCiphertextException", kms.decrypt, CiphertextBlob=b"not a ciphertext at all")
other = kms.create_key(Description="second key")["KeyMetadata"]["KeyId"]
refused("IncorrectKeyException", kms.decrypt, CiphertextBlob=blob, EncryptionContext=ctx, KeyId=other)

# ReEncrypt to another key, without the plaintext leaving the server.
re = kms.re_encrypt(
    CiphertextBlob=blob,
    SourceEncryptionContext=ctx,
    DestinationKeyId=other,
    DestinationEncryptionContext={"moved": "yes"},
)
assert re["SourceKeyId"] == md["Arn"] and re["KeyId"].endswith(other), re
assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"], EncryptionContext={"moved": "yes"})["Plaintext"] == b"attack at dawn"
refused("IncorrectKeyException", kms.re_encrypt, CiphertextBlob=blob, SourceEncryptionContext=ctx,
        SourceKeyId=other, DestinationKeyId=other)

# Data keys (envelope encryption).
dk = kms.generate_data_key(KeyId=key, KeySpec="AES_256", EncryptionContext=ctx)
assert len(dk["Plaintext"]) == 32
assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"], EncryptionContext=ctx)["Plaintext"] == dk["Plaintext"]
dk128 = kms.generate_data_key(KeyId=key, KeySpec="AES_128")
assert len(dk128["Plaintext"]) == 16
dk64 = kms.generate_data_key(KeyId=key, NumberOfBytes=64)
assert len(dk64["Plaintext"]) == 64
wo = kms.generate_data_key_without_plaintext(KeyId=key, KeySpec="AES_256")
assert "Plaintext" not in wo
assert len(kms.decrypt(CiphertextBlob=wo["CiphertextBlob"])["Plaintext"]) == 32
refused("ValidationException", kms.generate_data_key, KeyId=key)

# Data key pairs: the private key comes back plain and encrypted, and matches the public.
pair = kms.generate_data_key_pair(KeyId=key, KeyPairSpec="ECC_NIST_P256", EncryptionContext=ctx)
priv = serialization.load_der_private_key(pair["PrivateKeyPlaintext"], None)
pub = serialization.load_der_public_key(pair["PublicKey"])
assert priv.public_key().public_numbers() == pub.public_numbers()
again = kms.decrypt(CiphertextBlob=pair["PrivateKeyCiphertextBlob"], EncryptionContext=ctx)["Plaintext"]
assert again == pair["PrivateKeyPlaintext"]
pair_wo = kms.generate_data_key_pair_without_plaintext(KeyId=key, KeyPairSpec="RSA_2048")
assert "PrivateKeyPlaintext" not in pair_wo and pair_wo["KeyPairSpec"] == "RSA_2048"

# Random.
assert len(kms.generate_random(NumberOfBytes=48)["Plaintext"]) == 48

# Signing: an ECC key; the signature verifies with the public key outside Arca too.
sk = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
assert sk["SigningAlgorithms"] == ["ECDSA_SHA_256"], sk
sig = kms.sign(KeyId=sk["KeyId"], Message=b"to be signed", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
assert kms.verify(KeyId=sk["KeyId"], Message=b"to be signed", Signature=sig,
                  SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]
refused("KMSInvalidSignatureException", kms.verify, KeyId=sk["KeyId"], Message=b"tampered",
        Signature=sig, SigningAlgorithm="ECDSA_SHA_256")
pk = kms.get_public_key(KeyId=sk["KeyId"])
assert pk["KeySpec"] == "ECC_NIST_P256" and pk["KeyUsage"] == "SIGN_VERIFY", pk
serialization.load_der_public_key(pk["PublicKey"]).verify(sig, b"to be signed", ec.ECDSA(hashes.SHA256()))
refused("InvalidKeyUsageException", kms.encrypt, KeyId=sk["KeyId"], Plaintext=b"x")

# RSA signing with a digest, PSS, checked with cryptography.
rk = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
digest = hashes.Hash(hashes.SHA256())
digest.update(b"rsa message")
d = digest.finalize()
rsig = kms.sign(KeyId=rk, Message=d, MessageType="DIGEST", SigningAlgorithm="RSASSA_PSS_SHA_256")["Signature"]
rpub = serialization.load_der_public_key(kms.get_public_key(KeyId=rk)["PublicKey"])
rpub.verify(rsig, b"rsa message", padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256())

# MACs.
mk = kms.create_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")["KeyMetadata"]
assert mk["MacAlgorithms"] == ["HMAC_SHA_256"], mk
mac = kms.generate_mac(KeyId=mk["KeyId"], Message=b"mac me", MacAlgorithm="HMAC_SHA_256")["Mac"]
assert kms.verify_mac(KeyId=mk["KeyId"], Message=b"mac me", Mac=mac, MacAlgorithm="HMAC_SHA_256")["MacValid"]
refused("KMSInvalidMacException", kms.verify_mac, KeyId=mk["KeyId"], Message=b"other", Mac=mac,
        MacAlgorithm="HMAC_SHA_256")

# Rotation: automatic schedule, on demand, the list, and old ciphertexts still open.
kms.enable_key_rotation(KeyId=key, RotationPeriodInDays=90)
st = kms.get_key_rotation_status(KeyId=key)
assert st["KeyRotationEnabled"] and st["RotationPeriodInDays"] == 90, st
refused("ValidationException", kms.enable_key_rotation, KeyId=key, RotationPeriodInDays=5000)
kms.rotate_key_on_demand(KeyId=key)
rot = kms.list_key_rotations(KeyId=key)["Rotations"]
assert len(rot) == 1 and rot[0]["RotationType"] == "ON_DEMAND", rot
assert kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)["Plaintext"] == b"attack at dawn"
kms.disable_key_rotation(KeyId=key)
assert not kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"]

# Tags.
kms.tag_resource(KeyId=key, Tags=[{"TagKey": "env", "TagValue": "test"}])
tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key)["Tags"]}
assert tags == {"team": "blue", "env": "test"}, tags
kms.untag_resource(KeyId=key, TagKeys=["team"])
assert [t["TagKey"] for t in kms.list_resource_tags(KeyId=key)["Tags"]] == ["env"]

# Disable and enable.
kms.disable_key(KeyId=key)
assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"
refused("DisabledException", kms.encrypt, KeyId=key, Plaintext=b"x")
kms.enable_key(KeyId=key)
kms.encrypt(KeyId=key, Plaintext=b"x")

# Scheduled deletion: pending, unusable, cancelled back to Disabled (as AWS leaves it).
refused("ValidationException", kms.schedule_key_deletion, KeyId=other, PendingWindowInDays=3)
sd = kms.schedule_key_deletion(KeyId=other, PendingWindowInDays=7)
assert sd["KeyState"] == "PendingDeletion" and sd["PendingWindowInDays"] == 7, sd
omd = kms.describe_key(KeyId=other)["KeyMetadata"]
assert omd["KeyState"] == "PendingDeletion" and "DeletionDate" in omd, omd
refused("KMSInvalidStateException", kms.encrypt, KeyId=other, Plaintext=b"x")
refused("KMSInvalidStateException", kms.enable_key, KeyId=other)
kms.cancel_key_deletion(KeyId=other)
assert kms.describe_key(KeyId=other)["KeyMetadata"]["KeyState"] == "Disabled"
kms.enable_key(KeyId=other)
assert kms.describe_key(KeyId=other)["KeyMetadata"]["KeyState"] == "Enabled"

# Listing keys, paged.
first = kms.list_keys(Limit=2)
assert len(first["Keys"]) == 2 and first["Truncated"] and "NextMarker" in first, first
seen = {k["KeyId"] for k in first["Keys"]}
marker = first["NextMarker"]
while marker:
    page = kms.list_keys(Limit=2, Marker=marker)
    seen |= {k["KeyId"] for k in page["Keys"]}
    marker = page.get("NextMarker")
assert {key, other, sk["KeyId"], rk, mk["KeyId"]} <= seen, seen
refused("InvalidMarkerException", kms.list_keys, Marker="garbage")

# Alias moves and deletion.
kms.update_alias(AliasName="alias/app-key", TargetKeyId=other)
assert kms.describe_key(KeyId="alias/app-key")["KeyMetadata"]["KeyId"] == other
kms.delete_alias(AliasName="alias/app-key")
refused("NotFoundException", kms.describe_key, KeyId="alias/app-key")

# Bring your own key: a key of origin EXTERNAL, material wrapped under Arca's wrapping key.
import datetime
from cryptography.hazmat.primitives.keywrap import aes_key_wrap_with_padding

ext = kms.create_key(Origin="EXTERNAL", Description="byok")["KeyMetadata"]
xid = ext["KeyId"]
assert ext["KeyState"] == "PendingImport" and ext["Origin"] == "EXTERNAL" and not ext["Enabled"], ext
refused("KMSInvalidStateException", kms.encrypt, KeyId=xid, Plaintext=b"x")
oaep256 = padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None)
params = kms.get_parameters_for_import(KeyId=xid, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_3072")
assert params["KeyId"].endswith(xid) and params["ParametersValidTo"] > datetime.datetime.now(datetime.timezone.utc)
wpub = serialization.load_der_public_key(params["PublicKey"])
assert wpub.key_size == 3072
material = os.urandom(32)
refused("InvalidCiphertextException", kms.import_key_material, KeyId=xid, ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=b"\x00" * 384, ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
refused("InvalidImportTokenException", kms.import_key_material, KeyId=xid, ImportToken=b"forged token",
        EncryptedKeyMaterial=wpub.encrypt(material, oaep256), ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
refused("IncorrectKeyMaterialException", kms.import_key_material, KeyId=xid, ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wpub.encrypt(b"too short", oaep256), ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
kms.import_key_material(KeyId=xid, ImportToken=params["ImportToken"],
                        EncryptedKeyMaterial=wpub.encrypt(material, oaep256),
                        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
xmd = kms.describe_key(KeyId=xid)["KeyMetadata"]
assert xmd["KeyState"] == "Enabled" and xmd["ExpirationModel"] == "KEY_MATERIAL_DOES_NOT_EXPIRE", xmd
xct = kms.encrypt(KeyId=xid, Plaintext=b"byok data")["CiphertextBlob"]
assert kms.decrypt(CiphertextBlob=xct)["Plaintext"] == b"byok data"
# The token is for this key only; other keys refuse it, and keys not made EXTERNAL take none.
other_ext = kms.create_key(Origin="EXTERNAL")["KeyMetadata"]["KeyId"]
refused("InvalidImportTokenException", kms.import_key_material, KeyId=other_ext, ImportToken=params["ImportToken"],
        EncryptedKeyMaterial=wpub.encrypt(material, oaep256), ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
refused("UnsupportedOperationException", kms.get_parameters_for_import, KeyId=key,
        WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048")
# Deleting the material makes the key wait for an import; only the same material comes back.
kms.delete_imported_key_material(KeyId=xid)
assert kms.describe_key(KeyId=xid)["KeyMetadata"]["KeyState"] == "PendingImport"
refused("KMSInvalidStateException", kms.decrypt, CiphertextBlob=xct)
p2 = kms.get_parameters_for_import(KeyId=xid, WrappingAlgorithm="RSA_AES_KEY_WRAP_SHA_256", WrappingKeySpec="RSA_2048")
w2 = serialization.load_der_public_key(p2["PublicKey"])


def rsa_aes_wrap(pub, secret):
    eph = os.urandom(32)
    return pub.encrypt(eph, oaep256) + aes_key_wrap_with_padding(eph, secret)


refused("IncorrectKeyMaterialException", kms.import_key_material, KeyId=xid, ImportToken=p2["ImportToken"],
        EncryptedKeyMaterial=rsa_aes_wrap(w2, os.urandom(32)), ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE")
valid_to = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=1)
kms.import_key_material(KeyId=xid, ImportToken=p2["ImportToken"], EncryptedKeyMaterial=rsa_aes_wrap(w2, material),
                        ExpirationModel="KEY_MATERIAL_EXPIRES", ValidTo=valid_to)
xmd = kms.describe_key(KeyId=xid)["KeyMetadata"]
assert xmd["KeyState"] == "Enabled" and xmd["ExpirationModel"] == "KEY_MATERIAL_EXPIRES" and "ValidTo" in xmd, xmd
assert kms.decrypt(CiphertextBlob=xct)["Plaintext"] == b"byok data"
print(f"EXTERNAL_KEY={xid}")

# What Arca does not offer answers AWS's "not supported", never a crash.
assert kms.describe_custom_key_stores()["CustomKeyStores"] == []
refused("UnsupportedOperationException", kms.replicate_key, KeyId=key, ReplicaRegion="eu-west-1")
refused("UnsupportedOperationException", kms.create_key, KeySpec="ECC_SECG_P256K1", KeyUsage="SIGN_VERIFY")

print("OK")
