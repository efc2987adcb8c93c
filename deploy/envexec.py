#!/usr/bin/env python3
"""Run a command with the settings of an env file, read safely (stdlib only).

    envexec.py [--optional] [--graceful-int] ENV_FILE -- COMMAND [ARG...]

supervisord and pm2 use this to start gunicorn with /etc/jimeng-api.env, the
file systemd reads with EnvironmentFile=, parsed the way systemd parses it.
Sourcing it in a shell breaks on values with parentheses, quotes or "$" (a
browser's User-Agent has all three); here nothing is expanded or run: lines are
``KEY=value``, ``#`` and ``;`` start comment lines, quotes work as in systemd
('...' literal, "..." with \\" \\\\ \\$ \\` escapes). Values from the file
override the environment this script was started with.

--optional      a missing ENV_FILE is not an error (systemd's ``-/path``)
--graceful-int  stay the parent of COMMAND and turn SIGINT into SIGTERM for it,
                passing on every other signal gunicorn knows. pm2 stops apps
                with SIGINT, which makes gunicorn drop running generations;
                SIGTERM lets them finish.
Without --graceful-int COMMAND replaces this process (exec).
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
FORWARDED = (
    *("SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2"),
    *("SIGTTIN", "SIGTTOU", "SIGWINCH"),
)


class EnvFileError(ValueError):
    pass


def _value(text: str, i: int) -> tuple[str, int]:
    """Read one value from text[i:] the way systemd's env-file parser does.

    Unquoted: leading and trailing blanks dropped, \\x is x. '...' is literal.
    "...": \\" \\\\ \\$ \\` are escapes, any other backslash stays. The parts
    join up (a"b c"d is ab cd); a backslash before the newline continues the
    value on the next line. Returns (value, index after its newline).
    """
    out: list[str] = []
    pending_blank = ""  # unquoted blanks, kept only if more text follows
    n = len(text)
    while i < n and text[i] in " \t":
        i += 1
    while i < n and text[i] != "\n":
        c = text[i]
        if c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise EnvFileError("unterminated ' quote")
            out.append(pending_blank + text[i + 1 : end])
            pending_blank, i = "", end + 1
        elif c == '"':
            i += 1
            part = []
            while i < n and text[i] != '"':
                if text[i] == "\\" and i + 1 < n:
                    nxt = text[i + 1]
                    if nxt == "\n":
                        pass  # continuation inside quotes
                    elif nxt in '"\\`$':
                        part.append(nxt)
                    else:
                        part.append("\\" + nxt)
                    i += 2
                    continue
                part.append(text[i])
                i += 1
            if i >= n:
                raise EnvFileError('unterminated " quote')
            out.append(pending_blank + "".join(part))
            pending_blank, i = "", i + 1
        elif c == "\\" and i + 1 < n:
            if text[i + 1] != "\n":
                out.append(pending_blank + text[i + 1])
                pending_blank = ""
            i += 2
        elif c in " \t":
            pending_blank += c
            i += 1
        else:
            out.append(pending_blank + c)
            pending_blank, i = "", i + 1
    return "".join(out), i + 1


def parse(text: str) -> dict[str, str]:
    """The KEY=value file systemd's EnvironmentFile= reads, as a dict.

    Errors name the line, never its value (which may be a secret).
    """
    env: dict[str, str] = {}
    text = text.replace("\r\n", "\n")
    i, n = 0, len(text)
    while i < n:
        line_start = i
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        if text[i] == "\n":
            i += 1
            continue
        if text[i] in "#;":  # a comment line (a trailing backslash continues it)
            while i < n and not (text[i] == "\n" and text[i - 1] != "\\"):
                i += 1
            i += 1
            continue
        end = text.find("=", i)
        newline = text.find("\n", i)
        number = text.count("\n", 0, line_start) + 1
        if end < 0 or (0 <= newline < end):
            raise EnvFileError(f"line {number}: expected KEY=value")
        key = text[i:end].strip()
        if not KEY.fullmatch(key):
            raise EnvFileError(f"line {number}: not a variable name before '='")
        try:
            env[key], i = _value(text, end + 1)
        except EnvFileError as exc:
            raise EnvFileError(f"line {number}: {exc}") from None
    return env


def run_child(command: list[str], env: dict[str, str]) -> int:
    """Start COMMAND, pass signals on (INT as TERM), return its exit status."""
    child = subprocess.Popen(command, env=env)

    def forward(signum: int, _frame: object) -> None:
        target = signal.SIGTERM if signum == signal.SIGINT else signum
        if child.poll() is None:
            child.send_signal(target)

    for name in ("SIGINT", *FORWARDED):
        signal.signal(getattr(signal, name), forward)
    code = child.wait()  # resumed after each handler (PEP 475)
    return 128 - code if code < 0 else code  # killed by signal N: 128 + N


def main(argv: list[str]) -> int:
    optional = graceful_int = False
    while argv and argv[0].startswith("--") and argv[0] != "--":
        flag = argv.pop(0)
        if flag == "--optional":
            optional = True
        elif flag == "--graceful-int":
            graceful_int = True
        else:
            print(f"envexec: unknown option {flag}", file=sys.stderr)
            return 2
    if len(argv) < 3 or argv[1] != "--":
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    path, command = argv[0], argv[2:]
    try:
        with open(path, encoding="utf-8") as f:
            settings = parse(f.read())
    except FileNotFoundError:
        if not optional:
            print(f"envexec: {path}: no such file", file=sys.stderr)
            return 2
        settings = {}
    except (OSError, UnicodeDecodeError, EnvFileError) as exc:
        print(f"envexec: {path}: {exc}", file=sys.stderr)
        return 2
    env = {**os.environ, **settings}
    if graceful_int:
        return run_child(command, env)
    os.execvpe(command[0], command, env)
    return 127  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
