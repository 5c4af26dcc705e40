"""One principal's view of an XKS proxy store, for the access matrix (issue 17): calls each
path of XKS_PATHS (a JSON list: "/health", "/keys/<id>/metadata", ".../encrypt",
".../decrypt") once, signed (service kms-xks-proxy) with XKS_AK/XKS_SK, with a fresh
kmsRequestId; prints one JSON object, path -> {"status": HTTP status, "error": errorName or
"ok", "request_id": the kmsRequestId, which the audit trail keeps}, then OK.

The ciphertext to decrypt is made first by the store's owner (OWNER_AK/OWNER_SK) under the
key the paths name. A path this script does not know fails it: a route added to the door
needs its body here, and its row in the matrix.

Environment: XKS_URL (https://host:port/<prefix>/kms/xks/v1), AWS_CA_BUNDLE, XKS_AK/XKS_SK,
OWNER_AK/OWNER_SK, XKS_PATHS.
"""

import base64
import json
import os
import ssl
import urllib.error
import urllib.request
import uuid

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

URL = os.environ["XKS_URL"]
CTX = ssl.create_default_context(cafile=os.environ["AWS_CA_BUNDLE"])


def call(path, body, ak, sk):
    """One signed request: (status, parsed body, kmsRequestId)."""
    rid = str(uuid.uuid4())
    body = dict(body, requestMetadata={
        "awsPrincipalArn": "arn:aws:iam::123456789012:user/matrix",
        "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "kmsOperation": path.rsplit("/", 1)[-1],
        "kmsRequestId": rid,
    })
    req = AWSRequest(method="POST", url=URL + path, data=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(ak, sk), "kms-xks-proxy", "us-east-1").add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=p.body, method="POST", headers=dict(p.headers))
    try:
        with urllib.request.urlopen(r, context=CTX) as resp:
            return resp.status, json.loads(resp.read() or b"{}"), rid
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), rid


def b64(b):
    return base64.b64encode(b).decode()


def encrypt_body():
    return {"plaintext": b64(b"m"), "encryptionAlgorithm": "AES_GCM"}


paths = json.loads(os.environ["XKS_PATHS"])
owner = (os.environ["OWNER_AK"], os.environ["OWNER_SK"])
me = (os.environ["XKS_AK"], os.environ["XKS_SK"])
key_path = next(p for p in paths if p.endswith("/encrypt"))
status, enc, _ = call(key_path, encrypt_body(), *owner)
assert status == 200, (status, enc)

out = {}
for path in paths:
    op = path.rsplit("/", 1)[-1]
    if op == "health" or op == "metadata":
        body = {}
    elif op == "encrypt":
        body = encrypt_body()
    elif op == "decrypt":
        body = {k: enc[k] for k in ("ciphertext", "ciphertextMetadata", "initializationVector", "authenticationTag")}
        body["encryptionAlgorithm"] = "AES_GCM"
    else:
        raise SystemExit(f"the matrix script has no request for {path}")
    status, answer, rid = call(path, body, *me)
    out[path] = {"status": status, "error": answer.get("errorName", "ok"), "request_id": rid}
print(json.dumps(out))
print("OK")
