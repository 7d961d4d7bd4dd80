import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/test/helpers -> the script stays in the source tree (tsc does not copy it).
const SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/helpers/atna_check.py');

export interface XmlNode {
  tag: string;
  attrs: Record<string, string>;
  text: string;
  children: XmlNode[];
}

export interface AtnaCheck {
  /** Empty when the document has every element and attribute PS3.15 A.5.1.1's schema requires, in order. */
  errors: string[];
  tree: XmlNode | null;
}

/** Parses each document with Python's expat and checks it against the audit schema's required content. */
export function checkAtna(documents: readonly string[]): AtnaCheck[] {
  const result = spawnSync('/usr/bin/python3', [SCRIPT], { input: JSON.stringify(documents), encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`atna_check.py failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as AtnaCheck[];
}

export function child(node: XmlNode | null | undefined, tag: string): XmlNode | undefined {
  return node?.children.find((c) => c.tag === tag);
}

export function children(node: XmlNode | null | undefined, tag: string): XmlNode[] {
  return node?.children.filter((c) => c.tag === tag) ?? [];
}
