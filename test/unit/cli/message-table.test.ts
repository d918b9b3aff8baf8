/**
 * Every way `ccflux flush` can stop: cause → message → exit code → the next step it prints. The
 * next step must be the real fix for that cause: "run `ccflux flush` again" only where running it
 * again can help, never `ccflux login` for a revoked device or a wrong clock.
 */
import { describe, expect, it } from 'vitest';
import { EXIT_BY_STOP, NEXT_STEP, STOP_WORDS } from '../../../src/cli/commands/flush';
import { EXIT } from '../../../src/cli/types';

const TABLE: Array<[cause: keyof typeof NEXT_STEP, exit: number, message: RegExp, fix: RegExp]> = [
  ['no-credentials', EXIT.config, /no receiver is configured/, /claude plugin configure ccflux@ccflux.*ccflux login/],
  ['config-invalid', EXIT.config, /not usable/, /fix the setting named above/],
  ['revoked', EXIT.auth, /revoked this device key/, /ccflux logout --forget-key`, then set up again/],
  ['token-revoked', EXIT.auth, /expired or revoked/, /ask IT for a new token .*plugin options, or `ccflux login`/],
  ['unauthorized', EXIT.auth, /refused a fresh access token/, /ccflux doctor/],
  ['unreachable', EXIT.network, /unreachable/, /once the receiver answers/],
  ['server-busy', EXIT.network, /busy or rate limiting/, /again in a few minutes/],
  ['unexpected-answer', EXIT.failure, /unexpected answer/, /check the endpoint with IT/],
  ['clock-skew', EXIT.failure, /clock is off/, /set the system clock right/],
  ['deadline', EXIT.failure, /time budget/, /`ccflux flush` again to go on/],
  ['backoff', EXIT.network, /left alone for a while/, /run `ccflux flush` to try now/],
  ['registration-failed', EXIT.failure, /could not be registered/, /ccflux doctor --fix/],
  ['forbidden', EXIT.failure, /refused a report \(403\)/, /ccflux doctor/],
  ['locked', EXIT.failure, /state lock/, /again in a moment/],
  ['error', EXIT.failure, /unexpected error/, /ccflux doctor/],
];

describe('flush: cause → message → exit code → fix', () => {
  it('covers every cause', () => {
    expect(TABLE.map(([cause]) => cause).sort()).toEqual(Object.keys(NEXT_STEP).sort());
  });

  it.each(TABLE)('%s → exit %i', (cause, exit, message, fix) => {
    expect(EXIT_BY_STOP[cause]).toBe(exit);
    expect(STOP_WORDS[cause]).toMatch(message);
    expect(NEXT_STEP[cause]).toMatch(fix);
  });

  it('"run it again" only where that can help', () => {
    for (const cause of ['revoked', 'token-revoked', 'clock-skew', 'config-invalid', 'no-credentials'] as const) {
      expect(NEXT_STEP[cause]).not.toMatch(/^run `ccflux flush` again/);
    }
  });
});
