"""Before/after tests of the unused-import remover (transforms/unused_imports.py) and of the
import adder in libcst's layout (`add_imports(..., as_libcst=True)`), which `migrate` runs
in place of libcst's codemod command. Each case is also checked against that command (the
test may import `libcst.codemod`; the tool does not), and a second run is a no-op."""

from __future__ import annotations

import libcst as cst
import pytest
from libcst.codemod import CodemodCommand, CodemodContext

from neural_coder.transforms.imports import add_imports
from neural_coder.transforms.unused_imports import remove_unused_imports


class _Scheduled(CodemodCommand):
    """libcst's own: schedules the imports to add and remove, changes nothing else."""

    def __init__(self, context, adds, removals):
        super().__init__(context)
        self.adds, self.removals = adds, removals

    def transform_module_impl(self, tree):
        for module, name, asname in self.adds:
            self.add_needed_import(module, name, asname)
        for module, name, asname in self.removals:
            self.remove_unused_import(module, name, asname)
        return tree


def by_libcst(source: str, adds=(), removals=()) -> str:
    command = _Scheduled(CodemodContext(filename="x.py"), adds, removals)
    return command.transform_module(cst.parse_module(source)).code


def ours(source: str, adds=(), removals=()) -> str:
    module = cst.parse_module(source)
    if adds:
        module = add_imports(module, adds, as_libcst=True)
    if removals:
        module = remove_unused_imports(module, removals)
    return module.code


def check(source: str, adds=(), removals=()) -> str:
    out = ours(source, adds, removals)
    assert out == by_libcst(source, adds, removals)
    assert ours(out, adds, removals) == out  # second run: no-op
    return out


LEGACY = [
    ("neural_compressor.experimental", "Quantization", None),
    ("neural_compressor.experimental", "common", None),
]


def test_an_import_nothing_reads_goes_and_one_still_read_stays():
    source = (
        "from neural_compressor.experimental import Quantization, common\n"
        "import os\n"
        "\n"
        "loader = common.DataLoader(ds)\n"
    )
    assert check(source, removals=LEGACY) == (
        "from neural_compressor.experimental import common\nimport os\n\n"
        "loader = common.DataLoader(ds)\n"
    )


def test_a_line_left_empty_goes_and_the_other_imports_stay():
    source = (
        "import os\n"
        "from neural_compressor.experimental import Quantization, common\n"
        "import neural_compressor\n"
        "print(os.sep)\n"
    )
    removals = [*LEGACY, ("neural_compressor", None, None), ("os", None, None)]
    assert check(source, removals=removals) == "import os\nprint(os.sep)\n"


def test_a_removed_name_keeps_the_comments_of_a_parenthesised_list():
    source = (
        "from neural_compressor.experimental import (\n"
        "    Quantization,  # the quantizer\n"
        "    common,\n"
        "    Pruning,\n"
        ")\n"
        "p = Pruning()\n"
    )
    out = check(source, removals=LEGACY + [("neural_compressor.experimental", "Pruning", None)])
    assert out == ("from neural_compressor.experimental import (\n    Pruning,\n)\np = Pruning()\n")


@pytest.mark.parametrize(
    "reader",
    [
        "__all__ = ['Quantization']\n",
        "__all__: list = ['x', ('Quantization')]\n",
        "__all__ += ['Quantization']\n",
        "__all__, other = ['Quantization'], 1\n",
        "def f(q: 'Quantization') -> None:\n    pass\n",
        "x: 'List[Quantization]' = []\n",
        "import typing\nT = typing.TypeVar('T', bound='Quantization')\n",
        "def f() -> 'Quantization.Inner':\n    pass\n",
    ],
)
def test_an_export_or_a_string_annotation_keeps_an_import(reader):
    source = f"from neural_compressor.experimental import Quantization\n{reader}"
    assert check(source, removals=LEGACY) == source


@pytest.mark.parametrize(
    "not_a_reader",
    [
        "names = ['Quantization']\n",
        "__all__ = [['Quantization']]\n",
        "from typing import Literal\nx: Literal['Quantization'] = 'Quantization'\n",
        "print('Quantization')\n",
        "def f(q: int = 'Quantization'):\n    pass\n",
    ],
)
def test_a_string_elsewhere_is_no_reader(not_a_reader):
    source = f"from neural_compressor.experimental import Quantization\n{not_a_reader}"
    assert check(source, removals=LEGACY) == not_a_reader


def test_imports_in_functions_and_aliases_match_only_their_own_removal():
    source = (
        "import neural_compressor.experimental as nce\n"
        "from neural_compressor.experimental import common as c, Quantization\n"
        "def later():\n"
        "    from neural_compressor.experimental import Quantization\n"
        "    import neural_compressor.experimental\n"
        "    return 1\n"
        "Quantization()\n"
    )
    removals = [
        ("neural_compressor.experimental", None, None),
        ("neural_compressor.experimental", "common", "c"),
        ("neural_compressor.experimental", "Quantization", None),
    ]
    assert check(source, removals=removals) == (
        "import neural_compressor.experimental as nce\n"
        "from neural_compressor.experimental import Quantization\n"
        "def later():\n"
        "    return 1\n"
        "Quantization()\n"
    )


def test_future_star_and_relative_imports_stay():
    source = (
        "from __future__ import annotations\n"
        "from neural_compressor.experimental import *\n"
        "from .experimental import common\n"
    )
    removals = [("__future__", "annotations", None), *LEGACY]
    assert check(source, removals=removals) == source


ADDS = [
    ("neural_compressor.config", "PostTrainingQuantConfig", None),
    ("neural_compressor.quantization", "fit", "inc_fit"),
    ("neural_compressor", None, "nc"),
    ("torch", None, None),
]


@pytest.mark.parametrize(
    "source",
    [
        "x = 1\n",
        '"""Doc."""\nx = 1\n',
        "import os\nx = 1\n",  # (libcst's layout: the code gets its blank line)
        "import os; import sys\nx = 1\n",  # (libcst's layout: such a line ends the block)
        "import os\n# setup\nx = 1\n",
        "from neural_compressor.config import TuningCriterion\n\nx = 1\n",
        "from neural_compressor.quantization import fit as inc_fit\nimport torch\nx = 1\n",
        "import neural_compressor as nc\nimport neural_compressor as other\nx = 1\n",
        "from neural_compressor.config import *\nx = 1\n",
        "__strict__ = True\nfrom neural_compressor.quantization import fit\n",
    ],
)
def test_added_imports_in_libcst_layout_aliases_included(source):
    check(source, adds=ADDS)


def test_aliased_names_come_after_the_plain_ones_and_their_modules_first():
    source = "from b import z\n\nrun()\n"
    out = check(
        source, adds=[("b", "y", "yy"), ("b", "x", None), ("a", "w", None), ("c", "v", "vv")]
    )
    assert out == ("from b import x, y as yy, z\nfrom c import v as vv\nfrom a import w\n\nrun()\n")


def test_add_then_remove_as_migrate_does():
    source = (
        "from neural_compressor.experimental import Quantization, common\n"
        "import torch\n"
        "q = fit(model)\n"
        "loader = common.DataLoader(ds)\n"
    )
    adds = [("neural_compressor.quantization", "fit", None)]
    assert check(source, adds=adds, removals=LEGACY) == (
        "from neural_compressor.experimental import common\n"
        "import torch\n"
        "from neural_compressor.quantization import fit\n"
        "\n"
        "q = fit(model)\n"
        "loader = common.DataLoader(ds)\n"
    )
