/**
 * `ccflux status`: where the credentials come from, the endpoint, the access token's expiry (never
 * the token), the device key, the queue, rejected reports, the last delivery and the last error.
 * Read-only: creates nothing and sends nothing.
 */
import { requireExistingDataDir, resolveDataDir } from '../../client/local/data-dirs';
import { statePaths } from '../../client/local/paths';
import { buildStatus, gatherStatusFacts, renderStatus } from '../../client/commands/status';
import { type CliContext, type CommandResult, type CommandSpec, EXIT } from '../types';

async function run(ctx: CliContext, options: Record<string, unknown>): Promise<CommandResult> {
  const { dataDir, source, candidates } = await resolveDataDir({
    configDir: options.configDir as string | undefined,
    env: ctx.env,
    home: ctx.home,
    cwd: ctx.cwd,
  });
  await requireExistingDataDir(dataDir, source, ctx.home);
  const facts = await gatherStatusFacts({
    paths: statePaths(dataDir),
    env: ctx.env,
    dataDirSource: source,
    otherDataDirs: candidates.filter((c) => c.hasState && c.path !== dataDir).map((c) => c.path),
  });
  const now = ctx.now();
  const report = buildStatus(facts, now);
  return { exitCode: EXIT.ok, human: renderStatus(report, now, ctx.home), json: report };
}

export const statusCommand: CommandSpec = {
  name: 'status',
  summary: 'Show credentials source, endpoint, token expiry, device key, queue and last delivery',
  example: 'ccflux status\nccflux status --json | jq .queue.length',
  configure(cmd) {
    cmd
      .option('--config-dir <dir>', 'Claude Code data folder (default: $CLAUDE_CONFIG_DIR, else ~/.claude)')
      .option('--json', 'print the status as JSON (schema in docs/commands.md; never contains a secret)');
  },
  run,
};
