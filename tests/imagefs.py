"""What `docker build` would put in the image, computed without a container engine.

Parses the Dockerfile (stages, ENV, WORKDIR, COPY, RUN, USER) and .dockerignore
(moby's pattern rules: Go filepath.Match per path element, ``**``, ``!``
exceptions, last match wins, a match on a parent directory counts), builds the
context, and follows a target's COPY lines to the image's file list. The RUN
steps it understands are the ones the Dockerfile uses (pip install, useradd,
mkdir, chown); anything else is an error, so the Dockerfile and this model
cannot silently drift apart.
"""

from __future__ import annotations

import os
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SKIP_WALK = {".git", ".venv", "node_modules", ".mypy_cache", ".ruff_cache"}


@dataclass
class Stage:
    name: str
    base: str
    steps: list[tuple[str, str]] = field(default_factory=list)


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) pairs: continuations joined, comments dropped."""
    joined = re.sub(r"\\\n(?:\s*#[^\n]*\n)*", " ", text)
    pairs = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            pairs.append((keyword.upper(), rest.strip()))
    return pairs


def stages(text: str | None = None) -> dict[str, Stage]:
    """The Dockerfile's stages by name, in order (the last one is the default)."""
    text = (ROOT / "Dockerfile").read_text() if text is None else text
    args: dict[str, str] = {}
    result: dict[str, Stage] = {}
    current: Stage | None = None
    for keyword, rest in instructions(text):
        if keyword == "ARG" and current is None:
            name, _, default = rest.partition("=")
            args[name] = default
        elif keyword == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else base
            current = result[name] = Stage(name, base)
        elif current is not None:
            current.steps.append((keyword, rest))
    return result


def chain(target: str) -> list[Stage]:
    """The stages a target is built from, base first."""
    all_stages = stages()
    result = [all_stages[target]]
    while result[0].base in all_stages:
        result.insert(0, all_stages[result[0].base])
    return result


# ------------------------------------------------------------------ .dockerignore


def _element_regex(pattern: str) -> str:
    """Go's filepath.Match for one path element (plus moby's ``**``)."""
    out, i = "", 0
    while i < len(pattern):
        c = pattern[i]
        if pattern.startswith("**", i):
            out += ".*"
            i += 2
            continue
        if c == "*":
            out += "[^/]*"
        elif c == "?":
            out += "[^/]"
        elif c == "[":
            end = pattern.index("]", i)
            body = (
                pattern[i + 1 : end].replace("!", "^", 1)
                if pattern[i + 1] == "!"
                else pattern[i + 1 : end]
            )
            out += f"[{body}]"
            i = end
        elif c == "\\":
            i += 1
            out += re.escape(pattern[i])
        else:
            out += re.escape(c)
        i += 1
    return out


def ignore_rules(text: str | None = None) -> list[tuple[bool, re.Pattern[str]]]:
    """(is_exception, regex) for each .dockerignore line, in order."""
    text = (ROOT / ".dockerignore").read_text() if text is None else text
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = posixpath.normpath(line[1:].strip() if negate else line).lstrip("/")
        rules.append((negate, re.compile(_element_regex(pattern) + r"\Z")))
    return rules


def excluded(path: str, rules: list[tuple[bool, re.Pattern[str]]]) -> bool:
    """moby's patternmatcher.MatchesOrParentMatches: the last matching rule wins."""
    parts = path.split("/")
    parents = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for negate, regex in rules:
        if any(regex.match(p) for p in parents):
            result = not negate
    return result


def context_files(root: Path = ROOT) -> list[str]:
    """The build context: every file .dockerignore lets through (relative paths)."""
    rules = ignore_rules()
    files = []
    for directory, dirs, names in os.walk(root):
        rel_dir = os.path.relpath(directory, root)
        dirs[:] = [d for d in dirs if d not in SKIP_WALK]
        for name in names:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not excluded(rel, rules):
                files.append(rel)
    return sorted(files)


# ------------------------------------------------------------------ the image


@dataclass
class Image:
    """What a target's COPY/ENV/RUN/USER lines amount to."""

    files: dict[str, str]  # image path -> context path
    env: dict[str, str]
    workdir: str
    user: str
    run: list[str]  # RUN arguments, in order
    steps: list[tuple[str, str]]

    def instruction(self, keyword: str) -> list[str]:
        return [rest for k, rest in self.steps if k == keyword]


def _copy(files: dict[str, str], context: list[str], args: str, workdir: str) -> None:
    words = [w for w in shlex.split(args) if not w.startswith("--")]
    *sources, dest = words
    dest = dest if dest.startswith("/") else posixpath.join(workdir, dest)
    for source in sources:
        source = source.rstrip("/")
        inside = [f for f in context if f.startswith(source + "/")]
        if source in context:
            name = posixpath.basename(source)
            target = (
                posixpath.join(dest, name)
                if dest.endswith("/") or len(sources) > 1
                else dest
            )
            files[posixpath.normpath(target)] = source
        elif inside:
            for path in inside:
                files[
                    posixpath.normpath(posixpath.join(dest, path[len(source) + 1 :]))
                ] = path
        else:
            raise FileNotFoundError(f"COPY {source}: not in the build context")


def image(target: str) -> Image:
    context = context_files()
    files: dict[str, str] = {}
    env: dict[str, str] = {}
    workdir, user, run, steps = "/", "root", [], []
    for stage in chain(target):
        for keyword, rest in stage.steps:
            steps.append((keyword, rest))
            if keyword == "ENV":
                env.update(w.split("=", 1) for w in shlex.split(rest))
            elif keyword == "WORKDIR":
                workdir = posixpath.join(workdir, rest)
            elif keyword == "COPY":
                _copy(files, context, rest, workdir)
            elif keyword == "USER":
                user = rest
            elif keyword == "RUN":
                run.append(rest)
    return Image(files, env, workdir, user, run, steps)
