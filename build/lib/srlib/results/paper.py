"""The numbers the paper reports: Tables 1-5, the headline results, Fig. 6.

Transcribed once from Shin et al., *Anomaly Detection using Score-based
Perturbation Resilience*, ICCV 2023, exactly as printed (percent, one
decimal). Where the printed numbers disagree with each other the data is left
as printed and the disagreement is listed in :data:`KNOWN_DISCREPANCIES`.

Categories use the dataset folder names (``metal_nut``, ``01``,
``bracket_black``), in the paper's column order; the paper's column headers
(``MN``, ``Product 01``, ``BBK``) are kept in :class:`Dataset.headers`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from srlib.errors import SrlibError
from srlib.method.constants import PAPER_K


@dataclass(frozen=True)
class Dataset:
    """A benchmark: display name, categories (paper column order), headers."""

    name: str
    categories: tuple[str, ...]
    headers: dict[str, str]  # category -> the paper's column header


def _dataset(name: str, columns: list[tuple[str, str]]) -> Dataset:
    return Dataset(name, tuple(c for c, _ in columns), dict(columns))


DATASETS: dict[str, Dataset] = {
    "mvtec": _dataset("MVTec AD", [
        ("carpet", "Carpet"), ("grid", "Grid"), ("leather", "Leather"),
        ("tile", "Tile"), ("wood", "Wood"), ("bottle", "Bottle"),
        ("cable", "Cable"), ("capsule", "Capsule"), ("hazelnut", "HZ"),
        ("metal_nut", "MN"), ("pill", "Pill"), ("screw", "Screw"),
        ("toothbrush", "TB"), ("transistor", "TS"), ("zipper", "Zipper"),
    ]),
    "btad": _dataset("BTAD", [
        ("01", "Product 01"), ("02", "Product 02"), ("03", "Product 03"),
    ]),
    "mpdd": _dataset("MPDD", [
        ("bracket_black", "BBK"), ("bracket_brown", "BBN"),
        ("bracket_white", "BWH"), ("connector", "CN"), ("metal_plate", "MP"),
        ("tubes", "Tubes"),
    ]),
}

METRIC_NAMES = {"image_auroc": "image-level AUROC (%)", "pixel_auroc": "pixel-level AUROC (%)"}


@dataclass(frozen=True)
class Method:
    """One row of a comparison table.

    ``reference`` is the citation number printed beside the name;
    ``reconstruction`` is the paper's asterisk (reconstruction-based method).
    """

    name: str
    reference: int | None
    external_knowledge: bool
    reconstruction: bool
    average: float
    values: dict[str, float]  # category -> percent, paper column order


@dataclass(frozen=True)
class Table:
    """One of the paper's Tables 1-4: a metric on a dataset, one row per method."""

    number: int
    dataset: str
    metric: str
    caption: str
    methods: dict[str, Method] = field(repr=False)  # name -> row, paper row order

    @property
    def categories(self) -> tuple[str, ...]:
        return DATASETS[self.dataset].categories

    @property
    def ours(self) -> Method:
        return self.methods["Ours"]


def _table(number, dataset, metric, caption, rows) -> Table:
    """Build a table from rows written as printed: values in column order."""
    categories = DATASETS[dataset].categories
    methods = {}
    for name, reference, external, recon, average, values in rows:
        assert len(values) == len(categories), (number, name)
        methods[name] = Method(name, reference, external, recon, average,
                               dict(zip(categories, map(float, values))))
    return Table(number, dataset, metric, caption, methods)


# Row layout: (name, reference, external knowledge, reconstruction (*), Average, values...).
# Section headings of the paper: "With external knowledge" rows first.
EXT, NO_EXT, REC, NOT_REC = True, False, True, False

TABLES: dict[int, Table] = {t.number: t for t in [
    _table(1, "mvtec", "pixel_auroc",
           "Anomaly localization, pixel-level AUROC (%), MVTec AD", [
        ("DRÆM", 49, EXT, NOT_REC, 97.3, [95.5, 99.7, 98.6, 99.2, 96.4, 99.1, 94.7, 94.3, 99.7, 99.5, 97.6, 97.6, 98.1, 90.9, 98.8]),
        ("RD", 8, EXT, NOT_REC, 97.8, [98.9, 99.3, 99.4, 95.6, 95.3, 98.7, 97.4, 98.7, 98.9, 97.3, 98.2, 99.6, 99.1, 92.5, 98.2]),
        ("PatchCore", 25, EXT, NOT_REC, 98.1, [99.0, 98.7, 99.3, 95.6, 95.0, 98.6, 98.4, 98.8, 98.7, 98.4, 97.4, 99.4, 98.7, 96.3, 98.8]),
        ("AE(MSE)", 7, NO_EXT, REC, 80.4, [53.9, 96.0, 75.1, 47.6, 63.0, 90.9, 73.2, 78.6, 97.6, 88.0, 88.5, 97.9, 97.1, 90.6, 68.0]),
        ("AE(SSIM)", 7, NO_EXT, REC, 81.8, [54.5, 96.0, 71.0, 49.6, 64.1, 93.3, 79.0, 76.9, 96.6, 88.1, 89.5, 98.3, 97.3, 90.4, 82.8]),
        ("γ-VAE grad.", 7, NO_EXT, REC, 88.8, [72.7, 97.9, 89.7, 58.1, 80.9, 93.1, 88.0, 91.7, 98.8, 91.4, 93.5, 97.2, 98.3, 93.1, 87.1]),
        ("TrustMAE", 37, NO_EXT, REC, 93.9, [97.4, 99.1, 95.1, 97.3, 99.8, 97.0, 85.1, 78.8, 98.5, 76.1, 83.3, 82.4, 96.9, 87.5, 87.5]),
        ("RIAD", 50, NO_EXT, REC, 94.2, [96.3, 98.8, 99.4, 89.1, 85.8, 98.4, 84.2, 92.8, 96.1, 92.5, 95.7, 98.8, 98.9, 87.7, 97.8]),
        ("Patch-SVDD", 48, NO_EXT, NOT_REC, 95.7, [92.6, 96.2, 97.4, 91.4, 90.8, 96.8, 98.1, 95.8, 97.5, 98.0, 95.1, 95.7, 98.1, 97.0, 95.1]),
        ("CutPaste", 17, NO_EXT, NOT_REC, 96.0, [98.3, 97.5, 99.5, 90.5, 95.5, 97.6, 90.0, 97.4, 97.3, 93.1, 95.7, 96.7, 98.1, 93.0, 99.3]),
        ("NSA", 29, NO_EXT, NOT_REC, 96.3, [95.5, 99.2, 99.5, 99.3, 90.7, 98.3, 96.0, 97.6, 97.6, 98.4, 98.5, 96.5, 94.9, 88.0, 94.2]),
        ("Ours", None, NO_EXT, NOT_REC, 97.4, [96.4, 98.9, 99.3, 96.8, 95.4, 95.9, 96.9, 96.6, 98.7, 96.6, 98.2, 99.5, 97.8, 94.7, 98.8]),
    ]),
    _table(2, "btad", "pixel_auroc",
           "Anomaly localization, pixel-level AUROC (%), BTAD", [
        ("FYD", 52, EXT, NOT_REC, 97.0, [96.1, 95.3, 99.7]),
        ("AE(MSE)", 22, NO_EXT, REC, 78.0, [49.0, 92.0, 95.0]),
        ("AE(MSE+SSIM)", 22, NO_EXT, REC, 79.0, [53.0, 96.0, 89.0]),
        ("VT-ADL", 22, NO_EXT, REC, 90.0, [99.0, 94.0, 77.0]),
        ("Patch-SVDD", 48, NO_EXT, NOT_REC, 93.1, [94.9, 92.7, 91.7]),
        ("Ours", None, NO_EXT, NOT_REC, 96.0, [96.7, 96.2, 95.2]),
    ]),
    _table(3, "mpdd", "pixel_auroc",
           "Anomaly localization, pixel-level AUROC (%), MPDD", [
        ("SemiOrthogonal", 16, EXT, NOT_REC, 88.2, [85.3, 89.6, 94.1, 94.6, 85.9, 79.9]),
        ("PatchCore", 25, EXT, NOT_REC, 95.7, [98.4, 91.5, 97.4, 95.0, 96.6, 95.1]),
        ("SPADE", 5, EXT, NOT_REC, 95.9, [94.3, 97.2, 96.8, 98.4, 93.0, 95.9]),
        ("PaDiM", 6, EXT, NOT_REC, 96.7, [94.2, 92.4, 98.1, 97.9, 92.9, 93.9]),
        ("Skip-GANomaly", 2, NO_EXT, REC, 82.2, [89.0, 87.1, 78.8, 80.2, 89.7, 77.3]),
        ("DAGAN", 38, NO_EXT, REC, 83.3, [89.7, 81.5, 70.6, 85.7, 90.0, 82.3]),
        ("Ours", None, NO_EXT, NOT_REC, 96.8, [99.0, 97.7, 86.2, 99.4, 99.0, 99.4]),
    ]),
    _table(4, "mvtec", "image_auroc",
           "Anomaly detection, image-level AUROC (%), MVTec AD", [
        ("Metaformer", 46, EXT, REC, 95.8, [94.0, 85.9, 99.2, 99.0, 99.2, 99.1, 97.1, 87.5, 99.4, 96.2, 90.1, 97.5, 100, 94.4, 98.6]),
        ("DRÆM", 49, EXT, NOT_REC, 98.0, [97.0, 99.9, 100, 99.6, 99.1, 99.2, 91.8, 98.5, 100, 98.7, 98.9, 93.9, 100, 93.1, 100]),
        ("DSR", 51, EXT, NOT_REC, 98.2, [100, 100, 100, 100, 96.3, 100, 93.8, 98.1, 95.6, 98.5, 97.5, 96.2, 99.7, 97.8, 100]),
        ("PatchCore", 25, EXT, NOT_REC, 99.1, [98.7, 98.2, 100, 98.7, 99.2, 100, 99.5, 98.1, 100, 100, 96.6, 98.1, 100, 100, 99.4]),
        ("TrustMAE", 37, NO_EXT, REC, 90.8, [97.4, 99.1, 95.1, 97.3, 99.8, 97.0, 85.1, 78.8, 98.5, 76.1, 83.3, 82.4, 96.9, 87.5, 87.5]),
        ("RIAD", 50, NO_EXT, REC, 91.7, [84.2, 99.6, 100, 98.7, 93, 99.9, 81.9, 88.4, 83.3, 88.5, 83.8, 84.5, 100, 90.9, 98.1]),
        # Printed with reference [25] (PatchCore); Patch-SVDD is [48].
        ("Patch-SVDD", 25, NO_EXT, NOT_REC, 92.1, [92.9, 94.6, 90.9, 97.8, 96.5, 98.6, 90.3, 76.7, 92.0, 94.0, 86.1, 81.3, 100, 91.5, 97.9]),
        ("CutPaste", 17, NO_EXT, NOT_REC, 96.1, [93.9, 100, 100, 94.6, 99.1, 98.2, 81.2, 98.2, 98.3, 99.9, 94.9, 88.7, 99.4, 96.1, 99.9]),
        ("NSA", 29, NO_EXT, NOT_REC, 97.2, [95.6, 99.9, 99.9, 100, 97.5, 97.7, 94.5, 95.2, 94.7, 98.7, 99.2, 90.2, 100, 95.1, 99.8]),
        ("Ours", None, NO_EXT, NOT_REC, 97.7, [91.7, 100, 99.9, 99.8, 96.1, 100, 94.2, 97.2, 98.6, 96.6, 96.1, 98.6, 98.1, 98.7, 99.9]),
    ]),
]}

# The abstract's headline: MVTec AD averages of the proposed method.
HEADLINE = {"image_auroc": 97.7, "pixel_auroc": 97.4}

# Section 5.5: the proposed method's averages on the other benchmarks.
STATED_AVERAGES = {"btad": 96.0, "mpdd": 96.8}

# Table 5: MVTec AD averages of the proposed method with N predictions.
ABLATION_N: dict[int, dict[str, float]] = {
    1: {"image_auroc": 97.5, "pixel_auroc": 97.3},
    3: {"image_auroc": 97.7, "pixel_auroc": 97.4},
    5: {"image_auroc": 97.7, "pixel_auroc": 97.4},
}

# The setting behind every table (Section 5.3): inference k and N draws,
# training epochs, batch size and image size. The width (base channels of the U-Net) is
# not in the text; 64 is the authors' released network.
PAPER_SETTINGS = {"k": PAPER_K, "n_draws": 3, "epochs": 3000, "batch_size": 16, "image_size": 192, "width": 64}


@dataclass(frozen=True)
class KSweep:
    """What the text says about Fig. 6 (image AUROC on MVTec AD against k)."""

    fixed_k: float
    optimal_k_average: float  # image AUROC (%) with the best k per category
    improved_categories: tuple[str, ...]
    per_category: dict[str, float] | None  # None: the paper prints no numbers
    note: str


FIG6 = KSweep(
    fixed_k=PAPER_SETTINGS["k"],
    optimal_k_average=98.9,
    improved_categories=("bottle", "wood", "hazelnut", "metal_nut"),
    per_category=None,
    note=("Fig. 6 is a radar chart without printed values; the text gives only "
          "the average with the best k per category (98.9) and names the "
          "categories that improve. The k grid is 'log-scale' with no values given."),
)

@dataclass(frozen=True)
class Discrepancy:
    """A place where the paper disagrees with itself; the data stays as printed.

    ``kind`` is "average" (the printed Average is not the mean of the printed
    values) or "text" (a label, citation or sentence disagrees with a table).
    """

    table: int
    method: str | None
    kind: str
    detail: str


KNOWN_DISCREPANCIES: tuple[Discrepancy, ...] = (
    Discrepancy(1, "TrustMAE", "average",
                "the 15 category values are identical to Table 4's TrustMAE row "
                "(image-level); their mean is 90.8 (Table 4's average), not the printed 93.9"),
    Discrepancy(2, "AE(MSE)", "average", "printed average 78.0; mean of the printed values 78.7"),
    Discrepancy(2, "AE(MSE+SSIM)", "average",
                "printed average 79.0; mean of the printed values 79.3 (both AE rows "
                "look truncated from whole percents)"),
    Discrepancy(3, "PaDiM", "average", "printed average 96.7; mean of the printed values 94.9"),
    Discrepancy(3, "Skip-GANomaly", "average", "printed average 82.2; mean of the printed values 83.7"),
    Discrepancy(2, "AE(MSE+SSIM)", "text", "Section 5.4 calls this baseline AE(SSIM)"),
    Discrepancy(4, "Metaformer", "text",
                "marked * (reconstruction-based) yet listed under 'With external knowledge'"),
    Discrepancy(4, "Patch-SVDD", "text", "cited as [25] (PatchCore); Patch-SVDD is [48]"),
    Discrepancy(2, None, "text",
                "Section 5.5 says the method is best on product 01, but VT-ADL's 99.0 "
                "exceeds its 96.7"),
    Discrepancy(1, None, "text", "the caption abbreviates Hazelnut as HN; the column header says HZ"),
    Discrepancy(4, None, "text",
                "Fig. 6 names bottle among the categories the best k improves, but "
                "Table 4 already gives 100.0 at k = 0.001"),
)


def paper_table(number: int) -> Table:
    """Table ``number`` (1-4); Table 5 is :data:`ABLATION_N`."""
    try:
        return TABLES[number]
    except KeyError:
        raise SrlibError(f"the paper has no comparison table {number}; choose one of 1, 2, 3, 4") from None


def table_for(dataset: str, metric: str) -> Table:
    """The table that reports ``metric`` on ``dataset`` (e.g. 'mvtec', 'pixel_auroc')."""
    for table in TABLES.values():
        if (table.dataset, table.metric) == (dataset, metric):
            return table
    raise SrlibError(f"the paper reports no {metric} table for dataset {dataset!r}")
