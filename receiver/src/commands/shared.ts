/** Helpers shared by the provisioning commands. */
import { InvalidArgumentError } from 'commander';
import { parseConfig, type ReceiverConfig } from '../config';
import { openDatabase } from '../db/open';
import { ReceiverError } from '../errors';
import { Store } from '../store';
import type { CliContext } from './types';

export function loadConfig(ctx: CliContext): ReceiverConfig {
  const parsed = parseConfig(ctx.env);
  if (!parsed.ok) throw new ReceiverError('config', `invalid configuration:\n  ${parsed.errors.join('\n  ')}`);
  return parsed.config;
}

/** Opens DATABASE_PATH (creating and migrating it if needed), runs `body`, closes it. */
export function withStore<T>(ctx: CliContext, body: (store: Store) => T): T {
  const config = loadConfig(ctx);
  const db = openDatabase(config.databasePath);
  try {
    return body(
      new Store(db, ctx.now, {
        accessTokenExpirySecs: config.accessTokenExpirySecs,
        refreshTokenRollingDays: config.refreshTokenRollingDays,
      }),
    );
  } finally {
    db.close();
  }
}

export function parseDays(value: string): number {
  if (!/^\d{1,4}$/.test(value) || Number(value) < 1) throw new InvalidArgumentError('must be a whole number of days, 1 or more');
  return Number(value);
}

/** Terminal-safe text: a device id or email registered over the network could carry escapes. */
function printable(value: unknown): string {
  if (value === null || value === undefined) return '-';
  return String(value).replace(/[^\x20-\x7e]/g, '?');
}

/** A plain aligned table (columns separated by two spaces), for people. */
export function table(headers: string[], rows: unknown[][]): string {
  const cells = [headers, ...rows.map((row) => row.map(printable))];
  const widths = headers.map((_, i) => Math.max(...cells.map((row) => (row[i] ?? '').length)));
  return cells.map((row) => row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
}
