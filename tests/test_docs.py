"""The README and docs/ as a reader meets them: every relative link resolves, and every command they
show is one the suite accepts. A ``python -m bench`` command composes and every job it would launch
passes the pre-flight build (without training anything); a ``python -m bench.report`` or
``python -m bench.perf`` command parses, and its options' values are allowed. Commands written with
placeholders (``DIR``, ``[--json FILE]``, ``...``) are usage lines, not commands, and are skipped;
the README's two commands are checked by tests/test_readme.py and CI."""

import re
import shlex

import pytest
import torch

from tests.helpers import ROOT, command_jobs

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
COMMAND = re.compile(r"python -m bench(?:\.report|\.perf)?(?: [^`\n]*)?")
PLACEHOLDER = re.compile(r"\.\.\.|[\[<|$]|\b[A-Z]{2,}\b")
# drmad_mnist's auto needs MNIST (a download) or Fashion-MNIST; digits ship with scikit-learn. The presets that
# name Fashion-MNIST are skipped where it is not installed (tests.helpers.command_jobs).
OFFLINE = {"suite=drmad_mnist": ["task.dataset=digits"]}


def slug(heading: str) -> str:
    """A Markdown heading's anchor as GitHub writes it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path):
    return {slug(line.lstrip("#")) for line in path.read_text().splitlines() if line.startswith("#")}


def relative_links(doc):
    for target in LINK.findall(doc.read_text()):
        if not re.match(r"[a-z]+:", target):
            yield target


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_every_relative_link_resolves(doc):
    for target in relative_links(doc):
        path, _, anchor = target.partition("#")
        resolved = (doc.parent / path).resolve() if path else doc
        assert resolved.exists(), f"{doc.name}: {target} does not exist"
        if anchor and resolved.suffix == ".md":
            assert anchor in anchors(resolved), f"{doc.name}: {target} names no heading of {resolved.name}"


def commands():
    """Every ``python -m bench...`` command the docs show: an inline code span that is one, or a line
    of a fenced block that starts with one (a trailing ``# comment`` dropped)."""
    found = {}
    for doc in DOCS:
        text = doc.read_text()
        blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
        spans = re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S))
        lines = [line.strip() for block in blocks for line in block.splitlines()] + spans
        for line in lines:
            command = line.split(" #")[0].strip()
            if not COMMAND.fullmatch(command) or "&&" in command:
                continue
            words = command.split()
            if len(words) == 3 and words[2] != "bench":  # the tool named, not a command
                continue
            if not PLACEHOLDER.search(command.removeprefix("python -m ")):
                found.setdefault(command, doc.relative_to(ROOT).as_posix())
    return sorted(found.items())


def test_the_docs_show_commands_of_every_kind():
    shown = [command for command, _ in commands()]
    for kind in ("python -m bench ", "python -m bench.report ", "python -m bench.perf "):
        assert sum(command.startswith(kind) for command in shown) >= 3, kind


@pytest.mark.parametrize(("command", "doc"), commands(), ids=[c for c, _ in commands()])
def test_every_command_in_the_docs_is_accepted(command, doc):
    module, *arguments = shlex.split(command)[2:]
    if module == "bench.report":
        from bench.report.__main__ import check, parser

        check(parser().parse_args(arguments))
    elif module == "bench.perf":
        from bench.perf.__main__ import parser

        parser().parse_args(arguments)
    elif "--help" in arguments:
        return  # Hydra's own help
    else:
        multirun = bool({"-m", "--multirun"} & set(arguments))
        overrides = [a for a in arguments if a not in ("-m", "--multirun", "--cfg", "job")] or ["suite=default"]
        overrides += [extra for key, value in OFFLINE.items() if key in overrides for extra in value]
        if "launcher=slurm_gpu" in overrides and not torch.cuda.is_available():
            overrides.append("device=cpu")  # a GPU cluster's command, checked on a machine without one
        configs, experiments = command_jobs(tuple(overrides), multirun)
        assert configs and experiments, f"{doc}: {command} launches nothing"
