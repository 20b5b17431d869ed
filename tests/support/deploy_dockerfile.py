"""Reading the Dockerfile and ``.dockerignore`` the way a builder does, without a container engine.

``stages()`` splits the Dockerfile into its ``FROM`` stages, instructions joined across line continuations;
``ignored()`` answers whether a path of the repository stays out of the build context, with Docker's rules
(patterns of Go's ``filepath.Match`` plus ``**``, a pattern also excludes everything under a directory it
matches, ``!`` re-includes, the last matching line wins).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.deploy_tools import ROOT

DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)  # (INSTRUCTION, arguments)

    def all(self, instruction: str) -> list[str]:
        return [args for name, args in self.instructions if name == instruction]

    def last(self, instruction: str) -> str:
        found = self.all(instruction)
        assert found, f"no {instruction} in the stage FROM {self.base}"
        return found[-1]


def instructions(text: str) -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` for every instruction, comments dropped, continuations joined."""
    joined: list[str] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        joined.append(pending + stripped)
        pending = ""
    parsed = []
    for line in joined:
        name, _, args = line.partition(" ")
        parsed.append((name.upper(), " ".join(args.split())))
    return parsed


def stages(text: str | None = None) -> list[Stage]:
    found: list[Stage] = []
    for name, args in instructions(text if text is not None else DOCKERFILE.read_text()):
        if name == "FROM":
            base, _, alias = re.sub(r"\s+AS\s+", " AS ", args, flags=re.IGNORECASE).partition(" AS ")
            found.append(Stage(base.strip(), alias.strip() or None))
        elif found:
            found[-1].instructions.append((name, args))
    return found


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    parts = []
    index = 0
    while index < len(pattern):
        if pattern.startswith("**/", index):
            parts.append("(?:.*/)?")
            index += 3
        elif pattern.startswith("**", index):
            parts.append(".*")
            index += 2
        elif pattern[index] == "*":
            parts.append("[^/]*")
            index += 1
        elif pattern[index] == "?":
            parts.append("[^/]")
            index += 1
        elif pattern[index] == "[":
            end = pattern.index("]", index)
            parts.append(pattern[index : end + 1])
            index = end + 1
        else:
            parts.append(re.escape(pattern[index]))
            index += 1
    return re.compile("".join(parts) + "(?:/.*)?")


def ignore_rules(text: str | None = None) -> list[tuple[bool, re.Pattern[str]]]:
    """``(re_include, pattern)`` per line of ``.dockerignore``."""
    rules = []
    for raw in (text if text is not None else DOCKERIGNORE.read_text()).splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        cleaned = line.lstrip("!").strip().strip("/")
        rules.append((negated, _pattern_regex(cleaned)))
    return rules


def ignored(relative: Path | str, rules: list[tuple[bool, re.Pattern[str]]] | None = None) -> bool:
    """Whether the builder leaves ``relative`` (a path from the repository root) out of the context."""
    path = str(relative).strip("/")
    excluded = False
    for negated, pattern in rules if rules is not None else ignore_rules():
        if pattern.fullmatch(path):
            excluded = not negated
    return excluded
