/** Helpers shared by the provisioning commands. */
import { InvalidArgumentError } from 'commander';
import { parseConfig, type ReceiverConfig } from '../config';
import { ReceiverError } from '../errors';
import { openStore, type Store } from '../store';
import type { CliContext } from './types';

export function loadConfig(ctx: CliContext): ReceiverConfig {
  const parsed = parseConfig(ctx.env);
  if (!parsed.ok) throw new ReceiverError('config', `invalid configuration:\n  ${parsed.errors.join('\n  ')}`);
  return parsed.config;
}

/** Opens the configured database (creating and migrating it if needed), runs `body`, closes it. */
export async function withStore<T>(ctx: CliContext, body: (store: Store) => Promise<T>): Promise<T> {
  const config = loadConfig(ctx);
  const store = await openStore(config, ctx.now);
  try {
    return await body(store);
  } finally {
    await store.close();
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
