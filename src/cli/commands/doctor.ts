/**
 * `ccflux doctor`: runs every check, prints ✓ / ! / ✗ with a one-line fix for each problem, and
 * exits 0 only when nothing failed (EXIT.checksFailed otherwise). `--fix` repairs file and folder
 * modes and registers an unregistered key.
 */
import { hostname } from 'node:os';
import { displayPath, requireExistingDataDir, resolveDataDir } from '../../client/local/data-dirs';
import { renderDoctor, runDoctor } from '../../client/commands/doctor';
import { statePaths } from '../../client/local/paths';
import { createTransport } from '../../client/deliver/transport';
import { type CliContext, type CommandResult, type CommandSpec, EXIT } from '../types';

async function run(ctx: CliContext, options: Record<string, unknown>): Promise<CommandResult> {
  const { dataDir, source } = await resolveDataDir({ configDir: options.configDir as string | undefined, env: ctx.env, home: ctx.home, cwd: ctx.cwd });
  await requireExistingDataDir(dataDir, source, ctx.home);
  const transport = createTransport({ env: ctx.env });
  try {
    const report = await runDoctor(
      { paths: statePaths(dataDir), env: ctx.env, now: ctx.now, transport, hostname: hostname() },
      { fix: options.fix === true },
    );
    return {
      exitCode: report.ok ? EXIT.ok : EXIT.checksFailed,
      human: renderDoctor(report, displayPath(dataDir, ctx.home)),
      json: report,
    };
  } finally {
    await transport.close();
  }
}

export const doctorCommand: CommandSpec = {
  name: 'doctor',
  summary: 'Check the setup end to end (config, permissions, receiver, token, key, clock, queue, plugin)',
  example: 'ccflux doctor\nccflux doctor --fix      # also repairs file modes and registers the device key',
  configure(cmd) {
    cmd
      .option('--fix', 'repair what can be repaired: file modes (0600/0700), an unregistered device key')
      .option('--config-dir <dir>', 'Claude Code data folder (default: $CLAUDE_CONFIG_DIR, else ~/.claude)')
      .option('--json', 'print the checks as JSON (schema in docs/commands.md)');
  },
  run,
};
