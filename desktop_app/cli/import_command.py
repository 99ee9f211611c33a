"""``langsam-studio import --format FORMAT --images IMAGES_DIR SOURCE``: merge annotations made
elsewhere (COCO, labelme, YOLO-seg, PNG masks) into the project of IMAGES_DIR, writing its own
annotation files (``IMAGES_DIR/.langsam/``).

Existing annotations are kept: imported objects are added, and one identical to an object
already there (same label, same mask) is skipped (``desktop_app.core.importing``). The summary
goes to stdout; each skipped file, entry or image is one ``warning:`` line on stderr.

Exit codes: 0 imported (also when everything was already there); 1 the source cannot be read,
or nothing was imported and there were problems (the one-line ``error:`` says why); 2 bad
arguments (unknown format, a folder or file that does not exist).
"""

from __future__ import annotations

import argparse
import sys

HELP = "import COCO, labelme, YOLO-seg or PNG-mask annotations into a folder's project (merged, never replaced)"

IMPORT_FORMATS = ("coco", "labelme", "yolo", "png")  # = desktop_app.core.importing, kept light here
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EPILOG = (
    "SOURCE per format:\n"
    "  coco     an annotations .json file (or a folder of them, e.g. annotations_train/val.json)\n"
    "  labelme  a labelme .json file or a folder of them\n"
    "  yolo     a dataset folder with labels/ (or labels/<part>/) and classes.txt or data.yaml\n"
    "  png      a folder with masks/<image>/NNN_<class>_<label>.png or semantic/<image>.png, and classes.txt\n"
    "\nexamples:\n"
    "  langsam-studio import --format coco --images photos/ export/annotations.json\n"
    "  langsam-studio import --format yolo --images photos/ dataset/\n"
    "\nexit codes: 0 imported, 1 the import failed, 2 bad arguments"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = EPILOG
    parser.add_argument("--format", required=True, choices=IMPORT_FORMATS, help="format of SOURCE")
    parser.add_argument(
        "--images", required=True, metavar="IMAGES_DIR", help="the project folder whose images the annotations are for"
    )
    parser.add_argument("source", metavar="SOURCE", help="annotation file or folder (see below)")


def _line(message: object) -> str:
    return " ".join(str(message).split())


def _error(message: object) -> None:
    print(f"error: {_line(message)}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from inference.errors import StudioError

    images, source = Path(args.images), Path(args.source)
    if not images.is_dir():
        _error(f"--images '{images}' is not a folder")
        return EXIT_USAGE
    if not source.exists():
        _error(f"'{source}' does not exist")
        return EXIT_USAGE

    from desktop_app.core.annotation.labels import LabelError, ProjectFileError
    from desktop_app.core.annotation.project import ProjectFolder
    from desktop_app.core.importing import import_annotations

    try:
        project = ProjectFolder(images)
        if not project.images():
            _error(f"'{images}' has no images to import annotations for")
            return EXIT_FAILED
        summary = import_annotations(project, args.format, source)
    except (StudioError, LabelError, ProjectFileError) as exc:
        _error(exc)
        return EXIT_FAILED
    except OSError as exc:
        _error(f"{exc.strerror or exc}" + (f": '{exc.filename}'" if exc.filename else ""))
        return EXIT_FAILED
    for problem in summary.problems:
        print(f"warning: {_line(problem)}", file=sys.stderr)
    print(f"{summary.lines()[0]} ({summary.documents_read} document(s) read from '{source}')")
    if summary.labels_added:
        print(f"new labels: {', '.join(summary.labels_added)}")
    if summary.problems and not summary.images_changed and not summary.duplicates_skipped:
        _error(f"nothing from '{source}' could be imported into '{images}' (see the warnings above)")
        return EXIT_FAILED
    return EXIT_OK
