# Copyright: relops.release contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Process managers for release slots: an embedded supervisord or systemd units.

Target-safe: standard library only. supervisord itself is a program the host
has (``pip install supervisor``); this code writes its configuration and
drives it with ``supervisorctl``. Each manager renders the program's
definition as text first, so check mode and diff know what would change.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import socket
import subprocess
import time
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

TIMER_SUFFIX = "-stop-timer"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ProcessError(RuntimeError):
    """A process could not be started, stopped or described; the message says what to do."""


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise ProcessError(
            "process name %r is not valid; use letters, digits, '_', '.' or '-' (e.g. demo-app-blue)" % name
        )
    if name.endswith(TIMER_SUFFIX):
        raise ProcessError(
            "process name %r ends in %r, which names the stop timers of app_process; choose another name"
            % (name, TIMER_SUFFIX)
        )


def check_environment(environment: Mapping[str, str]) -> None:
    for key in environment:
        if not _ENV_KEY.match(key):
            raise ProcessError("environment variable name %r is not valid; use letters, digits and '_'" % key)


def run(command: Sequence[str], timeout: float = 120) -> Tuple[int, str]:
    try:
        done = subprocess.run(
            list(command), capture_output=True, text=True, check=False, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except FileNotFoundError:
        raise ProcessError("%s is not installed or not on PATH; install it or pass its path" % command[0]) from None
    return done.returncode, (done.stdout + done.stderr).strip()


def read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_text(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".relops-new"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temporary, path)


def wait_for_port(host: str, port: int, timeout: float) -> bool:
    """Poll until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.1)


def timer_name(name: str) -> str:
    """The name of the one-shot timer that stops ``name`` later (a supervisord program or a systemd timer)."""
    return name + TIMER_SUFFIX


_DEADLINE = re.compile(r"stops \S+ at (\d+)")


def absolute_program(program: str) -> str:
    """An absolute path for a program: timers run it later, from a directory of the manager's choosing."""
    return os.path.abspath(shutil.which(program) or program)


def wait_settled(manager: "Union[Supervisor, Systemd]", name: str, timeout: float) -> Dict[str, object]:
    """The status once ``name`` is no longer between states (a stop timer may have just fired)."""
    deadline = time.monotonic() + timeout
    status = manager.status(name)
    while status["status"] in manager.TRANSIENT_STATES and time.monotonic() < deadline:
        time.sleep(0.2)
        status = manager.status(name)
    return status


def read_deadline(text: Optional[str]) -> Optional[int]:
    """The epoch second a timer definition says it stops its process at."""
    match = _DEADLINE.search(text or "")
    return int(match.group(1)) if match else None


# supervisord


def _ini_value(value: str) -> str:
    # supervisord reads its files with ConfigParser interpolation: a literal % is written %%.
    return value.replace("%", "%%").replace("\n", " ")


class Supervisor:
    """One supervisord per directory: its config, socket, logs and a program file per process."""

    TRANSIENT_STATES = ("STOPPING", "STARTING", "BACKOFF")

    def __init__(self, directory: str, supervisord: str = "supervisord", supervisorctl: str = "supervisorctl"):
        self.directory = os.path.abspath(directory)
        self.supervisord = supervisord
        self.supervisorctl = supervisorctl
        self.conf = os.path.join(self.directory, "supervisord.conf")
        self.socket = os.path.join(self.directory, "supervisor.sock")

    def main_config(self) -> str:
        d = self.directory
        return "\n".join(
            [
                "; Written by relops.release.app_process.",
                "[unix_http_server]",
                "file=%s" % _ini_value(self.socket),
                "chmod=0700",
                "[supervisord]",
                "pidfile=%s" % _ini_value(os.path.join(d, "supervisord.pid")),
                "logfile=%s" % _ini_value(os.path.join(d, "supervisord.log")),
                "childlogdir=%s" % _ini_value(os.path.join(d, "logs")),
                "directory=%s" % _ini_value(d),
                "[rpcinterface:supervisor]",
                "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
                "[supervisorctl]",
                "serverurl=unix://%s" % _ini_value(self.socket),
                "[include]",
                "files = %s" % _ini_value(os.path.join(d, "programs", "*.conf")),
                "",
            ]
        )

    def program_path(self, name: str) -> str:
        return os.path.join(self.directory, "programs", "%s.conf" % name)

    def program_config(
        self,
        name: str,
        command: Sequence[str],
        directory: Optional[str],
        environment: Mapping[str, str],
        start_seconds: int,
        stop_seconds: int,
        user: Optional[str],
    ) -> str:
        lines = [
            "; Written by relops.release.app_process.",
            "[program:%s]" % name,
            "command=%s" % _ini_value(shlex.join(command)),
            "autostart=false",
            "autorestart=true",
            "startsecs=%d" % start_seconds,
            "startretries=3",
            "stopsignal=TERM",
            "stopwaitsecs=%d" % stop_seconds,
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            "stdout_logfile=%s" % _ini_value(os.path.join(self.directory, "logs", "%s.log" % name)),
        ]
        if directory:
            lines.append("directory=%s" % _ini_value(directory))
        if user:
            lines.append("user=%s" % _ini_value(user))
        if environment:
            pairs = ['%s="%s"' % (key, str(value).replace('"', '\\"')) for key, value in sorted(environment.items())]
            lines.append("environment=%s" % _ini_value(",".join(pairs)))
        return "\n".join(lines) + "\n"

    def ctl(self, *arguments: str) -> Tuple[int, str]:
        return run([self.supervisorctl, "-c", self.conf, *arguments])

    def daemon_running(self) -> bool:
        if not os.path.exists(self.socket) or not os.path.exists(self.conf):
            return False
        code, _output = self.ctl("pid")
        return code == 0

    def ensure_daemon(self, timeout: float = 30) -> bool:
        """Write the main config and start supervisord when it is not running; return whether anything changed."""
        changed = False
        os.makedirs(os.path.join(self.directory, "programs"), exist_ok=True)
        os.makedirs(os.path.join(self.directory, "logs"), exist_ok=True)
        text = self.main_config()
        if read_text(self.conf) != text:
            write_text(self.conf, text)
            changed = True
        if self.daemon_running():
            return changed
        code, output = run([self.supervisord, "-c", self.conf])
        if code != 0:
            raise ProcessError("supervisord -c %s did not start: %s" % (self.conf, output))
        deadline = time.monotonic() + timeout
        while not self.daemon_running():
            if time.monotonic() >= deadline:
                raise ProcessError(
                    "supervisord started but its socket %s did not answer within %ss; see %s"
                    % (self.socket, timeout, os.path.join(self.directory, "supervisord.log"))
                )
            time.sleep(0.2)
        return True

    def status(self, name: str) -> Dict[str, object]:
        if not self.daemon_running():
            return {"status": "ABSENT", "running": False, "pid": None}
        _code, output = self.ctl("status", name)
        fields = output.split()
        status = fields[1] if len(fields) > 1 and fields[0] == name else "ABSENT"
        pid = None
        match = re.search(r"pid (\d+)", output)
        if match:
            pid = int(match.group(1))
        return {"status": status, "running": status == "RUNNING", "pid": pid}

    def apply_program(self, name: str, text: Optional[str]) -> None:
        """Write (or with None remove) the program's file and let supervisord pick it up."""
        path = self.program_path(name)
        if text is None:
            if os.path.exists(path):
                os.unlink(path)
        else:
            write_text(path, text)
        for arguments in (("reread",), ("update", name) if text is not None else ("remove", name)):
            code, output = self.ctl(*arguments)
            if code != 0 and not (arguments[0] == "remove" and "no such process" in output.lower()):
                raise ProcessError("supervisorctl %s failed: %s" % (" ".join(arguments), output))

    def start(self, name: str) -> None:
        code, output = self.ctl("start", name)
        if code != 0 or ("ERROR" in output and "already started" not in output):
            raise ProcessError(
                "supervisord could not start %s: %s; see %s"
                % (name, output, os.path.join(self.directory, "logs", "%s.log" % name))
            )

    def stop(self, name: str) -> None:
        code, output = self.ctl("stop", name)
        if code != 0 and "not running" not in output and "no such process" not in output.lower():
            raise ProcessError("supervisord could not stop %s: %s" % (name, output))

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    # A deferred stop is a one-shot program under the same supervisord: it sleeps, then stops the process.
    # It lives on the host, so the stop happens even though no Ansible run is connected by then.

    def pending_stop(self, name: str) -> Optional[int]:
        """The epoch second a scheduled stop of ``name`` fires at, or None when none is pending."""
        timer = timer_name(name)
        text = read_text(self.program_path(timer))
        # No timer file, no timer: spares a supervisorctl call on every ordinary start.
        if text is None or not self.status(timer)["running"]:
            return None
        return read_deadline(text)

    def timer_config(self, name: str, deadline: int) -> str:
        supervisorctl = absolute_program(self.supervisorctl)
        # Sleep until an absolute deadline, so stop_at is exact however long the scheduling itself took.
        stop = 'now=$(date +%%s); [ "$now" -lt %d ] && sleep $((%d - now)); exec %s' % (
            deadline,
            deadline,
            shlex.join([supervisorctl, "-c", self.conf, "stop", name]),
        )
        timer = timer_name(name)
        return "\n".join(
            [
                "; Written by relops.release.app_process: stops %s at %d (epoch seconds)." % (name, deadline),
                "[program:%s]" % timer,
                "command=%s" % _ini_value(shlex.join(["/bin/sh", "-c", stop])),
                "autostart=false",
                "autorestart=false",
                "startsecs=0",
                "startretries=0",
                "stopasgroup=true",
                "killasgroup=true",
                "redirect_stderr=true",
                "stdout_logfile=%s" % _ini_value(os.path.join(self.directory, "logs", "%s.log" % timer)),
                "",
            ]
        )

    def schedule_stop(self, name: str, seconds: int) -> int:
        """Stop ``name`` ``seconds`` from now, replacing any pending stop; return the deadline."""
        deadline = int(time.time()) + seconds
        timer = timer_name(name)
        self.cancel_stop(name)
        self.apply_program(timer, self.timer_config(name, deadline))
        self.start(timer)
        return deadline

    def cancel_stop(self, name: str) -> bool:
        """Drop a scheduled stop of ``name`` (and a fired timer's leftovers); return whether one was pending."""
        timer = timer_name(name)
        pending = self.pending_stop(name) is not None
        path = self.program_path(timer)
        if os.path.exists(path):
            if self.daemon_running():
                self.stop(timer)
                self.apply_program(timer, None)
            else:
                os.unlink(path)
        return pending


# systemd


def _systemd_quote(word: str) -> str:
    return '"%s"' % word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")


class Systemd:
    """A unit file per process under ``unit_dir``, driven with systemctl."""

    TRANSIENT_STATES = ("DEACTIVATING", "ACTIVATING")

    def __init__(
        self, unit_dir: str = "/etc/systemd/system", systemctl: str = "systemctl", systemd_run: str = "systemd-run"
    ):
        self.unit_dir = unit_dir
        self.systemctl = systemctl
        self.systemd_run = systemd_run

    def program_path(self, name: str) -> str:
        return os.path.join(self.unit_dir, "%s.service" % name)

    def program_config(
        self,
        name: str,
        command: Sequence[str],
        directory: Optional[str],
        environment: Mapping[str, str],
        start_seconds: int,
        stop_seconds: int,
        user: Optional[str],
    ) -> str:
        lines = [
            "# Written by relops.release.app_process.",
            "[Unit]",
            "Description=%s (relops.release slot process)" % name,
            "After=network.target",
            "",
            "[Service]",
            "Type=simple",
            "ExecStart=%s" % " ".join(_systemd_quote(word) for word in command),
            "Restart=on-failure",
            "RestartSec=%d" % max(start_seconds, 1),
            "TimeoutStopSec=%d" % stop_seconds,
            "KillMode=control-group",
        ]
        if directory:
            lines.append("WorkingDirectory=%s" % directory)
        if user:
            lines.append("User=%s" % user)
        for key, value in sorted(environment.items()):
            lines.append("Environment=%s" % _systemd_quote("%s=%s" % (key, value)))
        lines += ["", "[Install]", "WantedBy=multi-user.target", ""]
        return "\n".join(lines)

    def ctl(self, *arguments: str) -> Tuple[int, str]:
        return run([self.systemctl, *arguments])

    def ensure_daemon(self, timeout: float = 30) -> bool:
        return False

    def status(self, name: str) -> Dict[str, object]:
        if not os.path.exists(self.program_path(name)):
            return {"status": "ABSENT", "running": False, "pid": None}
        _code, output = self.ctl("show", "--property=ActiveState,MainPID", "%s.service" % name)
        values = dict(line.split("=", 1) for line in output.splitlines() if "=" in line)
        active = values.get("ActiveState", "unknown")
        pid = int(values.get("MainPID", "0") or 0) or None
        return {"status": active.upper(), "running": active == "active", "pid": pid}

    def apply_program(self, name: str, text: Optional[str]) -> None:
        path = self.program_path(name)
        if text is None:
            if os.path.exists(path):
                os.unlink(path)
        else:
            write_text(path, text)
        code, output = self.ctl("daemon-reload")
        if code != 0:
            raise ProcessError("systemctl daemon-reload failed: %s" % output)

    def _unit_command(self, verb: str, name: str) -> None:
        code, output = self.ctl(verb, "%s.service" % name)
        if code != 0:
            raise ProcessError(
                "systemctl %s %s.service failed: %s; see journalctl -u %s.service" % (verb, name, output, name)
            )

    def start(self, name: str) -> None:
        self._unit_command("start", name)

    def stop(self, name: str) -> None:
        if os.path.exists(self.program_path(name)):
            self._unit_command("stop", name)

    def restart(self, name: str) -> None:
        self._unit_command("restart", name)

    # A deferred stop is a transient timer (systemd-run --on-active) whose service runs systemctl stop.
    # systemd-run makes its timers with RemainAfterElapse=no, so a fired timer unloads itself; --collect
    # unloads its service even when the stop failed, so the unit name is free for the next schedule.

    def _timer_properties(self, name: str) -> Dict[str, str]:
        _code, output = self.ctl(
            "show", "--property=LoadState,ActiveState,SubState,Description", "%s.timer" % timer_name(name)
        )
        return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)

    def pending_stop(self, name: str) -> Optional[int]:
        values = self._timer_properties(name)
        # "waiting" is a timer not yet fired; "running" means its stop is under way, no longer pending.
        if values.get("SubState") != "waiting":
            return None
        return read_deadline(values.get("Description"))

    def schedule_stop(self, name: str, seconds: int) -> int:
        deadline = int(time.time()) + seconds
        self.cancel_stop(name)
        code, output = run(
            [
                self.systemd_run,
                "--unit=%s" % timer_name(name),
                "--on-active=%ds" % seconds,
                "--timer-property=AccuracySec=1s",
                "--collect",
                "--description=relops.release: stops %s at %d" % (name, deadline),
                absolute_program(self.systemctl),
                "stop",
                "%s.service" % name,
            ]
        )
        if code != 0:
            raise ProcessError("systemd-run could not schedule the stop of %s.service: %s" % (name, output))
        return deadline

    def cancel_stop(self, name: str) -> bool:
        timer = timer_name(name)
        pending = self.pending_stop(name) is not None
        # Stop the timer and a stop still under way, and forget a failed one; units not loaded are no error.
        for unit in ("%s.timer" % timer, "%s.service" % timer):
            code, output = self.ctl("stop", unit)
            if code != 0 and "not loaded" not in output:
                raise ProcessError("systemctl stop %s failed: %s" % (unit, output))
        self.ctl("reset-failed", "%s.timer" % timer, "%s.service" % timer)
        return pending
