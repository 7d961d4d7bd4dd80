// The installed package's own directory, found from this module's location rather than the working directory:
// the daemon runs from wherever the service manager starts it, and the fonts and package.json travel with the code.

import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GatewayError } from '../errors.js';

const PACKAGE_NAME = 'cxr-gateway';

let cachedRoot: string | undefined;

/** The nearest ancestor directory of this module whose package.json is cxr-gateway's. */
export function packageRoot(): string {
  if (cachedRoot !== undefined) return cachedRoot;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (existsSync(candidate) && readPackageName(candidate) === PACKAGE_NAME) {
      cachedRoot = dir;
      return dir;
    }
    const parent = path.dirname(dir);
    if (parent === dir) {
      throw new GatewayError(
        'PACKAGE_ROOT_MISSING',
        `cannot find the ${PACKAGE_NAME} package.json above ${fileURLToPath(import.meta.url)}; reinstall the gateway so that dist/ and package.json stay together`,
      );
    }
    dir = parent;
  }
}

/** The gateway's version (package.json), written as SoftwareVersions in what we produce. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(path.join(packageRoot(), 'package.json'), 'utf8')) as { version?: unknown };
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
}

function readPackageName(file: string): string | undefined {
  try {
    const pkg = JSON.parse(readFileSync(file, 'utf8')) as { name?: unknown };
    return typeof pkg.name === 'string' ? pkg.name : undefined;
  } catch {
    return undefined;
  }
}
