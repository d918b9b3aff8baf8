/**
 * Progress for long user commands (`ccflux flush`): a bar redrawn in place on a terminal, plain
 * lines otherwise (logs, CI, pipes), nothing at all with `--json`.
 */
import type { CliContext } from './types';

const BAR_WIDTH = 24;
/** Redrawing faster than this only flickers. */
const MIN_REDRAW_MILLIS = 50;

export interface ProgressUpdate {
  done: number;
  total: number;
  /** A few words about the item just handled, e.g. `delivered`, `rejected (400)`. */
  note?: string;
}

export interface Progress {
  update(update: ProgressUpdate): void;
  /** Clears the bar (terminal) so the final summary starts on a clean line. */
  end(): void;
}

export type ProgressMode = 'bar' | 'lines' | 'off';

export function progressMode(stdout: CliContext['stdout'], json: boolean): ProgressMode {
  if (json) return 'off';
  return stdout.isTTY === true ? 'bar' : 'lines';
}

/** The bar as text, for a given width: `[#########---------------]  3/8 delivered`. Pure. */
export function renderBar(update: ProgressUpdate, width = BAR_WIDTH): string {
  const total = Math.max(update.total, 0);
  const ratio = total === 0 ? 1 : Math.min(Math.max(update.done / total, 0), 1);
  const filled = Math.round(ratio * width);
  const count = `${String(update.done).padStart(String(total).length)}/${total}`;
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${count}${update.note ? ` ${update.note}` : ''}`;
}

export function createProgress(
  stdout: CliContext['stdout'],
  mode: ProgressMode,
  clock: () => number = () => Date.now(),
): Progress {
  if (mode === 'off') return { update() {}, end() {} };
  if (mode === 'lines') {
    return {
      update(u) {
        stdout.write(`${u.done}/${u.total}${u.note ? ` ${u.note}` : ''}\n`);
      },
      end() {},
    };
  }
  let drawn = false;
  let lastDrawMillis = Number.NEGATIVE_INFINITY;
  const columns = () => Math.max((stdout.columns || 80) - 1, 20);
  return {
    update(u) {
      const nowMillis = clock();
      // Always draw the last step so the bar never stops short of where we are.
      if (u.done < u.total && nowMillis - lastDrawMillis < MIN_REDRAW_MILLIS) return;
      lastDrawMillis = nowMillis;
      stdout.write(`\r\u001b[2K${renderBar(u).slice(0, columns())}`);
      drawn = true;
    },
    end() {
      if (drawn) stdout.write('\r\u001b[2K');
      drawn = false;
    },
  };
}
