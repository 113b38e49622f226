"""A second, independent reader of the shardpipe record stream
(formats/recstream.md), in Python, for the reference tests. Verifies both
checksums of every frame and the trailer count; raises ValueError otherwise.

    meta, records = read_stream(open("s.sprs", "rb").read())
    records: list of dicts: key, kind, split, dtype, codec, label, label2, shape, payload
"""
import json
import struct

import xxhash

MAGIC = b"\x89SPR\r\n\x1a\n"
KINDS = {1: "blob", 2: "encoded", 3: "pixels"}
SPLITS = {0: "none", 1: "train", 2: "test", 3: "val"}


def read_stream(data):
    if data[:8] != MAGIC:
        raise ValueError("bad magic")
    version, reserved = struct.unpack_from("<II", data, 8)
    if version != 1 or reserved:
        raise ValueError("bad version")
    pos, meta, records = 16, None, []
    while True:
        if pos + 16 > len(data):
            raise ValueError("truncated")
        ftype, _flags, head_len, _res, payload_len = struct.unpack_from("<BBHIQ", data, pos)
        head = data[pos + 16:pos + 16 + head_len]
        (head_check,) = struct.unpack_from("<Q", data, pos + 16 + head_len)
        if xxhash.xxh3_64_intdigest(data[pos:pos + 16 + head_len]) != head_check:
            raise ValueError("frame header checksum")
        p = pos + 16 + head_len + 8
        payload = data[p:p + payload_len]
        (payload_check,) = struct.unpack_from("<Q", data, p + payload_len)
        if xxhash.xxh3_64_intdigest(payload) != payload_check:
            raise ValueError("payload checksum")
        pos = p + payload_len + 8
        if ftype == ord("M"):
            meta = json.loads(payload)
        elif ftype == ord("E"):
            (count,) = struct.unpack_from("<Q", head)
            if count != len(records) or pos != len(data):
                raise ValueError("trailer")
            return meta, records
        elif ftype == ord("R"):
            kind, split, dtype, codec, label, label2, h, w, c, key_len = struct.unpack_from("<BBBBiiIIIH", head)
            records.append({"key": head[26:26 + key_len].decode(), "kind": KINDS[kind], "split": SPLITS[split],
                            "dtype": dtype, "codec": codec, "label": label, "label2": label2, "shape": (h, w, c),
                            "payload": payload})
        else:
            raise ValueError("frame type")
