"""libmongocrypt's KMIP client (PyPI pymongocrypt), as MongoDB client-side field level
encryption drives it, against a running Arca over mutual TLS.

No MongoDB server is needed: the key vault is a dict here, and this script plays the
driver's part (pymongo's encryption IO): it carries libmongocrypt's KMIP messages over a
TLS socket with the client certificate and feeds the replies back.

Both of libmongocrypt's KMIP modes run:
- default: the data key is encrypted locally under a 96-byte KMIP Secret Data object that
  libmongocrypt Registers and later Gets;
- delegated: Arca makes an AES-256 key (Create, Activate) and libmongocrypt asks it to
  Encrypt and Decrypt the data key.

Environment: KMIP_HOST, KMIP_PORT, KMIP_CERT, KMIP_KEY, KMIP_CA. Exits non-zero on failure.
"""
import os
import socket
import ssl
import sys

import bson
from bson.binary import STANDARD
from bson.codec_options import CodecOptions
from pymongocrypt.mongocrypt import MongoCryptOptions
from pymongocrypt.synchronous.explicit_encrypter import ExplicitEncrypter
from pymongocrypt.synchronous.state_machine import MongoCryptCallback

OPTS = CodecOptions(uuid_representation=STANDARD)
ENDPOINT = "{}:{}".format(os.environ["KMIP_HOST"], os.environ["KMIP_PORT"])


class Io(MongoCryptCallback):
    """The driver's side of libmongocrypt's state machine, with an in-memory key vault."""

    def __init__(self):
        self.vault = []
        self.kms_calls = 0
        self.tls = ssl.create_default_context(cafile=os.environ["KMIP_CA"])
        self.tls.load_cert_chain(os.environ["KMIP_CERT"], os.environ["KMIP_KEY"])

    def kms_request(self, kms_context):
        self.kms_calls += 1
        host, _, port = kms_context.endpoint.rpartition(":")
        with socket.create_connection((host, int(port)), timeout=10) as raw:
            with self.tls.wrap_socket(raw, server_hostname=host) as s:
                s.sendall(kms_context.message)
                while kms_context.bytes_needed > 0:
                    data = s.recv(kms_context.bytes_needed)
                    if not data:
                        raise OSError("KMIP server closed the connection")
                    kms_context.feed(data)

    def collection_info(self, database, filter):
        raise NotImplementedError

    def mark_command(self, database, cmd):
        raise NotImplementedError

    def fetch_keys(self, filter):
        f = bson.decode(filter, OPTS)
        for doc in self.vault:
            ids = f.get("$or", [{}])[0].get("_id", {}).get("$in", [])
            if not ids or doc["_id"] in ids:
                yield bson.encode(doc, codec_options=OPTS)

    def insert_data_key(self, data_key):
        doc = bson.decode(data_key, OPTS)
        self.vault.append(doc)
        return doc["_id"]

    def bson_encode(self, doc):
        return bson.encode(doc, codec_options=OPTS)

    def close(self):
        pass


def run(mode):
    io = Io()
    enc = ExplicitEncrypter(
        io, MongoCryptOptions({"kmip": {"endpoint": ENDPOINT}}))
    master_key = {"endpoint": ENDPOINT}
    if mode == "delegated":
        master_key["delegated"] = True
    key_id = enc.create_data_key("kmip", master_key=master_key)
    doc = io.vault[0]
    kmip_id = doc["masterKey"].get("keyId")
    assert kmip_id, doc["masterKey"]
    print(mode, "data key", key_id, "under KMIP object", kmip_id)
    value = bson.encode({"v": "4111 1111 1111 1111"})
    # A new encrypter, so that the data key must be decrypted through Arca again.
    enc2 = ExplicitEncrypter(
        io, MongoCryptOptions({"kmip": {"endpoint": ENDPOINT}}))
    ciphertext = enc2.encrypt(
        value, "AEAD_AES_256_CBC_HMAC_SHA_512-Deterministic",
        key_id=key_id.bytes)
    plain = enc2.decrypt(ciphertext)
    assert bson.decode(plain)["v"] == "4111 1111 1111 1111"
    print(mode, "round trip OK after", io.kms_calls, "KMIP exchanges")
    return kmip_id


def main():
    default_id = run("default")
    delegated_id = run("delegated")
    assert default_id != delegated_id
    print("KMIP_IDS", default_id, delegated_id)
    print("OK")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        print("FAILED:", type(e).__name__, e, file=sys.stderr)
        raise
