/** `users add|list|revoke|reissue`: provisioning without the dashboard. */
import type { Command } from 'commander';
import { parseDays, table, withStore } from './shared';
import { type CommandSpec, EXIT } from './types';

export const usersCommand: CommandSpec = {
  name: 'users',
  register(program, ctx, act) {
    const users: Command = program
      .command('users')
      .description('provision, list and revoke users (database: DATABASE_PATH)')
      .addHelpText('after', '\nExample:\n  DATABASE_PATH=/var/lib/ccflux/ccflux.db ccflux-receiver users add ana@example.org --division Research');

    users
      .command('add')
      .description("create a user and print their new refresh token (only the token, on stdout); hand it to the user's `ccflux login`")
      .argument('<email>', 'the user\'s email address (usage is attributed to it)')
      .option('--division <name>', 'team or division, shown in the dashboard')
      .option('--days <n>', 'refresh token lifetime before its first use (default REFRESH_TOKEN_ROLLING_DAYS)', parseDays)
      .addHelpText('after', '\nExample:\n  ccflux-receiver users add ana@example.org --division Research --days 30')
      .action((email: string, opts: { division?: string; days?: number }) =>
        act(async () => {
          const { refreshToken } = await withStore(ctx, (store) => store.createUser(email, opts));
          ctx.output.out(refreshToken);
          return EXIT.ok;
        }),
      );

    users
      .command('list')
      .description('list users with their token expiry and active device keys')
      .option('--json', 'print JSON')
      .action((opts: { json?: boolean }) =>
        act(async () => {
          const rows = await withStore(ctx, (store) => store.listUsers());
          if (opts.json) {
            ctx.output.out(JSON.stringify(rows, null, 2));
          } else if (rows.length === 0) {
            ctx.output.out('no users (add one with: ccflux-receiver users add <email>)');
          } else {
            ctx.output.out(
              table(
                ['EMAIL', 'DIVISION', 'CREATED', 'REVOKED', 'TOKEN', 'TOKEN EXPIRES', 'LAST EXCHANGE', 'KEYS'],
                rows.map((u) => [
                  u.email,
                  u.division,
                  u.created_at,
                  u.revoked_at,
                  u.token_ref,
                  u.token_expires_at,
                  u.token_last_used_at,
                  u.active_keys,
                ]),
              ),
            );
          }
          return EXIT.ok;
        }),
      );

    users
      .command('revoke')
      .description('revoke a user: their refresh and access tokens stop working at once')
      .argument('<email>')
      .action((email: string) =>
        act(async () => {
          await withStore(ctx, (store) => store.revokeUser(email));
          ctx.output.out(`revoked ${email.trim().toLowerCase()}`);
          return EXIT.ok;
        }),
      );

    users
      .command('reissue')
      .description("revoke a user's refresh tokens and print a new one (only the token, on stdout)")
      .argument('<email>')
      .option('--days <n>', 'refresh token lifetime before its first use (default REFRESH_TOKEN_ROLLING_DAYS)', parseDays)
      .action((email: string, opts: { days?: number }) =>
        act(async () => {
          const { refreshToken } = await withStore(ctx, (store) => store.reissueToken(email, opts));
          ctx.output.out(refreshToken);
          return EXIT.ok;
        }),
      );
  },
};
