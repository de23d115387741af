/**
 * Moved to platform/log.ts (shared with the runner). This re-export keeps the importers outside
 * functions/ (local/, bench/, test/ helpers) working until they import `#platform/log.ts`.
 * @deprecated import `#platform/log.ts`.
 */
export * from '#platform/log.ts';
