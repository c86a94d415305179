/** The Dead letters page: a path's poison messages with reason and body, and replay. */
import { useEffect, useState } from 'preact/hooks';
import { get, post, query } from '../api.js';
import { ConfirmButton, Notice } from '../components.js';
import { count, time } from '../format.js';
import type { DeadLetter } from '../types.js';

export function DeadLettersPage({ transports }: { transports: string[] }) {
  const [transport, setTransport] = useState(transports[0] ?? '');
  const [queue, setQueue] = useState<'task' | 'stage'>('task');
  const [letters, setLetters] = useState<DeadLetter[]>();
  const [error, setError] = useState<string>();
  const [notice, setNotice] = useState<string>();
  const load = async () => {
    if (!transport) return;
    try {
      const r = await get<{ deadLetters: DeadLetter[] }>(
        `/dead-letters${query({ transport, queue, limit: 100 })}`,
      );
      setLetters(r.deadLetters);
      setError(undefined);
    } catch (err) {
      setLetters(undefined);
      setError((err as Error).message);
    }
  };
  useEffect(() => {
    void load();
  }, [transport, queue]);
  const replay = async (ids?: string[]) => {
    const r = await post<{ replayed: number }>('/dead-letters/replay', {
      transport,
      queue,
      ...(ids ? { ids } : {}),
    });
    setNotice(`${count(r.replayed)} message(s) sent back to the ${queue} queue of ${transport}.`);
    await load();
  };

  if (transports.length === 0)
    return (
      <section>
        <h1>Dead letters</h1>
        <Notice kind="info">No transport with dead letters was given to the dashboard.</Notice>
      </section>
    );
  return (
    <section aria-labelledby="dl-title">
      <div class="page-head">
        <h1 id="dl-title">Dead letters</h1>
        <div class="filters">
          <label>
            Path
            <select value={transport} onChange={(e) => setTransport(e.currentTarget.value)}>
              {transports.map((t) => (
                <option value={t}>{t}</option>
              ))}
            </select>
          </label>
          <label>
            Queue
            <select
              value={queue}
              onChange={(e) => setQueue(e.currentTarget.value as 'task' | 'stage')}
            >
              <option value="task">task</option>
              <option value="stage">stage</option>
            </select>
          </label>
          <button type="button" class="button" onClick={load}>
            Refresh
          </button>
          <ConfirmButton
            label="Replay all"
            title="Replay every dead letter?"
            description={`All dead-lettered messages of the ${queue} queue of ${transport} are sent back to it.`}
            confirmLabel="Replay"
            disabled={!letters || letters.length === 0}
            onConfirm={() => replay()}
          />
        </div>
      </div>
      {notice ? <Notice kind="ok">{notice}</Notice> : null}
      {error ? <Notice kind="error">{error}</Notice> : null}
      {letters && letters.length === 0 ? (
        <Notice kind="info">No dead letter on this queue.</Notice>
      ) : null}
      {letters && letters.length > 0 ? (
        <ul class="letters">
          {letters.map((letter) => (
            <li class="letter">
              <div class="letter-head">
                <div>
                  <strong>{letter.reason}</strong>
                  {letter.description ? <span> — {letter.description}</span> : null}
                  <div class="muted small">
                    <code>{letter.id}</code> · {time(letter.deadLetteredAt)}
                  </div>
                </div>
                <ConfirmButton
                  label={`Replay ${letter.id}`}
                  text="Replay"
                  title="Replay this message?"
                  description={`Message ${letter.id} is sent back to the ${queue} queue.`}
                  confirmLabel="Replay"
                  onConfirm={() => replay([letter.id])}
                />
              </div>
              <pre class="json">
                {letter.body.length > 2000 ? `${letter.body.slice(0, 2000)}…` : letter.body}
              </pre>
            </li>
          ))}
        </ul>
      ) : null}
    </section>
  );
}
