"""nbgrader's Execute, made to survive a kernel that dies or stops answering, and to bound output."""

import json
import math
from time import monotonic

from jupyter_core.utils import run_sync
from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Integer

from ..timing import current
from .record import MIME
from .verify import INJECTED, error_output

# What the grader writes in a cell it did not let finish ({} is a detail): the feedback page shows these.
NOT_RUN_AFTER_FAILURE = "not run: the kernel failed in an earlier cell ({})"
FAILED_HERE = "the kernel failed while running this cell ({})"
NOT_RUN_OUT_OF_TIME = "not run: the notebook used up its time budget of {} s"
INTERRUPTED_OUT_OF_TIME = "interrupted: the notebook used up its time budget of {} s in this cell"
MESSAGES = (NOT_RUN_AFTER_FAILURE, FAILED_HERE, NOT_RUN_OUT_OF_TIME, INTERRUPTED_OUT_OF_TIME)


class RobustExecute(Execute):
    """Execute every cell; after a fatal kernel failure, mark the remaining code cells as not run.

    Stock nbgrader gives up on the whole submission when the kernel dies (for
    example after os._exit) or stops answering (for example after the student
    broke builtins it relies on): the student is then not graded at all. Here
    the cell that broke the kernel and every code cell after it get an error
    output instead, so their tests score 0 and the cells before keep their scores.

    A cell's output is kept up to `max_output_bytes`, and its records of what a test read
    (course/plugins/verify.py: in a test cell, or in a recording cell of their own) up to
    `max_record_bytes`; the rest is dropped as it arrives, so a submission that prints
    without end cannot fill the grader's memory.

    A notebook may run `notebook_timeout` seconds in all: each cell's timeout is
    cut to what is left, so the cell running when the time is up is interrupted,
    and the code cells after it are not run; both say so.
    """

    max_output_bytes = Integer(1_000_000, help="Output a cell may produce before the rest is dropped").tag(config=True)
    max_record_bytes = Integer(
        4_000_000, help="Bytes of records of what a test read (course/plugins/verify.py) a cell may show"
    ).tag(config=True)
    notebook_timeout = Integer(
        300, help="Wall-clock seconds a whole notebook may run; cells after that are not run (0: no limit)"
    ).tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._failure, self._output_cell = None, None
        self._deadline = monotonic() + self.notebook_timeout if self.notebook_timeout > 0 else None
        self.timeout_func = self._cell_timeout
        stages, started = current(), monotonic()
        before = sum(stages.seconds.get(name, 0.0) for name in ("kernel start", "kernel stop"))
        try:
            return super().preprocess(nb, resources, km)
        finally:  # for `course grade --timings`: what is neither the kernel's start nor its stop
            after = sum(stages.seconds.get(name, 0.0) for name in ("kernel start", "kernel stop"))
            stages.add("cell execution", monotonic() - started - (after - before))

    async def async_start_new_kernel(self, **kwargs):
        with current().stage("kernel start"):
            return await super().async_start_new_kernel(**kwargs)

    async def async_start_new_kernel_client(self):
        with current().stage("kernel start"):
            return await super().async_start_new_kernel_client()

    async def _async_cleanup_kernel(self):
        with current().stage("kernel stop"):
            return await super()._async_cleanup_kernel()

    # nbclient's synchronous names wrap its own coroutines: they must wrap these ones
    start_new_kernel = run_sync(async_start_new_kernel)
    start_new_kernel_client = run_sync(async_start_new_kernel_client)
    _cleanup_kernel = run_sync(_async_cleanup_kernel)

    def _cell_timeout(self, cell):
        """The per-cell timeout, cut to the time left of the notebook's budget (at least 1 s)."""
        limits = [self.timeout] if self.timeout and self.timeout > 0 else []
        if self._deadline is not None:
            limits.append(max(1, math.ceil(self._deadline - monotonic())))
        return min(limits) if limits else None

    def _out_of_time(self):
        return self._deadline is not None and monotonic() >= self._deadline

    def output(self, outs, msg, display_id, cell_index):
        if cell_index != self._output_cell:
            self._output_cell, self._written = cell_index, {False: 0, True: 0}
        recording = bool(self.nb.cells[cell_index].metadata.get(INJECTED)) or (
            msg["msg_type"] == "display_data" and MIME in msg["content"].get("data", {})
        )
        limit = self.max_record_bytes if recording else self.max_output_bytes
        before = self._written[recording]
        self._written[recording] += len(json.dumps(msg["content"]))
        if self._written[recording] <= limit:
            return super().output(outs, msg, display_id, cell_index)
        if before <= limit:  # the first output over the limit: say so, once
            outs.append(
                new_output(
                    "stream", name="stdout", text=f"\n[output stopped: this cell wrote more than {limit} bytes]\n"
                )
            )
        return None

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, self.resources
        if self._failure is not None:
            cell.outputs = [error_output("KernelFailure", NOT_RUN_AFTER_FAILURE.format(self._failure))]
            return cell, self.resources
        if self._out_of_time():
            cell.outputs = [error_output("NotebookTimeout", NOT_RUN_OUT_OF_TIME.format(self.notebook_timeout))]
            return cell, self.resources
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
            if self._out_of_time() and any(output.get("ename") == "CellTimeoutError" for output in cell.outputs):
                cell.outputs.append(
                    error_output("NotebookTimeout", INTERRUPTED_OUT_OF_TIME.format(self.notebook_timeout))
                )
            return cell, resources
        except Exception as error:  # DeadKernelError, an IOPub timeout, a broken connection
            self._failure = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            self.log.warning("Kernel failure in cell %d: %s", index, self._failure)
            cell.outputs.append(error_output("KernelFailure", FAILED_HERE.format(self._failure)))
            return cell, self.resources
