"""Key policies and grants through the AWS API (boto3): GetKeyPolicy/PutKeyPolicy map onto
Arca's key policies, and a grant lets another principal use a key until it is retired or
revoked.

Environment: GRANTS_STEP (see below; unset for the main run), the endpoint and CA as for
aws_boto3.py, the admin's pair in
AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, the pair of principal `app` (no key policy lets
it use keys) in APP_AK/APP_SK, and ACCOUNT (the tenant's account id in ARNs).
Prints OK at the end; any failed check raises.
"""

import json
import os
import re

import boto3
from botocore.exceptions import ClientError


def client(ak=None, sk=None):
    return boto3.client(
        "kms", endpoint_url=os.environ["AWS_ENDPOINT_URL"], verify=os.environ["AWS_CA_BUNDLE"],
        region_name="us-east-1",
        aws_access_key_id=ak or os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=sk or os.environ["AWS_SECRET_ACCESS_KEY"],
    )


def refused(code, fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        assert e.response["Error"]["Code"] == code, f"{fn.__name__}: expected {code}: {e}"
        return e.response["Error"]["Message"]
    raise AssertionError(f"{fn.__name__} should have failed with {code}")


admin, app = client(), client(os.environ["APP_AK"], os.environ["APP_SK"])
acct = os.environ["ACCOUNT"]

# Under a quorum rule on PutKeyPolicy (GRANTS_STEP set), a grant is a policy change and
# waits for approval like PutKeyPolicy itself (issue 17: CreateGrant escaped the rule).
# `request`: make a key and ask for a grant to `app`: refused, naming the approval request;
# nothing changed (prints `KEY <id>` and `APPROVAL <id>`). `granted` (KEY set, after the
# approval ran): app can use the key, and revoking the grant waits for approval too.
step = os.environ.get("GRANTS_STEP")
if step == "request":
    key = admin.create_key(Description="grants under quorum")["KeyMetadata"]["KeyId"]
    msg = refused("AccessDeniedException", admin.create_grant, KeyId=key,
                  GranteePrincipal=f"arn:aws:iam::{acct}:user/app", Operations=["Encrypt", "Decrypt"])
    m = re.search(r"approval request ([0-9a-f-]{36})", msg)
    assert m and "CreateGrant" in msg, msg
    assert admin.list_grants(KeyId=key)["Grants"] == []
    refused("AccessDeniedException", app.encrypt, KeyId=key, Plaintext=b"x")
    print("KEY", key)
    print("APPROVAL", m.group(1))
    print("OK")
    raise SystemExit(0)
if step == "granted":
    key = os.environ["KEY"]
    ct = app.encrypt(KeyId=key, Plaintext=b"approved grant")["CiphertextBlob"]
    assert app.decrypt(CiphertextBlob=ct)["Plaintext"] == b"approved grant"
    [g] = admin.list_grants(KeyId=key)["Grants"]
    msg = refused("AccessDeniedException", admin.revoke_grant, KeyId=key, GrantId=g["GrantId"])
    assert "approval request" in msg, msg
    assert len(admin.list_grants(KeyId=key)["Grants"]) == 1
    print("OK")
    raise SystemExit(0)
key = admin.create_key(Description="policies and grants")["KeyMetadata"]["KeyId"]

# The key's policy, as an AWS document.
assert admin.list_key_policies(KeyId=key)["PolicyNames"] == ["default"]
doc = json.loads(admin.get_key_policy(KeyId=key, PolicyName="default")["Policy"])
assert doc["Version"] == "2012-10-17", doc
st = doc["Statement"][0]
assert st["Effect"] == "Allow" and st["Action"] == "kms:*", st
assert st["Principal"] == {"AWS": f"arn:aws:iam::{acct}:role/tenant-admin"}, st
refused("NotFoundException", admin.get_key_policy, KeyId=key, PolicyName="other")

# A new policy: a deny under an encryption-context condition is enforced.
admins = {"Sid": "admins", "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{acct}:role/tenant-admin"},
          "Action": "kms:*", "Resource": "*"}
deny = {"Sid": "no-secret-dept", "Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*",
        "Condition": {"StringEquals": {"kms:EncryptionContext:dept": "secret"}}}
admin.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps({"Version": "2012-10-17", "Statement": [admins, deny]}))
refused("AccessDeniedException", admin.encrypt, KeyId=key, Plaintext=b"x", EncryptionContext={"dept": "secret"})
admin.encrypt(KeyId=key, Plaintext=b"x", EncryptionContext={"dept": "open"})
back = json.loads(admin.get_key_policy(KeyId=key)["Policy"])["Statement"]
assert [s.get("Sid") for s in back] == ["admins", "no-secret-dept"], back
# What Arca cannot enforce, and a policy that would lock its author out, are refused.
for bad in [
    {"Version": "2012-10-17", "Statement": [admins, {"Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "kms:Decrypt"}]},
    {"Version": "2012-10-17", "Statement": [{**admins, "Condition": {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}}]},
    # Denying its author PutKeyPolicy would leave nobody able to change the policy back.
    {"Version": "2012-10-17", "Statement": [admins, {"Effect": "Deny", "Principal": {"AWS": f"arn:aws:iam::{acct}:role/tenant-admin"},
                                                     "Action": "kms:PutKeyPolicy", "Resource": "*"}]},
]:
    refused("MalformedPolicyDocumentException", admin.put_key_policy, KeyId=key, PolicyName="default", Policy=json.dumps(bad))
refused("MalformedPolicyDocumentException", admin.put_key_policy, KeyId=key, PolicyName="default", Policy="{not json")
# CreateKey with a policy.
k2 = admin.create_key(Policy=json.dumps({"Version": "2012-10-17", "Statement": [admins]}))["KeyMetadata"]["KeyId"]
assert json.loads(admin.get_key_policy(KeyId=k2)["Policy"])["Statement"][0]["Sid"] == "admins"

# Grants: app may not use the key until granted.
refused("AccessDeniedException", app.encrypt, KeyId=key, Plaintext=b"x")
g = admin.create_grant(KeyId=key, GranteePrincipal=f"arn:aws:iam::{acct}:user/app", Operations=["Encrypt", "Decrypt"],
                       RetiringPrincipal=f"arn:aws:iam::{acct}:user/app", Name="app-use",
                       Constraints={"EncryptionContextSubset": {"purpose": "billing"}})
ct = app.encrypt(KeyId=key, Plaintext=b"granted", EncryptionContext={"purpose": "billing", "x": "y"})["CiphertextBlob"]
assert app.decrypt(CiphertextBlob=ct, EncryptionContext={"purpose": "billing", "x": "y"})["Plaintext"] == b"granted"
refused("AccessDeniedException", app.encrypt, KeyId=key, Plaintext=b"x")  # no context: outside the grant
refused("AccessDeniedException", app.generate_data_key, KeyId=key, KeySpec="AES_256", EncryptionContext={"purpose": "billing"})
grants = admin.list_grants(KeyId=key)["Grants"]
assert len(grants) == 1, grants
gr = grants[0]
assert gr["GrantId"] == g["GrantId"] and gr["Name"] == "app-use" and sorted(gr["Operations"]) == ["Decrypt", "Encrypt"], gr
assert gr["GranteePrincipal"] == f"arn:aws:iam::{acct}:user/app", gr
assert gr["Constraints"] == {"EncryptionContextSubset": {"purpose": "billing"}}, gr
# Grants are not in the policy document, and a new policy keeps them.
assert all(not s.get("Sid", "").startswith("grant") for s in json.loads(admin.get_key_policy(KeyId=key)["Policy"])["Statement"])
admin.put_key_policy(KeyId=key, PolicyName="default", Policy=json.dumps({"Version": "2012-10-17", "Statement": [admins]}))
assert len(admin.list_grants(KeyId=key)["Grants"]) == 1
# The grantee (its retiring principal) retires it with the token; then it no longer works.
app.retire_grant(GrantToken=g["GrantToken"])
refused("AccessDeniedException", app.encrypt, KeyId=key, Plaintext=b"x", EncryptionContext={"purpose": "billing"})
assert admin.list_grants(KeyId=key)["Grants"] == []
# An admin revokes; revoking again names no grant.
g2 = admin.create_grant(KeyId=key, GranteePrincipal=f"arn:aws:iam::{acct}:user/app", Operations=["Encrypt"])
app.encrypt(KeyId=key, Plaintext=b"x")
refused("AccessDeniedException", app.revoke_grant, KeyId=key, GrantId=g2["GrantId"])
admin.revoke_grant(KeyId=key, GrantId=g2["GrantId"])
refused("InvalidGrantIdException", admin.revoke_grant, KeyId=key, GrantId=g2["GrantId"])
refused("AccessDeniedException", app.encrypt, KeyId=key, Plaintext=b"x")
refused("UnsupportedOperationException", admin.create_grant, KeyId=key, GranteePrincipal=f"arn:aws:iam::{acct}:user/app",
        Operations=["Encrypt"], Constraints={"EncryptionContextEquals": {"a": "b"}})
refused("ValidationException", admin.create_grant, KeyId=key, GranteePrincipal=f"arn:aws:iam::{acct}:user/app",
        Operations=["ScheduleKeyDeletion"])
print("OK")
