"""tools/bench: the course's benchmark, in three parts that can be read apart.

    runner.py   installs and builds what it needs, runs the scenarios, writes results.json
    plots.py    the SVG plots, drawn by gnuplot from results.json
    report.py   docs/benchmarks.md from results.json: the tables, medians, min-max and ratios,
                with the hand-written analysis (docs/benchmarks-analysis.md) included as it is
    common.py   what all three share: the servers, which scenarios run which, reading results.json
    report_test.py  the report and the plots from the committed results.json (ctest benchmark_report)

tools/benchmark is the command that runs them in that order (or, with --report-only, only the
last two on a results.json an earlier run wrote). Python 3.11, standard library only.
"""
