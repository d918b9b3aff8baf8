import { CcfluxError } from '../../../local/errors';
import { type Credentials, loadCredentials } from '../../../local/credentials';
import { type Check, resultOf, type CheckResult } from '../check';

const id = { id: 'config', title: 'credentials configured' } as const;

export type CredentialFacts =
  | { kind: 'ok'; source: Credentials['source']; endpoint: string }
  | { kind: 'none' }
  | { kind: 'invalid'; message: string };

export function judgeConfig(facts: CredentialFacts, configPath: string): CheckResult {
  if (facts.kind === 'none') {
    return resultOf(id, 'fail', `no credentials: ${configPath} does not exist and the plugin options are not set in this shell`, 'run `ccflux login`');
  }
  if (facts.kind === 'invalid') return resultOf(id, 'fail', facts.message, 'run `ccflux login` to write a fresh config.json');
  return resultOf(
    id,
    'pass',
    facts.source === 'plugin-options' ? 'from the plugin options (CLAUDE_PLUGIN_OPTION_API_*)' : `from ${configPath}`,
  );
}

/** Credentials: plugin options (only visible inside Claude Code's hooks) or config.json. */
export const configCheck: Check = {
  ...id,
  async run(ctx) {
    const { env, paths } = ctx.deps;
    let facts: CredentialFacts;
    try {
      ctx.credentials = await loadCredentials({ env, paths });
      facts = ctx.credentials ? { kind: 'ok', source: ctx.credentials.source, endpoint: ctx.credentials.endpoint } : { kind: 'none' };
    } catch (err) {
      facts = { kind: 'invalid', message: err instanceof CcfluxError ? err.message : String(err) };
    }
    return judgeConfig(facts, paths.config);
  },
};
