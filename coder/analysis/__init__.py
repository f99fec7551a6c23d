"""Analysis: from a parsed script to facts with source positions."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import libcst as cst

from neural_coder.errors import AnalysisError

from . import kinds, wraps
from .backward_calls import find_backward_calls
from .index import Assignment, Index, build_index, iter_returns
from .lightning import LightningUse, find_lightning
from .model_calls import TRAINS_NO_MODEL
from .own_compression import OwnCompression, find_own_compression
from .project import in_reach, reached_scopes
from .source import Source, parse_source
from .trainer import TrainerUse, find_trainers, trainer_bases
from .training import NO_OPTIMIZER_STEP, NOT_IN_A_LOOP, LoopAnalysis, TrainingLoop
from .user_quantization import UserQuantization, find_user_quantization

__all__ = [
    "Facts", "Found", "analyze", "inserted_marker_line", "parse_source", "Source", "TrainingLoop",
]  # fmt: skip

MARKER = "# neural-coder"
#: the user's mark on the one training loop to compress, where a file has several
MARKER_TRAIN = "neural-coder: train"
INSERTED_MARKER = re.compile(r"#\s*neural-coder\s*$")  # user hints are "# neural-coder: model"


@dataclass
class Found:
    kind: str  # model, optimizer, scheduler, dataloader, scaler
    what: str
    line: int
    target: str | None  # what it is assigned to
    node: cst.CSTNode = field(repr=False, compare=False)  # the statement


@dataclass
class Facts:
    source: Source
    index: Index
    found: list[Found] = field(default_factory=list)
    loop: TrainingLoop | None = None
    loop_error: AnalysisError | None = None
    already_optimized: int | None = None  # line of existing compression code
    own_compression: OwnCompression | None = None  # compression the script's author wrote
    # the script's own torch quantization call (quantize_dynamic, prepare/convert, ...)
    user_quantization: UserQuantization | None = None
    trainers: list[TrainerUse] = field(default_factory=list)  # Hugging Face Trainer constructions
    lightning: LightningUse | None = None  # a Lightning Trainer.fit / LightningCLI run
    # every `.backward()` the script runs (in a project: reached from the entry script's
    # code, not a helper of an imported module that nothing calls)
    backward_calls: list[cst.Call] = field(default_factory=list)

    @property
    def trainer(self) -> TrainerUse | None:
        return self.trainers[0] if self.trainers else None

    def lines(self) -> list[str]:
        """A human listing of what was found, with line numbers."""
        out = [
            f"{f.kind:<11} line {f.line:>4}  {f.what}" + (f"  -> {f.target}" if f.target else "")
            for f in self.found
        ]
        loop = self.loop
        src = self.source
        if loop is not None:
            out += [
                f"training    line {src.line(loop.entry_loop):>4}  training starts ({self.index.describe(loop.entry_scope)})",
                f"step loop   line {src.line(loop.step_loop):>4}  ({self.index.describe(loop.step_scope)})",
                f"backward    line {src.line(loop.backward):>4}  {loop.loss_name}.backward()",
                f"opt. step   line {src.line(loop.optimizer_step):>4}  {loop.optimizer}",
                *(f"opt. step   line {src.line(s):>4}  (another path)" for s in loop.other_steps),
                f"model       trained: {loop.model_in_entry}"
                + (
                    f" (built line {loop.model_origin_line}: {loop.model_origin})"
                    if loop.model_origin
                    else ""
                ),
            ]
            if loop.epoch_loop is not None:
                out.append(f"epoch loop  line {src.line(loop.epoch_loop):>4}")
            out.append(f"run length  {loop.total_steps or 'unknown'} optimizer steps")
            out += [f"note        {n}" for n in loop.notes]
        elif self.loop_error is not None:
            out.append(f"training    none: {self.loop_error.message}")
        for use in self.trainers:
            line = src.line(use.call)
            out.append(f"hf trainer  line {line:>4}  {use.class_name}(...) -> {use.target}")
        if self.lightning is not None:
            for fit in self.lightning.fits:
                model = src.code(fit.model) if fit.model is not None else "?"
                out.append(
                    f"lightning   line {src.line(fit.call):>4}  {fit.trainer}.fit({model}, ...)"
                )
            for run in self.lightning.cli_runs:
                out.append(f"lightning   line {src.line(run.call):>4}  LightningCLI(...) runs fit")
        if self.already_optimized is not None:
            out.append(
                f"compressed  line {self.already_optimized:>4}  compression code already present"
            )
        return out


LOADS_A_COMPRESSED_CHECKPOINT = (
    "; a script that evaluates the checkpoint of a compressed training run loads it with "
    "`model, state = structure_for(state, model)` from neural_coder.runtime before its "
    "`model.load_state_dict(state)` (it gives the int8 model for an int8 or QAT checkpoint, "
    "the model as it is for a float one)"
)


def _loads_a_state_dict(index: Index) -> bool:
    return any(
        isinstance(call.func, cst.Attribute) and call.func.attr.value == "load_state_dict"
        for call in index.calls
    )


def analyze(source: Source) -> Facts:
    index = build_index(source)
    facts = Facts(source=source, index=index)
    facts.found = _constructions(index)
    facts.own_compression = find_own_compression(index)
    facts.already_optimized = _existing_compression(index, facts.own_compression)
    facts.user_quantization = find_user_quantization(index)
    facts.trainers = find_trainers(index)
    facts.lightning = find_lightning(index)
    backward_calls = find_backward_calls(index)
    if len(source.parts) > 1:  # a project: what the entry script runs, in any of its files
        reached = reached_scopes(index)
        backward_calls = [c for c in backward_calls if in_reach(index, c, reached)]
        # what the script builds (through functions of other files, too), at its own lines
        facts.found = [f for f in facts.found if source.module_of(f.node) is source.module]
        facts.trainers = [t for t in facts.trainers if in_reach(index, t.call, reached)]
    facts.backward_calls = backward_calls
    backward_calls = _outside_trainer_classes(index, backward_calls)
    if not backward_calls:
        facts.loop_error = AnalysisError(
            "no training loop: nothing calls .backward()"
            + (" (a Hugging Face Trainer runs it)" if facts.trainers else "")
            + (" (PyTorch Lightning runs it)" if facts.lightning else "")
            + (
                f" in the script or the {len(source.parts) - 1} module(s) of its project it imports"
                if len(source.parts) > 1
                else ""
            ),
            path=source.path,
            hint="training approaches need a training loop; for a trained model use a post-training approach"
            + (LOADS_A_COMPRESSED_CHECKPOINT if _loads_a_state_dict(index) else ""),
        )
        return facts
    analysis = LoopAnalysis(index)
    loops: list[TrainingLoop] = []
    # one-off passes (no loop around the backward) and backward passes that no optimizer
    # step follows (profiling, gradient checks): no training step of their own
    outside: list[AnalysisError] = []
    try:
        for call in backward_calls:
            try:
                loops.append(analysis.analyze(call))
            except AnalysisError as error:
                if not error.message.startswith(
                    (NOT_IN_A_LOOP, NO_OPTIMIZER_STEP, TRAINS_NO_MODEL)
                ):
                    raise
                outside.append(error)
    except AnalysisError as error:
        facts.loop_error = error
        return facts
    if not loops:
        facts.loop_error = outside[0]
        return facts
    distinct = {id(loop.entry_loop): loop for loop in loops}
    marked = [loop for loop in distinct.values() if _marked_for_training(source, loop)]
    unmarked: list[str] = []
    if len(distinct) > 1 and len(marked) == 1:
        chosen = marked[0].entry_loop
        unmarked = [
            f"line {source.line(loop.entry_loop)}: a training loop not marked "
            f"'# {MARKER_TRAIN}' gets no hooks"
            for loop in distinct.values()
            if loop.entry_loop is not chosen
        ]
        loops = [loop for loop in loops if loop.entry_loop is chosen]
        distinct = {id(chosen): marked[0]}
    if len(distinct) > 1:
        lines = ", ".join(str(source.line(loop.entry_loop)) for loop in distinct.values())
        facts.loop_error = AnalysisError(
            f"several training loops (lines {lines})"
            + (f", {len(marked)} of them marked '# {MARKER_TRAIN}'" if marked else ""),
            path=source.path,
            hint=f"mark the one to compress with '# {MARKER_TRAIN}' at the end of its "
            "for/while line, or run the tool on a file with one training loop",
        )
        return facts
    try:
        facts.loop = merge_paths(source, loops)
    except AnalysisError as error:
        facts.loop_error = error
        return facts
    facts.loop.notes += unmarked
    facts.loop.notes += [
        f"line {e.line}: {e.message}: it gets no hooks"
        if e.message.startswith(TRAINS_NO_MODEL)
        else f"line {e.line}: a backward pass "
        + (
            "outside any loop"
            if e.message.startswith(NOT_IN_A_LOOP)
            else "that no optimizer step follows"
        )
        + " (a one-off pass, profiling, a gradient check) gets no hooks"
        for e in outside
    ]
    return facts


def _marked_for_training(source: Source, loop: TrainingLoop) -> bool:
    """The user's choice among several training loops: `# neural-coder: train` on the
    line of its epoch loop (or of its step loop)."""
    return any(MARKER_TRAIN in source.line_text(node) for node in (loop.entry_loop, loop.step_loop))


def merge_paths(source: Source, loops: list[TrainingLoop]) -> TrainingLoop:
    """Backward calls on different paths of one training step (`if scaler is not None:
    scaler.scale(loss).backward() ... else: loss.backward() ...`): one loop whose
    hooks reach the optimizer step of every path."""
    first = loops[0]
    for other in loops[1:]:
        if (
            other.step_loop is not first.step_loop
            or other.backward_scope is not first.backward_scope
        ):
            raise AnalysisError(
                f"backward calls at lines {source.line(first.backward)} and "
                f"{source.line(other.backward)} run in different step loops or functions, "
                "and the training hooks would reach only one of them",
                path=source.path,
                line=source.line(other.backward),
                hint="run the tool on a file with one training step, or move the other one into another file",
            )
        for step in [other.optimizer_step, *other.other_steps]:
            if step is not first.optimizer_step and step not in first.other_steps:
                first.other_steps.append(step)
        if other.loss_statement is not first.loss_statement:
            first.alternatives.append(other)
    return first


def _constructions(index: Index) -> list[Found]:
    """What each assignment builds. A name re-bound to the same object (`model =
    model.to(device)`, `model = DDP(model)`, `model, opt = accelerator.prepare(model,
    opt)`, `model = build()` of a factory's `net = Net(); return net`) is one model,
    reported once, at the assignment that builds it outside a factory."""
    by_leaf: dict[int, list[tuple[Found, bool]]] = {}
    src = index.source
    for assignments in index.assignments.values():
        for a in assignments:
            owner = index.class_of(a.scope)
            if owner is not None and kinds.is_model_class(index, owner):
                continue  # the layers a model builds for itself
            for leaf, _ in wraps.values_through_wraps(index, a.value, a.scope):
                if leaf not in src.positions:
                    continue
                kind = _kind(index, leaf)
                if kind is not None and kind[0] == "model" and kinds.names_a_criterion(a.target):
                    break  # `criterion_kd = Similarity()`: a loss module, not a model
                if kind is not None:
                    found = Found(kind[0], kind[1], src.line(a.statement), a.target, a.statement)
                    by_leaf.setdefault(id(leaf), []).append((found, _returned(index, a)))
                    break
    found = [_representative(group) for group in by_leaf.values()]
    found.sort(key=lambda f: (f.line, f.kind))
    unique: dict[tuple[int, cst.Module, str], Found] = {}
    for f in found:  # one per line and kind
        unique.setdefault((f.line, src.module_of(f.node), f.kind), f)
    return list(unique.values())


def _returned(index: Index, a: Assignment) -> bool:
    """`a` assigns a name its function returns (a factory's local)."""
    if not isinstance(a.scope, cst.FunctionDef):
        return False
    return any(
        r.value is not None and index.source.code(r.value) == a.target
        for r in iter_returns(a.scope)
    )


def _representative(group: list[tuple[Found, bool]]) -> Found:
    outside = [f for f, in_factory in group if not in_factory] or [f for f, _ in group]
    return min(outside, key=lambda f: f.line)


def _kind(index: Index, leaf: cst.BaseExpression) -> tuple[str, str] | None:
    name = kinds.callee(index, leaf) or ""
    if (what := kinds.model_kind(index, leaf)) is not None:
        return "model", what
    if kinds.is_scheduler(index, leaf):
        return "scheduler", name
    if kinds.is_optimizer(index, leaf):
        return "optimizer", name
    if kinds.is_dataloader(index, leaf):
        return "dataloader", name
    if kinds.is_grad_scaler(index, leaf):
        return "scaler", name
    return None


def _existing_compression(index: Index, own: OwnCompression | None) -> int | None:
    return own.line if own is not None else inserted_marker_line(index.source)


def inserted_marker_line(source: Source) -> int | None:
    """The first line the tool inserted (it carries the marker), in any file of `source`:
    a run that finds one does nothing (found from the text alone, before any analysis)."""
    for part in source.parts:
        if "neural-coder" not in part.text:
            continue
        for number, line in enumerate(part.text.splitlines(), start=1):
            if INSERTED_MARKER.search(line):
                return source.numbered(part, number)
    return None


def _outside_trainer_classes(index: Index, calls: list[cst.Call]) -> list[cst.Call]:
    """Backward calls a Trainer subclass makes in its own methods belong to the Trainer's loop."""
    subclasses = trainer_bases(index)
    return [
        call
        for call in calls
        if (cls := index.class_of(index.scope_of(call))) is None or cls.name.value not in subclasses
    ]
