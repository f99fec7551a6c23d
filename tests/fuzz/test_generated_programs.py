"""Programs generated from Python's grammar (hypothesmith) through optimize (every approach),
migrate and inspect: no exception but our own escapes, every output parses, and a second run
is a no-op.

A fixed seed and a few hundred programs per run keep CI fast and repeatable; a deeper run:
NEURAL_CODER_FUZZ_EXAMPLES=10000 NEURAL_CODER_FUZZ_SEED=random pytest tests/fuzz
"""

from __future__ import annotations

import os
from pathlib import Path

import hypothesmith
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from neural_coder.analysis import analyze, parse_source
from neural_coder.api import rewrite_source
from neural_coder.errors import NeuralCoderError
from neural_coder.options import build_options
from neural_coder.report import Status
from neural_coder.transforms.migrate_1x import migrate_source
from tests.conftest import APPROACHES

EXAMPLES = int(os.environ.get("NEURAL_CODER_FUZZ_EXAMPLES", "150"))
SEED = os.environ.get("NEURAL_CODER_FUZZ_SEED", "20261206")
ALL_APPROACHES = APPROACHES + ["ptq-static", "ptq-dynamic", "ptq-auto", "bf16", "benchmark"]
PATH = Path("generated.py")
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED != "random",
    database=None,
    suppress_health_check=list(HealthCheck),
)
# the 1.x API spelled out in front of a generated program, so that migrate parses and walks it
LEGACY_PREFIX = "from neural_compressor.experimental import Quantization, common\n"


def _with_seed(test):
    return test if SEED == "random" else seed(int(SEED))(test)


@_with_seed
@FUZZ
@given(program=hypothesmith.from_grammar(), approach=st.sampled_from(ALL_APPROACHES))
def test_optimize_and_inspect_never_crash(program, approach):
    try:
        analyze(parse_source(PATH, program))
    except NeuralCoderError:
        pass
    options = build_options(approach, None, {}, {})
    try:
        rewritten, report = rewrite_source(PATH, program, options)
    except NeuralCoderError:
        return
    if report.status is Status.TRANSFORMED:
        compile(rewritten, "rewritten", "exec")
        again, second = rewrite_source(PATH, rewritten, options)
        assert second.status is Status.UNCHANGED and again == rewritten


@_with_seed
@FUZZ
@given(program=hypothesmith.from_grammar(), target=st.sampled_from(["inc", "runtime"]))
def test_migrate_never_crashes(program, target, tmp_path_factory):
    source = LEGACY_PREFIX + program
    try:
        compile(source, "legacy", "exec")
    except (SyntaxError, ValueError):
        return  # the prefix made a program with a `from __future__` import invalid
    path = tmp_path_factory.mktemp("migrate") / "legacy.py"
    try:
        result = migrate_source(source, path, target)
    except NeuralCoderError:
        return
    compile(result.code, "migrated", "exec")
    again = migrate_source(result.code, path, target)
    assert again.code == result.code
