"""Our results beside the paper's: read result files, build the tables, write them.

A result file is the evaluation JSON that ``srlib evaluate`` writes: one
object with at least ``dataset``, ``category``, ``image_auroc`` and
``pixel_auroc`` (fractions in [0, 1], or null when not measured), ``k`` and
``n_draws``; ``aupro``, ``config`` (the training settings: ``preset``,
``epochs``, ``batch_size``, ``image_size``, ``width``, ``checkpoint``...) and
any other keys are optional. Tables show percent, like the paper.

Results on the paper's benchmarks (datasets ``mvtec``, ``btad``, ``mpdd``) go
beside the paper's numbers. Results on anything else (the bundled data) go in
tables of their own, labelled with their dataset and budget, never in a row of
a paper benchmark.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from statistics import mean

from srlib.atomic import write_text
from srlib.errors import SrlibError
from srlib.results.paper import ABLATION_N, DATASETS, METRIC_NAMES, PAPER_SETTINGS, TABLES

COLUMNS = ("category", "paper", "ours", "difference", "note")
NOT_RUN = "not run"
METRICS = ("image_auroc", "pixel_auroc", "aupro")
SETTING_LABELS = {"k": "k", "n_draws": "N", "epochs": "epochs", "batch_size": "batch",
                  "image_size": "image size", "width": "width"}


@dataclass(frozen=True)
class Result:
    """One evaluation: metrics as fractions, the settings that produced them."""

    path: Path
    dataset: str
    category: str
    metrics: dict[str, float | None]
    settings: dict  # PAPER_SETTINGS keys that the file records
    config: dict

    def percent(self, metric: str) -> float | None:
        value = self.metrics.get(metric)
        return None if value is None else 100.0 * value

    def note(self, varied: tuple[str, ...] = ()) -> str:
        """How this run differs from the paper's setting, e.g. 'epochs 5 (paper 3000)'."""
        parts = [f"preset {self.config['preset']}"] if "preset" in self.config else []
        if "checkpoint" in self.config:
            parts.append(f"checkpoint {Path(str(self.config['checkpoint'])).name}")
        elif "epochs" not in self.settings:
            parts.append("training settings not recorded")
        parts += [f"{SETTING_LABELS[key]} {self.settings[key]:g} (paper {paper:g})"
                  for key, paper in PAPER_SETTINGS.items()
                  if key not in varied and key in self.settings and self.settings[key] != paper]
        return "; ".join(parts)


def _number(path, key, value, low, high, optional=False):
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise SrlibError(f"{path}: {key} is {value!r}, expected a number in [{low:g}, {high:g}]"
                         f"{' or null' if optional else ''}")
    return value


def read_result(path: str | Path) -> Result:
    """Read one evaluation JSON; SrlibError naming the file when it is malformed."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise SrlibError(f"{path}: not a readable JSON file ({err}); delete it or re-run its evaluation") from None
    if not isinstance(record, dict):
        raise SrlibError(f"{path}: expected a JSON object (an srlib evaluation result), found {type(record).__name__}")
    missing = [k for k in ("dataset", "category", "image_auroc", "pixel_auroc", "k", "n_draws") if k not in record]
    if missing:
        raise SrlibError(f"{path}: missing {', '.join(missing)}; not an srlib evaluation result")
    dataset, category = record["dataset"], record["category"]
    if not (isinstance(dataset, str) and isinstance(category, str) and dataset and category):
        raise SrlibError(f"{path}: dataset and category must be non-empty strings, found {dataset!r}, {category!r}")
    dataset = dataset.lower()
    if dataset in DATASETS and category not in DATASETS[dataset].categories:
        raise SrlibError(f"{path}: {category!r} is not a {DATASETS[dataset].name} category "
                         f"({', '.join(DATASETS[dataset].categories)}); record other data under its own dataset name")
    config = record.get("config") or {}
    if not isinstance(config, dict):
        raise SrlibError(f"{path}: config must be a JSON object, found {type(config).__name__}")
    metrics = {m: _number(path, m, record.get(m), 0, 1, optional=True) for m in METRICS}
    settings = {"k": _number(path, "k", record["k"], 0, math.inf),
                "n_draws": _number(path, "n_draws", record["n_draws"], 1, math.inf)}
    for key in ("epochs", "batch_size", "image_size", "width"):
        if key in config:
            settings[key] = _number(path, f"config.{key}", config[key], 0, math.inf)
    return Result(path, dataset, category, metrics, settings, config)


def load_results(folder: str | Path, pattern: str = "*.json") -> list[Result]:
    """Every result file under ``folder`` (recursively), in path order."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SrlibError(f"results folder {folder} does not exist; pass the folder srlib evaluate/reproduce wrote to")
    return [read_result(p) for p in sorted(folder.rglob(pattern)) if p.is_file()]


@dataclass(frozen=True)
class Row:
    """One line of a comparison: values in percent, None where there is none."""

    category: str
    paper: float | None
    ours: float | None
    note: str = ""

    @property
    def difference(self) -> float | None:
        # Of the values as displayed (one decimal), so the row adds up on screen.
        if self.paper is None or self.ours is None:
            return None
        return round(round(self.ours, 1) - self.paper, 1) + 0.0  # + 0.0 turns -0.0 into 0.0

    def cells(self) -> list[str]:
        diff = self.difference
        return [self.category, _fmt(self.paper), _fmt(self.ours), "" if diff is None else f"{diff:+.1f}", self.note]


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


@dataclass(frozen=True)
class Comparison:
    """A rendered table: ``name`` is its file stem, ``title`` its caption."""

    name: str
    title: str
    rows: tuple[Row, ...]

    def to_markdown(self) -> str:
        def line(cells):
            return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"
        body = [line(COLUMNS), "|" + "---|" * len(COLUMNS)] + [line(r.cells()) for r in self.rows]
        return f"**{self.title}**\n\n" + "\n".join(body) + "\n"

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(COLUMNS)
        writer.writerows(r.cells() for r in self.rows)
        return out.getvalue()

    def _repr_html_(self) -> str:
        # Jupyter (and Jupyter Book) show this instead of the repr.
        return html_table(self.title, COLUMNS, [r.cells() for r in self.rows])


def html_table(caption: str, header, rows) -> str:
    """An HTML table of strings (escaped), with a caption: for notebooks' own tables too."""
    def line(tag, cells):
        return "<tr>" + "".join(f"<{tag}>{html.escape(str(c))}</{tag}>" for c in cells) + "</tr>"
    body = "".join(line("td", row) for row in rows)
    # class "table": the book theme's table style (padding, rules).
    return f"<table class=\"table\"><caption>{html.escape(caption)}</caption><thead>{line('th', header)}</thead><tbody>{body}</tbody></table>"


def _pick(candidates: list[Result], prefer: tuple[str, ...], where: str) -> Result | None:
    """The one result for a cell; among several, the one at the paper's ``prefer`` settings."""
    if len(candidates) > 1:
        candidates = [r for r in candidates
                      if all(r.settings.get(key) == PAPER_SETTINGS[key] for key in prefer)] or candidates
    if len(candidates) > 1:
        raise SrlibError(f"{len(candidates)} results for {where}: {', '.join(str(r.path) for r in candidates)}; "
                         "keep one, or select results before building the table")
    return candidates[0] if candidates else None


def _cell(result: Result | None, metric: str, varied: tuple[str, ...] = ()) -> tuple[float | None, str]:
    if result is None:
        return None, NOT_RUN
    value = result.percent(metric)
    note = result.note(varied)
    if value is None:
        note = "; ".join(filter(None, [f"no {metric} in {result.path.name}", note]))
    return value, note


def _average_row(paper: float | None, cells: list[tuple[float | None, str]], label="average") -> Row:
    values = [v for v, _ in cells if v is not None]
    notes = sorted({n for v, n in cells if v is not None and n})
    if not values:
        return Row(label, paper, None, NOT_RUN)
    if len(values) < len(cells):
        return Row(label, paper, None, f"{len(values)} of {len(cells)} categories run")
    return Row(label, paper, mean(values), "; ".join(notes))


def paper_comparison(number: int, results: list[Result]) -> Comparison:
    """Table ``number`` (1-4): the paper's 'Ours' per category, ours, the difference."""
    table = TABLES[number]
    mine = [r for r in results if r.dataset == table.dataset]
    cells = [_cell(_pick([r for r in mine if r.category == c], ("k", "n_draws"), f"{table.dataset}/{c}"),
                   table.metric) for c in table.categories]
    rows = [Row(c, table.ours.values[c], value, note) for c, (value, note) in zip(table.categories, cells)]
    rows.append(_average_row(table.ours.average, cells))
    return Comparison(f"table{number}_{table.dataset}_{table.metric}",
                      f"Table {number}: {table.caption}; paper (Ours) beside this run", tuple(rows))


def ablation_comparison(results: list[Result]) -> Comparison:
    """Table 5: MVTec AD averages with N = 1, 3, 5 draws."""
    rows = []
    categories = DATASETS["mvtec"].categories
    for n, paper_row in ABLATION_N.items():
        at_n = [r for r in results if r.dataset == "mvtec" and r.settings["n_draws"] == n]
        picked = [_pick([r for r in at_n if r.category == c], ("k",), f"mvtec/{c} with N = {n}") for c in categories]
        for metric, paper_value in paper_row.items():
            cells = [_cell(r, metric, varied=("n_draws",)) for r in picked]
            rows.append(_average_row(paper_value, cells, f"N = {n}, {METRIC_NAMES[metric]}"))
    return Comparison("table5_mvtec_n_draws", "Table 5: MVTec AD averages with N draws; paper beside this run",
                      tuple(rows))


def other_comparisons(results: list[Result]) -> list[Comparison]:
    """One table per non-paper dataset and metric: ours only, each row labelled with its budget."""
    tables = []
    for dataset in sorted({r.dataset for r in results} - set(DATASETS)):
        mine = [r for r in results if r.dataset == dataset]
        picked = [_pick([r for r in mine if r.category == c], ("k", "n_draws"), f"{dataset}/{c}")
                  for c in sorted({r.category for r in mine})]
        for metric in ("image_auroc", "pixel_auroc"):
            if all(r.metrics[metric] is None for r in picked):
                continue
            rows = [Row(r.category, None, *_cell(r, metric)) for r in picked]
            tables.append(Comparison(
                f"{dataset}_{metric}",
                f"{dataset}: {METRIC_NAMES[metric]}; not one of the paper's benchmarks, so no paper numbers",
                tuple(rows)))
    return tables


def all_comparisons(results: list[Result]) -> list[Comparison]:
    """Tables 1-5 beside the paper, then the tables of other data."""
    return [paper_comparison(n, results) for n in TABLES] + [ablation_comparison(results)] + other_comparisons(results)


def write_tables(comparisons: list[Comparison], out_dir: str | Path) -> list[Path]:
    """Write each comparison as ``<name>.md`` and ``<name>.csv``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for comparison in comparisons:
        for suffix, text in ((".md", comparison.to_markdown()), (".csv", comparison.to_csv())):
            write_text(out_dir / f"{comparison.name}{suffix}", text)
            written.append(out_dir / f"{comparison.name}{suffix}")
    return written
