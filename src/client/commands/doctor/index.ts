/**
 * `ccflux doctor`, the logic: the list of checks below, run in order, each ending in pass / warn /
 * fail / skip with a one-line fix for a failure. Each check is one module under `checks/`: its
 * judgement (`judge*`) is a pure function of plain facts, and its `run` gathers those facts
 * (files, one GET /health, one real token exchange) and, with `--fix`, repairs what can be repaired
 * safely: file and folder modes, and an unregistered key. Adding a check is one module and one
 * entry in `CHECKS`.
 *
 * Never in the output: the refresh token, the access token, the signing key.
 */
import type { Check, CheckResult, CheckState, DoctorContext, DoctorDeps } from './check';
import { clockCheck } from './checks/clock';
import { configCheck } from './checks/config';
import { endpointCheck } from './checks/endpoint';
import { keyCheck } from './checks/key';
import { permissionsCheck } from './checks/permissions';
import { pluginCheck } from './checks/plugin';
import { queueCheck } from './checks/queue';
import { exchangeCheck, receiverCheck } from './checks/receiver';

export type { CheckResult, CheckState, DoctorDeps } from './check';
export { CLOCK_SKEW_FAIL_MILLIS, CLOCK_SKEW_WARN_MILLIS, judgeClockSkew } from './checks/clock';
export { type CredentialFacts, judgeConfig } from './checks/config';
export { judgeEndpointScheme } from './checks/endpoint';
export { judgeKey, type KeyFacts } from './checks/key';
export { judgePermissions, loosePermissions, octal, type PermissionEntry, repairPermissions, scanPermissions } from './checks/permissions';
export { findAllowHttp, findPluginInstalls, judgePlugin, type PluginInstall } from './checks/plugin';
export { judgeQueue, QUEUE_STUCK_AFTER_MILLIS, type QueueFacts } from './checks/queue';
export { judgeExchange, judgeHealth } from './checks/receiver';

/** The checks, in the order they run and are shown. Later checks use what earlier ones found. */
export const CHECKS: readonly Check[] = [
  configCheck,
  permissionsCheck,
  endpointCheck,
  receiverCheck,
  exchangeCheck,
  keyCheck,
  clockCheck,
  queueCheck,
  pluginCheck,
];

export const CHECK_IDS: readonly string[] = CHECKS.map((c) => c.id);

export interface DoctorReport {
  ok: boolean;
  dataDir: string;
  checks: CheckResult[];
  summary: { passed: number; warnings: number; failed: number; skipped: number };
}

export async function runDoctor(deps: DoctorDeps, options: { fix: boolean }): Promise<DoctorReport> {
  const ctx: DoctorContext = {
    deps,
    fix: options.fix,
    credentials: null,
    endpoint: null,
    unreachable: false,
    dateHeader: undefined,
    exchange: null,
  };
  const results: CheckResult[] = [];
  for (const check of CHECKS) results.push(await check.run(ctx));
  return summarize(deps.paths.dataDir, results);
}

export function summarize(dataDir: string, checks: CheckResult[]): DoctorReport {
  const count = (state: CheckState) => checks.filter((c) => c.state === state).length;
  const summary = { passed: count('pass'), warnings: count('warn'), failed: count('fail'), skipped: count('skip') };
  return { ok: summary.failed === 0 && summary.skipped === 0, dataDir, checks, summary };
}

const MARK: Record<CheckState, string> = { pass: '✓', warn: '!', fail: '✗', skip: '-' };

/** The human view: one line per check, a `fix:` line under each failure, a summary. Pure. */
export function renderDoctor(report: DoctorReport, shownDataDir: string): string {
  const width = Math.max(...report.checks.map((c) => c.title.length));
  const lines = [`ccflux doctor — data folder ${shownDataDir}`];
  for (const check of report.checks) {
    lines.push(`${MARK[check.state]} ${check.title.padEnd(width)}  ${check.detail}`);
    if (check.fix) lines.push(`  ${' '.repeat(width)}  fix: ${check.fix}`);
  }
  const s = report.summary;
  const parts = [`${s.passed} passed`];
  if (s.warnings > 0) parts.push(`${s.warnings} warning${s.warnings === 1 ? '' : 's'}`);
  if (s.failed > 0) parts.push(`${s.failed} failed`);
  if (s.skipped > 0) parts.push(`${s.skipped} skipped`);
  lines.push(report.ok ? `All checks passed (${parts.join(', ')}).` : `Some checks did not pass (${parts.join(', ')}).`);
  return lines.join('\n');
}
