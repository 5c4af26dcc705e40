"""PyKMIP's ProxyKmipClient against a running Arca, over mutual TLS.

Run by tests/client_pykmip.rs with the connection details in the environment
(KMIP_HOST, KMIP_PORT, KMIP_CERT, KMIP_KEY, KMIP_CA) and the protocol version in
KMIP_VERSION ("1.2" or "2.0"). Prints one line per step and exits non-zero on the first
failure, with the reason.
"""
import os
import sys

from kmip import enums
from kmip.core.factories.attributes import AttributeFactory
from kmip.pie import client, objects


def main():
    version = {
        "1.2": enums.KMIPVersion.KMIP_1_2,
        "2.0": enums.KMIPVersion.KMIP_2_0,
    }[os.environ["KMIP_VERSION"]]
    tag = os.environ["KMIP_VERSION"].replace(".", "")
    c = client.ProxyKmipClient(
        hostname=os.environ["KMIP_HOST"],
        port=int(os.environ["KMIP_PORT"]),
        cert=os.environ["KMIP_CERT"],
        key=os.environ["KMIP_KEY"],
        ca=os.environ["KMIP_CA"],
        config_file="/dev/null",
        kmip_version=version,
    )
    with c:
        # Create an AES-256 key, find it by name, read its attributes, activate it.
        uid = c.create(
            enums.CryptographicAlgorithm.AES,
            256,
            name="pykmip-aes-" + tag,
            cryptographic_usage_mask=[
                enums.CryptographicUsageMask.ENCRYPT,
                enums.CryptographicUsageMask.DECRYPT,
            ],
        )
        print("create", uid)
        name = AttributeFactory().create_attribute(
            enums.AttributeType.NAME, "pykmip-aes-" + tag)
        found = c.locate(attributes=[name])
        assert found == [uid], found
        print("locate", found)
        uid_back, attrs = c.get_attributes(uid, ["State", "Cryptographic Length"])
        values = {a.attribute_name.value: a.attribute_value.value for a in attrs}
        assert uid_back == uid
        assert values["State"] == enums.State.PRE_ACTIVE, values
        assert values["Cryptographic Length"] == 256, values
        print("get_attributes", values)
        names = c.get_attribute_list(uid)
        assert "Cryptographic Algorithm" in names, names
        print("get_attribute_list", len(names))
        c.activate(uid)
        key = c.get(uid)
        assert len(key.value) == 32
        assert key.cryptographic_algorithm == enums.CryptographicAlgorithm.AES
        print("get", len(key.value), "bytes")

        # Register a known key and read the same bytes back.
        known = bytes(range(16))
        reg = objects.SymmetricKey(
            enums.CryptographicAlgorithm.AES, 128, known, name="pykmip-reg-" + tag)
        rid = c.register(reg)
        back = c.get(rid)
        assert back.value == known
        print("register+get", rid)

        # Revoke as compromised, then destroy both.
        c.revoke(enums.RevocationReasonCode.KEY_COMPROMISE, uid,
                 compromise_occurrence_date=0)
        _, attrs = c.get_attributes(uid, ["State"])
        assert attrs[0].attribute_value.value == enums.State.COMPROMISED
        print("revoke", uid)
        c.destroy(uid)
        c.destroy(rid)
        _, attrs = c.get_attributes(uid, ["State"])
        assert attrs[0].attribute_value.value == enums.State.DESTROYED_COMPROMISED, attrs
        print("destroy", uid, rid)

        # Errors come back as KMIP failures, not crashes.
        try:
            c.get("no-such-object")
            raise AssertionError("Get of an unknown id succeeded")
        except Exception as e:  # PyKMIP raises KmipOperationFailure
            assert "ITEM_NOT_FOUND" in str(e) or "OBJECT_NOT_FOUND" in str(e) \
                or "not found" in str(e).lower(), e
            print("get unknown:", type(e).__name__)
    print("OK")


if __name__ == "__main__":
    try:
        main()
    except Exception as e:
        print("FAILED:", type(e).__name__, e, file=sys.stderr)
        raise
