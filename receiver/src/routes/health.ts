/** `GET /health`: 200 while the database answers, 503 when it does not. */
import { sendJson } from '../http';
import type { Route } from './context';

export const handleHealth: Route = async (_req, res, deps) => {
  try {
    await deps.store.ping();
    sendJson(res, 200, { status: 'ok', db: 'ok' });
  } catch {
    sendJson(res, 503, { status: 'error', db: 'error' });
  }
};
