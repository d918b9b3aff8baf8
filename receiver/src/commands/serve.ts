/**
 * `serve`: prints the resolved configuration (secrets masked) on stderr, opens the database,
 * listens, prints `listening on http://host:port` as its only stdout line, and on SIGTERM/SIGINT
 * lets in-flight requests finish and closes the database.
 */
import { VERSION } from '../../../src/version';
import { describeConfig, formatHostPort } from '../config';
import { ReceiverError } from '../errors';
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
  COOKIE_SECURE               1/true: the admin session cookie gets ; Secure (default off)

Example:
  DATABASE_PATH=/var/lib/ccflux/ccflux.db LISTEN_ADDR=127.0.0.1:8080 ccflux-receiver serve`,
      )
      .action(() =>
        act(async () => {
          const config = loadConfig(ctx);
          ctx.output.err(`ccflux-receiver ${VERSION}`);
          for (const line of describeConfig(config)) ctx.output.err(`  ${line}`);

          const store = await openStore(config, ctx.now);
          const receiver = createReceiver({ config, store, now: ctx.now, output: ctx.output });
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
          ctx.output.out(`listening on http://${formatHostPort(config.listenHost, address.port)}`);
          const signal = await stopped;
          ctx.output.err(`ccflux-receiver: ${signal} received, finishing in-flight requests`);
          await receiver.close();
          await store.close();
          ctx.output.err('ccflux-receiver: stopped');
          return EXIT.ok;
        }),
      );
  },
};
