"""metrics.png from a metrics.jsonl, and the --log checks (decompose.logs)."""

from __future__ import annotations

import importlib.util
import json

import pytest

from decompose.errors import DecompositionError
from decompose.logs import check_log, plot_metrics

HAS_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_plot_has_one_panel_per_kind_of_curve(tmp_path):
    records = [{"step": s, "kind": "train", "total": 2.0 / s, "stochastic_recon": 1.0 / s, "lr": 1e-3, "l0": 5.0} for s in (50, 100, 150)]
    records += [
        {"step": s, "kind": "eval", "ce/target": 3.3, "ce/ci_masked": 3.3 + 10 / s, "ce/zero": 30.0, "kl/pgd": 1.0 / s, "l0/mean_per_matrix": 4.0}
        for s in (100, 150)
    ]
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    png = plot_metrics(path)
    assert png == tmp_path / "metrics.png"
    wide, high = _png_size(png.read_bytes())
    assert wide > 3.5 * high  # three panels side by side

    path.write_text("".join(json.dumps(r) + "\n" for r in records if r["kind"] == "eval"))
    wide, high = _png_size(plot_metrics(path).read_bytes())  # type: ignore[union-attr]
    assert 2 * high < wide < 3.5 * high  # two eval panels only


def test_nothing_to_plot(tmp_path):
    (tmp_path / "metrics.jsonl").write_text("")
    assert plot_metrics(tmp_path / "metrics.jsonl") is None
    assert not (tmp_path / "metrics.png").exists()


def test_unknown_logger():
    with pytest.raises(DecompositionError, match=r"^--log wandb: unknown logger; choose one of tensorboard$"):
        check_log("wandb")


@pytest.mark.skipif(HAS_TENSORBOARD, reason="tensorboard is installed")
def test_tensorboard_missing_is_one_clear_error():
    with pytest.raises(DecompositionError, match=r"^--log tensorboard: the tensorboard package is not installed \(pip install tensorboard\)"):
        check_log("tensorboard")
