"""Every ```python block of the README and of the docs runs, as written.

The README's blocks run on their own, top to bottom, in one namespace. A
doc's blocks continue from the linear softmax classifier already built (the
names a reader has in hand at that point: ``model``, ``loss``, ``Z``,
``labels``, ``F``, ``np``) and also run top to bottom in one namespace, in a
scratch folder, so the files they write go nowhere.
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
DOCS = sorted(p for p in (ROOT / "docs").glob("*.md") if BLOCK.search(p.read_text(encoding="utf-8")))


def python_blocks(path: Path) -> list[str]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def run_blocks(blocks: list[str], namespace: dict, where: str) -> str:
    """Run the blocks in order in ``namespace``; what they print comes back."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        for k, block in enumerate(blocks, start=1):
            exec(compile(block, f"{where}, python block {k}", "exec"), namespace)
    return printed.getvalue()


def test_the_block_reader_finds_python_blocks_only(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("```bash\nmake\n```\n```python\nx = 1\n```\ntext\n```python\ny = x + 1\n```\n", "utf-8")
    assert python_blocks(doc) == ["x = 1\n", "y = x + 1\n"]


def test_the_readme_blocks_run_and_print_what_they_promise(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = python_blocks(ROOT / "README.md")
    assert blocks, "the README has no python block"
    printed = run_blocks(blocks, {"__name__": "__readme__"}, "README.md")
    # "print(np.abs(Z.grad - ref.dZ).max())  # ~1e-17": the engine's dZ is the closed form's.
    assert float(printed.split()[-1]) < 1e-12


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_the_docs_blocks_run(doc, tmp_path, monkeypatch):
    from tinygrad_softmax import functional as F
    from tinygrad_softmax.lecture import build_classifier

    monkeypatch.chdir(tmp_path)
    model = build_classifier("column")
    namespace = {
        "__name__": "__docs__",
        "np": np,
        "F": F,
        "model": model,
        "loss": model.loss,
        "Z": model.Z,
        "labels": model.labels,
    }
    run_blocks(python_blocks(doc), namespace, f"docs/{doc.name}")


LINK = re.compile(r"\]\(([^)\s]+)\)")


@pytest.mark.parametrize(
    "page", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_every_relative_link_points_at_a_file_that_exists(page):
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if "://" in target or target.startswith(("#", "mailto:")):
            continue
        path = (page.parent / target.split("#")[0]).resolve()
        assert path.exists(), f"{page.name} links to {target}, which does not exist"


def test_the_code_map_names_every_module_of_the_package():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code_map = readme.split("## The code", 1)[1]
    package = ROOT / "tinygrad_softmax"
    for module in package.rglob("*.py"):
        if module.name in ("__init__.py", "__main__.py"):
            continue
        inner = module.relative_to(package).parent
        named = f"`{module.name}`" in code_map or (inner.parts and f"`{inner.parts[-1]}/`" in code_map)
        assert named, f"README's code map does not name {module.relative_to(ROOT)}"
