"""The README's quick starts run as written."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

from tests.conftest import ETTH1

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
#: The README's placeholder for a user's ETT copy, run on the copy in ../shared.
ETT_PLACEHOLDER = "path/to/ETTh1.csv"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_both_quick_starts():
    blocks = _blocks()
    assert any("sciml_seq.torch" in b for b in blocks)
    assert any("sciml_seq.jax" in b for b in blocks)


@pytest.mark.parametrize("index", range(len(_blocks())))
@pytest.mark.usefixtures("quick_jax_compiles")  # the JAX quick start compiles a gradient
def test_readme_block_runs(index, tmp_path, capsys):
    block = _blocks()[index]
    if ETT_PLACEHOLDER in block:
        if not ETTH1.exists():
            pytest.skip(f"the ETT example needs {ETTH1}")
        block = block.replace(ETT_PLACEHOLDER, str(ETTH1))
    script = tmp_path / f"block{index}.py"
    script.write_text(block)
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out  # every block prints what it shows
