"""The README and docs/ against the code: the README stays short, every `multihead` command they show parses with
the real command line, their links and paths lead somewhere, and every section of the README from before the
split into docs/ still has its heading. Reads files and builds the argparse parser only: no TensorFlow."""

import argparse
import re
import shlex
from pathlib import Path

import pytest

from pipeline.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 200

# Every `##`/`###` section of the README before it was split into docs/ (690 lines), and where each is now:
# (page, heading) pairs. A section that was split names each part.
OLD_README_SECTIONS = {
    "The two commands": [("README.md", "The two commands")],
    "Your own data": [("docs/operations.md", "Your own data")],
    "New data as spans, and retraining on a schedule": [
        ("docs/operations.md", "New data as spans, and retraining on a schedule")],
    "The heads spec": [("docs/spec.md", "The heads spec")],
    "Losses, loss weighting and metrics": [("docs/spec.md", "Losses, loss weighting and metrics")],
    "A second example: synthetic data with an angle head": [
        ("docs/spec.md", "A second example: synthetic data with an angle head")],
    "Quality: one multi-head model against single-task baselines": [
        ("docs/evaluation.md", "Quality: one multi-head model against single-task baselines")],
    "Bad input and faults: what the pipeline does": [
        ("docs/faults.md", "Bad input and faults: what the pipeline does")],
    "Supply chain": [("docs/design.md", "Supply chain")],
    "How a model is judged": [("docs/evaluation.md", "How a model is judged")],
    "What the pipeline does, component by component": [
        ("docs/design.md", "What the pipeline does, component by component")],
    "Kubeflow Pipelines, the container image, versions and rollback": [
        ("docs/kubeflow.md", "Kubeflow Pipelines and the container image"),
        ("docs/operations.md", "Serving versions and rollback")],
    "Serving": [("docs/operations.md", "Serving")],
    "The stack, and why": [("docs/design.md", "The stack, and why")],
    "Beam options on one machine": [("docs/design.md", "Beam options on one machine")],
    "Run report": [("docs/evaluation.md", "Run report")],
    "Benchmarks": [("BENCHMARKS.md", "Benchmarks (issue 6)")],
    "Layout": [("README.md", "Layout")],
    "Tests": [("docs/testing.md", "Tests")],
    "Known limits (tracked in the issues)": [("docs/design.md", "Known limits (tracked in the issues)")],
}

_FENCE = re.compile(r"^```[^\n]*\n(.*?)^```[ \t]*$", re.S | re.M)
_INLINE_CODE = re.compile(r"`([^`]+)`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
# `multihead SUB` (also `.venv/bin/multihead SUB`, `/opt/.../bin/multihead SUB`) and `python -m pipeline SUB`, in
# command position: not `cd /opt/multihead`, `REGISTRY/multihead:TAG` or `multihead-retrain.timer`.
_INVOCATION = re.compile(
    r"(?:^|(?<=[\s;&|(=]))(?:[\w./-]*/bin/)?(?:multihead|python[\d.]*\s+-m\s+pipeline)[ \t]+([a-z][a-z-]*)(.*)$",
    re.M)
_SHELL_STOP = {"&&", "||", ";", "|", ">", ">>", "2>&1"}
_REPO_PATH = re.compile(r"^(?:pipeline|components|benchmarks|tests|schemas|data|docs|\.ci)/[\w./{}-]*$")


def _text(page: Path) -> str:
    return page.read_text(encoding="utf-8")


def _name(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _code_blocks(text: str) -> list[str]:
    return _FENCE.findall(text)


def _prose(text: str) -> str:
    return _FENCE.sub("", text)


def _headings(text: str) -> list[str]:
    return [m.group(2).strip() for m in re.finditer(r"^(#{1,6})\s+(.+)$", _prose(text), re.M)]


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _anchors(text: str) -> set[str]:
    seen: dict[str, int] = {}
    anchors = set()
    for heading in _headings(text):
        base = _anchor(heading)
        anchors.add(f"{base}-{seen[base]}" if base in seen else base)
        seen[base] = seen.get(base, 0) + 1
    return anchors


def _invocations(text: str) -> list[tuple[str, list[str]]]:
    """(subcommand, argument tokens) of every command line in the page's code: each fenced block (lines continued
    with a backslash joined) and each inline code span."""
    snippets = [block.replace("\\\n", " ") for block in _code_blocks(text)]
    snippets += [" ".join(span.split()) for span in _INLINE_CODE.findall(_prose(text))]
    found = []
    for snippet in snippets:
        for match in _INVOCATION.finditer(snippet):
            tokens = []
            for token in shlex.split(match.group(2), comments=True):
                if token in _SHELL_STOP:
                    break
                tokens.append(token)
            found.append((match.group(1), tokens))
    return found


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    parser = build_parser()
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


SUBPARSERS = _subparsers()
INVOCATIONS = [(page, sub, tokens) for page in PAGES for sub, tokens in _invocations(_text(page))]


def test_the_readme_is_at_most_200_lines():
    lines = len(_text(README).splitlines())
    assert lines <= README_MAX_LINES, f"README.md has {lines} lines; move detail into docs/"


def test_the_readme_shows_the_two_commands():
    code = "\n".join(_code_blocks(_text(README)))
    assert re.search(r"^make demo\b", code, re.M) and re.search(r"^make test\b", code, re.M)


def test_every_make_target_the_docs_name_is_in_the_makefile():
    targets = set(re.findall(r"^([\w-]+):", (ROOT / "Makefile").read_text(), re.M))
    for page in PAGES:
        text = _text(page)
        code = "\n".join(_code_blocks(text) + _INLINE_CODE.findall(_prose(text)))
        for target in re.findall(r"(?<![\w/.-])make ([a-z][\w-]*)", code):
            assert target in targets, f"{_name(page)}: make {target} is not a Makefile target"


def test_the_readme_shows_every_subcommand():
    shown = {sub for page, sub, _ in INVOCATIONS if page == README}
    assert shown == set(SUBPARSERS)


def test_commands_were_found_in_every_doc_that_has_them():
    pages = {_name(page) for page, _, _ in INVOCATIONS}
    assert {"README.md", "docs/operations.md", "docs/kubeflow.md", "docs/spec.md", "docs/evaluation.md"} <= pages


@pytest.mark.parametrize("page, sub, tokens", INVOCATIONS,
                         ids=[f"{_name(p)}:{s}:{i}" for i, (p, s, _) in enumerate(INVOCATIONS)])
def test_each_documented_command_and_flag_exists(page, sub, tokens):
    assert sub in SUBPARSERS, f"{_name(page)}: `multihead {sub}` is no command"
    options = SUBPARSERS[sub]._option_string_actions
    for token in tokens:
        flag = token.strip("[],").split("=", 1)[0]
        if flag.startswith("--"):
            assert flag in options, f"{_name(page)}: `multihead {sub}` has no flag {flag}"


@pytest.mark.parametrize("sub", sorted(SUBPARSERS))
def test_each_subcommands_help_answers(sub, capsys):
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args([sub, "--help"])
    assert done.value.code == 0
    assert f"usage: multihead {sub}" in capsys.readouterr().out


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_relative_link_leads_to_a_file_and_heading(page):
    for target in _LINK.findall(_prose(_text(page))):
        if re.match(r"^[a-z]+:", target):
            continue
        path, _, anchor = target.partition("#")
        linked = (page.parent / path).resolve() if path else page
        assert linked.exists(), f"{_name(page)}: link to {target}: no such file"
        if anchor and linked.suffix == ".md":
            assert anchor in _anchors(_text(linked)), f"{_name(page)}: link to {target}: no such heading"


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_repository_path_the_docs_name_exists(page):
    for span in _INLINE_CODE.findall(_prose(_text(page))):
        path = span.split("::")[0]
        if _REPO_PATH.match(path) and "{" not in path:
            assert (ROOT / path).exists(), f"{_name(page)}: `{span}` does not exist"
    for module in re.findall(r"python[\d.]* -m ((?:benchmarks|data)\.[\w.]+)", _text(page)):
        assert (ROOT / (module.replace(".", "/") + ".py")).exists(), f"{_name(page)}: no module {module}"


def test_the_readme_links_every_page_in_docs():
    linked = {target.partition("#")[0] for target in _LINK.findall(_text(README))}
    assert {_name(page) for page in PAGES if page.parent == ROOT / "docs"} <= linked


@pytest.mark.parametrize("old_title", list(OLD_README_SECTIONS))
def test_every_section_of_the_old_readme_has_a_heading(old_title):
    for page, heading in OLD_README_SECTIONS[old_title]:
        assert heading in _headings(_text(ROOT / page)), f"{old_title!r}: no heading {heading!r} in {page}"
