import { LabIcon } from '@jupyterlab/ui-components';

const flask =
  '<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 24 24">' +
  '<path class="jp-icon3" fill="#616161" d="M9 2v2h1v5.2L4.4 18.6A2.3 2.3 0 0 0 6.4 22h11.2a2.3 ' +
  '2.3 0 0 0 2-3.4L14 9.2V4h1V2H9zm3 2v5.8l2.2 3.7H9.8L12 9.8V4z"/></svg>';

export const experimentsIcon = new LabIcon({ name: 'hops-jupyter:experiments', svgstr: flask });
