"""The JupyterLab extension in a real browser: Debian's Chromium, headless, driven by
Playwright (nothing downloaded). Opens the sample notebook, picks an approach from the
toolbar menu, checks the cells changed in the page, saves, runs all cells and checks the
runtime's summary. The screenshot is kept in build/test-artifacts/ (or
$NEURAL_CODER_ARTIFACTS)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.notebooks.conftest import SAMPLE_NOTEBOOK, nbformat

pytest.importorskip("jupyterlab", reason="the jupyter extra is not installed")
playwright = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
from tests.notebooks.lab import running_lab  # noqa: E402

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("NEURAL_CODER_ARTIFACTS", ROOT / "build" / "test-artifacts"))
# as the machine's notes advise: no background traffic on a closed network
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# the code cells of the notebook on show (a hidden tab's panel has lm-mod-hidden)
CODE_TEXT = (
    "() => [...document.querySelectorAll("
    "'.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell .cm-content')].map(e => e.innerText)"
)
MENU = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-NeuralCoder-menu select"


@pytest.mark.skipif(
    not Path(CHROMIUM).is_file(),
    reason="Debian's chromium is not installed (tools/test.sh installs it with apt-get; "
    "it could not be installed here)",
)
@pytest.mark.skipif(
    not (ROOT / "coder" / "labextension" / "package.json").is_file(),
    reason="the JupyterLab extension is not built: bash tools/build_labextension.sh .venv/bin/python",
)
def test_toolbar_menu_rewrites_the_live_notebook_which_then_compresses(tmp_path):
    root = tmp_path / "work"
    root.mkdir()
    notebook = root / "train.ipynb"
    notebook.write_text(SAMPLE_NOTEBOOK.read_text())
    broken = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("# evaluation only"),
            nbformat.v4.new_code_cell(
                "import torch\nmodel = torch.nn.Linear(2, 2)\nmodel(torch.ones(1, 2)).sum().backward()"
            ),
        ],
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
    )
    nbformat.write(broken, root / "refused.ipynb")
    summary = tmp_path / "summary.json"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # no --jpserver_extensions flag: the installed config switches the server extension on,
    # and the labextension is found where the package installed it
    with running_lab(root, env={"NEURAL_CODER_SUMMARY": str(summary)}) as lab:
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            try:
                run_in_page(page, lab.url, summary)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "jupyterlab-failure.png"))
                raise
            finally:
                browser.close()
        assert "neural-coder: /neural-coder/rewrite is served" in lab.log.read_text()

    saved = nbformat.read(notebook, as_version=4)
    assert "compression_manager = prepare_compression(" in saved.cells[5].source
    assert saved.cells[3].source == nbformat.read(SAMPLE_NOTEBOOK, as_version=4).cells[3].source
    result = json.loads(summary.read_text())
    assert result["sparsity"] == pytest.approx(0.5, abs=0.02), result
    assert result["quantized_modules"] > 0


def run_in_page(page, url: str, summary: Path) -> None:
    from tests.notebooks.lab import TOKEN

    page.goto(f"{url}/lab/tree/train.ipynb?token={TOKEN}")
    menu = page.locator(MENU)
    menu.wait_for(timeout=90_000)
    page.wait_for_function(f"() => ({CODE_TEXT})().length === 5", timeout=60_000)
    # the kernel's metadata arrives as an undoable change of its own: let it land first
    page.get_by_text("Python 3 (ipykernel) | Idle").wait_for(timeout=90_000)
    page.wait_for_timeout(1000)
    before = page.evaluate(CODE_TEXT)
    assert not any("prepare_compression" in text for text in before)

    # (distillation would be refused here: the notebook's model is built at random, so a
    # frozen copy would teach nothing; the menu shows that refusal as a notification)
    menu.select_option("pruning+qat")
    page.get_by_text("cells changed: 2, 6").first.wait_for(timeout=60_000)
    after = page.evaluate(CODE_TEXT)
    assert after[0] != before[0] and after[3] != before[3]  # the imports; the training cell
    assert after[1:3] == before[1:3] and after[4] == before[4]
    assert "prepare_compression(" in after[3] and after[3].startswith("%%time")
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-neural-coder.png"))

    # one undo takes back everything the menu inserted; redo puts it back
    page.locator(".jp-Notebook .jp-CodeCell .jp-InputPrompt").nth(1).click()
    page.keyboard.press("Escape")
    page.keyboard.press("z")
    page.wait_for_function(f"() => !({CODE_TEXT})().some(t => t.includes('prepare_compression'))")
    assert page.evaluate(CODE_TEXT) == before
    page.keyboard.press("Shift+z")
    page.wait_for_function(f"() => ({CODE_TEXT})()[3].includes('prepare_compression')")
    assert page.evaluate(CODE_TEXT)[:4] == after[:4]  # (cells out of view may not be drawn)

    page.keyboard.press("Control+s")
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    deadline = time.monotonic() + 240
    while not summary.is_file():
        assert time.monotonic() < deadline, "the notebook run in the browser wrote no summary"
        page.wait_for_timeout(1000)
    page.get_by_text("accuracy").first.wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-after-run.png"))

    # a refusal: a notification that names the notebook, the cell and the line
    page.goto(
        f"{url}/lab/tree/refused.ipynb?reset&token={TOKEN}"
    )  # (reset: train.ipynb stays shut)
    page.get_by_role("heading", name="evaluation only").wait_for(timeout=90_000)
    page.wait_for_function(f"() => ({CODE_TEXT})().length === 1", timeout=60_000)
    menu = page.locator(MENU)
    menu.select_option("qat")
    page.get_by_text("refused.ipynb:cell 2:line 3:").first.wait_for(timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "jupyterlab-refusal.png"))
