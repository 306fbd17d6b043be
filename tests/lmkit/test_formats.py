"""The table formats datasets are usually kept in: Parquet, CSV/TSV and `datasets.save_to_disk` folders,
each written with its own library and read back through `load_texts`, and their errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from lmkit.errors import UserError
from lmkit.texts import load_many, load_texts

DOCS = ["first document", "a second, with a comma", 'a "quoted"\nmulti-line one', "Café — 日本語"]


def parquet(path: Path, columns: dict[str, list]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table(columns), path)
    return path


def csv_file(path: Path, rows: list[dict], delimiter: str = ",") -> Path:
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_parquet(tmp_path):
    p = parquet(tmp_path / "d.parquet", {"text": DOCS + [None, "  "], "label": list(range(6))})
    ds = load_texts(p)
    assert ds.texts == DOCS  # missing and blank values are skipped
    assert ds.source == str(p)


def test_parquet_other_column(tmp_path):
    p = parquet(tmp_path / "d.parquet", {"body": DOCS, "text": ["x"] * len(DOCS)})
    assert load_texts(p, text_field="body").texts == DOCS


def test_parquet_missing_column_lists_columns(tmp_path):
    p = parquet(tmp_path / "d.parquet", {"body": DOCS, "label": [0, 1, 0, 1]})
    with pytest.raises(UserError) as e:
        load_texts(p)
    assert str(e.value) == f"{p}: no column 'text' (columns: body, label); choose one with --text-field"


def test_parquet_non_text_column(tmp_path):
    p = parquet(tmp_path / "d.parquet", {"text": DOCS, "label": [0, 1, 0, 1]})
    with pytest.raises(UserError, match=r"column 'label' holds int values \(row 0\), not text; choose a text column with --text-field"):
        load_texts(p, text_field="label")


def test_parquet_damaged_file(tmp_path):
    p = tmp_path / "d.parquet"
    p.write_bytes(b"PAR1 not really parquet")
    with pytest.raises(UserError, match=rf"^{p}: not a readable Parquet file \("):
        load_texts(p)


def test_csv_with_quoted_multiline_fields(tmp_path):
    p = csv_file(tmp_path / "d.csv", [{"id": i, "text": t} for i, t in enumerate(DOCS)])
    assert load_texts(p).texts == DOCS


def test_tsv_and_text_field(tmp_path):
    p = csv_file(tmp_path / "d.tsv", [{"body": t, "text": "x"} for t in DOCS], delimiter="\t")
    assert load_texts(p, text_field="body").texts == DOCS


def test_csv_missing_column(tmp_path):
    p = csv_file(tmp_path / "d.csv", [{"id": 1, "content": "x"}])
    with pytest.raises(UserError) as e:
        load_texts(p)
    assert str(e.value) == f"{p}: no column 'text' (columns: id, content); choose one with --text-field"


def test_csv_not_utf8(tmp_path):
    p = tmp_path / "d.csv"
    p.write_bytes("text\ncafé\n".encode("latin-1"))
    with pytest.raises(UserError, match="not UTF-8"):
        load_texts(p)


def test_save_to_disk_dataset(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"text": DOCS, "label": [0, 1, 0, 1]}).save_to_disk(str(tmp_path / "ds"))
    ds = load_texts(tmp_path / "ds")
    assert ds.texts == DOCS
    assert ds.source == str(tmp_path / "ds")


def test_save_to_disk_dataset_dict_takes_train_or_the_only_split(tmp_path):
    import datasets

    train, test = datasets.Dataset.from_dict({"t": DOCS[:2]}), datasets.Dataset.from_dict({"t": DOCS[2:]})
    datasets.DatasetDict({"test": test, "train": train}).save_to_disk(str(tmp_path / "both"))
    datasets.DatasetDict({"validation": test}).save_to_disk(str(tmp_path / "one"))
    datasets.DatasetDict({"validation": test, "test": train}).save_to_disk(str(tmp_path / "two"))
    assert load_texts(tmp_path / "both", text_field="t").texts == DOCS[:2]
    assert load_texts(tmp_path / "both" / "test", text_field="t").texts == DOCS[2:]  # one split's own folder
    assert load_texts(tmp_path / "one", text_field="t").texts == DOCS[2:]
    with pytest.raises(UserError) as e:
        load_texts(tmp_path / "two", text_field="t")
    assert (
        str(e.value) == f"{tmp_path / 'two'} holds the splits validation, test and no 'train'; pass one split's folder, e.g. {tmp_path / 'two' / 'validation'}"
    )


def test_save_to_disk_missing_column(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"body": DOCS}).save_to_disk(str(tmp_path / "ds"))
    with pytest.raises(UserError, match=r"no column 'text' \(columns: body\); choose one with --text-field"):
        load_texts(tmp_path / "ds")


def test_every_format_together(tmp_path):
    import datasets

    datasets.Dataset.from_dict({"text": ["from disk"]}).save_to_disk(str(tmp_path / "ds"))
    sources = [
        str(parquet(tmp_path / "a.parquet", {"text": ["from parquet"]})),
        str(csv_file(tmp_path / "b.csv", [{"text": "from csv"}])),
        str(tmp_path / "ds"),
    ]
    (tmp_path / "c.jsonl").write_text('{"text": "from jsonl"}\n', encoding="utf-8")
    (tmp_path / "d.txt").write_text("from text\n", encoding="utf-8")
    ds = load_many([*sources, str(tmp_path / "c.jsonl"), str(tmp_path / "d.txt")])
    assert ds.texts == ["from parquet", "from csv", "from disk", "from jsonl", "from text"]


@pytest.mark.parametrize("name", ["missing.parquet", "missing.csv", "missing.tsv"])
def test_missing_table_file(tmp_path, name):
    with pytest.raises(UserError, match=f"^no such file: .*{name}$"):
        load_texts(tmp_path / name)
