// Test helper: a folder nobody (not even this process) can create files in, and undoing that.
//
// chmod 0555 does not stop root, and CI runs the tests as root; there, the folder is made immutable with
// `chattr +i` instead (ext4 and most local file systems; not tmpfs), which refuses new entries with EPERM.

import { chmodSync, writeFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { runCommand } from '../helpers/run-command.js';

export async function makeReadOnly(dir: string): Promise<() => Promise<void>> {
  let undo: () => Promise<void>;
  if (process.getuid?.() === 0) {
    const result = await runCommand('chattr', ['+i', dir], { timeoutMs: 10_000 });
    if (result.code !== 0)
      throw new Error(`running as root, only chattr +i makes ${dir} read-only, and it failed: ${result.stderr.trim()}`);
    undo = async () => {
      await runCommand('chattr', ['-i', dir], { timeoutMs: 10_000 });
    };
  } else {
    chmodSync(dir, 0o555);
    undo = async () => chmodSync(dir, 0o755);
  }
  // The test is only meaningful if writing there really fails.
  const probe = path.join(dir, 'probe');
  try {
    writeFileSync(probe, 'x');
  } catch {
    return undo;
  }
  rmSync(probe, { force: true });
  await undo();
  throw new Error(`${dir} is still writable after making it read-only`);
}
