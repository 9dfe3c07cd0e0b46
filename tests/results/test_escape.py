"""Defect types that escape at k, the k that finds them and why (srlib.results.escape), on hand-worked numbers."""

import json

import numpy as np
import pytest

from srlib.method.sde import marginal_std
from srlib.results.escape import (GREY, POOR, against_others, against_table, describe_against_others,
                                  describe_escapes, escape_table, escapes, explain, inside_ratios, masked_contrast,
                                  mean_scores, others_at)
from srlib.run.sweeps import ALL

GRID = (1e-5, 1e-4, 1e-3, 1e-2)


def rows(subset, values):
    return [{"subset": subset, "k": k, "image_auroc": v} for k, v in zip(GRID, values)]


def test_escapes_are_the_defect_types_below_the_threshold_at_k():
    sweep = rows(ALL, (0.5, 0.5, 0.5, 0.5)) + rows("scratch", (0.99, 0.9, 0.7, 0.6))[::-1] \
        + rows("hole", (1.0, 1.0, 1.0, 1.0)) + rows("stain", (0.6, 0.65, 0.65, 0.5))
    assert POOR == 0.8
    assert escapes(sweep, 1e-3) == [
        {"defect": "scratch", "at_k": 0.7, "best_k": 1e-5, "best": 0.99, "found": True},
        {"defect": "stain", "at_k": 0.65, "best_k": 1e-4, "best": 0.65, "found": False}]  # a tie: the smaller k
    assert escapes(rows("hole", (1.0,) * 4), 1e-3) == []


def test_contrast_against_the_clean_image_or_the_surround():
    clean = np.zeros((10, 10))
    image = clean.copy()
    mask = np.zeros((10, 10), bool)
    mask[4:6, 4:6] = True
    image[4:6, 4:6] = [[0.2, 0.4], [0.2, 0.4]]  # mean |change| 0.3
    assert masked_contrast(image, mask, clean) == pytest.approx(0.3)
    # Without the clean image: |mean inside (0.3) - mean of the ring around (0)|, channels averaged.
    assert masked_contrast(image, mask, ring=2) == pytest.approx(0.3)
    both = np.stack([image, image + 1.0], axis=-1)  # a second channel, brighter everywhere: same difference
    assert masked_contrast(both, mask) == pytest.approx(0.3)


def test_mean_scores_of_the_good_and_of_one_defect():
    assert mean_scores([1, 3, 10, 20, 7], [0, 0, 1, 1, 1], ["good", "good", "a", "a", "b"], "a") == (2.0, 15.0)


def test_a_defect_found_with_less_noise_is_explained_by_the_good_images_error():
    # sigma_k at 1e-3 and 1e-5 for the paper's base 25: 0.0317 and 0.00317 (4.0 and 0.4 grey levels).
    at, best = marginal_std(1e-3, 25.0), marginal_std(1e-5, 25.0)
    assert (at * GREY, best * GREY) == (pytest.approx(4.04, abs=0.01), pytest.approx(0.404, abs=0.001))
    escape = {"defect": "scratch", "at_k": 0.7, "best_k": 1e-5, "best": 0.99, "found": True}
    # 40 grey levels: 9.9 times the noise at 1e-3, 99.2 at 1e-5 (sigma_k^2: 0.006458 / 0.0000644 = 100.3 times).
    contrast = 40 / GREY
    scores = {1e-3: (100.0, 110.0), 1e-5: (1.0, 2.0)}
    text = explain("cup", escape, contrast, 1e-3, at, best, scores)
    assert text.startswith("cup, scratch: image AUROC 0.70 at k = 0.001; "
                           "best 0.99 at k = 1e-05. Its change inside the mask, 40.0 grey levels, is 9.9 times the "
                           "noise at k = 0.001 (sigma_k = 4.0 levels) and 99.2 times the noise at k = 1e-05 (0.4 "
                           "levels): the noise hides it at neither k.")
    # sigma_k squared grows 100 times; the scores 100 and 55 times; ratios 2.00 and 1.10.
    assert ("(100 times from k = 1e-05 to 0.001): the good images' mean score rises 100 times, the defect images' "
            "55 times;") in text
    assert "score 2.00 times the good images' mean at k = 1e-05, 1.10 times at k = 0.001" in text


@pytest.mark.parametrize("contrast, best_k, found, says", [
    (3.0, 1e-5, True, "at k = 0.001 the noise is larger than the change"),  # 3 levels: under 4.0, over 0.4
    (10.0, 1e-2, True, "at k = 0.01 the noise reaches the change"),  # 10 levels: over 4.0, under 13.0
    (20.0, 1e-2, True, "it stands above the noise at both k"),
    (2.0, 1e-2, True, "the noise buries it at k = 0.001 already"),
    (20.0, 1e-4, False, "no k of the grid finds it"),
    (20.0, 1e-4, False, "the noise does not hide it, yet at no k does the restoration error single it out"),
    (10.0, 1e-2, False, "the noise buries it at every k up to its best"),
])
def test_each_case_follows_from_the_numbers(contrast, best_k, found, says):
    escape = {"defect": "stain", "at_k": 0.6, "best_k": best_k, "best": 0.9 if found else 0.7, "found": found}
    text = explain("coin", escape, contrast / GREY, 1e-3, marginal_std(1e-3, 25.0), marginal_std(best_k, 25.0))
    assert says in text
    assert "escapes every method" not in text and "chapter" not in text


def test_the_table_lists_each_escape_with_its_numbers_in_grey_levels():
    escape = {"defect": "stain", "at_k": 0.6, "best_k": 1e-3, "best": 0.6, "found": False}
    text = explain("coin", escape, 0.1, 1e-3, 0.03, 0.03)
    assert text.startswith("coin, stain: image AUROC 0.60 at k = 0.001; no k of the grid finds it") \
        and text.endswith("levels).")
    escape.update(contrast=0.1, sigma_at=0.03, sigma_best=0.03)
    escape["sentence"] = text
    header, table = escape_table({"coin": [escape], "brick": []})
    assert len(header) == len(table[0]) == 9
    assert table == [["coin", "stain", "0.600", "0.001", "0.600", "12.8", "3.8", "3.8", "–"]]  # 0.1 * 127.5, 0.03 * 127.5
    measured = dict(escape, k=1e-3, inside={1e-3: 1.044, 1e-2: 3.0})
    assert escape_table({"coin": [measured]})[1][0][-1] == "1.04"
    assert describe_escapes({"coin": [escape], "brick": []}, {"coin": 1e-3, "brick": 1e-3}) == [
        text, "brick: every defect type has an image AUROC of at least 0.8 at k = 0.001."]


def test_inside_ratios_are_the_median_over_each_defects_images():
    maps, masks = np.ones((4, 1, 4, 4)), np.zeros((4, 1, 4, 4))
    masks[1, 0, :2, :2] = masks[2, 0, 0, 0] = masks[3, 0, 3, 3] = 1
    maps[1, 0, :2, :2] = 3.0  # 3 inside, 1 outside: 3
    maps[2, 0, 0, 0] = 5.0  # 5
    maps[3, 0] = 2.0  # inside and outside alike: 1
    assert inside_ratios(maps, masks, ["good", "hole", "hole", "stain"]) == {"hole": 4.0, "stain": 1.0}


def test_the_map_inside_the_mask_is_said_at_both_k_and_against_the_defects_found():
    escape = {"defect": "hole", "at_k": 0.4, "best_k": 1e-5, "best": 0.6, "found": False}
    text = explain("grass", escape, 0.5, 1e-3, 0.03, 0.003, inside={1e-3: 1.04, 1e-5: 1.1})
    assert text.endswith("at no k does the restoration error single it out. Inside its mask the anomaly map is "
                         "1.04 times its level around it at k = 0.001 (1.10 times at k = 1e-05).")
    assert explain("grass", dict(escape, best_k=1e-3), 0.5, 1e-3, 0.03, 0.03, inside={1e-3: 0.98}).endswith(
        "levels). Inside its mask the anomaly map is 0.98 times its level around it at k = 0.001.")
    escape["sentence"] = text
    inside = {"grass": {1e-3: {"hole": 1.04, "stain": 2.0}}, "brick": {1e-3: {"hole": 27.5, "stain": 5.0}}}
    lines = describe_escapes({"grass": [escape], "brick": []}, {"grass": 1e-3, "brick": 1e-3}, inside=inside)
    assert lines[0] == text and lines[-1] == ("For comparison, inside the masks of the 3 defect types that do not "
                                              "escape, the anomaly map is 2.00 to 27.50 times its level around them "
                                              "(median 5.00) at the same k.")


def test_no_escape_is_said():
    assert describe_escapes({"coin": [], "brick": []}, {"coin": 1e-3, "brick": 1e-3}) == [
        "No defect type of any category has an image AUROC below 0.8 at k = 0.001: none escapes."]


def chapter4(tmp_path, k_cell, injected=None):
    """A made-up executed chapter 4: its parameters cell, papermill's injected values and its per_defect record."""
    from srlib.notebook.records import PREFIX

    per_defect = {"coin": {"SPR": {"stain": 0.6}, "AE": {"stain": 0.4}, "PCA": {"stain": 0.5}}}
    record = {"output_type": "display_data", "metadata": {"scrapbook": {"name": "per_defect", "mime_prefix": PREFIX}},
              "data": {PREFIX + "text/plain": repr(per_defect)}}
    cells = [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": [f"k = {k_cell}\n", "seed = 0"],
              "outputs": []},
             {"cell_type": "code", "metadata": {}, "source": ["record(...)"], "outputs": [record]}]
    path = tmp_path / "04.ipynb"
    path.write_text(json.dumps({"cells": cells, "metadata": {"papermill": {"parameters": injected or {}}}}))
    return path


def test_chapter_4s_other_methods_are_read_only_at_the_same_k(tmp_path):
    assert others_at(chapter4(tmp_path, 0.001), 1e-3) == {"coin": {"AE": {"stain": 0.4}, "PCA": {"stain": 0.5}}}
    assert others_at(chapter4(tmp_path, 0.001), 1e-2) == {}
    assert others_at(chapter4(tmp_path, 0.001, {"k": 0.01}), 1e-2)["coin"]["AE"] == {"stain": 0.4}  # injected
    assert others_at(tmp_path / "missing.ipynb", 1e-3) == {} and others_at("", 1e-3) == {}


def test_a_small_factor_keeps_a_decimal():
    escape = {"defect": "stain", "at_k": 0.74, "best_k": 3e-4, "best": 0.82, "found": True}
    at, best = marginal_std(1e-3, 25.0), marginal_std(3e-4, 25.0)  # sigma_k^2: 0.006458 / 0.001933 = 3.3 times
    text = explain("coin", escape, 20 / GREY, 1e-3, at, best, {1e-3: (2.1, 2.2), 3e-4: (1.0, 1.1)})
    assert "(3.3 times from k = 0.0003 to 0.001): the good images' mean score rises 2.1 times, the defect images' 2.0" in text


def test_escapes_beside_the_other_methods_of_chapter_4():
    # Two categories: "a" misses scratch (0.7) and stain (0.65) at 1e-3; "b" misses nothing; "c" was not in chapter 4.
    sweep = [dict(r, category="a") for r in rows(ALL, (0.5,) * 4) + rows("scratch", (0.99, 0.9, 0.7, 0.6))
             + rows("stain", (0.6, 0.65, 0.65, 0.5))] + [dict(r, category="b") for r in rows("hole", (1.0,) * 4)] \
        + [dict(r, category="c") for r in rows("hole", (0.5,) * 4)]
    others = {"a": {"AE": {"scratch": 0.9, "stain": 0.6}, "PCA": {"scratch": 0.5, "stain": 0.79}}, "b": {}}
    found = against_others(sweep, {"a": 1e-3, "b": 1e-3, "c": 1e-3}, others)
    assert [(e["category"], e["defect"], e["others"], e["every"]) for e in found] == [
        ("a", "scratch", {"AE": 0.9, "PCA": 0.5}, False),  # the AE finds it
        ("a", "stain", {"AE": 0.6, "PCA": 0.79}, True),  # 0.79 < 0.8: no method does
        ("c", "hole", {}, False)]  # not compared
    assert found[0]["best_k"] == 1e-5 and found[0]["at_k"] == 0.7
    assert describe_against_others(found) == (
        "Of the 2 defect types SPR misses at the evaluation's k (image AUROC below 0.8), 1 escapes every method "
        "there: a stain. Another method finds 1: a scratch (AE).")
    header, table = against_table(found)
    assert header[-3:] == ["AE at k", "PCA at k", "escapes every method"]
    assert table[1] == ["a", "stain", "0.650", "0.650 (k = 0.0001)", "0.600", "0.790", "yes"]
    assert table[2][-3:] == ["–", "–", "no"]
    assert describe_against_others([]).startswith("No defect type escapes SPR")
    assert describe_against_others(found[2:]).startswith("Chapter 4 did not run these categories at the same k")
