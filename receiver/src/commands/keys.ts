/** `keys list|revoke`: device signing keys. */
import { CREATE_OPTION_HELP, table, withStore } from './shared';
import { type CommandSpec, EXIT } from './types';

export const keysCommand: CommandSpec = {
  name: 'keys',
  register(program, ctx, act) {
    const keys = program
      .command('keys')
      .description('list and revoke device signing keys (database: DATABASE_PATH)')
      .addHelpText('after', '\nExample:\n  ccflux-receiver keys revoke "q0Zx...base64...=" --user ana@example.org');

    keys
      .command('list')
      .description('list registered device keys')
      .option('--json', 'print JSON')
      .option('--create', CREATE_OPTION_HELP)
      .action((opts: { json?: boolean; create?: boolean }) =>
        act(async () => {
          const rows = await withStore(ctx, (store) => store.listKeys(), opts);
          if (opts.json) {
            ctx.output.out(JSON.stringify(rows, null, 2));
          } else if (rows.length === 0) {
            ctx.output.out('no device keys registered yet');
          } else {
            ctx.output.out(
              table(
                ['USER', 'DEVICE', 'PUBLIC KEY', 'REGISTERED', 'LAST SEEN', 'REVOKED'],
                rows.map((k) => [k.user_email, k.device_id, k.public_key, k.registered_at, k.last_seen_at, k.revoked_at]),
              ),
            );
          }
          return EXIT.ok;
        }),
      );

    keys
      .command('revoke')
      .description("revoke one user's registration of a public key: that device's reports get 403 key-revoked and it goes silent")
      .argument('<public-key>', 'base64 public key as shown by keys list')
      .option('--user <email>', 'the user whose registration to revoke (needed when several users registered the key)')
      .option('--json', 'print {"public_key","revoked_registrations"}')
      .option('--create', CREATE_OPTION_HELP)
      .action((publicKey: string, opts: { user?: string; json?: boolean; create?: boolean }) =>
        act(async () => {
          const changed = await withStore(
            ctx,
            async (store) => {
              const n = await store.revokeKey(publicKey.trim(), opts.user);
              await store.recordAudit({ actor: 'cli', source: 'cli', action: 'key.revoke', target: publicKey.trim(), detail: { registrations: n, ...(opts.user === undefined ? {} : { user: opts.user }) } });
              return n;
            },
            opts,
          );
          if (opts.json) ctx.output.out(JSON.stringify({ public_key: publicKey.trim(), revoked_registrations: changed }));
          else ctx.output.out(changed === 0 ? 'key was already revoked' : 'revoked the key for that user');
          return EXIT.ok;
        }),
      );
  },
};
