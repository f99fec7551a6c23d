// Activation logic against a stub of the `vscode` API (VS Code itself cannot be run here).
// Run: npm test (compiles src/ to out/ first).
const test = require("node:test");
const assert = require("node:assert/strict");
const path = require("node:path");

const core = require("../out/core.js");
const manifest = require("../package.json");

function stubVscode({ settings = {}, python = undefined } = {}) {
  const registered = new Map();
  const shown = [];
  const lines = [];
  const api = {
    workspace: {
      getConfiguration: (section) => ({
        get: (key) => settings[`${section}.${key}`],
      }),
    },
    extensions: { getExtension: (id) => (id === "ms-python.python" ? python : undefined) },
    window: {
      createOutputChannel: (name) => ({ name, appendLine: (l) => lines.push(l), show: () => shown.push("output"), dispose() {} }),
      showErrorMessage: (m) => shown.push(["error", m]),
      showWarningMessage: (m) => shown.push(["warning", m]),
      showInformationMessage: (m) => shown.push(["info", m]),
      activeTextEditor: { document: { uri: { toString: () => "file:///w/train.py" } } },
    },
    commands: {
      registerCommand: (id, fn) => {
        assert.ok(!registered.has(id), `registered twice: ${id}`);
        registered.set(id, fn);
        return { dispose() {} };
      },
    },
  };
  return { api, registered, shown, lines };
}

function stubClient(answer = { applied: true, message: "pruning hooks inserted" }) {
  const made = [];
  const factory = (server, output) => {
    const client = {
      server, output, started: 0, stopped: 0, requests: [],
      async start() { this.started += 1; },
      async stop() { this.stopped += 1; },
      async sendRequest(method, params) { this.requests.push([method, params]); return answer; },
    };
    made.push(client);
    return client;
  };
  return { factory, made };
}

const context = () => ({ subscriptions: [] });

test("the interpreter comes from the setting first", async () => {
  const python = { isActive: true, exports: { environments: { getActiveEnvironmentPath: () => ({ path: "/venv/bin/python" }) } } };
  const { api } = stubVscode({ settings: { "neuralCoder.interpreter": "/opt/py/bin/python3" }, python });
  assert.deepEqual(await core.resolveInterpreter(api), { path: "/opt/py/bin/python3", from: "the neuralCoder.interpreter setting" });
});

test("then from the Python extension's selected environment, resolved to its executable", async () => {
  let activated = 0;
  const python = {
    isActive: false,
    activate: async () => {
      activated += 1;
      return {
        environments: {
          getActiveEnvironmentPath: () => ({ path: "/proj/.venv" }),
          resolveEnvironment: async () => ({ executable: { uri: { fsPath: "/proj/.venv/bin/python" } } }),
        },
      };
    },
  };
  const { api } = stubVscode({ python });
  assert.deepEqual(await core.resolveInterpreter(api), { path: "/proj/.venv/bin/python", from: "the Python extension's selected interpreter" });
  assert.equal(activated, 1);
});

test("then python3, also when the Python extension throws", async () => {
  const python = { isActive: false, activate: async () => { throw new Error("broken"); } };
  assert.equal((await core.resolveInterpreter(stubVscode({ python }).api)).path, "python3");
  assert.equal((await core.resolveInterpreter(stubVscode().api)).path, "python3");
});

test("activation starts the server with the interpreter and registers every manifest command", async () => {
  const { api, registered, lines } = stubVscode({ settings: { "neuralCoder.interpreter": "/venv/bin/python" } });
  const { factory, made } = stubClient();
  const ctx = context();
  await core.activateWith(api, ctx, factory);
  assert.equal(made.length, 1);
  assert.deepEqual(made[0].server, { command: "/venv/bin/python", args: ["-m", "neural_coder", "lsp"] });
  assert.equal(made[0].started, 1);
  assert.equal(made[0].output.name, "Neural Coder");
  assert.match(lines[0], /Starting \/venv\/bin\/python -m neural_coder lsp/);
  const declared = manifest.contributes.commands.map((c) => c.command).sort();
  assert.deepEqual([...registered.keys()].sort(), declared);
  const inSubmenu = manifest.contributes.menus["neuralCoder.submenu"].map((m) => m.command).sort();
  assert.deepEqual(inSubmenu, [...core.APPROACHES.map(core.commandId), core.AUTO_COMMAND].sort());
  assert.equal(manifest.contributes.menus["editor/title"][0].submenu, "neuralCoder.submenu");
});

test("a submenu entry asks the server to rewrite the active buffer", async () => {
  const { api, registered, shown } = stubVscode();
  const { factory, made } = stubClient();
  await core.activateWith(api, context(), factory);
  await registered.get("neuralCoder.apply.pruning_qat")();
  await registered.get("neuralCoder.apply.migrate")();
  assert.deepEqual(made[0].requests, [
    ["workspace/executeCommand", { command: "neuralCoder.optimize", arguments: ["file:///w/train.py", "pruning+qat"] }],
    ["workspace/executeCommand", { command: "neuralCoder.migrate", arguments: ["file:///w/train.py"] }],
  ]);
  assert.deepEqual(shown[0], ["info", "Neural Coder: pruning hooks inserted"]);
});

test("the Auto entry runs the server's auto command; the table goes to the output", async () => {
  const table = "fp32: accuracy 1, latency p50/p90/p99 0.1/0.2/0.3 ms, 900.0 samples/s, 11.6 KiB, 1.00x\n" +
    "ptq-dynamic is the fastest (1.30x fp32 throughput, within 0.01 relative accuracy loss)";
  const { api, registered, shown, lines } = stubVscode();
  const { factory, made } = stubClient({ applied: true, winner: "ptq-dynamic", message: table, report: {} });
  await core.activateWith(api, context(), factory);
  await registered.get(core.AUTO_COMMAND)();
  assert.deepEqual(made[0].requests, [
    ["workspace/executeCommand", { command: "neuralCoder.auto", arguments: ["file:///w/train.py"] }],
  ]);
  assert.ok(lines.some((l) => l.includes("fp32: accuracy 1")));
  assert.equal(shown[0][0], "info");
  assert.match(shown[0][1], /ptq-dynamic is the fastest/);
  // from the notebook toolbar VS Code passes the notebook editor: the notebook is measured
  await registered.get(core.AUTO_COMMAND)({ notebookEditor: { notebookUri: { toString: () => "file:///w/nb.ipynb" } } });
  assert.deepEqual(made[0].requests[1], ["workspace/executeCommand", { command: "neuralCoder.auto", arguments: ["file:///w/nb.ipynb"] }]);
  assert.equal(manifest.contributes.menus["notebook/toolbar"][0].command, core.AUTO_COMMAND);
  const refused = stubClient({ applied: false, winner: null, message: "tiny.py: already compressed" });
  const second = stubVscode();
  await core.activateWith(second.api, context(), refused.factory);
  await second.registered.get(core.AUTO_COMMAND)();
  assert.deepEqual(second.shown[0], ["warning", "Neural Coder: tiny.py: already compressed"]);
  const settings = manifest.contributes.configuration.properties;
  assert.deepEqual(settings["neuralCoder.auto.approaches"].default, ["ptq-dynamic", "ptq-static", "bf16"]);
});

test("a refusal is shown as a warning; restart makes a new client", async () => {
  const { api, registered, shown } = stubVscode();
  const { factory, made } = stubClient({ applied: false, message: "train.py:3: no training loop" });
  await core.activateWith(api, context(), factory);
  await registered.get("neuralCoder.apply.qat")();
  assert.deepEqual(shown[0], ["warning", "Neural Coder: train.py:3: no training loop"]);
  await registered.get("neuralCoder.restartServer")();
  assert.equal(made[0].stopped, 1);
  assert.equal(made.length, 2);
  assert.equal(made[1].started, 1);
});

test("a server that does not start is reported, not thrown", async () => {
  const { api, shown } = stubVscode();
  const factory = (server) => ({ server, async start() { throw new Error("ENOENT"); }, async stop() {}, async sendRequest() {} });
  await core.activateWith(api, context(), factory);
  assert.equal(shown[0][0], "error");
  assert.match(shown[0][1], /pip install 'neural-coder\[lsp\]'/);
});

test("command ids match the server's approach names", () => {
  assert.equal(core.commandId("distillation+pruning+qat"), "neuralCoder.apply.distillation_pruning_qat");
  assert.equal(core.commandId("ptq-static"), "neuralCoder.apply.ptq_static");
  assert.ok(path.basename(manifest.main) === "extension.js");
});
