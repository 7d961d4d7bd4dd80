import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { packageRoot } from '../../reporting/package-root.js';
import { messagePage } from './pages/layout.js';

const TYPES: Record<string, string> = {
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  svg: 'image/svg+xml',
  png: 'image/png',
};

/** Where the console's CSS, script and logo ship: assets/console in the package (never fetched from elsewhere). */
export function consoleAssetsDir(): string {
  return path.join(packageRoot(), 'assets', 'console');
}

/**
 * GET /assets/console/<name>: the files of assets/console, without a session (the login page needs its CSS).
 * Only plain names with a known extension are served, so no path can leave the folder.
 */
export function registerAssets(app: FastifyInstance): void {
  const dir = consoleAssetsDir();
  app.get<{ Params: { name: string } }>('/assets/console/:name', { schema: { hide: true } }, async (request, reply) => {
    const match = /^[a-z0-9][a-z0-9-]*\.(css|js|svg|png)$/.exec(request.params.name);
    const type = match ? TYPES[match[1] ?? ''] : undefined;
    const body = type ? await readFile(path.join(dir, request.params.name)).catch(() => undefined) : undefined;
    if (!type || !body) {
      return reply.code(404).type('text/html; charset=utf-8').send(messagePage('Not found', 'No such console asset.'));
    }
    return reply.type(type).header('cache-control', 'no-cache').send(body);
  });
}
