/**
 * `ccflux status`: where the credentials come from, the endpoint, the access token's expiry (never
 * the token), the device key, the queue, rejected reports, the last delivery and the last error.
 * Read-only: creates nothing and sends nothing.
 */
import { statePaths } from '../../client/local/paths';
import { buildStatus, gatherStatusFacts, renderStatus } from '../../client/commands/status';
import { errorJson, forEachDataDir, onlyOutcome, READ_DIR_HELP, readTargets, sections, worstExit } from '../targets';
import { type CliContext, type CommandResult, type CommandSpec, EXIT } from '../types';

async function run(ctx: CliContext, options: Record<string, unknown>): Promise<CommandResult> {
  const { dataDirs, source, candidates } = await readTargets(ctx, options.configDir);
  const outcomes = await forEachDataDir(dataDirs, async (dataDir) => {
    const facts = await gatherStatusFacts({
      paths: statePaths(dataDir),
      env: ctx.env,
      dataDirSource: source,
      otherDataDirs: candidates.filter((c) => c.hasState && !dataDirs.includes(c.path)).map((c) => c.path),
    });
    const now = ctx.now();
    const report = buildStatus(facts, now);
    return { exitCode: EXIT.ok, human: renderStatus(report, now, ctx.home), json: report };
  });
  const only = onlyOutcome(outcomes);
  if (only) return only;
  return {
    exitCode: worstExit(outcomes),
    human: sections(outcomes, () => null),
    json: { dataDirs: outcomes.map((o) => (o.error ? errorJson(o.dataDir, o.error) : o.result?.json)) },
  };
}

export const statusCommand: CommandSpec = {
  name: 'status',
  summary: 'Show credentials source, endpoint, token expiry, device key, queue and last delivery',
  example: 'ccflux status\nccflux status --config-dir ~/.claude-work --json | jq .queue.length',
  configure(cmd) {
    cmd
      .option('--config-dir <dir>', READ_DIR_HELP)
      .option('--json', 'print the status as JSON (schema in docs/commands.md; never contains a secret)');
  },
  run,
};
