"""Bring your own key, the export side: each format Arca writes for a cloud, opened with the
`cryptography` package and the test's own private key, must give back exactly the key.

Environment: ARCA_URL, ARCA_TOKEN (may use the keys), ARCA_CA, and the key names and their
known material: AES_KEY + AES_HEX (an extractable AES-256 key), EC_KEY + EC_PKCS8_B64 (an
extractable P-256 key), KEK_KEY + KEK_HEX (an Arca AES-256 key that may wrap).
Prints OK at the end; any failed check raises.
"""

import base64
import json
import os
import ssl
import urllib.error
import urllib.request

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.keywrap import aes_key_unwrap_with_padding

URL = os.environ["ARCA_URL"]
CTX = ssl.create_default_context(cafile=os.environ["ARCA_CA"])


def post(path, body):
    req = urllib.request.Request(
        URL + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": "Bearer " + os.environ["ARCA_TOKEN"], "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, context=CTX) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def export(key, body):
    status, out = post(f"/v1/keys/{key}/export-wrapped", body)
    assert status == 200, f"{key} {body.get('target')} {body.get('algorithm')}: {status} {out}"
    return out


def oaep(h):
    return padding.OAEP(mgf=padding.MGF1(h), algorithm=h, label=None)


def rsa_aes_unwrap(priv, blob, h):
    n = priv.key_size // 8
    aes = priv.decrypt(blob[:n], oaep(h))
    assert len(aes) == 32
    return aes_key_unwrap_with_padding(aes, blob[n:])


aes_material = bytes.fromhex(os.environ["AES_HEX"])
ec_pkcs8 = base64.b64decode(os.environ["EC_PKCS8_B64"])
ec_private = serialization.load_der_private_key(ec_pkcs8, None)
AES, EC = os.environ["AES_KEY"], os.environ["EC_KEY"]


def same_ec(der):
    got = serialization.load_der_private_key(der, None)
    return got.private_numbers() == ec_private.private_numbers()


for bits in (2048, 3072, 4096):
    priv = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    pem = priv.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    der_b64 = base64.b64encode(priv.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)).decode()

    # AWS ImportKeyMaterial: every wrapping algorithm AWS offers.
    for alg, unwrap in [
        ("RSAES_OAEP_SHA_1", lambda b: priv.decrypt(b, oaep(hashes.SHA1()))),
        ("RSAES_OAEP_SHA_256", lambda b: priv.decrypt(b, oaep(hashes.SHA256()))),
        ("RSA_AES_KEY_WRAP_SHA_1", lambda b: rsa_aes_unwrap(priv, b, hashes.SHA1())),
        ("RSA_AES_KEY_WRAP_SHA_256", lambda b: rsa_aes_unwrap(priv, b, hashes.SHA256())),
    ]:
        out = export(AES, {"target": "AWS", "wrapping_public_key": pem, "algorithm": alg})
        assert out["algorithm"] == alg and out["format"] == "RAW", out
        assert unwrap(base64.b64decode(out["wrapped"])) == aes_material, alg
    # The default for a private key is RSA-AES (OAEP cannot carry a PKCS#8 key).
    out = export(EC, {"target": "AWS", "wrapping_public_key": der_b64})
    assert out["algorithm"] == "RSA_AES_KEY_WRAP_SHA_256" and out["format"] == "PKCS8", out
    assert same_ec(rsa_aes_unwrap(priv, base64.b64decode(out["wrapped"]), hashes.SHA256()))

    # Google Cloud KMS import jobs (3072- and 4096-bit import keys only).
    if bits in (3072, 4096):
        for method, unwrap in [
            (f"RSA_OAEP_{bits}_SHA1_AES_256", lambda b: rsa_aes_unwrap(priv, b, hashes.SHA1())),
            (f"RSA_OAEP_{bits}_SHA256_AES_256", lambda b: rsa_aes_unwrap(priv, b, hashes.SHA256())),
            (f"RSA_OAEP_{bits}_SHA256", lambda b: priv.decrypt(b, oaep(hashes.SHA256()))),
        ]:
            out = export(AES, {"target": "GCP", "wrapping_public_key": pem, "algorithm": method})
            assert unwrap(base64.b64decode(out["wrapped"])) == aes_material, method
        out = export(EC, {"target": "GCP", "wrapping_public_key": pem})
        assert out["algorithm"] == f"RSA_OAEP_{bits}_SHA256_AES_256", out
        assert same_ec(rsa_aes_unwrap(priv, base64.b64decode(out["wrapped"]), hashes.SHA256()))
        other = 4096 if bits == 3072 else 3072
        status, err = post(f"/v1/keys/{AES}/export-wrapped", {"target": "GCP", "wrapping_public_key": pem,
                                                              "algorithm": f"RSA_OAEP_{other}_SHA256_AES_256"})
        assert status == 400 and err["error"]["field"] == "algorithm", (status, err)

    # Azure Key Vault BYOK: the .byok blob, RSA-OAEP-SHA-1 over the ephemeral AES key.
    kid = "https://contoso.vault.azure.net/keys/KEK/0123456789abcdef"
    for key, check in [(AES, lambda m: m == aes_material), (EC, same_ec)]:
        out = export(key, {"target": "AZURE", "wrapping_public_key": pem, "kid": kid})
        byok = out["byok"]
        assert byok["schema_version"] == "1.0.0", byok
        assert byok["header"] == {"kid": kid, "alg": "dir", "enc": "CKM_RSA_AES_KEY_WRAP"}, byok
        assert byok["generator"].startswith("Arca"), byok
        ct = base64.urlsafe_b64decode(byok["ciphertext"] + "=" * (-len(byok["ciphertext"]) % 4))
        assert ct == base64.b64decode(out["wrapped"])
        assert check(rsa_aes_unwrap(priv, ct, hashes.SHA1())), key

# Another Arca key: AES-KWP (RFC 5649) under an AES key.
kek = bytes.fromhex(os.environ["KEK_HEX"])
out = export(AES, {"target": "ARCA", "wrapping_key": os.environ["KEK_KEY"]})
assert out["algorithm"] == "AES_KEY_WRAP_PAD" and out["wrapping_key_version"] == 1, out
assert aes_key_unwrap_with_padding(kek, base64.b64decode(out["wrapped"])) == aes_material
out = export(EC, {"target": "ARCA", "wrapping_key": os.environ["KEK_KEY"]})
assert same_ec(aes_key_unwrap_with_padding(kek, base64.b64decode(out["wrapped"])))

# Bad destinations are refused before anything leaves.
for body, field in [
    ({"target": "AWS"}, "wrapping_public_key"),
    ({"target": "AWS", "wrapping_public_key": "not a key"}, "wrapping_public_key"),
    ({"target": "AZURE", "wrapping_public_key": pem}, "kid"),
    ({"target": "ARCA"}, "wrapping_key"),
    ({"target": "AWS", "wrapping_public_key": pem, "algorithm": "RSAES_PKCS1_V1_5"}, "algorithm"),
]:
    status, err = post(f"/v1/keys/{AES}/export-wrapped", body)
    assert status == 400 and err["error"]["field"] == field, (body, status, err)
print("OK")
