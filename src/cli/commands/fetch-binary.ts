/**
 * `ccflux fetch-binary` (hidden): downloads this plugin's platform binary from the release when it
 * is missing, verified against `<plugin>/bin/SHA256SUMS` (`src/client/commands/binary-fetch.ts`). Used by
 * plugin/scripts/fetch-binary.sh when curl is missing, and by hand.
 */
import { readFile } from '../../client/local/fs';
import { join } from 'node:path';
import { fetchBinary } from '../../client/commands/binary-fetch';
import { describeError } from '../../client/local/errors';
import { findRunningPluginRoot } from '../../client/commands/install';
import { createLogger } from '../../client/local/log';
import { defaultDataDir, statePaths } from '../../client/local/paths';
import { VERSION } from '../../version';
import { type CliContext, type CommandResult, type CommandSpec, EXIT } from '../types';

async function pluginVersion(root: string): Promise<string> {
  try {
    const manifest = JSON.parse(await readFile(join(root, '.claude-plugin', 'plugin.json'), 'utf8')) as { version?: unknown };
    if (typeof manifest.version === 'string') return manifest.version;
  } catch {
    // fall back to this CLI's version
  }
  return VERSION;
}

async function run(ctx: CliContext, options: Record<string, unknown>): Promise<CommandResult> {
  const root = typeof options.pluginRoot === 'string' ? options.pluginRoot : await findRunningPluginRoot(ctx.selfCommand);
  // Logs go where the hooks' go, so a refused download shows up in errors.log.
  const log = createLogger(statePaths(defaultDataDir(ctx.env, ctx.home)), ctx.now);
  try {
    const result = await fetchBinary({
      pluginRoot: root,
      version: await pluginVersion(root),
      platform: typeof options.platform === 'string' ? options.platform : process.platform,
      arch: typeof options.arch === 'string' ? options.arch : process.arch,
      env: ctx.env,
    });
    if (result.status === 'downloaded') log.activity(`fetch-binary: downloaded ${result.name} from ${result.url} (sha256 ${result.sha256} verified)`);
    const human =
      result.status === 'present'
        ? `${result.path} is present and matches SHA256SUMS (${result.sha256}).`
        : `Downloaded ${result.name} (${(result.bytes / 1e6).toFixed(1)} MB) from ${result.url}; sha256 ${result.sha256} verified.\nInstalled as ${result.path}.`;
    return { exitCode: EXIT.ok, human, json: { ok: true, ...result } };
  } catch (err) {
    log.error(`fetch-binary: ${describeError(err)}`);
    throw err;
  } finally {
    await log.flush();
  }
}

export const fetchBinaryCommand: CommandSpec = {
  name: 'fetch-binary',
  hidden: true,
  summary: "Download this plugin's platform binary from its release, verified against bin/SHA256SUMS",
  example: 'ccflux fetch-binary\nccflux fetch-binary --plugin-root ~/.claude/plugins/cache/ccflux/ccflux/0.1.0',
  configure(cmd) {
    cmd
      .option('--plugin-root <dir>', 'plugin folder (default: the one this ccflux runs from)')
      .option('--platform <os>', 'linux, darwin or win32 (default: this machine)')
      .option('--arch <arch>', 'x64 or arm64 (default: this machine)')
      .option('--json', 'print the result as JSON');
  },
  run,
};
