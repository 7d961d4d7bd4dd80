// `cxr-gateway drain` through the real CLI (a child process) on the SQLite store the config names: it marks the
// node draining, says what the node still holds, audits the action, waits with --wait until the node holds nothing,
// and refuses a node that never registered.
import test, { type ExecutionContext } from 'ava';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AuditTrail } from '../../src/store/audit-trail.js';
import { JobStore } from '../../src/store/job-store.js';
import { NodeRegistry } from '../../src/store/nodes.js';
import { PipelineStore } from '../../src/store/pipeline-store.js';
import { CLI, runCli } from '../helpers/gateway-process.js';
import { receivedInstance } from '../helpers/received-instance.js';

interface Setup {
  configPath: string;
  store: JobStore;
  registry: NodeRegistry;
  /** Node 'gw-1' (the config's own) holding one processing job; the job's id. */
  heldJob: number;
  pipeline: PipelineStore;
}

function setup(t: ExecutionContext): Setup {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'cli-drain-'));
  const dataDir = path.join(dir, 'data');
  const configPath = path.join(dir, 'gateway.yaml');
  writeFileSync(
    configPath,
    ['storage:', `  dataDir: ${JSON.stringify(dataDir)}`, 'cluster:', '  nodeName: gw-1', 'rules: []', ''].join('\n'),
  );
  mkdirSync(path.join(dataDir, 'db'), { recursive: true });
  const store = JobStore.open(path.join(dataDir, 'db', 'cxr-gateway.sqlite'));
  t.teardown(() => store.close());
  const registry = new NodeRegistry(store.connection);
  const now = Date.now();
  registry.register('gw-1', ['receive', 'analyze', 'deliver'], now);
  registry.register('gw-2', ['analyze'], now);
  const sopInstanceUid = '1.2.826.88.1';
  store.recordInstance(receivedInstance('1.2.826.88', now - 10_000, { sopInstanceUid, path: '/spool/x.dcm' }));
  const [ready] = store.promoteQuietStudies(now, now);
  const admin = new PipelineStore(store.connection);
  const images = [{ sopInstanceUid, path: '/spool/x.dcm' }];
  admin.routeJob(ready?.jobId ?? 0, { rule: 'chest', action: '{}', priority: 'normal', images }, now);
  const pipeline = admin.as('gw-1');
  const heldJob = pipeline.claimActiveJob(now, 600_000)?.jobId ?? -1;
  return { configPath, store, registry, heldJob, pipeline };
}

const draining = (s: Setup, name: string) => s.registry.list().find((n) => n.name === name)?.draining;

test("drain marks the config's node draining, says what it holds, and is audited; --undo lets it claim again", async (t) => {
  const s = setup(t);
  const drained = await runCli(['drain', '--config', s.configPath]);
  t.is(drained.code, 0, drained.stderr);
  t.is(drained.stdout, "node 'gw-1' is draining: it still holds 1 job(s) and 0 deliveries\n");
  t.true(draining(s, 'gw-1'));
  t.false(draining(s, 'gw-2'), 'only the named node');
  const audit = new AuditTrail(s.store.connection).list({ action: 'node.drain', offset: 0, limit: 10 });
  t.like(audit.items[0], { category: 'admin', action: 'node.drain', target: 'gw-1', outcome: 'success' });
  t.regex(audit.items[0]?.user ?? '', /^cli:/);

  const other = await runCli(['drain', '--node', 'gw-2', '--config', s.configPath]);
  t.is(other.stdout, "node 'gw-2' is draining: it still holds 0 job(s) and 0 deliveries\n");
  t.true(draining(s, 'gw-2'));

  const undone = await runCli(['drain', '--undo', '--config', s.configPath]);
  t.is(undone.code, 0, undone.stderr);
  t.is(undone.stdout, "node 'gw-1' claims work again\n");
  t.false(draining(s, 'gw-1'));
  t.is(new AuditTrail(s.store.connection).list({ action: 'node.undrain', offset: 0, limit: 10 }).items.length, 1);
});

test('drain --wait returns once the node has finished what it held', async (t) => {
  const s = setup(t);
  const child = spawn(process.execPath, [CLI, 'drain', '--wait', '--config', s.configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  // The command has marked the node draining and is waiting: then the node finishes its job.
  await new Promise<void>((resolve) =>
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('is draining')) resolve();
    }),
  );
  t.is(stdout, "node 'gw-1' is draining: it still holds 1 job(s) and 0 deliveries\n");
  s.pipeline.finishProcessing(s.heldJob, { deliveries: [] }, Date.now());
  t.is(await exited, 0, stderr);
  t.true(stdout.endsWith("node 'gw-1' holds nothing: it can be stopped\n"));
});

test('drain refuses a node that never registered, and changes nothing', async (t) => {
  const s = setup(t);
  const refused = await runCli(['drain', '--node', 'gw-9', '--config', s.configPath]);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /NODE_UNKNOWN: no node named 'gw-9' has registered/);
  t.deepEqual(
    s.registry.list().map((n) => n.draining),
    [false, false],
  );
  t.is(new AuditTrail(s.store.connection).list({ action: 'node.drain', offset: 0, limit: 10 }).items.length, 0);
  const usage = await runCli(['drain', '--undo', '--wait', '--config', s.configPath]);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /--wait waits for a drain/);
});
