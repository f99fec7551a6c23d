"""Which torch.nn layers a model class of the file is built from, to tell whether dynamic
quantization has anything to convert (it quantizes Linear, recurrent and embedding
layers; a convolution-only network stays fp32)."""

from __future__ import annotations

import builtins

import libcst as cst

from neural_coder.transforms import match as m

from . import kinds
from .index import Index, Scope
from .wraps import values_through_wraps

#: torch.nn layers that hold Linear layers of their own (attention projections, feed-forward)
HOLDING_LINEARS = frozenset(
    {"Transformer", "TransformerEncoder", "TransformerDecoder", "TransformerEncoderLayer"}
    | {"TransformerDecoderLayer", "MultiheadAttention"}
)
#: torch.nn layers that dynamic quantization converts, or that hold such layers
DYNAMIC_QUANTIZABLE = (
    frozenset({"Linear", "LSTM", "GRU", "RNN", "LSTMCell", "GRUCell", "RNNCell", "Embedding"})
    | frozenset({"EmbeddingBag", "Bilinear"})
    | HOLDING_LINEARS
)

#: calls that build no layer (tensors, numbers, containers)
PLAIN_MODULES = ("torch.", "math.", "numpy.", "collections.", "functools.", "itertools.", "copy.")


def torch_layers(index: Index, cls_name: str) -> set[str] | None:
    """The torch.nn layer classes `cls_name` (a class of this file) and the file's classes
    it builds are made of; None when some part could not be read (a layer from another
    module, a factory), so that nothing is concluded."""
    built = layer_builds(index, cls_name)
    return set(built) if built is not None else None


def layer_builds(
    index: Index, cls_name: str, seen: frozenset[str] = frozenset()
) -> list[str] | None:
    """The torch.nn layers `cls_name`'s `__init__` builds, one entry per construction (a
    file class built twice counts its layers twice; a construction in a loop or a
    comprehension counts twice: several); None as for `torch_layers`."""
    cls = index.classes.get(cls_name)
    if cls is None or cls_name in seen or not kinds.is_model_class(index, cls):
        return None
    layers: list[str] = []
    if any(_keeps_a_parameter(init) for init in _inits(cls)):
        return None  # `self.model = model`: a wrapper of a module built elsewhere
    inits = _inits(cls)
    for call in (c for init in inits for c in m.findall(init.body, m.Call())):
        assert isinstance(call, cst.Call)
        func = call.func
        root = func
        while isinstance(root, cst.Attribute | cst.Call | cst.Subscript):
            root = root.func if isinstance(root, cst.Call) else root.value
        if isinstance(root, cst.Name) and any(
            root.value in _local_names(index, init) for init in inits
        ):
            continue  # `layers.append(...)`, `blocks[i](...)`: the method's own objects
        if m.matches(func, m.Attribute(value=m.Name("self"))) or m.matches(
            func, m.Attribute(value=m.Call(func=m.Name("super")))
        ):
            continue  # the class's own methods, `super().__init__()`
        qualified = index.qualified(func)
        last = qualified.rsplit(".", 1)[-1]
        times = 2 if _repeated(index, call, inits) else 1
        if qualified.startswith("torch.nn.") and last[:1].isupper():
            layers += [last] * times
        elif last in index.classes and "." not in qualified:
            if kinds.is_model_class(index, index.classes[last]):
                inner = layer_builds(index, last, seen | {cls_name})
                if inner is None:
                    return None
                layers += inner * times
            else:  # `class LoRALinear(nn.Linear)`: a layer of its own
                layers += _torch_bases(index, index.classes[last]) * times
        elif qualified.startswith(PLAIN_MODULES) or hasattr(builtins, qualified):
            continue  # tensors, functional ops, `math.log`, `range`, `len`
        elif not last[:1].isupper() and "." in qualified and not qualified.startswith("self."):
            return None  # `models.resnet18()`, `timm.create_model(...)`: not read
        elif last[:1].isupper():
            return None  # a class of another module: not read
    return layers or None  # no layer built here: the module comes from elsewhere


def _torch_bases(index: Index, cls: cst.ClassDef) -> list[str]:
    """The torch.nn layers a class of the file derives from (`nn.Linear`, not `nn.Module`)."""
    qualified = [index.qualified(base.value) for base in cls.bases]
    return [
        name.rsplit(".", 1)[-1]
        for name in qualified
        if name.startswith("torch.nn.") and name != "torch.nn.Module"
    ]


_REPEATING = (cst.For, cst.While, cst.ListComp, cst.GeneratorExp, cst.SetComp, cst.DictComp)


def _repeated(index: Index, call: cst.Call, inits: list[cst.FunctionDef]) -> bool:
    """`call` runs more than once per `__init__`: in a loop or a comprehension there."""
    for ancestor in index.source.ancestors(call):
        if any(ancestor is init for init in inits):
            return False
        if isinstance(ancestor, _REPEATING):
            return True
    return False


def _inits(cls: cst.ClassDef) -> list[cst.FunctionDef]:
    return [
        s for s in cls.body.body if isinstance(s, cst.FunctionDef) and s.name.value == "__init__"
    ]


def _keeps_a_parameter(init: cst.FunctionDef) -> bool:
    """`self.model = model`: an attribute bound to a parameter of `__init__` named like a
    model (not `self.upsample = upsample`, a setting)."""
    params = init.params
    names = {p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)}
    return any(
        isinstance(node.value, cst.Name)
        and node.value.value in names - {"self"}
        and kinds.names_a_model(node.value.value)
        and any(m.matches(t.target, m.Attribute(value=m.Name("self"))) for t in node.targets)
        for node in m.findall(init.body, m.Assign())
        if isinstance(node, cst.Assign)
    )


def _local_names(index: Index, init: cst.FunctionDef) -> set[str]:
    params = init.params
    names = {p.name.value for p in (*params.posonly_params, *params.params, *params.kwonly_params)}
    return names | {
        t for t, found in index.assignments.items() if any(a.scope is init for a in found)
    }


#: torch.nn containers, read through their arguments
_CONTAINERS = frozenset({"Sequential", "ModuleList"})


def layers_of_model(index: Index, model: str, scope: Scope) -> list[str] | None:
    """The torch.nn layers `model` (as written in `scope`) is built from, one entry per
    construction, when every value it may hold is built the same readable way: a class of
    the file (`layer_builds`), a torch.nn layer (`nn.Linear(20, 3)`) or a Sequential of
    such; None when any value is built otherwise, so that nothing is concluded."""
    found: list[str] | None = None
    for leaf, _ in values_through_wraps(index, cst.parse_expression(model), scope):
        built = _layers_built_by(index, leaf)
        if built is None or (found is not None and sorted(found) != sorted(built)):
            return None
        found = built
    return found


def lone_torch_layer(index: Index, model: str, scope: Scope) -> cst.Call | None:
    """`model = nn.Linear(20, 3)`: the first build when every value `model` may hold is one
    torch.nn layer itself, not a container of layers; else None."""
    first: cst.Call | None = None
    for leaf, _ in values_through_wraps(index, cst.parse_expression(model), scope):
        built = _layers_built_by(index, leaf)
        last = index.qualified(leaf.func).rsplit(".", 1)[-1] if isinstance(leaf, cst.Call) else ""
        if built is None or len(built) != 1 or last != built[0]:
            return None
        if first is None:
            first = leaf
    return first


def described_build(index: Index, model: str, scope: Scope) -> tuple[str, cst.CSTNode]:
    """How a message names what builds `model`, and the node to point at: its class of the
    file (`Predictor (line 5)`) or its first build (`model, nn.Linear(8, 1) at line 11,`)."""
    cls = class_of_model(index, model, scope)
    if cls is not None:
        node: cst.CSTNode = index.classes[cls]
        return f"{cls} (line {index.source.line(node)})", node
    node = next(leaf for leaf, _ in values_through_wraps(index, cst.parse_expression(model), scope))
    code = " ".join(index.source.code(node).split())
    code = code if len(code) <= 60 else code[:57] + "..."
    return f"{model}, {code} at line {index.source.line(node)},", node


def _layers_built_by(index: Index, expr: cst.BaseExpression) -> list[str] | None:
    if not isinstance(expr, cst.Call):
        return None
    qualified = index.qualified(expr.func)
    last = qualified.rsplit(".", 1)[-1]
    if "." not in qualified and qualified in index.classes:
        return layer_builds(index, qualified)
    if not (qualified.startswith("torch.nn.") and last[:1].isupper()):
        return None
    if last not in _CONTAINERS:
        return [last]
    layers: list[str] = []
    for arg in expr.args:
        # `nn.Sequential(*blocks)`, `nn.Sequential(OrderedDict(...))`: not read
        inner = _layers_built_by(index, arg.value) if not arg.star and not arg.keyword else None
        if inner is None:
            return None
        layers += inner
    return layers or None


def class_of_model(index: Index, model: str, scope: Scope) -> str | None:
    """`TransformerNet` when every value `model` (as written in `scope`) may hold is built
    by that class of the file; None when one is built otherwise (`student =
    Wrapper(student, Head())` after `student = Backbone()`) or by another class."""
    found: set[str] = set()
    for leaf, _ in values_through_wraps(index, cst.parse_expression(model), scope):
        name = kinds.callee(index, leaf)
        if name is None or name not in index.classes:
            return None
        found.add(name)
    return found.pop() if len(found) == 1 else None
