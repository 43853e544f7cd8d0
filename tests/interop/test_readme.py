"""The README's "Bring your own model" section runs as written: its Python blocks, executed in order."""

import re
from pathlib import Path

import pytest

pytest.importorskip("nir")

README = Path(__file__).resolve().parents[2] / "README.md"


def section_blocks(title: str) -> list[str]:
    text = README.read_text()
    m = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", text, flags=re.S | re.M)
    assert m, f"README has no section {title!r}"
    return re.findall(r"```python\n(.*?)```", m.group(1), flags=re.S)


def test_bring_your_own_model_runs(tmp_path, monkeypatch, capsys):
    blocks = section_blocks("Bring your own model")
    assert len(blocks) == 2
    three = [ln for ln in blocks[0].splitlines() if ln and not ln.startswith(("import", "from", "_,", "W_in"))]
    assert len(three) == 3 and "from_weights(" in three[0] and "adapt_model(" in three[1] and "evaluate(" in three[2]
    monkeypatch.chdir(tmp_path)  # randman's cache and model.nir land here
    ns = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), ns)
    printed = [float(x) for x in capsys.readouterr().out.split()]
    assert len(printed) == 2 and all(0.0 <= a <= 1.0 for a in printed)
    assert printed[0] == printed[1]  # the NIR file holds the same network: the same accuracy
    assert ns["target"].dt == 1e-3 and ns["source"].dt == 4e-3 and (tmp_path / "model.nir").is_file()
