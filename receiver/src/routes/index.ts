/** The endpoint table: path → allowed methods → handler. Anything else is 404 or 405. */
import { PATHS } from '../../../src/protocol/wire';
import type { Route } from './context';
import { handleHealth } from './health';
import { handleMetrics } from './metrics';
import { handleRegisterKey } from './register-key';
import { handleReport } from './report';
import { handleReports } from './reports';
import { handleToken } from './token';

export interface Endpoint {
  methods: readonly string[];
  handler: Route;
}

export const ROUTES: ReadonlyMap<string, Endpoint> = new Map<string, Endpoint>([
  [PATHS.token, { methods: ['POST'], handler: handleToken }],
  [PATHS.registerKey, { methods: ['POST'], handler: handleRegisterKey }],
  [PATHS.report, { methods: ['POST'], handler: handleReport }],
  [PATHS.reports, { methods: ['POST'], handler: handleReports }],
  [PATHS.health, { methods: ['GET', 'HEAD'], handler: handleHealth }],
  [PATHS.metrics, { methods: ['GET', 'HEAD'], handler: handleMetrics }],
]);

/** Every path under /admin, including /admin itself, belongs to the dashboard. */
export function isAdminPath(pathname: string): boolean {
  return pathname === '/admin' || pathname.startsWith('/admin/');
}
