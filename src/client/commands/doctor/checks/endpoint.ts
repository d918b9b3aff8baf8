import { type CredentialSource, httpAllowed, reconfigureHint, validateEndpoint } from '../../../local/credentials';
import { type Check, type CheckResult, resultOf, skippedOf } from '../check';

const id = { id: 'endpoint-https', title: 'endpoint uses https' } as const;

export function judgeEndpointScheme(endpoint: string, env: NodeJS.ProcessEnv, source: CredentialSource = 'config-file'): CheckResult {
  const fix = reconfigureHint(source, 'https endpoint');
  let protocol = '';
  try {
    protocol = new URL(endpoint).protocol;
  } catch {
    return resultOf(id, 'fail', 'the endpoint is not a valid URL', fix);
  }
  if (protocol === 'https:') return resultOf(id, 'pass', endpoint);
  if (protocol === 'http:' && httpAllowed(env)) {
    return resultOf(
      id,
      'warn',
      `${endpoint} is plain http, allowed only because CCFLUX_ALLOW_HTTP=1 is set: tokens cross the network in clear`,
      `for local development only; otherwise unset CCFLUX_ALLOW_HTTP and ${fix}`,
    );
  }
  return resultOf(id, 'fail', `${endpoint} is not https`, fix);
}

export const endpointCheck: Check = {
  ...id,
  run(ctx) {
    const { credentials } = ctx;
    if (!credentials) return skippedOf(id, 'no credentials');
    try {
      ctx.endpoint = validateEndpoint(credentials.endpoint, ctx.deps.env);
    } catch {
      ctx.endpoint = null;
    }
    return judgeEndpointScheme(credentials.endpoint, ctx.deps.env, credentials.source);
  },
};
