/**
 * `lifeboat admin bootstrap --stack NAME [--region R] [--name admin] [--expires 1d] [--force]`:
 * the first admin of a control plane in AWS, written with the operator's AWS credentials (see
 * ../bootstrap.ts); its token is printed once, alone on stdout, like `user create`'s.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { type Command, InvalidArgumentError } from 'commander';
import { parseLifetime } from '#core/accounts.ts';
import { parseExpires, parseName } from '../args.ts';
import { type AccountTables, bootstrapAdmin, findAccountTables } from '../bootstrap.ts';
import { contextOf, requireSubcommand } from '../context.ts';
import { UsageError } from '../errors.ts';
import { printJson, printLines } from '../output.ts';

/** A CloudFormation stack name. */
function parseStack(value: string): string {
  if (!/^[A-Za-z][A-Za-z0-9-]{0,127}$/.test(value))
    throw new InvalidArgumentError('Expected a CloudFormation stack name.');
  return value;
}

/** A DynamoDB table name. */
function parseTable(value: string): string {
  if (!/^[A-Za-z0-9_.-]{3,255}$/.test(value))
    throw new InvalidArgumentError('Expected a DynamoDB table name.');
  return value;
}

/** An AWS region name. */
function parseRegion(value: string): string {
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(value))
    throw new InvalidArgumentError('Expected an AWS region (e.g. eu-west-1).');
  return value;
}

interface BootstrapOptions {
  stack?: string;
  region?: string;
  name: string;
  expires?: string;
  force?: boolean;
  usersTable?: string;
  tokensTable?: string;
}

/** Adds the `admin` command group to `program`. */
export function registerAdmin(program: Command): void {
  const admin = requireSubcommand(program.command('admin').description('control plane administration'));

  admin
    .command('bootstrap')
    .description(
      'make the first admin with your AWS credentials (no API token needed); prints its token once',
    )
    .option('--stack <NAME>', 'the CloudFormation stack of the control plane (e.g. Lifeboat)', parseStack)
    .option('--region <REGION>', "the stack's region (default: AWS_REGION or your profile's)", parseRegion)
    .option('--name <NAME>', 'the admin user to make', parseName, 'admin')
    .option(
      '--expires <DURATION>',
      'lifetime of the token: 90s, 15m, 12h, 30d, 4w or never (default never)',
      parseExpires,
    )
    .option('--force', 'even when an admin exists: a new token for the named admin (lost token)')
    .option(
      '--users-table <TABLE>',
      'the users table (stack output UsersTableName) instead of --stack',
      parseTable,
    )
    .option(
      '--tokens-table <TABLE>',
      'the tokens table (stack output TokensTableName) instead of --stack',
      parseTable,
    )
    .action(async (options: BootstrapOptions, command: Command) => {
      const context = contextOf(command);
      const explicit = options.usersTable !== undefined || options.tokensTable !== undefined;
      if (explicit && (options.usersTable === undefined || options.tokensTable === undefined)) {
        throw new UsageError('give both --users-table and --tokens-table, or --stack');
      }
      if (!explicit && options.stack === undefined)
        throw new UsageError('give --stack NAME (or both --users-table and --tokens-table)');
      const client = new DynamoDBClient(options.region ? { region: options.region } : {});
      try {
        const tables: AccountTables = explicit
          ? { users: options.usersTable as string, tokens: options.tokensTable as string }
          : await findAccountTables(client, options.stack as string);
        const made = await bootstrapAdmin(client, tables, {
          name: options.name,
          force: options.force === true,
          expiresInSeconds:
            options.expires === undefined ? undefined : parseLifetime(options.expires, '--expires'),
        });
        const { existing, ...shown } = made;
        if (context.output.json) return printJson(shown);
        printLines([made.token]);
        process.stderr.write(
          `${existing ? 'a new token for admin' : 'admin'} ${made.name} (token ${made.tokenId}): shown only now; ` +
            `keep it in a 0600 file for --token-file and make your own with: lifeboat token create\n`,
        );
      } finally {
        client.destroy();
      }
    });
}
