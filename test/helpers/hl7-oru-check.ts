import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/test/helpers -> the script stays in the source tree (tsc does not copy it).
const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/helpers/hl7_oru_check.py');

export interface FieldCheck {
  /** The row's key in docs/hl7-interface.md. */
  key: string;
  segment: string;
  /** Which segment of that name, from 1. */
  occurrence: number;
  field: number;
  /** From 1; the first when left out. */
  component?: number;
  expected: string;
}

export interface OruCheck {
  errors: string[];
  checked: number;
}

/** Parses the message with python3-hl7 and compares each field (Debian's python3: the one that has python3-hl7). */
export function checkOru(message: string, checks: readonly FieldCheck[]): OruCheck {
  const result = spawnSync('/usr/bin/python3', [SCRIPT], {
    input: JSON.stringify({ message, checks }),
    encoding: 'utf8',
  });
  if (result.status !== 0) throw new Error(`hl7_oru_check.py failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as OruCheck;
}
