"""Requests Arca's AWS-compatible door refuses before any operation, signed by botocore's
SigV4 signer (or not signed at all) and sent as they are.

Each case prints one line `name status`; the Rust test then finds each refusal in the
audit trail. BODY_LIMIT is the door's body limit. Prints OK at the end; a case that is
answered 2xx raises.
"""

import os
import ssl
import urllib.error
import urllib.request

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

endpoint = os.environ["AWS_ENDPOINT_URL"]
ctx = ssl.create_default_context(cafile=os.environ["AWS_CA_BUNDLE"])
creds = Credentials(os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"])
limit = int(os.environ["BODY_LIMIT"])


def send(name, method, path, body=b"", headers=None, sign=True):
    req = AWSRequest(method=method, url=endpoint + path, data=body, headers=headers or {})
    if sign:
        SigV4Auth(creds, "kms", "us-east-1").add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(
        p.url, data=p.body or None, method=method, headers=dict(p.headers)
    )
    try:
        with urllib.request.urlopen(r, context=ctx) as resp:
            status = resp.status
    except urllib.error.HTTPError as e:
        status = e.code
    except (ConnectionError, urllib.error.URLError):
        # The server may answer and close before an oversized body is all sent.
        status = "closed"
        print(name, status)
        return
    assert status >= 400, f"{name}: answered {status}"
    print(name, status)


kms = {"Content-Type": "application/x-amz-json-1.1"}
send("signed-get", "GET", "/")
send("unsigned-get", "GET", "/", sign=False)
send("signed-put", "PUT", "/", b"{}", kms)
send("unknown-target", "POST", "/", b"{}", {**kms, "X-Amz-Target": "Nope.ListKeys"})
send("unknown-operation", "POST", "/", b"{}", {**kms, "X-Amz-Target": "TrentService.Bogus"})
send(
    "oversized",
    "POST",
    "/",
    b"{" + b" " * (limit + 10) + b"}",
    {**kms, "X-Amz-Target": "TrentService.ListKeys"},
)
send(
    "bad-sigv4",
    "POST",
    "/",
    b"{}",
    {
        **kms,
        "X-Amz-Target": "TrentService.ListKeys",
        "Authorization": "AWS4-HMAC-SHA256 nonsense",
    },
    sign=False,
)
send("unknown-store", "POST", "/keystores/nowhere/kms/xks/v1/health", b"{}", sign=False)
print("OK")
