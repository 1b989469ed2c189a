"""`python -m pipeline summary --metrics M.json ... --benchmarks B.tsv ... --tsv OUT.tsv --markdown OUT.md`"""

from __future__ import annotations

from pipeline.cli import add_command
from pipeline.outputs.summary import conventions_by_scene, write_summary


def run_summary(metrics_files, benchmark_files, tsv_path, markdown_path):
    return write_summary(metrics_files, benchmark_files, tsv_path, markdown_path)


def _run(args) -> None:
    metrics, timings = run_summary(args.metrics, args.benchmarks, args.tsv, args.markdown)
    print(f"wrote {args.tsv} and {args.markdown}: {len(metrics)} metric rows, {len(timings)} timing rows")
    conventions = conventions_by_scene(metrics)
    if conventions:  # n_gt and AP depend on it, so say it next to the numbers
        print("gt classes: " + ", ".join(f"{scene} {value}" for scene, value in conventions.items()))


def register(subparsers) -> None:
    parser = add_command(subparsers, "summary", _run,
                         help="table of metrics and per-rule run time / memory across scenes")
    parser.add_argument("--metrics", nargs="*", default=[], help="metrics JSON files from `evaluate`")
    parser.add_argument("--benchmarks", nargs="*", default=[], help="Snakemake benchmark TSV files")
    parser.add_argument("--tsv", required=True)
    parser.add_argument("--markdown", required=True)
