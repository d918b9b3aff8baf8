/**
 * The receiver's one output sink. Nothing else in `receiver/src` writes to the terminal, so tests
 * can capture output and `console` stays out of the server.
 */
export interface Output {
  /** One line on stdout (machine-readable: the refresh token, the `listening on` line, lists). */
  out(line: string): void;
  /** One line on stderr (people: configuration, warnings, errors). */
  err(line: string): void;
  /** Raw text on stdout, waiting until the stream drains (exports); optional for test sinks. */
  write?(text: string): Promise<void>;
}

export function createOutput(
  stdout: NodeJS.WritableStream = process.stdout,
  stderr: NodeJS.WritableStream = process.stderr,
): Output {
  return {
    out: (line) => {
      stdout.write(line.endsWith('\n') ? line : `${line}\n`);
    },
    err: (line) => {
      stderr.write(line.endsWith('\n') ? line : `${line}\n`);
    },
    write: (text) =>
      new Promise<void>((resolve) => {
        if (stdout.write(text)) resolve();
        else stdout.once('drain', () => resolve());
      }),
  };
}

/** An output that drops everything (in-process servers in tests). */
export const silentOutput: Output = { out: () => {}, err: () => {} };
