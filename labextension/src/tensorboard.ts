// A TensorBoard in a main-area tab: an iframe on the server's authenticated proxy, named after
// its experiment ("name 14:03"), the id in the tooltip.
import { IFrame, MainAreaWidget } from '@jupyterlab/apputils';

import { tensorboardUrl } from './api';
import { tensorboardIcon } from './icons';

// TensorBoard's own page needs scripts and same-origin requests (its data API).
const SANDBOX: IFrame.SandboxExceptions[] = ['allow-scripts', 'allow-same-origin', 'allow-forms', 'allow-popups', 'allow-downloads'];

export function tensorboardTabId(experimentId: string): string {
  return `hops-tensorboard-${experimentId}`;
}

export function createTensorBoardTab(experimentId: string, label: string): MainAreaWidget<IFrame> {
  const frame = new IFrame({ sandbox: SANDBOX, referrerPolicy: 'same-origin' });
  frame.url = tensorboardUrl(experimentId);
  frame.addClass('hops-TensorBoardFrame');
  const widget = new MainAreaWidget({ content: frame });
  widget.id = tensorboardTabId(experimentId);
  widget.title.label = `TensorBoard: ${label}`;
  widget.title.caption = `TensorBoard of ${label} (${experimentId})`;
  widget.title.icon = tensorboardIcon;
  widget.title.closable = true;
  return widget;
}
