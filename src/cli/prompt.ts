/**
 * Terminal input for user commands. Prompts go to stderr so stdout stays clean for `--json`.
 *
 * The hidden prompt puts the terminal in raw mode and echoes nothing at all (not even `*`), so a
 * refresh token typed or pasted there never appears on screen, in scrollback or in a recording.
 * `--token-stdin` reads one line from a pipe instead.
 */
import { type DataDirCandidate, displayPath } from '../client/local/data-dirs';
import { CcfluxError, ERROR_CODES } from '../client/local/errors';
import type { CliContext } from './types';

/** A line longer than this is not a token or a URL anyone typed. */
export const MAX_INPUT_CHARS = 8192;

type Io = Pick<CliContext, 'stdin' | 'stderr'>;

export function isInteractive(ctx: Pick<CliContext, 'stdin' | 'stderr'>): boolean {
  return ctx.stdin.isTTY === true && typeof ctx.stdin.setRawMode === 'function';
}

function cancelled(): CcfluxError {
  return new CcfluxError(ERROR_CODES.USAGE, 'cancelled, nothing was changed');
}

/**
 * Reads one line in raw mode. `echo: false` prints nothing for what is typed. Handles backspace,
 * Ctrl-U (clear), Ctrl-C / Ctrl-D on an empty line (cancel) and skips escape sequences (arrow
 * keys, bracketed-paste markers) so they do not end up inside the value.
 */
function readRawLine(io: Io, question: string, echo: boolean): Promise<string> {
  const { stdin, stderr } = io;
  return new Promise((resolve, reject) => {
    let value = '';
    let escState: 'none' | 'start' | 'csi' = 'none';
    const finish = () => {
      stdin.removeListener('data', onData);
      stdin.removeListener('end', onEnd);
      stdin.setRawMode?.(false);
      stdin.pause();
      stderr.write('\n');
    };
    const onEnd = () => {
      finish();
      reject(cancelled());
    };
    const onData = (chunk: Buffer | string) => {
      const text = typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      for (const ch of text) {
        if (escState === 'start') {
          escState = ch === '[' || ch === 'O' ? 'csi' : 'none';
          continue;
        }
        if (escState === 'csi') {
          if (/[A-Za-z~]/.test(ch)) escState = 'none';
          continue;
        }
        if (ch === '\r' || ch === '\n') {
          finish();
          resolve(value);
          return;
        }
        if (ch === '\u0003' || (ch === '\u0004' && value === '')) {
          finish();
          reject(cancelled());
          return;
        }
        if (ch === '\u001b') {
          escState = 'start';
          continue;
        }
        if (ch === '\u007f' || ch === '\b') {
          if (value.length > 0) {
            value = Array.from(value).slice(0, -1).join('');
            if (echo) stderr.write('\b \b');
          }
          continue;
        }
        if (ch === '\u0015') {
          if (echo) stderr.write('\b \b'.repeat(Array.from(value).length));
          value = '';
          continue;
        }
        if (ch < ' ') continue;
        if (value.length >= MAX_INPUT_CHARS) continue;
        value += ch;
        if (echo) stderr.write(ch);
      }
    };
    // Raw mode before the question appears: what is typed after it is never echoed by the terminal.
    stdin.setRawMode?.(true);
    stderr.write(question);
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.resume();
  });
}

/** Asks a question whose answer is shown as it is typed. Empty answer → `defaultValue`. */
export async function promptVisible(io: Io, question: string, defaultValue?: string): Promise<string> {
  const suffix = defaultValue ? ` [${defaultValue}]` : '';
  const answer = (await readRawLine(io, `${question}${suffix}: `, true)).trim();
  return answer === '' && defaultValue !== undefined ? defaultValue : answer;
}

/** Asks for a secret: nothing typed is echoed. */
export async function promptHidden(io: Io, question: string): Promise<string> {
  return (await readRawLine(io, `${question} (input hidden): `, false)).trim();
}

/** Numbered menu; Enter picks `defaultIndex`. Returns the chosen index. */
export async function promptChoice(io: Io, question: string, options: string[], defaultIndex = 0): Promise<number> {
  const lines = options.map((option, i) => `  ${i + 1}) ${option}`);
  io.stderr.write(`${question}\n${lines.join('\n')}\n`);
  for (let attempt = 0; attempt < 3; attempt++) {
    const answer = await promptVisible(io, 'Choose a number', String(defaultIndex + 1));
    const n = Number(answer);
    if (Number.isInteger(n) && n >= 1 && n <= options.length) return n - 1;
    io.stderr.write(`Please type a number from 1 to ${options.length}.\n`);
  }
  throw cancelled();
}

/** y/N question; anything but y/yes is no. */
export async function promptConfirm(io: Io, question: string): Promise<boolean> {
  const answer = await promptVisible(io, `${question} [y/N]`);
  return /^y(es)?$/i.test(answer);
}

/**
 * Reads the first line of a piped stdin (`--token-stdin`): up to the first newline or the end,
 * without the line ending. Bounded; the rest of the input is ignored.
 */
export function readStdinLine(stdin: CliContext['stdin'], maxChars = MAX_INPUT_CHARS): Promise<string> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    const done = (value: string) => {
      stdin.removeListener('data', onData);
      stdin.removeListener('end', onEnd);
      stdin.removeListener('error', onError);
      stdin.pause();
      resolve(value.replace(/\r$/, ''));
    };
    const onData = (chunk: Buffer | string) => {
      buffered += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      const newline = buffered.indexOf('\n');
      if (newline !== -1) done(buffered.slice(0, newline));
      else if (buffered.length > maxChars) done(buffered.slice(0, maxChars + 1));
    };
    const onEnd = () => done(buffered);
    const onError = (err: Error) => {
      stdin.removeListener('data', onData);
      stdin.removeListener('end', onEnd);
      reject(new CcfluxError(ERROR_CODES.IO, 'could not read standard input', { cause: err }));
    };
    stdin.on('data', onData);
    stdin.on('end', onEnd);
    stdin.on('error', onError);
    stdin.resume();
  });
}

/** A `pick` for `resolveDataDir`: a numbered menu of the `~/.claude*` folders, `~/.claude` first. */
export function dataDirMenu(io: Io, home: string): (candidates: DataDirCandidate[], defaultDir: string) => Promise<string> {
  return async (candidates, defaultDir) => {
    const labels = candidates.map((c) => `${displayPath(c.path, home)}${c.hasState ? '  (has ccflux settings)' : ''}`);
    const defaultIndex = Math.max(
      candidates.findIndex((c) => c.path === defaultDir),
      0,
    );
    const index = await promptChoice(io, 'Several Claude Code data folders exist. Which one should ccflux use?', labels, defaultIndex);
    return (candidates[index] as DataDirCandidate).path;
  };
}
