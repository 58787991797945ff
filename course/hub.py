"""The course on a real JupyterHub on 127.0.0.1: `python -m course hub` (`sudo make hub`).

Accounts are real operating-system accounts, made on first use: one instructor and N students,
each with a password generated here and printed once, checked by PAM. Every user's server runs as
that user (JupyterHub's LocalProcessSpawner, started through `as_user`: see course_spawner_class).
nbgrader learns who belongs to the course from the hub's groups (its JupyterHubAuthPlugin):
`nbgrader-logistic-regression` holds the students,
`formgrade-logistic-regression` the graders. Students get the Assignment List and Validate; the
instructor's server also runs Formgrader and Create Assignment, on a copy of this course in their
home, where Formgrader's autograde button grades in the sandbox (course/plugins/sandboxed_autograde.py).

Everything the hub keeps (its database, cookie secret, log, the exchange, the users' Jupyter
configuration) lives in one state folder, `.hub/` by default, which `make clean` removes. The hub
runs in the foreground; Ctrl-C (or SIGTERM) stops it, its proxy, every user's server and whatever
they started: this process is their subreaper, and ends any that outlive the hub.
"""

import json
import os
import pwd
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path

from .common import CourseError
from .samples import as_user, copy_course, python_folders

COURSE_ID = "logistic-regression"
STUDENTS_GROUP, GRADERS_GROUP = f"nbgrader-{COURSE_ID}", f"formgrade-{COURSE_ID}"
REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PROXY = REPO / "hub" / "node_modules" / ".bin" / "configurable-http-proxy"
COURSE_FOLDER = "logistic-regression"  # the instructor's copy of the course, in their home
# What students do not get: nbgrader's instructor tools, on the server and in JupyterLab.
INSTRUCTOR_ONLY_SERVER = ["nbgrader.server_extensions.formgrader", "nbgrader.server_extensions.course_list"]
INSTRUCTOR_ONLY_LAB = [
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
]
COURSE_EXTENSIONS = ["course.plugins.formgrader_policy", "course.plugins.sandboxed_autograde"]
# Nobody is asked to be notified of Jupyter's news: a pop-up over the notebook, and a request off the machine.
NEWS = "@jupyterlab/apputils-extension:announcements"
STOP_SECONDS = 30  # for the hub to stop its servers, before what is left is killed


def user_names(prefix, students):
    """The instructor's account name and the students', in order."""
    return f"{prefix}instructor", [f"{prefix}student{n}" for n in range(1, students + 1)]


def preflight(port):
    """Raise CourseError, in one line that says what to do, unless the hub can start here."""
    if os.geteuid() != 0:
        raise CourseError(
            "the hub creates user accounts and starts servers as those users, which needs root: "
            "run `sudo make hub` (or sudo .venv/bin/python -m course hub)"
        )
    if not PROXY.exists():
        raise CourseError(f"{PROXY} is missing: run `make hub`, which installs it with npm ci in hub/")
    for number in ports(port):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", number))
            except OSError:
                raise CourseError(
                    f"port {number} is in use: pass --port N (the hub takes N to N+2), or stop what uses it"
                ) from None


def ports(port):
    """The public port, the proxy's API port and the hub's own port."""
    return port, port + 1, port + 2


def ensure_accounts(names):
    """Make each missing account, with a home only its owner may enter and a new random password.

    Returns {name: password} for the accounts made now: the only time a password is shown.
    Existing accounts keep theirs (PAM checks them; `passwd NAME` sets a new one).
    """
    made = {}
    for name in names:
        try:
            pwd.getpwnam(name)
            continue
        except KeyError:
            pass
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)
        Path(pwd.getpwnam(name).pw_dir).chmod(0o700)
        made[name] = secrets.token_urlsafe(12)
        subprocess.run(["chpasswd"], input=f"{name}:{made[name]}\n", text=True, check=True)
    return made


def instructor_course(instructor):
    """The instructor's course root: a copy of this course in their home, made on first use."""
    account = pwd.getpwnam(instructor)
    root = Path(account.pw_dir) / COURSE_FOLDER
    if not (root / "nbgrader_config.py").exists():
        copy_course(REPO, root)
        subprocess.run(["chown", "-R", f"{account.pw_uid}:{account.pw_gid}", str(root)], check=True)
    return root


def write_state(state, instructor):
    """Lay out the state folder: the hub's private folder, the exchange, each role's Jupyter config."""
    state.mkdir(parents=True, exist_ok=True)
    state.chmod(0o755)  # users' servers read their role's config here
    (state / "hub").mkdir(exist_ok=True)
    (state / "hub").chmod(0o700)  # database, cookie secret, log
    exchange = state / "exchange"
    exchange.mkdir(exist_ok=True)
    exchange.chmod(0o1777)  # as nbgrader's docs ask: everyone writes, only owners delete
    nbgrader = [
        f"c.Exchange.root = {str(exchange)!r}",
        f"c.CourseDirectory.course_id = {COURSE_ID!r}",
        'c.Authenticator.plugin_class = "nbgrader.auth.JupyterHubAuthPlugin"',
    ]
    roles = {
        "student": {
            "nbgrader": nbgrader,
            "server": dict.fromkeys(INSTRUCTOR_ONLY_SERVER, False),
            "lab": dict.fromkeys([*INSTRUCTOR_ONLY_LAB, NEWS], True),
        },
        "instructor": {
            "nbgrader": [*nbgrader, f"c.CourseDirectory.root = {str(instructor_course(instructor))!r}"],
            "server": dict.fromkeys(COURSE_EXTENSIONS, True),
            "lab": {NEWS: True},
        },
    }
    for role, parts in roles.items():
        folder = state / "jupyter" / role
        (folder / "labconfig").mkdir(parents=True, exist_ok=True)
        (folder / "nbgrader_config.py").write_text("\n".join(["c = get_config()  # noqa: F821", *parts["nbgrader"]]))
        (folder / "jupyter_server_config.json").write_text(
            json.dumps({"ServerApp": {"jpserver_extensions": parts["server"]}}, indent=1)
        )
        (folder / "labconfig" / "page_config.json").write_text(
            json.dumps({"disabledExtensions": parts["lab"]}, indent=1)
        )
    for path in (state / "jupyter").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    (state / "jupyter").chmod(0o755)


def configure(c, state, port, instructor, students):
    """Set JupyterHub's configuration `c` for this course (the state folder's jupyterhub_config.py calls it)."""
    state = Path(state)
    public, proxy_api, hub_port = ports(port)
    c.JupyterHub.ip = "127.0.0.1"
    c.JupyterHub.port = public
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.hub_port = hub_port
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{proxy_api}"
    c.ConfigurableHTTPProxy.command = [str(PROXY)]
    c.ConfigurableHTTPProxy.pid_file = str(state / "hub" / "proxy.pid")
    c.JupyterHub.db_url = f"sqlite:///{state / 'hub' / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "hub" / "cookie_secret")
    c.JupyterHub.extra_log_file = str(state / "hub" / "jupyterhub.log")
    c.JupyterHub.cleanup_servers = True  # stopping the hub stops every user's server

    c.JupyterHub.authenticator_class = "pam"
    c.PAMAuthenticator.open_sessions = False
    c.Authenticator.allowed_users = {instructor, *students}
    c.JupyterHub.load_groups = {
        STUDENTS_GROUP: {"users": list(students)},
        GRADERS_GROUP: {"users": [instructor]},
    }

    CourseSpawner = course_spawner_class()
    c.JupyterHub.spawner_class = CourseSpawner
    c.CourseSpawner.reachable = [*python_folders(), str(state)]
    # The course's clones (this one, and the one the venv was made in) hold the hidden tests and the
    # solutions in source/: no user's server sees them, even where the clone is open to everyone.
    c.CourseSpawner.hidden = course_clones()
    c.Spawner.cmd = [str(BIN / "jupyterhub-singleuser")]
    c.Spawner.default_url = "/lab"
    c.Spawner.env_keep = ["LANG", "LC_ALL"]
    # nbgrader's JupyterHubAuthPlugin reads the user's groups with the server's token.
    c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server", "read:users!user"]
    c.Spawner.http_timeout = 60
    c.Spawner.start_timeout = 120

    def pre_spawn_hook(spawner):
        role = "instructor" if spawner.user.name == instructor else "student"
        environment = {
            "PATH": f"{BIN}{os.pathsep}/usr/local/bin:/usr/bin:/bin",
            "JUPYTER_CONFIG_PATH": str(state / "jupyter" / role),
        }
        if role == "instructor":
            course = instructor_course(instructor)
            spawner.notebook_dir = str(course)
            environment["PYTHONPATH"] = str(course)  # the course package of the course it grades
        spawner.environment = {**spawner.environment, **environment}

    c.Spawner.pre_spawn_hook = pre_spawn_hook


def course_clones():
    """This repository, and the one the venv lies in when it is a clone of the course too."""
    candidates = {REPO, Path(sys.prefix).resolve().parent}
    return sorted(
        str(path) for path in candidates if (path / "nbgrader_config.py").is_file() and (path / "source").is_dir()
    )


def course_spawner_class():
    """JupyterHub's LocalProcessSpawner, but the user's server starts through `as_user` (course/samples.py).

    The venv's Python, or the one it was built from, may lie under a folder other users cannot
    enter (pyenv's under /root, a clone in a 0700 folder), and so may the hub's state folder. So the
    server starts as root in a private mount namespace where those folders are reachable (and the
    rest of what they lay in is hidden), and setpriv then drops to the user. The process id stays
    the server's (unshare, sh and setpriv each exec the next), so JupyterHub tracks and stops it
    as usual; it still starts in the user's home, with their environment.
    """
    from jupyterhub.spawner import LocalProcessSpawner
    from traitlets import List, Unicode

    class CourseSpawner(LocalProcessSpawner):
        reachable = List(Unicode(), help="Folders the user's server must reach").tag(config=True)
        hidden = List(Unicode(), help="Folders the user's server must not see (what is reachable in them stays)").tag(
            config=True
        )

        def make_preexec_fn(self, name):
            home = pwd.getpwnam(name).pw_dir

            def preexec():  # still root: setpriv switches to the user, after the mounts
                os.chdir(home)

            return preexec

        async def start(self):
            account = pwd.getpwnam(self.user.name)
            command = self.cmd
            user = (account.pw_uid, account.pw_gid)
            self.cmd = as_user(command, user, self.reachable, "--init-groups", self.hidden)
            try:
                return await super().start()
            finally:
                self.cmd = command

    return CourseSpawner


def write_config(state, port, instructor, students):
    """The state folder's jupyterhub_config.py: it calls `configure` with this hub's settings."""
    settings = {"state": str(state), "port": port, "instructor": instructor, "students": students}
    path = state / "hub" / "jupyterhub_config.py"
    path.write_text(
        '"""Written by `python -m course hub` (course/hub.py); remade on every start."""\n'
        "from course.hub import configure\n\n"
        f"configure(get_config(), **{settings!r})  # noqa: F821\n"  # noqa: F821 in the written file
    )
    return path


def set_subreaper():
    """Become the subreaper of every process started from here on, so that none escapes `stop`."""
    import ctypes

    PR_SET_CHILD_SUBREAPER = 36
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_CHILD_SUBREAPER, 1)


def stop(hub, log=print):
    """Stop the hub (it stops the servers and the proxy), then end every process left behind."""
    import psutil

    if hub.poll() is None:
        hub.send_signal(signal.SIGTERM)
        try:
            hub.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            hub.kill()
            hub.wait()
    left = psutil.Process().children(recursive=True)
    for process in left:
        process.terminate()
    gone, alive = psutil.wait_procs(left, timeout=5)
    for process in alive:
        process.kill()
    psutil.wait_procs(alive, timeout=5)
    if left:
        log(f"ended {len(left)} processes left behind by the hub's servers")


def run(state, port, students, prefix=""):
    """Start the hub in the foreground until Ctrl-C or SIGTERM; return its exit status."""
    preflight(port)
    state = Path(state).resolve()
    instructor, student_names = user_names(prefix, students)
    made = ensure_accounts([instructor, *student_names])
    write_state(state, instructor)
    config = write_config(state, port, instructor, student_names)
    set_subreaper()
    hub = subprocess.Popen(
        [str(BIN / "jupyterhub"), "-f", str(config)],
        cwd=state / "hub",
        env={**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"},
        start_new_session=True,  # Ctrl-C reaches this process, which stops everything in order
    )

    def interrupted(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGINT, interrupted)  # also when started in the background, where a shell ignores it
    print(f"JupyterHub for {COURSE_ID} on http://127.0.0.1:{port}/ (state in {state}; Ctrl-C stops it)")
    for name, password in made.items():
        print(f"  new account {name}, password {password}  (shown only this once)")
    print(f"  instructor: {instructor}; students: {', '.join(student_names)}", flush=True)
    try:
        return hub.wait()
    except KeyboardInterrupt:
        print("stopping the hub and every user's server ...", flush=True)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C does not cut the shutdown short
        stop(hub)
