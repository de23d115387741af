/**
 * `lifeboat local up | down`: the embedded control plane on this machine. The work is done by
 * `local/up.ts` and `local/down.ts`, loaded only when these commands run (the rest of the CLI
 * is a plain HTTP client and must not pay for loading local mode).
 */
import type { Command } from 'commander';
import { parsePort } from '../args.ts';
import { contextOf, requireSubcommand } from '../context.ts';
import { CliError } from '../errors.ts';
import { printJson, printLines } from '../output.ts';

/** Loads a local/ module on demand, with a clear error if this installation lacks it. */
async function load<T>(loader: () => Promise<T>): Promise<T> {
  try {
    return await loader();
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') {
      throw new CliError(`local mode is not available in this installation: ${(error as Error).message}`, 1);
    }
    throw error;
  }
}

/** Adds the `local` command group to `program`. */
export function registerLocal(program: Command): void {
  const local = requireSubcommand(
    program.command('local').description('the embedded control plane on this machine (no AWS account)'),
  );

  local
    .command('up')
    .description('start the embedded control plane and a runner for this host; prints the endpoint')
    .option('--home <DIR>', 'state folder (default: $LIFEBOAT_HOME or ~/.lifeboat)')
    .option('--port <N>', 'API port (default 7780)', parsePort)
    .action(async (options: { home?: string; port?: number }, command: Command) => {
      const context = contextOf(command);
      const { localUp } = await load(() => import('#local/up.ts'));
      // The token goes to endpoint.json (0600) only: never to stdout.
      const { endpoint, alreadyRunning } = await localUp({
        ...(options.home !== undefined ? { home: options.home } : {}),
        ...(options.port !== undefined ? { port: options.port } : {}),
      });
      if (alreadyRunning) process.stderr.write('lifeboat: local mode is already running\n');
      if (context.output.json) return printJson({ endpoint, alreadyRunning });
      printLines([endpoint]);
      // On stderr: stdout stays the endpoint alone, for scripts that read it.
      process.stderr.write(`lifeboat: web console at ${endpoint}/ (sign in with an API token)\n`);
    });

  local
    .command('down')
    .description('stop everything `local up` started (state is kept)')
    .option('--home <DIR>', 'state folder (default: $LIFEBOAT_HOME or ~/.lifeboat)')
    .action(async (options: { home?: string }, command: Command) => {
      const context = contextOf(command);
      const { localDown } = await load(() => import('#local/down.ts'));
      const { stopped } = await localDown(options.home !== undefined ? { home: options.home } : {});
      if (context.output.json) return printJson({ stopped });
      printLines([stopped ? 'local control plane stopped' : 'local control plane was not running']);
    });
}
