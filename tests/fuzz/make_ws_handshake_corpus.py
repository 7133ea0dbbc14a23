#!/usr/bin/env python3
"""Writes the seed corpus of notify-fuzz-ws-handshake into corpus/ws_handshake/.

Each file is one setup byte (see ws_handshake_fuzz.cpp) followed by an HTTP request head,
the way browsers, Node's `ws` and curl send it. Run it again after changing the seeds; the
output is deterministic.
"""
import os

# Setup byte bits. 0x40 keeps the byte a printable letter.
BASE = 0x40
ORIGIN_CHECK, ANY_ORIGIN, SELECTOR, SELECTOR_DECLINES, DEFLATE_OFF = 0x01, 0x02, 0x04, 0x08, 0x10

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


def head(request_line, *headers):
    return ("\r\n".join((request_line,) + headers) + "\r\n\r\n").encode()


seeds = {
    "chrome": (
        BASE | ORIGIN_CHECK,
        head(
            "GET /api/notifications/ws?user=alice HTTP/1.1",
            "Host: example.com",
            "Connection: Upgrade",
            "Pragma: no-cache",
            "Cache-Control: no-cache",
            "User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/120.0.0.0 Safari/537.36",
            "Upgrade: websocket",
            "Origin: https://example.com",
            "Sec-WebSocket-Version: 13",
            "Accept-Encoding: gzip, deflate, br",
            "Accept-Language: en-US,en;q=0.9",
            "Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
        ),
    ),
    "firefox-subprotocols": (
        BASE | ORIGIN_CHECK | SELECTOR,
        head(
            "GET /api/notifications/ws?user=bob&lastEventId=42 HTTP/1.1",
            "Host: example.com",
            "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
            "Accept: */*",
            "Accept-Language: en-US,en;q=0.5",
            "Accept-Encoding: gzip, deflate, br",
            "Sec-WebSocket-Version: 13",
            "Origin: https://example.com",
            "Sec-WebSocket-Protocol: notify.v2, notify.v1",
            "Sec-WebSocket-Extensions: permessage-deflate",
            "Sec-WebSocket-Key: " + KEY,
            "Connection: keep-alive, Upgrade",
            "Sec-Fetch-Dest: websocket",
            "Sec-Fetch-Mode: websocket",
            "Sec-Fetch-Site: same-origin",
            "Pragma: no-cache",
            "Cache-Control: no-cache",
            "Upgrade: websocket",
        ),
    ),
    "safari-two-extensions": (
        BASE | ORIGIN_CHECK | ANY_ORIGIN,
        head(
            "GET /api/notifications/ws?user=carol HTTP/1.1",
            "Host: example.com",
            "Origin: https://example.com",
            "Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Extensions: x-webkit-deflate-frame",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=15",
            "Sec-WebSocket-Version: 13",
        ),
    ),
    "node-ws": (
        BASE,
        head(
            "GET /api/notifications/ws?user=dave HTTP/1.1",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: +p5nRE5bUKRTQcg6zRNNhg==",
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
            "Host: 127.0.0.1:8080",
        ),
    ),
    "node-ws-deflate-params": (
        BASE | SELECTOR,
        head(
            "GET /api/notifications/ws HTTP/1.1",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: 3ZKrKEXl8Vd/9hGjYIgJTw==",
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Protocol: chat,superchat",
            "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover; "
            "server_no_context_takeover; server_max_window_bits=15; client_max_window_bits=10",
            "Host: 127.0.0.1:8080",
        ),
    ),
    "offers-declined-then-accepted": (
        BASE,
        head(
            "GET /ws HTTP/1.1",
            "Host: localhost",
            "Upgrade: WebSocket",
            "Connection: upgrade",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: " + KEY,
            'Sec-WebSocket-Extensions: foo; bar="a,b", permessage-deflate; '
            "server_max_window_bits=10, permessage-deflate; "
            'client_max_window_bits="9"; client_no_context_takeover',
        ),
    ),
    "curl": (
        BASE | DEFLATE_OFF,
        head(
            "GET /api/notifications/ws?user=alice HTTP/1.1",
            "Host: 127.0.0.1:8080",
            "User-Agent: curl/7.88.1",
            "Accept: */*",
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: Y3VybC1mdXp6LTE2Ynl0ZQ==",
        ),
    ),
    "curl-post": (
        BASE,
        head(
            "POST /api/notifications/ws HTTP/1.1",
            "Host: 127.0.0.1:8080",
            "User-Agent: curl/7.88.1",
            "Connection: Upgrade",
            "Upgrade: websocket",
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Key: " + KEY,
        ),
    ),
    "old-version": (
        BASE,
        head(
            "GET /chat HTTP/1.1",
            "Host: server.example.com",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: " + KEY,
            "Sec-WebSocket-Origin: http://example.com",
            "Sec-WebSocket-Version: 8",
        ),
    ),
    "bad-key": (
        BASE,
        head(
            "GET /chat HTTP/1.1",
            "Host: server.example.com",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ",
            "Sec-WebSocket-Version: 13",
        ),
    ),
    "evil-origin": (
        BASE | ORIGIN_CHECK,
        head(
            "GET /api/notifications/ws?user=alice HTTP/1.1",
            "Host: example.com",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Origin: https://evil.example",
            "Sec-WebSocket-Key: " + KEY,
            "Sec-WebSocket-Version: 13",
        ),
    ),
    # Found by fuzzing: a subprotocol that is not a token was offered, and echoed (CR and all).
    "regression-subprotocol-cr": (
        BASE | SELECTOR,
        head(
            "GET / HTTP/1.1",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: " + KEY,
            "Sec-WebSocket-Version: 13",
            "Sec-WebSocket-Protocol: a\rSet-Cookie: x=1, notify.v1",
        ),
    ),
    # One-character names stand for the handshake's headers ('0' Upgrade .. '7' Protocol).
    "short-names": (
        BASE | SELECTOR,
        head(
            "GET / HTTP/1.1",
            "0: websocket",
            "1: Upgrade",
            "2: " + KEY,
            "3: 13",
            "4: https://example.com",
            "5: example.com",
            "6: permessage-deflate; server_max_window_bits=15",
            "7: notify.v1",
        ),
    ),
}

out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "ws_handshake")
os.makedirs(out_dir, exist_ok=True)
for name, (setup, request) in sorted(seeds.items()):
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(bytes([setup]) + request)
print(f"{len(seeds)} seeds in {out_dir}")
