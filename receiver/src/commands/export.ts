/** `export`: usage, raw usage rows or the audit log as CSV or JSON, streamed to stdout or a file. */
import { createWriteStream } from 'node:fs';
import { InvalidArgumentError } from 'commander';
import { EXPORT_KINDS, type ExportFormat, type ExportKind, drainingWriter, streamExport } from '../admin/export';
import { parseFilter } from '../admin/filters';
import { ReceiverError } from '../errors';
import { PriceBook } from '../prices/cost';
import { loadPrices } from '../prices/load';
import { CREATE_OPTION_HELP, withStore } from './shared';
import { type CommandSpec, EXIT } from './types';

function oneOf<T extends string>(values: readonly T[], what: string) {
  return (value: string): T => {
    if (!(values as readonly string[]).includes(value)) throw new InvalidArgumentError(`${what} must be one of ${values.join(', ')}`);
    return value as T;
  };
}

export const exportCommand: CommandSpec = {
  name: 'export',
  register(program, ctx, act) {
    program
      .command('export')
      .description('export usage (user × model × day, with cost), raw usage rows or the audit log as CSV or JSON')
      .argument('[what]', `one of ${EXPORT_KINDS.join(', ')}`, oneOf(EXPORT_KINDS, 'what'), 'usage')
      .option('--format <f>', 'csv or json', oneOf(['csv', 'json'] as const, '--format'), 'csv')
      .option('--range <r>', '24h, 7d, 30d or 90d (default 30d); ignored with --from/--to')
      .option('--from <YYYY-MM-DD>', 'first UTC day (with --to: a custom range)')
      .option('--to <YYYY-MM-DD>', 'last UTC day, inclusive')
      .option('--user <email>', 'only this user')
      .option('--division <name>', 'only this division')
      .option('--model <id>', 'only this model')
      .option('--out <file>', 'write to this file (created 0600, never overwritten) instead of stdout')
      .option('--create', CREATE_OPTION_HELP)
      .addHelpText(
        'after',
        '\nStreamed in bounded chunks: a year of 1,000 users takes constant memory. Costs use the shipped prices or PRICES_FILE.' +
          '\n\nExamples:\n  ccflux-receiver export usage --from 2026-04-01 --to 2026-04-30 > april.csv' +
          '\n  ccflux-receiver export events --format json --division Research --range 7d --out research.json',
      )
      .action(
        (
          what: ExportKind,
          opts: { format: ExportFormat; range?: string; from?: string; to?: string; user?: string; division?: string; model?: string; out?: string; create?: boolean },
        ) =>
          act(async () => {
            const params = new URLSearchParams();
            if (opts.from !== undefined || opts.to !== undefined) {
              params.set('range', 'custom');
              params.set('from', opts.from ?? '');
              params.set('to', opts.to ?? '');
            } else if (opts.range !== undefined) params.set('range', opts.range);
            for (const k of ['user', 'division', 'model'] as const) if (opts[k] !== undefined) params.set(k, opts[k]!);
            const filter = parseFilter(params, ctx.now().getTime());
            if (filter.problems.length > 0) throw new ReceiverError('invalid', filter.problems.join(' '));
            const count = await withStore(
              ctx,
              async (store, config) => {
                const prices = new PriceBook(loadPrices(config.pricesFile));
                if (opts.out === undefined) return streamExport(store, what, opts.format, filter, prices, async (chunk) => ctx.output.write?.(chunk) ?? ctx.output.out(chunk.replace(/\n$/, '')));
                const file = createWriteStream(opts.out, { flags: 'wx', mode: 0o600 });
                await new Promise<void>((resolve, reject) => {
                  file.once('open', () => resolve());
                  file.once('error', (err) => reject(new ReceiverError('invalid', `cannot create ${opts.out}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, { cause: err })));
                });
                const n = await streamExport(store, what, opts.format, filter, prices, drainingWriter(file));
                await new Promise<void>((resolve) => file.end(() => resolve()));
                return n;
              },
              opts,
            );
            ctx.output.err(`ccflux-receiver: exported ${count} ${what === 'usage' ? 'user × model × day rows' : what === 'events' ? 'usage rows' : 'audit entries'} (${filter.fromIso} to ${filter.toIso})${opts.out ? ` to ${opts.out}` : ''}`);
            return EXIT.ok;
          }),
      );
  },
};
