/**
 * `lifeboat runner [flags]`: the host daemon. It parses its own flags (see runner/main.ts) and
 * runs until SIGTERM, so it is handed the raw arguments rather than going through commander.
 */
import type { Command } from 'commander';

export function registerRunner(program: Command): void {
  program
    .command('runner')
    .description('run the host daemon of this hypervisor; see: lifeboat runner --help')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[flags...]')
    .action(async (flags: string[]) => {
      const { runRunner } = await import('#runner/main.ts');
      process.exitCode = await runRunner(flags);
    });
}
