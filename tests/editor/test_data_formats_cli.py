"""`--dataset` / `--retain` with the formats datasets are kept in, through `editor forget` end to end:
a Parquet forget set, a CSV retain set and a `save_to_disk` folder, read with one `--text-field`."""

from __future__ import annotations

import csv
import json

import pytest

from editor.paths import TRAIN
from tests.editor.clitools import assert_user_error, invoke, jsonl_texts, save_tiny_llama, wikitext_lines


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = tmp_path_factory.mktemp("formats")
    toxic, benign, wiki = jsonl_texts(TRAIN["toxic"], 24), jsonl_texts(TRAIN["benign"], 12), wikitext_lines(12)
    pq.write_table(pa.table({"id": list(range(24)), "body": toxic}), root / "forget.parquet")
    with (root / "retain.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["body", "label"])
        w.writerows([t, 0] for t in benign)
    datasets.Dataset.from_dict({"body": wiki}).save_to_disk(str(root / "wiki"))
    return root, save_tiny_llama(root / "model"), (toxic, benign, wiki)


def test_forget_reads_parquet_csv_and_saved_dataset(files):
    root, model, (toxic, benign, wiki) = files
    args = ["forget", "--method", "ga", "--strength", "1", "--model", model, "--text-field", "body", "--dry-run", "--json"]
    result = invoke(*args, "--dataset", root / "forget.parquet", "--retain", root / "retain.csv", "--retain", root / "wiki")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)["data"]
    assert data["forget"]["documents"] == len(toxic) == 24
    assert data["forget"]["source"] == str(root / "forget.parquet")
    assert data["retain"]["documents"] == len(benign) + len(wiki) == 24
    assert data["retain"]["source"] == f"{root / 'retain.csv'} + {root / 'wiki'}"

    from lmkit.files import texts_sha256

    assert data["forget"]["sha256"] == texts_sha256(toxic)  # the documents themselves, in order
    assert data["retain"]["sha256"] == texts_sha256(benign + wiki)


def test_forget_wrong_column_names_the_file(files):
    root, model, _ = files
    result = invoke("forget", "--model", model, "--dataset", root / "forget.parquet", "--retain", root / "retain.csv", "--dry-run")
    assert_user_error(result, f"{root / 'forget.parquet'}: no column 'text' (columns: id, body); choose one with --text-field")
