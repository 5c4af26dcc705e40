"""SigV4 refusals at Arca's AWS-compatible door, as botocore sees them.

AUTH_MODE=bad: a wrong secret, an unknown access key id and an unsigned request.
AUTH_MODE=expired: the server's clock is 10 minutes ahead of the signature.
AUTH_MODE=revoked: the access key was revoked.
Prints OK at the end; any failed check raises.
"""

import os
import ssl
import urllib.request

import boto3
from botocore.exceptions import ClientError

endpoint = os.environ["AWS_ENDPOINT_URL"]
ca = os.environ["AWS_CA_BUNDLE"]


def client(access_key=None, secret=None):
    return boto3.client(
        "kms",
        endpoint_url=endpoint,
        verify=ca,
        region_name="us-east-1",
        aws_access_key_id=access_key or os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret or os.environ["AWS_SECRET_ACCESS_KEY"],
    )


def refused(code, c, contains=""):
    try:
        c.list_keys()
    except ClientError as e:
        got = e.response["Error"]["Code"]
        msg = e.response["Error"].get("Message", "")
        assert got == code, f"expected {code}, got {got}: {msg}"
        assert contains in msg, f"{contains!r} not in {msg!r}"
        return
    raise AssertionError(f"list_keys should have failed with {code}")


mode = os.environ["AUTH_MODE"]
if mode == "bad":
    client().list_keys()  # the right pair works
    refused("InvalidSignatureException", client(secret="x" * 40), "signature")
    refused("UnrecognizedClientException", client(access_key="ARCAAAAAAAAAAAAAAAAA"))
    refused("UnrecognizedClientException", client(access_key="AKIAIOSFODNN7EXAMPLE"))
    # A client signing for another region is refused as AWS refuses it.
    other = boto3.client(
        "kms", endpoint_url=endpoint, verify=ca, region_name="eu-west-1",
        aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
    )
    refused("InvalidSignatureException", other, "region")
    # No signature at all.
    req = urllib.request.Request(
        endpoint + "/",
        data=b"{}",
        method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "TrentService.ListKeys",
        },
    )
    try:
        urllib.request.urlopen(req, context=ssl.create_default_context(cafile=ca))
        raise AssertionError("an unsigned request was served")
    except urllib.error.HTTPError as e:
        assert e.code == 400, e.code
        body = e.read().decode()
        assert "MissingAuthenticationTokenException" in body, body
elif mode == "expired":
    refused("InvalidSignatureException", client(), "Signature expired")
elif mode == "revoked":
    refused("UnrecognizedClientException", client(), "revoked")
else:
    raise SystemExit(f"unknown AUTH_MODE {mode}")
print("OK")
