import test from 'ava';
import { Batcher } from '../../src/inference/batcher.js';

test('requests are grouped into batches of at most maxBatch, results go back to their callers', async (t) => {
  const batches: number[][] = [];
  const batcher = new Batcher<number, number>({
    maxBatch: 3,
    maxWaitMs: 10,
    concurrency: 1,
    run: async (items) => {
      batches.push(items);
      return items.map((i) => i * 10);
    },
  });
  const results = await Promise.all([1, 2, 3, 4, 5, 6, 7].map((i) => batcher.submit(i)));
  t.deepEqual(results, [10, 20, 30, 40, 50, 60, 70]);
  t.true(batches.every((b) => b.length <= 3));
  t.deepEqual(batches.flat(), [1, 2, 3, 4, 5, 6, 7]);
});

test('a lone request leaves after maxWaitMs without waiting for a full batch', async (t) => {
  const batcher = new Batcher<string, string>({ maxBatch: 8, maxWaitMs: 5, concurrency: 1, run: async (items) => items.map((s) => s.toUpperCase()) });
  t.is(await batcher.submit('x'), 'X');
});

test('urgent requests go ahead of normal ones that are still queued', async (t) => {
  const order: string[] = [];
  let release: () => void = () => undefined;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const batcher = new Batcher<string, string>({
    maxBatch: 1,
    maxWaitMs: 1,
    concurrency: 1,
    run: async (items) => {
      if (items[0] === 'first') await gate;
      order.push(...items);
      return items;
    },
  });
  const all = [batcher.submit('first'), batcher.submit('normal-1'), batcher.submit('normal-2'), batcher.submit('urgent', 'urgent')];
  release();
  await Promise.all(all);
  t.deepEqual(order, ['first', 'urgent', 'normal-1', 'normal-2']);
});

test('a failing batch rejects each of its requests, and later batches still run', async (t) => {
  let calls = 0;
  const batcher = new Batcher<number, number>({
    maxBatch: 2,
    maxWaitMs: 1,
    concurrency: 1,
    run: async (items) => {
      calls += 1;
      if (calls === 1) throw new Error('backend lost');
      return items;
    },
  });
  const first = [batcher.submit(1), batcher.submit(2)];
  await t.throwsAsync(first[0] as Promise<number>, { message: 'backend lost' });
  await t.throwsAsync(first[1] as Promise<number>, { message: 'backend lost' });
  t.is(await batcher.submit(3), 3);
});
