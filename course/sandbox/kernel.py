"""The grader's side of a sandboxed kernel: jupyter_client's kernel manager, talking to the sandbox's server.

nbgrader's Execute starts kernels through jupyter_client. In a grading worker it is configured
(warm.Sandbox.nbgrader_overrides) to use SandboxKernelManager, whose provisioner asks the sandbox's
kernel server (zygote.py) for a kernel over the server's socket, which lies outside the sandbox,
instead of starting a process:

1. `prepare`: the grader connects and sends the kernel's connection settings (IPC sockets in the
   sandbox's /scratch/ipc, a fresh key). The server forks a kernel, which starts IPython up to the
   point where it needs a notebook: no student file is in it yet. This happens as soon as the
   previous kernel is gone and the sandbox wiped, while the grader is busy with other work.
2. `SandboxProvisioner.launch_kernel`: the grader sends the notebook folder's files (without the
   notebooks) and nbgrader's environment variables; the kernel writes them to /scratch/work and runs.
3. The grader forwards signals (interrupt, terminate, kill) as messages; the server answers
   {"exit": status} once the kernel has ended, its processes are killed and the sandbox is wiped:
   only then does nbgrader hear that the kernel ended.

The kernel's sockets get new names for every kernel (kernel-1 to kernel-5, then kernel-6 to
kernel-10, ...), so that nbgrader removing the last kernel's socket files never touches the next
kernel's. Readiness is checked without fixed waits (SandboxKernelClient.wait_for_ready).
"""

import asyncio
import base64
import contextlib
import os
import signal
import socket
import time
import uuid
from pathlib import Path
from queue import Empty
from typing import Any

from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import KernelProvisionerBase
from traitlets import DottedObjectName, Type

from ..timing import current
from .bwrap import SandboxError
from .protocol import FOLDER_BYTES_ENV, SOCKET_ENV, complete_messages, send

PASSED_ON = ("NBGRADER_EXECUTION", "NBGRADER_VALIDATING")  # nbgrader tells kernels it is grading (as stock)
PORTS = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")


def folder_files(folder: str | os.PathLike, max_bytes: int) -> dict[str, str]:
    """The files of a notebook's folder (at most `max_bytes` in all), base64-encoded, for the kernel's scratch copy.

    Notebooks stay out: while nbgrader grades, the one being graded holds the test
    cells it restored from the gradebook, hidden tests included. Links are not followed.
    """
    files, total = {}, 0
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and not path.is_symlink() and path.suffix != ".ipynb":
            total += path.stat().st_size
            if total > max_bytes:
                raise SandboxError(f"the notebook's folder is larger than {max_bytes} bytes")
            files[str(path.relative_to(folder))] = base64.b64encode(path.read_bytes()).decode()
    return files


class Prepared:
    """A kernel the server is starting for the next notebook: the connection to the server, and the
    kernel's connection settings (with the grader's path to its sockets)."""

    def __init__(self, conn: socket.socket, info: dict[str, Any]) -> None:
        self.conn, self.info = conn, info


_prepared: dict[str, Prepared] = {}  # by the server's socket path
_kernels: dict[str, int] = {}  # kernels asked of each server so far: their sockets' numbers
_server_cpu: dict[str, float] = {}  # the CPU seconds each server reported last (its start and its wipes)


def prepare(socket_path: str, ip: str) -> Prepared:
    """Ask the server at `socket_path` to start a kernel whose sockets the grader reaches at `ip`-N."""
    number = _kernels.get(socket_path, 0)
    _kernels[socket_path] = number + 1
    info = {
        **{name: 5 * number + offset for offset, name in enumerate(PORTS, start=1)},
        "transport": "ipc",
        "ip": ip,
        "key": uuid.uuid4().hex,
        "signature_scheme": "hmac-sha256",
    }
    conn = socket.socket(socket.AF_UNIX)
    try:
        conn.connect(socket_path)
        send(conn, {"connection": info})
    except OSError:
        conn.close()
        raise
    return Prepared(conn, info)


def prepare_next(socket_path: str, ip: str) -> None:
    """Start the next kernel of this server now, if none is waiting; a server that is gone is left alone."""
    if socket_path not in _prepared:
        with contextlib.suppress(OSError):
            _prepared[socket_path] = prepare(socket_path, ip)


def take_prepared(socket_path: str, ip: str) -> Prepared:
    """The kernel prepared for the next notebook, or one started now."""
    prepared = _prepared.pop(socket_path, None)
    return prepared if prepared is not None else prepare(socket_path, ip)


def discard(socket_path: str) -> None:
    """Forget the kernel prepared by a server that is closing."""
    prepared = _prepared.pop(socket_path, None)
    if prepared is not None:
        prepared.conn.close()
    _kernels.pop(socket_path, None)
    _server_cpu.pop(socket_path, None)


class SandboxProvisioner(KernelProvisionerBase):
    """A kernel in the sandbox, as jupyter_client's provisioners describe one: started, signalled and
    waited for through the server's socket."""

    conn: socket.socket | None = None
    exit_status: int | None = None
    error: str | None = None
    _buffer: bytearray | None = None

    @property
    def socket_path(self) -> str:
        return self.kernel_spec.env[SOCKET_ENV]

    @property
    def has_process(self) -> bool:
        return self.conn is not None and self.exit_status is None

    async def pre_launch(self, **kwargs: Any) -> dict[str, Any]:
        kwargs = await super().pre_launch(**kwargs)
        kwargs.pop("extra_arguments", None)  # the kernel is IPython's, as configured in the server
        return {**kwargs, "cmd": []}

    async def launch_kernel(self, cmd: list[str], **kwargs: Any) -> dict[str, Any]:
        km = self.parent
        prepared = take_prepared(self.socket_path, km.ip)
        env = kwargs.get("env") or os.environ
        max_bytes = int(self.kernel_spec.env[FOLDER_BYTES_ENV])
        request = {
            "files": folder_files(kwargs.get("cwd") or os.getcwd(), max_bytes),
            "environment": {name: env[name] for name in PASSED_ON if name in env},
        }
        self.conn, self._buffer = prepared.conn, bytearray()
        try:
            send(self.conn, request)
        except OSError as error:
            self.exit_status = -1
            raise SandboxError(f"the sandbox's kernel server is gone: {error}") from None
        self.conn.setblocking(False)
        return {**prepared.info, "key": prepared.info["key"].encode()}

    def _read(self, chunk: bytes) -> None:
        if not chunk:  # the server closed the connection: the kernel is gone, whatever it said
            if self.exit_status is None:
                self.exit_status = -1
            return
        self._buffer.extend(chunk)
        for message in complete_messages(self._buffer):
            if "error" in message:
                self.error = str(message["error"])
            if "exit" in message:
                self.exit_status = message["exit"]
                current().add("kernel cpu", message.get("cpu") or 0.0)
                server = message.get("server_cpu") or 0.0
                current().add("sandbox server cpu", server - _server_cpu.get(self.socket_path, 0.0))
                _server_cpu[self.socket_path] = server

    async def poll(self) -> int | None:
        while self.exit_status is None and self.conn is not None:
            try:
                chunk = self.conn.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                chunk = b""
            self._read(chunk)
        return self.exit_status

    async def wait(self) -> int | None:
        loop = asyncio.get_running_loop()
        while await self.poll() is None and self.conn is not None:
            try:
                self._read(await loop.sock_recv(self.conn, 1 << 16))
            except OSError:
                self._read(b"")
        return self.exit_status

    async def send_signal(self, signum: int) -> None:
        if self.has_process:
            with contextlib.suppress(OSError):
                send(self.conn, {"signal": int(signum)})

    async def kill(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGKILL)

    async def terminate(self, restart: bool = False) -> None:
        await self.send_signal(signal.SIGTERM)

    async def cleanup(self, restart: bool = False) -> None:
        """After the kernel: close its connection and have the server start the next one."""
        if self.conn is not None:
            self.conn.close()
            self.conn = None
            prepare_next(self.socket_path, self.parent.ip)


class SandboxKernelClient(AsyncKernelClient):
    """A kernel client whose readiness check has no fixed waits.

    jupyter_client's waits at least 0.2 s after the kernel answers (to flush IOPub) and retries
    after fixed timeouts. This one is ready when the kernel has answered kernel_info and IOPub is
    known to be connected: the kernel welcomed the subscription (ipykernel's iopub_welcome) or
    published the status of that request; otherwise it asks again.
    """

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        iopub_connected = False
        while True:
            request = self.kernel_info()
            reply = None
            round_ends = min(deadline, time.monotonic() + 1.0)
            while reply is None or not iopub_connected:
                left = round_ends - time.monotonic()
                if left <= 0:
                    break
                if reply is None:
                    with contextlib.suppress(Empty):
                        message = await self.shell_channel.get_msg(timeout=min(left, 0.05))
                        if message["parent_header"].get("msg_id") == request:
                            reply = message
                with contextlib.suppress(Empty):
                    message = await self.iopub_channel.get_msg(timeout=0 if reply is None else min(left, 0.05))
                    iopub_connected |= message["msg_type"] == "iopub_welcome" or (
                        message["parent_header"].get("msg_id") == request
                    )
            if reply is not None and iopub_connected:
                self._handle_kernel_info_reply(reply)
                return
            if not await self._async_is_alive():
                error = getattr(getattr(self.parent, "provisioner", None), "error", None)
                raise RuntimeError("Kernel died before replying to kernel_info" + (f":\n{error}" if error else ""))
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout} seconds")


class SandboxKernelManager(AsyncKernelManager):
    """jupyter_client's kernel manager for kernels in the sandbox (SandboxProvisioner, SandboxKernelClient)."""

    client_class = DottedObjectName("course.sandbox.kernel.SandboxKernelClient")
    client_factory = Type(SandboxKernelClient, klass=AsyncKernelClient)

    async def _async_pre_start_kernel(self, **kw: Any) -> Any:
        if self.provisioner is None:
            self.kernel_id = self.kernel_id or kw.pop("kernel_id", str(uuid.uuid4()))
            self.provisioner = SandboxProvisioner(kernel_id=self.kernel_id, kernel_spec=self.kernel_spec, parent=self)
        return await super()._async_pre_start_kernel(**kw)

    async def _async_wait(self, pollinterval: float = 0.1) -> None:
        """Until the kernel has ended: the server says so, no polling."""
        if self.has_kernel:
            await self.provisioner.wait()
