"""`transformers.pipeline(task, model=q_model)` with the runtime's `Model` wrapper.

A pipeline checks that its model's class is one the task supports, by the class's
name; the wrapper's name is `Model`, so the check logged "The model 'Model' is not
supported for <task>" although the wrapped (int8) module is a supported class and
the pipeline runs it. The check is made to look at the wrapped module instead; a
pipeline over any other model is checked as before.

Installed when a wrapper is made or read from while `transformers.pipelines` is
imported (a script that builds a pipeline has imported it by then); transformers
itself is never imported from here, so the runtime still imports with torch alone.
"""

from __future__ import annotations

import functools
import sys
from typing import Any

_PIPELINES = "transformers.pipelines.base"
_installed = False


def check_the_wrapped_model(wrapper_class: type) -> None:
    """Make `Pipeline.check_model_type` read the inner class of a model wrapped by
    `wrapper_class` (the runtime's `Model`, passed in: model.py imports this module)."""
    global _installed
    if _installed:
        return
    module = sys.modules.get(_PIPELINES)
    if module is None:
        return
    pipeline = getattr(module, "Pipeline", None)
    check = getattr(pipeline, "check_model_type", None)
    if check is None:  # another transformers version: nothing to adapt
        _installed = True
        return

    @functools.wraps(check)
    def check_model_type(self: Any, supported_models: Any) -> Any:
        wrapper = self.__dict__.get("model")
        if not isinstance(wrapper, wrapper_class):
            return check(self, supported_models)
        self.model = wrapper.model  # the check reads `self.model.__class__.__name__`
        try:
            return check(self, supported_models)
        finally:
            self.model = wrapper

    pipeline.check_model_type = check_model_type
    _installed = True
