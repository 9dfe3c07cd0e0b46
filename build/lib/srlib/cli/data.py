"""``srlib data textures OUT_DIR`` and ``srlib data check --dataset D --root R``."""

from __future__ import annotations

import sys


def _textures(args) -> int:
    from srlib.data.textures import TEXTURE_CATEGORIES, make_textures

    out_dir = make_textures(args.out_dir, seed=args.seed)
    print(f"wrote {', '.join(TEXTURE_CATEGORIES)} to {out_dir} (MVTec AD layout, seed {args.seed})")
    print(f"check them with: srlib data check --dataset mvtec --root {out_dir}")
    return 0


def _check(args) -> int:
    from srlib.data.check import check_folder

    results = check_folder(args.dataset, args.root, args.category)
    for result in results:
        print(result.summary(), flush=True)
        for line in result.warnings:
            print(f"srlib: warning: {line}", file=sys.stderr)
        for line in result.problems:
            print(f"srlib: error: {line}", file=sys.stderr)
    problems = sum(len(r.problems) for r in results)
    images = sum(sum(c.values()) for r in results for c in r.counts.values())
    verdict = f"{problems} problem(s), listed above" if problems else "no problems"
    print(f"{len(results)} categor{'y' if len(results) == 1 else 'ies'}, {images} images: {verdict}")
    return 2 if problems else 0


def register(subparsers) -> None:
    parser = subparsers.add_parser("data", help="write the bundled texture data; check a dataset folder")
    actions = parser.add_subparsers(dest="data_action", metavar="ACTION", required=True)

    textures = actions.add_parser(
        "textures",
        help="write the real-photo texture categories (scikit-image photographs, synthetic defects) in the MVTec AD layout",
    )
    textures.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the categories into")
    textures.add_argument("--seed", type=int, default=0, help="seed of crops and defects (default 0)")
    textures.set_defaults(func=_textures)

    check = actions.add_parser("check", help="validate an MVTec AD, BTAD or MPDD folder; print counts or every problem")
    check.add_argument("--dataset", required=True, choices=["mvtec", "btad", "mpdd"], help="the folder layout")
    check.add_argument("--root", required=True, help="the folder that holds the category folders")
    check.add_argument("--category", help="check only this category (default: every category folder)")
    check.set_defaults(func=_check)
