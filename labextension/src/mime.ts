// Renders %tensorboard output (application/vnd.hops.tensorboard+json) as an iframe on the
// server's proxy, built from the page's base URL.
import { PageConfig, URLExt } from '@jupyterlab/coreutils';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

export const MIME_TYPE = 'application/vnd.hops.tensorboard+json';

interface ITensorBoardOutput {
  experiment_id: string;
  path: string;
  height?: number;
}

export class TensorBoardOutput extends Widget implements IRenderMime.IRenderer {
  constructor() {
    super();
    this.addClass('hops-TensorBoardOutput');
  }

  renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const data = model.data[MIME_TYPE] as unknown as ITensorBoardOutput;
    const frame = document.createElement('iframe');
    frame.src = URLExt.join(PageConfig.getBaseUrl(), data.path);
    frame.title = `TensorBoard of ${data.experiment_id}`;
    frame.setAttribute('sandbox', 'allow-scripts allow-same-origin allow-forms allow-popups allow-downloads');
    frame.style.height = `${data.height ?? 800}px`;
    this.node.replaceChildren(frame);
    return Promise.resolve();
  }
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
