// Small icon buttons for dense rows: a tooltip names each, a disabled one looks disabled, and the
// copy button says "Copied" where the pointer is (a changed `title` would show only on re-hover).
import { Clipboard } from '@jupyterlab/apputils';
import { LabIcon, checkIcon, copyIcon } from '@jupyterlab/ui-components';
import * as React from 'react';

export interface IIconButtonProps {
  icon: LabIcon;
  /** The tooltip, and the name a screen reader announces. */
  title: string;
  className: string;
  disabled?: boolean;
  onClick: () => void;
}

export function IconButton(props: IIconButtonProps): JSX.Element {
  return (
    <button
      type="button"
      className={`hops-IconButton ${props.className}`}
      title={props.title}
      aria-label={props.title}
      disabled={props.disabled}
      onClick={event => {
        event.stopPropagation(); // a click on a row's button does not also expand the row
        props.onClick();
      }}
    >
      <props.icon.react tag="span" className="hops-IconButton-icon" />
    </button>
  );
}

/** How long "Copied" stays up. */
const FEEDBACK_MS = 1500;

export function CopyButton(props: { text: string; title: string; className: string }): JSX.Element {
  const [copied, setCopied] = React.useState(false);
  React.useEffect(() => {
    if (!copied) {
      return;
    }
    const timer = window.setTimeout(() => setCopied(false), FEEDBACK_MS);
    return () => window.clearTimeout(timer);
  }, [copied]);
  return (
    <span className="hops-CopyButton">
      <IconButton
        icon={copied ? checkIcon : copyIcon}
        title={copied ? 'Copied' : props.title}
        className={`${props.className}${copied ? ' hops-mod-copied' : ''}`}
        onClick={() => {
          Clipboard.copyToSystem(props.text);
          setCopied(true);
        }}
      />
      {copied && (
        <span className="hops-CopyButton-feedback" role="status">
          Copied
        </span>
      )}
    </span>
  );
}
