"""Load text datasets: JSONL, plain text, Parquet, CSV, a `datasets.save_to_disk` folder or a Hugging Face
dataset id; seeded sampling of documents.

One document per JSONL row (the `text_field` of each object), per non-empty line of a text file, or per
row of a table (its `text_field` column: Parquet, CSV, a saved dataset). Anything wrong with the input is
a UserError naming the file and, for JSONL and CSV, the line.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import random
from dataclasses import dataclass
from pathlib import Path

from lmkit.errors import UserError

TEXT_SUFFIXES = {".txt", ".text", ".md", ".raw"}
JSONL_SUFFIXES = {".jsonl", ".json", ".ndjson"}
PARQUET_SUFFIXES = {".parquet", ".pq"}
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
FORMATS = "a JSONL, text, Parquet or CSV file, or a datasets.save_to_disk folder"


@dataclass(frozen=True)
class TextDataset:
    """Documents loaded from one source, with where they came from (for manifests and messages)."""

    source: str
    texts: list[str]

    def __len__(self) -> int:
        return len(self.texts)


def sample_texts(texts: list[str], n: int | None, seed: int) -> list[str]:
    """At most `n` documents drawn without replacement (seeded); all of them, in order, if n is None or enough."""
    return texts if n is None or len(texts) <= n else random.Random(seed).sample(texts, n)


def read_text(path: Path) -> str:
    """A file's text: UTF-8, with or without a byte-order mark; anything else is one UserError naming the file and byte."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror or e}") from None
    bom = len(codecs.BOM_UTF8) if raw.startswith(codecs.BOM_UTF8) else 0
    body = raw[bom:]
    nul = body.find(b"\x00")
    if nul >= 0:
        raise UserError(f"{path}: not a text file (a NUL byte at byte {bom + nul}); pass a UTF-8 JSONL or text file")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as e:
        bad = body[e.start : e.start + 4].hex(" ")
        raise UserError(f"{path}: not UTF-8 text (byte {bom + e.start}: {bad}); convert it to UTF-8, e.g. iconv -f latin1 -t utf-8") from None


def _lines(text: str) -> list[str]:
    """Lines as Python's text files give them (\\n, \\r\\n or \\r), not str.splitlines (which also breaks at U+2028 etc.)."""
    return text.replace("\r\n", "\n").replace("\r", "\n").split("\n")


def jsonl_objects(path: Path):
    """(line number, object) for each non-blank line of a JSONL file; a malformed line or a non-object is a UserError."""
    for lineno, line in enumerate(_lines(read_text(path)), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{path}:{lineno}: malformed JSON line ({e.msg})") from None
        if not isinstance(row, dict):
            raise UserError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
        yield lineno, row


def read_jsonl(path: Path, text_field: str = "text") -> list[str]:
    texts: list[str] = []
    for lineno, row in jsonl_objects(path):
        if text_field not in row:
            fields = ", ".join(sorted(row)) or "none"
            raise UserError(f"{path}:{lineno}: row has no '{text_field}' field (fields: {fields}); choose one with --text-field")
        value = row[text_field]
        if not isinstance(value, str):
            raise UserError(f"{path}:{lineno}: field '{text_field}' is {type(value).__name__}, not a string")
        if value.strip():
            texts.append(value)
    return texts


def read_text_lines(path: Path) -> list[str]:
    return [line for line in _lines(read_text(path)) if line.strip()]


def _no_column(path: Path | str, text_field: str, columns: list[str]) -> UserError:
    return UserError(f"{path}: no column '{text_field}' (columns: {', '.join(columns) or 'none'}); choose one with --text-field")


def _column_texts(path: Path | str, text_field: str, values: list) -> list[str]:
    """The non-blank strings of a table column; a value that is neither a string nor missing is a UserError."""
    texts = []
    for row, value in enumerate(values):
        if value is None:
            continue
        if not isinstance(value, str):
            raise UserError(f"{path}: column '{text_field}' holds {type(value).__name__} values (row {row}), not text; choose a text column with --text-field")
        if value.strip():
            texts.append(value)
    return texts


def read_parquet(path: Path, text_field: str = "text") -> list[str]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        schema = pq.read_schema(path)
        if text_field not in schema.names:
            raise _no_column(path, text_field, list(schema.names))
        column = pq.read_table(path, columns=[text_field]).column(text_field)
    except (pa.ArrowException, OSError) as e:
        raise UserError(f"{path}: not a readable Parquet file ({(str(e).splitlines() or [type(e).__name__])[0]})") from None
    return _column_texts(path, text_field, column.to_pylist())


def read_csv(path: Path, text_field: str = "text", delimiter: str = ",") -> list[str]:
    """Rows of a CSV (or TSV) file with a header line; quoted fields may span lines."""
    reader = csv.DictReader(io.StringIO(read_text(path), newline=""), delimiter=delimiter)
    try:
        columns = list(reader.fieldnames or [])
        if text_field not in columns:
            raise _no_column(path, text_field, columns)
        values = [row[text_field] for row in reader]
    except csv.Error as e:
        raise UserError(f"{path}:{reader.line_num}: malformed CSV ({e})") from None
    return _column_texts(path, text_field, values)


def is_saved_dataset(path: Path) -> bool:
    """A folder written by `Dataset.save_to_disk` or `DatasetDict.save_to_disk`."""
    return (path / "state.json").is_file() or (path / "dataset_dict.json").is_file()


def read_saved_dataset(path: Path, text_field: str = "text", split: str = "train") -> list[str]:
    """The `text_field` column of a saved dataset; of a saved DatasetDict, `split` or else its only split."""
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:  # datasets raises several types for a damaged folder
        raise UserError(f"{path}: not a readable datasets.save_to_disk folder ({(str(e).splitlines() or [type(e).__name__])[0]})") from None
    if isinstance(ds, datasets.DatasetDict):
        splits = list(ds)
        if split not in ds and len(splits) != 1:
            raise UserError(f"{path} holds the splits {', '.join(splits)} and no '{split}'; pass one split's folder, e.g. {path / splits[0]}")
        ds = ds[split] if split in ds else ds[splits[0]]
    if text_field not in ds.column_names:
        raise _no_column(path, text_field, list(ds.column_names))
    return _column_texts(path, text_field, ds[text_field])


def _looks_like_path(source: str) -> bool:
    suffix = Path(source).suffix.lower()
    known = TEXT_SUFFIXES | JSONL_SUFFIXES | PARQUET_SUFFIXES | set(CSV_SUFFIXES)
    return source.startswith((".", "/", "~")) or suffix in known or Path(source).expanduser().exists()


def read_file(path: Path, text_field: str = "text") -> list[str]:
    """Documents of one file, by its suffix: JSONL, Parquet, CSV/TSV, else plain text (one per line)."""
    suffix = path.suffix.lower()
    if suffix in JSONL_SUFFIXES:
        return read_jsonl(path, text_field)
    if suffix in PARQUET_SUFFIXES:
        return read_parquet(path, text_field)
    if suffix in CSV_SUFFIXES:
        return read_csv(path, text_field, CSV_SUFFIXES[suffix])
    return read_text_lines(path)


def _load_hf_dataset(source: str, text_field: str, split: str) -> list[str]:
    import datasets

    name, _, config = source.partition(":")
    try:
        ds = datasets.load_dataset(name, config or None, split=split)
    except Exception as e:  # the hub raises many types; all mean "could not load it"
        raise UserError(
            f"'{source}' is not a local file and could not be loaded as a Hugging Face dataset "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'}). "
            "This tool runs offline by default: pass a local JSONL or text file, or set HF_HUB_OFFLINE=0 "
            "and HF_DATASETS_OFFLINE=0 with network access."
        ) from None
    if text_field not in ds.column_names:
        raise UserError(f"dataset '{source}' has no column '{text_field}' (columns: {', '.join(ds.column_names)})")
    return [t for t in ds[text_field] if isinstance(t, str) and t.strip()]


def load_texts(source: str | Path, text_field: str = "text", split: str = "train") -> TextDataset:
    """Load documents from `source`; an empty result is an error."""
    source = str(source)
    path = Path(source).expanduser()
    if path.is_dir():
        if not is_saved_dataset(path):
            raise UserError(f"{path} is a directory and not a datasets.save_to_disk folder (no state.json or dataset_dict.json); pass {FORMATS}")
        texts = read_saved_dataset(path, text_field, split)
    elif path.is_file():
        texts = read_file(path, text_field)
    elif _looks_like_path(source):
        raise UserError(f"no such file: {path}")
    else:
        texts = _load_hf_dataset(source, text_field, split)
    if not texts:
        raise UserError(f"{source}: the dataset is empty (no non-blank documents)")
    return TextDataset(source=source, texts=texts)


def load_many(sources: list[str] | list[Path], text_field: str = "text") -> TextDataset:
    """Load and concatenate several sources; each must be non-empty on its own."""
    if not sources:
        raise UserError("no data given")
    loaded = [load_texts(s, text_field) for s in sources]
    return TextDataset(source=" + ".join(d.source for d in loaded), texts=[t for d in loaded for t in d.texts])
