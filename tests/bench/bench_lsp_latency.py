"""Diagnostic latency of `neural-coder lsp` after an edit in a large file, against the CLI's
rewrite of the same file.

Not collected by pytest. Run: .venv/bin/python tests/bench/bench_lsp_latency.py [LINES]
The file is a training script (samples/step_budget_loop.py) grown to LINES lines (default
5000) with helper functions of the kind real scripts carry (data munging, metrics, logging).
A real LSP client (pygls) opens it, then types: each change is a didChange, and the time to
the matching publishDiagnostics is measured (it includes the server's debounce, printed
apart). The CLI figure is `neural-coder optimize --approach pruning -o` on the same file,
process start included, and `rewrite_source` alone in this process.
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types
from pygls.lsp.client import LanguageClient

from neural_coder.api import rewrite_source
from neural_coder.lsp.server import DEBOUNCE_S
from neural_coder.options import build_options

REPO = Path(__file__).resolve().parents[2]
NEURAL_CODER = str(Path(sys.executable).with_name("neural-coder"))

HELPER = '''

def summarize_batch_{n}(batch, labels, threshold={n} / 1000):
    """Per-class counts and a running mean, as scripts compute for their logs."""
    counts = {{}}
    total = 0.0
    for row, label in zip(batch, labels):
        key = int(label)
        counts[key] = counts.get(key, 0) + 1
        value = float(row.abs().mean())
        if value > threshold:
            total += value
        else:
            total -= value / 2
    ratio = total / max(len(labels), 1)
    message = f"batch {n}: {{len(counts)}} classes, ratio {{ratio:.3f}}"
    return counts, ratio, message
'''


def large_script(lines: int) -> str:
    base = (REPO / "samples" / "step_budget_loop.py").read_text()
    head, tail = base.split("\n\ndef run():", 1)
    helpers, n = [], 0
    while (head + "".join(helpers) + tail).count("\n") < lines:
        helpers.append(HELPER.format(n=n))
        n += 1
    return head + "".join(helpers) + "\n\ndef run():" + tail


async def lsp_latencies(path: Path, text: str, edits: int) -> tuple[float, list[float]]:
    client = LanguageClient("bench", "1")
    published: asyncio.Queue = asyncio.Queue()

    @client.feature(types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params: types.PublishDiagnosticsParams) -> None:
        published.put_nowait((time.perf_counter(), params))

    await client.start_io(NEURAL_CODER, "lsp")
    await client.initialize_async(types.InitializeParams(capabilities=types.ClientCapabilities()))
    client.initialized(types.InitializedParams())
    uri = path.as_uri()
    start = time.perf_counter()
    client.text_document_did_open(
        types.DidOpenTextDocumentParams(
            text_document=types.TextDocumentItem(uri=uri, language_id="python", version=1, text=text)
        )
    )
    done, params = await published.get()
    assert params.diagnostics, "the large file should get its training-loop hint"
    first = done - start
    latencies = []
    lines = text.splitlines(keepends=True)
    target = next(i for i, line in enumerate(lines) if "MAX_STEPS = " in line)
    for version in range(2, 2 + edits):
        lines[target] = f"MAX_STEPS = {40 + version}\n"  # one keystroke's worth of change
        start = time.perf_counter()
        client.text_document_did_change(
            types.DidChangeTextDocumentParams(
                text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[types.TextDocumentContentChangeWholeDocument(text="".join(lines))],
            )
        )
        while True:
            done, params = await published.get()
            if params.version == version:
                break
        latencies.append(done - start)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return first, latencies


def main() -> None:
    lines = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big_train.py"
        text = large_script(lines)
        path.write_text(text)
        print(f"{path.name}: {text.count(chr(10))} lines, {len(text) / 1000:.0f} kB")

        first, latencies = asyncio.run(lsp_latencies(path, text, edits=5))
        median = statistics.median(latencies)

        cli = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run(
                [NEURAL_CODER, "optimize", str(path), "-a", "pruning", "-o", str(path) + ".out"],
                check=True, capture_output=True,
            )  # fmt: skip
            cli.append(time.perf_counter() - start)
        engine = []
        options = build_options("pruning", None, {}, {})
        for _ in range(3):
            start = time.perf_counter()
            rewrite_source(path, text, options)
            engine.append(time.perf_counter() - start)

    cli_median, engine_median = statistics.median(cli), statistics.median(engine)
    print(f"lsp: diagnostics after didOpen              {first:6.2f} s")
    print(f"lsp: diagnostics after a didChange (median) {median:6.2f} s "
          f"(of which debounce {DEBOUNCE_S:.2f} s; all: {', '.join(f'{x:.2f}' for x in latencies)})")  # fmt: skip
    print(f"cli: neural-coder optimize -a pruning       {cli_median:6.2f} s (process start included)")
    print(f"engine: rewrite_source alone                {engine_median:6.2f} s")
    print(f"ratio lsp change latency / cli rewrite      {median / cli_median:6.2f}")
    print(f"ratio lsp change latency / rewrite_source   {median / engine_median:6.2f}")


if __name__ == "__main__":
    main()
