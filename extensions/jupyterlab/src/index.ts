/**
 * neural-coder in JupyterLab: a toolbar menu on every notebook. Picking an approach sends
 * the live notebook's cells to the neural-coder server extension (JSON in, JSON out) and
 * puts the rewritten cells back in place, in one undoable step; refusals appear as
 * notifications that name the cell and line.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { DocumentRegistry } from '@jupyterlab/docregistry';
import { INotebookModel, NotebookPanel } from '@jupyterlab/notebook';
import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { Widget } from '@lumino/widgets';

const AUTO = 'auto';

const APPROACHES: [string, [string, string][]][] = [
  ['Measure', [[AUTO, 'Auto: measure and keep the best']]],
  [
    'Post-training',
    [
      ['ptq-static', 'INT8 static'],
      ['ptq-dynamic', 'INT8 dynamic'],
      ['bf16', 'BF16']
    ]
  ],
  [
    'Training',
    [
      ['qat', 'QAT'],
      ['pruning', 'Pruning'],
      ['distillation', 'Distillation'],
      ['pruning+qat', 'Pruning + QAT'],
      ['distillation+qat', 'Distillation + QAT'],
      ['distillation+pruning', 'Distillation + pruning'],
      ['distillation+pruning+qat', 'Distillation + pruning + QAT']
    ]
  ]
];

interface IRewriteAnswer {
  status: string;
  message: string;
  placed: string[];
  warnings: string[];
  changed: number[];
  cells: { index: number; source: string }[];
  error: { message: string; cell: number | null; line: number | null; hint: string | null } | null;
  // the "auto" command only
  winner?: string | null;
  table?: string;
}

function cellsOf(panel: NotebookPanel): { cell_type: string; source: string }[] {
  const model = panel.content.model;
  const cells = [];
  for (let i = 0; model && i < model.cells.length; i++) {
    const cell = model.cells.get(i);
    cells.push({ cell_type: cell.type, source: cell.sharedModel.getSource() });
  }
  return cells;
}

async function post(body: object): Promise<IRewriteAnswer | null> {
  const settings = ServerConnection.makeSettings();
  const response = await ServerConnection.makeRequest(
    URLExt.join(settings.baseUrl, 'neural-coder/rewrite'),
    { method: 'POST', body: JSON.stringify(body) },
    settings
  );
  if (!response.ok) {
    Notification.error(`neural-coder: the server answered ${response.status} ${response.statusText}`);
    return null;
  }
  return (await response.json()) as IRewriteAnswer;
}

/** Put the answer's cells in place, in one undoable step; their outputs are stale. */
function applyCells(panel: NotebookPanel, answer: IRewriteAnswer): void {
  const shared = panel.content.model!.sharedModel;
  shared.transact(() => {
    for (const change of answer.cells) {
      const cell = shared.getCell(change.index);
      cell.setSource(change.source);
      if (cell.cell_type === 'code') {
        // the outputs came from the code before the rewrite
        (cell as any).setOutputs([]);
        (cell as any).execution_count = null;
      }
    }
  });
}

/** `neural-coder auto` on the live cells: every candidate runs in a fresh process on the
 *  server; the winner's cells come back and are put in place, the table in a notification. */
async function auto(panel: NotebookPanel): Promise<void> {
  const sent = cellsOf(panel);
  const id = Notification.emit(
    'neural-coder auto: measuring fp32 and each candidate, each in a fresh process (this takes minutes)…',
    'in-progress',
    { autoClose: false }
  );
  const answer = await post({ command: AUTO, path: panel.context.path, cells: sent });
  if (!answer) {
    Notification.dismiss(id);
    return;
  }
  if (answer.status === 'Failed') {
    Notification.update({ id, message: `neural-coder auto: ${answer.message}`, type: 'error', autoClose: false });
    return;
  }
  const now = cellsOf(panel);
  const same = now.length === sent.length && now.every((c, i) => c.source === sent[i].source);
  if (answer.cells.length > 0 && !same) {
    Notification.update({
      id,
      message: `neural-coder auto: the notebook changed while auto ran; nothing was applied.\n${answer.table}`,
      type: 'warning',
      autoClose: false
    });
    return;
  }
  if (answer.cells.length > 0) {
    applyCells(panel, answer);
  }
  Notification.update({
    id,
    message: `neural-coder auto:\n${answer.table ?? answer.message}`,
    type: answer.winner ? 'success' : 'info',
    autoClose: false
  });
}

async function rewrite(panel: NotebookPanel, approach: string): Promise<void> {
  if (!panel.content.model) {
    return;
  }
  const answer = await post({ command: 'optimize', approach, path: panel.context.path, cells: cellsOf(panel) });
  if (!answer) {
    return;
  }
  if (answer.status === 'Failed') {
    if (answer.error?.cell) {
      panel.content.activeCellIndex = answer.error.cell - 1;
    }
    Notification.error(`neural-coder: ${answer.message}`, { autoClose: false });
    return;
  }
  if (answer.cells.length === 0) {
    Notification.info(`neural-coder: ${answer.message}`, { autoClose: 8000 });
    return;
  }
  applyCells(panel, answer);
  Notification.success(`neural-coder: ${answer.message}`, { autoClose: 8000 });
  for (const warning of answer.warnings) {
    Notification.warning(`neural-coder: ${warning}`, { autoClose: false });
  }
}

class ApproachMenu extends Widget {
  constructor(panel: NotebookPanel) {
    super({ node: document.createElement('div') });
    this.addClass('jp-NeuralCoder-menu');
    const select = document.createElement('select');
    select.title = 'neural-coder: rewrite this notebook so that it compresses its model';
    select.setAttribute('aria-label', 'neural-coder approach');
    select.appendChild(new Option('neural-coder…', ''));
    for (const [group, entries] of APPROACHES) {
      const optgroup = document.createElement('optgroup');
      optgroup.label = group;
      for (const [value, label] of entries) {
        optgroup.appendChild(new Option(label, value));
      }
      select.appendChild(optgroup);
    }
    select.addEventListener('change', () => {
      const approach = select.value;
      select.value = '';
      if (approach) {
        (approach === AUTO ? auto(panel) : rewrite(panel, approach)).catch(reason =>
          Notification.error(`neural-coder: ${reason}`, { autoClose: false })
        );
      }
    });
    this.node.appendChild(select);
  }
}

class ToolbarMenu implements DocumentRegistry.IWidgetExtension<NotebookPanel, INotebookModel> {
  createNew(panel: NotebookPanel): IDisposable {
    const menu = new ApproachMenu(panel);
    panel.toolbar.insertItem(10, 'neuralCoder', menu);
    return menu;
  }
}

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'neural-coder-jupyterlab:plugin',
  description: 'A toolbar menu that rewrites the notebook so that it compresses its model.',
  autoStart: true,
  activate: (app: JupyterFrontEnd) => {
    app.docRegistry.addWidgetExtension('Notebook', new ToolbarMenu());
  }
};

export default plugin;
