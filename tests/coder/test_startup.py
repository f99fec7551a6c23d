"""What start-up imports: `neural-coder --help` loads click and little else, and a one-file
`optimize` or `migrate` starts without the modules it does not need (no timing here:
tests/bench/bench_startup.py).

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
#: never needed to optimize or migrate a script: the tool adds and removes imports with its
#: own adder and remover (transforms/imports.py, unused_imports.py) and matches with
#: transforms/match.py
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


@pytest.mark.parametrize("script", ["ptq_argparse_main.py", "qat_main.py", "distill_yaml_loss.py"])
def test_a_one_file_migrate_loads_neither_codemod_the_matchers_black_nor_the_runtime(
    tmp_path, script
):
    legacy = ROOT / "samples" / "legacy"
    for path in [legacy / script, *legacy.glob("*.yaml")]:
        (tmp_path / path.name).write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    run = RUN_CLI.format(args=["migrate", str(tmp_path / script), "--no-backup"])
    names = NEVER + CODEMOD + ["black", "yaml", "neural_coder.transforms.unused_imports"]
    # it did migrate: the yaml was read, the 1.x imports dropped, the 2.x ones added
    assert loaded(run, names) == ["neural_coder.transforms.unused_imports", "yaml"]
    migrated = (tmp_path / script).read_text(encoding="utf-8")
    assert "neural_compressor.experimental" not in migrated
    assert "from neural_compressor.config import" in migrated
