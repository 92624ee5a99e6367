// Renders %tensorboard output (application/vnd.hops.tensorboard+json) as an iframe on the
// server's proxy, built from the page's base URL.
//
// A saved output of a notebook reopened later starts nothing by itself: unless the experiment's
// TensorBoard already runs (as it does right after `%tensorboard` ran), it shows a "Show
// TensorBoard" button, and the click loads the frame (the proxy starts TensorBoard on demand).
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { getExperiment, listTensorBoards } from './api';
import { experimentLabel } from './format';

export const MIME_TYPE = 'application/vnd.hops.tensorboard+json';

interface ITensorBoardOutput {
  experiment_id: string;
  path: string;
  height?: number;
  name?: string;
}

async function isRunning(experimentId: string): Promise<boolean> {
  try {
    return (await listTensorBoards()).some(board => board.experiment_id === experimentId);
  } catch {
    return false; // the placeholder then offers to start it; nothing is lost
  }
}

/** "name 14:03" of the experiment; its id if it cannot be read (the button works either way). */
async function labelOf(data: ITensorBoardOutput): Promise<string> {
  if (data.name) {
    return data.name;
  }
  try {
    const experiment = await getExperiment(data.experiment_id);
    return experimentLabel(experiment.name, experiment.started);
  } catch {
    return data.experiment_id;
  }
}

export class TensorBoardOutput extends Widget implements IRenderMime.IRenderer {
  constructor() {
    super();
    this.addClass('hops-TensorBoardOutput');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const data = model.data[MIME_TYPE] as unknown as ITensorBoardOutput;
    if (this._shown === data.path && this.node.querySelector('iframe')) {
      return; // the same output rendered again: keep the frame (and TensorBoard's own state)
    }
    if (await isRunning(data.experiment_id)) {
      this._showFrame(data);
    } else {
      this._showPlaceholder(data, await labelOf(data));
    }
  }

  private _showFrame(data: ITensorBoardOutput): void {
    const frame = document.createElement('iframe');
    frame.src = URLExt.join(PageConfig.getBaseUrl(), data.path);
    frame.title = `TensorBoard of ${data.experiment_id}`;
    frame.setAttribute('sandbox', 'allow-scripts allow-same-origin allow-forms allow-popups allow-downloads');
    frame.style.height = `${data.height ?? 800}px`;
    this._shown = data.path;
    this.node.replaceChildren(frame);
  }

  private _showPlaceholder(data: ITensorBoardOutput, label: string): void {
    const box = document.createElement('div');
    box.className = 'hops-TensorBoardPlaceholder';
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'jp-mod-styled jp-mod-accept hops-show-tensorboard';
    button.textContent = 'Show TensorBoard';
    button.onclick = () => this._showFrame(data);
    const note = document.createElement('span');
    note.className = 'hops-TensorBoardPlaceholder-note';
    note.textContent = `of ${label}: not running, it starts when shown`;
    note.title = data.experiment_id;
    box.append(button, note);
    this._shown = null;
    this.node.replaceChildren(box);
  }

  private _shown: string | null = null;
}

const extension: IRenderMime.IExtension = {
  id: 'hops-jupyter:tensorboard-output',
  description: 'Inline TensorBoards from %tensorboard.',
  rendererFactory: {
    safe: true,
    mimeTypes: [MIME_TYPE],
    createRenderer: () => new TensorBoardOutput()
  },
  rank: 0,
  dataType: 'json'
};

export default extension;
