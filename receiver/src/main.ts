/** Entry point of `ccflux-receiver` (bundled to receiver/dist/ccflux-receiver.cjs). */
import { defaultContext, runCli } from './cli';

runCli(process.argv.slice(2), defaultContext()).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`ccflux-receiver: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 1;
  },
);
