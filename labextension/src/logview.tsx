// A trial's output in a main-area tab: stdout, stderr or its hdfs log, followed live while the
// trial runs. The view stays at the bottom as lines arrive unless the user scrolled up to read.
import { MainAreaWidget } from '@jupyterlab/apputils';
import { ReactWidget, UseSignal } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import * as React from 'react';

import { LOG_STREAMS, LogStream } from './api';
import { logIcon } from './icons';
import { LogTail } from './logtail';

/** Within this many pixels of the end counts as "at the bottom". */
const STICKY_PX = 24;

function StreamTabs(props: { current: LogStream; choose: (stream: LogStream) => void }): JSX.Element {
  return (
    <div className="hops-LogView-streams" role="tablist">
      {LOG_STREAMS.map(stream => (
        <button
          key={stream}
          type="button"
          role="tab"
          aria-selected={stream === props.current}
          className={`hops-LogView-stream${stream === props.current ? ' hops-mod-current' : ''}`}
          onClick={() => props.choose(stream)}
        >
          {stream}
        </button>
      ))}
    </div>
  );
}

function LogText(props: { tail: LogTail }): JSX.Element {
  const { tail } = props;
  const box = React.useRef<HTMLPreElement>(null);
  const atBottom = React.useRef(true);
  React.useLayoutEffect(() => {
    if (box.current && atBottom.current) {
      box.current.scrollTop = box.current.scrollHeight;
    }
  });
  let placeholder = '';
  if (!tail.loaded) {
    placeholder = 'Loading…';
  } else if (tail.error) {
    placeholder = tail.live ? 'No output yet.' : `No ${tail.stream} output (${tail.error}).`;
  } else if (tail.text.length === 0) {
    placeholder = tail.live ? 'No output yet.' : `No ${tail.stream} output.`;
  }
  return (
    <pre
      ref={box}
      className="hops-LogView-text"
      onScroll={event => {
        const node = event.currentTarget;
        atBottom.current = node.scrollHeight - node.scrollTop - node.clientHeight < STICKY_PX;
      }}
    >
      {tail.clipped ? <span className="hops-LogView-note">… earlier output not shown{'\n'}</span> : null}
      {tail.text}
      {placeholder ? <span className="hops-LogView-note">{placeholder}</span> : null}
    </pre>
  );
}

class LogView extends ReactWidget {
  constructor(readonly tail: LogTail) {
    super();
    this.addClass('hops-LogView');
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this.tail.changed}>
        {() => (
          <>
            <div className="hops-LogView-toolbar">
              <StreamTabs current={this.tail.stream} choose={stream => this.tail.setStream(stream)} />
              <span className={`hops-LogView-state${this.tail.live ? ' hops-mod-live' : ''}`}>
                {this.tail.live ? 'live' : 'ended'}
              </span>
            </div>
            <LogText tail={this.tail} />
          </>
        )}
      </UseSignal>
    );
  }

  dispose(): void {
    this.tail.dispose();
    super.dispose();
  }

  // Follow the log only while the tab can be seen.
  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    this.tail.setActive(true);
  }

  protected onBeforeHide(msg: Message): void {
    this.tail.setActive(false);
    super.onBeforeHide(msg);
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this.tail.setActive(this.isVisible);
  }

  protected onBeforeDetach(msg: Message): void {
    this.tail.setActive(false);
    super.onBeforeDetach(msg);
  }
}

export function logTabId(experimentId: string, trialId: string): string {
  return `hops-log-${experimentId}-${encodeURIComponent(trialId)}`;
}

/** A tab following one trial's output; `label` names the experiment. */
export function createLogTab(experimentId: string, trialId: string, label: string): MainAreaWidget<LogView> {
  const widget = new MainAreaWidget({ content: new LogView(new LogTail(experimentId, trialId)) });
  widget.id = logTabId(experimentId, trialId);
  widget.title.label = `${trialId} · ${label}`;
  widget.title.caption = `Output of trial ${trialId} of ${label} (${experimentId})`;
  widget.title.icon = logIcon;
  widget.title.closable = true;
  return widget;
}
