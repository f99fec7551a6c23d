"""Before/after tests of the import adder (transforms/imports.py), and its no-op: adding the
same imports to its own output changes nothing."""

from __future__ import annotations

import libcst as cst
import pytest

from neural_coder.transforms.imports import add_imports

QAT = [
    ("neural_coder.runtime.config", "QuantizationAwareTrainingConfig"),
    ("neural_coder.runtime.training", "prepare_compression"),
    ("torch", None),
]


def added(source: str, imports=QAT) -> str:
    out = add_imports(cst.parse_module(source), imports).code
    assert add_imports(cst.parse_module(out), imports).code == out  # second run: no-op
    return out


def test_new_imports_go_after_the_block_plain_imports_first_then_from_lines_sorted():
    out = added(
        "import os\n\nprint(os.sep)\n", [("b", "y"), ("b", "x"), ("a", "z"), ("json", None)]
    )
    assert out == ("import os\nimport json\nfrom a import z\nfrom b import x, y\n\nprint(os.sep)\n")


def test_what_the_block_already_imports_is_not_added_again():
    source = (
        "import torch\n"
        "from neural_coder.runtime.config import QuantizationAwareTrainingConfig\n"
        "from neural_coder.runtime.training import prepare_compression\n"
        "\n"
        "run()\n"
    )
    assert added(source) == source


def test_a_missing_name_joins_the_from_line_of_its_module():
    source = "from neural_coder.runtime.training import fit  # ours\nimport torch\n\nrun()\n"
    assert added(source) == (
        "from neural_coder.runtime.training import prepare_compression, fit  # ours\n"
        "import torch\n"
        "from neural_coder.runtime.config import QuantizationAwareTrainingConfig\n"
        "\n"
        "run()\n"
    )


def test_star_imports_cover_every_name_and_aliases_do_not_count():
    source = "from neural_coder.runtime.config import *\nimport torch as th\n\nrun()\n"
    assert added(source) == (
        "from neural_coder.runtime.config import *\n"
        "import torch as th\n"
        "import torch\n"
        "from neural_coder.runtime.training import prepare_compression\n"
        "\n"
        "run()\n"
    )


def test_future_imports_come_first_after_the_docstring_and_header_comments():
    source = '#!/usr/bin/env python\n# -*- coding: utf-8 -*-\n"""Train."""\nimport os\n\nrun()\n'
    assert added(source, [("__future__", "annotations"), ("torch", None)]) == (
        "#!/usr/bin/env python\n"
        "# -*- coding: utf-8 -*-\n"
        '"""Train."""\n'
        "from __future__ import annotations\n"
        "import os\n"
        "import torch\n"
        "\n"
        "run()\n"
    )


def test_imports_under_type_checking_or_further_down_do_not_count():
    source = "import os\nif TYPE_CHECKING:\n    import torch\nimport torch\ntorch.manual_seed(0)\n"
    assert added(source, [("torch", None)]) == (
        "import os\n"
        "import torch\n"
        "if TYPE_CHECKING:\n"
        "    import torch\n"
        "import torch\n"
        "torch.manual_seed(0)\n"
    )


def test_a_line_of_several_imports_is_part_of_the_block():
    source = "import os; from torch import nn\nimport sys\nrun()\n"
    assert added(source, [("torch", "optim"), ("sys", None), ("json", None)]) == (
        "import os; from torch import optim, nn\nimport sys\nimport json\nrun()\n"
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        # no import block: the new one stays apart from the code by a blank line
        ("x = 1\n", "import torch\n\nx = 1\n"),
        ('"""Doc."""\nx = 1\n', '"""Doc."""\nimport torch\n\nx = 1\n'),
        # (comments at the top of the file stay above everything: a licence, a shebang)
        ("# setup\nx = 1\n", "# setup\nimport torch\n\nx = 1\n"),
        # a block the code follows without a blank line keeps that layout
        ("import os\nx = 1\n", "import os\nimport torch\nx = 1\n"),
        # a comment right after the block gets a blank line above it, as before
        ("import os\n# setup\nx = 1\n", "import os\nimport torch\n\n# setup\nx = 1\n"),
        ("import os\n\n\nx = 1\n", "import os\nimport torch\n\n\nx = 1\n"),
        ("import os\n", "import os\nimport torch\n"),
    ],
)
def test_layout_around_the_new_imports(source, expected):
    assert added(source, [("torch", None)]) == expected


def test_relative_from_lines_are_left_alone():
    source = "from . import torch\nfrom .config import fit\n\nrun()\n"
    assert added(source, [("torch", None), ("config", "fit")]) == (
        "from . import torch\nfrom .config import fit\nimport torch\nfrom config import fit\n\nrun()\n"
    )


def test_future_cannot_be_imported_as_a_module():
    with pytest.raises(ValueError, match="__future__"):
        add_imports(cst.parse_module("x = 1\n"), [("__future__", None)])
