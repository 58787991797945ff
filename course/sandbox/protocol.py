"""What the grader and the kernel server say to each other: JSON objects, one per line, on a Unix socket.

The grader (kernel.py) sends {"connection": ...} (the kernel's IPC sockets and key), later
{"files": {path: base64}, "environment": {...}} (the notebook folder's files), then
{"signal": n} for each signal it forwards; the server (zygote.py) answers
{"exit": code, "cpu": seconds} when the kernel has ended and the sandbox is wiped, after
{"error": text} if the kernel could not start.
"""

import json

SOCKET_ENV = "COURSE_SANDBOX_SOCKET"  # the kernelspec names the server's socket in its env,
FOLDER_BYTES_ENV = "COURSE_SANDBOX_FOLDER_BYTES"  # and the most a notebook's folder may send


def send(conn, message):
    """Write `message` as one line."""
    conn.sendall(json.dumps(message).encode() + b"\n")


def receive(conn, buffer):
    """The next message on `conn` (None if it closes first); `buffer` (a bytearray) keeps what follows it."""
    while b"\n" not in buffer:
        chunk = conn.recv(1 << 20)
        if not chunk:
            return None
        buffer.extend(chunk)
    return complete_messages(buffer, 1)[0]


def complete_messages(buffer, limit=-1):
    """The messages of the whole lines in `buffer` (at most `limit`), removed from it; the rest stays."""
    *lines, rest = bytes(buffer).split(b"\n", limit)
    buffer[:] = rest
    return [json.loads(line) for line in lines]
