"""cyphera-kmip (PyPI, a zero-dependency KMIP 1.4 client) against Arca over mutual TLS.

What its API offers is exercised as a user would call it: Discover Versions, Query, Create
by name, Locate by name, Fetch (Locate + Get), Register of raw AES material (read back
byte for byte), Get Attributes, Get Attribute List, Obtain Lease, Revoke (which this
version encodes wrongly: refused), Destroy, and the refusals that follow. Prints OK at the end; any failure raises.
"""

import os

from cyphera_kmip import KmipClient
from cyphera_kmip.operations import KmipError
from cyphera_kmip.tags import Algorithm, ObjectType

c = KmipClient(
    host=os.environ["KMIP_HOST"],
    port=int(os.environ["KMIP_PORT"]),
    client_cert=os.environ["KMIP_CERT"],
    client_key=os.environ["KMIP_KEY"],
    ca_cert=os.environ["KMIP_CA"],
)

versions = c.discover_versions()
print("discover versions:", versions)
assert versions, versions
print("query:", c.query())

# Create by name; Locate by that name finds exactly it; Fetch gets its 32 bytes.
created = c.create("cyphera-aes", "AES", 256)
uid = created["unique_identifier"]
assert c.locate("cyphera-aes") == [uid], c.locate("cyphera-aes")
assert c.locate("no-such-name") == []
c.activate(uid)
material = c.get(uid)["key_material"]
assert isinstance(material, bytes) and len(material) == 32, material
assert c.fetch_key("cyphera-aes") == material

# Register known material under a name: the same bytes come back.
mine = bytes(range(32))
reg = c.register(ObjectType.SymmetricKey, mine, "cyphera-registered", Algorithm.AES, 256)
rid = reg["unique_identifier"]
assert c.locate("cyphera-registered") == [rid]
assert c.get(rid)["key_material"] == mine

attrs = c.get_attributes(rid)
print("attributes:", attrs)
names = c.get_attribute_list(rid)
print("attribute list:", names)
assert "Cryptographic Algorithm" in names and "Lease Time" in names, names

# A lease on the active key; the registered one is Pre-Active and gets none.
assert c.obtain_lease(uid) == 3600
try:
    c.obtain_lease(rid)
    raise AssertionError("a lease on a Pre-Active key")
except KmipError as e:
    print("refused lease:", e)

# Its Revoke is refused and changes nothing: cyphera-kmip 0.0.1a1 tags the Revocation
# Reason 0x420082 (KMIP's Revocation Reason Code; the Reason is 0x420081), so the request
# carries no Revocation Reason that any KMIP server can read.
try:
    c.revoke(uid, 5)
    raise AssertionError("a Revoke without a readable Revocation Reason")
except KmipError as e:
    print("refused revoke:", e)
assert c.get(uid)["key_material"] == material, "still active and served"

# Destroy: an Active key is refused; the Pre-Active one goes, for every client.
try:
    c.destroy(uid)
    raise AssertionError("Destroy of an Active key")
except KmipError as e:
    print("refused destroy:", e)
c.destroy(rid)
try:
    c.get(rid)
    raise AssertionError("Get of a destroyed key")
except KmipError as e:
    print("refused get:", e)
assert c.locate("cyphera-registered") == []
assert c.locate("cyphera-aes") == [uid]
c.close()
print("OK")
