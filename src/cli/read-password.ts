import { UsageError } from './cli-args.js';

/** All of stdin, for --password-stdin: the first line, without its line break. */
async function readStdinLine(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  const text = Buffer.concat(chunks).toString('utf8');
  return text.split(/\r?\n/)[0] ?? '';
}

/** One line typed on the terminal without echo (raw mode), with the prompt on stderr. */
function askHidden(prompt: string): Promise<string> {
  const input = process.stdin;
  // No echo before the prompt shows: whatever is typed once it is visible is never echoed.
  input.setRawMode(true);
  process.stderr.write(prompt);
  return new Promise((resolve, reject) => {
    let typed = '';
    input.resume();
    input.setEncoding('utf8');
    const done = (error?: Error) => {
      input.setRawMode(false);
      input.pause();
      input.removeListener('data', onData);
      process.stderr.write('\n');
      if (error) reject(error);
      else resolve(typed);
    };
    const onData = (data: string) => {
      for (const ch of data) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003' || ch === '\u0004') return done(new UsageError('password entry cancelled'));
        if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
        else typed += ch;
      }
    };
    input.on('data', onData);
  });
}

/**
 * A new password: from stdin with --password-stdin (scripts), else asked twice on the terminal without echo.
 * Never from the command line, where `ps` and shell history would show it.
 */
export async function readPassword(fromStdin: boolean): Promise<string> {
  if (fromStdin) return readStdinLine();
  if (!process.stdin.isTTY)
    throw new UsageError('stdin is not a terminal: pass the password on stdin with --password-stdin');
  const first = await askHidden('New password (at least 12 characters): ');
  const second = await askHidden('Again: ');
  if (first !== second) throw new UsageError('the two passwords differ: nothing was changed');
  return first;
}
