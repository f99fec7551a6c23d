"""An inference script that shows generations before it reports perplexity, rewritten
for dynamic int8 and run: the fit runs first, so the samples come from the int8 model."""

from __future__ import annotations

import pytest

from tests.e2e.runner import rewrite_and_run_script

pytestmark = pytest.mark.e2e


def test_the_demo_generation_runs_the_quantized_model(tmp_path):
    pytest.importorskip("transformers")
    run, summary = rewrite_and_run_script(
        tmp_path, "generate_before_perplexity.py", "--approach", "ptq-dynamic"
    )
    assert summary["quantized_modules"] > 0
    assert run.stdout.count("sample:") == 2 and "perplexity" in run.stdout
    rewritten = (tmp_path / "generate_before_perplexity.py").read_text()
    assert rewritten.index("quantization.fit(") < rewritten.index("model.generate(")
