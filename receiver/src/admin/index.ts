/**
 * The /admin/ dashboard. Placeholder until the dashboard lands: answers 404.
 * Contract (docs/DESIGN.md): the server calls the handler for every path under /admin.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface AdminDeps {
  // Refined by the dashboard: database, config, store, clock.
  [key: string]: unknown;
}

export type AdminHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => Promise<void>;

export function createAdminHandler(_deps: AdminDeps): AdminHandler {
  return async (_req, res) => {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
    res.end('not found\n');
  };
}
