/**
 * `ccflux doctor`: runs every check, prints ✓ / ! / ✗ with a one-line fix for each problem, and
 * exits 0 only when nothing failed (EXIT.checksFailed otherwise). `--fix` repairs file and folder
 * modes and registers an unregistered key.
 */
import { hostname } from 'node:os';
import { displayPath } from '../../client/local/data-dirs';
import { renderDoctor, runDoctor } from '../../client/commands/doctor';
import { statePaths } from '../../client/local/paths';
import { createTransport } from '../../client/deliver/transport';
import { errorJson, forEachDataDir, onlyOutcome, READ_DIR_HELP, readTargets, sections } from '../targets';
import { type CliContext, type CommandResult, type CommandSpec, EXIT } from '../types';

async function doctorOne(ctx: CliContext, dataDir: string, fix: boolean): Promise<CommandResult> {
  const transport = createTransport({ env: ctx.env });
  try {
    const report = await runDoctor({ paths: statePaths(dataDir), env: ctx.env, now: ctx.now, transport, hostname: hostname() }, { fix });
    return {
      exitCode: report.ok ? EXIT.ok : EXIT.checksFailed,
      human: renderDoctor(report, displayPath(dataDir, ctx.home)),
      json: report,
    };
  } finally {
    await transport.close();
  }
}

async function run(ctx: CliContext, options: Record<string, unknown>): Promise<CommandResult> {
  const { dataDirs } = await readTargets(ctx, options.configDir);
  const outcomes = await forEachDataDir(dataDirs, (dataDir) => doctorOne(ctx, dataDir, options.fix === true));
  const only = onlyOutcome(outcomes);
  if (only) return only;
  const exitCode = outcomes.some((o) => o.error || o.result?.exitCode !== EXIT.ok) ? EXIT.checksFailed : EXIT.ok;
  return {
    exitCode,
    human: sections(outcomes, (dataDir) => (outcomes.find((o) => o.dataDir === dataDir)?.error ? `ccflux doctor — data folder ${displayPath(dataDir, ctx.home)}` : null)),
    json: { ok: exitCode === EXIT.ok, dataDirs: outcomes.map((o) => (o.error ? errorJson(o.dataDir, o.error) : { dataDir: o.dataDir, ...(o.result?.json as object) })) },
  };
}

export const doctorCommand: CommandSpec = {
  name: 'doctor',
  summary: 'Check the setup end to end (config, permissions, receiver, token, key, clock, queue, plugin)',
  example: 'ccflux doctor\nccflux doctor --fix      # also repairs file modes and registers the device key',
  configure(cmd) {
    cmd
      .option('--fix', 'repair what can be repaired: file modes (0600/0700), an unregistered device key')
      .option('--config-dir <dir>', READ_DIR_HELP)
      .option('--json', 'print the checks as JSON (schema in docs/commands.md)');
  },
  run,
};
