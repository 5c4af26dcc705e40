"""A grant is a key policy change: under a quorum rule on PutKeyPolicy, AWS's CreateGrant and
RevokeGrant wait for approval like PutKeyPolicy itself (issue 17: a tenant admin granted
itself Decrypt through CreateGrant, which escaped the rule).

Environment: as aws_grants.py, plus GRANTS_STEP: `request` (make a key and ask for a grant
to `app`: refused with AccessDeniedException naming the approval request; app still cannot
use the key; prints `KEY <id>` and `APPROVAL <id>`), or `granted` (KEY set: app can now
encrypt, and revoking the grant waits for approval too).
Prints OK at the end; any failed check raises.
"""

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
grantee = f"arn:aws:iam::{acct}:user/app"
if os.environ["GRANTS_STEP"] == "request":
    key = admin.create_key(Description="grants under quorum")["KeyMetadata"]["KeyId"]
    msg = refused("AccessDeniedException", admin.create_grant, KeyId=key, GranteePrincipal=grantee,
                  Operations=["Encrypt", "Decrypt"])
    m = re.search(r"approval request ([0-9a-f-]{36})", msg)
    assert m and "CreateGrant" in msg, msg
    # Nothing changed: no grant, and app still cannot use the key.
    assert admin.list_grants(KeyId=key)["Grants"] == []
    refused("AccessDeniedException", app.encrypt, KeyId=key, Plaintext=b"x")
    print("KEY", key)
    print("APPROVAL", m.group(1))
else:
    key = os.environ["KEY"]
    ct = app.encrypt(KeyId=key, Plaintext=b"approved grant")["CiphertextBlob"]
    assert app.decrypt(CiphertextBlob=ct)["Plaintext"] == b"approved grant"
    [g] = admin.list_grants(KeyId=key)["Grants"]
    msg = refused("AccessDeniedException", admin.revoke_grant, KeyId=key, GrantId=g["GrantId"])
    assert "approval request" in msg, msg
    assert len(admin.list_grants(KeyId=key)["Grants"]) == 1
print("OK")
