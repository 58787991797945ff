"""nbgrader's Execute, made to survive a kernel that dies or stops answering, and to bound output."""

import json

from nbformat.v4 import new_output
from nbgrader.preprocessors import Execute
from traitlets import Integer

from .verify import INJECTED


class RobustExecute(Execute):
    """Execute every cell; after a fatal kernel failure, mark the remaining code cells as not run.

    Stock nbgrader gives up on the whole submission when the kernel dies (for
    example after os._exit) or stops answering (for example after the student
    broke builtins it relies on): the student is then not graded at all. Here
    the cell that broke the kernel and every code cell after it get an error
    output instead, so their tests score 0 and the cells before keep their scores.

    A cell's output is kept up to `max_output_bytes` (`max_record_bytes` for the
    cells that record what a test read, course/verify.py); the rest is dropped as
    it arrives, so a submission that prints without end cannot fill the grader's memory.
    """

    max_output_bytes = Integer(1_000_000, help="Output a cell may produce before the rest is dropped").tag(
        config=True)
    max_record_bytes = Integer(4_000_000, help="Output a recording cell may produce").tag(config=True)

    def preprocess(self, nb, resources=None, km=None):
        self._failure = None
        return super().preprocess(nb, resources, km)

    def output(self, outs, msg, display_id, cell_index):
        if cell_index != getattr(self, "_output_cell", None):
            self._output_cell, self._output_bytes = cell_index, 0
        limit = self.max_record_bytes if self.nb.cells[cell_index].metadata.get(INJECTED) else self.max_output_bytes
        before = self._output_bytes
        self._output_bytes += len(json.dumps(msg["content"]))
        if self._output_bytes <= limit:
            return super().output(outs, msg, display_id, cell_index)
        if before <= limit:  # the first output over the limit: say so, once
            outs.append(new_output("stream", name="stdout",
                                   text=f"\n[output stopped: this cell wrote more than {limit} bytes]\n"))
        return None

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, self.resources
        if self._failure is not None:
            cell.outputs = [_not_run(f"not run: the kernel failed in an earlier cell ({self._failure})")]
            return cell, self.resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except Exception as error:  # DeadKernelError, an IOPub timeout, a broken connection
            self._failure = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
            self.log.warning("Kernel failure in cell %d: %s", index, self._failure)
            cell.outputs.append(_not_run(f"the kernel failed while running this cell ({self._failure})"))
            return cell, self.resources


def _not_run(message):
    return new_output("error", ename="KernelFailure", evalue=message, traceback=[f"KernelFailure: {message}"])
