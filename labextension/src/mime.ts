// Renders %tensorboard output (application/vnd.hops.tensorboard+json) as an iframe on the
// server's proxy, built from the page's base URL.
//
// A saved output of a notebook reopened later starts nothing by itself: unless the experiment's
// TensorBoard already runs (as it does right after `%tensorboard` ran), it shows a "Show
// TensorBoard" button, and the click loads the frame (the proxy starts TensorBoard on demand).
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { getExperiment, listTensorBoards, tensorboardUrl } from './api';
import { experimentLabel } from './format';

export const MIME_TYPE = 'application/vnd.hops.tensorboard+json';

interface ITensorBoardOutput {
  experiment_id: string;
  /** Not used: the frame's address is built from the id (see renderModel). */
  path?: string;
  height?: number;
  name?: string;
}

/** What an experiment id looks like (records.py): `20261124T023015123-a1b2`. */
const EXPERIMENT_ID = /^\d{8}T\d{9}-[0-9a-f]{4}$/;
const HEIGHT = { min: 100, max: 4000, default: 800 };

/** A saved output is data anyone could have written (it renders in untrusted notebooks too):
 * the frame only ever shows the TensorBoard proxy of a well-formed experiment id. */
function checked(raw: unknown): ITensorBoardOutput | string {
  const data = (raw ?? {}) as Record<string, unknown>;
  const id = data.experiment_id;
  if (typeof id !== 'string' || !EXPERIMENT_ID.test(id)) {
    return `not a TensorBoard output: experiment_id ${JSON.stringify(id)?.slice(0, 80)} is no experiment id`;
  }
  const height = typeof data.height === 'number' && Number.isFinite(data.height) ? data.height : HEIGHT.default;
  return {
    experiment_id: id,
    height: Math.min(HEIGHT.max, Math.max(HEIGHT.min, height)),
    name: typeof data.name === 'string' ? data.name : undefined
  };
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
    const data = checked(model.data[MIME_TYPE]);
    if (typeof data === 'string') {
      const note = document.createElement('span');
      note.className = 'hops-TensorBoardPlaceholder-note';
      note.textContent = data;
      this._shown = null;
      this.node.replaceChildren(note);
      return;
    }
    if (this._shown === data.experiment_id && this.node.querySelector('iframe')) {
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
    frame.src = tensorboardUrl(data.experiment_id);
    frame.title = `TensorBoard of ${data.experiment_id}`;
    frame.setAttribute('sandbox', 'allow-scripts allow-same-origin allow-forms allow-popups allow-downloads');
    frame.style.height = `${data.height ?? HEIGHT.default}px`;
    this._shown = data.experiment_id;
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
