// The extension's logic, written against the `vscode` API it is given (the real one in
// extension.ts, a stub in the unit tests), so that it runs under node's test runner.
import type * as vscode from "vscode";

// as `neural-coder optimize --approach` spells them; "migrate" is `neural-coder migrate`
export const APPROACHES = [
  "qat",
  "pruning",
  "distillation",
  "pruning+qat",
  "distillation+qat",
  "distillation+pruning",
  "distillation+pruning+qat",
  "ptq-static",
  "ptq-dynamic",
  "bf16",
  "migrate",
] as const;

export function commandId(approach: string): string {
  return `neuralCoder.apply.${approach.replace(/[+-]/g, "_")}`;
}

// the server's workspace/executeCommand commands (coder/lsp/server.py)
export const SERVER_OPTIMIZE = "neuralCoder.optimize";
export const SERVER_MIGRATE = "neuralCoder.migrate";
export const SERVER_AUTO = "neuralCoder.auto";
// the submenu's "Auto" entry: the server measures every candidate and keeps the best
export const AUTO_COMMAND = "neuralCoder.apply.auto";

export interface PythonExtensionApi {
  environments?: {
    getActiveEnvironmentPath(resource?: unknown): { path: string } | undefined;
    resolveEnvironment?(env: { path: string }): Promise<{ executable: { uri?: { fsPath: string } } } | undefined>;
  };
}

/** The interpreter that runs the server: the `neuralCoder.interpreter` setting, else the one
 *  selected in the Python extension, else `python3` on PATH. */
export async function resolveInterpreter(api: typeof vscode): Promise<{ path: string; from: string }> {
  const configured = api.workspace.getConfiguration("neuralCoder").get<string>("interpreter");
  if (configured) {
    return { path: configured, from: "the neuralCoder.interpreter setting" };
  }
  const python = api.extensions.getExtension<PythonExtensionApi>("ms-python.python");
  if (python) {
    try {
      const exported = python.isActive ? python.exports : await python.activate();
      const environments = exported?.environments;
      const active = environments?.getActiveEnvironmentPath();
      if (active && environments) {
        const resolved = environments.resolveEnvironment ? await environments.resolveEnvironment(active) : undefined;
        const path = resolved?.executable.uri?.fsPath ?? active.path;
        if (path) {
          return { path, from: "the Python extension's selected interpreter" };
        }
      }
    } catch {
      // an older or broken Python extension: fall through to python3
    }
  }
  return { path: "python3", from: "PATH (no interpreter selected)" };
}

export interface Client {
  start(): Promise<void>;
  stop(): Promise<void>;
  sendRequest(method: string, params: unknown): Promise<unknown>;
}

export type ClientFactory = (
  serverCommand: { command: string; args: string[] },
  output: vscode.OutputChannel,
) => Client;

export const SERVER_ARGS = ["-m", "neural_coder", "lsp"];

/** Activation: output channel, the language client, one command per approach, restart. */
export async function activateWith(
  api: typeof vscode,
  context: vscode.ExtensionContext,
  makeClient: ClientFactory,
): Promise<{ client: () => Client }> {
  const output = api.window.createOutputChannel("Neural Coder");
  context.subscriptions.push(output);
  let client = await startClient(api, output, makeClient);

  for (const approach of APPROACHES) {
    context.subscriptions.push(
      api.commands.registerCommand(commandId(approach), (resource?: vscode.Uri) =>
        runApproach(api, client, output, approach, resource),
      ),
    );
  }
  context.subscriptions.push(
    api.commands.registerCommand(AUTO_COMMAND, (resource?: vscode.Uri | { notebookEditor?: { notebookUri?: vscode.Uri } }) =>
      runAuto(api, client, output, resource),
    ),
    api.commands.registerCommand("neuralCoder.showOutput", () => output.show()),
    api.commands.registerCommand("neuralCoder.restartServer", async () => {
      await client.stop();
      client = await startClient(api, output, makeClient);
    }),
    { dispose: () => void client.stop() },
  );
  return { client: () => client };
}

async function startClient(api: typeof vscode, output: vscode.OutputChannel, makeClient: ClientFactory): Promise<Client> {
  const interpreter = await resolveInterpreter(api);
  output.appendLine(`Starting ${interpreter.path} ${SERVER_ARGS.join(" ")} (interpreter from ${interpreter.from})`);
  const client = makeClient({ command: interpreter.path, args: SERVER_ARGS }, output);
  try {
    await client.start();
  } catch (error) {
    output.appendLine(`The server did not start: ${error}`);
    void api.window.showErrorMessage(
      `Neural Coder: the language server did not start with ${interpreter.path} ` +
        "(install it there with: pip install 'neural-coder[lsp]', or set neuralCoder.interpreter)",
    );
  }
  return client;
}

/** An editor-title submenu entry: the server rewrites the open buffer and applies the edit. */
export async function runApproach(
  api: typeof vscode,
  client: Client,
  output: vscode.OutputChannel,
  approach: string,
  resource?: vscode.Uri,
): Promise<void> {
  const uri = resource ?? api.window.activeTextEditor?.document.uri;
  if (!uri) {
    void api.window.showWarningMessage("Neural Coder: open a Python file first");
    return;
  }
  const params =
    approach === "migrate"
      ? { command: SERVER_MIGRATE, arguments: [uri.toString()] }
      : { command: SERVER_OPTIMIZE, arguments: [uri.toString(), approach] };
  output.appendLine(`${approach}: ${uri.toString()}`);
  const answer = (await client.sendRequest("workspace/executeCommand", params)) as
    | { applied: boolean; message: string }
    | undefined;
  const message = answer?.message ?? "no answer from the server";
  output.appendLine(`  ${answer?.applied ? "applied" : "not applied"}: ${message}`);
  if (answer?.applied) {
    void api.window.showInformationMessage(`Neural Coder: ${message}`);
  } else {
    void api.window.showWarningMessage(`Neural Coder: ${message}`);
  }
}

/** The "Auto" entry: `neural-coder auto` on the buffer through the server (which reports
 *  `$/progress` while the candidates run); the table goes to the output channel. */
export async function runAuto(
  api: typeof vscode,
  client: Client,
  output: vscode.OutputChannel,
  resource?: vscode.Uri | { notebookEditor?: { notebookUri?: vscode.Uri } },
): Promise<void> {
  // from the notebook toolbar: the notebook (the server runs its code cells); from the
  // editor title: the file; from the palette: the active notebook, else the active editor
  const fromToolbar = resource && "notebookEditor" in resource ? resource.notebookEditor?.notebookUri : undefined;
  const uri =
    fromToolbar ??
    (resource && !("notebookEditor" in resource) ? (resource as vscode.Uri) : undefined) ??
    api.window.activeNotebookEditor?.notebook.uri ??
    api.window.activeTextEditor?.document.uri;
  if (!uri) {
    void api.window.showWarningMessage("Neural Coder: open a Python file first");
    return;
  }
  output.appendLine(`auto: ${uri.toString()}`);
  const answer = (await client.sendRequest("workspace/executeCommand", {
    command: SERVER_AUTO,
    arguments: [uri.toString()],
  })) as { applied: boolean; winner: string | null; message: string; report?: unknown } | undefined;
  const message = answer?.message ?? "no answer from the server";
  for (const line of message.split("\n")) {
    output.appendLine(`  ${line}`);
  }
  const choice = message.split("\n").pop() ?? message;
  // a `report` comes with every measurement, applied or not (nothing beat fp32)
  if (answer?.report !== undefined && (answer.applied || answer.winner === null)) {
    void api.window.showInformationMessage(`Neural Coder: ${choice} (the table is in the output)`);
  } else {
    void api.window.showWarningMessage(`Neural Coder: ${choice}`);
  }
}
