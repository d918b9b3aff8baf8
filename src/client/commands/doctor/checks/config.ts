import { CcfluxError } from '../../../local/errors';
import { type Credentials, loadCredentials } from '../../../local/credentials';
import { readStoredOptions, type StoredOptions } from '../../../local/plugin-store';
import { readDeliveryStatus } from '../../../deliver/delivery-status';
import { type Check, resultOf, type CheckResult } from '../check';

const id = { id: 'config', title: 'credentials configured' } as const;

export type CredentialFacts =
  | { kind: 'ok'; source: Credentials['source']; endpoint: string }
  | { kind: 'none'; stored?: StoredOptions['kind']; pluginId?: string | null; lastRun?: { source: string | null; endpoint: string | null } }
  | { kind: 'invalid'; message: string };

export function judgeConfig(facts: CredentialFacts, configPath: string): CheckResult {
  if (facts.kind === 'none') {
    const pluginId = facts.pluginId ?? 'ccflux@ccflux';
    if (facts.stored === 'keychain') {
      const last = facts.lastRun?.source ? `; the last delivery run used ${facts.lastRun.source} for ${facts.lastRun.endpoint ?? '?'}` : '';
      return resultOf(
        id,
        'warn',
        `the plugin options of ${pluginId} are in the macOS keychain, which only Claude Code's hooks can read${last}; the next turn in Claude Code delivers`,
      );
    }
    if (facts.stored === 'unset') {
      return resultOf(id, 'fail', `the plugin ${pluginId} is installed but its api_endpoint/api_token are not set`, `run \`claude plugin configure ${pluginId}\` (or \`ccflux login\`)`);
    }
    return resultOf(
      id,
      'fail',
      `no credentials: ${configPath} does not exist and no plugin options are set`,
      'set the plugin options (`claude plugin configure ccflux@ccflux`) or run `ccflux login`',
    );
  }
  if (facts.kind === 'invalid') return resultOf(id, 'fail', facts.message, 'set valid plugin options, or run `ccflux login` to write a fresh config.json');
  const from: Record<Credentials['source'], string> = {
    'plugin-options': 'from the plugin options (CLAUDE_PLUGIN_OPTION_API_*)',
    'plugin-store': 'from the plugin options stored by Claude Code',
    'config-file': `from ${configPath}`,
  };
  return resultOf(id, 'pass', from[facts.source]);
}

/** Credentials: plugin options (the environment inside hooks, Claude Code's files outside) or config.json. */
export const configCheck: Check = {
  ...id,
  async run(ctx) {
    const { env, paths } = ctx.deps;
    let facts: CredentialFacts;
    try {
      ctx.credentials = await loadCredentials({ env, paths });
      if (ctx.credentials) facts = { kind: 'ok', source: ctx.credentials.source, endpoint: ctx.credentials.endpoint };
      else {
        const stored = await readStoredOptions(paths.dataDir);
        const delivery = await readDeliveryStatus(paths);
        facts = {
          kind: 'none',
          stored: stored.kind,
          pluginId: stored.kind === 'none' ? null : stored.pluginId,
          lastRun: { source: delivery.lastCredentialSource, endpoint: delivery.lastEndpoint },
        };
      }
    } catch (err) {
      facts = { kind: 'invalid', message: err instanceof CcfluxError ? err.message : String(err) };
    }
    return judgeConfig(facts, paths.config);
  },
};
