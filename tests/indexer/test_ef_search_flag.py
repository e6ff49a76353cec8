"""`index --hnsw-ef-search N`: the HNSW search breadth (FAISS and pgvector) is an index setting with the flags' checks."""

from __future__ import annotations

from pathlib import Path

from e5search.cli import main
from indexer.config import IndexConfig
from indexer.configfile import index_config

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "app" / "corpus"


def test_the_flag_sets_the_index_config():
    assert index_config(IndexConfig(), {"hnsw_ef_search": 200}).hnsw_ef_search == 200
    assert index_config(IndexConfig(), {}).hnsw_ef_search == IndexConfig().hnsw_ef_search


def test_a_bad_value_is_one_line_and_exit_2(tmp_path: Path, capsys):
    code = main(["index", str(CORPUS), "--index", str(tmp_path / "idx"), "--hnsw-ef-search", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "hnsw_ef_search=0" in err and "Traceback" not in err
    assert not (tmp_path / "idx" / "index.sqlite").exists()  # refused before anything was written
