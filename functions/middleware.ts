/**
 * The middleware every Lambda of functions/manifest.ts shares, so each entry point is a middy
 * handler that reads the same way: its input parsed with its zod schema (a bad input is a
 * ValidationError naming the field), its outcome logged under its name with the execution id
 * when it has one, and DynamoDB throttling or a transaction conflict turned into
 * {@link Throttled}, the one error name the state machines retry (TRANSIENT_ERRORS).
 */
import middy, { type MiddlewareObj } from '@middy/core';
import type { Context } from 'aws-lambda';
import type { z } from 'zod';
import { Throttled, ValidationError } from '#core/errors.ts';
import { log } from '#platform/log.ts';
import { isTransientDynamoError } from './repo/table.ts';

/** Replaces the event with its parse by `schema`; a ValidationError naming the first bad field. */
export function parsedInput(name: string, schema: z.ZodType): MiddlewareObj {
  return {
    before: (request) => {
      const parsed = schema.safeParse(request.event);
      if (parsed.success) {
        request.event = parsed.data;
        return;
      }
      const issue = parsed.error.issues[0];
      throw new ValidationError(
        `${name} input: ${issue ? `${issue.path.join('.') || 'input'}: ${issue.message}` : 'invalid'}`,
      );
    },
  };
}

function executionIdOf(event: unknown): string | undefined {
  const id = (event as { executionId?: unknown } | null | undefined)?.executionId;
  return typeof id === 'string' ? id : undefined;
}

/**
 * Logs `NAME done` (info) or `NAME failed` (warn, the error's name and message) with the
 * execution id. `quiet` leaves the success line out (a function that runs every few seconds).
 */
export function outcomeLog(name: string, options: { quiet?: boolean } = {}): MiddlewareObj {
  return {
    after: (request) => {
      if (!options.quiet) log('info', `${name} done`, { executionId: executionIdOf(request.event) });
    },
    onError: (request) => {
      const err = request.error;
      log('warn', `${name} failed`, {
        executionId: executionIdOf(request.event),
        error: err instanceof Error ? err.name : String(err),
        message: err instanceof Error ? err.message : undefined,
      });
    },
  };
}

/** DynamoDB throttling and transaction conflicts leave as {@link Throttled}; others as thrown. */
export function transientErrors(name: string): MiddlewareObj {
  return {
    onError: (request) => {
      const err = request.error;
      if (isTransientDynamoError(err)) {
        request.error = new Throttled(`${name}: DynamoDB is busy (${(err as Error).name}), try again`, {
          cause: err,
        });
      }
    },
  };
}

/**
 * A Lambda entry point: `run` behind {@link parsedInput}, {@link outcomeLog} and
 * {@link transientErrors}. `run` gets the parsed input.
 */
export function lambda<S extends z.ZodType, R>(
  name: string,
  schema: S,
  run: (input: z.output<S>, context: Context) => Promise<R>,
  options: { quiet?: boolean } = {},
): (event: unknown, context?: Context) => Promise<R> {
  // middy runs onError middlewares last-added first: transientErrors renames the error before
  // outcomeLog logs it, so the log names what the state machine sees.
  // Called without a context (local mode's workers, tests), middy gives an empty one.
  return middy<unknown, R, Error, Context>()
    .use(outcomeLog(name, options))
    .use(transientErrors(name))
    .use(parsedInput(name, schema))
    .handler((event, context) => run(event as z.output<S>, context)) as (
    event: unknown,
    context?: Context,
  ) => Promise<R>;
}
