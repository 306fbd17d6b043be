"""save_plot writes one PNG, atomically, with or without lines."""

from __future__ import annotations

from evals.plots import save_plot


def test_save_plot(tmp_path):
    for lines in (True, False):
        path = save_plot(
            tmp_path / "sub" / f"p{lines}.png",
            series={"a": [(0, 1.0), (10, 0.5)], "b": [(0, 2.0)], "empty": []},
            xlabel="x",
            ylabel="y",
            title="t",
            lines=lines,
        )
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["pFalse.png", "pTrue.png"]  # no temporary left
