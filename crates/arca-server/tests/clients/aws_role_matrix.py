"""One principal's view of the AWS-compatible door, for the access matrix (issue 17): calls
each operation once with the pair in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY and prints
one JSON object, operation -> "ok" or the AWS error code, then OK.

Environment: the endpoint and CA as for aws_boto3.py, KEY (an AES key of the tenant under
test), TOGGLE and DOOMED (keys for DisableKey/EnableKey and ScheduleKeyDeletion/
CancelKeyDeletion), CIPHERTEXT (base64, made under KEY), GRANTEE (an ARN for CreateGrant),
TAG (a suffix that makes names unique).
"""

import base64
import json
import os

import boto3
from botocore.exceptions import ClientError

kms = boto3.client("kms", endpoint_url=os.environ["AWS_ENDPOINT_URL"], verify=os.environ["AWS_CA_BUNDLE"],
                   region_name="us-east-1")
key, toggle, doomed = os.environ["KEY"], os.environ["TOGGLE"], os.environ["DOOMED"]
ct = base64.b64decode(os.environ["CIPHERTEXT"])
tag = os.environ["TAG"]
calls = {
    "CreateKey": lambda: kms.create_key(Description="matrix " + tag),
    "ListKeys": lambda: kms.list_keys(),
    "DescribeKey": lambda: kms.describe_key(KeyId=key),
    "Encrypt": lambda: kms.encrypt(KeyId=key, Plaintext=b"m"),
    "Decrypt": lambda: kms.decrypt(CiphertextBlob=ct),
    "GenerateDataKey": lambda: kms.generate_data_key(KeyId=key, KeySpec="AES_256"),
    "GenerateRandom": lambda: kms.generate_random(NumberOfBytes=8),
    "GetKeyPolicy": lambda: kms.get_key_policy(KeyId=key, PolicyName="default"),
    "ListAliases": lambda: kms.list_aliases(),
    "CreateAlias": lambda: kms.create_alias(AliasName="alias/matrix-" + tag, TargetKeyId=key),
    "UpdateKeyDescription": lambda: kms.update_key_description(KeyId=key, Description=tag),
    "ListGrants": lambda: kms.list_grants(KeyId=key),
    "CreateGrant": lambda: kms.create_grant(KeyId=key, GranteePrincipal=os.environ["GRANTEE"], Operations=["Encrypt"]),
    "DisableKey": lambda: kms.disable_key(KeyId=toggle),
    "EnableKey": lambda: kms.enable_key(KeyId=toggle),
    "ScheduleKeyDeletion": lambda: kms.schedule_key_deletion(KeyId=doomed, PendingWindowInDays=7),
    "CancelKeyDeletion": lambda: kms.cancel_key_deletion(KeyId=doomed),
}
out = {}
for name, call in calls.items():
    try:
        call()
        out[name] = "ok"
    except ClientError as e:
        out[name] = e.response["Error"]["Code"]
print(json.dumps(out))
print("OK")
