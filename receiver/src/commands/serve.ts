/**
 * `serve`: prints the resolved configuration (secrets masked) on stderr, opens the database,
 * listens, prints `listening on http://host:port` as its only stdout line, and on SIGTERM/SIGINT
 * lets in-flight requests finish and closes the database.
 */
import { VERSION } from '../../../src/version';
import { describeConfig, formatHostPort } from '../config';
import { ReceiverError } from '../errors';
import { createLogger } from '../log';
import { createReceiver } from '../server';
import { openStore } from '../store';
import { loadConfig } from './shared';
import { type CommandSpec, EXIT } from './types';

export const serveCommand: CommandSpec = {
  name: 'serve',
  register(program, ctx, act) {
    program
      .command('serve')
      .description('run the HTTP receiver (configured by environment variables; see docs/receiver.md)')
      .addHelpText(
        'after',
        `
Environment:
  DATABASE_PATH               SQLite file, created on first start (default ccflux.db)
  LISTEN_ADDR                 host:port to bind (default 127.0.0.1:8080)
  ACCESS_TOKEN_EXPIRY_SECS    access token lifetime (default 28800)
  REFRESH_TOKEN_ROLLING_DAYS  each exchange extends the refresh token to now + this (default 90)
  RATE_LIMIT_PER_MINUTE       per token across /report, /token, /register-key (default 30)
  BODY_LIMIT_KB               larger bodies get 413 (default 64)
  REQUIRE_SIGNATURES          1/true: unsigned reports get 403 signature-required (default off)
  ADMIN_TOKEN                 enables /admin/ (at least 16 characters; default unset)
  ADMIN_TOKEN_FILE            a file (mode 0600) holding ADMIN_TOKEN instead of the variable
  COOKIE_SECURE               1/true: the admin session cookie gets ; Secure (default off)
  PUBLIC_URL                  https:// address devices use; printed by users add/import
  PRICES_FILE                 JSON price table overriding the shipped prices (docs/admin.md)
  SEAT_PRICE_USD              monthly seat price shown next to the API-equivalent value
  DISPLAY_TIME_ZONE           IANA zone the dashboard shows times in (default UTC)
  LOG_LEVEL                   JSON log on stderr: fatal..trace, or silent (default info)
  METRICS_TOKEN               /metrics needs Authorization: Bearer <it> (default open)
  METRICS_PER_USER            1/true: usage series per user on /metrics (default off)
  ALERT_WEBHOOK_URL           budget alerts POSTed here, Slack-compatible (default unset)

Example:
  DATABASE_PATH=/var/lib/ccflux/ccflux.db LISTEN_ADDR=127.0.0.1:8080 ccflux-receiver serve`,
      )
      .option('--json', 'print the listening address as {"listening":"http://…"} instead of a line')
      .action((opts: { json?: boolean }) =>
        act(async () => {
          const config = loadConfig(ctx);
          ctx.output.err(`ccflux-receiver ${VERSION}`);
          for (const line of describeConfig(config)) ctx.output.err(`  ${line}`);

          const store = await openStore(config, ctx.now);
          const logger = createLogger(config.logLevel);
          const receiver = createReceiver({ config, store, now: ctx.now, output: ctx.output, logger });
          let address: { address: string; port: number };
          try {
            address = await receiver.listen();
          } catch (err) {
            await receiver.close();
            await store.close();
            const where = formatHostPort(config.listenHost, config.listenPort);
            throw new ReceiverError('config', `cannot listen on ${where}: ${(err as Error).message}`, { cause: err });
          }

          const stopped = new Promise<string>((resolve) => {
            ctx.onShutdownSignal(resolve);
          });
          const url = `http://${formatHostPort(config.listenHost, address.port)}`;
          ctx.output.out(opts.json ? JSON.stringify({ listening: url }) : `listening on ${url}`);
          logger.info({ msg: 'listening', url, version: VERSION });
          const signal = await stopped;
          ctx.output.err(`ccflux-receiver: ${signal} received, finishing in-flight requests`);
          await receiver.close();
          await store.close();
          logger.info({ msg: 'stopped', signal });
          ctx.output.err('ccflux-receiver: stopped');
          return EXIT.ok;
        }),
      );
  },
};
