"""What a launcher and the kernel server say to each other: JSON objects, one per line, on a Unix socket.

The launcher (launcher.py) sends {"connection": ..., "files": {path: base64},
"environment": {...}}, then {"signal": n} for each signal it gets; the server
(zygote.py) answers {"exit": code} when the kernel ends, or {"error": text} if it could not start.
"""

import json


def send(conn, message):
    """Write `message` as one line."""
    conn.sendall(json.dumps(message).encode() + b"\n")


def receive_first(conn):
    """The first message on `conn`, or None if it closes before a whole line."""
    data = bytearray()
    while b"\n" not in data:
        chunk = conn.recv(1 << 20)
        if not chunk:
            return None
        data.extend(chunk)
    return json.loads(data.partition(b"\n")[0])


def complete_messages(buffer):
    """The messages of the whole lines in `buffer` (a bytearray), removed from it; a partial line stays."""
    *lines, rest = bytes(buffer).split(b"\n")
    buffer[:] = rest
    return [json.loads(line) for line in lines]
