#!/usr/bin/env python3
"""Writes the seed corpus of notify-fuzz-ws-frame into corpus/ws_frame/.

Each file is one setup byte (see ws_frame_fuzz.cpp) followed by client bytes.
Run it again after changing the seeds; the output is deterministic.
"""
import os
import struct
import zlib

MASK = bytes([0x37, 0xFA, 0x21, 0x3D])

# Setup byte bits.
DEFLATE, SMALL_LIMIT, NO_TAKEOVER = 0x01, 0x02, 0x04


def split_at(fraction_of_31):
    return fraction_of_31 << 3


def frame(first, payload, mask=MASK):
    size = len(payload)
    if size <= 125:
        head = bytes([first, 0x80 | size])
    elif size <= 0xFFFF:
        head = bytes([first, 0x80 | 126]) + struct.pack(">H", size)
    else:
        head = bytes([first, 0x80 | 127]) + struct.pack(">Q", size)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def deflate(data):
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


TEXT, BINARY, CLOSE, PING, PONG, CONT = 0x1, 0x2, 0x8, 0x9, 0xA, 0x0
FIN, RSV1 = 0x80, 0x40

seeds = {
    "text-hello": (split_at(0), frame(FIN | TEXT, b"Hello")),
    "text-fragmented": (
        split_at(15),
        frame(TEXT, b"Hel") + frame(FIN | CONT, b"lo"),
    ),
    "ping-between-fragments": (
        split_at(9),
        frame(TEXT, b"Hel") + frame(FIN | PING, b"ping") + frame(FIN | CONT, b"lo"),
    ),
    "pong": (split_at(3), frame(FIN | PONG, b"Hello")),
    "close-normal-reason": (
        split_at(20),
        frame(FIN | CLOSE, struct.pack(">H", 1000) + "bye \u00e9".encode()),
    ),
    "close-bad-code": (split_at(5), frame(FIN | CLOSE, struct.pack(">H", 1005))),
    "binary-256": (split_at(2), frame(FIN | BINARY, bytes(range(256)))),
    "binary-16bit-length-nonminimal": (
        split_at(1),
        bytes([FIN | BINARY, 0x80 | 126, 0, 3]) + MASK + bytes(b ^ MASK[i] for i, b in enumerate(b"abc")),
    ),
    "oversize-header": (
        split_at(31) | SMALL_LIMIT,
        bytes([FIN | BINARY, 0x80 | 127]) + struct.pack(">Q", 1 << 40) + MASK + b"xxxx",
    ),
    "utf8-split-across-fragments": (
        split_at(12),
        frame(TEXT, "\u03ba\u1f79".encode()[:3]) + frame(FIN | CONT, "\u03ba\u1f79".encode()[3:]),
    ),
    "utf8-invalid-middle": (
        split_at(7),
        frame(TEXT, "\u03ba\u1f79\u03c3\u03bc\u03b5".encode() + b"\xed\xa0\x80")
        + frame(FIN | CONT, b"edited"),
    ),
    "reserved-bits-and-opcode": (split_at(0), frame(FIN | 0x20 | 0x3, b"x")),
    "deflate-hello": (split_at(10) | DEFLATE, frame(FIN | RSV1 | TEXT, deflate(b"Hello"))),
    "deflate-takeover": (
        split_at(16) | DEFLATE,
        frame(FIN | RSV1 | TEXT, bytes.fromhex("f248cdc9c90700"))
        + frame(FIN | RSV1 | TEXT, bytes.fromhex("f200110000")),
    ),
    "deflate-fragmented-no-takeover": (
        split_at(18) | DEFLATE | NO_TAKEOVER,
        frame(RSV1 | TEXT, deflate(b'{"type":"notification","id":"42"}' * 8)[:20])
        + frame(FIN | PING, b"")
        + frame(FIN | CONT, deflate(b'{"type":"notification","id":"42"}' * 8)[20:]),
    ),
    "deflate-bomb-small-limit": (
        split_at(4) | DEFLATE | SMALL_LIMIT,
        frame(FIN | RSV1 | BINARY, deflate(b"\x00" * 20000)),
    ),
    "deflate-bfinal": (
        split_at(25) | DEFLATE,
        frame(FIN | RSV1 | TEXT, bytes.fromhex("f348cdc9c9070000")),
    ),
    # Found by fuzzing: whole and split feeding disagreed (1009 vs 1007).
    "regression-utf8-before-limit": (
        0x97,
        bytes.fromhex(
            "4194 37fa 01db 9dac b6ea 7139 fa21 b97f ff75 2dff 02ae e208 e861 752d 3837 fa"
        ),
    ),
    "many-messages": (
        split_at(13),
        b"".join(frame(FIN | TEXT, b"message %d" % i) for i in range(12))
        + frame(FIN | CLOSE, struct.pack(">H", 1001)),
    ),
}

out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "ws_frame")
os.makedirs(out_dir, exist_ok=True)
for name, (setup, stream) in sorted(seeds.items()):
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(bytes([setup]) + stream)
print(f"{len(seeds)} seeds in {out_dir}")
