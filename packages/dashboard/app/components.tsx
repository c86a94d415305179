/** Small building blocks shared by the pages. Every value from a job is rendered as text. */
import type { ComponentChildren } from 'preact';
import { useEffect, useId, useRef, useState } from 'preact/hooks';
import { count, percent } from './format.js';
import type { JobStatus } from './types.js';

export function StatusBadge({ status }: { status: JobStatus | string }) {
  return <span class={`badge badge-${status}`}>{status}</span>;
}

/** Colour of a path in every chart and bar, stable per name. */
const PATH_COLOURS: Record<string, string> = {
  postgres: '#2563eb',
  servicebus: '#c2410c',
  storagequeue: '#047857',
  memory: '#7c3aed',
};
const PALETTE = ['#2563eb', '#c2410c', '#047857', '#7c3aed', '#be185d', '#0e7490'];
export function pathColour(name: string, index: number): string {
  return PATH_COLOURS[name] ?? PALETTE[index % PALETTE.length]!;
}

export interface Counts {
  total: number;
  succeeded: number;
  failed: number;
  running: number;
  pending: number;
  sealed?: boolean;
}

/** A stacked bar: succeeded, failed, running, pending of total. */
export function ProgressBar({ counts, label }: { counts: Counts; label: string }) {
  const done = counts.succeeded + counts.failed;
  const value = Math.round(percent(done, counts.total));
  const text = `${count(done)} of ${count(counts.total)}${counts.sealed === false ? '+' : ''} done (${value} %)`;
  return (
    <div
      class="progress"
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={value}
      aria-valuetext={text}
      title={text}
    >
      <span
        class="seg seg-succeeded"
        style={{ width: `${percent(counts.succeeded, counts.total)}%` }}
      />
      <span class="seg seg-failed" style={{ width: `${percent(counts.failed, counts.total)}%` }} />
      <span
        class="seg seg-running"
        style={{ width: `${percent(counts.running, counts.total)}%` }}
      />
    </div>
  );
}

export function Legend({ counts }: { counts: Counts }) {
  return (
    <ul class="legend">
      <li>
        <span class="dot seg-succeeded" /> {count(counts.succeeded)} succeeded
      </li>
      <li>
        <span class="dot seg-failed" /> {count(counts.failed)} failed
      </li>
      <li>
        <span class="dot seg-running" /> {count(counts.running)} running
      </li>
      <li>
        <span class="dot seg-pending" /> {count(counts.pending)} pending
      </li>
      <li class="muted">
        of {count(counts.total)}
        {counts.sealed === false ? ' so far (fan-out in progress)' : ''}
      </li>
    </ul>
  );
}

/**
 * A button that asks before it acts: a modal dialog names the action and its effect, and the
 * action runs only on "Confirm". Focus returns to the button afterwards.
 */
export function ConfirmButton(props: {
  /** Accessible name of the button (and its visible text unless `text` is given). */
  label: string;
  text?: string;
  title: string;
  description: string;
  confirmLabel?: string;
  danger?: boolean;
  disabled?: boolean;
  onConfirm: () => Promise<void>;
}) {
  const dialog = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const confirm = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await props.onConfirm();
      dialog.current?.close();
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button
        type="button"
        class={props.danger ? 'button danger' : 'button'}
        disabled={props.disabled || busy}
        aria-label={props.text ? props.label : undefined}
        onClick={() => {
          setError(undefined);
          dialog.current?.showModal();
        }}
      >
        {props.text ?? props.label}
      </button>
      <dialog ref={dialog} class="dialog" aria-labelledby={titleId}>
        <h2 id={titleId}>{props.title}</h2>
        <p>{props.description}</p>
        {error ? (
          <p class="error" role="alert">
            {error}
          </p>
        ) : null}
        <div class="dialog-actions">
          <button type="button" class="button" onClick={() => dialog.current?.close()}>
            Back
          </button>
          <button
            type="button"
            class={props.danger ? 'button danger' : 'button primary'}
            disabled={busy}
            onClick={confirm}
          >
            {props.confirmLabel ?? 'Confirm'}
          </button>
        </div>
      </dialog>
    </>
  );
}

export function Notice({
  kind,
  children,
}: {
  kind: 'error' | 'info' | 'ok';
  children: ComponentChildren;
}) {
  return (
    <p class={`notice notice-${kind}`} role={kind === 'error' ? 'alert' : 'status'}>
      {children}
    </p>
  );
}

/** Re-renders every `ms` (durations of running jobs tick without new data). */
export function useTick(ms: number): number {
  const [tick, setTick] = useState(0);
  useEffect(() => {
    const timer = setInterval(() => setTick((t) => t + 1), ms);
    return () => clearInterval(timer);
  }, [ms]);
  return tick;
}
