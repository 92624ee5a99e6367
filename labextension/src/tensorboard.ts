// A TensorBoard in a main-area tab: an iframe on the server's authenticated proxy.
import { IFrame, MainAreaWidget } from '@jupyterlab/apputils';

import { tensorboardUrl } from './api';
import { experimentsIcon } from './icons';

// TensorBoard's own page needs scripts and same-origin requests (its data API).
const SANDBOX: IFrame.SandboxExceptions[] = ['allow-scripts', 'allow-same-origin', 'allow-forms', 'allow-popups', 'allow-downloads'];

export function tensorboardTabId(experimentId: string): string {
  return `hops-tensorboard-${experimentId}`;
}

export function createTensorBoardTab(experimentId: string): MainAreaWidget<IFrame> {
  const frame = new IFrame({ sandbox: SANDBOX, referrerPolicy: 'same-origin' });
  frame.url = tensorboardUrl(experimentId);
  frame.addClass('hops-TensorBoardFrame');
  const widget = new MainAreaWidget({ content: frame });
  widget.id = tensorboardTabId(experimentId);
  widget.title.label = `TensorBoard ${experimentId}`;
  widget.title.icon = experimentsIcon;
  widget.title.closable = true;
  return widget;
}
