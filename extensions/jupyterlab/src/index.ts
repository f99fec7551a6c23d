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

const APPROACHES: [string, [string, string][]][] = [
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
}

async function rewrite(panel: NotebookPanel, approach: string): Promise<void> {
  const model = panel.content.model;
  if (!model) {
    return;
  }
  const cells = [];
  for (let i = 0; i < model.cells.length; i++) {
    const cell = model.cells.get(i);
    cells.push({ cell_type: cell.type, source: cell.sharedModel.getSource() });
  }
  const settings = ServerConnection.makeSettings();
  const response = await ServerConnection.makeRequest(
    URLExt.join(settings.baseUrl, 'neural-coder/rewrite'),
    {
      method: 'POST',
      body: JSON.stringify({ command: 'optimize', approach, path: panel.context.path, cells })
    },
    settings
  );
  if (!response.ok) {
    Notification.error(`neural-coder: the server answered ${response.status} ${response.statusText}`);
    return;
  }
  const answer = (await response.json()) as IRewriteAnswer;
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
  const shared = model.sharedModel;
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
        rewrite(panel, approach).catch(reason =>
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
