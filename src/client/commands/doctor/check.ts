/**
 * What every doctor check is: an id, a title, and a `run` that reads (and may add to) the shared
 * context and ends in pass / warn / fail / skip with a one-line fix for a failure. The list of
 * checks, in order, is `CHECKS` in `index.ts`: adding a check is one module and one entry there.
 */
import type { ExchangeResult } from '../../deliver/auth';
import type { Transport } from '../../deliver/transport';
import type { Credentials } from '../../local/credentials';
import type { StatePaths } from '../../local/paths';

export type CheckState = 'pass' | 'warn' | 'fail' | 'skip';

export interface CheckResult {
  id: string;
  title: string;
  state: CheckState;
  detail: string;
  /** One line telling the user what to do; null when nothing is needed. */
  fix: string | null;
  /** `--fix` repaired it (the state is the one after the repair). */
  fixed: boolean;
}

export interface DoctorDeps {
  paths: StatePaths;
  env: NodeJS.ProcessEnv;
  now: () => Date;
  transport: Transport;
  /** device_id for a registration done by `--fix`. */
  hostname: string;
}

/** Facts found by earlier checks that later ones build on. */
export interface DoctorContext {
  readonly deps: DoctorDeps;
  readonly fix: boolean;
  credentials: Credentials | null;
  /** The validated endpoint, or null when there is none or it is unusable. */
  endpoint: string | null;
  /** True when `/health` could not be reached at all. */
  unreachable: boolean;
  /** The receiver's `Date` header from `/health`. */
  dateHeader: string | undefined;
  exchange: ExchangeResult | null;
}

export interface Check {
  readonly id: string;
  readonly title: string;
  run(ctx: DoctorContext): Promise<CheckResult> | CheckResult;
}

/** A result for check `id`; the fix is kept only for warnings and failures. */
export function resultOf(
  check: Pick<Check, 'id' | 'title'>,
  state: CheckState,
  detail: string,
  fix: string | null = null,
  fixed = false,
): CheckResult {
  return { id: check.id, title: check.title, state, detail, fix: state === 'fail' || state === 'warn' ? fix : null, fixed };
}

export function skippedOf(check: Pick<Check, 'id' | 'title'>, because: string): CheckResult {
  return resultOf(check, 'skip', `skipped: ${because}`);
}
