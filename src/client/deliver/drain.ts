/**
 * Delivery: drain the queue to the receiver, oldest first, each report signed with the send time.
 *
 *   key_revoked? → credentials → signing key → access token → registration → for each report:
 *   sign, POST, act on `classify` (answer.ts)
 *
 * One process per data dir delivers (`runDelivery` holds the deliver lock); queue mutations happen
 * under the state lock, so a collector appending meanwhile is never overwritten. Callers must not
 * hold the state lock themselves (it is not re-entrant). Every exit writes one line to the log
 * and the outcome to `delivery_status.json` for `ccflux status`; no secret reaches either.
 */
import { hostname as osHostname } from 'node:os';
import {
  endpointUrls,
  formatSignatureHeader,
  formatTimestamp,
  HEADERS,
  LIMITS,
  type ReportBody,
  signingMessage,
} from '../../protocol/wire';
import { VERSION } from '../../version';
import { classify } from './answer';
import { getAccessToken, REFRESH_TOKEN_REVOKED_MESSAGE } from './auth';
import { CONFIGURE_HINT, loadCredentials, validateEndpoint } from '../local/credentials';
import { CcfluxError, describeError, ERROR_CODES, isCcfluxError } from '../local/errors';
import { acquireLock, ensurePrivateDir, type LockOptions, readTextIfExists, withLock, writeFileAtomic } from '../local/fsx';
import { ensureSigningKey, fingerprint, forgetRegistration, isRegistered, isRevoked, markRegistered, markRevoked, type SigningKey, sign } from './keys';
import { type Logger, redact } from '../local/log';
import type { StatePaths } from '../local/paths';
import { moveToRejected, type QueueStore } from './queue';
import type { Transport } from './transport';

export { exchangeToken } from './auth';

export const STATE_LOCK_OPTIONS: LockOptions = { waitMillis: 10_000, staleMillis: 5_000 };
export const DELIVER_LOCK_OPTIONS: LockOptions = { waitMillis: 0, staleMillis: 30_000 };
/** Not worth starting a request with less time than this left. */
const MIN_REQUEST_MILLIS = 250;
/** Bounds one drain whatever happens to the queue meanwhile (2 × its default bound). */
const MAX_SENDS_PER_DRAIN = 1000;
const MAX_STATUS_ERROR_CHARS = 300;

export type StoppedBecause =
  | null
  /** Nothing configured (one activity line says how to configure). */
  | 'no-credentials'
  /** Configured but unusable (corrupt config.json, http:// endpoint, …). */
  | 'config-invalid'
  /** The device key is revoked (marker present, or the receiver just said so). */
  | 'revoked'
  /** `/token` answered 401: the refresh token is expired or revoked. */
  | 'token-revoked'
  | 'unreachable'
  /** 429 or 5xx. */
  | 'server-busy'
  /** 3xx, 404, a 200 without a token, … */
  | 'unexpected-answer'
  | 'clock-skew'
  | 'deadline'
  | 'registration-failed'
  /** A 401 again right after a fresh exchange. */
  | 'unauthorized'
  /** 403 signature-invalid or another 403 code: the report is kept. */
  | 'forbidden'
  /** The state lock could not be taken in time. */
  | 'locked'
  /** Anything unexpected (I/O); logged. */
  | 'error';

export interface DeliverDeps {
  paths: StatePaths;
  env: NodeJS.ProcessEnv;
  now: () => Date;
  log: Logger;
  transport: Transport;
  queue: QueueStore;
  /** device_id sent at registration; defaults to os.hostname(). */
  hostname?: string;
  /** Waits before a retry the receiver asked for (`Retry-After`); tests pass a fake. */
  sleep?: (millis: number) => Promise<void>;
}

/**
 * How often one drain waits out a `Retry-After` (429/503) before leaving the rest to the next
 * run. The worker is detached from Claude Code, so waiting costs nobody anything, and it matters
 * after a session's last hook: no later hook of that session will come to drain what is left.
 */
const MAX_RETRY_AFTER_WAITS = 20;

const realSleep = (millis: number) => new Promise<void>((resolve) => setTimeout(resolve, millis));

export interface DeliverProgress {
  delivered: number;
  rejected: number;
  remaining: number;
}

export interface DeliverOptions {
  /** Time budget for this drain in ms from the call (a duration, not an epoch time). */
  deadlineMillis: number;
  onProgress?: (progress: DeliverProgress) => void;
}

export interface DeliverySummary {
  delivered: number;
  rejected: number;
  /** Reports still queued when the drain ended. */
  remaining: number;
  stoppedBecause: StoppedBecause;
}

export type RunDeliveryResult = ({ skipped: false } & DeliverySummary) | { skipped: true };

/** `delivery_status.json`, for `ccflux status`. Times are RFC 3339; `lastError` is sanitised. */
export interface DeliveryStatus {
  lastAttemptAt: string | null;
  lastDeliveryAt: string | null;
  lastErrorAt: string | null;
  lastError: string | null;
  consecutiveFailures: number;
  lastStoppedBecause: StoppedBecause;
}

const EMPTY_STATUS: DeliveryStatus = {
  lastAttemptAt: null,
  lastDeliveryAt: null,
  lastErrorAt: null,
  lastError: null,
  consecutiveFailures: 0,
  lastStoppedBecause: null,
};

type LogLevel = 'silent' | 'activity' | 'error';

/** Ends a drain early. `failure` counts in consecutiveFailures and becomes lastError. */
class Halt {
  constructor(
    readonly because: Exclude<StoppedBecause, null>,
    readonly message: string,
    readonly level: LogLevel,
    readonly failure: boolean,
  ) {}
}

/**
 * Drains the queue once (no deliver lock: `runDelivery` takes it). Never throws; the summary says
 * why it stopped.
 */
export async function deliverQueue(deps: DeliverDeps, opts: DeliverOptions): Promise<DeliverySummary> {
  return drain(deps, opts, deps.now().getTime() + opts.deadlineMillis);
}

/**
 * What a hook (or `ccflux flush`) calls: one delivering process per data dir. If another holds the
 * deliver lock, returns `{skipped: true}` at once (the holder will see our entry). After draining
 * and releasing, looks at the queue again and drains once more if something arrived meanwhile, so
 * an entry appended while the holder was finishing is never stranded.
 */
export async function runDelivery(deps: DeliverDeps, opts: DeliverOptions): Promise<RunDeliveryResult> {
  const deadlineAt = deps.now().getTime() + opts.deadlineMillis;
  const first = await drainHoldingLock(deps, opts, deadlineAt);
  if (first === null) return { skipped: true };
  if (first.stoppedBecause !== null || (await deps.queue.size().catch(() => 0)) === 0) return { skipped: false, ...first };

  const onProgress = opts.onProgress;
  const second = await drainHoldingLock(
    deps,
    {
      ...opts,
      ...(onProgress
        ? {
            onProgress: (p: DeliverProgress) =>
              onProgress({ delivered: first.delivered + p.delivered, rejected: first.rejected + p.rejected, remaining: p.remaining }),
          }
        : {}),
    },
    deadlineAt,
  );
  if (second === null) return { skipped: false, ...first };
  return {
    skipped: false,
    delivered: first.delivered + second.delivered,
    rejected: first.rejected + second.rejected,
    remaining: second.remaining,
    stoppedBecause: second.stoppedBecause,
  };
}

async function drainHoldingLock(deps: DeliverDeps, opts: DeliverOptions, deadlineAt: number): Promise<DeliverySummary | null> {
  let release: () => Promise<void>;
  try {
    release = await acquireLock(deps.paths.deliverLock, DELIVER_LOCK_OPTIONS);
  } catch (err) {
    if (isCcfluxError(err, ERROR_CODES.LOCKED)) return null;
    deps.log.error(`delivery: cannot take the deliver lock: ${describeError(err)}`);
    return { delivered: 0, rejected: 0, remaining: await deps.queue.size().catch(() => 0), stoppedBecause: 'error' };
  }
  try {
    return await drain(deps, opts, deadlineAt);
  } finally {
    await release();
  }
}

export type RegisterResult =
  | { kind: 'registered' }
  /** 401: exchange a fresh access token and try once more. */
  | { kind: 'refresh-token' }
  /** 403 key-revoked. */
  | { kind: 'revoked' }
  | { kind: 'failed'; reason: 'unreachable' | 'server-busy' | 'registration-failed'; detail: string };

/**
 * One `POST <base>/register-key` (`{public_key, device_id}`, bearer access token). 200 and 409
 * (already registered) are success. No files: the caller marks the registration
 * (`markRegistered`). `ccflux login` reuses it.
 */
export async function registerDeviceKey(
  deps: { transport: Transport; now?: () => Date },
  args: { endpoint: string; accessToken: string; publicKeyB64: string; deviceId: string; timeoutMillis?: number },
): Promise<RegisterResult> {
  const body = JSON.stringify({ public_key: args.publicKeyB64, device_id: deviceIdOf(args.deviceId) });
  const result = await deps.transport.post(endpointUrls(args.endpoint).registerKey, {
    headers: {
      authorization: `Bearer ${args.accessToken}`,
      'content-type': 'application/json',
      'user-agent': `ccflux/${VERSION}`,
    },
    body,
    ...(args.timeoutMillis === undefined ? {} : { timeoutMillis: args.timeoutMillis }),
  });
  const action = classify(result, 'register', deps.now?.());
  switch (action.kind) {
    case 'delivered':
      return { kind: 'registered' };
    case 'refresh-token':
      return { kind: 'refresh-token' };
    case 'revoked':
      return { kind: 'revoked' };
    case 'stop':
      return {
        kind: 'failed',
        reason: action.reason === 'unexpected-answer' ? 'registration-failed' : action.reason,
        detail: action.detail,
      };
    case 'keep':
      return { kind: 'failed', reason: 'registration-failed', detail: action.detail };
    default:
      return { kind: 'failed', reason: 'registration-failed', detail: `unexpected answer (${action.kind})` };
  }
}

/** A hostname is the device id: printable, bounded by the receiver's limit. */
function deviceIdOf(name: string): string {
  return name.replace(/[^\x20-\x7e]/g, '?').slice(0, LIMITS.deviceIdChars);
}

async function drain(deps: DeliverDeps, opts: DeliverOptions, deadlineAt: number): Promise<DeliverySummary> {
  const run = new DrainRun(deps, opts, deadlineAt);
  let halt: Halt | null = null;
  try {
    await run.execute();
  } catch (err) {
    if (err instanceof Halt) halt = err;
    else if (isCcfluxError(err, ERROR_CODES.LOCKED)) halt = new Halt('locked', 'delivery: the state lock stayed busy', 'activity', true);
    else halt = new Halt('error', `delivery failed: ${describeError(err)}`, 'error', true);
  }
  const remaining = await deps.queue.size().catch(() => 0);
  if (halt && halt.level !== 'silent') {
    const kept = halt.because === 'revoked' ? '' : `; ${remaining} report(s) kept for later`;
    deps.log[halt.level](`${halt.message}${kept}`);
  }
  if (run.delivered > 0 || run.rejected > 0) {
    deps.log.activity(`delivered ${run.delivered} report(s)${run.rejected > 0 ? `, rejected ${run.rejected}` : ''}; ${remaining} queued`);
  }
  if (run.reachedNetwork || halt?.failure) await recordStatus(deps, run, halt);
  return { delivered: run.delivered, rejected: run.rejected, remaining, stoppedBecause: halt?.because ?? null };
}

/** One drain's state: the access token, the once-only refresh and re-registration, the counts. */
class DrainRun {
  delivered = 0;
  rejected = 0;
  /** A request was (about to be) made: the run is recorded in delivery_status.json. */
  reachedNetwork = false;
  private sends = 0;
  private refreshed = false;
  private reregistered = false;
  private retryAfterWaits = 0;
  private accessToken = '';
  private credentials: { endpoint: string; token: string } = { endpoint: '', token: '' };
  private endpoint = '';
  private key: SigningKey | null = null;

  constructor(
    private readonly deps: DeliverDeps,
    private readonly opts: DeliverOptions,
    private readonly deadlineAt: number,
  ) {}

  async execute(): Promise<void> {
    const { deps } = this;
    if (await isRevoked(deps.paths)) throw new Halt('revoked', '', 'silent', false);
    await ensurePrivateDir(deps.paths.dir);

    let credentials: Awaited<ReturnType<typeof loadCredentials>>;
    try {
      credentials = await loadCredentials({ env: deps.env, paths: deps.paths });
      if (credentials) this.endpoint = validateEndpoint(credentials.endpoint, deps.env);
    } catch (err) {
      if (!(err instanceof CcfluxError)) throw err;
      throw new Halt('config-invalid', `not delivering: ${err.message}${err.hint ? ` (${err.hint})` : ''}`, 'error', true);
    }
    if (!credentials) {
      throw new Halt('no-credentials', `not delivering: no receiver configured — ${CONFIGURE_HINT}`, 'activity', true);
    }
    this.credentials = { endpoint: this.endpoint, token: credentials.token };

    this.key = await ensureSigningKey(deps.paths, { log: deps.log, now: deps.now });
    const registered = await isRegistered(deps.paths, this.key.publicKeyB64);
    // Registration is retried on every run, even with nothing queued; otherwise no network at all.
    if (registered && (await deps.queue.size()) === 0) return;

    this.reachedNetwork = true;
    await this.fetchAccessToken(false);
    if (!registered) await this.register();
    await this.sendQueued();
  }

  private timeLeftMillis(): number {
    const left = this.deadlineAt - this.deps.now().getTime();
    if (left < MIN_REQUEST_MILLIS) throw new Halt('deadline', 'delivery paused at the end of its time budget', 'activity', false);
    return left;
  }

  private async fetchAccessToken(forceRefresh: boolean): Promise<void> {
    const result = await getAccessToken(
      {
        paths: this.deps.paths,
        transport: this.deps.transport,
        now: this.deps.now,
        log: this.deps.log,
        credentials: this.credentials,
        timeoutMillis: this.timeLeftMillis(),
      },
      { forceRefresh },
    );
    if (result.kind === 'ok') {
      this.accessToken = result.token;
      return;
    }
    // auth.ts has already logged the SPEC's line for a refused refresh token.
    if (result.kind === 'revoked') throw new Halt('token-revoked', REFRESH_TOKEN_REVOKED_MESSAGE, 'silent', true);
    // (No "token:" in log text: redact() would take what follows for a secret.)
    throw haltFor(result.reason, `token exchange at /token failed (${result.detail})`);
  }

  /** After a 401: one fresh exchange per drain; a second 401 stops. */
  private async refreshOnce(): Promise<void> {
    if (this.refreshed) {
      throw new Halt('unauthorized', 'the receiver refused a freshly exchanged access token (401)', 'error', true);
    }
    this.refreshed = true;
    await this.fetchAccessToken(true);
  }

  private async register(): Promise<void> {
    const { deps } = this;
    const key = this.key as SigningKey;
    for (;;) {
      const result = await registerDeviceKey(
        { transport: deps.transport, now: deps.now },
        {
          endpoint: this.endpoint,
          accessToken: this.accessToken,
          publicKeyB64: key.publicKeyB64,
          deviceId: deps.hostname ?? osHostname(),
          timeoutMillis: this.timeLeftMillis(),
        },
      );
      switch (result.kind) {
        case 'registered':
          await markRegistered(deps.paths, key.publicKeyB64);
          deps.log.activity(`device key ${fingerprint(key.publicKeyB64)} registered with the receiver`);
          return;
        case 'refresh-token':
          await this.refreshOnce();
          continue;
        case 'revoked':
          return this.revoke();
        case 'failed':
          throw haltFor(
            result.reason,
            `device key registration failed: ${result.detail} (reports wait in the queue until it succeeds)`,
            'registration-failed',
          );
      }
    }
  }

  private async sendQueued(): Promise<void> {
    const { deps } = this;
    for (;;) {
      const batch = await deps.queue.list();
      if (batch.length === 0) return;
      for (const [index, report] of batch.entries()) {
        await this.deliverOne(report);
        this.opts.onProgress?.({ delivered: this.delivered, rejected: this.rejected, remaining: batch.length - index - 1 });
      }
    }
  }

  /** Sends one report until it is delivered or rejected; anything else halts the drain with it kept at the front. */
  private async deliverOne(report: ReportBody): Promise<void> {
    const { deps } = this;
    for (;;) {
      if (++this.sends > MAX_SENDS_PER_DRAIN) {
        throw new Halt('error', `delivery: more than ${MAX_SENDS_PER_DRAIN} sends in one run; the rest waits`, 'error', true);
      }
      const result = await this.post(report, this.timeLeftMillis());
      const action = classify(result, 'report', deps.now());
      switch (action.kind) {
        case 'delivered':
          await this.underStateLock(() => deps.queue.remove([report]));
          this.delivered++;
          return;
        case 'reject':
          await this.underStateLock(async () => {
            await moveToRejected(deps.paths, report, action.detail, { now: deps.now(), log: deps.log });
            await deps.queue.remove([report]);
          });
          this.rejected++;
          deps.log.error(
            `report ${report.session_id}#${report.turn_index} refused by the receiver (${action.detail}): moved to rejected_reports.jsonl`,
          );
          return;
        case 'refresh-token':
          await this.refreshOnce();
          continue;
        case 'forget-registration':
          await forgetRegistration(deps.paths);
          if (this.reregistered) {
            throw new Halt('registration-failed', 'the receiver does not know this device key even after registering it again', 'error', true);
          }
          this.reregistered = true;
          deps.log.activity('the receiver does not know this device key: registering it again');
          await this.register();
          continue;
        case 'revoked':
          return this.revoke();
        case 'clock-skew':
          throw new Halt('clock-skew', `report refused: ${action.detail}`, 'error', true);
        case 'keep':
          throw new Halt('forbidden', `report refused (${action.detail})`, 'error', true);
        case 'stop':
          if (await this.waitRetryAfter(action.retryAfterMillis)) continue;
          throw haltFor(action.reason, `delivery stopped: ${action.detail}`);
        case 'token-revoked':
          throw new Halt('unexpected-answer', 'delivery stopped: unexpected answer', 'error', true);
      }
    }
  }

  /** True after waiting out a `Retry-After` that fits in the budget; false to stop now. */
  private async waitRetryAfter(retryAfterMillis: number | undefined): Promise<boolean> {
    if (retryAfterMillis === undefined || this.retryAfterWaits >= MAX_RETRY_AFTER_WAITS) return false;
    const left = this.deadlineAt - this.deps.now().getTime();
    if (left - retryAfterMillis < MIN_REQUEST_MILLIS) return false;
    this.retryAfterWaits++;
    this.deps.log.activity(`receiver asked to retry in ${Math.ceil(retryAfterMillis / 1000)}s; waiting`);
    await (this.deps.sleep ?? realSleep)(retryAfterMillis);
    return true;
  }

  private post(report: ReportBody, timeoutMillis: number) {
    const key = this.key as SigningKey;
    const body = Buffer.from(JSON.stringify(report), 'utf8');
    const timestamp = formatTimestamp(this.deps.now());
    const signature = formatSignatureHeader(sign(key.seed, signingMessage(body, timestamp)), key.publicKey);
    return this.deps.transport.post(endpointUrls(this.endpoint).report, {
      headers: {
        authorization: `Bearer ${this.accessToken}`,
        'content-type': 'application/json',
        'user-agent': `ccflux/${VERSION}`,
        [HEADERS.timestamp]: timestamp,
        [HEADERS.signature]: signature,
      },
      body,
      timeoutMillis,
    });
  }

  /** 403 key-revoked: write the marker, clear the queue, go silent. Always throws. */
  private async revoke(): Promise<never> {
    const { deps } = this;
    const key = this.key as SigningKey;
    await markRevoked(deps.paths, { publicKeyB64: key.publicKeyB64, now: deps.now() });
    const cleared = await this.underStateLock(async () => {
      const count = await deps.queue.size();
      await deps.queue.removeFirst(count);
      return count;
    });
    throw new Halt(
      'revoked',
      `the receiver revoked this device's key (${fingerprint(key.publicKeyB64)}): wrote key_revoked, discarded ${cleared} queued report(s); ccflux stays silent on this device until an admin re-enables it`,
      'error',
      true,
    );
  }

  private underStateLock<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(this.deps.paths.stateLock, STATE_LOCK_OPTIONS, fn);
  }
}

function haltFor(
  reason: 'unreachable' | 'server-busy' | 'unexpected-answer' | 'registration-failed',
  message: string,
  unexpected: Exclude<StoppedBecause, null> = 'unexpected-answer',
): Halt {
  if (reason === 'unreachable') return new Halt('unreachable', `receiver unreachable — ${message}`, 'activity', true);
  if (reason === 'server-busy') return new Halt('server-busy', `receiver busy — ${message}`, 'activity', true);
  return new Halt(reason === 'registration-failed' ? 'registration-failed' : unexpected, message, 'error', true);
}

/** Reads `delivery_status.json`; defaults when absent or unreadable. */
export async function readDeliveryStatus(paths: Pick<StatePaths, 'deliveryStatus'>): Promise<DeliveryStatus> {
  try {
    const text = await readTextIfExists(paths.deliveryStatus);
    if (text === null) return { ...EMPTY_STATUS };
    const parsed = JSON.parse(text) as Partial<DeliveryStatus>;
    const str = (v: unknown) => (typeof v === 'string' ? v : null);
    return {
      lastAttemptAt: str(parsed.lastAttemptAt),
      lastDeliveryAt: str(parsed.lastDeliveryAt),
      lastErrorAt: str(parsed.lastErrorAt),
      lastError: str(parsed.lastError),
      consecutiveFailures:
        typeof parsed.consecutiveFailures === 'number' && Number.isSafeInteger(parsed.consecutiveFailures) && parsed.consecutiveFailures >= 0
          ? parsed.consecutiveFailures
          : 0,
      lastStoppedBecause: str(parsed.lastStoppedBecause) as StoppedBecause,
    };
  } catch {
    return { ...EMPTY_STATUS };
  }
}

async function recordStatus(deps: DeliverDeps, run: DrainRun, halt: Halt | null): Promise<void> {
  try {
    const previous = await readDeliveryStatus(deps.paths);
    const at = formatTimestamp(deps.now());
    const next: DeliveryStatus = { ...previous, lastStoppedBecause: halt?.because ?? null };
    if (run.reachedNetwork) next.lastAttemptAt = at;
    if (run.delivered > 0) next.lastDeliveryAt = at;
    if (halt?.failure) {
      next.lastErrorAt = at;
      next.lastError = redact(halt.message.replace(/[^\x20-\x7e\u00a0-\uffff]/g, '?')).slice(0, MAX_STATUS_ERROR_CHARS);
      next.consecutiveFailures = previous.consecutiveFailures + 1;
    } else if (halt === null || run.delivered > 0) {
      // A pause at the deadline proves nothing either way: only a clean run or a delivery resets.
      next.consecutiveFailures = 0;
    }
    await writeFileAtomic(deps.paths.deliveryStatus, `${JSON.stringify(next, null, 2)}\n`);
  } catch (err) {
    deps.log.error(`cannot write delivery_status.json: ${describeError(err)}`);
  }
}
