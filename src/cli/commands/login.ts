/**
 * `ccflux login`: asks for (or reads) the endpoint and refresh token, proves them with a real
 * exchange, registers the device key and only then writes `config.json`. The token is read at a
 * hidden prompt or from stdin (`--token-stdin`), never from argv.
 */
import { hostname } from 'node:os';
import { join } from 'node:path';
import { exchangeToken, saveTokenCache } from '../../client/deliver/auth';
import { loadCredentials, validateEndpoint, writeConfig } from '../../client/local/credentials';
import { type DataDirSource, displayPath } from '../../client/local/data-dirs';
import { registerDeviceKey } from '../../client/deliver/drain';
import { CcfluxError, ERROR_CODES } from '../../client/local/errors';
import { ensurePrivateDir, readTextIfExists } from '../../client/local/fsx';
import { ensureSigningKey, fingerprint, forgetRegistration, markRegistered } from '../../client/deliver/keys';
import { createLogger } from '../../client/local/log';
import { type LoginPorts, performLogin, refuseTokenInArgv, loginSummary } from '../../client/commands/login';
import { statePaths } from '../../client/local/paths';
import { createTransport } from '../../client/deliver/transport';
import { isInteractive, promptHidden, promptVisible, readStdinLine } from '../prompt';
import { chooseSetupDir, rememberSetup, SETUP_DIR_HELP } from '../targets';
import { type CliContext, type CommandResult, type CommandSpec, EXIT } from '../types';

async function existingEndpoint(paths: ReturnType<typeof statePaths>): Promise<{ exists: boolean; endpoint: string | null }> {
  const exists = (await readTextIfExists(paths.config).catch(() => null)) !== null;
  if (!exists) return { exists, endpoint: null };
  try {
    // Only the file matters here: the plugin options are Claude Code's, login does not touch them.
    const current = await loadCredentials({ env: {}, paths, pluginStore: false });
    return { exists, endpoint: current?.endpoint ?? null };
  } catch {
    return { exists, endpoint: null };
  }
}

async function readEndpoint(ctx: CliContext, given: unknown, current: string | null, interactive: boolean): Promise<string> {
  if (typeof given === 'string' && given.trim() !== '') return given;
  if (interactive) {
    const answer = await promptVisible(ctx, 'Receiver endpoint (the https URL IT gave you)', current ?? undefined);
    if (answer !== '') return answer;
  } else if (current) {
    return current;
  }
  throw new CcfluxError(ERROR_CODES.USAGE, 'no receiver endpoint was given; nothing was changed', {
    hint: 'pass it with --endpoint https://… (IT gives you the URL)',
  });
}

/** validateEndpoint, with a fix that fits login itself (its own hint would say "run `ccflux login`"). */
function endpointForLogin(given: string, env: NodeJS.ProcessEnv): string {
  try {
    return validateEndpoint(given, env);
  } catch (err) {
    if (!(err instanceof CcfluxError) || err.code === ERROR_CODES.INSECURE_ENDPOINT) throw err;
    throw new CcfluxError(err.code, `${err.message}; nothing was changed`, {
      hint: 'give the receiver URL IT gave you, e.g. `--endpoint https://ccflux.example.org` (a base URL or one ending in /report)',
    });
  }
}

async function readToken(ctx: CliContext, fromStdin: boolean): Promise<string> {
  if (fromStdin) {
    // A terminal on stdin would echo what is typed: ask at the hidden prompt instead.
    if (isInteractive(ctx)) return promptHidden(ctx, 'Refresh token');
    return readStdinLine(ctx.stdin);
  }
  if (!isInteractive(ctx)) {
    throw new CcfluxError(ERROR_CODES.NOT_A_TERMINAL, 'cannot ask for the refresh token: standard input is not a terminal; nothing was changed', {
      hint: 'pipe the token instead: `ccflux login --endpoint URL --token-stdin < token.txt`',
    });
  }
  return promptHidden(ctx, 'Refresh token');
}

/** The same login with `--config-dir` filled in (never the token: it is read again from stdin). */
function retryCommand(dir: string, options: Record<string, unknown>): string {
  const endpoint = typeof options.endpoint === 'string' && options.endpoint !== '' ? ` --endpoint ${options.endpoint}` : '';
  return `ccflux login --config-dir ${dir}${endpoint}${options.tokenStdin === true ? ' --token-stdin < token.txt' : ''}`;
}

/** How the folder was decided, for `--json` (docs/commands.md). */
function dataDirSource(ctx: CliContext, configDir: unknown, dataDir: string): DataDirSource {
  if (typeof configDir === 'string' && configDir !== '') return 'flag';
  if (ctx.env.CLAUDE_CONFIG_DIR) return 'env';
  return dataDir === join(ctx.home, '.claude') ? 'default' : 'chosen';
}

async function run(ctx: CliContext, options: Record<string, unknown>, args: string[]): Promise<CommandResult> {
  refuseTokenInArgv(args, options);
  const fromStdin = options.tokenStdin === true;
  const interactive = isInteractive(ctx) && !fromStdin;

  const dataDir = await chooseSetupDir(ctx, options.configDir, { interactive, retry: (dir) => retryCommand(dir, options) });
  const source = dataDirSource(ctx, options.configDir, dataDir);
  const paths = statePaths(dataDir);
  const current = await existingEndpoint(paths);

  const endpoint = endpointForLogin(await readEndpoint(ctx, options.endpoint, current.endpoint, interactive), ctx.env);
  const token = await readToken(ctx, fromStdin);

  const transport = createTransport({ env: ctx.env });
  const log = createLogger(paths, ctx.now);
  const ports: LoginPorts = {
    exchangeToken: (url, refreshToken) => exchangeToken({ transport, now: ctx.now }, { endpoint: url, refreshToken }),
    ensureSigningKey: async () => {
      await ensurePrivateDir(paths.dir);
      const key = await ensureSigningKey(paths, { log, now: ctx.now });
      return { publicKey: key.publicKeyB64, fingerprint: fingerprint(key.publicKeyB64) };
    },
    // The key ensureSigningKey made (it returns the same one again): registration signs with it.
    registerKey: async (url, accessToken) => {
      const key = await ensureSigningKey(paths, { log, now: ctx.now });
      return registerDeviceKey({ transport, now: ctx.now }, { endpoint: url, accessToken, key, deviceId: hostname() });
    },
    saveCredentials: async (url, refreshToken, access) => {
      await writeConfig(paths, { endpoint: url, token: refreshToken });
      try {
        await saveTokenCache(paths, access, { endpoint: url, token: refreshToken });
      } catch {
        // Only a shortcut for the next hook, which exchanges again without it.
      }
    },
    recordRegistration: (publicKeyB64, registered) =>
      registered ? markRegistered(paths, publicKeyB64) : forgetRegistration(paths),
  };

  try {
    const outcome = await performLogin({ endpoint, refreshToken: token, configPath: paths.config, replacing: current.exists }, ports);
    await rememberSetup(ctx, dataDir);
    log.activity(
      `login: credentials for ${outcome.endpoint} saved to config.json; device key ${outcome.key.fingerprint} ${outcome.key.registered ? 'registered' : 'not registered'}`,
    );
    return {
      exitCode: outcome.key.revoked ? EXIT.auth : EXIT.ok,
      human: loginSummary(outcome, displayPath(paths.config, ctx.home)),
      json: {
        ok: !outcome.key.revoked,
        endpoint: outcome.endpoint,
        dataDir,
        dataDirSource: source,
        configPath: outcome.configPath,
        replacedExistingConfig: outcome.replaced,
        accessTokenExpiresAt: outcome.accessTokenExpiresAt,
        key: outcome.key,
      },
    };
  } finally {
    await log.flush();
    await transport.close();
  }
}

export const loginCommand: CommandSpec = {
  name: 'login',
  summary: 'Save your receiver endpoint and refresh token, after checking them with the receiver',
  example: [
    'ccflux login                                   # asks for the endpoint, then the token (hidden)',
    'ccflux login --endpoint https://ccflux.example.org --token-stdin < token.txt',
  ].join('\n'),
  configure(cmd) {
    cmd
      .option('--endpoint <url>', 'receiver URL (https://host or https://host/report); asked for when missing')
      .option('--token-stdin', 'read the refresh token from the first line of standard input instead of a hidden prompt')
      .option('--config-dir <dir>', SETUP_DIR_HELP)
      .option('--json', 'print the result as JSON (never contains the token)')
      // Accepted only to be refused with a clear error: a token on the command line is readable by others.
      .addOption(cmd.createOption('--token <token>').hideHelp())
      .addOption(cmd.createOption('--refresh-token <token>').hideHelp())
      .addOption(cmd.createOption('--api-token <token>').hideHelp())
      .allowExcessArguments(true)
      .allowUnknownOption(true);
  },
  run,
};
