import { readFile } from 'node:fs/promises';
import { describeError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { writeFileAtomic } from '../store/atomic-file.js';
import type { DeliveryOutcome, Destination, Hl7Message } from './destination.js';
import { folderFailure } from './folder-failure.js';

export interface RisFolderDestinationOptions {
  name: string;
  /** Absolute (the config loader resolves it against the config file's folder). */
  path: string;
  logger: Logger;
}

// A control ID becomes a file name: letters, digits and . _ - only, not starting with a dot (hidden files
// are our temporaries), at most 64 characters (HL7 allows 20; our own IDs are shorter still).
const SAFE_CONTROL_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/;

/**
 * A RIS hand-over folder: each message lands as `<path>/<controlId>.hl7`, written atomically with its bytes
 * unchanged (segments stay separated by `\r`, as on the wire). The same control ID again replaces the file, so
 * a retried delivery leaves one file per message.
 */
export class RisFolderDestination implements Destination<Hl7Message> {
  readonly name: string;
  private stopped = false;

  constructor(private readonly options: RisFolderDestinationOptions) {
    this.name = options.name;
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {
    this.stopped = true;
  }

  async deliver(items: readonly Hl7Message[]): Promise<DeliveryOutcome> {
    const { logger } = this.options;
    const folder = this.options.path;
    const refused: string[] = [];
    for (const item of items) {
      if (this.stopped)
        return {
          kind: 'retry',
          cause: 'stopped',
          reason: `delivery to folder ${folder} was stopped (the gateway is shutting down)`,
        };
      const checked = await checkMessage(item);
      if (typeof checked === 'string') {
        refused.push(checked);
        continue;
      }
      try {
        await writeFileAtomic(folder, `${item.controlId}.hl7`, checked);
      } catch (error) {
        const failure = folderFailure(error, folder);
        logger.warn('folder delivery failed', {
          event: 'EXPORT-6010',
          destination: this.name,
          controlId: item.controlId,
          why: failure.reason,
        });
        return { kind: 'retry', ...failure };
      }
    }
    if (refused.length > 0) {
      const reason = `${refused.length} of ${items.length} messages cannot go to ${folder}: ${refused.join('; ')}`;
      logger.warn('folder delivery parked', { event: 'EXPORT-6011', destination: this.name, why: reason });
      return { kind: 'parked', cause: 'invalid-message', reason };
    }
    logger.debug('delivered to folder', { destination: this.name, messages: items.length });
    return { kind: 'delivered' };
  }
}

/** The message's bytes, or why it cannot be written under its control ID. */
async function checkMessage(item: Hl7Message): Promise<Buffer | string> {
  if (!SAFE_CONTROL_ID.test(item.controlId))
    return `control ID '${item.controlId}' cannot be a file name (letters, digits, . _ - only)`;
  let text: string;
  try {
    text = 'message' in item ? item.message : await readFile(item.path, 'utf8');
  } catch (error) {
    return `message ${item.controlId}: ${describeError(error)}`;
  }
  const inMessage = mshControlId(text);
  // A file named for another message's ID would be matched to the wrong result by whoever reads the folder.
  if (inMessage !== item.controlId)
    return `message ${item.controlId}: its MSH-10 is '${inMessage ?? 'missing (no MSH segment)'}'`;
  return Buffer.from(text, 'utf8');
}

function mshControlId(message: string): string | undefined {
  if (!message.startsWith('MSH') || message.length < 4) return undefined;
  const separator = message.charAt(3);
  const msh = message.split(/\r\n|\r|\n/)[0] ?? '';
  // fields[0] is 'MSH' and fields[1] is MSH-2 (MSH-1 is the separator itself), so MSH-n is fields[n - 1].
  return msh.split(separator)[9];
}
