"""Readers: the two ML-100K sources agree, and bad input gets a message naming file, line and field."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmark.data.loader import load_dataset
from benchmark.errors import BenchError
from benchmark.protocols import get_split


def test_grouplens_reader_reads_the_official_files(grouplens_dir):
    inter = load_dataset("ml-100k", grouplens_dir)
    assert len(inter) == 100_000 and inter.n_users == 943 and inter.n_items == 1682
    assert int(inter.label.sum()) == 55_375  # rating >= 4
    assert inter.item_features.shape == (1682, 19 + 9) and inter.user_features.shape == (943, 8 + 2 + 21)
    assert np.all(inter.item_features[:, -9:].sum(1) == 1) and np.all(inter.user_features[:, :8].sum(1) == 1)
    toy_story = list(inter.item_ids).index("1")
    names = [n for n, v in zip(inter.item_feature_names, inter.item_features[toy_story]) if v]
    assert names == ["genre=Animation", "genre=Children's", "genre=Comedy", "year>=1990"]


def test_both_readers_give_the_same_interactions_and_split_hash(grouplens_dir, embedded_available):
    a = load_dataset("ml-100k")
    b = load_dataset("ml-100k", grouplens_dir)
    assert a.source.startswith("recbole-atomic") and b.source.startswith("grouplens-100k")
    for col in ("user", "item", "time", "value", "label"):
        np.testing.assert_array_equal(getattr(a, col), getattr(b, col))
    np.testing.assert_array_equal(a.user_ids, b.user_ids)
    np.testing.assert_array_equal(a.item_ids, b.item_ids)
    np.testing.assert_array_equal(a.item_features, b.item_features)
    np.testing.assert_array_equal(a.user_features, b.user_features)
    assert a.canonical_hash() == b.canonical_hash()
    sa, _ = get_split(a, "loo")
    sb, cached = get_split(b, "loo")
    assert cached and sa.hash == sb.hash


def test_real_loo_split_has_the_recorded_shape(grouplens_dir):
    split, _ = get_split(load_dataset("ml-100k", grouplens_dir), "loo")
    m = split.meta
    # 942 users have events; 14 test events are left out by the existence rule (docs/protocols.md, loo version 3)
    assert m["n_users_with_events"] == 942 and m["parts"]["test"]["n_events"] == 928
    assert m["parts"]["test"]["n_events_positive_not_existing"] == 14 and m["parts"]["test"]["n_cold_targets"] == 576
    assert 0.75 <= m["tail_item_share"] <= 0.85  # card's tau chosen for ~80 % cold items
    assert m["parts"]["test"]["n_events_short_candidates"] == 0
    assert m["tie_excluded_window_entries"]["history"] > 0  # ML-100K has same-second bursts


def test_tiny_official_format_fixture_is_read_and_labelled(tiny_grouplens):
    inter = load_dataset("ml-100k", tiny_grouplens)
    assert len(inter) == 12 and inter.n_users == 3 and inter.n_items == 4
    assert inter.label.tolist() == [1, 0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 0]
    names = inter.item_feature_names
    row = dict(zip(names, inter.item_features[1]))  # item "2": year from the title, not the 1998 re-release
    assert row["year1970-1979"] == 1 and row["genre=Animation"] == 1
    assert inter.item_features[2, names.index("yearmissing")] == 1
    assert inter.item_features[3, names.index("year<1930")] == 1
    assert inter.user_features[2, inter.user_feature_names.index("age<18")] == 1


def _break(path: Path, line_no: int, new: str, encoding: str = "utf-8") -> None:
    lines = path.read_text(encoding=encoding).splitlines()
    lines[line_no - 1] = new
    path.write_text("\n".join(lines) + "\n", encoding=encoding)


def test_bad_rating_names_file_line_and_field(tiny_grouplens):
    _break(tiny_grouplens / "u.data", 7, "196\t242\tthree\t881250949")
    with pytest.raises(BenchError, match=r"u\.data, line 7, field 'rating': expected a number, got 'three'"):
        load_dataset("ml-100k", tiny_grouplens)


def test_wrong_field_count_is_reported(tiny_grouplens):
    _break(tiny_grouplens / "u.data", 3, "196\t242\t3")
    with pytest.raises(BenchError, match=r"u\.data, line 3: too few fields; expected 4 tab-separated fields"):
        load_dataset("ml-100k", tiny_grouplens)


def test_unknown_occupation_is_reported(tiny_grouplens):
    _break(tiny_grouplens / "u.user", 2, "2|53|F|astronaut|94043", encoding="latin-1")
    with pytest.raises(BenchError, match=r"u\.user, field 'occupation': unexpected value 'astronaut'"):
        load_dataset("ml-100k", tiny_grouplens)


def test_missing_file_and_empty_folder(tiny_grouplens, tmp_path):
    (tiny_grouplens / "u.user").unlink()
    with pytest.raises(BenchError, match=r"u\.user: file not found"):
        load_dataset("ml-100k", tiny_grouplens)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BenchError, match="no MovieLens-100K files found"):
        load_dataset("ml-100k", empty)
    with pytest.raises(BenchError, match="not a folder"):
        load_dataset("ml-100k", tmp_path / "nope")


def test_atomic_file_with_a_wrong_column(tmp_path):
    folder = tmp_path / "atomic"
    folder.mkdir()
    (folder / "ml-100k.inter").write_text("user_id:token\titem:token\trating:float\ttimestamp:float\n1\t2\t4\t5\n")
    (folder / "ml-100k.item").write_text("item_id:token\trelease_year:token\tclass:token_seq\n2\t1995\tDrama\n")
    (folder / "ml-100k.user").write_text("user_id:token\tage:token\tgender:token\toccupation:token\n1\t20\tF\tother\n")
    with pytest.raises(BenchError, match=r"ml-100k\.inter: missing column\(s\) item_id; found header "
                                         r"user_id, item, rating, timestamp"):
        load_dataset("ml-100k", folder)


def test_unknown_dataset_is_named():
    with pytest.raises(BenchError,
                       match="unknown dataset 'ml-10x'; known datasets: kuairand-pure, ml-100k, ml-1m, tmall"):
        load_dataset("ml-10x")
