"""The bounds of each grading sandbox and of the kernels in it: settings of the course's nbgrader_config.py."""

from traitlets import Integer
from traitlets.config import Configurable

MB = 1 << 20


class SandboxLimits(Configurable):
    """Bounds on each grading sandbox (course grade); the kernel's limits apply per process, as setrlimit does."""

    cpu_seconds = Integer(600, help="CPU seconds a kernel may use before it is killed").tag(config=True)
    address_space_bytes = Integer(4096 * MB, help="Bytes of address space a kernel process may map").tag(config=True)
    processes = Integer(64, help="Processes a kernel may run, counted inside its sandbox").tag(config=True)
    file_bytes = Integer(64 * MB, help="Bytes a kernel may write to one file").tag(config=True)
    open_files = Integer(256, help="Files a kernel process may have open").tag(config=True)
    scratch_bytes = Integer(
        256 * MB, help="Bytes of each of the sandbox's memory-backed folders: /scratch, /tmp, /dev/shm"
    ).tag(config=True)
    scratch_files = Integer(
        16_384, help="Files and folders in each of those folders (enforced when grading as root)"
    ).tag(config=True)
    folder_bytes = Integer(
        64 * MB, help="Bytes of a submission's folder: a larger one is neither packed nor copied into the sandbox"
    ).tag(config=True)
    start_seconds = Integer(120, help="Seconds the sandbox's kernel server may take to start").tag(config=True)

    def rlimits(self):
        """{resource: value} for setrlimit in each kernel."""
        return {
            "cpu": self.cpu_seconds,
            "as": self.address_space_bytes,
            "nproc": self.processes,
            "fsize": self.file_bytes,
            "nofile": self.open_files,
        }

    def as_dict(self):
        """The settings as plain data, for a grading worker."""
        return {name: getattr(self, name) for name in self.class_trait_names(config=True)}
