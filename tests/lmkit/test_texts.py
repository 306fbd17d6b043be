"""editor.data: JSONL / plain-text loading and the errors a user sees for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from editor.errors import EditorError
from lmkit.texts import TextDataset, load_many, load_texts


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, rows: list) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in rows))


# --- loading -------------------------------------------------------------------------------------


def test_jsonl_text_field(tmp_path):
    p = jsonl(tmp_path / "d.jsonl", [{"text": "first doc", "label": 1}, {"text": "second doc"}])
    ds = load_texts(p)
    assert isinstance(ds, TextDataset)
    assert ds.texts == ["first doc", "second doc"]
    assert len(ds) == 2
    assert ds.source == str(p)


def test_jsonl_other_text_field(tmp_path):
    p = jsonl(tmp_path / "d.jsonl", [{"body": "alpha", "text": "ignored"}, {"body": "beta"}])
    assert load_texts(p, text_field="body").texts == ["alpha", "beta"]


def test_jsonl_blank_lines_and_blank_texts_skipped(tmp_path):
    p = write(tmp_path / "d.jsonl", '{"text": "a"}\n\n   \n{"text": "   "}\n{"text": "b"}\n')
    assert load_texts(p).texts == ["a", "b"]


def test_jsonl_keeps_unicode(tmp_path):
    p = jsonl(tmp_path / "d.jsonl", [{"text": "Café — 日本語 😀"}])
    assert load_texts(p).texts == ["Café — 日本語 😀"]


def test_plain_text_one_doc_per_non_empty_line(tmp_path):
    p = write(tmp_path / "d.txt", "line one\n\nline two  \n   \nline three")
    assert load_texts(p).texts == ["line one", "line two  ", "line three"]


def test_plain_text_crlf(tmp_path):
    p = tmp_path / "d.txt"
    p.write_bytes(b"one\r\ntwo\r\n")
    assert load_texts(p).texts == ["one", "two"]


def test_path_object_and_string_agree(tmp_path):
    p = write(tmp_path / "d.txt", "x\ny\n")
    assert load_texts(p).texts == load_texts(str(p)).texts


def test_load_many_concatenates_in_order(tmp_path):
    a = jsonl(tmp_path / "a.jsonl", [{"text": "a1"}, {"text": "a2"}])
    b = write(tmp_path / "b.txt", "b1\nb2\nb3\n")
    ds = load_many([str(a), str(b)])
    assert ds.texts == ["a1", "a2", "b1", "b2", "b3"]
    assert ds.source == f"{a} + {b}"


def test_load_many_passes_text_field(tmp_path):
    a = jsonl(tmp_path / "a.jsonl", [{"t": "x"}])
    b = jsonl(tmp_path / "b.jsonl", [{"t": "y"}])
    assert load_many([str(a), str(b)], text_field="t").texts == ["x", "y"]


def test_load_many_empty_list():
    with pytest.raises(EditorError, match="no data given"):
        load_many([])


def test_load_many_fails_on_any_empty_source(tmp_path):
    a = write(tmp_path / "a.txt", "x\n")
    b = write(tmp_path / "b.txt", "\n\n")
    with pytest.raises(EditorError, match="empty"):
        load_many([str(a), str(b)])


# --- errors --------------------------------------------------------------------------------------


def test_malformed_jsonl_names_file_and_line(tmp_path):
    p = write(tmp_path / "bad.jsonl", '{"text": "ok"}\n\n{"text": "broken\n')
    with pytest.raises(EditorError) as e:
        load_texts(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}:3:")
    assert "malformed JSON" in msg


def test_jsonl_row_not_an_object(tmp_path):
    p = write(tmp_path / "d.jsonl", '{"text": "ok"}\n["a", "b"]\n')
    with pytest.raises(EditorError) as e:
        load_texts(p)
    assert str(e.value).startswith(f"{p}:2:")
    assert "expected a JSON object, got list" in str(e.value)


def test_jsonl_missing_field_names_line_and_field(tmp_path):
    p = jsonl(tmp_path / "d.jsonl", [{"text": "ok"}, {"body": "x", "label": 0}])
    with pytest.raises(EditorError) as e:
        load_texts(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}:2:")
    assert "no 'text' field" in msg
    assert "fields: body, label" in msg
    assert "--text-field" in msg


def test_jsonl_missing_custom_field(tmp_path):
    p = jsonl(tmp_path / "d.jsonl", [{"text": "x"}])
    with pytest.raises(EditorError, match=r":1: row has no 'content' field"):
        load_texts(p, text_field="content")


@pytest.mark.parametrize("value, kind", [(3, "int"), (None, "NoneType"), (["a"], "list"), ({"a": 1}, "dict")])
def test_jsonl_non_string_field(tmp_path, value, kind):
    p = jsonl(tmp_path / "d.jsonl", [{"text": "ok"}, {"text": "ok"}, {"text": value}])
    with pytest.raises(EditorError) as e:
        load_texts(p)
    assert str(e.value) == f"{p}:3: field 'text' is {kind}, not a string"


@pytest.mark.parametrize("name, content", [("e.jsonl", ""), ("e.txt", ""), ("blank.txt", "\n  \n\n"), ("blank.jsonl", '{"text": " "}\n')])
def test_empty_file(tmp_path, name, content):
    p = write(tmp_path / name, content)
    with pytest.raises(EditorError) as e:
        load_texts(p)
    assert str(e.value) == f"{p}: the dataset is empty (no non-blank documents)"


@pytest.mark.parametrize("name", ["missing.jsonl", "missing.txt", "sub/missing", "./missing"])
def test_missing_path(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    source = name if name.startswith(".") else str(tmp_path / name)
    with pytest.raises(EditorError) as e:
        load_texts(source)
    assert str(e.value).startswith("no such file: ")
    assert "missing" in str(e.value)


def test_directory(tmp_path):
    with pytest.raises(EditorError) as e:
        load_texts(tmp_path)
    assert str(e.value) == (
        f"{tmp_path} is a directory and not a datasets.save_to_disk folder (no state.json or dataset_dict.json); "
        "pass a JSONL, text, Parquet or CSV file, or a datasets.save_to_disk folder"
    )


def test_unknown_hub_id_offline_is_a_clear_error():
    with pytest.raises(EditorError) as e:
        load_texts("no-such-user-xyz/no-such-dataset-xyz")
    msg = str(e.value)
    assert "'no-such-user-xyz/no-such-dataset-xyz' is not a local file" in msg
    assert "HF_HUB_OFFLINE=0" in msg
    assert "Traceback" not in msg
    assert "\n" not in msg
