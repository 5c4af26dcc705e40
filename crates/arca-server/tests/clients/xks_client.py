"""An XKS proxy API client, as AWS KMS is one: JSON over HTTPS, signed by botocore's SigV4
signer with service `kms-xks-proxy`. Covers every endpoint and the errors of the spec
(aws/aws-kms-xksproxy-api-spec) that a client can cause.

Environment: XKS_URL (https://host:port/<prefix>/kms/xks/v1), AWS_CA_BUNDLE, the access key
pairs XKS_AK1/XKS_SK1 and XKS_AK2/XKS_SK2 (both active), XKS_OTHER_AK/XKS_OTHER_SK (another
tenant's), XKS_NOGRANT_AK/XKS_NOGRANT_SK (a principal no key policy lets use the keys), and
the key ids XKS_KEY (AES-256, active), XKS_DISABLED (suspended), XKS_HMAC (an HMAC key).
XKS_MODE=full (default) or throttle. Prints OK at the end; any failed check raises.
"""

import base64
import hashlib
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
AK, SK = os.environ["XKS_AK1"], os.environ["XKS_SK1"]


def b64(b):
    return base64.b64encode(b).decode()


def unb64(s):
    return base64.b64decode(s)


def meta(op="Encrypt"):
    return {
        "awsPrincipalArn": "arn:aws:iam::123456789012:user/alice",
        "kmsKeyArn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        "kmsOperation": op,
        "kmsRequestId": str(uuid.uuid4()),
        "kmsViaService": "ebs",
    }


def call(path, body, ak=AK, sk=SK, method="POST", region="us-east-1", sign=True, raw=None):
    """Sends one request; returns (status, parsed JSON body)."""
    data = raw if raw is not None else json.dumps(body).encode()
    req = AWSRequest(method=method, url=URL + path, data=data if method == "POST" else None,
                     headers={"Content-Type": "application/json"})
    if sign:
        SigV4Auth(Credentials(ak, sk), "kms-xks-proxy", region).add_auth(req)
    p = req.prepare()
    r = urllib.request.Request(p.url, data=p.body, method=method, headers=dict(p.headers))
    try:
        with urllib.request.urlopen(r, context=CTX) as resp:
            assert resp.headers["Content-Type"].startswith("application/json"), resp.headers
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as e:
        text = e.read()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, {"raw": text.decode(errors="replace")}


def ok(path, body, **kw):
    status, out = call(path, body, **kw)
    assert status == 200, f"{path}: {status} {out}"
    return out


def err(status, name, path, body, **kw):
    got, out = call(path, body, **kw)
    assert got == status and out.get("errorName") == name, f"{path}: expected {status} {name}, got {got} {out}"
    msg = out.get("errorMessage", "")
    assert len(msg) < 512 and all(0x20 <= ord(c) <= 0x7E for c in msg), msg
    return out


def encrypt_body(pt, aad=None, cdiv=True, alg="AES_GCM"):
    body = {"requestMetadata": meta(), "plaintext": b64(pt), "encryptionAlgorithm": alg}
    if aad is not None:
        body["additionalAuthenticatedData"] = b64(aad)
    if cdiv:
        body["ciphertextDataIntegrityValueAlgorithm"] = "SHA_256"
    return body


def decrypt_body(enc, aad=None, **over):
    body = {
        "requestMetadata": meta("Decrypt"),
        "ciphertext": enc["ciphertext"],
        "ciphertextMetadata": enc.get("ciphertextMetadata"),
        "encryptionAlgorithm": "AES_GCM",
        "authenticationTag": enc["authenticationTag"],
        "initializationVector": enc["initializationVector"],
    }
    if body["ciphertextMetadata"] is None:
        del body["ciphertextMetadata"]
    if aad is not None:
        body["additionalAuthenticatedData"] = b64(aad)
    body.update(over)
    return body


KEY = os.environ["XKS_KEY"]
K = f"/keys/{KEY}"

if os.environ.get("XKS_MODE", "full") == "throttle":
    statuses = [call("/health", {"requestMetadata": meta("KmsHealthCheck")}) for _ in range(12)]
    throttled = [o for s, o in statuses if s == 429]
    assert throttled and all(o["errorName"] == "ThrottlingException" for o in throttled), statuses
    print("OK")
    raise SystemExit(0)

if os.environ.get("XKS_MODE") == "dependency":
    # The store stops answering: the spec's dependency failure.
    err(503, "DependencyTimeoutException", K + "/metadata", {"requestMetadata": meta("DescribeKey")})
    print("OK")
    raise SystemExit(0)

if os.environ.get("XKS_MODE") == "internal":
    # A key whose stored material no longer opens: the proxy's generic failure.
    err(500, "InternalException", K + "/encrypt", encrypt_body(b"x"))
    print("OK")
    raise SystemExit(0)

if os.environ.get("XKS_MODE") == "roundtrip":
    # A key of another protection level (the HSM): the same API, the same guarantees.
    assert ok(K + "/metadata", {"requestMetadata": meta("CreateKey")})["keyStatus"] == "ENABLED"
    pt, aad = b"held in the HSM", b"dept=hsm"
    enc = ok(K + "/encrypt", encrypt_body(pt, aad))
    parts = [unb64(enc[f]) for f in ("ciphertext", "initializationVector", "authenticationTag")]
    expected = hashlib.sha256(aad + unb64(enc["ciphertextMetadata"]) + parts[1] + parts[0] + parts[2]).digest()
    assert unb64(enc["ciphertextDataIntegrityValue"]) == expected
    assert unb64(ok(K + "/decrypt", decrypt_body(enc, aad))["plaintext"]) == pt
    err(400, "InvalidCiphertextException", K + "/decrypt", decrypt_body(enc, b"dept=other"))
    print("OK")
    raise SystemExit(0)

# GetHealthStatus.
h = ok("/health", {"requestMetadata": {"kmsRequestId": str(uuid.uuid4()), "kmsOperation": "KmsHealthCheck"}})
assert h["xksProxyFleetSize"] >= 1 and h["xksProxyVendor"] and h["xksProxyModel"] and h["ekmVendor"], h
fleet = h["ekmFleetDetails"]
assert 1 <= len(fleet) <= 10 and fleet[0]["healthStatus"] == "ACTIVE" and fleet[0]["id"] and fleet[0]["model"], h

# GetKeyMetadata.
md = ok(K + "/metadata", {"requestMetadata": meta("CreateKey")})
assert md == {"keySpec": "AES_256", "keyUsage": ["ENCRYPT", "DECRYPT"], "keyStatus": "ENABLED"}, md
assert ok(f"/keys/{os.environ['XKS_DISABLED']}/metadata", {"requestMetadata": meta("DescribeKey")})["keyStatus"] == "DISABLED"

# Encrypt and Decrypt, with AAD, ciphertext metadata and the CDIV.
pt, aad = b"Hello World!", b"project=nile,department=marketing"
enc = ok(K + "/encrypt", encrypt_body(pt, aad))
ct, iv, tag = unb64(enc["ciphertext"]), unb64(enc["initializationVector"]), unb64(enc["authenticationTag"])
md_bytes = unb64(enc["ciphertextMetadata"])
assert len(ct) == len(pt) and len(iv) in (12, 16) and len(tag) == 16 and len(md_bytes) <= 20, enc
expected = hashlib.sha256(aad + md_bytes + iv + ct + tag).digest()
assert unb64(enc["ciphertextDataIntegrityValue"]) == expected, "CDIV"
assert unb64(ok(K + "/decrypt", decrypt_body(enc, aad))["plaintext"]) == pt
# Without AAD and without CDIV; the CDIV is only there when asked for.
enc2 = ok(K + "/encrypt", encrypt_body(b"x" * 4300, None, cdiv=False))
assert "ciphertextDataIntegrityValue" not in enc2
assert unb64(ok(K + "/decrypt", decrypt_body(enc2))["plaintext"]) == b"x" * 4300
# AAD up to 8192 bytes (the spec's floor).
big_aad = os.urandom(8192)
enc3 = ok(K + "/encrypt", encrypt_body(b"y", big_aad))
assert unb64(ok(K + "/decrypt", decrypt_body(enc3, big_aad))["plaintext"]) == b"y"

# Both active credential pairs of the store work (rotation).
enc4 = ok(K + "/encrypt", encrypt_body(pt, aad), ak=os.environ["XKS_AK2"], sk=os.environ["XKS_SK2"])
assert unb64(ok(K + "/decrypt", decrypt_body(enc4, aad))["plaintext"]) == pt

# InvalidCiphertextException: a changed tag, AAD, IV, ciphertext or ciphertext metadata.
flip = lambda s: b64(bytes([unb64(s)[0] ^ 1]) + unb64(s)[1:])
err(400, "InvalidCiphertextException", K + "/decrypt", decrypt_body(enc, aad, authenticationTag=flip(enc["authenticationTag"])))
err(400, "InvalidCiphertextException", K + "/decrypt", decrypt_body(enc, b"project=nile"))
err(400, "InvalidCiphertextException", K + "/decrypt", decrypt_body(enc))
err(400, "InvalidCiphertextException", K + "/decrypt", decrypt_body(enc, aad, initializationVector=flip(enc["initializationVector"])))
err(400, "InvalidCiphertextException", K + "/decrypt", decrypt_body(enc, aad, ciphertext=flip(enc["ciphertext"])))
err(400, "InvalidCiphertextException", K + "/decrypt", decrypt_body(enc, aad, ciphertextMetadata=flip(enc["ciphertextMetadata"])))
err(400, "InvalidCiphertextException", K + "/decrypt", decrypt_body(enc, aad, authenticationTag=b64(b"short")))

# ValidationException: missing or bad members.
err(400, "ValidationException", K + "/encrypt", encrypt_body(pt, alg="AES_CBC"))
err(400, "ValidationException", K + "/encrypt", {"requestMetadata": meta(), "encryptionAlgorithm": "AES_GCM"})
err(400, "ValidationException", K + "/encrypt", {"plaintext": b64(pt), "encryptionAlgorithm": "AES_GCM"})
err(400, "ValidationException", K + "/encrypt", {**encrypt_body(pt), "plaintext": "not base64!"})
err(400, "ValidationException", K + "/encrypt", None, raw=b"{not json")
err(400, "ValidationException", K + "/encrypt", {**encrypt_body(pt), "ciphertextDataIntegrityValueAlgorithm": "MD5"})

# UnsupportedOperationException: above this implementation's limits.
err(501, "UnsupportedOperationException", K + "/encrypt", encrypt_body(b"z", os.urandom(70000)))

# KeyNotFoundException, InvalidUriPathException, 405 on GET.
err(404, "KeyNotFoundException", "/keys/no-such-key/encrypt", encrypt_body(pt))
err(404, "KeyNotFoundException", "/keys/no-such-key/metadata", {"requestMetadata": meta("CreateKey")})
err(404, "InvalidUriPathException", K + "/sign", {"requestMetadata": meta()})
err(404, "InvalidUriPathException", "/keys/bad%2Fid/encrypt", encrypt_body(pt))
for path in (K + "/metadata", K + "/encrypt", K + "/decrypt", "/health"):
    status, _ = call(path, None, method="GET")
    assert status == 405, f"GET {path}: {status}"

# InvalidStateException: a disabled key.
err(400, "InvalidStateException", f"/keys/{os.environ['XKS_DISABLED']}/encrypt", encrypt_body(pt))

# InvalidKeyUsageException: a key that is not AES-256 for encryption.
err(400, "InvalidKeyUsageException", f"/keys/{os.environ['XKS_HMAC']}/encrypt", encrypt_body(pt))

# AuthenticationFailedException: no signature, a wrong secret, an unknown key, another
# tenant's credential, a signature for another service.
err(401, "AuthenticationFailedException", "/health", {"requestMetadata": meta("KmsHealthCheck")}, sign=False)
err(401, "AuthenticationFailedException", "/health", {"requestMetadata": meta("KmsHealthCheck")}, sk="A" * 44)
err(401, "AuthenticationFailedException", "/health", {"requestMetadata": meta("KmsHealthCheck")}, ak="ARCAAAAAAAAAAAAAAAAA")
err(401, "AuthenticationFailedException", K + "/encrypt", encrypt_body(pt),
    ak=os.environ["XKS_OTHER_AK"], sk=os.environ["XKS_OTHER_SK"])

# AccessDeniedException: a principal of the tenant that no key policy lets use the key.
err(403, "AccessDeniedException", K + "/encrypt", encrypt_body(pt),
    ak=os.environ["XKS_NOGRANT_AK"], sk=os.environ["XKS_NOGRANT_SK"])

print("OK")
