"""Multi-shot pipelines on the coder side: the syntax, the config forms, what is inserted
(before/after), the second run, and the refusals."""

from __future__ import annotations

from pathlib import Path

import pytest

from neural_coder.api import rewrite_source
from neural_coder.errors import AnalysisError, ConfigError, NeuralCoderError
from neural_coder.options import build_options, load_config_file
from neural_coder.report import Status
from neural_coder.revert import revert_source
from tests.conftest import run_cli, script_path

SAMPLE = "multishot_cnn.py"


def rewrite(approach: str, text: str | None = None, **config: object) -> str:
    options = build_options(approach, None, config, {"distillation": {"teacher": "copy"}})
    source = text if text is not None else script_path(SAMPLE).read_text()
    rewritten, report = rewrite_source(Path(SAMPLE), source, options)
    assert report.status is Status.TRANSFORMED, report.message
    again, second = rewrite_source(Path(SAMPLE), rewritten, options)
    assert second.status is Status.UNCHANGED and again == rewritten
    return rewritten


@pytest.mark.parametrize(
    ("text", "stages", "fit"),
    [
        ("distillation>pruning>qat", ("distillation", "pruning", "qat"), None),
        ("pruning-then-qat", ("pruning", "qat"), None),
        ("Distillation then Pruning", ("distillation", "pruning"), None),
        (" distillation > qat ", ("distillation", "qat"), None),
        ("pruning>ptq-static", ("pruning",), "ptq-static"),
        ("distillation-then-pruning-then-bf16", ("distillation", "pruning"), "bf16"),
    ],
)
def test_pipeline_syntax(text, stages, fit):
    options = build_options(text, None, {}, {})
    assert options.approach == stages
    assert options.then_fit == fit
    assert options.staged == (len(stages) > 1)
    assert options.name == ">".join(stages + ((fit,) if fit else ()))


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("qat>pruning", "qat must be the last training stage"),
        ("pruning+qat>ptq-static", "mixes '\\+'"),
        ("pruning>", "empty stage"),
        ("ptq-static>pruning", "only the last stage"),
        ("pruning>qat>ptq-static", "already quantized"),
        ("pruning>benchmark", "it measures"),
        ("pruning>pruning", "twice"),
        ("sparsify>qat", "unknown stage 'sparsify'"),
        ("ptq-static+pruning", "a pipeline that trains then fits"),
    ],
)
def test_bad_pipelines_are_usage_errors(text, why):
    with pytest.raises(ConfigError, match=why):
        build_options(text, None, {}, {})


def test_bad_syntax_on_the_command_line_exits_2_and_leaves_the_file(tmp_path):
    script = tmp_path / SAMPLE
    script.write_text(script_path(SAMPLE).read_text())
    result = run_cli("optimize", script, "--approach", "qat>distillation")
    assert result.exit_code == 2
    assert "qat must be the last training stage" in result.output
    result = run_cli("optimize", script, "-a", "pruning>qat", "--stage-epochs", "2,x")
    assert result.exit_code == 2 and "comma-separated integers" in result.output
    result = run_cli("optimize", script, "-a", "pruning+qat", "--stage-epochs", "2,1")
    assert result.exit_code == 2 and "multi-shot" in result.output
    result = run_cli("optimize", script, "-a", "pruning>qat", "--stage-epochs", "1,1,1")
    assert result.exit_code == 2 and "3 counts for the 2 training stages" in result.output
    result = run_cli("optimize", script, "-a", "pruning>qat", "--target", "inc")
    assert result.exit_code == 2 and "use --target runtime" in result.output
    assert script.read_text() == script_path(SAMPLE).read_text()


def test_config_pipeline_list_with_epochs(tmp_path):
    config = tmp_path / "compress.yaml"
    config.write_text(
        "pipeline:\n  - distillation: 2\n  - pruning: 1\n  - ptq-static\nptq:\n  max_trials: 3\n"
    )
    options = build_options(None, None, load_config_file(config), {})
    assert options.approach == ("distillation", "pruning")
    assert options.stage_epochs == (2, 1) and options.then_fit == "ptq-static"
    config.write_text("pipeline: [pruning, qat]\nstage_epochs: [3, 1]\n")
    options = build_options(None, None, load_config_file(config), {})
    assert options.approach == ("pruning", "qat") and options.stage_epochs == (3, 1)
    config.write_text("approach: distillation>qat\n")
    assert build_options(None, None, load_config_file(config), {}).staged
    for bad, why in [
        ("pipeline: pruning\n", "must be a list"),
        ("pipeline: [{pruning: 2}, qat]\n", "some training stages only"),
        ("pipeline: [pruning, qat]\napproach: qat\n", "not both"),
    ]:
        config.write_text(bad)
        with pytest.raises(ConfigError, match=why):
            build_options(None, None, load_config_file(config), {})


def test_staged_hooks_wrap_the_configs_in_a_pipeline_split_by_the_scripts_epochs():
    text = rewrite("distillation>pruning>qat")
    assert "from neural_coder.runtime.training import PipelineConfig, prepare_compression" in text
    assert "epochs=args.epochs," in text
    assert "steps_per_epoch=len(train_loader)," in text
    # the order of the stages is the order of the configs
    d, p, q = (
        text.index(f"{name}(")
        for name in ("DistillationConfig", "WeightPruningConfig", "QuantizationAwareTrainingConfig")
    )
    assert d < p < q
    assert "model = compression_manager.model  # neural-coder" in text
    assert "fit_pruning_schedules" not in text  # the pipeline fits the pruning stage itself


def test_a_split_given_replaces_the_even_split_and_an_end_step_is_kept():
    options = build_options(
        "pruning>qat",
        None,
        {"stage_epochs": [2, 1]},
        {"pruning": {"end_step": 5}},
    )
    text, _ = rewrite_source(Path(SAMPLE), script_path(SAMPLE).read_text(), options)
    assert "stage_epochs=[2, 1]" in text and "epochs=args.epochs" not in text
    assert "end_step=5" in text and "fit_pruning_schedule=False" in text


def test_training_then_fit_inserts_the_hooks_and_a_fit_on_the_trained_model():
    text = rewrite("pruning>ptq-static")
    end = text.index("compression_manager.callbacks.on_train_end()")
    fit = text.index("quantized_model = quantization.fit(")
    use = text.index('print("accuracy", evaluate(model, val_loader))')
    assert end < fit < use  # fit after training, its result is what is evaluated and saved
    assert "model = quantized_model if quantized_model is not None else model" in text
    assert "PipelineConfig" not in text  # one training stage: plain hooks
    assert "end_step=max(1, int(0.8 * (args.epochs * len(train_loader))))" in text


def test_a_pipeline_needs_an_epoch_loop():
    flat = (
        script_path(SAMPLE)
        .read_text()
        .replace("    for epoch in range(args.epochs):\n        model.train()\n", "    if True:\n")
    )
    options = build_options("pruning>qat", None, {}, {})
    with pytest.raises(AnalysisError, match="no epoch loop"):
        rewrite_source(Path(SAMPLE), flat, options)


def test_unknown_epoch_count_asks_for_the_split():
    text = (
        script_path(SAMPLE)
        .read_text()
        .replace("for epoch in range(args.epochs):", "for epoch in epoch_plan(args):")
    )
    text = text.replace(
        "def main():", "def epoch_plan(args):\n    return range(args.epochs)\n\n\ndef main():"
    )
    options = build_options("pruning>qat", None, {}, {})
    with pytest.raises(AnalysisError, match="--stage-epochs 1,1"):
        rewrite_source(Path(SAMPLE), text, options)
    options = build_options("pruning>qat", None, {"stage_epochs": [1, 2]}, {})
    rewritten, report = rewrite_source(Path(SAMPLE), text, options)
    assert report.status is Status.TRANSFORMED and "stage_epochs=[1, 2]" in rewritten


def test_a_trainer_refuses_staged_training():
    options = build_options("distillation>pruning", None, {}, {"distillation": {"teacher": "copy"}})
    with pytest.raises(AnalysisError, match="runs its own"):
        rewrite_source(Path("hf_trainer.py"), script_path("hf_trainer.py").read_text(), options)


def test_already_compressed_with_another_pipeline_is_refused():
    text = rewrite("pruning>ptq-static")
    other = build_options("distillation>qat", None, {}, {"distillation": {"teacher": "copy"}})
    with pytest.raises(NeuralCoderError, match="already compressed with pruning\\+ptq"):
        rewrite_source(Path(SAMPLE), text, other)


@pytest.mark.parametrize(
    ("approach", "config"),
    [
        ("distillation>pruning>qat", {}),
        ("pruning>ptq-static", {}),
        ("distillation>pruning>ptq-dynamic", {"stage_epochs": [2, 1]}),
    ],
)
def test_revert_gives_back_the_original(approach, config):
    original = script_path(SAMPLE).read_text()
    rewritten = rewrite(approach, **config)
    reverted, report = revert_source(Path(SAMPLE), rewritten)
    assert reverted == original, report.message
    assert approach in report.message


def test_a_trainer_trains_one_stage_then_the_model_it_trained_is_fitted():
    options = build_options("pruning>ptq-dynamic", None, {}, {})
    source = script_path("hf_trainer.py").read_text()
    text, report = rewrite_source(Path("hf_trainer.py"), source, options)
    assert report.status is Status.TRANSFORMED
    assert "CompressionCallback(compression_manager, prune_until=0.8)" in text
    train = text.index("trainer.train(")
    fit = text.index("quantization.fit(")
    assert train < fit and "use_quantized_model(trainer, quantized_model)" in text
    again, second = rewrite_source(Path("hf_trainer.py"), text, options)
    assert second.status is Status.UNCHANGED and again == text
