/**
 * Claude Code's usage limits reset on 5-hour windows: a window opens with the first message after
 * the previous one closed and lasts five hours. Following ccusage, a window's start is that first
 * message's time floored to the hour. Per user we report the peak window (the seat-pressure
 * signal: how close heavy users run to their plan's limit) and the window open right now.
 * Pure: events and `now` in, plain values out.
 *
 * Window edges fall on whole hours, so hourly buckets (`usage_hourly`, whose turns are counted
 * once already) give exactly the windows the single events would: `windowsFromHours`.
 */

export const WINDOW_MILLIS = 5 * 60 * 60 * 1000;
const HOUR_MILLIS = 60 * 60 * 1000;

export interface WindowEvent {
  user: string;
  /** Epoch milliseconds of the turn. */
  atMillis: number;
  /** Distinct (session, turn) key so a turn spread over several models counts once; null when
   * the event is a bucket whose `turns` are counted already. */
  turnKey: string | null;
  turns?: number;
  tokens: number;
}

export interface UsageWindow {
  startMillis: number;
  endMillis: number;
  tokens: number;
  turns: number;
}

export interface UserWindows {
  user: string;
  windows: number;
  peak: UsageWindow;
  /** The window containing `now`, if the user has one open. */
  current: UsageWindow | null;
  /** The latest windows, newest first (at most RECENT_WINDOWS), for the user's page. */
  recent: UsageWindow[];
}

export const RECENT_WINDOWS = 20;

/** One user's tokens and (new) turns in one UTC hour. */
export interface HourBucket {
  user: string;
  /** Epoch milliseconds of the hour's start. */
  hourMillis: number;
  tokens: number;
  turns: number;
}

interface OpenWindow extends UsageWindow {
  turnKeys: Set<string>;
}

function close(w: OpenWindow): UsageWindow {
  return { startMillis: w.startMillis, endMillis: w.endMillis, tokens: w.tokens, turns: w.turns + w.turnKeys.size };
}

/** Windows from hourly buckets (any order): the same result as `computeWindows` on their events. */
export function windowsFromHours(buckets: readonly HourBucket[], nowMillis: number): UserWindows[] {
  return computeWindows(
    buckets.map((b) => ({ user: b.user, atMillis: b.hourMillis, turnKey: null, turns: b.turns, tokens: b.tokens })),
    nowMillis,
  );
}

/** Events in any order; result sorted by peak tokens, highest first. */
export function computeWindows(events: readonly WindowEvent[], nowMillis: number): UserWindows[] {
  const byUser = new Map<string, WindowEvent[]>();
  for (const e of events) {
    if (!Number.isFinite(e.atMillis)) continue;
    let list = byUser.get(e.user);
    if (list === undefined) {
      list = [];
      byUser.set(e.user, list);
    }
    list.push(e);
  }
  const result: UserWindows[] = [];
  for (const [user, list] of byUser) {
    list.sort((a, b) => a.atMillis - b.atMillis);
    const windows: UsageWindow[] = [];
    let open: OpenWindow | null = null;
    for (const e of list) {
      if (open === null || e.atMillis >= open.endMillis) {
        if (open !== null) windows.push(close(open));
        const startMillis = Math.floor(e.atMillis / HOUR_MILLIS) * HOUR_MILLIS;
        open = { startMillis, endMillis: startMillis + WINDOW_MILLIS, tokens: 0, turns: 0, turnKeys: new Set() };
      }
      open.tokens += e.tokens;
      if (e.turnKey === null) open.turns += e.turns ?? 0;
      else open.turnKeys.add(e.turnKey);
    }
    if (open === null) continue;
    windows.push(close(open));
    let peak = windows[0]!;
    for (const w of windows) if (w.tokens > peak.tokens) peak = w;
    const last = windows[windows.length - 1]!;
    const current = nowMillis >= last.startMillis && nowMillis < last.endMillis ? last : null;
    result.push({ user, windows: windows.length, peak, current, recent: windows.slice(-RECENT_WINDOWS).reverse() });
  }
  result.sort((a, b) => b.peak.tokens - a.peak.tokens || a.user.localeCompare(b.user));
  return result;
}
