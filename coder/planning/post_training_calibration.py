"""The data the fit takes batches from: the DataLoader the script's evaluation reads (or
one in reach of the fit, or the loader an evaluation builds inside itself, rebuilt at the
fit), and the refusals when there is none. A part of `PostTrainingPlanner` (post_training.py).
"""

from __future__ import annotations

import libcst as cst

from neural_coder.analysis import (
    batch_function,
    evaluation,
    loader_rebuild,
    loaders,
    loop_feed,
    saved_output,
)
from neural_coder.analysis.final_model import FinalModel
from neural_coder.analysis.index import Function
from neural_coder.errors import AnalysisError
from neural_coder.transforms import match as m

from .post_training_fit_call import FitCall

#: iterables of a loop that are not batches (`for step, lr in zip(range(n), lrs)`)
NOT_BATCHES = frozenset({"range", "zip", "enumerate", "itertools.count", "count"})


class CalibrationData(FitCall):
    """A part of `PostTrainingPlanner` (post_training.py): the calibration loader."""

    #: why the script's batch function cannot feed the fit (`; get_batch(...) ...`)
    no_feed: str = ""

    def _bf16_needs_a_batch(self, evaluated: bool) -> bool:
        """The runtime converts only the modules it measures faster in bf16; without an
        evaluation, the fit needs a loader to take a batch from (INC converts unmeasured)."""
        return self.approach == "bf16" and not evaluated and self.options.target != "inc"

    @staticmethod
    def _evaluates_by_generating(
        found: tuple[evaluation.Evaluation, dict[str, str]] | None,
    ) -> bool:
        """The evaluation runs the model through `.generate(...)`: the runtime measures bf16 on
        a plain forward call, and every forward call inside `generate()` carries the
        generation's state (a cache, the encoder's output), so none of them can be replayed."""
        if found is None:
            return False
        return any(
            m.matches(call.func, m.Attribute(attr=m.Name("generate")))
            for call in m.findall(found[0].function.node, m.Call())
        )

    def _refuse_bf16_without_a_batch(self, anchor: cst.CSTNode, where: str) -> None:
        line = self.src.line(anchor) + (1 if where == "after" else 0)
        raise AnalysisError(
            "bf16 converts only the modules it measures faster in bf16, which needs a batch: "
            f"no evaluation of the model and no DataLoader is in reach of line {line}, so the "
            f"fit would keep the fp32 model{self.no_feed}",
            path=self.src.path,
            line=line,
            hint="build a DataLoader (or add a function that evaluates the model) before that "
            "line, or use --target inc, which converts without measuring",
        )

    def _loader(
        self,
        found: tuple[evaluation.Evaluation, dict[str, str]] | None,
        place: FinalModel,
        required: bool = True,
    ) -> str | None:
        line = self.src.line(place.anchor) + (1 if place.where == "after" else 0)
        in_reach = loaders.visible_loaders(self.index, place.scope, line)
        if found is not None:
            chosen, substitutions = found
            for arg in chosen.call.args:
                text = self.src.code(arg.value)
                text = substitutions.get(text, text)
                if text in in_reach:
                    return self._shaped_like_the_loop(text, found, place)
        if in_reach:
            return self._shaped_like_the_loop(in_reach[0], found, place)
        rebuilt = self._loader_rebuilt(found, place, line)
        if rebuilt is not None:
            return self._shaped_like_the_loop(rebuilt, found, place)
        fed = self._batch_function_loader(place, line)
        if fed is not None:
            return fed
        listed = self._batches_the_loop_iterates(place, line)
        if listed is not None:
            return self._shaped_like_the_loop(listed, found, place)
        if not required:
            return None
        what = "benchmarking" if self.approach == "benchmark" else "static quantization"
        own = self._loader_out_of_reach(found, place, line)
        raise AnalysisError(
            f"{what} needs data, but no DataLoader is in reach of line {line} "
            f"({self.index.describe(place.scope)}){own}{self.no_feed}",
            path=self.src.path,
            line=line,
            hint="build the DataLoader before the model is evaluated"
            + (" (the same builder, called before that line)" if own else "")
            + ("" if self.approach == "benchmark" else ", or use --approach ptq-dynamic"),
        )

    def _batches_the_loop_iterates(self, place: FinalModel, line: int) -> str | None:
        """`train_batches` of `for anchor, positive, negative in train_batches:`: the
        training loop's own iterable, a name in reach of the fit that is no DataLoader (a
        list of batch tuples built by the script), whose items the loop unpacks as batches."""
        loop = self.facts.loop
        step = loop.step_loop if loop is not None else None
        if not isinstance(step, cst.For) or not isinstance(step.target, cst.Tuple | cst.List):
            return None
        if not isinstance(step.iter, cst.Name):
            return None
        name = step.iter.value
        if not saved_output.in_reach(self.index, name, place.scope, line):
            return None
        if any(
            isinstance(leaf, cst.Call) and self.src.code(leaf.func) in NOT_BATCHES
            for leaf, _ in self.index.values_of(step.iter, self.index.scope_of(step))
        ):
            return None
        self.plan.placed.append(
            f"calib_dataloader: {name}, the batches the training loop at line "
            f"{self.src.line(step)} iterates (no DataLoader is in reach)"
        )
        return name

    def _shaped_like_the_loop(
        self,
        loader: str,
        found: tuple[evaluation.Evaluation, dict[str, str]] | None,
        place: FinalModel,
    ) -> str:
        """`loader`, read through a generator that feeds each batch so the model is called
        as the training loop (else the evaluation `found`) calls it, where the runtime's
        own rule would not (analysis/loop_feed.py). Not for benchmarking (it reads its loader more than
        once) nor for INC (its fit needs the DataLoader itself)."""
        if self.facts.loop is None and found is None:
            self._refuse_an_input_no_batch_holds(place)
        if self.approach == "benchmark" or self.options.target == "inc":
            return loader
        loop = self.facts.loop
        if loop is not None:
            fit_at = (place.scope, self.src.line(place.anchor))
            shape, who = loop_feed.loop_shape(self.index, loop, fit_at), "the training loop"
        elif found is not None:
            chosen = found[0]
            shape = loop_feed.evaluation_shape(self.index, chosen.function, chosen.model_param)
            who = f"{chosen.function.key}()"
        else:
            shape, who = self._shape_of_a_prediction(place)
        if shape is None:
            return loader
        self.plan.placed.append(
            f"calib_dataloader: the batches of {loader}, each fed as {shape.item} so the model "
            f"is called as {who} calls it at line {shape.line} (a plain batch "
            "would give the model only its first item, or a dict as keyword inputs)"
        )
        return shape.loader(loader)

    def _shape_of_a_prediction(self, place: FinalModel) -> tuple[loop_feed.LoopShape | None, str]:
        """No training loop and no metric: how the first function the model is handed to
        after the fit (`preds = predict(model, test_loader)`, returning predictions) calls
        it on its batches."""
        line = self.src.line(place.anchor) + (1 if place.where == "after" else 0)
        for call, fn in self._functions_handed_the_model(None, place, line):
            for param, value in self.index.bind_arguments(call, fn).items():
                if self.src.code(value) == place.model:
                    shape = loop_feed.evaluation_shape(self.index, fn, param)
                    if shape is not None:
                        return shape, f"{fn.key}()"
        direct = self._loop_after_the_fit(place)
        if direct is not None:
            return loop_feed.call_shape(self.index, *direct, place.scope), "the loop"
        return None, ""

    def _loop_after_the_fit(self, place: FinalModel) -> tuple[cst.Call, cst.For] | None:
        """The first call of the model itself, in a loop of the fit's scope, after the fit."""
        line = self.src.line(place.anchor) + (1 if place.where == "after" else 0)
        return loop_feed.loop_call_after(self.index, place.scope, place.model, line - 1)

    def _refuse_an_input_no_batch_holds(self, place: FinalModel) -> None:
        """No training loop and no evaluation function: the loop after the fit calls the
        model with an input no batch holds (`output, h = net(inputs, h)`, a state carried
        from batch to batch), so no loader's batch calls it that way."""
        direct = self._loop_after_the_fit(place)
        if direct is None:
            return
        carried = loop_feed.call_input_not_from_the_batch(self.index, *direct, place.scope)
        if carried is None:
            return
        at, value = carried
        uses = {
            "bf16": "bf16 times its modules on",
            "benchmark": "benchmarking runs the model on",
        }.get(self.approach, "static quantization calibrates on")
        raise AnalysisError(
            f"the loop calls the model at line {at} with {value}, which no batch of a loader "
            f"holds (the loop computes it or carries it from batch to batch): {uses} the "
            "loader's batches alone, which would not call the model this way",
            path=self.src.path,
            line=at,
            hint="use --approach ptq-dynamic, which needs no data, or move the loop into a "
            "function that takes the model and returns a metric (the fit then runs it)",
        )

    def _input_computed_in_the_loop(
        self, place: FinalModel, found: tuple[evaluation.Evaluation, dict[str, str]] | None
    ) -> str | None:
        """Why a loader's batches cannot calibrate: the training loop (else the evaluation
        `found`) gives its model an input computed in the loop (`create_mask(src, tgt)`,
        a recurrent state `net(inputs, h)`), which no batch holds and no feeding rule
        rebuilds; None when they can (or for INC, whose fit is left as it was)."""
        if self.options.target == "inc":
            return None
        loop = self.facts.loop
        if loop is not None:
            fit_at = (place.scope, self.src.line(place.anchor))
            computed = loop_feed.input_not_from_the_batch(self.index, loop, fit_at)
            who = "the training loop"
        elif found is not None:
            computed = self._evaluation_input_not_from_the_batch(found[0])
            who = f"{found[0].function.key}()"
        else:
            return None
        if computed is None:
            return None
        line, value = computed
        return (
            f"{who} calls the model at line {line} with {value}, computed in "
            "the loop, which no batch of a loader gives"
        )

    def _evaluation_input_not_from_the_batch(
        self, chosen: evaluation.Evaluation
    ) -> tuple[int, str] | None:
        fn = chosen.function.node
        direct = loop_feed.loop_call_after(self.index, fn, chosen.model_param, 0)
        if direct is None:
            return None
        return loop_feed.call_input_not_from_the_batch(self.index, *direct, fn)

    def _batch_function_loader(self, place: FinalModel, line: int) -> str | None:
        """Batches drawn at the fit from the call that feeds the training loop's model
        (analysis/batch_function.py), as a generator the fit reads lazily: at most
        `calibration_sampling_size` batches for calibration (it stops once it has that
        many samples), one for bf16's timing."""
        loop = self.facts.loop
        if loop is None or self.approach == "benchmark":
            return None
        try:
            fed = batch_function.feed(self.index, loop, place.scope, line)
        except batch_function.NoFeed as why:
            self.no_feed = f"; the script's batch call cannot feed it: {why}"
            return None
        if fed is None:
            return None
        if self.options.target == "inc":
            self.no_feed = (
                f"; {fed.call} (line {fed.at}) gives batches, but INC's fit needs a DataLoader "
                "with a batch_size (use --target runtime)"
            )
            return None
        if self.quant_approach is not None:
            count = self.options.ptq.calibration_sampling_size
            read = f"read lazily until calibration_sampling_size={count} samples"
        else:
            count, read = 1, "one batch to time the bf16 candidates"
        self.plan.placed.append(
            f"calib_dataloader: up to {count} batch(es) of {fed.describe()}, the script's own batch call "
            f"({fed.why}), made at the fit ({read}): no DataLoader is in reach"
        )
        return fed.loader(count)

    def _loader_rebuilt(
        self,
        found: tuple[evaluation.Evaluation, dict[str, str]] | None,
        place: FinalModel,
        line: int,
    ) -> str | None:
        """The call that builds, at the fit, the loader the evaluation (or a function the
        model is handed to from `line` on) builds inside itself (see loader_rebuild)."""
        for call, fn in self._functions_handed_the_model(found, place, line):
            if self.index.scope_of(call) is not place.scope:
                continue
            rebuilt = loader_rebuild.rebuilt_loader(self.index, call, fn, place.scope, line)
            if rebuilt is not None:
                code, inside = rebuilt
                self.plan.placed.append(
                    f"calib_dataloader: {code}, the loader {fn.key}() builds inside "
                    f"(line {self.src.line(inside)}), built at the fit"
                )
                return code
        return None

    def _functions_handed_the_model(
        self,
        found: tuple[evaluation.Evaluation, dict[str, str]] | None,
        place: FinalModel,
        line: int,
    ) -> list[tuple[cst.Call, Function]]:
        """The evaluation's call and function; without one, the calls of `place.scope` from
        `line` on that hand the model to a function of the project."""
        if found is not None:
            return [(found[0].call, found[0].function)]
        return [
            (call, fn)
            for call in self.index.calls
            if self.index.scope_of(call) is place.scope
            and self.src.line(call) >= line
            and any(self.src.code(a.value) == place.model for a in call.args)
            and (fn := self.index.resolve_call(call)) is not None
        ]

    def _loader_out_of_reach(
        self,
        found: tuple[evaluation.Evaluation, dict[str, str]] | None,
        place: FinalModel,
        line: int,
    ) -> str:
        """`: do_test() builds its own inside (...)` when the evaluation, or a function
        the model is handed to from `line` on, builds its loader where the fit cannot
        reach it (`data_loader = build_detection_test_loader(cfg, name)`)."""
        for _call, fn in self._functions_handed_the_model(found, place, line):
            inside = loaders.loader_built_inside(self.index, fn.node)
            if inside is not None:
                return (
                    f": {fn.key}() builds its own inside ({self.src.code(inside).strip()} at "
                    f"line {self.src.line(inside)}), out of the fit's reach"
                )
        return ""
