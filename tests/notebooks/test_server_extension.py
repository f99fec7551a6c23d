"""The server extension behind the JupyterLab menu, over HTTP: cells in, cells out."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.notebooks.conftest import nbformat

pytest.importorskip("jupyterlab", reason="the jupyter extra is not installed")
from tests.notebooks.lab import running_lab  # noqa: E402

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    root = tmp_path_factory.mktemp("lab")
    with running_lab(root, '--ServerApp.jpserver_extensions={"neural_coder": True}') as running:
        yield running


def cells_of(notebook):
    return [{"cell_type": c.cell_type, "source": c.source} for c in notebook.cells]


def test_rewrite_answers_the_changed_cells(lab, sample_notebook):
    notebook = nbformat.read(sample_notebook, as_version=4)
    status, answer = lab.request(
        "neural-coder/rewrite",
        {"path": "train.ipynb", "approach": "qat", "cells": cells_of(notebook)},
    )
    assert status == 200
    assert answer["status"] == "Transformed" and answer["error"] is None
    assert answer["changed"] == [2, 6]
    assert [c["index"] for c in answer["cells"]] == [1, 5]
    training = answer["cells"][1]["source"]
    assert training.startswith("%%time\ncompression_manager = prepare_compression(model, ")
    assert any("cell 6 line 2" in line for line in answer["placed"])

    # the rewritten cells sent back: nothing more to do
    for change in answer["cells"]:
        notebook.cells[change["index"]].source = change["source"]
    status, again = lab.request(
        "neural-coder/rewrite",
        {"path": "train.ipynb", "approach": "qat", "cells": cells_of(notebook)},
    )
    assert again["status"] == "Unchanged" and again["cells"] == []


def test_a_refusal_names_cell_and_line(lab):
    cells = [
        {"cell_type": "markdown", "source": "# notes"},
        {"cell_type": "code", "source": "import torch\nmodel = torch.nn.Linear(2, 2)"},
        {"cell_type": "code", "source": "%time y = model(torch.ones(1, 2))\nz = (1,"},
    ]
    status, answer = lab.request(
        "neural-coder/rewrite", {"path": "nb.ipynb", "approach": "qat", "cells": cells}
    )
    assert status == 200 and answer["status"] == "Failed"
    assert answer["error"]["cell"] == 3 and answer["error"]["line"] == 2
    assert answer["message"].startswith(f"{lab.root / 'nb.ipynb'}:cell 3:line 2: ")


def test_bad_requests_are_answered_not_crashed(lab):
    status, answer = lab.request("neural-coder/rewrite", {"approach": "qat", "cells": "x"})
    assert status == 200 and "'cells' must be a list" in answer["message"]
    status, answer = lab.request("neural-coder/rewrite", {"approach": "nope", "cells": []})
    assert "unknown approach 'nope'" in answer["message"]


def test_requests_without_the_token_are_refused(lab):
    status, _ = lab.request("neural-coder/rewrite", {"approach": "qat", "cells": []}, token=False)
    assert status == 403


TINY_EVAL = Path(__file__).parents[1] / "lsp" / "tiny_eval.py"


def test_auto_measures_the_live_cells_and_answers_the_winners_cells(lab, tmp_path):
    text = TINY_EVAL.read_text()
    head, tail = text.split("\n\n\ndef evaluate", 1)
    cells = [
        {"cell_type": "markdown", "source": "# tiny evaluation"},
        {"cell_type": "code", "source": "%env NEURAL_CODER_SAMPLE=1\n" + head.strip()},
        {"cell_type": "code", "source": "def evaluate" + tail.strip()},
    ]
    request = {
        "command": "auto",
        "path": "tiny.ipynb",
        "approaches": ["ptq-dynamic"],
        "cells": cells,
    }
    answers: list[tuple[int, dict]] = []
    running = threading.Thread(
        target=lambda: answers.append(lab.request("neural-coder/rewrite", request, timeout=600))
    )
    running.start()
    # the server goes on answering while auto runs (its work is off the event loop)
    status, quick = lab.request(
        "neural-coder/rewrite", {"command": "optimize", "approach": "ptq-static", "cells": cells}
    )
    assert status == 200 and quick["status"] == "Transformed"
    assert running.is_alive()
    running.join()
    ((status, answer),) = answers
    assert status == 200 and answer["error"] is None, answer
    report = answer["report"]
    assert [c["name"] for c in report["candidates"]] == ["fp32", "ptq-dynamic"]
    assert all(c["status"] == "measured" for c in report["candidates"]), answer["table"]
    assert "fp32: accuracy 1" in answer["table"]  # the %env cell ran: IPython ran the cells
    assert answer["winner"] == report["winner"]
    if answer["winner"] is None:
        assert answer["cells"] == [] and "nothing beats fp32" in answer["message"]
    else:  # the winner's cells are what optimize answers for that approach
        status, optimized = lab.request(
            "neural-coder/rewrite",
            {"command": "optimize", "approach": answer["winner"], "cells": cells},
        )
        assert answer["cells"] == optimized["cells"] and answer["changed"] == [2, 3]
    assert not list(lab.root.glob(".*neural-coder-auto*"))  # the run copies are gone


def test_bad_auto_requests_are_answered_not_crashed(tmp_path):
    from neural_coder.notebooks.server import rewrite_request

    code = [{"cell_type": "code", "source": "import torch"}]
    bad_loss = rewrite_request(
        {"command": "auto", "tolerable_loss": "much", "cells": code}, tmp_path
    )
    assert bad_loss["status"] == "Failed" and "auto: could not convert" in bad_loss["message"]
    bad_name = rewrite_request(
        {"command": "auto", "approaches": ["turbo"], "cells": code}, tmp_path
    )
    assert bad_name["status"] == "Failed" and "--approaches: turbo" in bad_name["message"]
