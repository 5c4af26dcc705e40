"""What the AWS-compatible door and the XKS proxy API report about a key, and what they then
do with it, for keys in every lifecycle state: the clients' side of
`every_door_reports_what_it_does_in_every_state` (aws_clients.rs), which compares the two.

Environment: AWS_ENDPOINT_URL / AWS_CA_BUNDLE / AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY
(boto3), XKS_URL (https://host:port/<prefix>/kms/xks/v1) signed with the same pair,
DOOR_MODE=prepare or probe, and DOOR_KEYS, a JSON object: state -> {"aes": id, "ec": id,
"ct": an Arca ciphertext (base64) of the AES key, "sig": a signature (base64) by the EC key,
"xks": what `prepare` returned for the AES key}. `prepare` encrypts over XKS with each AES
key (all still active) and prints {state: xks-ciphertext}; `probe` runs every operation on
every key and prints {state: {"aws": {...}, "xks": {...}}}: for each operation "ok" or the
error name, and what the door reported (KeyState/Enabled, keyStatus). The JSON is the line
after RESULT; OK ends the output.
"""

import base64
import json
import os
import ssl
import urllib.error
import urllib.request
import uuid

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import ClientError

URL = os.environ["XKS_URL"]
CTX = ssl.create_default_context(cafile=os.environ["AWS_CA_BUNDLE"])
AK, SK = os.environ["AWS_ACCESS_KEY_ID"], os.environ["AWS_SECRET_ACCESS_KEY"]
KEYS = json.loads(os.environ["DOOR_KEYS"])
PT = b"door states"


def xks(path, body, op):
    body = dict(body)
    body["requestMetadata"] = {
        "awsPrincipalArn": "arn:aws:iam::123456789012:user/alice",
        "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "kmsOperation": op,
        "kmsRequestId": str(uuid.uuid4()),
    }
    req = AWSRequest(method="POST", url=URL + path, data=json.dumps(body).encode(),
                     headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(AK, SK), "kms-xks-proxy", "us-east-1").add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=p.body, method="POST", headers=dict(p.headers))
    try:
        with urllib.request.urlopen(r, context=CTX) as resp:
            return "ok", json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return json.loads(e.read()).get("errorName", str(e.code)), None


def xks_encrypt(key):
    return xks(f"/keys/{key}/encrypt", {
        "plaintext": base64.b64encode(PT).decode(), "encryptionAlgorithm": "AES_GCM"}, "Encrypt")


def aws(call):
    try:
        return "ok", call()
    except ClientError as e:
        return e.response["Error"]["Code"], None


mode = os.environ["DOOR_MODE"]
out = {}
if mode == "prepare":
    for state, k in KEYS.items():
        outcome, enc = xks_encrypt(k["aes"])
        out[state] = enc if outcome == "ok" else None
else:
    kms = boto3.client("kms")
    for state, k in KEYS.items():
        r = {"aws": {}, "xks": {}}
        outcome, d = aws(lambda: kms.describe_key(KeyId=k["aes"]))
        r["aws"]["describe"] = outcome
        if d:
            r["aws"]["KeyState"] = d["KeyMetadata"]["KeyState"]
            r["aws"]["Enabled"] = d["KeyMetadata"]["Enabled"]
        r["aws"]["encrypt"] = aws(lambda: kms.encrypt(KeyId=k["aes"], Plaintext=PT))[0]
        if k.get("ct"):
            r["aws"]["decrypt"] = aws(lambda: kms.decrypt(
                KeyId=k["aes"], CiphertextBlob=base64.b64decode(k["ct"])))[0]
        outcome, d = aws(lambda: kms.describe_key(KeyId=k["ec"]))
        if d:
            r["aws"]["ec_Enabled"] = d["KeyMetadata"]["Enabled"]
        r["aws"]["sign"] = aws(lambda: kms.sign(
            KeyId=k["ec"], Message=PT, SigningAlgorithm="ECDSA_SHA_256"))[0]
        if k.get("sig"):
            r["aws"]["verify"] = aws(lambda: kms.verify(
                KeyId=k["ec"], Message=PT, Signature=base64.b64decode(k["sig"]),
                SigningAlgorithm="ECDSA_SHA_256"))[0]
        outcome, md = xks(f"/keys/{k['aes']}/metadata", {}, "DescribeKey")
        r["xks"]["metadata"] = outcome
        if md:
            r["xks"]["keyStatus"] = md["keyStatus"]
            r["xks"]["keyUsage"] = md["keyUsage"]
        r["xks"]["encrypt"] = xks_encrypt(k["aes"])[0]
        enc = k.get("xks")
        if enc:
            r["xks"]["decrypt"] = xks(f"/keys/{k['aes']}/decrypt", {
                "ciphertext": enc["ciphertext"], "ciphertextMetadata": enc["ciphertextMetadata"],
                "initializationVector": enc["initializationVector"],
                "authenticationTag": enc["authenticationTag"], "encryptionAlgorithm": "AES_GCM",
            }, "Decrypt")[0]
        out[state] = r
print("RESULT")
print(json.dumps(out))
print("OK")
