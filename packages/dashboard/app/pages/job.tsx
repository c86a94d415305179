/** The Job page: stages with progress, timings and throughput, failed tasks, results, actions. */
import { useEffect, useRef, useState } from 'preact/hooks';
import { get, live, post } from '../api.js';
import { Chart } from '../chart.js';
import { ConfirmButton, Legend, Notice, ProgressBar, StatusBadge, useTick } from '../components.js';
import { count, duration, rate, since, time } from '../format.js';
import type { JobDetail, JobHeader, StageView } from '../types.js';

/** Samples of tasks done, kept while the page is open, for the throughput chart. */
const MAX_POINTS = 600;

export function JobPage({ id }: { id: string }) {
  const [job, setJob] = useState<JobHeader>();
  const [detail, setDetail] = useState<JobDetail>();
  const [error, setError] = useState<string>();
  const [notice, setNotice] = useState<string>();
  const [series, setSeries] = useState<[number[], number[]]>([[], []]);
  const lastDone = useRef<{ at: number; done: number } | undefined>(undefined);
  useTick(1000);

  const apply = (header: JobHeader) => {
    setJob(header);
    const done = header.stages.reduce((sum, s) => sum + s.succeeded + s.failed, 0);
    const at = Date.now() / 1000;
    const prev = lastDone.current;
    lastDone.current = { at, done };
    if (prev && at - prev.at > 0.2 && header.status === 'running') {
      const perSecond = Math.max(0, (done - prev.done) / (at - prev.at));
      setSeries(([xs, ys]) => [
        [...xs, at].slice(-MAX_POINTS),
        [...ys, perSecond].slice(-MAX_POINTS),
      ]);
    }
  };
  const loadDetail = async () => {
    try {
      const d = await get<JobDetail>(`/jobs/${encodeURIComponent(id)}`);
      setDetail(d);
      apply(d);
      setError(undefined);
    } catch (err) {
      setError((err as Error).message);
    }
  };
  useEffect(() => {
    void loadDetail();
    return live({ job: id }, { job: apply as (data: never) => void }, async () =>
      apply(await get<JobDetail>(`/jobs/${encodeURIComponent(id)}`)),
    );
  }, [id]);

  // Failed tasks and results are read again only when the counts they depend on change.
  const failed = job?.stages.reduce((sum, s) => sum + s.failed, 0) ?? 0;
  const key = `${job?.status}|${failed}`;
  useEffect(() => {
    if (
      job &&
      detail &&
      key !== `${detail.status}|${detail.stages.reduce((s, x) => s + x.failed, 0)}`
    )
      void loadDetail();
  }, [key]);

  if (error && !job)
    return (
      <Notice kind="error">
        Could not load job {id}: {error}
      </Notice>
    );
  if (!job) return <p class="muted">Loading…</p>;
  const active = job.status === 'running' || job.status === 'queued';

  return (
    <section aria-labelledby="job-title">
      <p>
        <a href="#/">← Jobs</a>
      </p>
      <header class="job-header">
        <div>
          <h1 id="job-title">
            {job.name} <StatusBadge status={job.status} />
          </h1>
          <code class="id">{job.id}</code>
        </div>
        <div class="actions">
          <ConfirmButton
            label="Re-run failed tasks"
            title="Re-run the failed tasks?"
            description={`The ${count(failed)} failed task(s) of this job are sent again with fresh attempts; the job runs on from there.`}
            confirmLabel="Re-run"
            disabled={failed === 0}
            onConfirm={async () => {
              const r = await post<{ retried: number; status: string }>(
                `/jobs/${encodeURIComponent(id)}/retry`,
              );
              setNotice(`${count(r.retried)} task(s) sent again; the job is ${r.status}.`);
              await loadDetail();
            }}
          />
          <ConfirmButton
            label="Cancel job"
            title="Cancel this job?"
            description="No new task starts and running handlers are asked to stop. This cannot be undone."
            confirmLabel="Cancel job"
            danger
            disabled={!active}
            onConfirm={async () => {
              const r = await post<{ cancelled: boolean; status: string }>(
                `/jobs/${encodeURIComponent(id)}/cancel`,
              );
              setNotice(r.cancelled ? 'The job was cancelled.' : `The job is already ${r.status}.`);
              await loadDetail();
            }}
          />
        </div>
      </header>
      {notice ? <Notice kind="ok">{notice}</Notice> : null}
      <dl class="facts">
        <div>
          <dt>Path</dt>
          <dd>{job.transport}</dd>
        </div>
        <div>
          <dt>Priority</dt>
          <dd>{job.priority}</dd>
        </div>
        <div>
          <dt>Created</dt>
          <dd>{time(job.createdAt)}</dd>
        </div>
        <div>
          <dt>Started</dt>
          <dd>{time(job.startedAt)}</dd>
        </div>
        <div>
          <dt>Finished</dt>
          <dd>{time(job.finishedAt)}</dd>
        </div>
        <div>
          <dt>Duration</dt>
          <dd>{duration(job.durationMs ?? since(job.startedAt, job.finishedAt))}</dd>
        </div>
      </dl>
      {job.error ? (
        <Notice kind="error">
          {job.error.code ? `${job.error.code}: ` : ''}
          {job.error.message}
        </Notice>
      ) : null}

      <h2>Stages</h2>
      <ol class="stages">
        {job.stages.map((stage) => (
          <StageCard stage={stage} current={job.currentStage?.index === stage.index} />
        ))}
      </ol>

      {series[0].length > 1 ? (
        <Chart
          title="Tasks finished per second (while this page is open)"
          data={series}
          series={[{ label: 'tasks/s', colour: '#2563eb' }]}
          yLabel="tasks/s"
          format={rate}
          height={200}
        />
      ) : null}

      <h2>Failed tasks</h2>
      {detail && detail.failedTasks.length > 0 ? (
        <div class="table-wrap">
          <table>
            <caption class="muted">
              {count(failed)} failed; the first {detail.failedTasks.length} shown
            </caption>
            <thead>
              <tr>
                <th scope="col">Task</th>
                <th scope="col">Stage</th>
                <th scope="col">Attempts</th>
                <th scope="col">Last error</th>
                <th scope="col">
                  <span class="visually-hidden">Action</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {detail.failedTasks.map((task) => (
                <tr>
                  <td>
                    <code>{task.id}</code>
                  </td>
                  <td>{job.stages[task.stage]?.name ?? task.stage}</td>
                  <td>{task.attempts}</td>
                  <td class="error-cell">
                    {task.error?.code ? <strong>{task.error.code}: </strong> : null}
                    {task.error?.message ?? '—'}
                  </td>
                  <td>
                    <ConfirmButton
                      label={`Re-run ${task.id}`}
                      text="Re-run"
                      title="Re-run this task?"
                      description={`Task ${task.id} is sent again with fresh attempts.`}
                      confirmLabel="Re-run"
                      onConfirm={async () => {
                        const r = await post<{ retried: number }>(
                          `/jobs/${encodeURIComponent(id)}/retry`,
                          { task_ids: [task.id] },
                        );
                        setNotice(`${count(r.retried)} task sent again.`);
                        await loadDetail();
                      }}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      ) : (
        <p class="muted">No failed task.</p>
      )}

      <div class="columns">
        <div>
          <h2>Params</h2>
          <pre class="json">{job.params}</pre>
        </div>
        <div>
          <h2>Result</h2>
          {job.result !== undefined ? (
            <pre class="json">{job.result}</pre>
          ) : (
            <p class="muted">{active ? 'Not finished yet.' : 'No result.'}</p>
          )}
        </div>
      </div>
      {detail && detail.results.length > 0 ? (
        <>
          <h2>Task results (first {detail.results.length})</h2>
          <ul class="results">
            {detail.results.map((r) => (
              <li>
                <span class="muted small">
                  {job.stages[r.stage]?.name ?? r.stage} #{r.index}
                </span>
                <pre class="json">{r.result}</pre>
              </li>
            ))}
          </ul>
        </>
      ) : null}
    </section>
  );
}

function StageCard({ stage, current }: { stage: StageView; current: boolean }) {
  const done = stage.succeeded + stage.failed;
  const elapsed = stage.durationMs ?? since(stage.startedAt, stage.completedAt);
  const throughput = elapsed && elapsed > 0 ? (done / elapsed) * 1000 : undefined;
  return (
    <li class={current ? 'stage current' : 'stage'}>
      <div class="stage-head">
        <h3>
          {stage.index + 1}. {stage.name}
        </h3>
        <StatusBadge status={stage.status} />
      </div>
      <ProgressBar counts={stage} label={`Stage ${stage.name}`} />
      <Legend counts={stage} />
      <p class="muted small">
        {stage.startedAt ? `started ${time(stage.startedAt)}` : 'not started'}
        {elapsed !== undefined ? ` · ${duration(elapsed)}` : ''}
        {throughput !== undefined ? ` · ${rate(throughput)} tasks/s` : ''}
      </p>
    </li>
  );
}
