/**
 * Small id and key helpers shared by the API, the dispatcher and the task Lambdas.
 */
import { ValidationError } from './errors.ts';

/**
 * Sort key of a pending request in the dispatcher's `pending` index: higher priority first,
 * then oldest first. `(99 - priority)` zero-padded to 2 digits, `#`, the ISO creation time,
 * so plain string order is dispatch order.
 */
export function requestRank(priority: number, createdAt: string): string {
  if (!Number.isInteger(priority) || priority < 0 || priority > 99) {
    throw new ValidationError(`priority must be an integer from 0 to 99 (got ${priority})`);
  }
  return `${String(99 - priority).padStart(2, '0')}#${createdAt}`;
}

/**
 * A numeric id from a path parameter or query string (`"63"` -> 63). Throws ValidationError
 * naming `what` (`"VM id must be a non-negative integer (got "x")"`).
 */
export function parseId(value: string | undefined, what: string): number {
  if (value === undefined || !/^\d{1,9}$/.test(value)) {
    throw new ValidationError(`${what} must be a non-negative integer (got "${value ?? ''}")`);
  }
  return Number(value);
}
