/**
 * Entry point of the `lifeboat` command (run by `bin/lifeboat.js`): wires the command groups
 * onto one commander program and maps every failure to the contract's exit codes — 0 success,
 * 1 the operation failed, 2 bad usage or input — with exactly one line on stderr.
 */
import { Command, CommanderError } from 'commander';
import pkg from '../package.json' with { type: 'json' };
import { registerAdmin } from './commands/admin.ts';
import { registerAudit } from './commands/audit.ts';
import { registerBackupJob } from './commands/backupjob.ts';
import { registerDatastore } from './commands/datastore.ts';
import { registerDrill } from './commands/drill.ts';
import { registerExecution } from './commands/execution.ts';
import { registerGroup } from './commands/group.ts';
import { registerHost } from './commands/host.ts';
import { registerImage } from './commands/image.ts';
import { registerLocal } from './commands/local.ts';
import { registerRunner } from './commands/runner.ts';
import { registerStats } from './commands/stats.ts';
import { registerToken } from './commands/token.ts';
import { registerUser, registerWhoami } from './commands/user.ts';
import { registerVm } from './commands/vm.ts';
import { requireSubcommand } from './context.ts';
import { CliError } from './errors.ts';
import { TOKEN_FLAG_WARNING } from './token.ts';

/** Commander's messages (`error: unknown option '--x'\n(Did you mean --y?)`) as one line. */
function oneLine(text: string): string {
  return `lifeboat: ${text
    .replace(/^error: /, '')
    .trim()
    .replace(/\s*\n\s*/g, ' ')}\n`;
}

/** The whole command tree. Settings made here are inherited by every subcommand. */
export function buildProgram(): Command {
  const program = new Command('lifeboat')
    .description('Back up and restore KVM virtual machines')
    .version(pkg.version)
    .option('--endpoint <URL>', 'Lifeboat API endpoint (env LIFEBOAT_ENDPOINT)')
    .option('--token-file <PATH>', 'read the API token from PATH (mode 0600); or env LIFEBOAT_TOKEN')
    .option('--token <TOKEN>', 'API token; shows in ps: prefer --token-file or env LIFEBOAT_TOKEN')
    .option('--json', 'print exactly one JSON document on stdout')
    .option('--no-progress', 'no progress bar with --wait/--follow: one line per phase change')
    .exitOverride()
    .showHelpAfterError(false)
    .configureOutput({ outputError: (text) => process.stderr.write(oneLine(text)) })
    // Once per run, before any action, and on stderr so `--json` keeps stdout clean.
    .hook('preAction', (_program, action) => {
      if (action.optsWithGlobals<{ token?: string }>().token !== undefined) {
        process.stderr.write(TOKEN_FLAG_WARNING);
      }
    });
  registerLocal(program);
  registerHost(program);
  registerVm(program);
  registerDatastore(program);
  registerImage(program);
  registerBackupJob(program);
  registerExecution(program);
  registerDrill(program);
  registerUser(program);
  registerWhoami(program);
  registerGroup(program);
  registerToken(program);
  registerAudit(program);
  registerStats(program);
  registerAdmin(program);
  registerRunner(program);
  return requireSubcommand(program);
}

/** Runs the CLI on `argv` (as process.argv) and answers the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  try {
    await buildProgram().parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    // Commander already printed its one line (or the help / version, with exit code 0).
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (error instanceof CliError) {
      process.stderr.write(`lifeboat: ${error.message}\n`);
      return error.exitCode;
    }
    // Anything else is unexpected: its first line only (LIFEBOAT_DEBUG=1 shows all of it).
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`lifeboat: ${message.split('\n')[0]?.replace(/:\s*$/, '')}\n`);
    if (process.env.LIFEBOAT_DEBUG && error instanceof Error) process.stderr.write(`${error.stack}\n`);
    return 1;
  }
}

// `lifeboat ... | head` closes stdout early: that is not an error worth a stack trace.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

process.exitCode = await main(process.argv);
