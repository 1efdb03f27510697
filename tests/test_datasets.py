"""ML-1M, KuaiRand-Pure and TMall readers: official formats (fixtures under tests/fixtures/, and ../shared's real
files where present), their label rules, their awkward cases, and errors that name file, line and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmark.data.loader import load_dataset
from benchmark.errors import BenchError
from tests.conftest import SHARED

FIXTURES = Path(__file__).resolve().parent / "fixtures"
ML1M_SHARED = SHARED / "ml-1m"
KUAIRAND_SHARED = SHARED / "kuairand-pure"


def _names(inter, kind: str, row: int) -> list[str]:
    x, names = ((inter.item_features, inter.item_feature_names) if kind == "item"
                else (inter.user_features, inter.user_feature_names))
    return [n for n, v in zip(names, x[row]) if v]


# ---------------------------------------------------------------- MovieLens-1M

def test_ml1m_reader_reads_the_official_format():
    inter = load_dataset("ml-1m", FIXTURES / "ml-1m")
    assert len(inter) == 20 and inter.n_users == 4 and inter.n_items == 5  # movie 6 and user 5 never rated
    np.testing.assert_array_equal(inter.label, (inter.value >= 4).astype(np.int8))
    items = list(inter.item_ids)
    assert _names(inter, "item", items.index("3")) == ["genre=Drama", "genre=Musical", "year>=1990"]  # latin-1
    assert _names(inter, "item", items.index("2")) == ["genre=Action", "genre=Adventure", "genre=Fantasy",
                                                       "genre=Sci-Fi", "year1970-1979"]  # ':' inside a title
    assert _names(inter, "item", items.index("4"))[-1] == "year<1930"
    users = list(inter.user_ids)
    assert _names(inter, "user", users.index("2")) == ["age>=56", "gender=M", "occupation=self-employed"]
    assert _names(inter, "user", users.index("1")) == ["age<18", "gender=F", "occupation=K-12 student"]
    assert inter.provenance["verification"]["status"] == "unverified"  # fixture files are not the official ones


@pytest.mark.parametrize("name, content, message", [
    ("ratings.dat", "1::1::5::978300000\n2::3::4\n", "ratings.dat, line 2: too few fields"),
    ("ratings.dat", "1::1::five::978300000\n", "ratings.dat, line 1, field 'rating': expected a number"),
    ("users.dat", "1::F::1::21::48067\n", "users.dat, line 1, field 'occupation': expected a code 0..20"),
    ("ratings.dat", "1::99::5::978300000\n", "item id '99' is not in"),
])
def test_ml1m_bad_input_names_file_line_and_field(tmp_path, name, content, message):
    folder = tmp_path / "ml-1m"
    shutil.copytree(FIXTURES / "ml-1m" / "ml-1m", folder)
    (folder / name).write_text(content)
    with pytest.raises(BenchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_dataset("ml-1m", folder)


def test_ml1m_real_prefix_reads_and_is_reported_unverified():
    if not (ML1M_SHARED / "ml-1m" / "movies.dat").is_file():
        pytest.skip(f"real ML-1M files not found at {ML1M_SHARED} (../shared is absent)")
    inter = load_dataset("ml-1m", ML1M_SHARED)
    assert (len(inter), inter.n_users, inter.n_items) == (487_650, 2_999, 3_615)  # PROVENANCE.md's counts
    assert int(inter.label.sum()) == 170_579 + 108_545  # ratings 4 and 5
    ver = inter.provenance["verification"]
    assert ver["files"]["ml-1m/movies.dat"] == "sha256 ok" and ver["files"]["ml-1m/users.dat"] == "sha256 ok"
    assert ver["status"] == "unverified" and ver["files"]["ml-1m/ratings.dat"] == "missing"
    assert any("ratings_prefix_users1-2999.dat" in n for n in inter.provenance["notes"])


# ---------------------------------------------------------------- KuaiRand-Pure

def test_kuairand_reader_labels_ties_and_missing_features():
    inter = load_dataset("kuairand-pure", FIXTURES / "kuairand-pure")
    assert len(inter) == 40 and inter.n_users == 4 and inter.n_items == 6
    clicks = np.array([int(c) for c in "1101101110110101110111011010111011101101"], dtype=np.int8)
    np.testing.assert_array_equal(inter.label, clicks)  # is_click, rows in file order
    assert np.all(inter.time[0::2] == inter.time[1::2])  # tied pairs keep their file order
    video5 = list(inter.item_ids).index("5")  # in the log, not in video_features_basic_pure.csv
    assert not inter.item_features[video5].any()
    assert any("no row in video_features_basic_pure.csv" in n for n in inter.provenance["notes"])
    items = list(inter.item_ids)
    assert {"tag=20", "tag=43", "video_type=NORMAL", "upload_type=Kmovie"} <= set(_names(inter, "item", items.index("1")))
    assert "video_durationmissing" in _names(inter, "item", items.index("2"))  # empty duration, no music type
    assert not any(n.startswith("music_type") for n in _names(inter, "item", items.index("2")))
    assert [n for n in inter.user_feature_names if n.startswith("onehot_feat4=")] == ["onehot_feat4=0", "onehot_feat4=1"]
    assert not any(n.startswith("stat_") for n in inter.item_feature_names)


def test_kuairand_statistics_are_a_separate_variant_and_logs_are_a_card_option(monkeypatch):
    plain = load_dataset("kuairand-pure", FIXTURES / "kuairand-pure")
    stats = load_dataset("kuairand-pure", FIXTURES / "kuairand-pure", {"with_statistics": True})
    assert stats.label_name == "kuairand-pure+statistics" and plain.label_name == "kuairand-pure"
    assert stats.canonical_hash() != plain.canonical_hash()  # never shares a split, model or trial id
    assert stats.item_feature_names[-4:] == ("stat_counts", "stat_show_cnt", "stat_play_cnt", "stat_like_cnt")
    video4 = list(stats.item_ids).index("4")
    assert stats.item_features[video4, -3] == 1.0  # play_cnt 200 / column max 200
    both = load_dataset("kuairand-pure", FIXTURES / "kuairand-pure", None)
    assert len(both) == 40
    with pytest.raises(BenchError, match="has no option 'nope'"):
        load_dataset("kuairand-pure", FIXTURES / "kuairand-pure", {"nope": 1})


def test_kuairand_two_logs_are_read_in_order(tmp_path, monkeypatch):
    cards = tmp_path / "cards"
    shutil.copytree(Path(__file__).resolve().parents[1] / "datasets", cards)
    card = cards / "kuairand-pure.toml"
    card.write_text(card.read_text().replace('logs = ["log_standard_4_08_to_4_21_pure.csv"]',
                                             'logs = ["log_standard_4_08_to_4_21_pure.csv", '
                                             '"log_standard_4_22_to_5_08_pure.csv"]'))
    monkeypatch.setenv("PROMO_BENCH_CARDS", str(cards))
    inter = load_dataset("kuairand-pure", FIXTURES / "kuairand-pure")
    assert len(inter) == 41 and inter.time[-1] == inter.time[0]


def test_kuairand_real_feature_files_give_info_without_logs():
    if not (KUAIRAND_SHARED / "KuaiRand-Pure" / "data" / "user_features_pure.csv").is_file():
        pytest.skip(f"real KuaiRand-Pure feature files not found at {KUAIRAND_SHARED} (../shared is absent)")
    from benchmark.data.manage import info

    lines = info("kuairand-pure", KUAIRAND_SHARED)
    text = "\n".join(lines)
    assert "users in the feature table: 27,285" in text and "items in the feature table: 7,583" in text
    assert "interactions: not available" in text and "log_standard_4_08_to_4_21_pure.csv is missing" in text
    assert "user_active_degree (9)" in text and "video_type (3)" in text


def test_kuairand_bad_click_value_names_the_line(tmp_path):
    shutil.copytree(FIXTURES / "kuairand-pure", tmp_path / "k")
    log = tmp_path / "k" / "KuaiRand-Pure" / "data" / "log_standard_4_08_to_4_21_pure.csv"
    lines = log.read_text().splitlines()
    fields = lines[3].split(",")
    fields[5] = "2"  # is_click
    lines[3] = ",".join(fields)
    log.write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchError, match=r"line 4, field 'is_click': expected 0 or 1, got 2"):
        load_dataset("kuairand-pure", tmp_path / "k")


# ---------------------------------------------------------------- TMall

def _rows(inter):
    return [(inter.user_ids[u], inter.item_ids[i], int(t), int(y))
            for u, i, t, y in zip(inter.user, inter.item, inter.time, inter.label)]


def test_tmall_labels_purchases_and_causal_click_negatives():
    inter = load_dataset("tmall", FIXTURES / "tmall", {"core": 0})
    rows = _rows(inter)
    day = 86400
    may11 = 1431302400  # 2015-05-11 00:00 UTC
    assert rows[0] == ("1", "10", may11, 0) and rows[1] == ("1", "10", may11, 1)  # same-day click, then purchase
    assert ("1", "10", may11 + day, 0) not in rows  # a click after the purchase is dropped
    assert not any(r[1] == "11" for r in rows)  # add-to-cart and favourite rows are dropped
    assert ("2", "12", rows[6][2], 0) == rows[6] and rows[7][1:] == ("12", rows[6][2], 1)  # tie keeps file order
    assert ("2", "14", rows[9][2], 0) == rows[9]  # clicked, never bought
    assert len(rows) == 16 and sum(r[3] for r in rows) == 12
    user4 = list(inter.user_ids).index("4")
    assert not inter.user_features[user4].any()  # no row in user_info_format1.csv
    item12 = list(inter.item_ids).index("12")
    assert not any(n.startswith("brand_id") for n in _names(inter, "item", item12))  # empty brand_id


def test_tmall_click_labels_never_look_at_later_rows(tmp_path):
    """Leak check: cutting the log after any row leaves the labels of the rows before the cut unchanged."""
    full = _rows(load_dataset("tmall", FIXTURES / "tmall", {"core": 0}))
    source = (FIXTURES / "tmall" / "data_format1" / "user_log_format1.csv").read_text().splitlines()
    for cut in range(2, len(source)):
        folder = tmp_path / f"cut{cut}"
        shutil.copytree(FIXTURES / "tmall", folder)
        (folder / "data_format1" / "user_log_format1.csv").write_text("\n".join(source[:cut + 1]) + "\n")
        part = _rows(load_dataset("tmall", folder, {"core": 0}))
        assert part == full[:len(part)], f"labels changed when the log was cut after line {cut + 1}"


def test_tmall_core_filter_and_bad_date(tmp_path):
    inter = load_dataset("tmall", FIXTURES / "tmall", {"core": 2, "core_rounds": 15})
    assert "4" not in set(inter.user_ids) and "15" not in set(inter.item_ids)  # one purchase each
    folder = tmp_path / "t"
    shutil.copytree(FIXTURES / "tmall", folder)
    log = folder / "data_format1" / "user_log_format1.csv"
    log.write_text(log.read_text().replace(",1111,2", ",1340,2"))
    with pytest.raises(BenchError, match=r"line 13, field 'time_stamp': expected a 2015 date as mmdd, got 1340"):
        load_dataset("tmall", folder, {"core": 0})


def test_run_on_the_real_ml1m_prefix_needs_allow_unverified(tmp_path, capsys):
    if not (ML1M_SHARED / "ml-1m" / "movies.dat").is_file():
        pytest.skip(f"real ML-1M files not found at {ML1M_SHARED} (../shared is absent)")
    import json

    from benchmark.cli import main

    base = ["run", "--method", "popular", "--dataset", "ml-1m", "--data-dir", str(ML1M_SHARED), "--seeds", "1",
            "--protocol", "loo", "--results", str(tmp_path), "--no-progress"]
    assert main(base) == 2
    assert "ratings.dat is missing" in capsys.readouterr().err
    assert main(base + ["--allow-unverified"]) == 0
    record = json.loads(next(tmp_path.rglob("*.json")).read_text())
    assert record["dataset"]["verification"]["status"] == "unverified"
    assert record["protocol"]["split"]["n_rows"] == 487_650 and record["status"] == "ok"


def test_ml1m_card_figures_on_the_real_prefix():
    """The numbers the ml-1m card's comments quote for its loo and warmup defaults."""
    if not (ML1M_SHARED / "ml-1m" / "movies.dat").is_file():
        pytest.skip(f"real ML-1M files not found at {ML1M_SHARED} (../shared is absent)")
    from benchmark.protocols import get_split

    inter = load_dataset("ml-1m", ML1M_SHARED)
    loo, _ = get_split(inter, "loo")
    assert (loo.meta["n_tail_items"], round(100 * loo.meta["tail_item_share"], 1)) == (2_356, 65.2)
    test = loo.meta["parts"]["test"]
    assert (test["n_cold_targets"], test["n_events"], test["n_events_positive_not_existing"]) == (1_139, 2_969, 30)
    warm, _ = get_split(inter, "warmup")
    assert warm.meta["n_train_rows"] == 324_615
    assert warm.meta["parts"]["valid"]["n_items"] == warm.meta["parts"]["test"]["n_items"] == 487


def test_kuairand_times_outside_the_collection_period_name_file_and_line(tmp_path):
    """The card's [checks] time: a time_ms in seconds (or cut short) reads as 1970 and is refused with its line."""
    folder = tmp_path / "kuairand-pure"
    shutil.copytree(FIXTURES / "kuairand-pure", folder)
    log = next(folder.rglob("log_standard_4_08_to_4_21_pure.csv"))
    lines = log.read_text().splitlines()
    lines[2] = lines[2].replace("1649376000000", "1649376000")
    log.write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchError, match=r"log_standard_4_08_to_4_21_pure.csv, line 3, field 'time_ms'"):
        load_dataset("kuairand-pure", folder)
