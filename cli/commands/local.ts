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

/** `local/up.ts`, as agreed in the shared brief. */
interface LocalUpModule {
  localUp(options: { home?: string; port?: number }): Promise<{ endpoint: string; token: string }>;
}
/** `local/down.ts`, as agreed in the shared brief. */
interface LocalDownModule {
  localDown(options: { home?: string }): Promise<void>;
}

// Specifiers in variables: the local/ modules are written in parallel and loaded only on demand.
const LOCAL_UP = '#local/up.ts';
const LOCAL_DOWN = '#local/down.ts';

async function load<T>(specifier: string): Promise<T> {
  try {
    return (await import(specifier)) as T;
  } catch (error) {
    if (
      (error as { code?: string }).code === 'ERR_MODULE_NOT_FOUND' &&
      String(error).includes(specifier.slice(1))
    ) {
      throw new CliError(`local mode is not available in this installation (${specifier} is missing)`, 1);
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
      const { localUp } = await load<LocalUpModule>(LOCAL_UP);
      // The token goes to endpoint.json (0600) only: never to stdout.
      const { endpoint } = await localUp({
        ...(options.home !== undefined ? { home: options.home } : {}),
        ...(options.port !== undefined ? { port: options.port } : {}),
      });
      if (context.output.json) return printJson({ endpoint });
      printLines([endpoint]);
    });

  local
    .command('down')
    .description('stop everything `local up` started (state is kept)')
    .option('--home <DIR>', 'state folder (default: $LIFEBOAT_HOME or ~/.lifeboat)')
    .action(async (options: { home?: string }, command: Command) => {
      const context = contextOf(command);
      const { localDown } = await load<LocalDownModule>(LOCAL_DOWN);
      await localDown(options.home !== undefined ? { home: options.home } : {});
      if (context.output.json) return printJson({ stopped: true });
      printLines(['lifeboat local control plane stopped']);
    });
}
