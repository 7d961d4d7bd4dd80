import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

// Why not listen(0): a port the kernel hands out is free again the moment its owner stops, and
// another test file running beside this one (or any listen(0) in it) may be handed the same port
// while a test still means it, e.g. a PACS stopped on purpose to see ECONNREFUSED that came back
// as someone else's Orthanc. So ports come from a range below the kernel's ephemeral range
// (32768-60999 on Linux, where listen(0) and outgoing connections take theirs), and each is
// reserved for the life of the test process by a file only one process can create.
const LOW = 20_000;
const HIGH = 32_000;
// One folder per test run: ava's worker processes share their parent, the ava process.
const ROOT = path.join(os.tmpdir(), 'cxr-gateway-test-ports');
const RESERVATIONS = path.join(ROOT, String(process.ppid));
let cleaned = false;

/** A TCP port on 127.0.0.1 that was free a moment ago and that no other test process will be given. */
export async function freePort(): Promise<number> {
  if (!cleaned) removeEndedRuns();
  cleaned = true;
  fs.mkdirSync(RESERVATIONS, { recursive: true });
  for (let attempt = 0; attempt < 500; attempt += 1) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW));
    if (!reserve(port)) continue;
    if (await bindable(port)) return port;
    // Taken by something outside the tests: keep the reservation so no one tries it again.
  }
  throw new Error(`no free port in ${LOW}-${HIGH} after 500 tries (reservations in ${RESERVATIONS})`);
}

function reserve(port: number): boolean {
  try {
    fs.writeFileSync(path.join(RESERVATIONS, String(port)), String(process.pid), { flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw error;
  }
}

/** The folders of runs whose ava process has ended. */
function removeEndedRuns(): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(ROOT);
  } catch {
    return;
  }
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.ppid || alive(pid)) continue;
    fs.rmSync(path.join(ROOT, entry), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ host: '127.0.0.1', port }, () => server.close(() => resolve(true)));
  });
}
