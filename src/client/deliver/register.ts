/**
 * Device key registration: one `POST <base>/register-key`. Used by the drain and by `ccflux login`.
 */
import { endpointUrls, formatSignatureHeader, formatTimestamp, HEADERS, LIMITS, signingMessage } from '../../protocol/wire';
import { VERSION } from '../../version';
import { classify } from './answer';
import { sign } from './keys';
import type { Transport } from './transport';

export type RegisterResult =
  | { kind: 'registered' }
  /** 401: exchange a fresh access token and try once more. */
  | { kind: 'refresh-token' }
  /** 403 key-revoked. */
  | { kind: 'revoked' }
  /** 403 timestamp-stale: the proof's time is off; `dateHeader` is the receiver's clock to correct by. */
  | { kind: 'clock-skew'; detail: string; dateHeader: string | undefined }
  | { kind: 'failed'; reason: 'unreachable' | 'server-busy' | 'registration-failed'; detail: string };

/**
 * One `POST <base>/register-key` (`{public_key, device_id}`, bearer access token), always with its
 * proof of possession: the request signed by the key being registered, exactly as a report is
 * signed (`X-CCFLUX-Timestamp`, `X-CCFLUX-Signature` over `<body>\n<timestamp>`), which receivers
 * with `REQUIRE_KEY_PROOF=1` demand. 200 and 409 (already registered) are success. No files: the
 * caller marks the registration (`markRegistered`). `ccflux login` reuses it.
 */
export async function registerDeviceKey(
  deps: { transport: Transport; now?: () => Date },
  args: {
    endpoint: string;
    accessToken: string;
    key: { seed: Buffer; publicKey: Buffer };
    deviceId: string;
    timeoutMillis?: number;
    /** Receiver time minus device time (clock.ts): the proof is signed with the corrected time. */
    clockOffsetMillis?: number;
  },
): Promise<RegisterResult> {
  const body = JSON.stringify({ public_key: args.key.publicKey.toString('base64'), device_id: deviceIdOf(args.deviceId) });
  const deviceNow = deps.now?.() ?? new Date();
  const timestamp = formatTimestamp(new Date(deviceNow.getTime() + (args.clockOffsetMillis ?? 0)));
  const signature = sign(args.key.seed, signingMessage(body, timestamp));
  const result = await deps.transport.post(endpointUrls(args.endpoint).registerKey, {
    headers: {
      authorization: `Bearer ${args.accessToken}`,
      'content-type': 'application/json',
      'user-agent': `ccflux/${VERSION}`,
      [HEADERS.timestamp]: timestamp,
      [HEADERS.signature]: formatSignatureHeader(signature, args.key.publicKey),
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
    case 'clock-skew':
      return { kind: 'clock-skew', detail: action.detail, dateHeader: result.kind === 'response' ? result.headers.date : undefined };
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

