"""Defect types that escape at the paper's k, the k of the sweep that finds them, and why (chapters 5 and 6).

A defect type *escapes* at ``k`` when the image AUROC of the good test images
against that type alone is below :data:`POOR` there (:func:`escapes`). Why
another k finds it is a matter of the noise: at time ``k`` the perturbation's
standard deviation is ``sigma_k`` (:func:`srlib.method.sde.marginal_std`), in
the images' units ([-1, 1], so one grey level of 255 is 2/255). A defect whose
change is smaller than ``sigma_k`` is buried in the noise; one far above it
stands out at any k, and what then decides is how much restoration error the
good images themselves carry, which grows with ``sigma_k**2``.
:func:`masked_contrast` measures a defect's change, :func:`mean_scores` the
good and the defective images' scores at a k, :func:`inside_ratios` how much
higher the anomaly map is inside a defect's mask than around it (about 1: the
restoration error there is the good image's), and :func:`explain` turns those
numbers into a sentence. :func:`against_others` sets the escapes beside
chapter 4's autoencoder and PCA at the same k (chapter 6, which reads both
chapters' outputs, so that chapter 5 need not wait for chapter 4).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srlib.run.sweeps import ALL

POOR = 0.8  # image AUROC of a defect type below which it escapes at a k
GREY = 127.5  # grey levels (of 255) per unit of the images' [-1, 1] range
RING = 4  # px: the surround a region is compared with when the defect-free image is unknown


def escapes(rows: list[dict], k: float, threshold: float = POOR) -> list[dict]:
    """The defect types of one category's sweep ``rows`` whose image AUROC at ``k`` is below ``threshold``.

    ``rows`` are :func:`srlib.run.sweeps.sweep_rows` of one category; ``k`` a
    k of their grid. Each escape is ``{"defect", "at_k", "best_k", "best",
    "found"}``: the AUROC at ``k``, the grid's first maximum (smallest k on a
    tie) and its AUROC, and whether that reaches ``threshold``. In the order
    of the defect names.
    """
    out = []
    for defect in sorted({r["subset"] for r in rows} - {ALL}):
        curve = sorted((r for r in rows if r["subset"] == defect), key=lambda r: r["k"])
        values = [r["image_auroc"] for r in curve]
        at_k = next(r["image_auroc"] for r in curve if r["k"] == k)
        if at_k < threshold:
            best = int(np.argmax(values))
            out.append({"defect": defect, "at_k": at_k, "best_k": curve[best]["k"], "best": values[best],
                        "found": values[best] >= threshold})
    return out


def masked_contrast(image: np.ndarray, mask: np.ndarray, clean: np.ndarray | None = None, ring: int = RING) -> float:
    """How much a defect changes the image inside its ``mask``, in the image's units.

    ``image`` (and ``clean``) are (H, W) or (H, W, C) arrays, ``mask`` an (H,
    W) boolean array. With the defect-free ``clean`` image: the mean absolute
    difference over the mask's pixels and the channels. Without it: the
    absolute difference between the mean inside the mask and the mean of the
    ``ring`` px around it, averaged over the channels.
    """
    from scipy.ndimage import binary_dilation

    image = np.asarray(image, np.float64).reshape(*mask.shape, -1)
    if clean is not None:
        return float(np.abs(image - np.asarray(clean, np.float64).reshape(image.shape))[mask].mean())
    around = binary_dilation(mask, iterations=ring) & ~mask
    return float(np.abs(image[mask].mean(axis=0) - image[around].mean(axis=0)).mean())


def mean_scores(scores, labels, defects, defect: str) -> tuple[float, float]:
    """The mean anomaly score of the good images and of the images of ``defect`` (one evaluation's ``scores``)."""
    scores, labels, defects = np.asarray(scores, np.float64), np.asarray(labels), np.asarray(defects)
    return float(scores[labels == 0].mean()), float(scores[defects == defect].mean())


def inside_ratios(maps, masks, defects) -> dict[str, float]:
    """Each defect type's median, over its images, of the mean anomaly map inside the mask over the mean outside it.

    ``maps`` and ``masks`` are one evaluation's (N, 1, M, M) maps and masks
    (an :class:`srlib.run.evaluate.EvalResult`'s), ``defects`` the test
    split's defect name of each image; images with an empty mask (the good
    ones) are left out. A ratio near 1 says the map does not single the
    region out: the restoration error there is that of the image around it.
    """
    maps, masks = np.asarray(maps, np.float64), np.asarray(masks) > 0.5
    found: dict[str, list[float]] = {}
    for image, mask, defect in zip(maps.reshape(len(maps), -1), masks.reshape(len(masks), -1), defects):
        if mask.any() and not mask.all():
            found.setdefault(defect, []).append(image[mask].mean() / image[~mask].mean())
    return {defect: float(np.median(values)) for defect, values in sorted(found.items())}


def _levels(value: float) -> str:
    return f"{value * GREY:.1f}"


def _times(value: float) -> str:
    """A factor: whole above 10, one decimal below."""
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"


def explain(category: str, escape: dict, contrast: float, k: float, sigma_at: float, sigma_best: float,
            scores: dict | None = None, inside: dict | None = None) -> str:
    """Why ``escape`` (an item of :func:`escapes`) is poorly found at ``k`` and found, or not, at its best k.

    ``contrast`` is the defect type's mean :func:`masked_contrast` and
    ``sigma_at`` / ``sigma_best`` the noise's ``sigma_k`` at ``k`` and at the
    best k, all in the images' units (the sentence gives them in grey levels).
    ``scores`` ``{k: (good, defect)}`` holds :func:`mean_scores` at both k,
    ``inside`` ``{k: ratio}`` the defect type's :func:`inside_ratios` at both.
    (Whether the other methods miss it too is :func:`against_others`'s.)
    """
    return _because(category, escape, contrast, k, sigma_at, sigma_best, scores) + _inside(inside, k, escape["best_k"])


def _inside(inside: dict | None, k: float, best_k: float) -> str:
    """The sentence on the map inside the mask against around it (nothing without ``inside``)."""
    if not inside:
        return ""
    text = f" Inside its mask the anomaly map is {inside[k]:.2f} times its level around it at k = {k:g}"
    return text + (f" ({inside[best_k]:.2f} times at k = {best_k:g})." if best_k != k else ".")


def _because(category: str, escape: dict, contrast: float, k: float, sigma_at: float, sigma_best: float,
             scores: dict | None) -> str:
    """:func:`explain`'s sentence up to the map inside the mask."""
    defect, best_k, at_k, best = escape["defect"], escape["best_k"], escape["at_k"], escape["best"]
    text = f"{category}, {defect}: image AUROC {at_k:.2f} at k = {k:g}"
    text += (f"; best {best:.2f} at k = {best_k:g}. " if escape["found"]
             else f"; no k of the grid finds it (best {best:.2f}, at k = {best_k:g}). ")
    text += (f"Its change inside the mask, {_levels(contrast)} grey levels, is {contrast / sigma_at:.1f} times the "
             f"noise at k = {k:g} (sigma_k = {_levels(sigma_at)} levels)")
    if best_k == k:
        return text + "."
    text += f" and {contrast / sigma_best:.1f} times the noise at k = {best_k:g} ({_levels(sigma_best)} levels): "
    below_at, below_best = contrast < sigma_at, contrast < sigma_best
    ratio = ""
    if scores:
        (good_at, bad_at), (good_best, bad_best) = scores[k], scores[best_k]
        ratio = (f" (its images score {bad_best / good_best:.2f} times the good images' mean at k = {best_k:g}, "
                 f"{bad_at / good_at:.2f} times at k = {k:g})")
    if not escape["found"]:
        if below_best:
            return text + "the noise buries it at every k up to its best, so no k separates it" + ratio + "."
        return (text + "the noise does not hide it, yet at no k does the restoration error single it out"
                + ratio + ".")
    if best_k < k:
        if below_at and not below_best:
            return (text + f"at k = {k:g} the noise is larger than the change, so the perturbation buries it and the "
                    f"restoration undoes both alike; at k = {best_k:g} the change stands above the noise" + ratio + ".")
        growth = (sigma_at / sigma_best) ** 2
        rise = ""
        if scores:
            rise = (f": the good images' mean score rises {_times(good_at / good_best)} times, the defect images' "
                    f"{_times(bad_at / bad_best)} times")
        return (text + "the noise hides it at neither k. What changes is the good images' restoration error, which "
                f"grows with sigma_k squared ({_times(growth)} times from k = {best_k:g} to {k:g}){rise}; with less "
                "noise the good images are restored more closely and the defect stands out" + ratio + ".")
    if below_best and not below_at:
        return (text + f"at k = {k:g} the network sees a clean change, larger than the noise, which it keeps as part "
                f"of the image; at k = {best_k:g} the noise reaches the change and the restoration replaces it with "
                "what the good images look like" + ratio + ".")
    if below_at:
        return (text + f"the noise buries it at k = {k:g} already; at k = {best_k:g} the restoration redraws the "
                "region as a whole from what it learnt of the good images" + ratio + ".")
    return (text + f"it stands above the noise at both k; at k = {best_k:g} the noise wipes out structure finer than "
            f"{_levels(sigma_best)} levels, which the restoration redraws from what it learnt of the good images, so "
            f"a change the network kept at k = {k:g} is undone" + ratio + ".")


def _bundled_pair(path: str, category: str, defect: str, seed: int):
    """The defect-free crop and the image of a bundled test file, or None if ``path`` is not that sample."""
    from pathlib import Path

    from PIL import Image

    from srlib.data.textures import TEXTURE_CATEGORIES, texture_sample

    if category not in TEXTURE_CATEGORIES or not Path(path).stem.isdigit():
        return None
    clean, image, mask = texture_sample(category, "test", defect, int(Path(path).stem), seed)
    with Image.open(path) as written:
        if not np.array_equal(np.asarray(written), image):
            return None
    return clean, image, mask


def defect_contrasts(test, category: str = "", seed: int = 0) -> dict[str, float]:
    """The mean :func:`masked_contrast` of each defect type of a test split, in the images' units.

    ``test`` is a :func:`srlib.data.folder_dataset`. A file that is the
    bundled ``category``'s sample (``srlib data textures`` with ``seed``) is
    compared with its defect-free crop; any other with the surround of its
    mask, at the split's image size.
    """
    import torch.nn.functional as F

    found = {}
    for i, (label, defect) in enumerate(zip(test.labels, test.defects)):
        if not label:
            continue
        pair = _bundled_pair(test.paths[i], category, defect, seed) if category else None
        if pair is not None:
            clean, image, mask = pair
            value = masked_contrast(image / GREY - 1, mask, clean / GREY - 1)
        else:
            item = test[i]
            image = item["image"].permute(1, 2, 0).numpy()
            mask = F.interpolate(item["mask"][None].float(), size=image.shape[:2], mode="nearest")[0, 0].numpy() > 0.5
            value = masked_contrast(image, mask)
        found.setdefault(defect, []).append(value)
    return {defect: float(np.mean(values)) for defect, values in sorted(found.items())}


def category_escapes(category: str, rows: list[dict], scores: dict, test, k: float, sde, bundled: bool = False,
                     threshold: float = POOR, inside: dict | None = None) -> list[dict]:
    """:func:`escapes` of one category, each with its numbers and :func:`explain`'s sentence.

    ``scores`` is the category's ``{k: image scores}`` (of its sweep's
    evaluations, in the order of ``test``, its test split),
    ``sde`` the model's schedule (``model.sde``); ``bundled``: the test split
    is the bundled data (its defect-free crops are known); ``inside`` its
    ``{k: inside_ratios(...)}`` (optional). Each item adds ``contrast``,
    ``sigma_at``, ``sigma_best``, ``scores``, ``inside``, ``k`` and ``sentence``.
    """
    found = escapes(rows, k, threshold)
    contrasts = defect_contrasts(test, category if bundled else "") if found else {}
    for escape in found:
        defect, best_k = escape["defect"], escape["best_k"]
        means = {at: mean_scores(scores[at], test.labels, test.defects, defect) for at in {k, best_k}}
        ratios = {at: inside[at][defect] for at in {k, best_k}} if inside else {}
        escape.update(contrast=contrasts[defect], sigma_at=float(sde.marginal_std(float(k))),
                      sigma_best=float(sde.marginal_std(float(best_k))), scores=means, inside=ratios, k=k)
        escape["sentence"] = explain(category, escape, escape["contrast"], k, escape["sigma_at"],
                                     escape["sigma_best"], means, inside=ratios)
    return found


def escape_table(found: dict[str, list[dict]]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of chapter 5's table: ``found`` is ``{category: category_escapes(...)}``.

    The last column is :func:`inside_ratios` at k (a dash where it was not measured).
    """
    header = ["category", "defect", "AUROC at k", "best k", "AUROC there", "change (grey levels)",
              "sigma_k at k (levels)", "sigma_k at best k", "map inside / around at k"]
    rows = [[category, e["defect"], f"{e['at_k']:.3f}", f"{e['best_k']:g}", f"{e['best']:.3f}",
             _levels(e["contrast"]), _levels(e["sigma_at"]), _levels(e["sigma_best"]),
             f"{e['inside'][e['k']]:.2f}" if e.get("inside") else "–"]
            for category, items in found.items() for e in items]
    return header, rows


def against_others(sweep_rows: list[dict], ks: dict[str, float], others: dict,
                   threshold: float = POOR) -> list[dict]:
    """Each escape of each swept category beside chapter 4's other methods at the same k.

    ``sweep_rows`` are :func:`srlib.run.sweeps.read_k_sweeps` rows (several
    categories), ``ks`` ``{category: the k it was evaluated at}``, ``others``
    :func:`others_at`'s ``{category: {method: {defect: image AUROC}}}``.
    Each item is an :func:`escapes` item with ``category``, ``others``
    ``{method: AUROC}`` (empty when chapter 4 did not run the category at that
    k) and ``every``: no method reaches ``threshold``.
    """
    out = []
    for category, k in ks.items():
        mine = [r for r in sweep_rows if r["category"] == category]
        for escape in escapes(mine, k, threshold):
            theirs = {m: v[escape["defect"]] for m, v in others.get(category, {}).items() if escape["defect"] in v}
            out.append(dict(escape, category=category, others=theirs,
                            every=bool(theirs) and all(v < threshold for v in theirs.values())))
    return out


def against_table(found: list[dict], methods=("AE", "PCA")) -> tuple[list[str], list[list[str]]]:
    """Header and rows of chapter 6's table of :func:`against_others` (a dash where a method was not run)."""
    header = ["category", "defect", "SPR at k", "SPR at its best k", *(f"{m} at k" for m in methods),
              "escapes every method"]
    rows = [[e["category"], e["defect"], f"{e['at_k']:.3f}", f"{e['best']:.3f} (k = {e['best_k']:g})",
             *(f"{e['others'][m]:.3f}" if m in e["others"] else "–" for m in methods), "yes" if e["every"] else "no"]
            for e in found]
    return header, rows


def describe_against_others(found: list[dict], threshold: float = POOR) -> str:
    """Chapter 6's sentence on :func:`against_others`: how many escapes every method, and which another finds."""
    compared = [e for e in found if e["others"]]
    if not found:
        return "No defect type escapes SPR at the evaluation's k, so there is nothing to set beside chapter 4."
    if not compared:
        return "Chapter 4 did not run these categories at the same k: the escapes are not compared with other methods."
    every = [f"{e['category']} {e['defect']}" for e in compared if e["every"]]
    found_by = [f"{e['category']} {e['defect']} ({', '.join(m for m, v in e['others'].items() if v >= threshold)})"
                for e in compared if not e["every"]]
    text = (f"Of the {len(compared)} defect types SPR misses at the evaluation's k (image AUROC below {threshold:g}), "
            f"{len(every)} escape{'s' if len(every) == 1 else ''} every method there")
    text += f": {', '.join(every)}." if every else "."
    if found_by:
        text += f" Another method finds {len(found_by)}: {', '.join(found_by)}."
    return text


def describe_escapes(found: dict[str, list[dict]], ks: dict[str, float], threshold: float = POOR,
                     inside: dict | None = None) -> list[str]:
    """Chapter 5's lines: each escape's sentence, or that a category (or every category) has none at its k.

    With ``inside`` (``{category: {k: inside_ratios(...)}}``), a last line
    gives the range of the same ratio over the defect types that do not escape.
    """
    if not any(found.values()):
        return [f"No defect type of any category has an image AUROC below {threshold:g} at "
                + ", ".join(sorted({f"k = {k:g}" for k in ks.values()})) + ": none escapes."]
    lines = [e["sentence"] for items in found.values() for e in items] + [
        f"{category}: every defect type has an image AUROC of at least {threshold:g} at k = {ks[category]:g}."
        for category, items in found.items() if not items]
    kept = [ratio for category, items in found.items() if inside and category in inside
            for defect, ratio in inside[category][ks[category]].items() if defect not in {e["defect"] for e in items}]
    if kept:
        lines.append(f"For comparison, inside the masks of the {len(kept)} defect types that do not escape, the "
                     f"anomaly map is {min(kept):.2f} to {max(kept):.2f} times its level around them (median "
                     f"{float(np.median(kept)):.2f}) at the same k.")
    return lines


def others_at(notebook: str | Path, k: float, own: str = "SPR") -> dict:
    """Chapter 4's ``per_defect`` ``{category: {method: {defect: image AUROC}}}``, without SPR, if it ran at ``k``.

    ``notebook`` is chapter 4's executed copy. Its ``k`` is the parameters
    cell's value, or the one papermill injected; a missing file, or another
    ``k``, gives ``{}`` (nothing to compare with).
    """
    import ast
    import json

    from srlib.notebook.records import read_records

    path = Path(notebook)
    if not str(notebook) or not path.is_file():
        return {}
    executed = json.loads(path.read_text())
    given = {}
    for cell in executed["cells"]:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            for statement in ast.parse("".join(cell["source"])).body:
                if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
                    given[getattr(statement.targets[0], "id", "")] = ast.literal_eval(statement.value)
    given.update(executed.get("metadata", {}).get("papermill", {}).get("parameters", {}))
    if given.get("k") != k:
        return {}
    return {category: {m: v for m, v in methods.items() if m != own}
            for category, methods in read_records(executed).get("per_defect", {}).items()}
