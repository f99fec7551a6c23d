"""What start-up imports: `neural-coder --help` loads click and little else, and a one-file
`optimize` starts without the modules it does not need (no timing here: tests/bench/bench_startup.py).

Each check runs in a fresh interpreter and lists the heavy modules present in `sys.modules`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: never needed to rewrite a script (the runtime runs the rewritten script, not the tool)
NEVER = ["torch", "transformers", "rich", "pygls", "lsprotocol", "nbformat", "neural_coder.runtime"]
#: never needed to optimize a script: the tool adds imports with its own adder
#: (transforms/imports.py) and matches with transforms/match.py; `migrate` still uses them
CODEMOD = ["libcst.codemod", "libcst.matchers"]
#: loaded where used: the api by the commands, black for inserted snippets snippet_layout does not
#: cover, yaml for --config
LAZY = ["neural_coder.api", "black", "yaml", *CODEMOD]

PROBE = """
import json, sys
{body}
print("MODULES:" + json.dumps(sorted(m for m in {names!r} if m in sys.modules)))
"""

RUN_CLI = """
sys.argv = ["neural-coder", *{args!r}]
from neural_coder.cli import main
try:
    main()
except SystemExit:
    pass
"""


def loaded(body: str, names: list[str]) -> list[str]:
    code = PROBE.format(body=body, names=names)
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout
    line = next(line for line in out.splitlines() if line.startswith("MODULES:"))
    return json.loads(line.removeprefix("MODULES:"))


def test_help_imports_neither_libcst_nor_the_analysis():
    names = NEVER + LAZY + ["libcst", "neural_coder.analysis", "neural_coder.transforms.hooks"]
    assert loaded(RUN_CLI.format(args=["--help"]), names) == []
    assert loaded(RUN_CLI.format(args=["optimize", "--help"]), names) == []


def test_the_api_starts_without_black_yaml_codemod_or_the_matchers():
    assert loaded("import neural_coder.api", NEVER + LAZY[1:]) == []
    assert loaded("import neural_coder.api", ["libcst", "neural_coder.analysis"]) == [
        "libcst",
        "neural_coder.analysis",
    ]


@pytest.mark.parametrize("approach", ["qat", "ptq-static", "pruning"])
def test_a_one_file_optimize_loads_what_it_uses_and_nothing_of_the_runtime(tmp_path, approach):
    script = tmp_path / "train.py"
    script.write_text((ROOT / "samples" / "flat_script.py").read_text(encoding="utf-8"))
    run = RUN_CLI.format(args=["optimize", str(script), "--approach", approach, "--diff"])
    names = NEVER + CODEMOD + ["black", "neural_coder.transforms.imports"]
    names += ["neural_coder.transforms.snippet_layout"]
    # it did rewrite: the snippets were laid out (by snippet_layout, as black would: black
    # itself is slow to import) and the imports added (our adder)
    assert loaded(run, names) == [
        "neural_coder.transforms.imports",
        "neural_coder.transforms.snippet_layout",
    ]
