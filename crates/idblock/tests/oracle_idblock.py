#!/usr/bin/env python3
"""An independent check of an ID block and ID authentication structure, with Python's
`cryptography` (OpenSSL) and the offsets of the SEV-SNP firmware ABI written out again here
(nothing is taken from snpkit). Run by crates/idblock/tests/oracles.rs.

usage: oracle_idblock.py BLOCK_FILE AUTH_FILE ID_KEY_PEM [AUTHOR_KEY_PEM]

Prints one JSON object: the fields as read, whether each signature verifies, whether each
signature equals the RFC 6979 deterministic signature OpenSSL makes with the private key, the
key structures rebuilt from the PEM keys, and the SHA-384 key digests the PSP would report.
"""
import hashlib
import json
import struct
import sys

import cryptography
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, utils

# ID authentication information (SNP_LAUNCH_FINISH).
ID_BLOCK_SIG = (0x040, 0x240)
ID_KEY = (0x240, 0x644)
ID_KEY_SIG = (0x680, 0x880)
AUTHOR_KEY = (0x880, 0xC84)
RESERVED = [(0x008, 0x040), (0x644, 0x680), (0xC84, 0x1000)]


def part(b, r):
    return b[r[0]:r[1]]


def le(b):
    return int.from_bytes(b, "little")


def signature(sig):
    """(r, s, reserved bytes are zero) of a 0x200-byte ECDSA signature: R and S are 72-byte
    little-endian fields, the rest reserved."""
    return le(sig[0x00:0x48]), le(sig[0x48:0x90]), not any(sig[0x90:])


def key_structure(public_key):
    """The 0x404-byte public key structure: CURVE = 2 (P-384), QX, QY (72 bytes each, little
    endian), zeros."""
    n = public_key.public_numbers()
    out = struct.pack("<I", 2) + n.x.to_bytes(72, "little") + n.y.to_bytes(72, "little")
    return out + bytes(0x404 - len(out))


def verifies(public_key, r, s, message):
    try:
        public_key.verify(utils.encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA384()))
        return True
    except InvalidSignature:
        return False


def rfc6979(private_key, message):
    der = private_key.sign(message, ec.ECDSA(hashes.SHA384(), deterministic_signing=True))
    return utils.decode_dss_signature(der)


def load(path):
    with open(path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), password=None)
    assert isinstance(key.curve, ec.SECP384R1), "not a P-384 key"
    return key


def main():
    block = open(sys.argv[1], "rb").read()
    auth = open(sys.argv[2], "rb").read()
    id_key = load(sys.argv[3])
    author_key = load(sys.argv[4]) if len(sys.argv) > 4 else None

    out = {
        "cryptography": cryptography.__version__,
        "block_len": len(block),
        "auth_len": len(auth),
        # ID block: LD[48] FAMILY_ID[16] IMAGE_ID[16] VERSION u32 GUEST_SVN u32 POLICY u64
        "ld": block[0x00:0x30].hex(),
        "family_id": block[0x30:0x40].hex(),
        "image_id": block[0x40:0x50].hex(),
        "version": struct.unpack_from("<I", block, 0x50)[0],
        "guest_svn": struct.unpack_from("<I", block, 0x54)[0],
        "policy": struct.unpack_from("<Q", block, 0x58)[0],
        "id_key_algo": struct.unpack_from("<I", auth, 0x000)[0],
        "author_key_algo": struct.unpack_from("<I", auth, 0x004)[0],
        "reserved_zero": all(not any(part(auth, r)) for r in RESERVED),
    }

    r, s, tail_zero = signature(part(auth, ID_BLOCK_SIG))
    out["id_key_is_the_pem_key"] = part(auth, ID_KEY) == key_structure(id_key.public_key())
    out["id_block_sig_tail_zero"] = tail_zero
    out["id_block_sig_verifies"] = verifies(id_key.public_key(), r, s, block)
    out["id_block_sig_is_rfc6979"] = (r, s) == rfc6979(id_key, block)
    out["id_key_digest"] = hashlib.sha384(part(auth, ID_KEY)).hexdigest()

    if author_key is None:
        out["author_part_zero"] = not any(auth[ID_KEY_SIG[0]:AUTHOR_KEY[1]])
    else:
        r, s, tail_zero = signature(part(auth, ID_KEY_SIG))
        out["author_key_is_the_pem_key"] = part(auth, AUTHOR_KEY) == key_structure(
            author_key.public_key())
        out["id_key_sig_tail_zero"] = tail_zero
        out["id_key_sig_verifies"] = verifies(author_key.public_key(), r, s, part(auth, ID_KEY))
        out["id_key_sig_is_rfc6979"] = (r, s) == rfc6979(author_key, part(auth, ID_KEY))
        out["author_key_digest"] = hashlib.sha384(part(auth, AUTHOR_KEY)).hexdigest()

    print(json.dumps(out))


if __name__ == "__main__":
    main()
