"""The `aws` CLI (PyPI awscli) against Arca's AWS-compatible door: an operator's session,
changing only --endpoint-url (and trusting Arca's CA).

Reads AWS_ENDPOINT_URL, AWS_CA_BUNDLE and the credentials from the environment. Prints OK
at the end; any failed check raises.
"""

import base64
import json
import os
import subprocess
import sys
import tempfile

AWS = os.path.join(os.path.dirname(sys.executable), "aws")
BASE = [AWS, "kms", "--endpoint-url", os.environ["AWS_ENDPOINT_URL"],
        "--ca-bundle", os.environ["AWS_CA_BUNDLE"], "--region", "us-east-1", "--output", "json"]


def aws(*args, expect_error=None):
    r = subprocess.run(BASE + list(args), capture_output=True, text=True)
    if expect_error:
        assert r.returncode != 0, f"aws {args} should have failed"
        assert expect_error in r.stderr, f"{expect_error} not in: {r.stderr}"
        return r.stderr
    assert r.returncode == 0, f"aws {' '.join(args)} failed: {r.stderr}"
    return json.loads(r.stdout) if r.stdout.strip() else {}


work = tempfile.mkdtemp()
plain = os.path.join(work, "plain.txt")
with open(plain, "wb") as f:
    f.write(b"hello from the aws cli")

key = aws("create-key", "--description", "cli key")["KeyMetadata"]["KeyId"]
aws("create-alias", "--alias-name", "alias/cli", "--target-key-id", key)
assert any(a["AliasName"] == "alias/cli" for a in aws("list-aliases")["Aliases"])

# encrypt / decrypt with a context, binary in and out through fileb://.
ct = aws("encrypt", "--key-id", "alias/cli", "--plaintext", f"fileb://{plain}",
         "--encryption-context", "app=cli,stage=test")["CiphertextBlob"]
blob = os.path.join(work, "blob")
with open(blob, "wb") as f:
    f.write(base64.b64decode(ct))
pt = aws("decrypt", "--ciphertext-blob", f"fileb://{blob}",
         "--encryption-context", "app=cli,stage=test")["Plaintext"]
assert base64.b64decode(pt) == b"hello from the aws cli"
aws("decrypt", "--ciphertext-blob", f"fileb://{blob}", expect_error="InvalidCiphertextException")

# Data keys.
dk = aws("generate-data-key", "--key-id", key, "--key-spec", "AES_256")
assert len(base64.b64decode(dk["Plaintext"])) == 32
aws("generate-data-key-without-plaintext", "--key-id", key, "--number-of-bytes", "16")

# Sign / verify and MACs.
sk = aws("create-key", "--key-spec", "ECC_NIST_P384", "--key-usage", "SIGN_VERIFY")["KeyMetadata"]["KeyId"]
sig = aws("sign", "--key-id", sk, "--message", f"fileb://{plain}",
          "--signing-algorithm", "ECDSA_SHA_384")["Signature"]
sigf = os.path.join(work, "sig")
with open(sigf, "wb") as f:
    f.write(base64.b64decode(sig))
assert aws("verify", "--key-id", sk, "--message", f"fileb://{plain}", "--signature", f"fileb://{sigf}",
           "--signing-algorithm", "ECDSA_SHA_384")["SignatureValid"]
mk = aws("create-key", "--key-spec", "HMAC_384", "--key-usage", "GENERATE_VERIFY_MAC")["KeyMetadata"]["KeyId"]
mac = aws("generate-mac", "--key-id", mk, "--message", f"fileb://{plain}", "--mac-algorithm", "HMAC_SHA_384")["Mac"]
macf = os.path.join(work, "mac")
with open(macf, "wb") as f:
    f.write(base64.b64decode(mac))
assert aws("verify-mac", "--key-id", mk, "--message", f"fileb://{plain}", "--mac", f"fileb://{macf}",
           "--mac-algorithm", "HMAC_SHA_384")["MacValid"]

# Rotation.
aws("enable-key-rotation", "--key-id", key)
assert aws("get-key-rotation-status", "--key-id", key)["KeyRotationEnabled"]
aws("rotate-key-on-demand", "--key-id", key)
assert len(aws("list-key-rotations", "--key-id", key)["Rotations"]) == 1
assert base64.b64decode(aws("decrypt", "--ciphertext-blob", f"fileb://{blob}",
                            "--encryption-context", "app=cli,stage=test")["Plaintext"]) == b"hello from the aws cli"

# Scheduled deletion and its cancellation.
d = aws("schedule-key-deletion", "--key-id", mk, "--pending-window-in-days", "7")
assert d["KeyState"] == "PendingDeletion"
aws("generate-mac", "--key-id", mk, "--message", f"fileb://{plain}", "--mac-algorithm", "HMAC_SHA_384",
    expect_error="KMSInvalidStateException")
aws("cancel-key-deletion", "--key-id", mk)
assert aws("describe-key", "--key-id", mk)["KeyMetadata"]["KeyState"] == "Disabled"

# Unknown keys and unsupported operations.
aws("describe-key", "--key-id", "0b0e6c3e-1111-4111-8111-111111111111", expect_error="NotFoundException")
aws("replicate-key", "--key-id", key, "--replica-region", "eu-west-1", expect_error="UnsupportedOperationException")
print("OK")
