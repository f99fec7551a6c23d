// The entry point VS Code loads: binds core.ts to the real `vscode` API and the
// vscode-languageclient LanguageClient (stdio to `python -m neural_coder lsp`).
import * as vscode from "vscode";
import { LanguageClient, TransportKind } from "vscode-languageclient/node";

import { activateWith, Client } from "./core";

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  await activateWith(vscode, context, (server, output) => {
    const client = new LanguageClient(
      "neuralCoder",
      "Neural Coder",
      { command: server.command, args: server.args, transport: TransportKind.stdio },
      {
        documentSelector: [{ language: "python" }],
        outputChannel: output,
        synchronize: { configurationSection: "neuralCoder" },
      },
    );
    return client as unknown as Client;
  });
}

export function deactivate(): void {
  // the client is stopped by the disposable activateWith registered
}
