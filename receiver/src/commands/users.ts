/** `users add|import|list|revoke|reissue`: provisioning without the dashboard. */
import { existsSync, readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { ReceiverError } from '../errors';
import type { ReceiverConfig } from '../config';
import { type Store, normalizeEmail } from '../store';
import { CREATE_OPTION_HELP, csvLine, parseCsv, parseDays, table, withStore, writePrivateFile } from './shared';
import { type Act, type CliContext, type CommandSpec, EXIT } from './types';

const MAX_IMPORT_BYTES = 16 * 1024 * 1024;
const ENDPOINT_PLACEHOLDER = 'https://<your receiver> (set PUBLIC_URL to print it here)';

/** What a new user needs, and the one command they run (the token is pasted at its hidden prompt). */
export function onboarding(email: string, endpoint: string | undefined): { endpoint: string; command: string; lines: string[] } {
  const ep = endpoint ?? ENDPOINT_PLACEHOLDER;
  const command = endpoint === undefined ? 'ccflux login --endpoint <endpoint>' : `ccflux login --endpoint ${endpoint}`;
  return {
    endpoint: ep,
    command,
    lines: [
      `Send ${email} the refresh token above and this, over a private channel:`,
      `  endpoint   ${ep}`,
      `  they run   ${command}`,
      '             (it asks for the token without echo; or in Claude Code: /plugin → ccflux → configure)',
    ],
  };
}

interface ImportRow {
  line: number;
  email: string;
  division: string;
}

/** Reads the CSV header (email, division; any order, other columns ignored) and every row; all
 * problems at once, so a file is fixed in one go and nothing is half-imported. */
export function parseImport(text: string): ImportRow[] {
  const rows = parseCsv(text);
  if (rows.length === 0) throw new ReceiverError('invalid', 'the CSV is empty; expected a header line "email,division"');
  const header = rows[0]!.map((h) => h.trim().toLowerCase());
  const emailCol = header.indexOf('email');
  const divisionCol = header.indexOf('division');
  if (emailCol < 0) throw new ReceiverError('invalid', 'the CSV has no "email" column; the first line must be a header such as "email,division"');
  const errors: string[] = [];
  const seen = new Map<string, number>();
  const out: ImportRow[] = [];
  rows.slice(1).forEach((r, i) => {
    const line = i + 2;
    const raw = (r[emailCol] ?? '').trim();
    let email: string;
    try {
      email = normalizeEmail(raw);
    } catch {
      errors.push(`line ${line}: not a valid email address`);
      return;
    }
    const first = seen.get(email);
    if (first !== undefined) {
      errors.push(`line ${line}: ${email} already appears on line ${first}`);
      return;
    }
    seen.set(email, line);
    const division = divisionCol < 0 ? '' : (r[divisionCol] ?? '').trim();
    if (division.length > 255 || /[\x00-\x1f\x7f]/.test(division)) {
      errors.push(`line ${line}: division must be at most 255 printable characters`);
      return;
    }
    out.push({ line, email, division });
  });
  if (errors.length > 0) {
    const shown = errors.slice(0, 20);
    if (errors.length > shown.length) shown.push(`… and ${errors.length - shown.length} more`);
    throw new ReceiverError('invalid', `the CSV has ${errors.length} problem(s); nothing was imported:\n  ${shown.join('\n  ')}`);
  }
  return out;
}

function defaultTokensFile(now: Date): string {
  return `ccflux-tokens-${now.toISOString().slice(0, 19).replace(/[-:]/g, '').replace('T', '-')}.csv`;
}

function printOnboarding(ctx: CliContext, email: string, endpoint: string | undefined): void {
  if (ctx.stderrIsTTY !== true) return;
  for (const line of onboarding(email, endpoint).lines) ctx.output.err(line);
}

type AddOptions = { division?: string; days?: number; json?: boolean; create?: boolean };
type ImportOptions = { out?: string; days?: number; json?: boolean; create?: boolean };
type ImportStatus = { email: string; division: string; status: 'created' | 'unchanged' | 'division-updated' | 'revoked' };
type ImportResult = { statuses: ImportStatus[]; created: number; endpoint: string | undefined };

function registerAdd(users: Command, ctx: CliContext, act: Act): void {
  users
    .command('add')
    .description('create a user and print their new refresh token (only the token, on stdout); on a terminal, stderr shows what to send them')
    .argument('<email>', "the user's email address (usage is attributed to it)")
    .option('--division <name>', 'team or division, shown in the dashboard')
    .option('--days <n>', 'refresh token lifetime before its first use (default REFRESH_TOKEN_ROLLING_DAYS)', parseDays)
    .option('--json', 'print {"email","refresh_token","endpoint","command"} instead of the bare token')
    .option('--create', CREATE_OPTION_HELP)
    .addHelpText('after', '\nExample:\n  TOKEN=$(ccflux-receiver users add ana@example.org --division Research --days 30)')
    .action((email: string, opts: AddOptions) => act(() => runAdd(ctx, email, opts)));
}

async function runAdd(ctx: CliContext, email: string, opts: AddOptions): Promise<number> {
  const { refreshToken, endpoint } = await withStore(
    ctx,
    async (store, config) => {
      const created = await store.createUser(email, { ...(opts.division === undefined ? {} : { division: opts.division }), ...(opts.days === undefined ? {} : { days: opts.days }) });
      await store.recordAudit({ actor: 'cli', source: 'cli', action: 'user.provision', target: normalizeEmail(email), detail: { division: opts.division ?? '', ...(opts.days === undefined ? {} : { days: opts.days }) } });
      return { ...created, endpoint: config.publicUrl };
    },
    opts,
  );
  const address = normalizeEmail(email);
  if (opts.json) {
    const o = onboarding(address, endpoint);
    ctx.output.out(JSON.stringify({ email: address, refresh_token: refreshToken, endpoint: endpoint ?? null, command: o.command }));
  } else {
    ctx.output.out(refreshToken);
    printOnboarding(ctx, address, endpoint);
  }
  return EXIT.ok;
}

function registerImport(users: Command, ctx: CliContext, act: Act): void {
  users
    .command('import')
    .description('provision every user of a CSV (columns email, division); idempotent: existing users keep their token')
    .argument('<csv>', 'CSV file with a header line; "email" is required, "division" optional, other columns ignored')
    .option('--out <file>', 'where to write the new tokens (CSV, mode 0600; default ./ccflux-tokens-<time>.csv)')
    .option('--days <n>', 'refresh token lifetime before its first use (default REFRESH_TOKEN_ROLLING_DAYS)', parseDays)
    .option('--json', 'print a JSON summary (no tokens: they are only in the --out file)')
    .option('--create', CREATE_OPTION_HELP)
    .addHelpText(
      'after',
      '\nNew users get a token, written with the endpoint to the --out file (email,division,endpoint,refresh_token).' +
        '\nExisting users are left alone (a changed division is updated); revoked users are reported, not re-enabled.' +
        '\nA file with any bad line is refused as a whole. Running it again creates only the users still missing.' +
        '\n\nExample:\n  DATABASE_PATH=/var/lib/ccflux/ccflux.db PUBLIC_URL=https://ccflux.example.org \\\n    ccflux-receiver users import staff.csv --out tokens.csv',
    )
    .action((file: string, opts: ImportOptions) => act(() => runImport(ctx, file, opts)));
}

function readImportFile(file: string): string {
  try {
    const buf = readFileSync(file);
    if (buf.length > MAX_IMPORT_BYTES) throw new ReceiverError('invalid', `${file} is larger than ${MAX_IMPORT_BYTES} bytes`);
    return buf.toString('utf8');
  } catch (err) {
    if (err instanceof ReceiverError) throw err;
    throw new ReceiverError('invalid', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

async function runImport(ctx: CliContext, file: string, opts: ImportOptions): Promise<number> {
  const text = readImportFile(file);
  const rows = parseImport(text);
  const out = opts.out ?? defaultTokensFile(ctx.now());
  // Checked before any user is created, so no token is issued that could not be written.
  if (existsSync(out)) throw new ReceiverError('invalid', `${out} already exists; it may hold tokens. Move it away or choose another file with --out`);
  const result = await withStore(ctx, (store, config) => importRows(store, config, rows, file, out, opts), opts);
  printImportSummary(ctx, result, out, opts);
  return EXIT.ok;
}

async function importRows(store: Store, config: ReceiverConfig, rows: ImportRow[], file: string, out: string, opts: ImportOptions): Promise<ImportResult> {
  const existing = new Map((await store.listUsers()).map((u) => [u.email, u]));
  const statuses: ImportStatus[] = [];
  let tokens = csvLine(['email', 'division', 'endpoint', 'refresh_token']);
  const created: string[] = [];
  // The tokens file is written once, at the end, and also when a row fails midway: the
  // users created so far are "unchanged" on the next run, so their tokens must not be lost.
  try {
    for (const row of rows) {
      const user = existing.get(row.email);
      if (user === undefined) {
        const { refreshToken } = await store.createUser(row.email, { division: row.division, ...(opts.days === undefined ? {} : { days: opts.days }) });
        tokens += csvLine([row.email, row.division, config.publicUrl ?? '', refreshToken]);
        created.push(row.email);
        statuses.push({ email: row.email, division: row.division, status: 'created' });
      } else if (user.revoked_at !== null) {
        statuses.push({ email: row.email, division: user.division, status: 'revoked' });
      } else if (row.division !== '' && row.division !== user.division) {
        await store.setDivision(row.email, row.division);
        statuses.push({ email: row.email, division: row.division, status: 'division-updated' });
      } else {
        statuses.push({ email: row.email, division: user.division, status: 'unchanged' });
      }
    }
  } finally {
    if (created.length > 0) writePrivateFile(out, tokens);
  }
  await store.recordAudit({
    actor: 'cli',
    source: 'cli',
    action: 'user.import',
    target: file,
    detail: { created: created.length, division_updated: statuses.filter((r) => r.status === 'division-updated').length, rows: rows.length },
  });
  return { statuses, created: created.length, endpoint: config.publicUrl };
}

function printImportSummary(ctx: CliContext, result: ImportResult, out: string, opts: ImportOptions): void {
  const count = (s: string) => result.statuses.filter((r) => r.status === s).length;
  const summary = {
    created: result.created,
    unchanged: count('unchanged'),
    division_updated: count('division-updated'),
    revoked_skipped: count('revoked'),
    tokens_file: result.created > 0 ? out : null,
    users: result.statuses,
  };
  if (opts.json) ctx.output.out(JSON.stringify(summary));
  else {
    ctx.output.out(
      `created ${summary.created}, unchanged ${summary.unchanged}, division updated ${summary.division_updated}, revoked (skipped) ${summary.revoked_skipped}`,
    );
    if (result.created > 0) ctx.output.out(`new tokens written to ${out} (mode 0600): send each user their line over a private channel, then delete the file`);
    for (const r of result.statuses.filter((s) => s.status === 'revoked')) ctx.output.out(`revoked, not re-enabled: ${r.email} (use users add to enable again)`);
  }
  if (result.endpoint === undefined && result.created > 0) ctx.output.err('ccflux-receiver: PUBLIC_URL is not set, so the endpoint column is empty; set it to the https:// address devices use');
}

function registerList(users: Command, ctx: CliContext, act: Act): void {
  users
    .command('list')
    .description('list users with their token expiry and active device keys')
    .option('--json', 'print JSON')
    .option('--create', CREATE_OPTION_HELP)
    .action((opts: { json?: boolean; create?: boolean }) =>
      act(async () => {
        const rows = await withStore(ctx, (store) => store.listUsers(), opts);
        if (opts.json) {
          ctx.output.out(JSON.stringify(rows, null, 2));
        } else if (rows.length === 0) {
          ctx.output.out('no users (add one with: ccflux-receiver users add <email>)');
        } else {
          ctx.output.out(
            table(
              ['EMAIL', 'DIVISION', 'CREATED', 'REVOKED', 'TOKEN', 'TOKEN EXPIRES', 'LAST EXCHANGE', 'KEYS'],
              rows.map((u) => [u.email, u.division, u.created_at, u.revoked_at, u.token_ref, u.token_expires_at, u.token_last_used_at, u.active_keys]),
            ),
          );
        }
        return EXIT.ok;
      }),
    );
}

function registerRevoke(users: Command, ctx: CliContext, act: Act): void {
  users
    .command('revoke')
    .description('revoke a user: their refresh and access tokens stop working at once')
    .argument('<email>')
    .option('--json', 'print {"email","revoked":true}')
    .option('--create', CREATE_OPTION_HELP)
    .action((email: string, opts: { json?: boolean; create?: boolean }) =>
      act(async () => {
        await withStore(
          ctx,
          async (store) => {
            await store.revokeUser(email);
            await store.recordAudit({ actor: 'cli', source: 'cli', action: 'user.revoke', target: normalizeEmail(email) });
          },
          opts,
        );
        const address = normalizeEmail(email);
        ctx.output.out(opts.json ? JSON.stringify({ email: address, revoked: true }) : `revoked ${address}`);
        return EXIT.ok;
      }),
    );
}

function registerReissue(users: Command, ctx: CliContext, act: Act): void {
  users
    .command('reissue')
    .description("revoke a user's refresh tokens and print a new one (only the token, on stdout)")
    .argument('<email>')
    .option('--days <n>', 'refresh token lifetime before its first use (default REFRESH_TOKEN_ROLLING_DAYS)', parseDays)
    .option('--json', 'print {"email","refresh_token","endpoint","command"} instead of the bare token')
    .option('--create', CREATE_OPTION_HELP)
    .action((email: string, opts: { days?: number; json?: boolean; create?: boolean }) =>
      act(async () => {
        const { refreshToken, endpoint } = await withStore(
          ctx,
          async (store, config) => {
            const issued = await store.reissueToken(email, opts.days === undefined ? {} : { days: opts.days });
            await store.recordAudit({ actor: 'cli', source: 'cli', action: 'user.reissue', target: normalizeEmail(email) });
            return { ...issued, endpoint: config.publicUrl };
          },
          opts,
        );
        const address = normalizeEmail(email);
        if (opts.json) {
          ctx.output.out(JSON.stringify({ email: address, refresh_token: refreshToken, endpoint: endpoint ?? null, command: onboarding(address, endpoint).command }));
        } else {
          ctx.output.out(refreshToken);
          printOnboarding(ctx, address, endpoint);
        }
        return EXIT.ok;
      }),
    );
}

export const usersCommand: CommandSpec = {
  name: 'users',
  register(program, ctx, act) {
    const users: Command = program
      .command('users')
      .description('provision, import, list and revoke users (database: DATABASE_PATH or DATABASE_URL)')
      .addHelpText(
        'after',
        '\nEvery subcommand says on stderr which database it uses. Without DATABASE_PATH/DATABASE_URL a missing' +
          '\n./ccflux.db is an error (not a silent new database) unless --create is given.' +
          '\n\nExample:\n  DATABASE_PATH=/var/lib/ccflux/ccflux.db ccflux-receiver users add ana@example.org --division Research',
      );
    registerAdd(users, ctx, act);
    registerImport(users, ctx, act);
    registerList(users, ctx, act);
    registerRevoke(users, ctx, act);
    registerReissue(users, ctx, act);
  },
};
