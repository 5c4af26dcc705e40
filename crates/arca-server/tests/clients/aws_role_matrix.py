"""One principal's view of the AWS-compatible door, for the access matrix (issue 17): calls
every operation the door performs, and each one it knows but does not offer, once with the
pair in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY; prints one JSON object, operation ->
{"code": "ok" or the AWS error code, "request_id": the door's x-amzn-RequestId} (ListKeys
adds "keys", the ids it listed), then OK.

The objects the calls work on are made first, fresh for this run, by the tenant's admin
(OWNER_AK/OWNER_SK): an AES key and a ciphertext of it, an ECC signing key and a signature,
an HMAC key and a MAC, keys to disable/enable, to schedule for deletion, to set the policy
of, two EXTERNAL keys (one with import parameters and wrapped material ready), an alias to
move and delete, and two grants (to APP_GRANTEE) to retire and revoke.

Environment: the endpoint and CA as for aws_boto3.py, OWNER_AK/OWNER_SK, GRANTEE (an ARN for
the caller's CreateGrant), APP_GRANTEE (an ARN of the tenant for the owner's grants), TAG (a
suffix that makes names unique), UNSUPPORTED (JSON list of the operation names the door
answers UnsupportedOperationException).
"""

import json
import os
import urllib.error
import urllib.request
import ssl

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.config import Config
from botocore.credentials import Credentials
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

ENDPOINT, CA = os.environ["AWS_ENDPOINT_URL"], os.environ["AWS_CA_BUNDLE"]
# One attempt per call: each call is one request, and one request id.
CONFIG = Config(retries={"max_attempts": 1, "mode": "standard"})


def client(ak=None, sk=None):
    kw = {} if ak is None else {"aws_access_key_id": ak, "aws_secret_access_key": sk}
    return boto3.client("kms", endpoint_url=ENDPOINT, verify=CA, region_name="us-east-1", config=CONFIG, **kw)


kms = client()
own = client(os.environ["OWNER_AK"], os.environ["OWNER_SK"])
tag = os.environ["TAG"]


def new_key(**kw):
    return own.create_key(Description="matrix setup " + tag, **kw)["KeyMetadata"]["KeyId"]


key = new_key()
ct = own.encrypt(KeyId=key, Plaintext=b"m")["CiphertextBlob"]
sig = new_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")
signature = own.sign(KeyId=sig, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
mac_key = new_key(KeySpec="HMAC_256", KeyUsage="GENERATE_VERIFY_MAC")
mac = own.generate_mac(KeyId=mac_key, Message=b"m", MacAlgorithm="HMAC_SHA_256")["Mac"]
toggle, doomed, policy_key = new_key(), new_key(), new_key()
# The key's policy as the caller would write it: in its own account (another tenant's
# principal names its own), so that PutKeyPolicy fails, if at all, on the key.
policy_doc = own.get_key_policy(KeyId=policy_key, PolicyName="default")["Policy"].replace(
    own.describe_key(KeyId=policy_key)["KeyMetadata"]["AWSAccountId"], os.environ["GRANTEE"].split(":")[4])
moved = "alias/mx-moved-" + tag
own.create_alias(AliasName=moved, TargetKeyId=key)
grants = [own.create_grant(KeyId=key, GranteePrincipal=os.environ["APP_GRANTEE"], Operations=["Encrypt"])["GrantId"]
          for _ in range(2)]
external, external2 = new_key(Origin="EXTERNAL"), new_key(Origin="EXTERNAL")
params = own.get_parameters_for_import(KeyId=external, WrappingAlgorithm="RSAES_OAEP_SHA_256",
                                       WrappingKeySpec="RSA_2048")
wrapped = serialization.load_der_public_key(params["PublicKey"]).encrypt(
    os.urandom(32), padding.OAEP(mgf=padding.MGF1(hashes.SHA256()), algorithm=hashes.SHA256(), label=None))

calls = {
    "CreateKey": lambda: kms.create_key(Description="matrix " + tag),
    "DescribeKey": lambda: kms.describe_key(KeyId=key),
    "ListKeys": lambda: kms.list_keys(),
    "DisableKey": lambda: kms.disable_key(KeyId=toggle),
    "EnableKey": lambda: kms.enable_key(KeyId=toggle),
    "ScheduleKeyDeletion": lambda: kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7),
    "CancelKeyDeletion": lambda: kms.cancel_key_deletion(KeyId=doomed),
    "Encrypt": lambda: kms.encrypt(KeyId=key, Plaintext=b"m"),
    "Decrypt": lambda: kms.decrypt(CiphertextBlob=ct),
    "ReEncrypt": lambda: kms.re_encrypt(CiphertextBlob=ct, DestinationKeyId=key),
    "GenerateDataKey": lambda: kms.generate_data_key(KeyId=key, KeySpec="AES_256"),
    "GenerateDataKeyWithoutPlaintext": lambda: kms.generate_data_key_without_plaintext(KeyId=key, KeySpec="AES_256"),
    "GenerateDataKeyPair": lambda: kms.generate_data_key_pair(KeyId=key, KeyPairSpec="ECC_NIST_P256"),
    "GenerateDataKeyPairWithoutPlaintext": lambda: kms.generate_data_key_pair_without_plaintext(
        KeyId=key, KeyPairSpec="ECC_NIST_P256"),
    "GenerateRandom": lambda: kms.generate_random(NumberOfBytes=8),
    "Sign": lambda: kms.sign(KeyId=sig, Message=b"m", SigningAlgorithm="ECDSA_SHA_256"),
    "Verify": lambda: kms.verify(KeyId=sig, Message=b"m", Signature=signature, SigningAlgorithm="ECDSA_SHA_256"),
    "GenerateMac": lambda: kms.generate_mac(KeyId=mac_key, Message=b"m", MacAlgorithm="HMAC_SHA_256"),
    "VerifyMac": lambda: kms.verify_mac(KeyId=mac_key, Message=b"m", Mac=mac, MacAlgorithm="HMAC_SHA_256"),
    "GetPublicKey": lambda: kms.get_public_key(KeyId=sig),
    "EnableKeyRotation": lambda: kms.enable_key_rotation(KeyId=key),
    "DisableKeyRotation": lambda: kms.disable_key_rotation(KeyId=key),
    "GetKeyRotationStatus": lambda: kms.get_key_rotation_status(KeyId=key),
    "RotateKeyOnDemand": lambda: kms.rotate_key_on_demand(KeyId=key),
    "ListKeyRotations": lambda: kms.list_key_rotations(KeyId=key),
    "CreateAlias": lambda: kms.create_alias(AliasName="alias/matrix-" + tag, TargetKeyId=key),
    "UpdateAlias": lambda: kms.update_alias(AliasName=moved, TargetKeyId=toggle),
    "DeleteAlias": lambda: kms.delete_alias(AliasName=moved),
    "ListAliases": lambda: kms.list_aliases(),
    "TagResource": lambda: kms.tag_resource(KeyId=key, Tags=[{"TagKey": "matrix", "TagValue": tag}]),
    "UntagResource": lambda: kms.untag_resource(KeyId=key, TagKeys=["matrix"]),
    "ListResourceTags": lambda: kms.list_resource_tags(KeyId=key),
    "UpdateKeyDescription": lambda: kms.update_key_description(KeyId=key, Description=tag),
    "DescribeCustomKeyStores": lambda: kms.describe_custom_key_stores(),
    "GetParametersForImport": lambda: kms.get_parameters_for_import(
        KeyId=external2, WrappingAlgorithm="RSAES_OAEP_SHA_256", WrappingKeySpec="RSA_2048"),
    "GetKeyPolicy": lambda: kms.get_key_policy(KeyId=policy_key, PolicyName="default"),
    "PutKeyPolicy": lambda: kms.put_key_policy(KeyId=policy_key, PolicyName="default", Policy=policy_doc),
    "ListKeyPolicies": lambda: kms.list_key_policies(KeyId=policy_key),
    "CreateGrant": lambda: kms.create_grant(KeyId=key, GranteePrincipal=os.environ["GRANTEE"], Operations=["Encrypt"]),
    "ListGrants": lambda: kms.list_grants(KeyId=key),
    "RetireGrant": lambda: kms.retire_grant(KeyId=key, GrantId=grants[0]),
    "RevokeGrant": lambda: kms.revoke_grant(KeyId=key, GrantId=grants[1]),
    "ImportKeyMaterial": lambda: kms.import_key_material(
        KeyId=external, ImportToken=params["ImportToken"], EncryptedKeyMaterial=wrapped,
        ExpirationModel="KEY_MATERIAL_DOES_NOT_EXPIRE"),
    "DeleteImportedKeyMaterial": lambda: kms.delete_imported_key_material(KeyId=external),
}


def unsupported(op):
    """A signed request botocore may have no method for: (status, request id, __type)."""
    creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
    req = AWSRequest(method="POST", url=ENDPOINT + "/", data=b"{}",
                     headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService." + op})
    SigV4Auth(creds, "kms", "us-east-1").add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=p.body, method="POST", headers=dict(p.headers))
    try:
        with urllib.request.urlopen(r, context=ssl.create_default_context(cafile=CA)) as resp:
            return "ok", resp.headers["x-amzn-RequestId"]
    except urllib.error.HTTPError as e:
        return json.loads(e.read())["__type"], e.headers["x-amzn-RequestId"]


out = {}
for name, call in calls.items():
    try:
        r = call()
        out[name] = {"code": "ok", "request_id": r["ResponseMetadata"]["RequestId"]}
        if name == "ListKeys":
            out[name]["keys"] = [k["KeyId"] for k in r["Keys"]]
    except ClientError as e:
        out[name] = {"code": e.response["Error"]["Code"], "request_id": e.response["ResponseMetadata"]["RequestId"]}
for name in json.loads(os.environ["UNSUPPORTED"]):
    code, rid = unsupported(name)
    out[name] = {"code": code, "request_id": rid}
print(json.dumps(out))
print("OK")
