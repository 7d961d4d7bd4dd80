import test from 'ava';
import { PassThrough } from 'node:stream';
import { createLogger } from '../../src/logging/logger.js';
import { ScheduledTasks } from '../../src/maintenance/scheduled-tasks.js';

// stop(deadline) lets a run in progress finish until the deadline, then returns without it (logged).

const quiet = () => {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new PassThrough();
  stream.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n'))
      if (line.trim() !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
  });
  return { logger: createLogger({ level: 'info', format: 'json', stream }), lines };
};

function gatedTask() {
  let started!: () => void;
  const running = new Promise<void>((resolve) => (started = resolve));
  let finish!: () => void;
  const gate = new Promise<void>((resolve) => (finish = resolve));
  let finished = false;
  return {
    spec: {
      name: 'slow',
      schedule: '* * * * * *',
      run: async () => {
        started();
        await gate;
        finished = true;
      },
    },
    running,
    finish: () => finish(),
    get finished() {
      return finished;
    },
  };
}

test('stop(deadline) waits for a run in progress that ends before the deadline', async (t) => {
  const task = gatedTask();
  const { logger } = quiet();
  const tasks = new ScheduledTasks([task.spec], logger);
  await tasks.start();
  t.is(tasks.status().state, 'running');
  await task.running;
  const stopping = tasks.stop(Date.now() + 60_000);
  t.is(tasks.status().state, 'stopping');
  task.finish();
  await stopping;
  t.true(task.finished);
  t.is(tasks.status().state, 'stopped');
});

test('stop(deadline) returns at the deadline when a run does not end, and says so', async (t) => {
  const task = gatedTask();
  const { logger, lines } = quiet();
  const tasks = new ScheduledTasks([task.spec], logger);
  await tasks.start();
  await task.running;
  await tasks.stop(Date.now() + 50);
  t.false(task.finished);
  t.is(tasks.status().state, 'stopped');
  t.truthy(lines.find((l) => l.event === 'MAINT-8002'));
  task.finish();
});
