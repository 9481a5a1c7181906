"""docs/own_data.md: every block runs as written and prints what its comments say."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "docs" / "own_data.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)

#: A line only that block has -> the lines it prints (its comments say so too).
EXPECTED = {
    "IrregularSeries(times, values": ["8 True"],
    "Task.from_arrays(": ["sequence (360, 24, 3) (40, 24, 3) (100, 24, 3)"],
    "Trajectories(u, t, meta=": ["(4, 5, 2, 32, 32)", "(2, 5, 2, 32, 32)"],
}


def test_every_block_has_its_expected_output():
    for block in BLOCKS:
        assert sum(key in block for key in EXPECTED) == 1, block
    assert len(BLOCKS) == len(EXPECTED)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
@pytest.mark.usefixtures("one_torch_thread")
def test_block_prints_what_it_says(index, tmp_path, capsys):
    block = BLOCKS[index]
    (expected,) = [lines for key, lines in EXPECTED.items() if key in block]
    script = tmp_path / f"block{index}.py"
    script.write_text(block)
    namespace = runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out.splitlines() == expected
    if "IrregularSeries(" in block:  # the padding keeps the masks' counts
        task, series = namespace["task"], namespace["series"]
        assert int(task.mask.sum() + task.query_mask.sum()) == sum(len(t) for t, _ in series)
