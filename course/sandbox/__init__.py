"""Run student notebooks in a sandbox, from warm kernels.

A grading worker starts one bubblewrap (bwrap) sandbox and, inside it, the
kernel server of course/sandbox/zygote.py, which imports numpy, pandas, scikit-learn,
matplotlib and IPython once and forks a kernel per submission. nbgrader's own
execution runs unchanged, with a kernel manager of its own (kernel.py): it asks
the server for a kernel over the server's socket, which lies outside the sandbox,
starts the next kernel while the grader works on other things, and forwards
signals. The kernel talks to nbgrader over IPC sockets in the sandbox's own tmpfs,
which the grader reaches through /proc/PID/root of the server: no host folder is
writable inside.

Inside the sandbox a kernel sees the system's /usr, the Python installation
and a scratch copy of its notebook's folder; not the course (source/,
gradebook.db, other students), nor the instructor's home. It has no network,
it runs as an unprivileged user (nobody, when grading as root) and under
limits on CPU time, memory, processes, file size and open files.

The modules: bwrap.py builds the bubblewrap command; warm.py starts the warm
sandbox and writes its kernelspec; kernel.py is the grader's side of a kernel
(jupyter_client's kernel manager, provisioner and client); zygote.py is the kernel
server; scratch.py wipes the sandbox after each kernel; protocol.py frames what
the grader and the server say to each other. course/parallel.py alone uses this package.
"""
