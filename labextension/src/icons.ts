// hops-jupyter's own icons. Paths carry JupyterLab's `jp-icon3` class, so the theme (light or
// dark) recolours them like the built-in icons.
import { LabIcon } from '@jupyterlab/ui-components';

function svg(body: string): string {
  return (
    '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
    `<g class="jp-icon3" fill="#616161">${body}</g></svg>`
  );
}

const FLASK =
  '<path d="M9 2v2h1v5.2L4.4 18.6A2.3 2.3 0 0 0 6.4 22h11.2a2.3 2.3 0 0 0 2-3.4L14 9.2V4h1V2H9zm3 ' +
  '2v5.8l2.2 3.7H9.8L12 9.8V4z"/>';

// A line chart: what TensorBoard shows.
const CHART =
  '<path d="M3 3h2v16h16v2H3z"/><path d="M7.4 15.6 6 14.2l4.6-4.6 3 3L18.6 7.6 20 9l-6.4 6.4-3-3z"/>';

// The chart struck through: stop the TensorBoard process.
const CHART_OFF =
  '<path d="M3 3h2v16h16v2H3z"/><path d="M7.4 15.6 6 14.2l4.6-4.6 3 3L18.6 7.6 20 9l-6.4 6.4-3-3z" ' +
  'opacity=".55"/><path d="M4.2 2.8 21.2 19.8l-1.4 1.4L2.8 4.2z"/>';

export const experimentsIcon = new LabIcon({ name: 'hops-jupyter:experiments', svgstr: svg(FLASK) });
export const tensorboardIcon = new LabIcon({ name: 'hops-jupyter:tensorboard', svgstr: svg(CHART) });
export const tensorboardOffIcon = new LabIcon({ name: 'hops-jupyter:tensorboard-off', svgstr: svg(CHART_OFF) });

// Lines of text: a trial's output.
const LOG = '<path d="M4 5h16v2H4zm0 4h16v2H4zm0 4h10v2H4zm0 4h13v2H4z"/>';

export const logIcon = new LabIcon({ name: 'hops-jupyter:log', svgstr: svg(LOG) });
