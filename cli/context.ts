/**
 * What every command action needs from the global options: output mode, progress mode and a
 * lazily built API client (so `--help` and usage errors never read endpoint.json).
 */
import type { Command } from 'commander';
import { ApiClient, resolveConnection } from './client.ts';
import { UsageError } from './errors.ts';
import type { OutputOptions } from './output.ts';

/** The global options, as commander parses them (`--no-progress` sets `progress: false`). */
export interface GlobalOptions {
  endpoint?: string;
  token?: string;
  tokenFile?: string;
  json?: boolean;
  progress?: boolean;
}

/** Per-invocation context handed to the command actions. */
export interface Context {
  output: OutputOptions;
  /** False with `--no-progress`: no bar, one line per phase change. */
  progress: boolean;
  client(): ApiClient;
}

/** Builds the context from the options of `command` and of its parents. */
export function contextOf(command: Command): Context {
  const options = command.optsWithGlobals<GlobalOptions>();
  let client: ApiClient | undefined;
  return {
    output: { json: options.json === true },
    progress: options.progress !== false,
    client: () => {
      client ??= new ApiClient(
        resolveConnection({
          ...(options.endpoint ? { endpoint: options.endpoint } : {}),
          ...(options.token ? { token: options.token } : {}),
          ...(options.tokenFile ? { tokenFile: options.tokenFile } : {}),
        }),
      );
      return client;
    },
  };
}

/**
 * Makes a command that only groups subcommands (`vm`, `datastore`, ...) fail with one usage line
 * when run bare or with an unknown subcommand, instead of commander's multi-line help on stderr.
 */
export function requireSubcommand(command: Command): Command {
  return command.allowExcessArguments().action((_options: unknown, self: Command) => {
    const names = self.commands.map((sub) => sub.name()).join('|');
    const [first] = self.args;
    throw new UsageError(
      first === undefined
        ? `missing command: ${path(self)} ${names} (see ${path(self)} --help)`
        : `unknown command '${first}' for '${path(self)}' (one of ${names})`,
    );
  });
}

/** `lifeboat vm`: the command's full name for messages. */
function path(command: Command): string {
  const names: string[] = [];
  for (let at: Command | null = command; at; at = at.parent) names.unshift(at.name());
  return names.join(' ');
}
