"""A trainer class whose caller loads the best epoch's checkpoint back into
`trainer.model` after `trainer.fit()`: rewritten, the script loads it (the fake-quant
checkpoint before QAT converts, the float one before the fit quantizes), evaluates the
int8 model and ends with it."""

from __future__ import annotations

import pytest

from tests.e2e.runner import rewrite_and_run

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("approach", ["qat", "ptq-static"])
def test_the_best_checkpoint_reloaded_by_the_caller_ends_int8(tmp_path, approach):
    summary = rewrite_and_run(tmp_path, "trainer_best_reload.py", "--approach", approach)
    assert summary["quantized_modules"] > 0, summary
    assert (tmp_path / "outputs" / "best.pth").is_file()
