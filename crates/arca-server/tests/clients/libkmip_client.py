"""libkmip, the C KMIP client that Ceph's RADOS Gateway ships, against Arca over mutual TLS.

Debian's radosgw package (bookworm: Ceph 16.2.15) links libkmip into libradosgw.so.2 and
exports its whole API; the test command unpacks that library and names it in ARCA_LIBKMIP.
This script loads it with ctypes and drives it as a C program does: an OpenSSL BIO with the
client certificate, libkmip's high-level calls where they
work (kmip_bio_create_symmetric_key, kmip_bio_get_symmetric_key,
kmip_bio_destroy_symmetric_key), and libkmip's own encoder, transport and decoder
(kmip_encode_request_message, kmip_bio_send_request_encoding, kmip_decode_response_message)
for the rest: Get with a Key Wrapping Specification, which its high-level API lacks;
Locate, because this build's kmip_bio_locate sends its Locate payload under Operation
Create (and crashes in the Create encoder before anything is sent); and the refusals,
whose Result Reason its high-level calls do not hand back.

What it exercises: Create from a template (name, algorithm, length, usage mask, activation
date); Locate by name (as RGW turns a key id into a unique identifier) and by attributes
alone (object type, algorithm, length, state); Get without wrapping (RGW's call: the raw
material) and with a Key Wrapping Specification naming an AES key-wrapping key (AES Key
Wrap, RFC 3394, unwrapped here and compared); the certificate the test registered, found
by Locate on its object type, its name and its Certificate Type, its attributes read
(object type, certificate length, state), and destroyed (this libkmip decodes no
certificate object, so it cannot Get one); refusals (an unknown key, a
wrapping key that may neither wrap nor encrypt, a Destroy of an Active key); Destroy of a
Pre-Active key and the Get that then fails.

Prints OK at the end; any failure raises.
"""

import ctypes as C
import os
import time

from cryptography.hazmat.primitives.keywrap import aes_key_unwrap

lib = C.CDLL(os.environ["ARCA_LIBKMIP"])
ssl = C.CDLL("libssl.so.3")
crypto = C.CDLL("libcrypto.so.3")

# --- libkmip's ABI as this build lays it out ----------------------------------------------
# Declared here from libkmip's public headers and checked against the library itself (what
# its encoder writes for each value): Ceph's fork differs from upstream libkmip in the
# attribute numbering and the Locate payloads.

KMIP_1_2 = 2
KMIP_OK = 0

OP_LOCATE, OP_GET, OP_GET_ATTRIBUTES = 0x08, 0x0A, 0x0B
OBJ_CERTIFICATE, OBJ_SYMMETRIC_KEY = 0x01, 0x02
ALG_AES = 0x03
MASK_ENCRYPT, MASK_DECRYPT, MASK_WRAP, MASK_UNWRAP = 0x04, 0x08, 0x10, 0x20
FORMAT_RAW = 0x01
WRAP_ENCRYPT = 0x01
MODE_NIST_KEY_WRAP = 0x0D
ENCODE_NO_ENCODING = 0x01
STATE_PRE_ACTIVE, STATE_ACTIVE = 0x01, 0x02
STATUS_SUCCESS, STATUS_FAILED = 0x00, 0x01
REASON_ITEM_NOT_FOUND = 0x01
TYPE_BYTE_STRING = 0x08
NAME_TEXT = 0x01

# Ceph's libkmip numbers its attribute kinds in the order of KMIP 1.x's attribute list.
ATTR_NAME, ATTR_OBJECT_TYPE, ATTR_ALGORITHM, ATTR_LENGTH = 1, 2, 3, 4
ATTR_CERTIFICATE_TYPE, ATTR_CERTIFICATE_LENGTH = 7, 8
ATTR_USAGE_MASK, ATTR_STATE, ATTR_ACTIVATION_DATE = 18, 21, 23
CERT_X509 = 0x01


class TextString(C.Structure):
    _fields_ = [("value", C.POINTER(C.c_char)), ("size", C.c_size_t)]


class ByteString(C.Structure):
    _fields_ = [("value", C.POINTER(C.c_uint8)), ("size", C.c_size_t)]


class Name(C.Structure):
    _fields_ = [("value", C.POINTER(TextString)), ("type", C.c_int)]


class Attribute(C.Structure):
    _fields_ = [("type", C.c_int), ("index", C.c_int32), ("value", C.c_void_p)]


class TemplateAttribute(C.Structure):
    _fields_ = [
        ("names", C.c_void_p),
        ("name_count", C.c_size_t),
        ("attributes", C.POINTER(Attribute)),
        ("attribute_count", C.c_size_t),
    ]


class ProtocolVersion(C.Structure):
    _fields_ = [("major", C.c_int32), ("minor", C.c_int32)]


class EncryptionKeyInformation(C.Structure):
    _fields_ = [
        ("unique_identifier", C.POINTER(TextString)),
        ("cryptographic_parameters", C.c_void_p),
    ]


class KeyWrappingSpecification(C.Structure):
    _fields_ = [
        ("wrapping_method", C.c_int),
        ("encryption_key_info", C.POINTER(EncryptionKeyInformation)),
        ("mac_signature_key_info", C.c_void_p),
        ("attribute_names", C.c_void_p),
        ("attribute_name_count", C.c_size_t),
        ("encoding_option", C.c_int),
    ]


class GetRequestPayload(C.Structure):
    _fields_ = [
        ("unique_identifier", C.POINTER(TextString)),
        ("key_format_type", C.c_int),
        ("key_compression_type", C.c_int),
        ("key_wrapping_spec", C.POINTER(KeyWrappingSpecification)),
        ("key_wrap_type", C.c_int),
    ]


class RequestBatchItem(C.Structure):
    _fields_ = [
        ("operation", C.c_int),
        ("unique_batch_item_id", C.c_void_p),
        ("request_payload", C.c_void_p),
        ("ephemeral", C.c_int32),
    ]


class RequestMessage(C.Structure):
    _fields_ = [
        ("request_header", C.c_void_p),
        ("batch_items", C.POINTER(RequestBatchItem)),
        ("batch_count", C.c_size_t),
    ]


class ResponseBatchItem(C.Structure):
    _fields_ = [
        ("operation", C.c_int),
        ("unique_batch_item_id", C.c_void_p),
        ("result_status", C.c_int),
        ("result_reason", C.c_int),
        ("result_message", C.POINTER(TextString)),
        ("asynchronous_correlation_value", C.c_void_p),
        ("response_payload", C.c_void_p),
    ]


class ResponseMessage(C.Structure):
    _fields_ = [
        ("response_header", C.c_void_p),
        ("batch_items", C.POINTER(ResponseBatchItem)),
        ("batch_count", C.c_size_t),
    ]


class KeyWrappingData(C.Structure):
    _fields_ = [
        ("wrapping_method", C.c_int),
        ("encryption_key_info", C.POINTER(EncryptionKeyInformation)),
        ("mac_signature_key_info", C.c_void_p),
        ("mac_signature", C.c_void_p),
        ("iv_counter_nonce", C.c_void_p),
        ("encoding_option", C.c_int),
    ]


class KeyValue(C.Structure):
    _fields_ = [
        ("key_material", C.POINTER(ByteString)),
        ("attributes", C.c_void_p),
        ("attribute_count", C.c_size_t),
    ]


class KeyBlock(C.Structure):
    _fields_ = [
        ("key_format_type", C.c_int),
        ("key_compression_type", C.c_int),
        ("key_value", C.c_void_p),
        ("key_value_type", C.c_int),
        ("cryptographic_algorithm", C.c_int),
        ("cryptographic_length", C.c_int32),
        ("key_wrapping_data", C.POINTER(KeyWrappingData)),
    ]


class SymmetricKey(C.Structure):
    _fields_ = [("key_block", C.POINTER(KeyBlock))]


class GetResponsePayload(C.Structure):
    _fields_ = [
        ("object_type", C.c_int),
        ("unique_identifier", C.POINTER(TextString)),
        ("object", C.c_void_p),
    ]


class RequestHeader(C.Structure):
    _fields_ = [
        ("protocol_version", C.POINTER(ProtocolVersion)),
        ("maximum_response_size", C.c_int32),
        ("asynchronous_indicator", C.c_int32),
        ("authentication", C.c_void_p),
        ("batch_error_continuation_option", C.c_int),
        ("batch_order_option", C.c_int32),
        ("time_stamp", C.c_int64),
        ("batch_count", C.c_int32),
        ("rest", C.c_uint8 * 64),  # the 1.2+ fields, set by kmip_init_request_header
    ]


class LocateRequestPayload(C.Structure):
    """The Locate request payload as this libkmip lays it out (kmip_bio_locate's own)."""
    _fields_ = [
        ("maximum_items", C.c_int64),
        ("offset_items", C.c_int64),
        ("storage_status_mask", C.c_int32),
        ("group_member_option", C.c_int32),
        ("attributes", C.POINTER(Attribute)),
        ("attribute_count", C.c_int32),
    ]


class LocateResponsePayload(C.Structure):
    _fields_ = [
        ("located_items", C.c_int32),
        ("unique_identifiers", C.POINTER(TextString)),
        ("count", C.c_size_t),
    ]


class GetAttributesRequestPayload(C.Structure):
    _fields_ = [
        ("unique_identifier", C.POINTER(TextString)),
        ("attribute_names", C.POINTER(C.c_int)),  # attribute kinds, by number
        ("attribute_name_count", C.c_int),
    ]


class GetAttributesResponsePayload(C.Structure):
    _fields_ = [
        ("unique_identifier", C.POINTER(TextString)),
        ("attributes", C.POINTER(Attribute)),
        ("attribute_count", C.c_int),
    ]


VP = C.c_void_p
for name, res, args in [
    ("kmip_init", None, [VP, VP, C.c_size_t, C.c_int]),
    ("kmip_set_buffer", None, [VP, VP, C.c_size_t]),
    ("kmip_init_request_header", None, [VP]),
    ("kmip_init_request_batch_item", None, [VP]),
    ("kmip_init_protocol_version", None, [VP, C.c_int]),
    ("kmip_init_cryptographic_parameters", None, [VP]),
    ("kmip_encode_request_message", C.c_int, [VP, VP]),
    ("kmip_decode_response_message", C.c_int, [VP, VP]),
    ("kmip_bio_send_request_encoding", C.c_int,
     [VP, VP, VP, C.c_int, C.POINTER(VP), C.POINTER(C.c_int)]),
    ("kmip_bio_create_symmetric_key", C.c_int,
     [VP, C.POINTER(TemplateAttribute), C.POINTER(VP), C.POINTER(C.c_int)]),
    ("kmip_bio_get_symmetric_key", C.c_int,
     [VP, C.c_char_p, C.c_int, C.POINTER(VP), C.POINTER(C.c_int)]),
    ("kmip_bio_destroy_symmetric_key", C.c_int, [VP, C.c_char_p, C.c_int]),
]:
    f = getattr(lib, name)
    f.restype = res
    f.argtypes = args

for name, res, args in [
    ("TLS_client_method", VP, []),
    ("SSL_CTX_new", VP, [VP]),
    ("SSL_CTX_use_certificate_chain_file", C.c_int, [VP, C.c_char_p]),
    ("SSL_CTX_use_PrivateKey_file", C.c_int, [VP, C.c_char_p, C.c_int]),
    ("SSL_CTX_load_verify_locations", C.c_int, [VP, C.c_char_p, C.c_char_p]),
    ("SSL_CTX_set_verify", None, [VP, C.c_int, VP]),
    ("BIO_new_ssl_connect", VP, [VP]),
    ("SSL_set1_host", C.c_int, [VP, C.c_char_p]),
]:
    f = getattr(ssl, name)
    f.restype = res
    f.argtypes = args
crypto.BIO_ctrl.restype = C.c_long
crypto.BIO_ctrl.argtypes = [VP, C.c_int, C.c_long, VP]
crypto.BIO_free_all.argtypes = [VP]

BIO_C_SET_CONNECT, BIO_C_DO_STATE_MACHINE, BIO_C_GET_SSL = 100, 101, 110

# Everything handed to C stays referenced here until the process ends.
keep = []


def text(s: bytes) -> TextString:
    buf = C.create_string_buffer(s)
    keep.append(buf)
    return TextString(C.cast(buf, C.POINTER(C.c_char)), len(s))


def read_text(ts) -> str:
    return C.string_at(ts.contents.value, ts.contents.size).decode()


def connect():
    """An OpenSSL BIO to the server: the client certificate, the server's checked."""
    ctx = ssl.SSL_CTX_new(ssl.TLS_client_method())
    assert ctx
    assert ssl.SSL_CTX_use_certificate_chain_file(ctx, os.environ["KMIP_CERT"].encode()) == 1
    assert ssl.SSL_CTX_use_PrivateKey_file(ctx, os.environ["KMIP_KEY"].encode(), 1) == 1
    assert ssl.SSL_CTX_load_verify_locations(ctx, os.environ["KMIP_CA"].encode(), None) == 1
    ssl.SSL_CTX_set_verify(ctx, 1, None)  # SSL_VERIFY_PEER
    bio = ssl.BIO_new_ssl_connect(ctx)
    assert bio
    s = VP()
    crypto.BIO_ctrl(bio, BIO_C_GET_SSL, 0, C.byref(s))
    assert ssl.SSL_set1_host(s, b"localhost") == 1
    target = f"{os.environ['KMIP_HOST']}:{os.environ['KMIP_PORT']}".encode()
    keep.append(target)
    crypto.BIO_ctrl(bio, BIO_C_SET_CONNECT, 0, C.c_char_p(target))
    assert crypto.BIO_ctrl(bio, BIO_C_DO_STATE_MACHINE, 0, None) == 1, "TLS handshake"
    return bio


def attr(kind: int, value) -> Attribute:
    keep.append(value)
    return Attribute(kind, -1, C.cast(C.pointer(value), C.c_void_p))


def name_attr(name: bytes) -> Attribute:
    ts = text(name)
    keep.append(ts)
    return attr(ATTR_NAME, Name(C.pointer(ts), NAME_TEXT))


def create_aes(bio, name: bytes, mask: int, active: bool) -> str:
    attrs = [
        attr(ATTR_ALGORITHM, C.c_int32(ALG_AES)),
        attr(ATTR_LENGTH, C.c_int32(256)),
        attr(ATTR_USAGE_MASK, C.c_int32(mask)),
        name_attr(name),
    ]
    if active:
        attrs.append(attr(ATTR_ACTIVATION_DATE, C.c_int64(int(time.time()) - 60)))
    arr = (Attribute * len(attrs))(*attrs)
    keep.append(arr)
    ta = TemplateAttribute(None, 0, arr, len(attrs))
    uid, size = VP(), C.c_int()
    rc = lib.kmip_bio_create_symmetric_key(bio, C.byref(ta), C.byref(uid), C.byref(size))
    assert rc == KMIP_OK, f"create {name}: {rc}"
    return C.string_at(uid, size.value).decode()


def get_raw(bio, uid: str) -> bytes:
    key, size = VP(), C.c_int()
    rc = lib.kmip_bio_get_symmetric_key(bio, uid.encode(), len(uid), C.byref(key), C.byref(size))
    assert rc == KMIP_OK, f"get {uid}: {rc}"
    return C.string_at(key, size.value)


def send(bio, operation: int, payload):
    """One request built, sent and decoded by libkmip itself: its batch item."""
    kctx = C.create_string_buffer(16384)  # the KMIP context: opaque here
    buf = C.create_string_buffer(16384)
    keep.extend([kctx, buf])
    lib.kmip_init(kctx, buf, len(buf), KMIP_1_2)
    pv = ProtocolVersion()
    lib.kmip_init_protocol_version(C.byref(pv), KMIP_1_2)
    header = RequestHeader()
    lib.kmip_init_request_header(C.byref(header))
    header.protocol_version = C.pointer(pv)
    header.maximum_response_size = 1 << 20
    header.batch_count = 1
    item = RequestBatchItem()
    lib.kmip_init_request_batch_item(C.byref(item))
    item.operation = operation
    item.request_payload = C.cast(C.pointer(payload), C.c_void_p)
    msg = RequestMessage(C.cast(C.pointer(header), C.c_void_p), C.pointer(item), 1)
    keep.extend([pv, header, payload, item, msg])

    rc = lib.kmip_encode_request_message(kctx, C.byref(msg))
    assert rc == KMIP_OK, f"libkmip could not encode operation {operation}: {rc}"
    length = 8 + int.from_bytes(buf.raw[4:8], "big")
    resp, resp_size = VP(), C.c_int()
    rc = lib.kmip_bio_send_request_encoding(kctx, bio, buf, length, C.byref(resp),
                                            C.byref(resp_size))
    assert rc == KMIP_OK, f"send: {rc}"
    lib.kmip_set_buffer(kctx, resp, resp_size.value)
    rm = ResponseMessage()
    rc = lib.kmip_decode_response_message(kctx, C.byref(rm))
    assert rc == KMIP_OK, f"libkmip could not decode the response to {operation}: {rc}"
    assert rm.batch_count == 1
    keep.append(rm)
    return rm.batch_items[0]


def get(bio, uid: str, wrap_with: str = None):
    uid_ts = text(uid.encode())
    payload = GetRequestPayload(C.pointer(uid_ts), 0, 0, None, 0)
    if wrap_with is not None:
        params = C.create_string_buffer(256)
        lib.kmip_init_cryptographic_parameters(params)
        C.cast(params, C.POINTER(C.c_int))[0] = MODE_NIST_KEY_WRAP  # block_cipher_mode
        kek_ts = text(wrap_with.encode())
        eki = EncryptionKeyInformation(C.pointer(kek_ts), C.cast(params, C.c_void_p))
        kws = KeyWrappingSpecification(WRAP_ENCRYPT, C.pointer(eki), None, None, 0,
                                       ENCODE_NO_ENCODING)
        keep.extend([params, kek_ts, eki, kws])
        payload.key_wrapping_spec = C.pointer(kws)
        payload.key_format_type = FORMAT_RAW
    keep.append(uid_ts)
    return send(bio, OP_GET, payload)


def locate(bio, attrs) -> list:
    arr = (Attribute * len(attrs))(*attrs)
    keep.append(arr)
    item = send(bio, OP_LOCATE, LocateRequestPayload(0, 0, 0, 0, arr, len(attrs)))
    assert item.result_status == STATUS_SUCCESS, item.result_status
    p = C.cast(item.response_payload, C.POINTER(LocateResponsePayload)).contents
    return [read_text(C.pointer(p.unique_identifiers[i])) for i in range(p.count)]


def get_attributes(bio, uid: str, kinds: list) -> dict:
    """Get Attributes naming the attributes: each integer-valued one by its kind."""
    uid_ts = text(uid.encode())
    names = (C.c_int * len(kinds))(*kinds)
    keep.extend([uid_ts, names])
    item = send(bio, OP_GET_ATTRIBUTES,
                GetAttributesRequestPayload(C.pointer(uid_ts), names, len(kinds)))
    assert item.result_status == STATUS_SUCCESS, item.result_status
    p = C.cast(item.response_payload, C.POINTER(GetAttributesResponsePayload)).contents
    assert read_text(p.unique_identifier) == uid
    return {p.attributes[i].type: C.cast(p.attributes[i].value, C.POINTER(C.c_int32))[0]
            for i in range(p.attribute_count)}


def refused(item, reason: int = None):
    msg = read_text(item.result_message) if item.result_message else ""
    assert item.result_status == STATUS_FAILED, (item.result_status, msg)
    if reason is not None:
        assert item.result_reason == reason, (item.result_reason, msg)
    return msg


def key_block(item) -> KeyBlock:
    assert item.result_status == STATUS_SUCCESS, (
        item.result_status, item.result_reason,
        read_text(item.result_message) if item.result_message else "")
    p = C.cast(item.response_payload, C.POINTER(GetResponsePayload)).contents
    assert p.object_type == OBJ_SYMMETRIC_KEY, p.object_type
    return C.cast(p.object, C.POINTER(SymmetricKey)).contents.key_block.contents


bio = connect()

# Create: a data key (Pre-Active) and a key-wrapping key (active from its Activation Date).
dek = create_aes(bio, b"rgw-bucket-key", MASK_ENCRYPT | MASK_DECRYPT, active=False)
kek = create_aes(bio, b"rgw-kek", MASK_WRAP | MASK_UNWRAP, active=True)
other = create_aes(bio, b"rgw-other", MASK_DECRYPT, active=True)
print("created:", dek, kek, other)

# Locate by name, as RGW turns a key id into a unique identifier: exactly that key.
by_name = locate(bio, [attr(ATTR_OBJECT_TYPE, C.c_int32(OBJ_SYMMETRIC_KEY)),
                       name_attr(b"rgw-bucket-key")])
assert by_name == [dek], by_name
assert locate(bio, [name_attr(b"no-such-key")]) == []
# Locate by attributes alone: every AES-256 key; Active ones only when the state says so.
aes256 = locate(bio, [attr(ATTR_OBJECT_TYPE, C.c_int32(OBJ_SYMMETRIC_KEY)),
                      attr(ATTR_ALGORITHM, C.c_int32(ALG_AES)),
                      attr(ATTR_LENGTH, C.c_int32(256))])
assert sorted(aes256) == sorted([dek, kek, other]), aes256
active = locate(bio, [attr(ATTR_ALGORITHM, C.c_int32(ALG_AES)),
                      attr(ATTR_STATE, C.c_int32(STATE_ACTIVE))])
assert sorted(active) == sorted([kek, other]), active
assert locate(bio, [attr(ATTR_STATE, C.c_int32(STATE_PRE_ACTIVE)),
                    attr(ATTR_OBJECT_TYPE, C.c_int32(OBJ_SYMMETRIC_KEY))]) == [dek]

# Get without wrapping: RGW's call, the 32 raw bytes; the same through the built request.
material = get_raw(bio, dek)
assert len(material) == 32, material
block = key_block(get(bio, dek))
assert block.key_format_type == FORMAT_RAW and not block.key_wrapping_data
raw = C.cast(block.key_value, C.POINTER(KeyValue)).contents.key_material.contents
assert C.string_at(raw.value, raw.size) == material

# Get with a Key Wrapping Specification: the key comes back wrapped under the KEK with AES
# Key Wrap; the Key Wrapping Data names the KEK; unwrapping gives the same 32 bytes.
block = key_block(get(bio, dek, wrap_with=kek))
wd = block.key_wrapping_data
assert wd, "no Key Wrapping Data"
assert wd.contents.wrapping_method == WRAP_ENCRYPT
assert read_text(wd.contents.encryption_key_info.contents.unique_identifier) == kek
if block.key_value_type == TYPE_BYTE_STRING:
    wrapped_bs = C.cast(block.key_value, C.POINTER(ByteString)).contents
else:
    wrapped_bs = C.cast(block.key_value, C.POINTER(KeyValue)).contents.key_material.contents
wrapped = C.string_at(wrapped_bs.value, wrapped_bs.size)
assert len(wrapped) == 40 and material not in wrapped, wrapped.hex()
assert aes_key_unwrap(get_raw(bio, kek), wrapped) == material
print("wrapped get: %d bytes under %s" % (len(wrapped), kek))

# A key that may neither wrap nor encrypt cannot wrap; an unknown key is Item Not Found.
print("refused wrap:", refused(get(bio, dek, wrap_with=other)))
print("refused get:", refused(get(bio, "no-such-key"), REASON_ITEM_NOT_FOUND))

# The certificate the test registered: Locate finds it by object type and by name.
cert_name = os.environ["KMIP_CERT_NAME"].encode()
certs = locate(bio, [attr(ATTR_OBJECT_TYPE, C.c_int32(OBJ_CERTIFICATE))])
assert certs == [os.environ["KMIP_CERT_ID"]], certs
assert locate(bio, [attr(ATTR_OBJECT_TYPE, C.c_int32(OBJ_CERTIFICATE)),
                    name_attr(cert_name)]) == certs
assert locate(bio, [attr(ATTR_OBJECT_TYPE, C.c_int32(OBJ_SYMMETRIC_KEY)),
                    name_attr(cert_name)]) == []
assert locate(bio, [attr(ATTR_CERTIFICATE_TYPE, C.c_int32(CERT_X509))]) == certs
# Its attributes, as the certificate states them (this libkmip's decoder has no table for
# Certificate Type values, so it cannot read that one back, though it can Locate by it).
got = get_attributes(bio, certs[0], [ATTR_OBJECT_TYPE, ATTR_CERTIFICATE_LENGTH, ATTR_STATE])
print("certificate attributes:", got)
assert got == {ATTR_OBJECT_TYPE: OBJ_CERTIFICATE,
               ATTR_CERTIFICATE_LENGTH: int(os.environ["KMIP_CERT_LENGTH"]),
               ATTR_STATE: STATE_PRE_ACTIVE}, got

# Destroy: an Active key is refused; the Pre-Active data key goes, and Get then fails.
assert lib.kmip_bio_destroy_symmetric_key(bio, other.encode(), len(other)) != KMIP_OK
assert lib.kmip_bio_destroy_symmetric_key(bio, dek.encode(), len(dek)) == KMIP_OK
refused(get(bio, dek))
assert locate(bio, [name_attr(b"rgw-bucket-key")]) == []
# The certificate goes the same way (libkmip's Destroy names no object type).
assert lib.kmip_bio_destroy_symmetric_key(bio, certs[0].encode(), len(certs[0])) == KMIP_OK
assert locate(bio, [attr(ATTR_OBJECT_TYPE, C.c_int32(OBJ_CERTIFICATE))]) == []
crypto.BIO_free_all(bio)
print("OK")
