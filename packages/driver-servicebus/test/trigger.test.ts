import { ValidationError } from '@switchyard/core';
import { describe, expect, it } from 'vitest';
import { fromServiceBusTrigger, serviceBusTriggerQueues } from '../src/index.js';

describe('serviceBusTriggerQueues', () => {
  it('lists the stage and task queues, with the default names', () => {
    expect(serviceBusTriggerQueues()).toEqual([
      { queueName: 'sb-jobs', queue: 'stage' },
      { queueName: 'sb-tasks', queue: 'task' },
    ]);
  });

  it('with priorityLanes, lists a trigger per lane queue, highest first', () => {
    expect(
      serviceBusTriggerQueues({ queues: { stage: 'jobs', task: 'work' }, priorityLanes: true }),
    ).toEqual([
      { queueName: 'jobs', queue: 'stage' },
      { queueName: 'work-high', queue: 'task', priority: 'high' },
      { queueName: 'work', queue: 'task', priority: 'normal' },
      { queueName: 'work-low', queue: 'task', priority: 'low' },
    ]);
  });

  it('rejects a task queue name the lanes cannot derive from, naming the field', () => {
    expect(() =>
      serviceBusTriggerQueues({ queues: { task: 'x'.repeat(258) }, priorityLanes: true }),
    ).toThrow(ValidationError);
    expect(() =>
      serviceBusTriggerQueues({ queues: { task: 'x'.repeat(258) }, priorityLanes: true }),
    ).toThrow(/queues\.task/);
  });

  it('gives fromServiceBusTrigger the Switchyard queue of each trigger', () => {
    const handled = serviceBusTriggerQueues({ priorityLanes: true }).map(
      ({ queue }) => fromServiceBusTrigger('{}', {}, { queue }).meta.queue,
    );
    expect(handled).toEqual(['stage', 'task', 'task', 'task']);
  });
});

describe('fromServiceBusTrigger', () => {
  const context = {
    triggerMetadata: {
      deliveryCount: 3,
      messageId: 'm-1',
      enqueuedTimeUtc: '2026-01-02T03:04:05.000Z',
    },
  };

  it('takes an object the host already parsed', () => {
    const { body, meta } = fromServiceBusTrigger({ v: 1, kind: 'task' }, context, {
      queue: 'task',
    });
    expect(JSON.parse(body)).toEqual({ v: 1, kind: 'task' });
    expect(meta).toEqual({
      queue: 'task',
      deliveryCount: 3,
      messageId: 'm-1',
      enqueuedAt: new Date('2026-01-02T03:04:05.000Z'),
      maxDeliveries: 10,
    });
  });

  it('takes a string as is', () => {
    const { body, meta } = fromServiceBusTrigger('{"v":1}', context, {
      queue: 'stage',
      maxDeliveryCount: 5,
    });
    expect(body).toBe('{"v":1}');
    expect(meta.queue).toBe('stage');
    expect(meta.maxDeliveries).toBe(5);
  });

  it('decodes a Buffer as UTF-8', () => {
    const text = '{"hello":"wörld ✓"}';
    expect(fromServiceBusTrigger(Buffer.from(text, 'utf8'), context).body).toBe(text);
    const view = new Uint8Array(Buffer.from(`xx${text}`, 'utf8')).subarray(2);
    expect(fromServiceBusTrigger(view, context).body).toBe(text);
  });

  it('defaults missing metadata: first delivery, task queue', () => {
    const { meta } = fromServiceBusTrigger('x', {});
    expect(meta).toEqual({
      queue: 'task',
      deliveryCount: 1,
      messageId: undefined,
      maxDeliveries: 10,
    });
  });
});
