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
import { endpointUrls, formatSignatureHeader, formatTimestamp, HEADERS, type ReportBody, signingMessage } from '../../protocol/wire';
import { VERSION } from '../../version';
import { CONFIGURE_HINT, loadCredentials, validateEndpoint } from '../local/credentials';
import { CcfluxError, describeError, ERROR_CODES, isCcfluxError } from '../local/errors';
import { acquireLock, ensurePrivateDir, type LockOptions, withLock } from '../local/fsx';
import type { Logger } from '../local/log';
import type { StatePaths } from '../local/paths';
import { type Action, classify, describeSkew } from './answer';
import { batchBody, readBatchAnswer, takeBatch } from './batch';
import { nextOffset, offsetFromDateHeader, readClockOffset, removeClockOffset, writeClockOffset } from './clock';
import { getAccessToken, REFRESH_TOKEN_REVOKED_MESSAGE } from './auth';
import { backoffKey, backoffUntil, backoffVerdict, nextBackoff, readBackoff, writeBackoff } from './backoff';
import { recordDeliveryStatus } from './delivery-status';
import { Halt, haltFor, type StoppedBecause } from './halt';
import { ensureSigningKey, fingerprint, forgetRegistration, isRegistered, isRevoked, markRegistered, markRevoked, type SigningKey, sign } from './keys';
import { moveToRejected, type QueueStore } from './queue';
import { registerDeviceKey } from './register';
import type { Transport } from './transport';

export { exchangeToken } from './auth';
export { type DeliveryStatus, readDeliveryStatus } from './delivery-status';
export type { StoppedBecause } from './halt';
export { type RegisterResult, registerDeviceKey } from './register';

export const STATE_LOCK_OPTIONS: LockOptions = { waitMillis: 10_000, staleMillis: 5_000 };
export const DELIVER_LOCK_OPTIONS: LockOptions = { waitMillis: 0, staleMillis: 30_000 };
/** Not worth starting a request with less time than this left. */
const MIN_REQUEST_MILLIS = 250;
/** Bounds one drain whatever happens to the queue meanwhile (a full queue is ~30,000 reports; most go 100 to a request). */
const MAX_SENDS_PER_DRAIN = 40_000;
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
const MAX_RETRY_AFTER_WAITS = 60;

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
  /** Hook runs: stay off an endpoint that keeps failing until its backoff has passed (backoff.ts). */
  respectBackoff?: boolean;
}

export interface DeliverySummary {
  delivered: number;
  rejected: number;
  /** Reports still queued when the drain ended. */
  remaining: number;
  stoppedBecause: StoppedBecause;
}

export type RunDeliveryResult = ({ skipped: false } & DeliverySummary) | { skipped: true };

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

async function drain(deps: DeliverDeps, opts: DeliverOptions, deadlineAt: number): Promise<DeliverySummary> {
  const run = new DrainRun(deps, opts, deadlineAt);
  let halt: Halt | null = null;
  try {
    await run.execute();
  } catch (err) {
    halt = haltOf(err);
  }
  const remaining = await deps.queue.size().catch(() => 0);
  logOutcome(deps.log, run, halt, remaining);
  if (run.reachedNetwork || halt?.failure) {
    await recordDeliveryStatus(deps, { reachedNetwork: run.reachedNetwork, delivered: run.delivered, halt, credentials: run.seen });
  }
  if (run.reachedNetwork) await recordBackoff(deps, run.endpointUsed, backoffVerdict(halt?.because ?? null, run.delivered));
  return { delivered: run.delivered, rejected: run.rejected, remaining, stoppedBecause: halt?.because ?? null };
}

async function recordBackoff(deps: DeliverDeps, endpoint: string, verdict: ReturnType<typeof backoffVerdict>): Promise<void> {
  try {
    const table = await readBackoff(deps.paths);
    if (verdict === 'neutral' || (verdict === 'success' && table[endpoint] === undefined)) return;
    await writeBackoff(deps.paths, nextBackoff(table, endpoint, verdict, deps.now()));
  } catch (err) {
    deps.log.error(`cannot write delivery_backoff.json: ${describeError(err)}`);
  }
}

function haltOf(err: unknown): Halt {
  if (err instanceof Halt) return err;
  if (isCcfluxError(err, ERROR_CODES.LOCKED)) return new Halt('locked', 'delivery: the state lock stayed busy', 'activity', true);
  return new Halt('error', `delivery failed: ${describeError(err)}`, 'error', true);
}

function logOutcome(log: Logger, run: DrainRun, halt: Halt | null, remaining: number): void {
  if (halt && halt.level !== 'silent') {
    const kept = halt.because === 'revoked' ? '' : `; ${remaining} report(s) kept for later`;
    log[halt.level](`${halt.message}${kept}`);
  }
  if (run.delivered > 0 || run.rejected > 0) {
    log.activity(`delivered ${run.delivered} report(s)${run.rejected > 0 ? `, rejected ${run.rejected}` : ''}; ${remaining} queued`);
  }
}

/** What to do with the report in hand after acting on an answer. */
type Next = 'done' | 'retry';

/**
 * One drain's state and its steps, in order:
 *   prepare (credentials, key) → exchange (access token) → register → for each report:
 *   send one → act on the answer.
 * Each step either returns or throws a `Halt`.
 */
class DrainRun {
  delivered = 0;
  rejected = 0;
  /** A request was (about to be) made: the run is recorded in delivery_status.json. */
  reachedNetwork = false;
  /** Where the credentials came from (no secret), for `ccflux status` in a plain shell. */
  seen: { source: string; endpoint: string } | null = null;
  private sends = 0;
  private refreshed = false;
  private reregistered = false;
  private retryAfterWaits = 0;
  /** This receiver answered POST /reports with 404 (or refused it as a batch): one by one from here. */
  private batchUnsupported = false;
  private accessToken = '';
  private credentials: { endpoint: string; token: string } = { endpoint: '', token: '' };
  private endpoint = '';
  private key: SigningKey | null = null;
  /** Receiver time minus device time (clock.ts); signatures use device time plus this. */
  private clockOffsetMillis = 0;
  /** The report in hand was already re-signed once after a `timestamp-stale`. */
  private resignedForSkew = false;
  /** The last answer moved the offset. */
  private clockMoved = false;

  constructor(
    private readonly deps: DeliverDeps,
    private readonly opts: DeliverOptions,
    private readonly deadlineAt: number,
  ) {}

  async execute(): Promise<void> {
    const { deps } = this;
    if (await isRevoked(deps.paths)) throw new Halt('revoked', '', 'silent', false);
    await ensurePrivateDir(deps.paths.dir);
    await this.prepareCredentials();
    this.key = await ensureSigningKey(deps.paths, { log: deps.log, now: deps.now });
    this.clockOffsetMillis = (await readClockOffset(deps.paths))?.offsetMillis ?? 0;
    const registered = await isRegistered(deps.paths, this.key.publicKeyB64);
    // Registration is retried on every run, even with nothing queued; otherwise no network at all.
    if (registered && (await deps.queue.size()) === 0) return;
    if (this.opts.respectBackoff) await this.checkBackoff();

    this.reachedNetwork = true;
    await this.exchange(false);
    if (!registered) await this.register();
    await this.sendQueued();
  }

  // --- step: prepare credentials -----------------------------------------------------------

  private async prepareCredentials(): Promise<void> {
    const { deps } = this;
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
    this.seen = { source: credentials.source, endpoint: this.endpoint };
  }

  /** The backoff key: the endpoint, and which credentials (a new token after `ccflux login` starts afresh). */
  get endpointUsed(): string {
    return backoffKey(this.endpoint, this.credentials.token);
  }

  /** An endpoint that failed lately is left alone until its interval has passed. */
  private async checkBackoff(): Promise<void> {
    const paused = backoffUntil(await readBackoff(this.deps.paths), this.endpointUsed, this.deps.now());
    if (paused === null) return;
    throw new Halt(
      'backoff',
      `delivery paused: the receiver failed ${paused.failures} time(s) in a row; next attempt after ${formatTimestamp(paused.until)} (ccflux flush tries now)`,
      'activity',
      false,
    );
  }

  private timeLeftMillis(): number {
    const left = this.deadlineAt - this.deps.now().getTime();
    if (left < MIN_REQUEST_MILLIS) throw new Halt('deadline', 'delivery paused at the end of its time budget', 'activity', false);
    return left;
  }

  // --- step: exchange the refresh token --------------------------------------------------------

  private async exchange(forceRefresh: boolean): Promise<void> {
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
    await this.exchange(true);
  }

  // --- step: register the device key -----------------------------------------------------------

  private async register(): Promise<void> {
    const { deps } = this;
    const key = this.key as SigningKey;
    for (;;) {
      const result = await registerDeviceKey(
        { transport: deps.transport, now: deps.now },
        {
          endpoint: this.endpoint,
          accessToken: this.accessToken,
          key,
          deviceId: deps.hostname ?? osHostname(),
          timeoutMillis: this.timeLeftMillis(),
          clockOffsetMillis: this.clockOffsetMillis,
        },
      );
      switch (result.kind) {
        case 'clock-skew':
          // The proof of possession is signed like a report: correct the clock and sign again, once.
          await this.observeClock(result.dateHeader, true);
          this.resignAfterSkew(result.detail);
          continue;
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

  // --- step: send, one report at a time ------------------------------------------------------

  private async sendQueued(): Promise<void> {
    for (;;) {
      const queued = await this.deps.queue.list();
      if (queued.length === 0) return;
      // A backlog goes out in batches (POST /reports); a single report, or a receiver without
      // /reports (Rust, older), one by one.
      if (queued.length > 1 && !this.batchUnsupported) {
        await this.deliverBatch(queued);
        continue;
      }
      for (const [index, report] of queued.entries()) {
        await this.deliverOne(report);
        this.opts.onProgress?.({ delivered: this.delivered, rejected: this.rejected, remaining: queued.length - index - 1 });
      }
    }
  }

  /**
   * One `POST /reports` of the oldest queued reports. Delivered ones leave the queue together;
   * refused ones are acted on as from `/report`, the first that is not delivered or rejected
   * deciding what happens next (retry with the next batch, or halt).
   */
  private async deliverBatch(queued: ReportBody[]): Promise<void> {
    if (++this.sends > MAX_SENDS_PER_DRAIN) {
      throw new Halt('error', `delivery: more than ${MAX_SENDS_PER_DRAIN} sends in one run; the rest waits`, 'error', true);
    }
    const batch = takeBatch(queued);
    const result = await this.sendBatch(batch, this.timeLeftMillis());
    const answer = readBatchAnswer(result, batch.length);
    if (answer.kind === 'unsupported') {
      this.batchUnsupported = true;
      this.deps.log.activity('the receiver does not take batches (POST /reports): sending one report at a time');
      return;
    }
    const actions = answer.kind === 'each' ? answer.results.map((r) => classify(r, 'report', this.deps.now())) : [classify(result, 'report', this.deps.now())];
    this.clockMoved = false;
    if (result.kind === 'response') await this.observeClock(result.headers.date, actions.some((a) => a.kind === 'clock-skew'));
    if (answer.kind === 'whole') {
      await this.actOn(actions[0] as Action, batch[0] as ReportBody);
      return;
    }
    const delivered = batch.filter((_, i) => actions[i]?.kind === 'delivered');
    if (delivered.length > 0) await this.underStateLock(() => this.deps.queue.remove(delivered));
    this.delivered += delivered.length;
    let firstOther: number | null = null;
    for (const [i, action] of actions.entries()) {
      if (action.kind === 'reject') await this.reject(batch[i] as ReportBody, action.detail);
      else if (action.kind !== 'delivered') firstOther ??= i;
    }
    this.opts.onProgress?.({ delivered: this.delivered, rejected: this.rejected, remaining: queued.length - delivered.length });
    if (firstOther === null) {
      this.resignedForSkew = false;
      return;
    }
    await this.actOn(actions[firstOther] as Action, batch[firstOther] as ReportBody);
  }

  private sendBatch(reports: ReportBody[], timeoutMillis: number) {
    const key = this.key as SigningKey;
    const timestamp = formatTimestamp(new Date(this.deps.now().getTime() + this.clockOffsetMillis));
    const body = batchBody(reports, (bytes) => ({
      timestamp,
      signature: formatSignatureHeader(sign(key.seed, signingMessage(bytes, timestamp)), key.publicKey),
    }));
    return this.deps.transport.post(endpointUrls(this.endpoint).reports, {
      headers: {
        authorization: `Bearer ${this.accessToken}`,
        'content-type': 'application/json',
        'user-agent': `ccflux/${VERSION}`,
      },
      body,
      timeoutMillis,
    });
  }

  /** Sends one report until it is delivered or rejected; anything else halts the drain with it kept at the front. */
  private async deliverOne(report: ReportBody): Promise<void> {
    this.resignedForSkew = false;
    for (;;) {
      if (++this.sends > MAX_SENDS_PER_DRAIN) {
        throw new Halt('error', `delivery: more than ${MAX_SENDS_PER_DRAIN} sends in one run; the rest waits`, 'error', true);
      }
      const result = await this.sendOne(report, this.timeLeftMillis());
      const action = classify(result, 'report', this.deps.now());
      this.clockMoved = false;
      if (result.kind === 'response') await this.observeClock(result.headers.date, action.kind === 'clock-skew');
      const next = await this.actOn(action, report);
      if (next === 'done') return;
    }
  }

  private sendOne(report: ReportBody, timeoutMillis: number) {
    const key = this.key as SigningKey;
    const body = Buffer.from(JSON.stringify(report), 'utf8');
    const timestamp = formatTimestamp(new Date(this.deps.now().getTime() + this.clockOffsetMillis));
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

  // --- step: act on the answer ---------------------------------------------------------------

  /** The SPEC's answer table, applied to the report in hand. Throws a `Halt` to stop the drain. */
  private async actOn(action: Action, report: ReportBody): Promise<Next> {
    switch (action.kind) {
      case 'delivered':
        await this.underStateLock(() => this.deps.queue.remove([report]));
        this.delivered++;
        return 'done';
      case 'reject':
        await this.reject(report, action.detail);
        return 'done';
      case 'refresh-token':
        await this.refreshOnce();
        return 'retry';
      case 'forget-registration':
        await this.registerAgain();
        return 'retry';
      case 'revoked':
        return this.revoke();
      case 'clock-skew':
        return this.resignAfterSkew(action.detail);
      case 'keep':
        throw new Halt('forbidden', `report refused (${action.detail})`, 'error', true);
      case 'stop':
        if (await this.waitRetryAfter(action.retryAfterMillis)) return 'retry';
        throw haltFor(action.reason, `delivery stopped: ${action.detail}`);
      case 'token-revoked':
        throw new Halt('unexpected-answer', 'delivery stopped: unexpected answer', 'error', true);
    }
  }

  /** 400/413: the report can never be accepted; kept in rejected_reports.jsonl, never dropped. */
  private async reject(report: ReportBody, detail: string): Promise<void> {
    const { deps } = this;
    await this.underStateLock(async () => {
      await moveToRejected(deps.paths, report, detail, { now: deps.now(), log: deps.log });
      await deps.queue.remove([report]);
    });
    this.rejected++;
    deps.log.error(`report ${report.session_id}#${report.turn_index} refused by the receiver (${detail}): moved to rejected_reports.jsonl`);
  }

  /** 403 key-not-registered: register once more per drain, then retry the report. */
  private async registerAgain(): Promise<void> {
    await forgetRegistration(this.deps.paths);
    if (this.reregistered) {
      throw new Halt('registration-failed', 'the receiver does not know this device key even after registering it again', 'error', true);
    }
    this.reregistered = true;
    this.deps.log.activity('the receiver does not know this device key: registering it again');
    await this.register();
  }

  // --- step: correct the clock ------------------------------------------------------------------

  /**
   * Re-measures the receiver offset from an answer's `Date` header when it moved (always after a
   * `timestamp-stale`) and keeps it in clock_offset.json for later runs. Returns nothing: the next
   * signature uses the new offset.
   */
  private async observeClock(dateHeader: string | undefined, stale: boolean): Promise<void> {
    const { deps } = this;
    const deviceNow = deps.now();
    const next = nextOffset(this.clockOffsetMillis, offsetFromDateHeader(dateHeader, deviceNow), stale);
    this.clockMoved = next !== undefined;
    if (next === undefined) return;
    const before = this.clockOffsetMillis;
    this.clockOffsetMillis = next ?? 0;
    if (next === null) {
      await removeClockOffset(deps.paths);
      deps.log.activity('the device clock agrees with the receiver again: clock correction dropped');
      return;
    }
    await writeClockOffset(deps.paths, { offsetMillis: next, measuredAt: formatTimestamp(deviceNow) });
    const words = describeSkew(-next).replace(/ \(signed timestamps.*$/, '');
    deps.log.activity(`${words}: signing with the receiver's time from now on (was offset ${Math.round(before / 1000)}s)`);
  }

  /** 403 timestamp-stale: resend once with the corrected time; a second refusal (or no usable `Date`) stops. */
  private resignAfterSkew(detail: string): Next {
    if (this.resignedForSkew || !this.clockMoved) throw new Halt('clock-skew', `report refused: ${detail}`, 'error', true);
    this.resignedForSkew = true;
    this.deps.log.error(`report refused as stale: ${detail.replace(/; fix the system clock\)$/, ')')}; re-signed with the receiver's time and sent again`);
    return 'retry';
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
      `the receiver revoked this device's key (${fingerprint(key.publicKeyB64)}): wrote key_revoked, discarded ${cleared} queued report(s); ccflux stays silent on this device. To start over with a new key: \`ccflux logout --forget-key\`, then set up again (plugin options or \`ccflux login\`)`,
      'error',
      true,
    );
  }

  private underStateLock<T>(fn: () => Promise<T>): Promise<T> {
    return withLock(this.deps.paths.stateLock, STATE_LOCK_OPTIONS, fn);
  }
}
